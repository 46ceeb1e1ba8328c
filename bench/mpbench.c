/*
 * mpbench: libmp beside the raw OS mechanism and CPython's multiprocessing,
 * in one run.
 *
 *     meson compile -C build mpbench && build/bench/mpbench [options]
 *
 * See usage() and docs/performance.md.  Each row of the table below is one
 * operation: its libmp figure (lm_*), the raw figure it is built on (raw_*),
 * the CPython figure of the same id (bench_cpython.py), and the target of
 * the module's issue.  To add a figure, write the function (see harness.h
 * for the loop shapes) and add or complete a row.
 */
#include "benches.h"
#include "cpython.h"
#include "mpbench_version.h"

#include <libmp.h>

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#ifndef MPBENCH_PY_SCRIPT
#define MPBENCH_PY_SCRIPT "bench/bench_cpython.py"
#endif
#ifndef MPBENCH_BUILDTYPE
#define MPBENCH_BUILDTYPE "unknown"
#endif

/* ---- the operations ----------------------------------------------------- */

enum kind { LAT, RATE };
enum metric { M_P50, M_P99, M_P999, M_OPS, M_BYTES };
enum cmp { T_NONE, T_REL_LE, T_REL_GE, T_ABS_LE, T_ABS_GE, T_PY_GE };

typedef struct target {
    enum cmp cmp;
    enum metric metric; /* the line it applies to */
    double x;           /* a ratio to raw, or a value in the metric's unit */
} target;

typedef struct op {
    const char *id; /* matched by --filter; the key in the python JSON */
    const char *title;
    enum kind kind;
    const char *unit; /* RATE: the operation line's unit; NULL: none */
    bool bytes;       /* RATE: add a GB/s line */
    bench_fn libmp;   /* NULL: no libmp figure for this row */
    bench_fn raw;     /* NULL: no raw figure */
    bool python;      /* bench_cpython.py measures this id */
    target tgt;
    const char *raw_what; /* the legend: what the raw figure is */
} op;

#define NO_TARGET        \
    {                    \
        T_NONE, M_P50, 0 \
    }

