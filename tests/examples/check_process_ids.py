"""process_ids: the child's parent is the main program."""
import os
import re

# Under forkserver the child's parent in the kernel's eyes is the server, as
# with Python's os.getppid() there.
FORKSERVER = os.environ.get("MP_START_METHOD") == "forkserver"


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    lines = out.splitlines()
    assert len(lines) == 4, out
    m = re.fullmatch(r"Process ID of main process : (\d+)", lines[0])
    assert m, out
    main = int(m.group(1))
    assert lines[1] == "Test first process creation", out
    m = re.fullmatch(r"Process ID of parent process which created this sub "
                     r"process : (\d+)", lines[2])
    assert m and (int(m.group(1)) == main) != FORKSERVER, out
    m = re.fullmatch(r"Process ID of sub-process which got created : (\d+)",
                     lines[3])
    assert m and int(m.group(1)) != main, out
    assert err == "", err
