/*
 * libmp_pool.c: the worker Pool (include/libmp/pool.h).
 *
 * Each figure is a rate over a pool of 2 worker processes (as many as
 * CPython's figure uses on a 2-cpu machine: os.cpu_count()), created
 * before the window and warmed up with one small map, with a trivial task
 * (returns its input), counted in tasks or items per second.  As in
 * bench_cpython.py's sized_rate, N grows until one call lasts the warm-up,
 * then one call sized to last ctx->duration is timed.  There is no raw
 * figure.
 *
 * lm_pool_map_cs1         mp_pool_map of N ints with chunksize 1;
 * lm_pool_map_default     mp_pool_map of N ints, default chunksize (Python's
 *                         rule); the arrays are the caller's malloc'd
 *                         memory (faulted in before the window), so the
 *                         pool's one copy in and out of the arena is
 *                         counted;
 * lm_pool_apply_async     N mp_pool_apply_async of 8 bytes, then
 *                         mp_async_result_get_into and free on each;
 * lm_pool_imap_unordered  iterate mp_pool_imap_unordered over N ints
 *                         (chunksize 1) to the end.
 */
#include "benches.h"

#include <libmp.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define WORKERS 2

/* The context of the pools: NULL (local), or "mpi" for the pool.mpi rows. */
static mp_context *pool_ctx;

static int ident_fixed(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    memcpy(out, in, sizeof(int));
    return 0;
}

static int ident_bytes(const void *in, size_t in_size, mp_pool_out *out, void *arg)
{
    return mp_pool_out_write(out, in, in_size);
}

typedef int (*run_fn)(mp_pool *pool, uint64_t n, int *buf_in, int *buf_out);

static int run_map(mp_pool *pool, uint64_t n, int *in, int *out, size_t cs)
{
    for (uint64_t i = 0; i < n; i++)
        in[i] = (int)i;
    int r = mp_pool_map(pool, ident_fixed, in, sizeof(int), n, out, sizeof(int),
                        .chunksize = cs);
    if (r != 0)
        return r;
    return out[n - 1] == (int)(n - 1) ? 0 : MP_EINVAL;
}

static int run_map_cs1(mp_pool *pool, uint64_t n, int *in, int *out)
{
    return run_map(pool, n, in, out, 1);
}

static int run_map_default(mp_pool *pool, uint64_t n, int *in, int *out)
{
    return run_map(pool, n, in, out, 0);
}

static int run_apply_async(mp_pool *pool, uint64_t n, int *in, int *out)
{
    mp_async_result **rs = malloc(n * sizeof *rs);
    if (rs == NULL)
        return -ENOMEM;
    int r = 0;
    uint64_t made = 0;
    for (; made < n; made++) {
        uint64_t v = made;
        rs[made] = mp_pool_apply_async(pool, ident_bytes, &v, sizeof v);
        if (rs[made] == NULL) {
            r = mp_last_error();
            break;
        }
    }
    for (uint64_t i = 0; i < made; i++) {
        uint64_t v = 0;
        int g = mp_async_result_get_into(rs[i], MP_FOREVER, &v, sizeof v, NULL);
        if (r == 0 && (g != 0 || v != i))
            r = g != 0 ? g : MP_EINVAL;
        mp_async_result_free(rs[i]);
    }
    free(rs);
    return r;
}

static int run_imap_unordered(mp_pool *pool, uint64_t n, int *in, int *out)
{
    for (uint64_t i = 0; i < n; i++)
        in[i] = (int)i;
    mp_imap *it = mp_pool_imap_unordered(pool, ident_fixed, in, sizeof(int), n, sizeof(int));
    if (it == NULL)
        return mp_last_error();
    uint64_t got = 0, sum = 0;
    int v, r;
    while ((r = mp_imap_next(it, MP_FOREVER, &v, NULL)) == 0) {
        got++;
        sum += (uint64_t)v;
    }
    mp_imap_free(it);
    if (r != MP_EEOF)
        return r;
    return got == n && sum == n * (n - 1) / 2 ? 0 : MP_EINVAL;
}

