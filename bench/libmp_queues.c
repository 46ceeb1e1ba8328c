/*
 * libmp_queues.c: Queue throughput and ping-pong (issue 4), with the same
 * shapes as the raw figures beside them in raw.c.
 *
 * lm_queue_64, lm_queue_1m
 *     one producer process puts messages of 64 B (or 1 MiB) with
 *     mp_queue_put until told to stop, then a zero-length message as the
 *     end marker; the consumer (the measuring process) takes them with
 *     mp_queue_get into its own buffer, a few per call of consume.  The
 *     queue is unbounded with .capacity set to the raw ring's bytes, 64 KiB
 *     and 4 MiB (queues.h: a 64 B message is copied into a 128-byte slot of
 *     the ring; a 1 MiB one into an arena block whose bytes count against
 *     the capacity).  Both sides copy, as the raw ring's do.
 *     raw: raw_ring_64, raw_ring_1m.
 * lm_queue_1m_zero_copy
 *     the hand-off of docs/queues.md ("Large messages without copying"):
 *     the producer takes a 1 MiB block with mp_shared_alloc_uninit, writes its
 *     first and last cache lines and puts the 8-byte pointer on a default
 *     Queue (maxsize 62); the consumer gets the pointer, reads the first and last cache
 *     lines and frees the block (a NULL pointer is the end marker).
 *     Compared with lm_queue_1m, the copying Queue, in the same run.
 * lm_queue_ptr_bounded
 *     the same Queue (maxsize 62) and the same 8-byte messages with no heap
 *     block behind them: the rate the Queue alone allows the hand-off.
 * lm_queue_pingpong
 *     round trips of 64 B through two default Queues: ping = put(a) +
 *     get(b); serve = get(a), put(b), until a zero-length message.
 *     raw: raw_futex_pingpong.
 */
#include "benches.h"

#include <libmp.h>

#include <stdlib.h>
#include <string.h>

/* ---- producer to consumer ----------------------------------------------- */

struct q_stream {
    mp_queue *q;
    size_t msg_size;
    unsigned batch;       /* gets per call of consume */
    unsigned char *local; /* this process's buffer (after fork: own copy) */
};

static int q_produce(void *arg, const _Atomic uint32_t *stop)
{
    struct q_stream *s = arg;
    memset(s->local, 'p', s->msg_size);
    while (atomic_load_explicit(stop, memory_order_relaxed) == 0) {
        for (int k = 0; k < 16; k++) {
            int r = mp_queue_put(s->q, s->local, s->msg_size, MP_FOREVER);
            if (r != 0)
                return 1;
        }
    }
    return mp_queue_put(s->q, NULL, 0, MP_FOREVER) == 0 ? 0 : 1;
}

static int q_consume(void *arg, uint64_t *msgs, uint64_t *bytes)
{
    struct q_stream *s = arg;
    for (unsigned i = 0; i < s->batch; i++) {
        size_t len = 0;
        int r = mp_queue_get(s->q, s->local, s->msg_size, &len, MP_FOREVER);
        if (r != 0)
            return r < 0 ? r : -1;
        if (len == 0)
            return 1;
        if (len != s->msg_size)
            return -1;
        *msgs += 1;
        *bytes += len;
    }
    return 0;
}

/*
 * batch: how many gets one call of consume makes, so that the harness
 * reads the clock about as often as for the raw ring (which takes up to
 * 256 messages, or its 4 slots of 1 MiB, per call).
 */
static int q_stream_run(const bench_ctx *ctx, size_t msg_size, size_t capacity, unsigned batch,
                        bench_result *out)
{
    static const bench_stream_ops ops = {q_produce, q_consume};
    struct q_stream s = {mp_queue_new(.capacity = capacity), msg_size, batch,
                         malloc(msg_size)};
    int rc;
    if (s.q == NULL)
        rc = bench_fail(out, "mp_queue_new: %s", mp_strerror(mp_last_error()));
    else if (s.local == NULL)
        rc = bench_fail(out, "out of memory");
    else {
        memset(s.local, 0, msg_size);
        rc = bench_run_stream(ctx, &ops, &s, out);
    }
    mp_queue_free(s.q);
    free(s.local);
    return rc;
}

int lm_queue_64(const bench_ctx *ctx, bench_result *out)
{
    return q_stream_run(ctx, 64, (size_t)64 << 10, 256, out);
}

int lm_queue_1m(const bench_ctx *ctx, bench_result *out)
{
    return q_stream_run(ctx, (size_t)1 << 20, (size_t)4 << 20, 4, out);
}

/* ---- 1 MiB by pointer ---------------------------------------------------- */

#define ZC_SIZE ((size_t)1 << 20)
/* 62 queued, one being filled, one being read: every block in flight fits
 * among the 64 slots the arena keeps blocks of up to 1 MiB in for reuse. */
#define ZC_MAXSIZE 62

/* A stream of ops over a Queue of maxsize ZC_MAXSIZE. */
static int zc_stream(const bench_ctx *ctx, const bench_stream_ops *ops, bench_result *out)
{
    mp_queue *q = mp_queue_new(.maxsize = ZC_MAXSIZE);
    if (q == NULL)
        return bench_fail(out, "mp_queue_new: %s", mp_strerror(mp_last_error()));
    int rc = bench_run_stream(ctx, ops, q, out);
    mp_queue_free(q);
    return rc;
}

