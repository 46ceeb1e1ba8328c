/*
 * harness.h: what a benchmark function of mpbench sees.
 *
 * A benchmark is a function
 *
 *     int fn(const bench_ctx *ctx, bench_result *out);
 *
 * that measures one figure once (one repeat) and fills *out: latency
 * percentiles (p50, p99, p99.9, in seconds) or a rate (operations and bytes
 * per second).  It returns BENCH_OK, BENCH_NA when the figure cannot be
 * measured in this build (a libmp module that has not landed yet), or
 * BENCH_ERR after writing the reason into out->why.  The driver (mpbench.c)
 * calls it ctx->repeats times and keeps the median of each statistic.
 *
 * Most benchmarks are one of four shapes, each with a helper below, so that
 * adding a figure is a small function:
 *   bench_run_batches   one process, a loop timed for ctx->duration
 *                       (mutex lock+unlock, malloc, memcpy);
 *   bench_run_pair      two processes running the same loop at once
 *                       (contended lock, shared counter);
 *   bench_run_pingpong  round trips between two processes, each one timed
 *                       (pipe, futex, Event, Queue ping-pong);
 *   bench_run_stream    a producer process and a consumer process
 *                       (ring or queue throughput).
 * Latency loops that are neither (process start+join) use bench_window and
 * bench_lat directly.
 */
#ifndef MPBENCH_HARNESS_H
#define MPBENCH_HARNESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

enum { BENCH_OK = 0, BENCH_NA = 1, BENCH_ERR = -1 };

/* The argument that makes the bench binary exit at once (raw posix_spawn). */
#define BENCH_EXIT_NOW_FLAG "--exit-now"

typedef struct bench_ctx {
    double duration;      /* seconds measured per repeat */
    double warmup;        /* seconds run before measuring, per repeat */
    bool pin;             /* pin the two processes of a pair to cpus 0, 1 */
    const char *self_exe; /* path of this executable (for spawn) */
} bench_ctx;

typedef struct bench_result {
    double p50, p99, p999; /* latency, seconds (0 when not a latency) */
    double ops_per_s;      /* operations per second */
    double bytes_per_s;    /* payload bytes per second */
    uint64_t n;            /* samples (latency) or operations measured */
    char why[200];         /* reason for BENCH_NA or BENCH_ERR */
} bench_result;

typedef int (*bench_fn)(const bench_ctx *ctx, bench_result *out);

/* ---- results ------------------------------------------------------------ */

