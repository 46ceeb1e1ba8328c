/*
 * libmp_managers.c: Manager dict operations (issue 7).
 *
 * NOT AVAILABLE YET: include/libmp/managers.h is not on main.  This stub
 * returns BENCH_NA, printed as "n/a".  When it lands (git merge main):
 * start a manager and create a dict proxy before the window; then
 * bench_run_batches where one batch of n is n/2 pairs of set(key, i) +
 * get(key) from this one client, so the rate counts each call (a round
 * trip to the server) as one operation, as bench_cpython.py does.
 */
#include "benches.h"

int lm_manager_dict(const bench_ctx *ctx, bench_result *out)
{
    return bench_na(out, "managers.h not on main yet");
}
