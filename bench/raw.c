/*
 * raw.c: the operating-system mechanisms libmp is built on, measured
 * directly in C.  They are the "raw" column of the table: what libmp's
 * figure would be with no library at all.
 */
#include "benches.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---- process start + join ----------------------------------------------- */

typedef int (*start_fn)(const bench_ctx *ctx, pid_t *pid);

static int start_fork(const bench_ctx *ctx, pid_t *pid)
{
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    if (p < 0)
        return -errno;
    *pid = p;
    return 0;
}

static int start_spawn(const bench_ctx *ctx, pid_t *pid)
{
    char *argv[] = {(char *)"mpbench", (char *)BENCH_EXIT_NOW_FLAG, NULL};
    return -posix_spawn(pid, ctx->self_exe, NULL, NULL, argv, environ);
}

/* Time start + waitpid of a child that exits at once, after a warm-up. */
static int start_join_latency(const bench_ctx *ctx, start_fn start, bench_result *out)
{
    bench_lat lat;
    bench_lat_init(&lat);
    bench_window w;
    bench_window_init(&w, ctx);
    fflush(NULL);
    for (;;) {
        pid_t pid;
        int st;
        uint64_t t0 = bench_ns();
        int r = start(ctx, &pid);
        if (r != 0) {
            bench_lat_free(&lat);
            return bench_fail(out, "start: %s", strerror(-r));
        }
        while (waitpid(pid, &st, 0) < 0)
            if (errno != EINTR) {
                bench_lat_free(&lat);
                return bench_fail(out, "waitpid: %s", strerror(errno));
            }
        uint64_t t1 = bench_ns();
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            bench_lat_free(&lat);
            return bench_fail(out, "child status %d", st);
        }
        if (t0 >= w.measure && (!bench_lat_add(&lat, t1 - t0) || (t1 >= w.end && lat.n >= 5)))
            break;
    }
    return bench_lat_finish(&lat, out);
}

int raw_fork_waitpid(const bench_ctx *ctx, bench_result *out)
{
    return start_join_latency(ctx, start_fork, out);
}

int raw_posix_spawn(const bench_ctx *ctx, bench_result *out)
{
    return start_join_latency(ctx, start_spawn, out);
}

/* ---- process-shared mutexes and semaphores ------------------------------ */

struct shared_lock {
    pthread_mutex_t mutex;
    sem_t sem;
    _Alignas(64) uint64_t counter;
};

static struct shared_lock *shared_lock_new(bool robust, bench_result *out)
{
    struct shared_lock *s = bench_shared_map(sizeof *s);
    if (s == NULL) {
        bench_fail(out, "mmap: %s", strerror(errno));
        return NULL;
    }
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (robust)
        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    int r = pthread_mutex_init(&s->mutex, &a);
    pthread_mutexattr_destroy(&a);
    if (r == 0 && sem_init(&s->sem, 1, 1) != 0)
        r = errno;
    if (r != 0) {
        bench_fail(out, "mutex/semaphore init: %s", strerror(r));
        bench_shared_unmap(s, sizeof *s);
        return NULL;
    }
    return s;
}

static void shared_lock_free(struct shared_lock *s)
{
    pthread_mutex_destroy(&s->mutex);
    sem_destroy(&s->sem);
    bench_shared_unmap(s, sizeof *s);
}

static int mutex_batch(void *arg, uint64_t n)
{
    struct shared_lock *s = arg;
    for (uint64_t i = 0; i < n; i++) {
        int r = pthread_mutex_lock(&s->mutex);
        if (r != 0)
            return -r;
        pthread_mutex_unlock(&s->mutex);
    }
    return 0;
}

static int counter_batch(void *arg, uint64_t n)
{
    struct shared_lock *s = arg;
    for (uint64_t i = 0; i < n; i++) {
        int r = pthread_mutex_lock(&s->mutex);
        if (r != 0)
            return -r;
        s->counter++;
        pthread_mutex_unlock(&s->mutex);
    }
    return 0;
}

static int sem_batch(void *arg, uint64_t n)
{
    struct shared_lock *s = arg;
    for (uint64_t i = 0; i < n; i++) {
        if (sem_wait(&s->sem) != 0)
            return -errno;
        sem_post(&s->sem);
    }
    return 0;
}

