"""pipe_duplex: two messages each way over a duplex Pipe, in order per
direction (the child prints the parent's messages, the parent the child's;
how the two processes' lines interleave is not fixed)."""

PARENT = ["Sending from connection held by parent process ",
          "Sending from connection held by parent process 1"]
CHILD = ["Sending from connection held by subprocess ",
         "Sending from connection held by subprocess 1"]


def check(out, err, code):
    assert code == 0, f"exit code {code}: {err}"
    lines = out.splitlines()
    assert sorted(lines) == sorted(PARENT + CHILD), lines
    assert [l for l in lines if l in PARENT] == PARENT, lines
    assert [l for l in lines if l in CHILD] == CHILD, lines
    # The child prints the parent's first message before it sends its own,
    # and the parent sends its second only after printing both of the child's.
    assert lines.index(PARENT[0]) < lines.index(CHILD[1]), lines
    assert lines.index(CHILD[1]) < lines.index(PARENT[1]), lines
    assert err == "", err
