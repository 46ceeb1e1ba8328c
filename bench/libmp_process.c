/*
 * libmp_process.c: process start + join per start method (process.h,
 * context.h), timed like start_join_latency() in raw.c:
 *
 *     p = mp_process_new(.target = noop, .ctx = <fork / spawn / forkserver>);
 *     mp_process_start(p);
 *     mp_process_join(p, MP_FOREVER);      one sample: start to here
 *     mp_process_exitcode(p, &code);       checked: 0
 *     mp_process_free(p);
 *
 * The raw figures beside them: raw_fork_waitpid (fork and forkserver) and
 * raw_posix_spawn (spawn of this same executable).  One process is started
 * before the window, so that the forkserver's own start (and the arena's
 * creation) is not counted.
 */
#include "benches.h"

#include <libmp.h>
#include <stdio.h>

static int noop(void *arg, size_t size)
{
    return 0;
}

/* Start, join and check one process of ctx; its start-to-join time. */
static int one(mp_context *ctx, uint64_t *ns, bench_result *out)
{
    mp_process *p = mp_process_new(.target = noop, .ctx = ctx);
    if (p == NULL)
        return bench_fail(out, "mp_process_new: %s", mp_strerror(mp_last_error()));
    uint64_t t0 = bench_ns();
    int r = mp_process_start(p);
    if (r == 0)
        r = mp_process_join(p, MP_FOREVER);
    uint64_t t1 = bench_ns();
    int code = -1;
    if (r == 0)
        r = mp_process_exitcode(p, &code);
    mp_process_free(p);
    if (r != 0)
        return bench_fail(out, "start/join: %s", mp_strerror(r));
    if (code != 0)
        return bench_fail(out, "child exit code %d", code);
    *ns = t1 - t0;
    return BENCH_OK;
}

static int start_join(const bench_ctx *bctx, const char *method, bench_result *out)
{
    mp_context *ctx = mp_get_context(method);
    if (ctx == NULL)
        return bench_fail(out, "mp_get_context: %s", mp_strerror(mp_last_error()));
    fflush(NULL);
    uint64_t ns;
    int rc = one(ctx, &ns, out);
    if (rc != BENCH_OK)
        return rc;
    bench_lat lat;
    bench_lat_init(&lat);
    bench_window w;
    bench_window_init(&w, bctx);
    for (;;) {
        uint64_t t0 = bench_ns();
        rc = one(ctx, &ns, out);
        if (rc != BENCH_OK) {
            bench_lat_free(&lat);
            return rc;
        }
        if (t0 >= w.measure && (!bench_lat_add(&lat, ns) || (t0 + ns >= w.end && lat.n >= 5)))
            break;
    }
    return bench_lat_finish(&lat, out);
}

int lm_process_fork(const bench_ctx *ctx, bench_result *out)
{
    return start_join(ctx, "fork", out);
}

int lm_process_spawn(const bench_ctx *ctx, bench_result *out)
{
    return start_join(ctx, "spawn", out);
}

int lm_process_forkserver(const bench_ctx *ctx, bench_result *out)
{
    return start_join(ctx, "forkserver", out);
}
