"""names: explicit names, and "Process-3" for the third, unnamed process."""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    lines = out.splitlines()
    want = []
    for name in ("worker 1", "Process-3", "my_service"):
        want += [f"{name} Starting", f"{name} Exiting"]
        # Each process's lines are in order.
        assert lines.index(f"{name} Starting") < lines.index(f"{name} Exiting"), out
    assert sorted(lines) == sorted(want), out
    assert err == "", err
