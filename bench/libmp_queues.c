/*
 * libmp_queues.c: Queue throughput and ping-pong (issue 4).
 *
 * NOT AVAILABLE YET: include/libmp/queues.h is not on main.  These stubs
 * return BENCH_NA, printed as "n/a".  When it lands (git merge main):
 *
 * lm_queue_64, lm_queue_1m
 *     bench_run_stream, as ring_stream() in raw.c: produce() calls
 *     mp_queue_put(q, msg, size, MP_FOREVER) until *stop, then puts a
 *     zero-length message as the end marker; consume() calls mp_queue_get
 *     into a caller buffer (a batch of up to 256 per call) and returns 1 at
 *     the zero-length message.  Messages of 64 B and 1 MiB; give the queue
 *     the same byte capacity as the raw ring (64 KiB and 4 MiB) so the two
 *     figures compare like with like.  raw: raw_ring_64, raw_ring_1m.
 * lm_queue_pingpong
 *     bench_run_pingpong with two queues: ping = mp_queue_put(a) +
 *     mp_queue_get(b); serve = get(a), put(b) until a quit message;
 *     raw: raw_futex_pingpong.
 */
#include "benches.h"

int lm_queue_64(const bench_ctx *ctx, bench_result *out)
{
    return bench_na(out, "queues.h not on main yet");
}

int lm_queue_1m(const bench_ctx *ctx, bench_result *out)
{
    return bench_na(out, "queues.h not on main yet");
}

int lm_queue_pingpong(const bench_ctx *ctx, bench_result *out)
{
    return bench_na(out, "queues.h not on main yet");
}
