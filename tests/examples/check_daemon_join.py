"""daemon_join: joining the daemon lets it finish: both Exiting lines."""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    lines = out.splitlines()
    # Python prints the non-daemon's lines first because each child's stdout
    # is flushed when it exits.  In C the order between the two processes is
    # the C library's buffering (musl writes the first line to a pipe at
    # once), so only each process's own order is checked.
    assert sorted(lines) == sorted([
        "Starting: non-daemon",
        "Exiting : non-daemon",
        "Starting: daemon",
        "Exiting : daemon",
    ]), out
    for name in ("daemon", "non-daemon"):
        assert lines.index("Starting: " + name) < lines.index("Exiting : " + name), out
    assert err == "", err