static const op ops[] = {
    /* Processes (issue 5) */
    {"process.fork",
     "Process start+join, fork",
     LAT,
     NULL,
     false,
     lm_process_fork,
     raw_fork_waitpid,
     true,
     {T_REL_LE, M_P50, 1.3},
     "fork + waitpid of a child that _exits at once"},
    {"process.spawn",
     "Process start+join, spawn",
     LAT,
     NULL,
     false,
     lm_process_spawn,
     raw_posix_spawn,
     true,
     {T_REL_LE, M_P50, 1.5},
     "posix_spawn of this executable (exits at once in main) + waitpid"},
    {"process.forkserver",
     "Process start+join, forkserver",
     LAT,
     NULL,
     false,
     lm_process_forkserver,
     raw_fork_waitpid,
     true,
     {T_REL_LE, M_P50, 1.5},
     "fork + waitpid (the target compares forkserver to a raw fork)"},
    /* Synchronisation (issue 3) */
    {"lock.uncontended",
     "Lock acquire+release, 1 process",
     RATE,
     "ops/s",
     false,
     lm_lock_uncontended,
     raw_mutex_uncontended,
     true,
     {T_REL_GE, M_OPS, 0.9},
     "pthread_mutex_lock+unlock, PTHREAD_PROCESS_SHARED, in shared memory"},
    /*
     * The same libmp Lock beside a robust mutex, the other way to recover
     * from a holder's death (libmp uses one robust mutex per thread, its
     * life token, instead of one per lock); the target above is against a
     * plain one.
     */
    {"lock.vs_robust", "  Lock 1 process vs robust mutex", RATE, "ops/s", false,
     lm_lock_uncontended, raw_robust_mutex_uncontended, false, NO_TARGET,
     "pthread_mutex_lock+unlock, PROCESS_SHARED + ROBUST, 1 process (the "
     "usual owner-death-safe mutex)"},
    {"lock.contended", "Lock acquire+release, 2 procs", RATE, "ops/s", false,
     lm_lock_contended, raw_mutex_contended, true, NO_TARGET,
     "the same mutex, both processes looping at once (total of both)"},
    {"value.contended",
     "Value += 1 under lock, 2 procs",
     RATE,
     "incr/s",
     false,
     lm_value_contended,
     raw_mutex_counter,
     true,
     {T_REL_GE, M_OPS, 0.8},
     "lock; counter++; unlock on a pshared mutex by 2 processes (total)"},
    {"value.vs_robust", "  Value 2 procs vs robust mutex", RATE, "incr/s", false,
     lm_value_contended, raw_robust_mutex_counter, false, NO_TARGET,
     "lock; counter++; unlock on a PROCESS_SHARED + ROBUST mutex by 2 "
     "processes (total)"},
    {"event.pingpong",
     "Event ping-pong round trip",
     LAT,
     NULL,
     false,
     lm_event_pingpong,
     raw_futex_pingpong,
     true,
     {T_REL_LE, M_P50, 2.0},
     "futex ping-pong in shared memory (not FUTEX_PRIVATE): spin, then "
     "FUTEX_WAIT; FUTEX_WAKE only when the peer sleeps"},
    {"ref.sem", "  ref: sem_wait+sem_post pshared", RATE, "ops/s", false, NULL,
     raw_sem_uncontended, false, NO_TARGET,
     "sem_init(pshared = 1) semaphore of value 1, wait+post, 1 process"},
    {"ref.futex_sleep", "  ref: futex ping-pong, no spin", LAT, NULL, false, NULL,
     raw_futex_pingpong_sleep, false, NO_TARGET,
     "futex ping-pong where every wait is a FUTEX_WAIT and every post a "
     "FUTEX_WAKE (the kernel's wake-up cost)"},
    /* Queues and connections (issue 4) */
    {"queue.64B",
     "Queue 64 B, 1 producer 1 consumer",
     RATE,
     "msg/s",
     true,
     lm_queue_64,
     raw_ring_64,
     true,
     {T_ABS_GE, M_OPS, 30e6},
     "busy-poll SPSC ring in shared memory, 1024 slots of 64 B, copy in "
     "and copy out"},
    {"queue.1MiB",
     "Queue 1 MiB, 1 producer 1 consumer",
     RATE,
     "msg/s",
     true,
     lm_queue_1m,
     raw_ring_1m,
     true,
     {T_ABS_GE, M_BYTES, 8e9},
     "busy-poll SPSC ring in shared memory, 4 slots of 1 MiB, copy in and "
     "copy out"},
    {"queue.1MiB_zero_copy",
     "1 MiB by pointer (shared heap) on a Queue",
     RATE,
     "msg/s",
     true,
     lm_queue_1m_zero_copy,
     lm_queue_1m,
     false,
     {T_ABS_GE, M_OPS, 1e6},
     "the copying Queue with 1 MiB messages (queue.1MiB's libmp figure)"},
    {"queue.1MiB_zero_copy.queue_alone", "  its Queue alone: 8 B, maxsize 62", RATE, "msg/s",
     false, lm_queue_ptr_bounded, NULL, false, NO_TARGET,
     "(none: the Queue of the hand-off with no heap block behind each pointer)"},
    {"queue.pingpong",
     "Queue ping-pong round trip, 64 B",
     LAT,
     NULL,
     false,
     lm_queue_pingpong,
     raw_futex_pingpong,
     true,
     {T_ABS_LE, M_P50, 1e-6},
     "futex ping-pong, as for event.pingpong"},
    {"pipe.rtt",
     "Pipe round trip 64 B, 2 one-way",
     LAT,
     NULL,
     false,
     lm_pipe_pingpong,
     raw_pipe_pingpong,
     true,
     {T_REL_LE, M_P50, 1.1},
     "two pipe(2)s, write+read of 64 B each way (Pipe(duplex=False) x 2)"},
    {"pipe.rtt_duplex",
     "Pipe round trip 64 B, duplex",
     LAT,
     NULL,
     false,
     lm_pipe_duplex_pingpong,
     raw_socketpair_pingpong,
     true,
     {T_REL_LE, M_P50, 1.1},
     "one AF_UNIX SOCK_STREAM socketpair, write+read of 64 B each way "
     "(what a duplex Pipe(), Python's default, uses)"},
    {"ref.memcpy_1MiB", "  ref: memcpy 1 MiB (in cache)", RATE, NULL, true, NULL,
     raw_memcpy_1m, false, NO_TARGET, "memcpy of a 1 MiB buffer to another, 1 process"},
    {"ref.memcpy_64MiB", "  ref: memcpy 64 MiB (memory)", RATE, NULL, true, NULL,
     raw_memcpy_64m, false, NO_TARGET, "memcpy of a 64 MiB buffer to another, 1 process"},
    /* Pool (issue 6) */
    {"pool.map_cs1",
     "Pool.map, chunksize 1",
     RATE,
     "tasks/s",
     false,
     lm_pool_map_cs1,
     NULL,
     true,
     {T_ABS_GE, M_OPS, 2e6},
     NULL},
    {"pool.map_default",
     "Pool.map, default chunksize",
     RATE,
     "items/s",
     false,
     lm_pool_map_default,
     NULL,
     true,
     {T_ABS_GE, M_OPS, 50e6},
     NULL},
    {"pool.apply_async",
     "Pool.apply_async, then get each",
     RATE,
     "tasks/s",
     false,
     lm_pool_apply_async,
     NULL,
     true,
     {T_ABS_GE, M_OPS, 500e3},
     NULL},
    {"pool.imap_unordered", "Pool.imap_unordered, chunksize 1", RATE, "tasks/s", false,
     lm_pool_imap_unordered, NULL, true, NO_TARGET, NULL},
    /* Pool on MPI, 2 spawned workers, beside mpi4py.futures (issue 12) */
    {"pool.mpi.map_cs1",
     "MPI Pool.map, chunksize 1",
     RATE,
     "tasks/s",
     false,
     lm_pool_mpi_map_cs1,
     raw_mpi_rtt,
     true,
     {T_PY_GE, M_OPS, 40},
     "MPI_Send+MPI_Recv round trip of 64 B between 2 ranks (mpiexec -n 2); "
     "the issue's second target is libmp/raw >= 1.0 (0.5 x raw x 2 workers)"},
    {"pool.mpi.map_default",
     "MPI Pool.map, default chunksize",
     RATE,
     "items/s",
     false,
     lm_pool_mpi_map_default,
     NULL,
     true,
     {T_PY_GE, M_OPS, 10},
     NULL},
    {"pool.mpi.apply_async", "MPI Pool.apply_async, then get each", RATE, "tasks/s", false,
     lm_pool_mpi_apply_async, NULL, true, NO_TARGET, NULL},
    /* Managers (issue 7) */
    {"manager.dict",
     "Manager dict set, get (per call)",
     RATE,
     "ops/s",
     false,
     lm_manager_dict,
     NULL,
     true,
     {T_ABS_GE, M_OPS, 500e3},
     NULL},
    {"manager.lock", "Manager Lock acquire+release, family", RATE, "ops/s", false,
     lm_manager_lock, NULL, false, NO_TARGET, NULL},
    /* The shared arena (on main) */
    {"heap.alloc64",
     "mp_shared_alloc+free 64 B",
     RATE,
     "ops/s",
     false,
     lm_heap_alloc_64,
     raw_malloc_64,
     false,
     {T_REL_GE, M_OPS, 0.5},
     "malloc+free of 64 B (process-private)"},
    {"heap.alloc64_2procs",
     "mp_shared_alloc+free 64 B, 2 procs",
     RATE,
     "ops/s",
     false,
     lm_heap_alloc_64_pair,
     raw_malloc_64_pair,
     false,
     {T_REL_GE, M_OPS, 0.5},
     "malloc+free of 64 B in 2 processes at once (total)"},
    {"heap.alloc4k", "mp_shared_alloc+free 4 KiB", RATE, "ops/s", false, lm_heap_alloc_4k,
     raw_malloc_4k, false, NO_TARGET, "malloc+free of 4 KiB (process-private)"},
    {"heap.alloc1m", "mp_shared_alloc+free 1 MiB", RATE, "ops/s", false, lm_heap_alloc_1m,
     raw_malloc_1m, false, NO_TARGET, "malloc+free of 1 MiB (mmap+munmap in glibc)"},
};

#define NOPS (sizeof ops / sizeof ops[0])
#define MAX_REPEATS 64

/* ---- figures ------------------------------------------------------------ */

