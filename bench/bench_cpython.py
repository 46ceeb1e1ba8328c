#!/usr/bin/env python3
"""CPython's multiprocessing doing what mpbench measures for libmp.

mpbench (bench/mpbench.c) runs this script once per figure and repeat
(--repeats 1 --ids ID), between the libmp and raw C figures of the same id,
and takes the medians itself.  It can also be run alone:

    python3 bench/bench_cpython.py [--duration S] [--warmup S] [--repeats N]
                                   [--ids ID,ID,...] [--json-out FILE] [--quiet]

and prints (or writes to FILE) one JSON object:

    {"python": "3.11.7 ...", "executable": "/usr/bin/python3",
     "results": {"<id>": {"p50": s, "p99": s, "p999": s, "n": N, "reps": [...]},
                 "<id>": {"rate": per_s, "bytes_per_s": B, "n": N, "reps": [...]},
                 "<id>": {"error": "message"}}}

Latencies are in seconds (percentiles by nearest rank over every timed round
trip of a repeat, as the C harness computes them); rates are per second.
Each figure is measured --repeats times and the median of each statistic is
reported; "reps" holds the headline value (p50 or rate) of each repeat.
Progress goes to stderr.  Every figure other than process start uses the
"fork" context, so that setting up is cheap; the operation measured does
not depend on the start method.
"""

import argparse
import json
import math
import multiprocessing as mp
import os
import statistics
import sys
import time

now = time.perf_counter_ns

MSG64 = b"m" * 64


# ---- targets run in other processes (module level, so spawn can find them) ---

def noop():
    pass


def ident(x):
    return x


def _pair_child(body, args, ctl):
    """Run body in a loop beside the parent; ctl = [ready, go, stop, count]."""
    ctl[0] = 1
    while ctl[1] == 0:
        pass
    n = 0
    while ctl[2] == 0:
        n += body(64, *args)
        ctl[3] = n


def _lock_body(n, lock):
    acquire, release = lock.acquire, lock.release
    for _ in range(n):
        acquire()
        release()
    return n


def _value_body(n, value):
    lock = value.get_lock()
    for _ in range(n):
        with lock:
            value.value += 1
    return n


def _event_serve(ping, pong, quit_flag):
    while True:
        ping.wait()
        ping.clear()
        if quit_flag.value:
            return
        pong.set()


def _queue_serve(q_in, q_out):
    while True:
        m = q_in.get()
        if m is None:
            return
        q_out.put(m)


def _pipe_serve(r, w):
    while True:
        m = r.recv_bytes()
        if m == b"q":
            return
        w.send_bytes(m)


def _queue_produce(q, size, stop):
    msg = b"x" * size
    put = q.put
    while not stop.value:
        for _ in range(16):
            put(msg)
    put(None)


# ---- statistics -------------------------------------------------------------

def percentile(sorted_ns, q):
    """Nearest rank: the smallest sample with at least q*n samples <= it."""
    n = len(sorted_ns)
    rank = min(n, max(1, math.ceil(q * n)))
    return sorted_ns[rank - 1] / 1e9


def latency(samples_ns):
    s = sorted(samples_ns)
    return {"p50": percentile(s, 0.50), "p99": percentile(s, 0.99),
            "p999": percentile(s, 0.999), "n": len(s)}


def rate(ops, elapsed_ns, bytes_per_op=0):
    sec = max(elapsed_ns, 1) / 1e9
    return {"rate": ops / sec, "bytes_per_s": ops * bytes_per_op / sec,
            "n": ops}


class Window:
    """Warm-up until .measure, then measure until .end (perf_counter ns)."""

    def __init__(self, opts):
        self.start = now()
        self.measure = self.start + int(opts.warmup * 1e9)
        self.end = self.measure + int(opts.duration * 1e9)


# ---- shapes -----------------------------------------------------------------

