"""Checks shared by check_producer_consumer*.py."""
import os
import re


def check_run(out, err, code):
    """Check a producer_consumer run; return (lines, number of consumers)."""
    assert code == 0, f"exit code {code}"
    assert err == "", err
    lines = out.splitlines()
    m = re.fullmatch(r"Creating (\d+) consumers", lines[0])
    assert m, lines[0]
    n = int(m.group(1))
    assert n == 2 * os.cpu_count(), f"{n} consumers, cpu_count is {os.cpu_count()}"
    names = {f"Consumer-{i}" for i in range(1, n + 1)}
    tasks, exits, results = [], [], []
    for line in lines[1:]:
        if line.startswith("Result: "):
            results.append(line[len("Result: "):])
            continue
        name, _, what = line.partition(": ")
        assert name in names, line
        if what == "Exiting":
            exits.append(name)
        else:
            assert re.fullmatch(r"\d+ \* \d+", what), line
            tasks.append(what)
    # Every task ran once, every consumer exited once, every answer came back.
    assert sorted(tasks) == sorted(f"{i} * {i}" for i in range(10)), tasks
    assert sorted(exits) == sorted(names), exits
    assert sorted(results) == sorted(f"{i} * {i} = {i * i}" for i in range(10)), results
    return lines, n
