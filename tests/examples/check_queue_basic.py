"""queue_basic: [42, None, 'hello'] crosses the queue intact."""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    assert out == "[42, None, 'hello']\n", out
    assert err == "", err
