"""lock_print: ten whole lines, hello world 0..9."""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    lines = out.splitlines()
    assert sorted(lines) == sorted(f"hello world {i}" for i in range(10)), out
    assert err == "", err
