"""manager_types: {1: 1}, the reversed list, the squared array."""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    assert out.splitlines() == [
        "{1: 1}",
        "[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]",
        "array('i', [0, 1, 4, 9, 16, 25, 36, 49, 64, 81])",
    ], out
    assert err == "", err
