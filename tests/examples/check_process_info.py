"""process_info: "hello bob", and the ids chain: the child's parent is the
main program; both run in the same module."""
import os
import re

# Under forkserver the child's parent in the kernel's eyes is the server, as
# with Python's os.getppid() there.
FORKSERVER = os.environ.get("MP_START_METHOD") == "forkserver"


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    lines = out.splitlines()
    assert len(lines) == 9, out
    assert lines[0] == "main line" and lines[4] == "function f", out
    assert lines[8] == "hello bob", out
    assert lines[1].startswith("module name: ") and lines[1] == lines[5], out
    ids = []
    for i in (2, 3, 6, 7):
        m = re.fullmatch(r"(parent process|process id): (\d+)", lines[i])
        assert m, out
        ids.append(int(m.group(2)))
    main_parent, main_pid, child_parent, child_pid = ids
    assert (child_parent == main_pid) != FORKSERVER, out
    assert child_pid not in (main_pid, main_parent), out
    assert err == "", err
