/* harness.c: timing, statistics, child processes and the four loop shapes. */
#include "harness.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- results ------------------------------------------------------------ */

int bench_na(bench_result *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->why, sizeof out->why, fmt, ap);
    va_end(ap);
    return BENCH_NA;
}

int bench_fail(bench_result *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->why, sizeof out->why, fmt, ap);
    va_end(ap);
    return BENCH_ERR;
}

void bench_set_rate(bench_result *out, uint64_t ops, uint64_t bytes, uint64_t ns)
{
    double s = ns > 0 ? (double)ns / 1e9 : 1e-9;
    out->ops_per_s = (double)ops / s;
    out->bytes_per_s = (double)bytes / s;
    out->n = ops;
}

/* ---- time --------------------------------------------------------------- */

void bench_window_init(bench_window *w, const bench_ctx *ctx)
{
    w->start = bench_ns();
    w->measure = w->start + (uint64_t)(ctx->warmup * 1e9);
    w->end = w->measure + (uint64_t)(ctx->duration * 1e9);
}

/* ---- latency samples ---------------------------------------------------- */

void bench_lat_init(bench_lat *l)
{
    l->ns = NULL;
    l->n = 0;
    l->cap = 0;
}

bool bench_lat_add(bench_lat *l, uint64_t ns)
{
    if (l->n == l->cap) {
        if (l->cap >= BENCH_LAT_MAX_SAMPLES)
            return false;
        size_t cap = l->cap ? l->cap * 2 : 4096;
        uint64_t *p = realloc(l->ns, cap * sizeof *p);
        if (p == NULL)
            return false;
        l->ns = p;
        l->cap = cap;
    }
    l->ns[l->n++] = ns;
    return true;
}

void bench_lat_free(bench_lat *l)
{
    free(l->ns);
    bench_lat_init(l);
}

/* Quickselect (Wirth): put the k-th smallest of a[0..n) at a[k]. */
static void select_kth(uint64_t *a, size_t n, size_t k)
{
    ptrdiff_t l = 0, r = (ptrdiff_t)n - 1, kk = (ptrdiff_t)k;
    while (l < r) {
        uint64_t x = a[kk];
        ptrdiff_t i = l, j = r;
        do {
            while (a[i] < x)
                i++;
            while (x < a[j])
                j--;
            if (i <= j) {
                uint64_t t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                j--;
            }
        } while (i <= j);
        if (j < kk)
            l = i;
        if (kk < i)
            r = j;
    }
}

/* Nearest-rank percentile: the smallest sample with at least q*n samples
 * at or below it.  bench_cpython.py uses the same definition. */
