"""daemon: the daemonic process is terminated before it prints "Exiting".

Its "Starting" line may or may not appear (it sits in the child's stdio
buffer when stdout is a pipe, and is lost with the process, as in the
Python original's output).  run.py checks that no process is left.
"""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    lines = out.splitlines()
    assert "Exiting : daemon" not in lines, out
    rest = [l for l in lines if l != "Starting: daemon"]
    assert rest == ["Starting: non-daemon", "Exiting : non-daemon"], out
    assert err == "", err