enum { FIG_NONE = 2 }; /* no such figure for this row: printed "-" */

typedef struct figure {
    int status;               /* BENCH_OK, BENCH_NA, BENCH_ERR or FIG_NONE */
    bench_result med;         /* the median of each statistic over the repeats */
    double reps[MAX_REPEATS]; /* the headline value of each repeat */
    int nreps;
    char why[200];
} figure;

typedef struct row {
    figure lm, raw, py;
} row;

static double headline(const op *o, const bench_result *r)
{
    if (o->kind == LAT)
        return r->p50;
    return o->unit != NULL ? r->ops_per_s : r->bytes_per_s;
}

static double metric_value(const bench_result *r, enum metric m)
{
    switch (m) {
    case M_P50:
        return r->p50;
    case M_P99:
        return r->p99;
    case M_P999:
        return r->p999;
    case M_OPS:
        return r->ops_per_s;
    case M_BYTES:
        return r->bytes_per_s;
    }
    return NAN;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Median of each statistic over the repeats, into f->med. */
static void figure_reduce(figure *f, const bench_result *reps, int n)
{
    double v[MAX_REPEATS];
    const size_t offs[] = {
        offsetof(bench_result, p50),         offsetof(bench_result, p99),
        offsetof(bench_result, p999),        offsetof(bench_result, ops_per_s),
        offsetof(bench_result, bytes_per_s),
    };
    for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++) {
        for (int i = 0; i < n; i++)
            v[i] = *(const double *)((const char *)&reps[i] + offs[k]);
        *(double *)((char *)&f->med + offs[k]) = median(v, n);
    }
    uint64_t total = 0;
    for (int i = 0; i < n; i++)
        total += reps[i].n;
    f->med.n = total;
}

/* ---- options ------------------------------------------------------------ */

typedef struct options {
    bool full;
    int repeats;
    double duration, warmup;
    double py_duration, py_warmup;
    const char *filters[32];
    int nfilters;
    const char *json;
    const char *python;
    const char *script;
    bool pin;
    bool oversub;
    int pairs;
} options;

static void usage(FILE *f)
{
    fprintf(f, "usage: mpbench [--short | --full] [--filter TEXT]... [--json FILE]\n"
               "               [--repeats N] [--duration S] [--warmup S]\n"
               "               [--python PATH | --no-python] [--script PATH] [--pin]\n"
               "               [--list] [--oversubscribe]\n"
               "\n"
               "Runs each operation's libmp, raw OS and CPython figures and prints\n"
               "the table (progress goes to stderr, the report to stdout).\n"
               "  --short        3 repeats of 0.15 s per figure (default; < 1 min)\n"
               "  --full         7 repeats of 0.5 s per figure (a few minutes)\n"
               "  --filter TEXT  only the operations whose id contains TEXT\n"
               "                 (repeat it, or separate with commas)\n"
               "  --json FILE    also write every figure and the machine to FILE\n"
               "  --repeats N, --duration S, --warmup S\n"
               "                 override the mode's values (C and CPython alike)\n"
               "  --python PATH  the interpreter for bench_cpython.py (python3)\n"
               "  --no-python    skip the CPython column (printed n/a)\n"
               "  --script PATH  bench_cpython.py (default: the source tree's)\n"
               "  --oversubscribe  instead of the table: P = 1, 2, 4, 8 pairs ping-ponging\n"
               "               at once (Event, Lock, Semaphore, Queue beside a raw\n"
               "               always-sleeping futex) and Pool.map chunksize 1 with 1x, 4x,\n"
               "               8x workers per cpu (docs/performance.md); --filter\n"
               "               takes oversub.event, .lock (with .ring, a raw Lock\n"
               "               ring with the Lock's two-word wait), .sem, .queue, .pool\n"
               "  --pairs P      with --oversubscribe: only P pairs (1, 2, 4 or 8)\n"
               "  --pin          pin the two processes of a pair to cpus 0 and 1\n"
               "  --list         list the operation ids and exit\n");
}

static bool selected(const options *o, const char *id)
{
    if (o->nfilters == 0)
        return true;
    for (int i = 0; i < o->nfilters; i++) {
        char buf[128];
        snprintf(buf, sizeof buf, "%s", o->filters[i]);
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ","))
            if (strstr(id, tok) != NULL)
                return true;
    }
    return false;
}

static const options *oversub_opt;

static bool oversub_selected(const char *id)
{
    return selected(oversub_opt, id);
}

static double parse_pos(const char *s, const char *what)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v > 0) || v > 3600) {
        fprintf(stderr, "mpbench: bad %s '%s'\n", what, s);
        exit(2);
    }
    return v;
}

