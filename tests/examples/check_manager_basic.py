"""manager_basic: the typed entries {0.25: None, 1: '1', '2': 2}, the reversed list."""
import ast


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    lines = out.splitlines()
    assert len(lines) == 2, out
    # Python 3 (and libmp) print insertion order; the seed printed Python 2's.
    assert lines[0] == "{1: '1', '2': 2, 0.25: None}", out
    d = ast.literal_eval(lines[0])
    assert d == {0.25: None, 1: '1', '2': 2}, out
    assert [type(k) for k in d] == [int, str, float], out
    assert lines[1] == "[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]", out
    assert err == "", err
