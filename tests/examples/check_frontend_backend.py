"""frontend_backend: ping answered by pong through a Pipe, then a clean stop."""


def check(out, err, code):
    assert code == 0, f"exit code {code}: {err}"
    lines = out.splitlines()
    expected = ["front: sleepin 5 secs", "front: sleepin 5 secs",
                "MyProcess: run", "backend: got ping from frontend",
                "frontend: got a message from backend: pong",
                "bye from multiprocess!"]
    assert sorted(lines) == sorted(expected), lines
    order = ["MyProcess: run", "backend: got ping from frontend",
             "frontend: got a message from backend: pong"]
    assert [l for l in lines if l in order] == order, lines
    # The backend stops only when the frontend says stop, after its second
    # pause: the goodbye is the last line.
    assert lines[-1] == "bye from multiprocess!", lines
    assert err == "", err