/* Python's sized_rate: grow n until a call lasts the warm-up, then time one
 * call sized to last the duration. */
static int sized_rate(const bench_ctx *ctx, run_fn run, bench_result *out)
{
    mp_pool *pool = mp_pool_new(.processes = WORKERS, .ctx = pool_ctx);
    if (pool == NULL)
        return bench_fail(out, "mp_pool_new: %s", mp_strerror(mp_last_error()));
    uint64_t cap = (uint64_t)1 << 26;
    int *in = malloc(cap * sizeof *in), *res = malloc(cap * sizeof *res);
    int rc = BENCH_OK;
    if (in == NULL || res == NULL) {
        rc = bench_fail(out, "out of memory");
        goto done;
    }
    /* The caller's arrays exist before the call: fault them in now, so
     * that the window does not count the first touch of this program's
     * own memory. */
    memset(in, 0, cap * sizeof *in);
    memset(res, 0, cap * sizeof *res);
    int r = run_map_default(pool, 100, in, res);
    uint64_t n = 64, dt = 1;
    while (r == 0) {
        uint64_t t0 = bench_ns();
        r = run(pool, n, in, res);
        dt = bench_ns() - t0;
        if (r != 0 || dt >= ctx->warmup * 1e9 || n >= cap)
            break;
        n *= dt < ctx->warmup * 1e8 ? 4 : 2;
    }
    if (r == 0) {
        double want = (double)n * ctx->duration * 1e9 / (double)(dt ? dt : 1);
        n = want > (double)cap ? cap : want < (double)n ? n : (uint64_t)want;
        uint64_t t0 = bench_ns();
        r = run(pool, n, in, res);
        dt = bench_ns() - t0;
    }
    if (r != 0)
        rc = bench_fail(out, "pool call: %s", mp_strerror(r));
    else
        bench_set_rate(out, n, 0, dt);
done:
    free(in);
    free(res);
    mp_pool_close(pool);
    mp_pool_join(pool, MP_FOREVER);
    mp_pool_free(pool);
    return rc;
}

int lm_pool_map_cs1(const bench_ctx *ctx, bench_result *out)
{
    return sized_rate(ctx, run_map_cs1, out);
}

int lm_pool_map_default(const bench_ctx *ctx, bench_result *out)
{
    return sized_rate(ctx, run_map_default, out);
}

int lm_pool_apply_async(const bench_ctx *ctx, bench_result *out)
{
    return sized_rate(ctx, run_apply_async, out);
}

int lm_pool_imap_unordered(const bench_ctx *ctx, bench_result *out)
{
    return sized_rate(ctx, run_imap_unordered, out);
}

/*
 * The pool.mpi rows: the same calls on a pool of 2 MPI workers (spawn mode:
 * mpbench runs alone and the pool spawns them; docs/mpi.md).  The workers
 * are spawned once and reused by every row.
 */
static int mpi_rate(const bench_ctx *ctx, run_fn run, bench_result *out)
{
    mp_context *mpi = mp_get_context("mpi");
    if (mpi == NULL)
        return bench_na(out, "libmp built without MPI");
    pool_ctx = mpi;
    int r = sized_rate(ctx, run, out);
    pool_ctx = NULL;
    return r;
}

int lm_pool_mpi_map_cs1(const bench_ctx *ctx, bench_result *out)
{
    return mpi_rate(ctx, run_map_cs1, out);
}

int lm_pool_mpi_map_default(const bench_ctx *ctx, bench_result *out)
{
    return mpi_rate(ctx, run_map_default, out);
}

int lm_pool_mpi_apply_async(const bench_ctx *ctx, bench_result *out)
{
    return mpi_rate(ctx, run_apply_async, out);
}
