"""get_logger: at level INFO only the INFO lines of the seed appear."""

WANT = """\
[INFO/Process-1] child process calling self.run()
[INFO/Process-1] process shutting down
[INFO/Process-1] process exiting with exitcode 0
[INFO/MainProcess] process shutting down
"""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    assert out == "Doing some work\n", out
    assert err == WANT, err