static int lock_batches(const bench_ctx *ctx, bool robust, bench_batch_fn fn,
                        bench_result *out)
{
    struct shared_lock *s = shared_lock_new(robust, out);
    if (s == NULL)
        return BENCH_ERR;
    int rc = bench_run_batches(ctx, fn, s, 1024, 0, out);
    shared_lock_free(s);
    return rc;
}

int raw_mutex_uncontended(const bench_ctx *ctx, bench_result *out)
{
    return lock_batches(ctx, false, mutex_batch, out);
}

int raw_robust_mutex_uncontended(const bench_ctx *ctx, bench_result *out)
{
    return lock_batches(ctx, true, mutex_batch, out);
}

int raw_sem_uncontended(const bench_ctx *ctx, bench_result *out)
{
    return lock_batches(ctx, false, sem_batch, out);
}

int raw_mutex_contended(const bench_ctx *ctx, bench_result *out)
{
    struct shared_lock *s = shared_lock_new(false, out);
    if (s == NULL)
        return BENCH_ERR;
    int rc = bench_run_pair(ctx, mutex_batch, s, 64, out, NULL);
    shared_lock_free(s);
    return rc;
}

static int mutex_counter(const bench_ctx *ctx, bool robust, bench_result *out)
{
    struct shared_lock *s = shared_lock_new(robust, out);
    if (s == NULL)
        return BENCH_ERR;
    uint64_t total = 0;
    int rc = bench_run_pair(ctx, counter_batch, s, 64, out, &total);
    if (rc == BENCH_OK && s->counter != total)
        rc = bench_fail(out, "counter %llu, expected %llu", (unsigned long long)s->counter,
                        (unsigned long long)total);
    shared_lock_free(s);
    return rc;
}

int raw_mutex_counter(const bench_ctx *ctx, bench_result *out)
{
    return mutex_counter(ctx, false, out);
}

int raw_robust_mutex_counter(const bench_ctx *ctx, bench_result *out)
{
    return mutex_counter(ctx, true, out);
}

/* ---- futex ping-pong ---------------------------------------------------- */

/*
 * One word in shared memory carries a sequence number: the parent writes an
 * odd value (ping), the child answers with the next even value (pong).
 * A waiter polls the word for a while, then announces itself in its
 * `sleeping` flag and sleeps in FUTEX_WAIT (shared, never FUTEX_PRIVATE).
 * The poll is libmp's Event rule written out by hand (docs/synchronize.md):
 * `spin_ns` at first; after a sleep that ended within 200 us, twice that
 * wait; halved back after each poll that succeeds.  With a fixed 3 us poll
 * the pair fell, in about half the runs on a machine whose idle CPUs take
 * 30-60 us to wake, into sleeping on every round trip (p50 35-60 us), and
 * the ratio to libmp's Event meant nothing.
 * The writer stores the word and calls FUTEX_WAKE only when the peer
 * announced itself, so with spinning the common round trip makes no system
 * call; with spin 0 every wait sleeps and every store wakes.
 */
#define FUTEX_QUIT 0xffffffffu

struct futex_pp {
    _Alignas(64) _Atomic uint32_t word;
    _Alignas(64) _Atomic uint32_t sleeping[2]; /* [0] parent, [1] child */
    uint64_t spin_ns;
    uint32_t seq; /* parent's last ping */
};

static void futex_wait_word(_Atomic uint32_t *w, uint32_t old)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, old, NULL, NULL, 0);
}

static void futex_wake_word(_Atomic uint32_t *w)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

#define FUTEX_POLL_MAX_NS 200000u

/* This process's poll budget (each side of the pair is its own process). */
static uint64_t futex_poll_ns;