static void parse_options(int argc, char **argv, options *o)
{
    bool set_rep = false, set_dur = false, set_warm = false;
    double rep = 0, dur = 0, warm = 0;
    *o = (options){.python = "python3", .script = MPBENCH_PY_SCRIPT};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = strcmp(a, "--filter") == 0 || strcmp(a, "--json") == 0 ||
                     strcmp(a, "--repeats") == 0 || strcmp(a, "--duration") == 0 ||
                     strcmp(a, "--warmup") == 0 || strcmp(a, "--python") == 0 ||
                     strcmp(a, "--script") == 0 || strcmp(a, "--pairs") == 0;
        if (takes && next == NULL) {
            fprintf(stderr, "mpbench: %s needs a value\n", a);
            exit(2);
        }
        if (strcmp(a, "--short") == 0) {
            o->full = false;
        } else if (strcmp(a, "--full") == 0) {
            o->full = true;
        } else if (strcmp(a, "--filter") == 0) {
            if (o->nfilters < 32)
                o->filters[o->nfilters++] = next;
            i++;
        } else if (strcmp(a, "--json") == 0) {
            o->json = next;
            i++;
        } else if (strcmp(a, "--repeats") == 0) {
            rep = parse_pos(next, "repeat count");
            if (rep != floor(rep) || rep > MAX_REPEATS) {
                fprintf(stderr, "mpbench: repeats must be 1..%d\n", MAX_REPEATS);
                exit(2);
            }
            set_rep = true;
            i++;
        } else if (strcmp(a, "--duration") == 0) {
            dur = parse_pos(next, "duration");
            set_dur = true;
            i++;
        } else if (strcmp(a, "--warmup") == 0) {
            warm = parse_pos(next, "warm-up");
            set_warm = true;
            i++;
        } else if (strcmp(a, "--python") == 0) {
            o->python = next;
            i++;
        } else if (strcmp(a, "--no-python") == 0) {
            o->python = NULL;
        } else if (strcmp(a, "--script") == 0) {
            o->script = next;
            i++;
        } else if (strcmp(a, "--oversubscribe") == 0) {
            o->oversub = true;
        } else if (strcmp(a, "--pairs") == 0) {
            o->pairs = atoi(next);
            if (o->pairs != 1 && o->pairs != 2 && o->pairs != 4 && o->pairs != 8) {
                fprintf(stderr, "mpbench: --pairs takes 1, 2, 4 or 8\n");
                exit(2);
            }
            i++;
        } else if (strcmp(a, "--pin") == 0) {
            o->pin = true;
        } else if (strcmp(a, "--list") == 0) {
            for (size_t k = 0; k < NOPS; k++)
                printf("%-22s %s\n", ops[k].id, ops[k].title);
            exit(0);
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else {
            fprintf(stderr, "mpbench: unknown argument '%s'\n", a);
            usage(stderr);
            exit(2);
        }
    }
    /*
     * The C figures measure a window per repeat; the CPython ones are
     * longer because each of its operations is 10 to 1000 times slower and
     * needs enough samples for its percentiles.
     */
    o->repeats = set_rep ? (int)rep : o->full ? 7 : 3;
    o->duration = set_dur ? dur : o->full ? 0.5 : 0.15;
    o->warmup = set_warm ? warm : o->full ? 0.1 : 0.03;
    o->py_duration = set_dur ? dur : o->full ? 0.6 : 0.25;
    o->py_warmup = set_warm ? warm : o->full ? 0.1 : 0.05;
}

/* ---- the machine -------------------------------------------------------- */

typedef struct cpu_times {
    unsigned long long busy, total, steal;
} cpu_times;

static void read_cpu_times(cpu_times *t)
{
    unsigned long long v[10] = {0};
    FILE *f = fopen("/proc/stat", "r");
    memset(t, 0, sizeof *t);
    if (f == NULL)
        return;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
               &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) >= 8) {
        /* user nice system idle iowait irq softirq steal (guest counted in user) */
        t->busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
        t->total = t->busy + v[3] + v[4];
        t->steal = v[7];
    }
    fclose(f);
}

/* CPU seconds used by this harness and its children (reaped). */
static double own_cpu_seconds(void)
{
    struct rusage s, c;
    getrusage(RUSAGE_SELF, &s);
    getrusage(RUSAGE_CHILDREN, &c);
    return (double)(s.ru_utime.tv_sec + s.ru_stime.tv_sec + c.ru_utime.tv_sec +
                    c.ru_stime.tv_sec) +
           (double)(s.ru_utime.tv_usec + s.ru_stime.tv_usec + c.ru_utime.tv_usec +
                    c.ru_stime.tv_usec) /
               1e6;
}

typedef struct machine {
    char cpu[128];
    long online;
    int usable;
    char kernel[200];
    char compiler[128];
    char clocksource[32];
    double timer_ns;
    char load_start[128], load_end[128];
    cpu_times t_start, t_end;
    double own_start, own_end, wall_start, wall_end;
    char date[64];
} machine;

static void read_line(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    buf[0] = '\0';
    if (f == NULL) {
        snprintf(buf, cap, "?");
        return;
    }
    if (fgets(buf, (int)cap, f) == NULL)
        snprintf(buf, cap, "?");
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
}

static void read_loadavg(char *buf, size_t cap)
{
    char line[128];
    read_line("/proc/loadavg", line, sizeof line);
    /* "0.50 0.15 0.05 1/89 6340": keep the three averages. */
    char *p = line;
    for (int k = 0; k < 3 && p != NULL; k++)
        p = strchr(p + 1, ' ');
    if (p != NULL)
        *p = '\0';
    snprintf(buf, cap, "%s", line);
}

static double timer_overhead_ns(void)
{
    double v[2001];
    for (int i = 0; i < 2001; i++) {
        uint64_t a = bench_ns();
        uint64_t b = bench_ns();
        v[i] = (double)(b - a);
    }
    return median(v, 2001);
}

static void machine_start(machine *m)
{
    memset(m, 0, sizeof *m);
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    snprintf(m->cpu, sizeof m->cpu, "unknown cpu");
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "model name", 10) == 0) {
            char *p = strchr(line, ':');
            if (p != NULL) {
                p += 1 + (p[1] == ' ');
                p[strcspn(p, "\n")] = '\0';
                snprintf(m->cpu, sizeof m->cpu, "%s", p);
            }
            break;
        }
    }
    if (f != NULL)
        fclose(f);
    m->online = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    m->usable = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)m->online;
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(m->kernel, sizeof m->kernel, "%s %s %s", u.sysname, u.release, u.machine);
#if defined(__clang__)
    snprintf(m->compiler, sizeof m->compiler, "clang %s", __clang_version__);
    m->compiler[strcspn(m->compiler, "\n")] = '\0';
    for (size_t k = strlen(m->compiler); k > 0 && m->compiler[k - 1] == ' '; k--)
        m->compiler[k - 1] = '\0';
#elif defined(__GNUC__)
    snprintf(m->compiler, sizeof m->compiler, "gcc %s", __VERSION__);
#else
    snprintf(m->compiler, sizeof m->compiler, "unknown compiler");
#endif
    read_line("/sys/devices/system/clocksource/clocksource0/current_clocksource",
              m->clocksource, sizeof m->clocksource);
    m->timer_ns = timer_overhead_ns();
    read_loadavg(m->load_start, sizeof m->load_start);
    read_cpu_times(&m->t_start);
    m->own_start = own_cpu_seconds();
    m->wall_start = (double)bench_ns() / 1e9;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(m->date, sizeof m->date, "%Y-%m-%d %H:%M UTC", &tm);
}

static void machine_end(machine *m)
{
    read_loadavg(m->load_end, sizeof m->load_end);
    read_cpu_times(&m->t_end);
    m->own_end = own_cpu_seconds();
    m->wall_end = (double)bench_ns() / 1e9;
}