def timed_loop(opts, one, min_samples=5):
    """Time each call of one() after the warm-up (at least one call)."""
    w = Window(opts)
    samples = []
    warmed = False
    while True:
        t0 = now()
        one()
        t1 = now()
        if warmed and t0 >= w.measure:
            samples.append(t1 - t0)
            if t1 >= w.end and len(samples) >= min_samples:
                return latency(samples)
        warmed = True


def batch_loop(opts, body, batch):
    """body(batch) in a loop; rate over the window after the warm-up."""
    w = Window(opts)
    while now() < w.measure:
        body(batch)
    ops = 0
    t0 = now()
    while True:
        body(batch)
        ops += batch
        t1 = now()
        if t1 - t0 >= w.end - w.measure:
            return rate(ops, t1 - t0)


def pair_loop(ctx, opts, body, args):
    """body in the parent and in a child at once; total rate of both."""
    ctl = ctx.RawArray("q", 4)
    p = ctx.Process(target=_pair_child, args=(body, args, ctl))
    p.start()
    try:
        while ctl[0] == 0:
            if not p.is_alive():
                raise RuntimeError("child ended before starting")
        ctl[1] = 1
        w = Window(opts)
        own = 0
        while now() < w.measure:
            own += body(64, *args)
        own0, child0, t0 = own, ctl[3], now()
        while True:
            own += body(64, *args)
            t1 = now()
            if t1 - t0 >= w.end - w.measure:
                break
        own1, child1 = own, ctl[3]
    finally:
        ctl[2] = 1
        p.join()
    if p.exitcode != 0:
        raise RuntimeError("child exit code %s" % p.exitcode)
    return rate((own1 - own0) + (child1 - child0), t1 - t0), own + ctl[3]


def pingpong(ctx, opts, serve, serve_args, ping, quit_):
    p = ctx.Process(target=serve, args=serve_args)
    p.start()
    try:
        result = timed_loop(opts, ping, min_samples=100)
    finally:
        quit_()
        p.join()
    if p.exitcode != 0:
        raise RuntimeError("child exit code %s" % p.exitcode)
    return result


def sized_rate(opts, run):
    """run(n) performs n tasks.  Grow n until one call lasts the warm-up,
    then time one call sized to last the duration."""
    n = 64
    while True:
        t0 = now()
        run(n)
        dt = now() - t0
        if dt >= opts.warmup * 1e9 or n >= 1 << 26:
            break
        n *= 4 if dt < opts.warmup * 1e8 else 2
    n = max(n, int(n * opts.duration * 1e9 / max(dt, 1)))
    t0 = now()
    run(n)
    return rate(n, now() - t0)


# ---- the figures ------------------------------------------------------------

FORK = mp.get_context("fork")


def process_start(method):
    def bench(opts):
        ctx = mp.get_context(method)

        def one():
            p = ctx.Process(target=noop)
            p.start()
            p.join()
            if p.exitcode != 0:
                raise RuntimeError("exit code %s" % p.exitcode)
        return timed_loop(opts, one)
    return bench


def lock_uncontended(opts):
    lock = FORK.Lock()
    return batch_loop(opts, lambda n: _lock_body(n, lock), 1000)


def lock_contended(opts):
    return pair_loop(FORK, opts, _lock_body, (FORK.Lock(),))[0]


def value_contended(opts):
    v = FORK.Value("q", 0)
    result, total = pair_loop(FORK, opts, _value_body, (v,))
    if v.value != total:
        raise RuntimeError("value %d, expected %d" % (v.value, total))
    return result


def event_pingpong(opts):
    ping, pong, quit_flag = FORK.Event(), FORK.Event(), FORK.RawValue("b", 0)

    def one():
        ping.set()
        pong.wait()
        pong.clear()

    def quit_():
        quit_flag.value = 1
        ping.set()
    return pingpong(FORK, opts, _event_serve, (ping, pong, quit_flag), one,
                    quit_)