/* Wait until the word is no longer `old`; return its new value. */
static uint32_t futex_wait_change(struct futex_pp *f, int me, uint32_t old)
{
    uint32_t v;
    uint64_t start = f->spin_ns ? bench_ns() : 0;
    if (futex_poll_ns < f->spin_ns)
        futex_poll_ns = f->spin_ns;
    for (unsigned i = 1; f->spin_ns != 0; i++) {
        v = atomic_load_explicit(&f->word, memory_order_acquire);
        if (v != old) {
            futex_poll_ns /= 2;
            return v;
        }
        if ((i & 31u) == 0 && bench_ns() - start > futex_poll_ns)
            break;
        bench_cpu_relax();
    }
    for (;;) {
        /*
         * Announce, then re-check (both sequentially consistent): either the
         * writer sees the announcement and wakes us, or we see its store.
         */
        atomic_store(&f->sleeping[me], 1);
        v = atomic_load(&f->word);
        if (v == old)
            futex_wait_word(&f->word, old);
        atomic_store(&f->sleeping[me], 0);
        v = atomic_load(&f->word);
        if (v != old)
            break;
    }
    if (f->spin_ns != 0) {
        uint64_t waited = bench_ns() - start;
        futex_poll_ns = waited < FUTEX_POLL_MAX_NS / 2 ? 2 * waited : f->spin_ns;
    }
    return v;
}

static void futex_post(struct futex_pp *f, int peer, uint32_t v)
{
    atomic_store(&f->word, v);
    if (f->spin_ns == 0 || atomic_load(&f->sleeping[peer]))
        futex_wake_word(&f->word);
}

static int futex_serve(void *arg)
{
    struct futex_pp *f = arg;
    uint32_t last = 0;
    for (;;) {
        uint32_t v = futex_wait_change(f, 1, last);
        if (v == FUTEX_QUIT)
            return 0;
        last = v + 1;
        futex_post(f, 0, last);
    }
}

static int futex_ping(void *arg)
{
    struct futex_pp *f = arg;
    uint32_t ping = f->seq + 1;
    futex_post(f, 1, ping);
    uint32_t v = futex_wait_change(f, 0, ping);
    if (v != ping + 1)
        return -EPROTO;
    f->seq = v;
    return 0;
}

static int futex_quit(void *arg)
{
    futex_post(arg, 1, FUTEX_QUIT);
    return 0;
}

static int futex_pingpong(const bench_ctx *ctx, uint64_t spin_ns, bench_result *out)
{
    static const bench_pingpong_ops ops = {futex_serve, futex_ping, futex_quit};
    struct futex_pp *f = bench_shared_map(sizeof *f);
    if (f == NULL)
        return bench_fail(out, "mmap: %s", strerror(errno));
    f->spin_ns = spin_ns;
    int rc = bench_run_pingpong(ctx, &ops, f, out);
    bench_shared_unmap(f, sizeof *f);
    return rc;
}

/*
 * Polls before sleeping for 3 us at first, the budget libmp's Event starts
 * with (it then adapts, as described above): ten
 * times a round trip between two running cores, yet short enough that two
 * processes sharing one core (the scheduler's choice on a loaded 2-core
 * machine) lose little before one sleeps and lets the other run.  The
 * budget is time, not a count of pauses: a pause took about 15 ns on the
 * machine of the first runs and far less on a later one, where 200 pauses
 * ended before the reply came and every raw round trip slept (60 us).
 */
#define FUTEX_SPIN_NS 3000

int raw_futex_pingpong(const bench_ctx *ctx, bench_result *out)
{
    return futex_pingpong(ctx, FUTEX_SPIN_NS, out);
}

int raw_futex_pingpong_sleep(const bench_ctx *ctx, bench_result *out)
{
    return futex_pingpong(ctx, 0, out);
}

/* ---- busy-poll single-producer single-consumer ring --------------------- */

/*
 * Fixed-size slots in shared memory; head is written only by the producer,
 * tail only by the consumer, each on its own cache line, and each side
 * keeps a cached copy of the other's index so that it reads the shared one
 * only when the ring looks full (or empty).  Both sides copy: the producer
 * from its own buffer into the slot, the consumer from the slot into its
 * own buffer, as a queue's put and get do.
 */
struct ring {
    _Alignas(64) _Atomic uint64_t head;
    _Alignas(64) _Atomic uint64_t tail;
    _Alignas(64) _Atomic uint32_t done;
    _Alignas(64) size_t msg_size;
    size_t nslots;
    size_t map_size;
    unsigned char *local; /* this process's buffer (after fork: own copy) */
    uint64_t head_cache;  /* consumer's view of head */
};

#define RING_DATA_OFFSET 4096

