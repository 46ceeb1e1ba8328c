"""queue_two_way: a message each way through one queue, both arrive."""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    assert sorted(out.splitlines()) == [
        "Sending from Parent Process to Subprocess",
        "Sending from Subprocess to Parent Process",
    ], out
    assert err == "", err
