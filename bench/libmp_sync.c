/*
 * libmp_sync.c: Lock, Event and Value (issue 3).
 *
 * NOT AVAILABLE YET: include/libmp/synchronize.h and
 * include/libmp/sharedctypes.h are not on main.  These stubs return
 * BENCH_NA, printed as "n/a".  When the modules land (git merge main),
 * fill them in with the same shape as the raw figure beside them:
 *
 * lm_lock_uncontended  bench_run_batches, batch 1024, of
 *                      mp_lock_acquire(lock, MP_FOREVER) + mp_lock_release(lock)
 *                      on one Lock (synchronize.h); raw: raw_mutex_uncontended.
 * lm_lock_contended    bench_run_pair with the same loop body; the Lock is in
 *                      the arena, so the forked child uses the same pointer;
 *                      raw: raw_mutex_contended.
 * lm_value_contended   bench_run_pair: take the Value's own lock, add 1 to the
 *                      value, release (sharedctypes.h: its get_lock and typed
 *                      accessors); check the final value against *total_ops
 *                      as raw_mutex_counter does.
 * lm_event_pingpong    bench_run_pingpong with two Events (synchronize.h):
 *                      ping = set(a), wait(b), clear(b); serve = wait(a),
 *                      clear(a), set(b), until a quit flag in shared memory;
 *                      raw: raw_futex_pingpong.
 */
#include "benches.h"

int lm_lock_uncontended(const bench_ctx *ctx, bench_result *out)
{
    return bench_na(out, "synchronize.h (Lock) not on main yet");
}

int lm_lock_contended(const bench_ctx *ctx, bench_result *out)
{
    return bench_na(out, "synchronize.h (Lock) not on main yet");
}

int lm_value_contended(const bench_ctx *ctx, bench_result *out)
{
    return bench_na(out, "sharedctypes.h (Value) not on main yet");
}

int lm_event_pingpong(const bench_ctx *ctx, bench_result *out)
{
    return bench_na(out, "synchronize.h (Event) not on main yet");
}