/*
 * The share of all cpus that other processes kept busy during the run:
 * the machine's busy time from /proc/stat minus this harness's own (and its
 * children's).  Steal is the hypervisor's.
 */
static void machine_others(const machine *m, double *others_pct, double *steal_pct)
{
    double hz = (double)sysconf(_SC_CLK_TCK);
    double total = (double)(m->t_end.total - m->t_start.total) / hz;
    double busy = (double)(m->t_end.busy - m->t_start.busy) / hz;
    double steal = (double)(m->t_end.steal - m->t_start.steal) / hz;
    double own = m->own_end - m->own_start;
    *others_pct = total > 0 ? 100.0 * fmax(0, busy - own) / total : NAN;
    *steal_pct = total > 0 ? 100.0 * steal / total : NAN;
}

/* ---- running ------------------------------------------------------------ */

static const char *volatile current_what = "";

static void on_alarm(int sig)
{
    static const char msg[] = "\nmpbench: a figure took far too long (hung?): ";
    (void)sig;
    ssize_t r = write(2, msg, sizeof msg - 1);
    const char *w = current_what;
    r = write(2, w, strlen(w));
    r = write(2, "\n", 1);
    (void)r;
    _exit(3);
}

/* Results of raw functions already measured in this run (shared by rows). */
static struct {
    bench_fn fn;
    figure fig;
} raw_memo[NOPS];
static size_t raw_memo_n;

static const figure *memo_find(bench_fn fn)
{
    for (size_t i = 0; i < raw_memo_n; i++)
        if (raw_memo[i].fn == fn)
            return &raw_memo[i].fig;
    return NULL;
}

static void fig_fail(figure *f, int status, const char *why)
{
    f->status = status;
    snprintf(f->why, sizeof f->why, "%s", why);
}

/*
 * CPython: bench_cpython.py is run once per row and repeat, so that its
 * figure is measured within seconds of the libmp and raw ones, under the
 * same load.  The first run that cannot start python marks it absent.
 */
typedef struct python_state {
    const char *python; /* NULL: --no-python */
    const char *script;
    bench_ctx ctx; /* its durations */
    int status;    /* BENCH_OK until python is found absent */
    char why[200];
    char version[96], executable[256];
} python_state;

static python_state pystate;

static int python_figure(const op *o, bench_result *rep)
{
    static py_run run;
    if (pystate.status != BENCH_OK)
        return bench_na(rep, "%s", pystate.why);
    double timeout = 60 + 20 * (pystate.ctx.duration + pystate.ctx.warmup);
    cpython_run(pystate.python, pystate.script, &pystate.ctx, 1, o->id, timeout, &run);
    if (run.status == BENCH_NA) {
        pystate.status = BENCH_NA;
        snprintf(pystate.why, sizeof pystate.why, "%s", run.why);
        return bench_na(rep, "%s", run.why);
    }
    if (run.status != BENCH_OK)
        return bench_fail(rep, "%s", run.why);
    if (pystate.version[0] == '\0') {
        snprintf(pystate.version, sizeof pystate.version, "%s", run.version);
        snprintf(pystate.executable, sizeof pystate.executable, "%s", run.executable);
    }
    const py_fig *f = cpython_find(&run, o->id);
    if (f == NULL)
        return bench_fail(rep, "bench_cpython.py gave no figure");
    if (f->status != BENCH_OK)
        return f->status == BENCH_NA ? bench_na(rep, "%s", f->r.why)
                                     : bench_fail(rep, "%s", f->r.why);
    *rep = f->r;
    return BENCH_OK;
}

/*
 * Measure the three figures of one row, their repeats interleaved (libmp,
 * raw, CPython, libmp, raw, CPython, ...) so that all three see the same
 * load.  A raw figure already measured for an earlier row is reused.
 */
static void run_row(const op *o, const options *opt, const bench_ctx *ctx, row *r)
{
    static bench_result reps[3][MAX_REPEATS];
    const figure *memo = o->raw ? memo_find(o->raw) : NULL;
    figure *fig[3] = {&r->lm, &r->raw, &r->py};
    bool todo[3] = {o->libmp != NULL, o->raw != NULL && memo == NULL, o->python};
    r->lm.status = o->libmp ? BENCH_OK : FIG_NONE;
    r->raw.status = o->raw ? BENCH_OK : FIG_NONE;
    r->py.status = o->python ? BENCH_OK : FIG_NONE;
    if (memo != NULL)
        r->raw = *memo;
    unsigned limit = (unsigned)(60 + 40 * (ctx->duration + ctx->warmup));
    for (int i = 0; i < opt->repeats; i++) {
        for (int side = 0; side < 3; side++) {
            figure *f = fig[side];
            bench_result *rep = &reps[side][i];
            if (!todo[side] || f->status != BENCH_OK)
                continue;
            memset(rep, 0, sizeof *rep);
            current_what = o->id;
            int rc;
            if (side == 2) {
                rc = python_figure(o, rep);
            } else {
                alarm(limit);
                rc = (side == 0 ? o->libmp : o->raw)(ctx, rep);
                alarm(0);
            }
            if (rc != BENCH_OK)
                fig_fail(f, rc, rep->why);
            else
                f->reps[f->nreps++] = headline(o, rep);
        }
    }
    for (int side = 0; side < 3; side++)
        if (todo[side] && fig[side]->status == BENCH_OK)
            figure_reduce(fig[side], reps[side], fig[side]->nreps);
    if (todo[1] && raw_memo_n < NOPS) {
        raw_memo[raw_memo_n].fn = o->raw;
        raw_memo[raw_memo_n].fig = r->raw;
        raw_memo_n++;
    }
}

/* ---- formatting --------------------------------------------------------- */

static void fmt_value(char *buf, size_t cap, enum metric m, double v)
{
    if (m == M_P50 || m == M_P99 || m == M_P999) {
        double us = v * 1e6;
        snprintf(buf, cap,
                 us < 1     ? "%.3f"
                 : us < 10  ? "%.2f"
                 : us < 100 ? "%.1f"
                            : "%.0f",
                 us);
    } else if (m == M_BYTES) {
        double g = v / 1e9;
        snprintf(buf, cap, g < 0.01 ? "%.4f" : g < 1 ? "%.3f" : "%.2f", g);
    } else if (v >= 1e9) {
        snprintf(buf, cap, "%.2fG", v / 1e9);
    } else if (v >= 1e6) {
        snprintf(buf, cap, "%.2fM", v / 1e6);
    } else if (v >= 1e3) {
        snprintf(buf, cap, "%.1fk", v / 1e3);
    } else {
        snprintf(buf, cap, "%.0f", v);
    }
}

