"""simple: five processes each print "Worker"; main does not join them."""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    assert out.splitlines() == ["Worker"] * 5, out
    assert err == "", err
