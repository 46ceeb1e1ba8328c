/*
 * libmp_sync.c: Lock, Value and Event (issue 3), each with the same loop
 * shape as the raw figure beside it in raw.c.
 *
 * lm_lock_uncontended  mp_lock_acquire + mp_lock_release on one Lock, one
 *                      process (raw: raw_mutex_uncontended, and the
 *                      lock.vs_robust row puts the same figure
 *                      beside raw_robust_mutex_uncontended).
 * lm_lock_contended    the same loop in two processes at once on one Lock
 *                      (raw: raw_mutex_contended).
 * lm_value_contended   two processes each doing Python's
 *                      "with v.get_lock(): v.value += 1" on a Value('q')
 *                      with its default lock (an RLock, as in Python), in
 *                      the header's idiom: mp_value_acquire, MP_VALUE += 1,
 *                      mp_value_release (raw: raw_mutex_counter).
 * lm_event_pingpong    round trips through two Events: ping = set(a),
 *                      wait(b), clear(b); serve = wait(a), clear(a),
 *                      set(b) (raw: raw_futex_pingpong).
 *
 * Every object is in libmp's arena, so the child forked by the harness uses
 * the same pointers.
 */
#include "benches.h"

#include <libmp.h>

#include <errno.h>
#include <string.h>

/* ---- Lock --------------------------------------------------------------- */

static int lock_batch(void *arg, uint64_t n)
{
    mp_lock *l = arg;
    for (uint64_t i = 0; i < n; i++) {
        int r = mp_lock_acquire(l, MP_FOREVER);
        if (r != 0)
            return r;
        r = mp_lock_release(l);
        if (r != 0)
            return r;
    }
    return 0;
}

static mp_lock *lock_make(bench_result *out)
{
    mp_lock *l = mp_lock_new();
    if (l == NULL)
        bench_fail(out, "mp_lock_new: %s", mp_strerror(mp_last_error()));
    return l;
}

int lm_lock_uncontended(const bench_ctx *ctx, bench_result *out)
{
    mp_lock *l = lock_make(out);
    if (l == NULL)
        return BENCH_ERR;
    int rc = bench_run_batches(ctx, lock_batch, l, 1024, 0, out);
    mp_lock_free(l);
    return rc;
}

int lm_lock_contended(const bench_ctx *ctx, bench_result *out)
{
    mp_lock *l = lock_make(out);
    if (l == NULL)
        return BENCH_ERR;
    int rc = bench_run_pair(ctx, lock_batch, l, 64, out, NULL);
    mp_lock_free(l);
    return rc;
}

/* ---- Value -------------------------------------------------------------- */

static int value_batch(void *arg, uint64_t n)
{
    mp_value *v = arg;
    for (uint64_t i = 0; i < n; i++) {
        int r = mp_value_acquire(v, MP_FOREVER);
        if (r != 0)
            return r;
        MP_VALUE(v, long long) += 1;
        r = mp_value_release(v);
        if (r != 0)
            return r;
    }
    return 0;
}

int lm_value_contended(const bench_ctx *ctx, bench_result *out)
{
    mp_value *v = mp_value_new(.typecode = 'q');
    if (v == NULL)
        return bench_fail(out, "mp_value_new: %s", mp_strerror(mp_last_error()));
    uint64_t total = 0;
    int rc = bench_run_pair(ctx, value_batch, v, 64, out, &total);
    long long got = 0;
    if (rc == BENCH_OK) {
        int r = MP_VALUE_GET(v, &got);
        if (r != 0)
            rc = bench_fail(out, "mp_value_get: %s", mp_strerror(r));
        else if ((uint64_t)got != total)
            rc = bench_fail(out, "value %lld, expected %llu", got, (unsigned long long)total);
    }
    mp_value_free(v);
    return rc;
}

/* ---- Event ping-pong ---------------------------------------------------- */

struct event_pp {
    mp_event *ping, *pong;
    _Atomic uint32_t *quit; /* in shared memory */
};

static int event_serve(void *arg)
{
    struct event_pp *e = arg;
    for (;;) {
        if (mp_event_wait(e->ping, MP_FOREVER) != 0 || mp_event_clear(e->ping) != 0)
            return 1;
        if (atomic_load(e->quit))
            return 0;
        if (mp_event_set(e->pong) != 0)
            return 1;
    }
}

static int event_ping(void *arg)
{
    struct event_pp *e = arg;
    int r = mp_event_set(e->ping);
    if (r == 0)
        r = mp_event_wait(e->pong, MP_FOREVER);
    if (r == 0)
        r = mp_event_clear(e->pong);
    return r;
}

static int event_quit(void *arg)
{
    struct event_pp *e = arg;
    atomic_store(e->quit, 1);
    return mp_event_set(e->ping);
}

int lm_event_pingpong(const bench_ctx *ctx, bench_result *out)
{
    static const bench_pingpong_ops ops = {event_serve, event_ping, event_quit};
    struct event_pp e = {mp_event_new(), mp_event_new(), bench_shared_map(sizeof *e.quit)};
    int rc;
    if (e.ping == NULL || e.pong == NULL)
        rc = bench_fail(out, "mp_event_new: %s", mp_strerror(mp_last_error()));
    else if (e.quit == NULL)
        rc = bench_fail(out, "mmap: %s", strerror(errno));
    else
        rc = bench_run_pingpong(ctx, &ops, &e, out);
    mp_event_free(e.ping);
    mp_event_free(e.pong);
    if (e.quit != NULL)
        bench_shared_unmap(e.quit, sizeof *e.quit);
    return rc;
}
