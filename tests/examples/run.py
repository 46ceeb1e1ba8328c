#!/usr/bin/env python3
"""Run one example program and check its output.

Usage: run.py NAME PROGRAM [ARGS...]

The program runs in a session of its own.  The check for NAME lives in
check_NAME.py beside this file and defines check(out, err, code), which
raises AssertionError with a message when the output is wrong.  After the
program exits, no process of its session may be left running and no new
/dev/shm entry may remain.
"""
import importlib.util
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def shm_entries():
    try:
        return set(os.listdir("/dev/shm"))
    except OSError:
        return set()


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
    before = shm_entries()
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
    if left:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        print(f"FAIL {name}: processes left running: {left}", file=sys.stderr)
        return 1
    leaked = shm_entries() - before
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
