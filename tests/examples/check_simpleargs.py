"""simpleargs: "Worker: 0" .. "Worker: 4", in any order."""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    assert sorted(out.splitlines()) == [f"Worker: {i}" for i in range(5)], out
    assert err == "", err
