/*
 * oversub.c: mpbench --oversubscribe, blocking on a machine with more
 * runnable processes than cores (issue 17).
 *
 * Ping-pong: P pairs of processes (2P processes, P = 1, 2, 4, 8) do round
 * trips at once, each pair on its own objects, through
 *   raw      one shared word, FUTEX_WAIT on every wait and FUTEX_WAKE on
 *            every store (the "always sleeping" comparator);
 *   ring     the Lock handoff's ring (below) on three plain futex mutexes,
 *            each wait a FUTEX_WAITV on the mutex word and a word that
 *            stands for the holder's life word: the kernel's work of the
 *            Lock handoff without libmp's code, run with the lock row (the
 *            price of waking on an owner's death, docs/performance.md);
 *   event    two Events: ping = set(a), wait(b), clear(b);
 *   lock     three Locks passed around a ring: each side holds one and
 *            acquires the one the other is about to release, then releases
 *            its own, so every acquire waits for the other side (a Lock
 *            cannot be released by a process that does not hold it); one
 *            step of each side counts as a round trip (a wake-up each way);
 *   sem      two Semaphores(0): ping = release(a), acquire(b);
 *   queue    two Queues, 64 B messages.
 * Each repeat reports the total round trips per second of all pairs and
 * the p50/p99 of every round trip timed by the pinging sides; repeats
 * interleave the kinds.  The table shows the median over repeats, the
 * slowest and fastest repeat, the ratio of the medians to raw's at the same
 * P, and the median of each repeat's ratio to the raw repeat just before it
 * ("paired": the steadier figure while the machine's load drifts).
 *
 * Pool.map: mp_pool_map of N trivial tasks, chunksize 1, with 1, 4 and 8
 * workers per core; ten timed maps each: the median rate, the slowest
 * one's ratio to the median, and the median's ratio to 1 worker per core.
 */
#include "benches.h"

#include <libmp.h>

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449 /* Linux 5.16; the C library's headers may lack it */
#endif

enum { K_RAW, K_EVENT, K_RING, K_LOCK, K_SEM, K_QUEUE, NKINDS };
static const char *const kind_id[NKINDS] = {"oversub.raw",  "oversub.event", "oversub.ring",
                                            "oversub.lock", "oversub.sem",   "oversub.queue"};
static const char *const kind_name[NKINDS] = {"raw futex, always sleeping",
                                              "Event",
                                              "raw Lock ring, 2-word wait",
                                              "Lock handoff",
                                              "Semaphore",
                                              "Queue 64 B"};

#define MAX_PAIRS 8
#define SAMPLES_PER_PAIR 50000
#define QMSG 64

struct pair {
    _Alignas(64) _Atomic uint32_t word; /* raw: odd = ping, even = pong */
    _Atomic uint32_t quit;
    /* ring: three mutexes (0 free, 1 held, 2 held with waiters) and the
     * two sides' stand-in life words, each on a line of its own. */
    _Alignas(64) _Atomic uint32_t mutex[3][16];
    _Atomic uint32_t life[2][16];
    uint64_t rounds; /* measured round trips */
    uint32_t nsamples;
    mp_event *ev[2];
    mp_lock *lk[3];
    mp_semaphore *sem[2];
    mp_queue *q[2];
    uint64_t sample[SAMPLES_PER_PAIR];
};

struct shared {
    _Atomic uint32_t phase; /* 0 warm-up, 1 measure, 2 stop */
    _Atomic uint32_t ready;
    struct pair pair[MAX_PAIRS];
};

/* ---- one round trip, each kind --------------------------------------- */

static void fwait(_Atomic uint32_t *w, uint32_t old)
{
    while (atomic_load(w) == old)
        syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, old, NULL, NULL, 0);
}

