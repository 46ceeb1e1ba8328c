"""lock: both workers' lines, each whole (never interleaved)."""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    assert sorted(out.splitlines()) == \
        ["Lock acquired directly", "Lock acquired via with"], out
    assert out.endswith("\n"), out
    assert err == "", err
