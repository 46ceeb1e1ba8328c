"""start_methods: the same target runs under fork, spawn and forkserver."""
import os

METHODS = ["fork", "spawn", "forkserver"]


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    lines = out.splitlines()
    assert len(lines) == 6, out
    # The default first (MP_START_METHOD, as the suites set it, or fork).
    default = os.environ.get("MP_START_METHOD") or "fork"
    listed = lines[0].split()
    assert listed[:2] == ["start", "methods:"], out
    assert listed[2] == default and sorted(listed[2:]) == sorted(METHODS), out
    assert lines[1] == "Test function execution (spawn)", out
    assert lines[2] == "RuntimeError: context has already been set", out
    assert lines[3:] == [f"Test function execution ({m})" for m in METHODS], out
    assert err == "", err