static void fmt_ratio(char *buf, size_t cap, double r)
{
    if (!isfinite(r))
        snprintf(buf, cap, "n/a");
    else
        snprintf(buf, cap,
                 r < 0.01  ? "%.4fx"
                 : r < 10  ? "%.2fx"
                 : r < 100 ? "%.1fx"
                           : "%.0fx",
                 r);
}

/* The repeats' headline values spread by more than NOISY (max / min). */
#define NOISY 1.5

static bool noisy(const figure *f)
{
    double lo = INFINITY, hi = 0;
    for (int i = 0; i < f->nreps; i++) {
        lo = fmin(lo, f->reps[i]);
        hi = fmax(hi, f->reps[i]);
    }
    return f->nreps >= 2 && lo > 0 && hi / lo > NOISY;
}

/* A value, "-", "n/a" or "err"; the headline line gets "~" when noisy. */
static void fmt_cell(char *buf, size_t cap, const figure *f, enum metric m, bool head)
{
    switch (f->status) {
    case FIG_NONE:
        snprintf(buf, cap, "-");
        break;
    case BENCH_NA:
        snprintf(buf, cap, "n/a");
        break;
    case BENCH_ERR:
        snprintf(buf, cap, "err");
        break;
    default:
        fmt_value(buf, cap, m, metric_value(&f->med, m));
        if (head && noisy(f) && strlen(buf) + 1 < cap)
            strcat(buf, "~");
        break;
    }
}

/* libmp / other on one line, or a dash or n/a. */
static void fmt_cell_ratio(char *buf, size_t cap, const figure *lm, const figure *other,
                           enum metric m)
{
    if (lm->status == FIG_NONE || other->status == FIG_NONE)
        snprintf(buf, cap, "-");
    else if (lm->status != BENCH_OK || other->status != BENCH_OK)
        snprintf(buf, cap, "n/a");
    else
        fmt_ratio(buf, cap, metric_value(&lm->med, m) / metric_value(&other->med, m));
}

static void fmt_target(char *buf, size_t cap, const target *t)
{
    const char *rel = (t->cmp == T_REL_LE || t->cmp == T_ABS_LE) ? "<=" : ">=";
    switch (t->cmp) {
    case T_NONE:
        snprintf(buf, cap, "-");
        return;
    case T_REL_LE:
    case T_REL_GE:
        snprintf(buf, cap, "%s %gx raw", rel, t->x);
        return;
    case T_PY_GE:
        snprintf(buf, cap, ">= %gx Py", t->x);
        return;
    case T_ABS_LE:
    case T_ABS_GE:
        if (t->metric == M_BYTES)
            snprintf(buf, cap, "%s %g GB/s", rel, t->x / 1e9);
        else if (t->metric == M_OPS && t->x >= 1e6)
            snprintf(buf, cap, "%s %gM/s", rel, t->x / 1e6);
        else if (t->metric == M_OPS && t->x >= 1e3)
            snprintf(buf, cap, "%s %gk/s", rel, t->x / 1e3);
        else if (t->metric == M_OPS)
            snprintf(buf, cap, "%s %g/s", rel, t->x);
        else
            snprintf(buf, cap, "%s %g us", rel, t->x * 1e6);
        return;
    }
}

/* "yes", "NO", "n/a" (libmp or raw figure missing) or "-" (no target). */
static const char *target_met(const target *t, const row *r)
{
    if (t->cmp == T_NONE)
        return "-";
    if (r->lm.status != BENCH_OK)
        return "n/a";
    double v = metric_value(&r->lm.med, t->metric);
    if (t->cmp == T_PY_GE) {
        if (r->py.status != BENCH_OK)
            return "n/a";
        return v / metric_value(&r->py.med, t->metric) >= t->x ? "yes" : "NO";
    }
    if (t->cmp == T_REL_LE || t->cmp == T_REL_GE) {
        if (r->raw.status != BENCH_OK)
            return "n/a";
        v /= metric_value(&r->raw.med, t->metric);
    }
    bool ok = (t->cmp == T_REL_LE || t->cmp == T_ABS_LE) ? v <= t->x : v >= t->x;
    return ok ? "yes" : "NO";
}

/* The lines of a row: p50/p99/p99.9, or ops and/or GB/s. */
static int row_metrics(const op *o, enum metric *m, const char **label)
{
    int n = 0;
    if (o->kind == LAT) {
        m[n] = M_P50, label[n++] = "p50 us";
        m[n] = M_P99, label[n++] = "p99 us";
        m[n] = M_P999, label[n++] = "p99.9 us";
        return n;
    }
    if (o->unit != NULL)
        m[n] = M_OPS, label[n++] = o->unit;
    if (o->bytes)
        m[n] = M_BYTES, label[n++] = "GB/s";
    return n;
}

static void print_table(FILE *out, const bool *sel, const row *rows)
{
    fprintf(out, "%-34s %-8s %9s %9s %9s %9s %9s  %-13s %s\n", "operation", "metric", "libmp",
            "raw", "CPython", "libmp/raw", "libmp/Py", "target", "met");
    for (size_t i = 0; i < NOPS; i++) {
        if (!sel[i])
            continue;
        const op *o = &ops[i];
        const row *r = &rows[i];
        enum metric m[3];
        const char *label[3];
        int n = row_metrics(o, m, label);
        for (int k = 0; k < n; k++) {
            char lm[24], raw[24], py[24], rr[24], rp[24], tg[32];
            fmt_cell(lm, sizeof lm, &r->lm, m[k], k == 0);
            fmt_cell(raw, sizeof raw, &r->raw, m[k], k == 0);
            fmt_cell(py, sizeof py, &r->py, m[k], k == 0);
            fmt_cell_ratio(rr, sizeof rr, &r->lm, &r->raw, m[k]);
            fmt_cell_ratio(rp, sizeof rp, &r->lm, &r->py, m[k]);
            bool has_tgt = o->tgt.cmp != T_NONE && o->tgt.metric == m[k];
            if (has_tgt)
                fmt_target(tg, sizeof tg, &o->tgt);
            else
                snprintf(tg, sizeof tg, "%s", k == 0 && o->tgt.cmp == T_NONE ? "-" : "");
            fprintf(out, "%-34s %-8s %9s %9s %9s %9s %9s  %-13s %s\n", k == 0 ? o->title : "",
                    label[k], lm, raw, py, rr, rp, tg,
                    has_tgt ? target_met(&o->tgt, r)
                            : (k == 0 && o->tgt.cmp == T_NONE ? "-" : ""));
        }
    }
}

