"""event: the timeout waiter sees False, the blocking waiter sees True after set."""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    lines = out.splitlines()
    want = [
        "main: waiting before calling Event.set()",
        "wait_for_event: starting",
        "wait_for_event_timeout: starting",
        "wait_for_event_timeout: e.is_set()-> False",
        "main: event is set",
        "wait_for_event: e.is_set()-> True",
    ]
    assert sorted(lines) == sorted(want), out
    # The timed-out waiter gave up before the event was set, and the
    # blocking waiter was released only by set().
    assert lines.index("wait_for_event_timeout: e.is_set()-> False") < \
        lines.index("main: event is set"), out
    assert lines.index("wait_for_event: starting") < \
        lines.index("wait_for_event: e.is_set()-> True"), out
    assert lines.index("main: waiting before calling Event.set()") < \
        lines.index("main: event is set"), out
    assert err == "", err
