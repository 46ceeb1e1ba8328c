"""test_ctypes: Python drives libmp through ctypes.

Usage: test_ctypes.py PATH/TO/libmp.so

Python loads the library with dlopen after it started (so the library must
carry no static TLS), makes a Lock and a Queue, forks with os.fork, and the
two processes hand the lock over and talk through the queue; then a child
that dies holding the lock hands it to the parent with MP_EOWNERDEAD.
Exits 0 when every check passed, 1 with a message otherwise.
"""
import ctypes
import os
import sys

FOREVER = -1.0


class LockOptions(ctypes.Structure):
    _fields_ = [("reserved_", ctypes.c_int), ("ctx", ctypes.c_void_p)]


class QueueOptions(ctypes.Structure):
    _fields_ = [("reserved_", ctypes.c_int), ("maxsize", ctypes.c_long),
                ("capacity", ctypes.c_size_t), ("slot_size", ctypes.c_size_t),
                ("ctx", ctypes.c_void_p)]


def load(path):
    lib = ctypes.CDLL(path)
    vp, i, d, sz = ctypes.c_void_p, ctypes.c_int, ctypes.c_double, ctypes.c_size_t
    sigs = {
        "mp_lock_new_opts": (vp, [ctypes.POINTER(LockOptions)]),
        "mp_lock_acquire": (i, [vp, d]),
        "mp_lock_release": (i, [vp]),
        "mp_lock_free": (None, [vp]),
        "mp_queue_new_opts": (vp, [ctypes.POINTER(QueueOptions)]),
        "mp_queue_put": (i, [vp, ctypes.c_char_p, sz, d]),
        "mp_queue_get": (i, [vp, ctypes.c_char_p, sz, ctypes.POINTER(sz), d]),
        "mp_queue_close": (i, [vp]),
        "mp_queue_free": (None, [vp]),
        "mp_err_name": (ctypes.c_char_p, [i]),
    }
    for name, (res, args) in sigs.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args
    return lib


def name(lib, code):
    return lib.mp_err_name(code).decode()


def main():
    lib = load(sys.argv[1])
    lock = lib.mp_lock_new_opts(ctypes.byref(LockOptions()))
    q = lib.mp_queue_new_opts(ctypes.byref(QueueOptions()))
    assert lock and q, "mp_lock_new / mp_queue_new failed"

    def get():
        buf = ctypes.create_string_buffer(64)
        n = ctypes.c_size_t()
        r = lib.mp_queue_get(q, buf, len(buf), ctypes.byref(n), 30.0)
        assert r == 0, f"mp_queue_get: {name(lib, r)}"
        return buf.raw[:n.value].decode()

    def put(text):
        data = text.encode()
        return lib.mp_queue_put(q, data, len(data), FOREVER)

    # 1. The parent holds the lock; the child sees it held, waits for it,
    #    and reports each step through the queue.
    assert lib.mp_lock_acquire(lock, FOREVER) == 0
    pid = os.fork()
    if pid == 0:
        code = 0
        r = lib.mp_lock_acquire(lock, 0.0)
        if put(f"try {name(lib, r)}") != 0:
            code = 2
        r = lib.mp_lock_acquire(lock, 30.0)
        if put(f"acquire {name(lib, r)}") != 0 or lib.mp_lock_release(lock) != 0:
            code = 3
        os._exit(code)
    assert get() == "try MP_ETIMEDOUT"
    assert lib.mp_lock_release(lock) == 0
    assert get() == "acquire OK"
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status

    # 2. A child that exits holding the lock: its death hands it over.
    pid = os.fork()
    if pid == 0:
        r = lib.mp_lock_acquire(lock, FOREVER)
        put(f"holding {name(lib, r)}")
        os._exit(0)
    assert get() == "holding OK"
    _, status = os.waitpid(pid, 0)
    r = lib.mp_lock_acquire(lock, 30.0)
    assert name(lib, r) == "MP_EOWNERDEAD", name(lib, r)
    assert lib.mp_lock_release(lock) == 0

    assert lib.mp_queue_close(q) == 0
    lib.mp_queue_free(q)
    lib.mp_lock_free(lock)
    print("ctypes: Lock and Queue between two processes: ok")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
