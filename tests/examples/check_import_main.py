"""import_main: a target from another translation unit runs five times."""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    assert out.splitlines() == ["Worker"] * 5, out
    assert err == "", err
