#!/usr/bin/env python3
"""Run one example program and check its output.

Usage: run.py NAME PROGRAM [ARGS...]

The program runs in a session of its own.  The check for NAME lives in
check_NAME.py beside this file and defines check(out, err, code), which
raises AssertionError with a message when the output is wrong.  After the
program exits, no process it started may be left running (run.py is their
subreaper: the resource tracker, in a session of its own, must end too),
and none of the program's /dev/shm names (generated names carry the
family root's pid: mp_PIDHEX_...) nor its registry file may remain.  Other
programs' names, another test run's included, are not looked at.
"""
import ctypes
import importlib.util
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


PR_SET_CHILD_SUBREAPER = 36


def own_shm_entries(pid):
    """The program's names in /dev/shm, and its family registry files."""
    names = []
    try:
        names = [e for e in os.listdir("/dev/shm")
                 if e.startswith(f"mp_{pid:x}_")]
    except OSError:
        pass
    try:
        reg = f"/dev/shm/libmp-{os.geteuid()}"
        names += [reg + "/" + e for e in os.listdir(reg)
                  if e.startswith(f"fam-{pid}-")]
    except OSError:
        pass
    return sorted(names)


def reap_children(deadline):
    """Reap the program's descendants (ours as subreaper) until none is
    left or the deadline passes; the pids still alive then."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return []
        if pid == 0:
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
    left = []
    for t in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{t}/children") as f:
                left += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return left


def session_members(sid):
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                pids.append(int(d))
        except (OSError, IndexError, ValueError):
            pass
    return pids


def main():
    name, prog, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    prog = os.path.abspath(prog)  # the program runs with cwd=HERE
    spec = importlib.util.spec_from_file_location(
        "check_" + name, os.path.join(HERE, "check_" + name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    p = subprocess.Popen([prog] + args + list(getattr(mod, "ARGS", [])),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True, text=True, cwd=HERE)
    try:
        out, err = p.communicate(timeout=getattr(mod, "TIMEOUT", 60))
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        print(out)
        print(err, file=sys.stderr)
        print(f"FAIL {name}: timed out", file=sys.stderr)
        return 1
    sys.stdout.write(out)
    sys.stderr.write(err)
    # Children of a finished program may need a moment to be reaped by init.
    deadline = time.monotonic() + 5
    left = session_members(p.pid)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = session_members(p.pid)
    left += [c for c in reap_children(deadline) if c not in left]
    if left:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        reap_children(time.monotonic() + 5)
        print(f"FAIL {name}: processes left running: {left}", file=sys.stderr)
        return 1
    leaked = own_shm_entries(p.pid)
    if leaked:
        print(f"FAIL {name}: /dev/shm entries left: {sorted(leaked)}",
              file=sys.stderr)
        return 1
    try:
        mod.check(out, err, p.returncode)
    except AssertionError as e:
        print(f"FAIL {name}: {e}", file=sys.stderr)
        return 1
    print(f"PASS {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
