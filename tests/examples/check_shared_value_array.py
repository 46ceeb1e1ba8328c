"""shared_value_array: 3.1415927 and [0, -1, ..., -9] written by the child."""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    assert out.splitlines() == [
        "3.1415927", "[0, -1, -2, -3, -4, -5, -6, -7, -8, -9]"], out
    assert err == "", err
