"""pool_full: the squares, the same numbers in any order, 400, a worker's
pid, four pids, and the TimeoutError line.  The program must end well
before the 10 s task would (the pool is terminated when freed)."""

TIMEOUT = 8


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    assert err == "", err
    lines = out.splitlines()
    assert len(lines) == 15, lines
    assert lines[0] == "[" + ", ".join(str(i * i) for i in range(10)) + "]", lines[0]
    assert sorted(int(x) for x in lines[1:11]) == [i * i for i in range(10)], lines[1:11]
    assert lines[11] == "400", lines[11]
    pid = int(lines[12])
    pids = [int(x) for x in lines[13].strip("[]").split(", ")]
    assert len(pids) == 4 and 1 <= len(set(pids + [pid])) <= 4, (pid, pids)
    assert lines[14] == "We lacked patience and got a multiprocessing.TimeoutError", lines[14]
