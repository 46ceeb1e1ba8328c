"""manager_dict: Results: {0: 0, 1: 2, ..., 9: 18} (entries in any order)."""
import ast


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    lines = out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Results: "), out
    d = ast.literal_eval(lines[0][len("Results: "):])
    assert d == {i: i * 2 for i in range(10)}, out
    assert err == "", err