static int zc_produce(void *arg, const _Atomic uint32_t *stop)
{
    mp_queue *q = arg;
    while (atomic_load_explicit(stop, memory_order_relaxed) == 0) {
        for (int k = 0; k < 16; k++) {
            unsigned char *m = mp_shared_alloc_uninit(ZC_SIZE);
            if (m == NULL)
                return 1;
            m[0] = (unsigned char)k;
            m[ZC_SIZE - 1] = (unsigned char)k;
            if (mp_queue_put(q, &m, sizeof m, MP_FOREVER) != 0)
                return 1;
        }
    }
    void *end = NULL;
    return mp_queue_put(q, &end, sizeof end, MP_FOREVER) == 0 ? 0 : 1;
}

static int zc_consume(void *arg, uint64_t *msgs, uint64_t *bytes)
{
    mp_queue *q = arg;
    for (int i = 0; i < 16; i++) {
        volatile unsigned char *m;
        size_t len = 0;
        if (mp_queue_get(q, (void *)&m, sizeof m, &len, MP_FOREVER) != 0 || len != sizeof m)
            return -1;
        if (m == NULL)
            return 1;
        if (m[0] != m[ZC_SIZE - 1] || mp_shared_free((void *)m) != 0)
            return -1;
        *msgs += 1;
        *bytes += ZC_SIZE;
    }
    return 0;
}

int lm_queue_1m_zero_copy(const bench_ctx *ctx, bench_result *out)
{
    static const bench_stream_ops ops = {zc_produce, zc_consume};
    /* Bounded, as docs/queues.md advises (ZC_MAXSIZE).  On a busy machine
     * a short queue sends both sides to sleep every few messages: the
     * Queue alone (lm_queue_ptr_bounded) made 0.4-0.7 M msg/s with
     * maxsize 14 and 3-3.8 M with 62 in the same minutes; beyond 64 blocks
     * in flight the arena punches them and faults them in again. */
    return zc_stream(ctx, &ops, out);
}

static int ptr_produce(void *arg, const _Atomic uint32_t *stop)
{
    mp_queue *q = arg;
    uintptr_t v = 0;
    while (atomic_load_explicit(stop, memory_order_relaxed) == 0) {
        for (int k = 0; k < 16; k++) {
            v++;
            if (mp_queue_put(q, &v, sizeof v, MP_FOREVER) != 0)
                return 1;
        }
    }
    v = 0;
    return mp_queue_put(q, &v, sizeof v, MP_FOREVER) == 0 ? 0 : 1;
}

static int ptr_consume(void *arg, uint64_t *msgs, uint64_t *bytes)
{
    mp_queue *q = arg;
    for (int i = 0; i < 16; i++) {
        uintptr_t v;
        size_t len = 0;
        if (mp_queue_get(q, &v, sizeof v, &len, MP_FOREVER) != 0 || len != sizeof v)
            return -1;
        if (v == 0)
            return 1;
        *msgs += 1;
        *bytes += sizeof v;
    }
    return 0;
}

int lm_queue_ptr_bounded(const bench_ctx *ctx, bench_result *out)
{
    static const bench_stream_ops ops = {ptr_produce, ptr_consume};
    return zc_stream(ctx, &ops, out);
}

/* ---- ping-pong ---------------------------------------------------------- */

#define QPP_MSG 64

struct q_pp {
    mp_queue *a, *b; /* a: parent to child, b: child to parent */
    unsigned char buf[QPP_MSG];
};

static int q_serve(void *arg)
{
    struct q_pp *p = arg;
    unsigned char msg[QPP_MSG];
    for (;;) {
        size_t len = 0;
        if (mp_queue_get(p->a, msg, sizeof msg, &len, MP_FOREVER) != 0)
            return 1;
        if (len == 0)
            return 0;
        if (mp_queue_put(p->b, msg, len, MP_FOREVER) != 0)
            return 1;
    }
}

static int q_ping(void *arg)
{
    struct q_pp *p = arg;
    size_t len = 0;
    int r = mp_queue_put(p->a, p->buf, QPP_MSG, MP_FOREVER);
    if (r == 0)
        r = mp_queue_get(p->b, p->buf, QPP_MSG, &len, MP_FOREVER);
    if (r == 0 && len != QPP_MSG)
        r = -1;
    return r;
}

static int q_quit(void *arg)
{
    struct q_pp *p = arg;
    return mp_queue_put(p->a, NULL, 0, MP_FOREVER);
}

int lm_queue_pingpong(const bench_ctx *ctx, bench_result *out)
{
    static const bench_pingpong_ops ops = {q_serve, q_ping, q_quit};
    struct q_pp p = {mp_queue_new(), mp_queue_new(), {0}};
    int rc;
    memset(p.buf, 'p', QPP_MSG);
    if (p.a == NULL || p.b == NULL)
        rc = bench_fail(out, "mp_queue_new: %s", mp_strerror(mp_last_error()));
    else
        rc = bench_run_pingpong(ctx, &ops, &p, out);
    mp_queue_free(p.a);
    mp_queue_free(p.b);
    return rc;
}
