"""semaphore_active_pool: never more than 3 active at once, the last line []."""
import ast


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    lines = out.splitlines()
    assert len(lines) == 20, out
    names = [str(i) for i in range(10)]
    for line in lines:
        assert line.startswith("Now running: "), line
        active = ast.literal_eval(line[len("Now running: "):])
        assert isinstance(active, list), line
        assert len(active) <= 3, line
        assert len(set(active)) == len(active), line
        assert all(n in names for n in active), line
    # Each worker prints once while active, so with its own name.
    assert lines[-1] == "Now running: []", out
    assert err == "", err
