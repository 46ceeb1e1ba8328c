"""pool: one "Starting PoolWorker-N" per worker (cpu_count * 2 of them),
then the pool's results, equal to the built-in map's."""
import os
import re


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    assert err == "", err
    lines = out.splitlines()
    want = "[" + ", ".join(str(2 * i) for i in range(10)) + "]"
    assert lines[0] == "Input   : [" + ", ".join(map(str, range(10))) + "]", lines[0]
    assert lines[1] == "Built-in: " + want, lines[1]
    assert lines[-1] == "Pool    : " + want, lines[-1]
    starts = lines[2:-1]
    names = []
    for s in starts:
        m = re.fullmatch(r"Starting (PoolWorker-\d+)", s)
        assert m, s
        names.append(m.group(1))
    assert len(names) == len(set(names)), names
    assert len(names) == os.cpu_count() * 2, (len(names), os.cpu_count())
