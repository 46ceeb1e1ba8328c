"""daemon_join_timeout: after join(1) the daemon is still alive; it is
terminated at exit, so it never prints "Exiting"."""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    lines = out.splitlines()
    assert "d.is_alive() True" in lines, out
    assert "Exiting : daemon" not in lines, out
    rest = [l for l in lines if l != "Starting: daemon"]
    assert rest == ["Starting: non-daemon", "Exiting : non-daemon",
                    "d.is_alive() True"], out
    assert err == "", err
