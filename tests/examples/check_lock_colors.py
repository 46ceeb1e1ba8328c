"""lock_colors: with the lock, each worker's lines are contiguous."""

COLOURS = ("Red", "Green", "Blue")


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    lines = out.splitlines()
    assert lines.count("Without lock:") == 1 and lines.count("With lock:") == 1, out
    split = lines.index("With lock:")
    assert lines[0] == "Without lock:", out
    every = sorted(f"{c} {i}" for c in COLOURS for i in (1, 2, 3))
    without, with_lock = lines[1:split], lines[split + 1:]
    assert sorted(without) == every, out
    assert sorted(with_lock) == every, out
    # Each worker's own lines are in order in both rounds.
    for part in (without, with_lock):
        for c in COLOURS:
            mine = [line for line in part if line.startswith(c + " ")]
            assert mine == [f"{c} 1", f"{c} 2", f"{c} 3"], out
    # With the lock, the three lines of a worker are together.
    for k in range(0, 9, 3):
        colour = with_lock[k].split()[0]
        assert with_lock[k:k + 3] == [f"{colour} 1", f"{colour} 2", f"{colour} 3"], out
    assert err == "", err