static unsigned char *ring_slot(struct ring *r, uint64_t i)
{
    return (unsigned char *)r + RING_DATA_OFFSET + (i % r->nslots) * r->msg_size;
}

static int ring_produce(void *arg, const _Atomic uint32_t *stop)
{
    struct ring *r = arg;
    uint64_t head = 0, tail_cache = 0;
    unsigned spins = 0;
    memset(r->local, 'p', r->msg_size);
    while (atomic_load_explicit(stop, memory_order_relaxed) == 0) {
        for (int k = 0; k < 16; k++) {
            while (head - tail_cache >= r->nslots) {
                tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
                if (head - tail_cache >= r->nslots)
                    bench_poll_pause(&spins);
            }
            memcpy(ring_slot(r, head), r->local, r->msg_size);
            head++;
            atomic_store_explicit(&r->head, head, memory_order_release);
        }
    }
    atomic_store_explicit(&r->done, 1, memory_order_release);
    return 0;
}

static int ring_consume(void *arg, uint64_t *msgs, uint64_t *bytes)
{
    struct ring *r = arg;
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    unsigned spins = 0;
    while (r->head_cache == tail) {
        r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
        if (r->head_cache != tail)
            break;
        if (atomic_load_explicit(&r->done, memory_order_acquire)) {
            r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
            if (r->head_cache == tail)
                return 1;
            break;
        }
        bench_poll_pause(&spins);
    }
    uint64_t n = r->head_cache - tail;
    if (n > 256)
        n = 256;
    for (uint64_t i = 0; i < n; i++) {
        memcpy(r->local, ring_slot(r, tail), r->msg_size);
        tail++;
        atomic_store_explicit(&r->tail, tail, memory_order_release);
    }
    *msgs += n;
    *bytes += n * r->msg_size;
    return 0;
}

static int ring_stream(const bench_ctx *ctx, size_t msg_size, size_t nslots, bench_result *out)
{
    static const bench_stream_ops ops = {ring_produce, ring_consume};
    size_t map_size = RING_DATA_OFFSET + msg_size * nslots;
    struct ring *r = bench_shared_map(map_size);
    if (r == NULL)
        return bench_fail(out, "mmap: %s", strerror(errno));
    r->msg_size = msg_size;
    r->nslots = nslots;
    r->map_size = map_size;
    r->local = malloc(msg_size);
    if (r->local == NULL) {
        bench_shared_unmap(r, map_size);
        return bench_fail(out, "out of memory");
    }
    /* Touch everything once so that page faults are not measured. */
    memset(r->local, 0, msg_size);
    memset((unsigned char *)r + RING_DATA_OFFSET, 0, msg_size * nslots);
    int rc = bench_run_stream(ctx, &ops, r, out);
    free(r->local);
    bench_shared_unmap(r, map_size);
    return rc;
}

/* 64 KiB of 64-byte slots; 4 MiB of 1 MiB slots (the L2 size here). */
int raw_ring_64(const bench_ctx *ctx, bench_result *out)
{
    return ring_stream(ctx, 64, 1024, out);
}

int raw_ring_1m(const bench_ctx *ctx, bench_result *out)
{
    return ring_stream(ctx, (size_t)1 << 20, 4, out);
}

/* ---- memcpy ------------------------------------------------------------- */

struct copy {
    unsigned char *src, *dst;
    size_t size;
};

static int copy_batch(void *arg, uint64_t n)
{
    struct copy *c = arg;
    for (uint64_t i = 0; i < n; i++) {
        memcpy(c->dst, c->src, c->size);
        /* Keep the compiler from merging or dropping the copies. */
        __asm__ __volatile__("" : : "r"(c->dst) : "memory");
    }
    return 0;
}

static int memcpy_rate(const bench_ctx *ctx, size_t size, bench_result *out)
{
    struct copy c = {malloc(size), malloc(size), size};
    if (c.src == NULL || c.dst == NULL) {
        free(c.src);
        free(c.dst);
        return bench_fail(out, "out of memory");
    }
    memset(c.src, 1, size);
    memset(c.dst, 2, size);
    int rc = bench_run_batches(ctx, copy_batch, &c, 1, size, out);
    free(c.src);
    free(c.dst);
    return rc;
}

int raw_memcpy_1m(const bench_ctx *ctx, bench_result *out)
{
    return memcpy_rate(ctx, (size_t)1 << 20, out);
}

