"""subclass: "In Worker-1" .. "In Worker-5", in any order."""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    assert sorted(out.splitlines()) == [f"In Worker-{i}" for i in range(1, 6)], out
    assert err == "", err
