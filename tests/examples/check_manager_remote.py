"""manager_remote: one program puts 'hello' through an AF_INET manager, another gets it."""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    assert out.splitlines() == [
        "server: serving the queue",
        "put: queue.put('hello')",
        "get: queue.get() -> 'hello'",
        "server: shut down",
    ], out
    assert err == "", err