static void fset(_Atomic uint32_t *w, uint32_t v)
{
    atomic_store(w, v);
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/*
 * The ring's mutex (a plain three-state futex mutex) with the Lock's wait:
 * FUTEX_WAITV on the mutex word and the holder's life word, which no one
 * changes here.
 */
static void ring_wait(_Atomic uint32_t *m, _Atomic uint32_t *life)
{
    struct futex_waitv w[2] = {
        {.val = 2, .uaddr = (uintptr_t)m, .flags = FUTEX_32},
        {.val = atomic_load(life), .uaddr = (uintptr_t)life, .flags = FUTEX_32},
    };
    syscall(SYS_futex_waitv, w, 2, 0, NULL, CLOCK_MONOTONIC);
}

static void ring_lock(_Atomic uint32_t *m, _Atomic uint32_t *holder_life)
{
    uint32_t c = 0;
    if (atomic_compare_exchange_strong(m, &c, 1))
        return;
    if (c != 2)
        c = atomic_exchange(m, 2);
    while (c != 0) {
        ring_wait(m, holder_life);
        c = atomic_exchange(m, 2);
    }
}

static void ring_unlock(_Atomic uint32_t *m)
{
    if (atomic_exchange(m, 0) == 2)
        syscall(SYS_futex, (uint32_t *)m, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* One step of the ring for side `me` holding mutex *held (see K_LOCK). */
static void ring_step(struct pair *p, int me, int *held)
{
    int next = (*held + 1) % 3;
    ring_lock(p->mutex[next], p->life[!me]);
    ring_unlock(p->mutex[*held]);
    *held = next;
}

/* The pinging side's state across round trips (lock, ring: which it holds). */
struct side {
    int kind;
    struct pair *p;
    uint32_t seq;
    int held;
};

static int ping(struct side *s)
{
    struct pair *p = s->p;
    unsigned char msg[QMSG];
    size_t len = 0;
    int r = 0;
    switch (s->kind) {
    case K_RAW:
        fset(&p->word, s->seq + 1);
        fwait(&p->word, s->seq + 1);
        s->seq = atomic_load(&p->word);
        return s->seq & 1 ? -EPROTO : 0;
    case K_RING:
        ring_step(p, 0, &s->held);
        return 0;
    case K_EVENT:
        r = mp_event_set(p->ev[0]);
        if (r == 0)
            r = mp_event_wait(p->ev[1], MP_FOREVER);
        return r == 0 ? mp_event_clear(p->ev[1]) : r;
    case K_LOCK: {
        /* One step of the ring: this side waits for one release of the
         * other's, and its release lets the other's step end, which is
         * one wake-up each way, as in a round trip of the raw figure. */
        int next = (s->held + 1) % 3;
        r = mp_lock_acquire(p->lk[next], MP_FOREVER);
        if (r == 0)
            r = mp_lock_release(p->lk[s->held]);
        s->held = next;
        return r;
    }
    case K_SEM:
        r = mp_semaphore_release(p->sem[0]);
        return r == 0 ? mp_semaphore_acquire(p->sem[1], MP_FOREVER) : r;
    default:
        memset(msg, 'p', sizeof msg);
        r = mp_queue_put(p->q[0], msg, QMSG, MP_FOREVER);
        if (r == 0)
            r = mp_queue_get(p->q[1], msg, sizeof msg, &len, MP_FOREVER);
        return r == 0 && len != QMSG ? -EPROTO : r;
    }
}

static void quit(struct side *s)
{
    struct pair *p = s->p;
    atomic_store(&p->quit, 1);
    switch (s->kind) {
    case K_RAW:
        fset(&p->word, s->seq + 1);
        break;
    case K_EVENT:
        mp_event_set(p->ev[0]);
        break;
    case K_LOCK:
        mp_lock_release(p->lk[s->held]);
        break;
    case K_RING:
        ring_unlock(p->mutex[s->held]);
        break;
    case K_SEM:
        mp_semaphore_release(p->sem[0]);
        break;
    default:
        mp_queue_put(p->q[0], NULL, 0, MP_FOREVER);
        break;
    }
}

/* The answering side: until quit; its return is the exit status. */
static int serve(int kind, struct pair *p)
{
    unsigned char msg[QMSG];
    size_t len;
    uint32_t seen = 0;
    int held = 1;
    for (;;) {
        switch (kind) {
        case K_RAW:
            fwait(&p->word, seen);
            if (atomic_load(&p->quit))
                return 0;
            seen = atomic_load(&p->word) + 1;
            fset(&p->word, seen);
            break;
        case K_EVENT:
            if (mp_event_wait(p->ev[0], MP_FOREVER) != 0 || mp_event_clear(p->ev[0]) != 0)
                return 1;
            if (atomic_load(&p->quit))
                return 0;
            if (mp_event_set(p->ev[1]) != 0)
                return 1;
            break;
        case K_RING:
            ring_step(p, 1, &held);
            if (atomic_load(&p->quit)) {
                ring_unlock(p->mutex[held]);
                return 0;
            }
            break;
        case K_LOCK: {
            int next = (held + 1) % 3;
            if (mp_lock_acquire(p->lk[next], MP_FOREVER) != 0 ||
                mp_lock_release(p->lk[held]) != 0)
                return 1;
            held = next;
            if (atomic_load(&p->quit)) {
                mp_lock_release(p->lk[held]);
                return 0;
            }
            break;
        }
        case K_SEM:
            if (mp_semaphore_acquire(p->sem[0], MP_FOREVER) != 0)
                return 1;
            if (atomic_load(&p->quit))
                return 0;
            if (mp_semaphore_release(p->sem[1]) != 0)
                return 1;
            break;
        default:
            if (mp_queue_get(p->q[0], msg, sizeof msg, &len, MP_FOREVER) != 0)
                return 1;
            if (len == 0)
                return 0;
            if (mp_queue_put(p->q[1], msg, len, MP_FOREVER) != 0)
                return 1;
            break;
        }
    }
}

static int pinger(struct shared *sh, int kind, struct pair *p)
{
    struct side s = {kind, p, 0, 0};
    if (kind == K_LOCK && mp_lock_acquire(p->lk[0], MP_FOREVER) != 0)
        return 1;
    if (kind == K_RING)
        ring_lock(p->mutex[0], p->life[1]);
    atomic_fetch_add(&sh->ready, 1);
    while (atomic_load(&sh->ready) < 2 * MAX_PAIRS + 1)
        usleep(100);
    uint32_t ph;
    while ((ph = atomic_load_explicit(&sh->phase, memory_order_relaxed)) != 2) {
        uint64_t t0 = bench_ns();
        if (ping(&s) != 0)
            return 1;
        if (ph == 1) {
            p->rounds++;
            if (p->nsamples < SAMPLES_PER_PAIR)
                p->sample[p->nsamples++] = bench_ns() - t0;
        }
    }
    quit(&s);
    return 0;
}

static int server(struct shared *sh, int kind, struct pair *p)
{
    if (kind == K_LOCK && mp_lock_acquire(p->lk[1], MP_FOREVER) != 0)
        return 1;
    if (kind == K_RING)
        ring_lock(p->mutex[1], p->life[0]);
    atomic_fetch_add(&sh->ready, 1);
    return serve(kind, p);
}

static pid_t fork_child(int (*fn)(struct shared *, int, struct pair *), struct shared *sh,
                        int kind, struct pair *p)
{
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        _exit(fn(sh, kind, p));
    }
    return pid;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void free_objects(struct pair *p)
{
    for (int i = 0; i < 2; i++) {
        mp_event_free(p->ev[i]);
        mp_semaphore_free(p->sem[i]);
        mp_queue_free(p->q[i]);
    }
    for (int i = 0; i < 3; i++)
        mp_lock_free(p->lk[i]);
}

static int make_objects(int kind, struct pair *p)
{
    for (int i = 0; i < 2; i++) {
        if (kind == K_EVENT && (p->ev[i] = mp_event_new()) == NULL)
            return -1;
        if (kind == K_SEM && (p->sem[i] = mp_semaphore_new(.value = 0)) == NULL)
            return -1;
        if (kind == K_QUEUE && (p->q[i] = mp_queue_new()) == NULL)
            return -1;
    }
    for (int i = 0; kind == K_LOCK && i < 3; i++)
        if ((p->lk[i] = mp_lock_new()) == NULL)
            return -1;
    return 0;
}

/* One repeat: rate (round trips/s, all pairs), p50 and p99 in seconds. */
static int pingpong_once(const bench_ctx *ctx, int kind, int npairs, double *rate, double *p50,
                         double *p99)
{
    struct shared *sh = bench_shared_map(sizeof *sh);
    if (sh == NULL)
        return -1;
    pid_t pids[2 * MAX_PAIRS];
    int nk = 0, rc = 0;
    for (int i = 0; i < npairs && rc == 0; i++) {
        if (make_objects(kind, &sh->pair[i]) != 0) {
            rc = -1;
            break;
        }
        pid_t a = fork_child(server, sh, kind, &sh->pair[i]);
        if (a > 0)
            pids[nk++] = a;
        pid_t b = a > 0 ? fork_child(pinger, sh, kind, &sh->pair[i]) : -1;
        if (b > 0)
            pids[nk++] = b;
        if (a < 0 || b < 0)
            rc = -1;
    }
    /* Absent pairs count as ready, so that every P waits alike. */
    atomic_fetch_add(&sh->ready, 2 * (MAX_PAIRS - npairs) + 1);
    if (rc == 0) {
        usleep((useconds_t)(ctx->warmup * 1e6));
        atomic_store(&sh->phase, 1);
        usleep((useconds_t)(ctx->duration * 1e6));
        atomic_store(&sh->phase, 2);
    } else {
        atomic_store(&sh->phase, 2);
        for (int i = 0; i < nk; i++)
            kill(pids[i], SIGKILL);
    }
    uint64_t window = (uint64_t)(ctx->duration * 1e9);
    for (int i = 0; i < nk; i++) {
        int st;
        while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            rc = -1;
    }
    if (rc == 0) {
        uint64_t rounds = 0;
        size_t n = 0;
        for (int i = 0; i < npairs; i++) {
            rounds += sh->pair[i].rounds;
            n += sh->pair[i].nsamples;
        }
        uint64_t *all = malloc((n ? n : 1) * sizeof *all);
        if (all == NULL || n == 0) {
            rc = -1;
        } else {
            size_t k = 0;
            for (int i = 0; i < npairs; i++)
                for (uint32_t j = 0; j < sh->pair[i].nsamples; j++)
                    all[k++] = sh->pair[i].sample[j];
            qsort(all, n, sizeof *all, cmp_u64);
            *rate = (double)rounds / ((double)window / 1e9);
            *p50 = (double)all[n / 2] / 1e9;
            *p99 = (double)all[n * 99 / 100] / 1e9;
        }
        free(all);
    }
    for (int i = 0; i < npairs; i++)
        free_objects(&sh->pair[i]);
    bench_shared_unmap(sh, sizeof *sh);
    return rc;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_dbl);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static const char *si(double x, char *buf, size_t n)
{
    if (x >= 1e6)
        snprintf(buf, n, "%.2f M", x / 1e6);
    else if (x >= 1e3)
        snprintf(buf, n, "%.1f k", x / 1e3);
    else
        snprintf(buf, n, "%.0f", x);
    return buf;
}

/* ---- Pool.map with many workers per core --------------------------------- */

static int ident(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    memcpy(out, in, sizeof(int));
    return 0;
}

#define POOL_TASKS 400000
#define POOL_MAPS 10

static int pool_rates(int workers, double *rates)
{
    int *in = malloc(POOL_TASKS * sizeof *in), *out = malloc(POOL_TASKS * sizeof *out);
    mp_pool *pool = in && out ? mp_pool_new(.processes = workers) : NULL;
    int rc = pool == NULL ? -1 : 0;
    for (int i = 0; rc == 0 && i < POOL_TASKS; i++)
        in[i] = i;
    /* One warm-up map, then the timed ones. */
    for (int m = -1; rc == 0 && m < POOL_MAPS; m++) {
        uint64_t t0 = bench_ns();
        rc = mp_pool_map(pool, ident, in, sizeof(int), POOL_TASKS, out, sizeof(int),
                         .chunksize = 1);
        if (rc == 0 && out[POOL_TASKS - 1] != POOL_TASKS - 1)
            rc = -1;
        if (m >= 0)
            rates[m] = POOL_TASKS / ((double)(bench_ns() - t0) / 1e9);
    }
    if (pool != NULL) {
        mp_pool_close(pool);
        mp_pool_join(pool, MP_FOREVER);
        mp_pool_free(pool);
    }
    free(in);
    free(out);
    return rc;
}

static void loadavg(char *buf, size_t n)
{
    FILE *f = fopen("/proc/loadavg", "r");
    buf[0] = '\0';
    if (f != NULL) {
        if (fgets(buf, (int)n, f) != NULL)
            buf[strcspn(buf, "\n")] = '\0';
        fclose(f);
    }
}

int oversub_main(const bench_ctx *ctx, int repeats, bool (*selected)(const char *id),
                 int pairs)
{
    static const int ps[] = {1, 2, 4, 8};
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    char la[128], b1[32], b2[32], b3[32];
    loadavg(la, sizeof la);
    printf("mpbench --oversubscribe: %d cpus, %d repeats of %.2f s (+%.2f s warm-up)\n"
           "load average before: %s\n\n",
           ncpu, repeats, ctx->duration, ctx->warmup, la);
    printf("| P pairs | operation | round trips/s (median) | slowest-fastest | vs raw "
           "| vs raw, paired | p50 | p99 |\n|---|---|---|---|---|---|---|---|\n");
    size_t nr = (size_t)repeats;
    double *rate = calloc(NKINDS * nr, sizeof *rate);
    double *p50 = calloc(NKINDS * nr, sizeof *p50);
    double *p99 = calloc(NKINDS * nr, sizeof *p99);
    double *tmp = calloc(nr, sizeof *tmp);
    if (rate == NULL || p50 == NULL || p99 == NULL || tmp == NULL)
        return 1;
    int fails = 0;
    bool any = false;
    for (int k = K_EVENT; k < NKINDS; k++)
        any |= selected(kind_id[k]);
    for (size_t pi = 0; any && pi < sizeof ps / sizeof ps[0]; pi++) {
        if (pairs != 0 && ps[pi] != pairs)
            continue;
        /* Repeats interleave the kinds (raw, Event, ..., raw, Event, ...):
         * the load of a busy machine drifts within seconds. */
        bool ok[NKINDS];
        for (int k = 0; k < NKINDS; k++)
            ok[k] = k == K_RAW || selected(kind_id[k]) ||
                    (k == K_RING && selected(kind_id[K_LOCK]));
        bool run[NKINDS];
        memcpy(run, ok, sizeof run);
        for (int r = 0; r < repeats; r++)
            for (int k = 0; k < NKINDS; k++)
                if (ok[k])
                    ok[k] = pingpong_once(ctx, k, ps[pi], &rate[k * nr + r], &p50[k * nr + r],
                                          &p99[k * nr + r]) == 0;
        double raw = 0;
        for (int k = 0; k < NKINDS; k++) {
            if (!run[k])
                continue;
            if (!ok[k]) {
                printf("| %d | %s | failed | | | | | |\n", ps[pi], kind_name[k]);
                fails++;
                continue;
            }
            double *kr = rate + k * nr;
            double paired = 0;
            if (raw > 0 && ok[K_RAW]) {
                for (size_t r = 0; r < nr; r++)
                    tmp[r] = rate[K_RAW * nr + r] > 0 ? kr[r] / rate[K_RAW * nr + r] : 0;
                paired = median(tmp, repeats);
            }
            memcpy(tmp, kr, nr * sizeof *tmp);
            double m = median(tmp, repeats);
            double lo = tmp[0], hi = tmp[nr - 1];
            if (k == K_RAW)
                raw = m;
            printf("| %d | %s | %s | %s-%s | %.2fx | %.2fx | %.1f us | %.1f us |\n", ps[pi],
                   kind_name[k], si(m, b1, sizeof b1), si(lo, b2, sizeof b2),
                   si(hi, b3, sizeof b3), raw > 0 ? m / raw : 0, k == K_RAW ? 1.0 : paired,
                   median(p50 + k * nr, repeats) * 1e6, median(p99 + k * nr, repeats) * 1e6);
            fflush(stdout);
        }
    }
    free(rate);
    free(p50);
    free(p99);
    free(tmp);

    if (!selected("oversub.pool"))
        goto out;
    printf("\n| workers | Pool.map cs=1 tasks/s (median of %d) | slowest / median "
           "| median vs 1 per core |\n|---|---|---|---|\n",
           POOL_MAPS);
    double base = 0;
    static const int per[] = {1, 4, 8};
    for (size_t i = 0; i < 3; i++) {
        double r[POOL_MAPS];
        if (pool_rates(per[i] * ncpu, r) != 0) {
            printf("| %d (%dx cpus) | failed | | |\n", per[i] * ncpu, per[i]);
            fails++;
            continue;
        }
        double m = median(r, POOL_MAPS);
        if (i == 0)
            base = m;
        printf("| %d (%dx cpus) | %s | %.2f | %.2fx |\n", per[i] * ncpu, per[i],
               si(m, b1, sizeof b1), r[0] / m, base > 0 ? m / base : 0);
        fflush(stdout);
    }
out:
    loadavg(la, sizeof la);
    printf("\nload average after: %s\n", la);
    return fails != 0;
}
