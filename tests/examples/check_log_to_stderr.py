"""log_to_stderr: the seed's log lines, exactly, at level DEBUG."""

WANT = """\
[INFO/Process-1] child process calling self.run()
[INFO/Process-1] process shutting down
[DEBUG/Process-1] running all "atexit" finalizers with priority >= 0
[DEBUG/Process-1] running the remaining "atexit" finalizers
[INFO/Process-1] process exiting with exitcode 0
[INFO/MainProcess] process shutting down
[DEBUG/MainProcess] running all "atexit" finalizers with priority >= 0
[DEBUG/MainProcess] running the remaining "atexit" finalizers
"""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    assert out == "Doing some work\n", out
    assert err == WANT, err
