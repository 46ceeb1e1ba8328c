"""daemon_join: joining the daemon lets it finish: both Exiting lines."""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    assert out.splitlines() == [
        "Starting: non-daemon",
        "Exiting : non-daemon",
        "Starting: daemon",
        "Exiting : daemon",
    ], out
    assert err == "", err
