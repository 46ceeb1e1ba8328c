"""queue_zero_copy: 64 messages of 1 MiB pass by pointer, all intact."""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    assert out == ("received 64 messages of 1048576 bytes without copying, "
                   "64 intact\n"), out
    assert err == "", err
