"""pool_features: [1, 8, 27, 64], the iterator, the unordered cubes of 1..5,
1000, eight pids of at most five workers, and the timeout; the sleeping
task is terminated with the pool (its title is never printed)."""
import re

TIMEOUT = 20


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    assert err == "", err
    lines = out.splitlines()
    assert len(lines) == 6, lines
    assert lines[0] == "[1, 8, 27, 64]", lines[0]
    assert re.fullmatch(r"<IMapUnorderedIterator object at (0x[0-9a-f]+|\(nil\))>",
                        lines[1]), lines[1]
    got = [int(x) for x in lines[2].strip("[]").split(", ")]
    assert sorted(got) == [1, 8, 27, 64, 125], lines[2]
    assert lines[3] == "1000", lines[3]
    pids = [int(x) for x in lines[4].strip("[]").split(", ")]
    assert len(pids) == 8 and 1 <= len(set(pids)) <= 5, lines[4]
    assert all(p > 1 for p in pids), pids
    assert lines[5] == "Timed out. Not able toget result in time.", lines[5]