static double percentile(uint64_t *a, size_t n, double q)
{
    size_t rank = (size_t)(q * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    select_kth(a, n, rank - 1);
    return (double)a[rank - 1] / 1e9;
}

int bench_lat_finish(bench_lat *l, bench_result *out)
{
    if (l->n == 0) {
        bench_lat_free(l);
        return bench_fail(out, "no latency sample");
    }
    out->p50 = percentile(l->ns, l->n, 0.50);
    out->p99 = percentile(l->ns, l->n, 0.99);
    out->p999 = percentile(l->ns, l->n, 0.999);
    out->n = l->n;
    bench_lat_free(l);
    return BENCH_OK;
}

/* ---- spinning ----------------------------------------------------------- */

void bench_poll_pause(unsigned *spins)
{
    if ((++*spins & 1023) == 0)
        sched_yield();
    else
        bench_cpu_relax();
}

/* ---- processes and shared memory ---------------------------------------- */

void *bench_shared_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void bench_shared_unmap(void *p, size_t size)
{
    if (p != NULL)
        munmap(p, size);
}

static cpu_set_t saved_mask;
static bool mask_saved;

static void pin_to(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

pid_t bench_child_start(const bench_ctx *ctx, int (*fn)(void *), void *arg)
{
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0) {
        if (pid > 0 && ctx->pin && !mask_saved &&
            sched_getaffinity(0, sizeof saved_mask, &saved_mask) == 0) {
            mask_saved = true;
            pin_to(0);
        }
        return pid;
    }
    /* The child: never outlive the harness, even when it is killed. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(99);
    if (ctx->pin)
        pin_to(1);
    _exit(fn(arg) & 0xff);
}

static void unpin(void)
{
    if (mask_saved) {
        sched_setaffinity(0, sizeof saved_mask, &saved_mask);
        mask_saved = false;
    }
}

int bench_child_wait(pid_t pid, bench_result *out)
{
    int st;
    pid_t r;
    do
        r = waitpid(pid, &st, 0);
    while (r < 0 && errno == EINTR);
    unpin();
    if (r < 0)
        return bench_fail(out, "waitpid: %s", strerror(errno));
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return BENCH_OK;
    if (WIFEXITED(st))
        return bench_fail(out, "child exited with %d", WEXITSTATUS(st));
    return bench_fail(out, "child killed by signal %d", WTERMSIG(st));
}

void bench_child_kill(pid_t pid)
{
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    unpin();
}

/*
 * Wait until *flag is nonzero, checking now and then that the child still
 * runs, so that a child that died early is an error and not a hang.
 */
static int wait_flag(const _Atomic uint32_t *flag, pid_t child, bench_result *out)
{
    unsigned spins = 0;
    while (atomic_load(flag) == 0) {
        bench_poll_pause(&spins);
        if (spins == 0 || (spins & 1023) == 1023) {
            int st;
            if (waitpid(child, &st, WNOHANG) == child) {
                unpin();
                return bench_fail(out, "child ended before starting (status %d)", st);
            }
        }
    }
    return BENCH_OK;
}

/* ---- one process -------------------------------------------------------- */

int bench_run_batches(const bench_ctx *ctx, bench_batch_fn fn, void *arg, uint64_t batch,
                      uint64_t bytes_per_op, bench_result *out)
{
    bench_window w;
    bench_window_init(&w, ctx);
    uint64_t ops = 0, t0 = 0, now;
    bool measuring = false;
    for (;;) {
        int r = fn(arg, batch);
        if (r != 0)
            return bench_fail(out, "operation failed: %d", r);
        now = bench_ns();
        if (!measuring) {
            if (now >= w.measure) {
                measuring = true;
                t0 = now;
            }
            continue;
        }
        ops += batch;
        if (now - t0 >= w.end - w.measure)
            break;
    }
    bench_set_rate(out, ops, ops * bytes_per_op, now - t0);
    return BENCH_OK;
}

/* ---- two processes, the same loop --------------------------------------- */

struct pair_ctl {
    _Atomic uint32_t ready, go, stop;
    _Atomic int32_t err;
    _Atomic uint64_t child_ops;
};

struct pair_child {
    struct pair_ctl *ctl;
    bench_batch_fn fn;
    void *arg;
    uint64_t batch;
};

static int pair_child_main(void *p)
{
    struct pair_child *c = p;
    struct pair_ctl *ctl = c->ctl;
    unsigned spins = 0;
    uint64_t ops = 0;
    atomic_store(&ctl->ready, 1);
    while (atomic_load(&ctl->go) == 0)
        bench_poll_pause(&spins);
    while (atomic_load_explicit(&ctl->stop, memory_order_relaxed) == 0) {
        int r = c->fn(c->arg, c->batch);
        if (r != 0) {
            atomic_store(&ctl->err, r);
            return 1;
        }
        ops += c->batch;
        atomic_store_explicit(&ctl->child_ops, ops, memory_order_relaxed);
    }
    return 0;
}

int bench_run_pair(const bench_ctx *ctx, bench_batch_fn fn, void *arg, uint64_t batch,
                   bench_result *out, uint64_t *total_ops)
{
    struct pair_ctl *ctl = bench_shared_map(sizeof *ctl);
    if (ctl == NULL)
        return bench_fail(out, "mmap: %s", strerror(errno));
    struct pair_child c = {ctl, fn, arg, batch};
    pid_t pid = bench_child_start(ctx, pair_child_main, &c);
    if (pid < 0) {
        bench_shared_unmap(ctl, sizeof *ctl);
        return bench_fail(out, "fork: %s", strerror(errno));
    }
    int rc = wait_flag(&ctl->ready, pid, out);
    if (rc != BENCH_OK) {
        bench_shared_unmap(ctl, sizeof *ctl);
        return rc;
    }
    atomic_store(&ctl->go, 1);
    bench_window w;
    bench_window_init(&w, ctx);
    uint64_t ops = 0, own0 = 0, child0 = 0, t0 = 0, now, span;
    uint64_t own1 = 0, child1 = 0;
    bool measuring = false;
    span = w.end - w.measure;
    for (;;) {
        int r = fn(arg, batch);
        if (r != 0) {
            atomic_store(&ctl->stop, 1);
            bench_child_kill(pid);
            bench_shared_unmap(ctl, sizeof *ctl);
            return bench_fail(out, "operation failed in the parent: %d", r);
        }
        ops += batch;
        now = bench_ns();
        if (!measuring) {
            if (now >= w.measure) {
                measuring = true;
                t0 = now;
                own0 = ops;
                child0 = atomic_load(&ctl->child_ops);
            }
            continue;
        }
        if (now - t0 >= span) {
            own1 = ops;
            child1 = atomic_load(&ctl->child_ops);
            break;
        }
    }
    atomic_store(&ctl->stop, 1);
    rc = bench_child_wait(pid, out);
    if (rc == BENCH_OK && atomic_load(&ctl->err) != 0)
        rc = bench_fail(out, "operation failed in the child: %d", (int)atomic_load(&ctl->err));
    if (rc == BENCH_OK) {
        bench_set_rate(out, (own1 - own0) + (child1 - child0), 0, now - t0);
        if (total_ops != NULL)
            *total_ops = ops + atomic_load(&ctl->child_ops);
    }
    bench_shared_unmap(ctl, sizeof *ctl);
    return rc;
}

/* ---- round trips -------------------------------------------------------- */

struct pp_child {
    const bench_pingpong_ops *ops;
    void *arg;
};

static int pp_child_main(void *p)
{
    struct pp_child *c = p;
    return c->ops->serve(c->arg);
}

int bench_run_pingpong(const bench_ctx *ctx, const bench_pingpong_ops *ops, void *arg,
                       bench_result *out)
{
    struct pp_child c = {ops, arg};
    pid_t pid = bench_child_start(ctx, pp_child_main, &c);
    if (pid < 0)
        return bench_fail(out, "fork: %s", strerror(errno));
    bench_lat lat;
    bench_lat_init(&lat);
    bench_window w;
    bench_window_init(&w, ctx);
    for (;;) {
        uint64_t t0 = bench_ns();
        int r = ops->ping(arg);
        uint64_t t1 = bench_ns();
        if (r != 0) {
            bench_child_kill(pid);
            bench_lat_free(&lat);
            return bench_fail(out, "round trip failed: %d", r);
        }
        if (t0 >= w.measure && (!bench_lat_add(&lat, t1 - t0) || t1 >= w.end))
            break;
    }
    int r = ops->quit(arg);
    if (r != 0) {
        bench_child_kill(pid);
        bench_lat_free(&lat);
        return bench_fail(out, "quit failed: %d", r);
    }
    int rc = bench_child_wait(pid, out);
    if (rc != BENCH_OK) {
        bench_lat_free(&lat);
        return rc;
    }
    return bench_lat_finish(&lat, out);
}

/* ---- producer to consumer ----------------------------------------------- */

struct stream_child {
    const bench_stream_ops *ops;
    void *arg;
    _Atomic uint32_t *stop;
};

static int stream_child_main(void *p)
{
    struct stream_child *c = p;
    return c->ops->produce(c->arg, c->stop);
}

int bench_run_stream(const bench_ctx *ctx, const bench_stream_ops *ops, void *arg,
                     bench_result *out)
{
    _Atomic uint32_t *stop = bench_shared_map(sizeof *stop);
    if (stop == NULL)
        return bench_fail(out, "mmap: %s", strerror(errno));
    struct stream_child c = {ops, arg, stop};
    pid_t pid = bench_child_start(ctx, stream_child_main, &c);
    if (pid < 0) {
        bench_shared_unmap(stop, sizeof *stop);
        return bench_fail(out, "fork: %s", strerror(errno));
    }
    bench_window w;
    bench_window_init(&w, ctx);
    uint64_t msgs = 0, bytes = 0, m0 = 0, b0 = 0, t0 = 0, now;
    bool measuring = false;
    for (;;) {
        int r = ops->consume(arg, &msgs, &bytes);
        now = bench_ns();
        if (r < 0) {
            bench_child_kill(pid);
            bench_shared_unmap(stop, sizeof *stop);
            return bench_fail(out, "receive failed: %d", r);
        }
        if (r > 0)
            break;
        if (!measuring && now >= w.measure) {
            measuring = true;
            t0 = now;
            m0 = msgs;
            b0 = bytes;
        } else if (measuring && now >= w.end) {
            atomic_store(stop, 1);
        }
    }
    int rc = bench_child_wait(pid, out);
    bench_shared_unmap(stop, sizeof *stop);
    if (rc != BENCH_OK)
        return rc;
    if (!measuring)
        return bench_fail(out, "the producer stopped before the warm-up ended");
    bench_set_rate(out, msgs - m0, bytes - b0, now - t0);
    return BENCH_OK;
}
