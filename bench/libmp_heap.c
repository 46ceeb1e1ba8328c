/*
 * libmp_heap.c: the shared arena (include/libmp/heap.h), against malloc.
 *
 * mp_shared_alloc/mp_shared_free of 64 bytes, in one process and in two
 * processes at once (the arena is one allocator for the whole family,
 * sharing one arena, where malloc is private to each process); and of
 * 4 KiB and 1 MiB in one process (malloc serves 1 MiB with mmap+munmap,
 * the arena with a run taken and hole-punched).
 */
#include "benches.h"

#include <libmp.h>

/* A store the compiler cannot drop. */
static void *volatile arena_sink;

static int arena_batch(void *arg, uint64_t n)
{
    size_t size = arg != NULL ? *(const size_t *)arg : 64;
    for (uint64_t i = 0; i < n; i++) {
        void *p = mp_shared_alloc(size);
        if (p == NULL)
            return mp_last_error();
        arena_sink = p;
        int r = mp_shared_free(p);
        if (r != 0)
            return r;
    }
    return 0;
}

/* Create the arena before measuring (and before forking the pair). */
static int arena_ready(bench_result *out)
{
    void *p = mp_shared_alloc(64);
    if (p == NULL)
        return bench_fail(out, "mp_shared_alloc: %s", mp_strerror(mp_last_error()));
    mp_shared_free(p);
    return BENCH_OK;
}

int lm_heap_alloc_64(const bench_ctx *ctx, bench_result *out)
{
    int rc = arena_ready(out);
    if (rc != BENCH_OK)
        return rc;
    return bench_run_batches(ctx, arena_batch, NULL, 1024, 0, out);
}

int lm_heap_alloc_64_pair(const bench_ctx *ctx, bench_result *out)
{
    int rc = arena_ready(out);
    if (rc != BENCH_OK)
        return rc;
    return bench_run_pair(ctx, arena_batch, NULL, 1024, out, NULL);
}

static const size_t size_4k = 4096, size_1m = (size_t)1 << 20;

int lm_heap_alloc_4k(const bench_ctx *ctx, bench_result *out)
{
    int rc = arena_ready(out);
    if (rc != BENCH_OK)
        return rc;
    return bench_run_batches(ctx, arena_batch, (void *)&size_4k, 256, 0, out);
}

int lm_heap_alloc_1m(const bench_ctx *ctx, bench_result *out)
{
    int rc = arena_ready(out);
    if (rc != BENCH_OK)
        return rc;
    return bench_run_batches(ctx, arena_batch, (void *)&size_1m, 16, 0, out);
}
