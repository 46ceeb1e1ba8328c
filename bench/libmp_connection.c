/*
 * libmp_connection.c: Pipe round trip (issue 4).
 *
 * NOT AVAILABLE YET: include/libmp/connection.h is not on main.  This stub
 * returns BENCH_NA, printed as "n/a".  When it lands (git merge main):
 * bench_run_pingpong as raw_pipe_pingpong in raw.c, with two one-way pipes
 * from mp_pipe (duplex false), as the raw figure uses two pipe(2)s; ping =
 * send_bytes of 64 bytes on one + recv_bytes (or recv_bytes_into, with no
 * allocation) on the other; serve echoes until a quit message.  raw: raw_pipe_pingpong (raw_socketpair_pingpong is
 * the reference for a duplex mp_pipe).
 */
#include "benches.h"

int lm_pipe_pingpong(const bench_ctx *ctx, bench_result *out)
{
    return bench_na(out, "connection.h not on main yet");
}
