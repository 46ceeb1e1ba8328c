"""pipe_basic: the list [42, None, 'hello'] arrives intact over a Pipe."""


def check(out, err, code):
    assert code == 0, f"exit code {code}: {err}"
    assert out.splitlines() == ["[42, None, 'hello']"], out
    assert err == "", err
