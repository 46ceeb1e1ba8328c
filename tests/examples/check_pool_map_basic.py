"""pool_map_basic: Pool(5).map(f, [1, 2, 3]) prints [1, 4, 9]."""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    assert out == "[1, 4, 9]\n", out
    assert err == "", err
