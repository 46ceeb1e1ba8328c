/*
 * libmp_process.c: process start + join per start method (issue 5).
 *
 * NOT AVAILABLE YET.  include/libmp/process.h is on main, but its
 * implementation (src/process.c) and the start-method contexts
 * (include/libmp/context.h) are not; these stubs return BENCH_NA, printed
 * as "n/a".  When they land (git merge main), each becomes, timed like
 * start_join_latency() in raw.c with bench_window and bench_lat:
 *
 *     p = mp_process_new(.target = <a target returning 0 at once>,
 *                        .ctx = <the "fork" / "spawn" / "forkserver" context>);
 *     mp_process_start(p);
 *     mp_process_join(p, MP_FOREVER);      one sample: start to here
 *     mp_process_exitcode(p, &code);       check code == 0
 *     mp_process_free(p);
 *
 * The raw figures beside them: raw_fork_waitpid (fork and forkserver) and
 * raw_posix_spawn (spawn of this same executable).  For forkserver, start
 * one process before the window so the server's own start is not counted.
 */
#include "benches.h"

int lm_process_fork(const bench_ctx *ctx, bench_result *out)
{
    return bench_na(out, "process module not on main yet");
}

int lm_process_spawn(const bench_ctx *ctx, bench_result *out)
{
    return bench_na(out, "process module (spawn) not on main yet");
}

int lm_process_forkserver(const bench_ctx *ctx, bench_result *out)
{
    return bench_na(out, "process module (forkserver) not on main yet");
}