def queue_stream(size, maxsize):
    def bench(opts):
        q = FORK.Queue(maxsize)
        stop = FORK.RawValue("b", 0)
        p = FORK.Process(target=_queue_produce, args=(q, size, stop))
        p.start()
        w = Window(opts)
        get = q.get
        msgs = 0
        m0 = t0 = None
        try:
            while True:
                m = get()
                t = now()
                if m is None:
                    break
                msgs += 1
                if m0 is None:
                    if t >= w.measure:
                        m0, t0 = msgs, t
                elif t >= w.end:
                    stop.value = 1
        finally:
            stop.value = 1
            p.join()
        if p.exitcode != 0:
            raise RuntimeError("producer exit code %s" % p.exitcode)
        return rate(msgs - m0, t - t0, size)
    return bench


def queue_pingpong(opts):
    a, b = FORK.Queue(), FORK.Queue()

    def one():
        a.put(MSG64)
        b.get()
    return pingpong(FORK, opts, _queue_serve, (a, b), one,
                    lambda: a.put(None))


def pipe_rtt(opts):
    # Two one-way pipes, as the raw figure uses two pipe(2)s.
    r1, w1 = FORK.Pipe(duplex=False)
    r2, w2 = FORK.Pipe(duplex=False)

    def one():
        w1.send_bytes(MSG64)
        r2.recv_bytes()
    return pingpong(FORK, opts, _pipe_serve, (r1, w2), one,
                    lambda: w1.send_bytes(b"q"))


def pipe_rtt_duplex(opts):
    # One duplex Pipe(), Python's default (a socketpair).
    a, b = FORK.Pipe()

    def one():
        a.send_bytes(MSG64)
        a.recv_bytes()
    return pingpong(FORK, opts, _pipe_serve, (b, b), one,
                    lambda: a.send_bytes(b"q"))


def pool_figure(run):
    def bench(opts):
        with FORK.Pool(os.cpu_count()) as pool:
            pool.map(ident, range(100))
            result = sized_rate(opts, lambda n: run(pool, n))
            pool.close()
            pool.join()
        return result
    return bench


def _map_cs1(pool, n):
    pool.map(ident, range(n), chunksize=1)


def _map_default(pool, n):
    pool.map(ident, range(n))


def _apply_async(pool, n):
    results = [pool.apply_async(ident, (i,)) for i in range(n)]
    for r in results:
        r.get()


def _imap_unordered(pool, n):
    for _ in pool.imap_unordered(ident, range(n)):
        pass


# ---- mpi4py.futures (pool.mpi.*): MPIPoolExecutor with 2 spawned workers ---

def _mpi_elsewhere(fid, opts):
    """This interpreter has no mpi4py: run the figure under Debian's
    /usr/bin/python3 (python3-mpi4py), once, and take its result."""
    import subprocess
    import tempfile
    py = "/usr/bin/python3"
    if os.path.realpath(sys.executable) == os.path.realpath(py) or not os.path.exists(py):
        raise RuntimeError("mpi4py is not installed (python3-mpi4py)")
    with tempfile.NamedTemporaryFile("r", suffix=".json") as f:
        subprocess.run([py, os.path.abspath(__file__), "--ids", fid, "--repeats", "1",
                        "--duration", str(opts.duration), "--warmup", str(opts.warmup),
                        "--json-out", f.name, "--quiet"], check=True, timeout=600)
        r = json.load(f)["results"][fid]
    if "error" in r:
        raise RuntimeError(r["error"])
    return {"rate": r["rate"], "bytes_per_s": r.get("bytes_per_s", 0), "n": r["n"]}


def mpi_pool_figure(fid, run):
    def bench(opts):
        try:
            from mpi4py.futures import MPIPoolExecutor
        except ImportError:
            return _mpi_elsewhere(fid, opts)
        with MPIPoolExecutor(max_workers=2) as ex:
            list(ex.map(ident, range(100)))
            return sized_rate(opts, lambda n: run(ex, n))
    return bench


