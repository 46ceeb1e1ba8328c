"""queue_fancy: the worker gets the object and calls its method."""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    assert out == "Doing something fancy in Process-1 for Fancy Dan!\n", out
    assert err == "", err