/* Write the reason and return BENCH_NA / BENCH_ERR. */
int bench_na(bench_result *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int bench_fail(bench_result *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Fill the rate fields from a count of operations and bytes over ns. */
void bench_set_rate(bench_result *out, uint64_t ops, uint64_t bytes, uint64_t ns);

/* ---- time --------------------------------------------------------------- */

static inline uint64_t bench_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A repeat's timeline: warm-up until .measure, then measure until .end. */
typedef struct bench_window {
    uint64_t start, measure, end;
} bench_window;

void bench_window_init(bench_window *w, const bench_ctx *ctx);

/* ---- latency samples ---------------------------------------------------- */

typedef struct bench_lat {
    uint64_t *ns;
    size_t n, cap;
} bench_lat;

#define BENCH_LAT_MAX_SAMPLES ((size_t)4 << 20)

void bench_lat_init(bench_lat *l);
/* Record one sample; false when the buffer is full (stop measuring). */
bool bench_lat_add(bench_lat *l, uint64_t ns);
/*
 * Compute p50/p99/p99.9 (nearest rank) into *out and free the samples.
 * Returns BENCH_OK, or BENCH_ERR when there are no samples.
 */
int bench_lat_finish(bench_lat *l, bench_result *out);
void bench_lat_free(bench_lat *l);

/* ---- spinning ----------------------------------------------------------- */

static inline void bench_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/*
 * One step of a busy-poll wait: spins, and after a few thousand fruitless
 * polls gives the cpu away with sched_yield(), so that a busy-poll pair does
 * not starve when the two processes share a core (the machine has 2 cores
 * and other load).  *spins counts the polls; reset it after progress.
 */
void bench_poll_pause(unsigned *spins);

/* ---- processes and shared memory ---------------------------------------- */

/* Zeroed MAP_SHARED anonymous memory, inherited by forked children; NULL on
 * failure. */
void *bench_shared_map(size_t size);
void bench_shared_unmap(void *p, size_t size);

/*
 * Fork a child that runs fn(arg) and _exits with its return value.  The
 * child dies with the parent (PR_SET_PDEATHSIG).  With ctx->pin the parent
 * is pinned to cpu 0 and the child to cpu 1 until bench_child_wait.
 * Returns the pid, or -1 with errno set.
 */
pid_t bench_child_start(const bench_ctx *ctx, int (*fn)(void *), void *arg);
/*
 * Wait for a child from bench_child_start.  Returns BENCH_OK when it exited
 * with 0, BENCH_ERR with the reason in out->why otherwise.
 */
int bench_child_wait(pid_t pid, bench_result *out);
/* Kill (SIGKILL) and reap a child after a failure in the parent. */
void bench_child_kill(pid_t pid);

/* ---- the four shapes ---------------------------------------------------- */

/*
 * A loop body: perform n operations.  For bench_run_pair the same function
 * runs in both processes at once, on the same arg, so whatever it shares
 * must be in shared memory (bench_shared_map, or the libmp arena).
 */
typedef int (*bench_batch_fn)(void *arg, uint64_t n);

/*
 * Call fn(arg, batch) until ctx->warmup then ctx->duration have passed;
 * report operations/s, and bytes_per_op * operations/s as bytes/s.
 * A nonzero return from fn is an error.
 */
int bench_run_batches(const bench_ctx *ctx, bench_batch_fn fn, void *arg, uint64_t batch,
                      uint64_t bytes_per_op, bench_result *out);

/*
 * Run fn(arg, batch) in the parent and in a forked child at once for
 * ctx->duration after a warm-up; report the total operations/s of both.
 * *total_ops (may be NULL) receives every operation both performed,
 * warm-up included, for a correctness check.
 */
int bench_run_pair(const bench_ctx *ctx, bench_batch_fn fn, void *arg, uint64_t batch,
                   bench_result *out, uint64_t *total_ops);

/*
 * Round trips between the parent and a forked child.
 *   serve(arg)  in the child: answer pings until told to quit; its return
 *               value is the child's exit code (0 = fine).
 *   ping(arg)   in the parent: one round trip; 0 or an error.
 *   quit(arg)   in the parent: make serve return.
 * Every round trip after the warm-up is timed; reports p50/p99/p99.9.
 */
typedef struct bench_pingpong_ops {
    int (*serve)(void *arg);
    int (*ping)(void *arg);
    int (*quit)(void *arg);
} bench_pingpong_ops;

int bench_run_pingpong(const bench_ctx *ctx, const bench_pingpong_ops *ops, void *arg,
                       bench_result *out);

/*
 * Throughput from a producer (forked child) to a consumer (the parent).
 *   produce(arg, stop)  in the child: send messages until *stop becomes
 *                       nonzero (check it every few messages), then send
 *                       the end marker; returns the child's exit code.
 *   consume(arg, msgs, bytes)
 *                       in the parent: receive at least one message (or the
 *                       end marker); add the messages and payload bytes
 *                       received to *msgs and *bytes; return 1 when the end
 *                       marker was received, 0 otherwise, <0 on error.
 * The rate counts what the consumer received between the end of the
 * warm-up and the end marker.
 */
typedef struct bench_stream_ops {
    int (*produce)(void *arg, const _Atomic uint32_t *stop);
    int (*consume)(void *arg, uint64_t *msgs, uint64_t *bytes);
} bench_stream_ops;

int bench_run_stream(const bench_ctx *ctx, const bench_stream_ops *ops, void *arg,
                     bench_result *out);

#endif /* MPBENCH_HARNESS_H */
