"""namespaces: the missing-attribute error before the event, the value after."""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    assert out.splitlines() == [
        "Before event, consumer got: 'Namespace' object has no attribute 'value'",
        "After event, consumer got: This is the value",
    ], out
    assert err == "", err
