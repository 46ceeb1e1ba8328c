/*
 * libmp_pool.c: the worker Pool (issue 6).
 *
 * NOT AVAILABLE YET: include/libmp/pool.h is not on main.  These stubs
 * return BENCH_NA, printed as "n/a".  When it lands (git merge main), each
 * is a rate over a pool of 2 workers created before the window (and warmed
 * up with one small map), with a trivial task function (returns its input),
 * counted in tasks or items per second; there is no raw figure:
 *
 * lm_pool_map_cs1         map with chunksize 1 over N items;
 * lm_pool_map_default     map over fixed-size items with the default
 *                         chunksize (Python's rule);
 * lm_pool_apply_async     N apply_async calls, then get on each result;
 * lm_pool_imap_unordered  iterate imap_unordered over N items to the end.
 * Choose N from a first timed run so one repeat takes ctx->duration.
 */
#include "benches.h"

int lm_pool_map_cs1(const bench_ctx *ctx, bench_result *out)
{
    return bench_na(out, "pool.h not on main yet");
}

int lm_pool_map_default(const bench_ctx *ctx, bench_result *out)
{
    return bench_na(out, "pool.h not on main yet");
}

int lm_pool_apply_async(const bench_ctx *ctx, bench_result *out)
{
    return bench_na(out, "pool.h not on main yet");
}

int lm_pool_imap_unordered(const bench_ctx *ctx, bench_result *out)
{
    return bench_na(out, "pool.h not on main yet");
}
