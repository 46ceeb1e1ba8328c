"""terminate: the states of the seed, and a SIGTERM exit (-15).

Whether the process is already gone right after terminate() depends on
scheduling, so the TERMINATED line may say True or False; its repr does not
poll and says "started", as in Python 2.
"""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    # musl writes the first line to a pipe at once: the worker's "Starting
    # worker" may get out before the SIGTERM (glibc's stays in its buffer).
    lines = [ln for ln in out.splitlines() if ln != "Starting worker"]
    assert len(lines) == 4, out
    assert lines[0] == "BEFORE: <Process(Process-1, initial)> False", out
    assert lines[1] == "DURING: <Process(Process-1, started)> True", out
    assert lines[2] in ("TERMINATED: <Process(Process-1, started)> True",
                        "TERMINATED: <Process(Process-1, started)> False"), out
    assert lines[3] == "JOINED: <Process(Process-1, stopped[SIGTERM])> False", out
    assert "Finished worker" not in out
    assert err == "", err
