"""value_array: Value('f', 3.14) squared, Array('i', range(5)) cubed."""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    lines = out.splitlines()
    assert lines == ["3.140000104904175 [0, 1, 2, 3, 4]",
                     "9.859601020812988 [0, 1, 8, 27, 64]"], out
    assert err == "", err