def _mpi_map_cs1(ex, n):
    for _ in ex.map(ident, range(n), chunksize=1):
        pass


def _mpi_map_default(ex, n):
    # Python's Pool rule for the chunk size, as the libmp figure uses.
    for _ in ex.map(ident, range(n), chunksize=max(1, -(-n // 8))):
        pass


def _mpi_apply_async(ex, n):
    futures = [ex.submit(ident, i) for i in range(n)]
    for f in futures:
        f.result()


def manager_dict(opts):
    with FORK.Manager() as m:
        d = m.dict()

        def body(n):
            for i in range(n // 2):
                d["k"] = i
                d["k"]
        return batch_loop(opts, body, 100)


FIGURES = {
    "process.fork": process_start("fork"),
    "process.spawn": process_start("spawn"),
    "process.forkserver": process_start("forkserver"),
    "lock.uncontended": lock_uncontended,
    "lock.contended": lock_contended,
    "value.contended": value_contended,
    "event.pingpong": event_pingpong,
    "queue.64B": queue_stream(64, 1024),
    "queue.1MiB": queue_stream(1 << 20, 4),
    "queue.pingpong": queue_pingpong,
    "pipe.rtt": pipe_rtt,
    "pipe.rtt_duplex": pipe_rtt_duplex,
    "pool.map_cs1": pool_figure(_map_cs1),
    "pool.map_default": pool_figure(_map_default),
    "pool.apply_async": pool_figure(_apply_async),
    "pool.imap_unordered": pool_figure(_imap_unordered),
    "manager.dict": manager_dict,
    "pool.mpi.map_cs1": mpi_pool_figure("pool.mpi.map_cs1", _mpi_map_cs1),
    "pool.mpi.map_default": mpi_pool_figure("pool.mpi.map_default", _mpi_map_default),
    "pool.mpi.apply_async": mpi_pool_figure("pool.mpi.apply_async", _mpi_apply_async),
}


# ---- driver -----------------------------------------------------------------

def measure(fid, fn, opts):
    reps = []
    for _ in range(opts.repeats):
        reps.append(fn(opts))
    result = {}
    for key in reps[0]:
        values = [r[key] for r in reps]
        result[key] = statistics.median(values)
    head = "p50" if "p50" in reps[0] else "rate"
    result["reps"] = [r[head] for r in reps]
    result["n"] = sum(r["n"] for r in reps)
    return result


def show(fid, r):
    if "error" in r:
        text = "error: " + r["error"]
    elif "p50" in r:
        text = "p50 %.1f us, p99 %.1f us" % (r["p50"] * 1e6, r["p99"] * 1e6)
    else:
        text = "%.4g /s" % r["rate"]
        if r["bytes_per_s"]:
            text += ", %.3g GB/s" % (r["bytes_per_s"] / 1e9)
    print("  %-22s %s" % (fid, text), file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=0.25)
    ap.add_argument("--warmup", type=float, default=0.05)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ids", default=",".join(FIGURES))
    ap.add_argument("--json-out", help="write the JSON here, not to stdout")
    ap.add_argument("--quiet", action="store_true",
                    help="no progress on stderr")
    opts = ap.parse_args()
    if opts.repeats < 1 or opts.duration <= 0 or opts.warmup < 0:
        ap.error("bad --repeats, --duration or --warmup")
    results = {}
    for fid in [i for i in opts.ids.split(",") if i]:
        fn = FIGURES.get(fid)
        if fn is None:
            results[fid] = {"error": "no such figure in bench_cpython.py"}
        else:
            try:
                results[fid] = measure(fid, fn, opts)
            except Exception as e:  # report it in the table, go on
                results[fid] = {"error": "%s: %s" % (type(e).__name__, e)}
        if not opts.quiet:
            show(fid, results[fid])
    out = {"python": sys.version.replace("\n", " "),
           "executable": sys.executable, "results": results}
    text = json.dumps(out, indent=1)
    if opts.json_out:
        with open(opts.json_out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
