"""namespaces_mutable: both lines show [] (a fetched list is a copy)."""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    assert out.splitlines() == [
        "Before event, consumer got: []",
        "After event, consumer got: []",
    ], out
    assert err == "", err
