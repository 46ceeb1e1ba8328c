/*
 * libmp_managers.c: Manager dict operations (issue 7).
 *
 * One client, as bench_cpython.py's manager_dict: a batch of n is n/2
 * pairs of d['k'] = i and d['k'], so the rate counts each call (a round
 * trip to the server process) as one operation.  The server is a child
 * started by mp_manager_start; the client reaches it through its
 * shared-memory channel (docs/managers.md).  raw: none (the nearest raw
 * figure is the futex ping-pong, one round trip without any work).
 */
#include "benches.h"

#include <libmp.h>

static int dict_batch(void *arg, uint64_t n)
{
    mp_proxy *d = arg;
    for (uint64_t i = 0; i < n / 2; i++) {
        int r = mp_dict_set(d, MP_STR("k"), MP_I64((int64_t)i));
        if (r != 0)
            return r;
        mp_val *v;
        r = mp_dict_getitem(d, MP_STR("k"), &v);
        if (r != 0)
            return r;
        mp_val_free(v);
    }
    return 0;
}

static mp_proxy *new_dict(mp_manager *m)
{
    return mp_manager_dict(m, NULL);
}

/* Start a manager, make one proxy with make(), and time batch over it. */
static int run_hosted(const bench_ctx *ctx, bench_result *out, mp_proxy *(*make)(mp_manager *),
                      int (*batch)(void *, uint64_t))
{
    mp_manager *m = mp_manager_new();
    if (m == NULL)
        return bench_fail(out, "mp_manager_new: %s", mp_strerror(mp_last_error()));
    int r = mp_manager_start(m);
    if (r != 0) {
        mp_manager_free(m);
        return bench_fail(out, "mp_manager_start: %s", mp_strerror(r));
    }
    mp_proxy *p = make(m);
    int rc;
    if (p == NULL)
        rc = bench_fail(out, "creating the proxy: %s", mp_strerror(mp_last_error()));
    else
        rc = bench_run_batches(ctx, batch, p, 1000, 0, out);
    mp_proxy_free(p);
    mp_manager_shutdown(m);
    mp_manager_free(m);
    return rc;
}

int lm_manager_dict(const bench_ctx *ctx, bench_result *out)
{
    return run_hosted(ctx, out, new_dict, dict_batch);
}

/*
 * A hosted Lock used by a process of the family: acquire and release run
 * in the caller on the arena object (no round trip to the server); each
 * pair counts as one operation.  This is the path that watches the server
 * while it waits (issue 16).
 */
static int lock_batch(void *arg, uint64_t n)
{
    mp_proxy *l = arg;
    for (uint64_t i = 0; i < n; i++) {
        int r = mp_proxy_acquire(l, MP_FOREVER);
        if (r != 0)
            return r;
        r = mp_proxy_release(l);
        if (r != 0)
            return r;
    }
    return 0;
}

int lm_manager_lock(const bench_ctx *ctx, bench_result *out)
{
    return run_hosted(ctx, out, mp_manager_lock, lock_batch);
}