static void print_notes(FILE *out, const bool *sel, const row *rows)
{
    fprintf(out, "\nraw figures:\n");
    for (size_t i = 0; i < NOPS; i++)
        if (sel[i] && ops[i].raw_what != NULL)
            fprintf(out, "  %-20s %s\n", ops[i].id, ops[i].raw_what);
    /* Each distinct (column, status, reason) once, with the ids it covers. */
    static const char *const col[3] = {"libmp", "raw", "CPython"};
    bool done[NOPS][3] = {{false}};
    bool header = false;
    for (size_t i = 0; i < NOPS; i++) {
        for (int k = 0; k < 3 && sel[i]; k++) {
            const figure *f = k == 0 ? &rows[i].lm : k == 1 ? &rows[i].raw : &rows[i].py;
            if (done[i][k] || (f->status != BENCH_NA && f->status != BENCH_ERR))
                continue;
            if (!header) {
                fprintf(out, "\nn/a and err:\n");
                header = true;
            }
            fprintf(out, "  %s %s (%s):", col[k], f->status == BENCH_NA ? "n/a" : "err",
                    f->why);
            for (size_t j = i; j < NOPS; j++) {
                const figure *g = k == 0 ? &rows[j].lm : k == 1 ? &rows[j].raw : &rows[j].py;
                if (sel[j] && !done[j][k] && g->status == f->status &&
                    strcmp(g->why, f->why) == 0) {
                    fprintf(out, " %s", ops[j].id);
                    done[j][k] = true;
                }
            }
            fprintf(out, "\n");
        }
    }
}

static void print_header(FILE *out, const options *opt, const machine *m)
{
    double others, steal;
    machine_others(m, &others, &steal);
    fprintf(out,
            "mpbench: libmp %s (%s), %s mode: %d repeats of %.2g s "
            "(+%.2g s warm-up) per C figure, %.2g s (+%.2g s) per CPython "
            "figure; medians\n",
            MP_VERSION_STRING, MPBENCH_GIT, opt->full ? "full" : "short", opt->repeats,
            opt->duration, opt->warmup, opt->py_duration, opt->py_warmup);
    fprintf(out, "machine: %s, %ld cores online, %d usable, %s\n", m->cpu, m->online,
            m->usable, m->kernel);
    fprintf(out, "build:   %s, %s; clocksource %s, clock_gettime %.0f ns; %s\n", m->compiler,
            MPBENCH_BUILDTYPE, m->clocksource, m->timer_ns,
            opt->pin ? "pairs pinned to cpus 0 and 1" : "nothing pinned");
    if (pystate.version[0] != '\0')
        fprintf(out, "python:  %s (%s)\n", pystate.version, pystate.executable);
    else
        fprintf(out, "python:  n/a (%s)\n",
                pystate.status != BENCH_OK ? pystate.why : "no CPython figure selected");
    fprintf(out,
            "load:    loadavg %s at start, %s at end; other processes "
            "kept %.0f%% of the %ld cpus busy during the %.0f s run "
            "(steal %.1f%%)\n",
            m->load_start, m->load_end, others, m->online, m->wall_end - m->wall_start, steal);
    fprintf(out, "date:    %s\n\n", m->date);
}

static void print_legend(FILE *out)
{
    fprintf(out, "\nlibmp/raw and libmp/Py are libmp's figure divided by the other, in "
                 "the line's unit:\nfor us (latency) lower is better, for rates higher "
                 "is better.  The target is checked\non the line where it is written. "
                 "n/a: not measurable in this build (see below);\n-: no such figure; "
                 "~: its repeats spread by more than 1.5x (max/min of the first\n"
                 "line), the machine was busy: compare with care (--json has every "
                 "repeat).\n");
}