int raw_memcpy_64m(const bench_ctx *ctx, bench_result *out)
{
    return memcpy_rate(ctx, (size_t)64 << 20, out);
}

/* ---- pipe and socketpair ping-pong -------------------------------------- */

#define PP_MSG 64

struct fd_pp {
    int parent_w, parent_r; /* the parent writes pings, reads pongs */
    int child_r, child_w;
    unsigned char buf[PP_MSG];
};

static int write_full(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int read_full(int fd, unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = read(fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (k == 0)
            return -EPIPE;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int fd_serve(void *arg)
{
    struct fd_pp *f = arg;
    unsigned char msg[PP_MSG];
    for (;;) {
        if (read_full(f->child_r, msg, PP_MSG) != 0)
            return 1;
        if (msg[0] == 'q')
            return 0;
        if (write_full(f->child_w, msg, PP_MSG) != 0)
            return 1;
    }
}

static int fd_ping(void *arg)
{
    struct fd_pp *f = arg;
    int r = write_full(f->parent_w, f->buf, PP_MSG);
    if (r == 0)
        r = read_full(f->parent_r, f->buf, PP_MSG);
    return r;
}

static int fd_quit(void *arg)
{
    struct fd_pp *f = arg;
    f->buf[0] = 'q';
    return write_full(f->parent_w, f->buf, PP_MSG);
}

static const bench_pingpong_ops fd_ops = {fd_serve, fd_ping, fd_quit};

int raw_pipe_pingpong(const bench_ctx *ctx, bench_result *out)
{
    int p2c[2], c2p[2];
    if (pipe2(p2c, O_CLOEXEC) != 0)
        return bench_fail(out, "pipe: %s", strerror(errno));
    if (pipe2(c2p, O_CLOEXEC) != 0) {
        close(p2c[0]);
        close(p2c[1]);
        return bench_fail(out, "pipe: %s", strerror(errno));
    }
    struct fd_pp f = {.parent_w = p2c[1],
                      .parent_r = c2p[0],
                      .child_r = p2c[0],
                      .child_w = c2p[1]};
    memset(f.buf, 'p', PP_MSG);
    int rc = bench_run_pingpong(ctx, &fd_ops, &f, out);
    close(p2c[0]);
    close(p2c[1]);
    close(c2p[0]);
    close(c2p[1]);
    return rc;
}

int raw_socketpair_pingpong(const bench_ctx *ctx, bench_result *out)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return bench_fail(out, "socketpair: %s", strerror(errno));
    struct fd_pp f = {.parent_w = sv[0],
                      .parent_r = sv[0],
                      .child_r = sv[1],
                      .child_w = sv[1]};
    memset(f.buf, 'p', PP_MSG);
    int rc = bench_run_pingpong(ctx, &fd_ops, &f, out);
    close(sv[0]);
    close(sv[1]);
    return rc;
}

/* ---- malloc ------------------------------------------------------------- */

/* A store the compiler cannot drop, so that malloc+free is not elided. */
static void *volatile malloc_sink;

static int malloc_batch(void *arg, uint64_t n)
{
    size_t size = arg != NULL ? *(const size_t *)arg : 64;
    for (uint64_t i = 0; i < n; i++) {
        void *p = malloc(size);
        if (p == NULL)
            return -ENOMEM;
        malloc_sink = p;
        free(p);
    }
    return 0;
}

int raw_malloc_64(const bench_ctx *ctx, bench_result *out)
{
    return bench_run_batches(ctx, malloc_batch, NULL, 1024, 0, out);
}

int raw_malloc_64_pair(const bench_ctx *ctx, bench_result *out)
{
    return bench_run_pair(ctx, malloc_batch, NULL, 1024, out, NULL);
}

static const size_t msize_4k = 4096, msize_1m = (size_t)1 << 20;

int raw_malloc_4k(const bench_ctx *ctx, bench_result *out)
{
    return bench_run_batches(ctx, malloc_batch, (void *)&msize_4k, 256, 0, out);
}

int raw_malloc_1m(const bench_ctx *ctx, bench_result *out)
{
    return bench_run_batches(ctx, malloc_batch, (void *)&msize_1m, 16, 0, out);
}
