"""pool_maxtasksperchild: the same results, and workers restarted: ten
tasks at most two per worker need at least five workers, and at least the
pool's cpu_count * 2 start."""
import os
import re


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    assert err == "", err
    lines = out.splitlines()
    want = "[" + ", ".join(str(2 * i) for i in range(10)) + "]"
    assert lines[1] == "Built-in: " + want, lines[1]
    assert lines[-1] == "Pool    : " + want, lines[-1]
    names = []
    for s in lines[2:-1]:
        m = re.fullmatch(r"Starting (PoolWorker-\d+)", s)
        assert m, s
        names.append(m.group(1))
    assert len(names) == len(set(names)), names
    assert len(names) >= max(5, os.cpu_count() * 2), (len(names), os.cpu_count())