/* ---- JSON output -------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.6g", v);
    else
        fprintf(f, "null");
}

static void json_figure(FILE *f, const char *name, const op *o, const figure *fig)
{
    static const char *const st[] = {"ok", "n/a", "none"};
    fprintf(f, "      ");
    json_str(f, name);
    fprintf(f, ": {\"status\": \"%s\"", fig->status == BENCH_ERR ? "err" : st[fig->status]);
    if (fig->status == BENCH_NA || fig->status == BENCH_ERR) {
        fprintf(f, ", \"why\": ");
        json_str(f, fig->why);
    }
    if (fig->status == BENCH_OK) {
        if (o->kind == LAT) {
            fprintf(f, ", \"p50_s\": ");
            json_num(f, fig->med.p50);
            fprintf(f, ", \"p99_s\": ");
            json_num(f, fig->med.p99);
            fprintf(f, ", \"p999_s\": ");
            json_num(f, fig->med.p999);
        } else {
            fprintf(f, ", \"ops_per_s\": ");
            json_num(f, fig->med.ops_per_s);
            fprintf(f, ", \"bytes_per_s\": ");
            json_num(f, fig->med.bytes_per_s);
        }
        fprintf(f, ", \"n\": %llu, \"repeats\": [", (unsigned long long)fig->med.n);
        for (int i = 0; i < fig->nreps; i++) {
            if (i)
                fprintf(f, ", ");
            json_num(f, fig->reps[i]);
        }
        fprintf(f, "]");
    }
    fprintf(f, "}");
}

static int write_json(const char *path, const options *opt, const machine *m, const bool *sel,
                      const row *rows)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -errno;
    double others, steal;
    machine_others(m, &others, &steal);
    fprintf(f, "{\n  \"mpbench\": {\"libmp\": \"%s\", \"git\": ", MP_VERSION_STRING);
    json_str(f, MPBENCH_GIT);
    fprintf(f,
            ", \"mode\": \"%s\", \"repeats\": %d, \"duration_s\": %g, "
            "\"warmup_s\": %g, \"py_duration_s\": %g, \"py_warmup_s\": %g, "
            "\"pinned\": %s, \"date\": ",
            opt->full ? "full" : "short", opt->repeats, opt->duration, opt->warmup,
            opt->py_duration, opt->py_warmup, opt->pin ? "true" : "false");
    json_str(f, m->date);
    fprintf(f, "},\n  \"machine\": {\"cpu\": ");
    json_str(f, m->cpu);
    fprintf(f, ", \"cores_online\": %ld, \"cores_usable\": %d, \"kernel\": ", m->online,
            m->usable);
    json_str(f, m->kernel);
    fprintf(f, ", \"compiler\": ");
    json_str(f, m->compiler);
    fprintf(f, ", \"buildtype\": ");
    json_str(f, MPBENCH_BUILDTYPE);
    fprintf(f, ", \"clocksource\": ");
    json_str(f, m->clocksource);
    fprintf(f, ", \"clock_gettime_ns\": %.0f, \"loadavg_start\": ", m->timer_ns);
    json_str(f, m->load_start);
    fprintf(f, ", \"loadavg_end\": ");
    json_str(f, m->load_end);
    fprintf(f, ", \"others_busy_pct\": ");
    json_num(f, others);
    fprintf(f, ", \"steal_pct\": ");
    json_num(f, steal);
    fprintf(f, ", \"python\": ");
    json_str(f, pystate.version[0] ? pystate.version : "n/a");
    fprintf(f, "},\n  \"results\": [\n");
    bool first = true;
    for (size_t i = 0; i < NOPS; i++) {
        if (!sel[i])
            continue;
        const op *o = &ops[i];
        char tg[32];
        fmt_target(tg, sizeof tg, &o->tgt);
        fprintf(f, "%s    {\"id\": ", first ? "" : ",\n");
        first = false;
        json_str(f, o->id);
        fprintf(f, ", \"title\": ");
        json_str(f, o->title);
        fprintf(f, ", \"kind\": \"%s\", \"target\": ", o->kind == LAT ? "latency" : "rate");
        json_str(f, tg);
        fprintf(f, ", \"met\": ");
        json_str(f, target_met(&o->tgt, &rows[i]));
        fprintf(f, ",\n");
        json_figure(f, "libmp", o, &rows[i].lm);
        fprintf(f, ",\n");
        json_figure(f, "raw", o, &rows[i].raw);
        fprintf(f, ",\n");
        json_figure(f, "cpython", o, &rows[i].py);
        fprintf(f, "}");
    }
    fprintf(f, "\n  ]\n}\n");
    return fclose(f) == 0 ? 0 : -errno;
}

/* ---- main --------------------------------------------------------------- */

static void progress(const op *o, const row *r)
{
    char a[24], b[24], c[24];
    enum metric m = o->kind == LAT ? M_P50 : o->unit ? M_OPS : M_BYTES;
    fmt_cell(a, sizeof a, &r->lm, m, true);
    fmt_cell(b, sizeof b, &r->raw, m, true);
    fmt_cell(c, sizeof c, &r->py, m, true);
    fprintf(stderr, "  %-22s libmp %9s   raw %9s   CPython %9s   %s\n", o->id, a, b, c,
            o->kind == LAT ? "us p50"
            : o->unit      ? o->unit
                           : "GB/s");
}

int main(int argc, char **argv)
{
    /* The child of raw_posix_spawn: this executable doing nothing. */
    if (argc > 1 && strcmp(argv[1], BENCH_EXIT_NOW_FLAG) == 0)
        return 0;
    /* A rank of raw_mpi_rtt's job. */
    if (argc > 1 && strcmp(argv[1], RAW_MPI_FLAG) == 0)
        return raw_mpi_main(argc, argv);

    options opt;
    parse_options(argc, argv, &opt);
    /* The pool.mpi rows spawn 2 workers beside this process (libmp's, and
     * mpi4py's in bench_cpython.py, which inherits this): more processes
     * than cores on a small machine, which Open MPI's MPI_Comm_spawn
     * refuses unless told (mpiexec's --oversubscribe does not reach it). */
    setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 0);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);

    static char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        fprintf(stderr, "mpbench: cannot read /proc/self/exe: %s\n", strerror(errno));
        return 1;
    }
    self[len] = '\0';

    if (opt.oversub) {
        bench_ctx octx = {.duration = opt.duration, .warmup = opt.warmup, .self_exe = self};
        oversub_opt = &opt;
        return oversub_main(&octx, opt.repeats, oversub_selected, opt.pairs);
    }

    bool sel[NOPS];
    size_t nsel = 0;
    for (size_t i = 0; i < NOPS; i++)
        nsel += (sel[i] = selected(&opt, ops[i].id));
    if (nsel == 0) {
        fprintf(stderr, "mpbench: no operation matches the filter (--list)\n");
        return 2;
    }

    machine m;
    machine_start(&m);
    bench_ctx ctx = {.duration = opt.duration,
                     .warmup = opt.warmup,
                     .pin = opt.pin,
                     .self_exe = self};
    static row rows[NOPS];
    pystate.python = opt.python;
    pystate.script = opt.script;
    pystate.ctx = ctx;
    pystate.ctx.duration = opt.py_duration;
    pystate.ctx.warmup = opt.py_warmup;
    pystate.status = BENCH_OK;
    if (opt.python == NULL) {
        pystate.status = BENCH_NA;
        snprintf(pystate.why, sizeof pystate.why, "--no-python");
    }
    fprintf(stderr,
            "mpbench: %zu operations, %s mode, %d repeats each of libmp, raw, "
            "CPython:\n",
            nsel, opt.full ? "full" : "short", opt.repeats);
    for (size_t i = 0; i < NOPS; i++) {
        if (!sel[i])
            continue;
        run_row(&ops[i], &opt, &ctx, &rows[i]);
        progress(&ops[i], &rows[i]);
    }

    machine_end(&m);

    fflush(stderr);
    print_header(stdout, &opt, &m);
    print_table(stdout, sel, rows);
    print_legend(stdout);
    print_notes(stdout, sel, rows);
    if (opt.json != NULL) {
        int r = write_json(opt.json, &opt, &m, sel, rows);
        if (r != 0) {
            fprintf(stderr, "mpbench: cannot write %s: %s\n", opt.json, strerror(-r));
            return 1;
        }
    }
    return 0;
}
