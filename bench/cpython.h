/*
 * cpython.h: run bench_cpython.py and read the figures it prints as JSON.
 */
#ifndef MPBENCH_CPYTHON_H
#define MPBENCH_CPYTHON_H

#include "harness.h"

#define PY_MAX_FIGS 64
#define PY_MAX_REPS 64

typedef struct py_fig {
    char id[48];
    int status;               /* BENCH_OK, BENCH_NA or BENCH_ERR */
    bench_result r;           /* medians over the repeats */
    double reps[PY_MAX_REPS]; /* the headline value of each repeat */
    int nreps;
} py_fig;

typedef struct py_run {
    int status; /* BENCH_OK, or BENCH_NA / BENCH_ERR for the run */
    char why[200];
    char version[96]; /* "3.11.7 (main, ...)" */
    char executable[256];
    py_fig figs[PY_MAX_FIGS];
    int nfigs;
} py_run;

/*
 * Run `python script --duration D --warmup W --repeats R --ids a,b,...
 * --json-out TMPFILE --quiet`, with its stdout and stderr sent to our
 * stderr, and parse the JSON it writes to TMPFILE.  It is killed after
 * timeout seconds.  out->status is BENCH_NA when python or the script
 * cannot be run, BENCH_ERR when it fails or writes something that is not
 * the expected JSON.
 */
void cpython_run(const char *python, const char *script, const bench_ctx *ctx, int repeats,
                 const char *ids, double timeout, py_run *out);

/* The figure of one id, or NULL. */
const py_fig *cpython_find(const py_run *run, const char *id);

#endif /* MPBENCH_CPYTHON_H */
