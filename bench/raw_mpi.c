/*
 * raw_mpi.c: the raw reference of the pool.mpi rows: an MPI_Send/MPI_Recv
 * round trip of a 64-byte task between two ranks, with nothing of libmp.
 *
 * mpbench runs "mpiexec -n 2 mpbench --raw-mpi-rtt WARMUP DURATION" (a job
 * of its own, so that mpbench's own MPI state is not involved): rank 0 sends
 * 64 bytes, rank 1 sends them back, for the warm-up then for the duration;
 * rank 0 prints "rtt N SECONDS" and mpbench reads it.  Round trips per
 * second, times the number of workers, is what the chunksize-1 target is
 * compared with.
 */
#include "benches.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef MPBENCH_HAVE_MPI
#include <mpi.h>

int raw_mpi_main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    double warm = argc > 2 ? atof(argv[2]) : 0.05, dur = argc > 3 ? atof(argv[3]) : 0.25;
    char msg[64];
    memset(msg, 'm', sizeof msg);
    if (size != 2) {
        MPI_Finalize();
        return 2;
    }
    if (rank == 1) {
        for (;;) {
            MPI_Status st;
            MPI_Recv(msg, 64, MPI_BYTE, 0, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
            if (st.MPI_TAG == 1)
                break;
            MPI_Send(msg, 64, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
        }
    } else {
        uint64_t n = 0, t0 = bench_ns(), start = 0;
        bool timing = false;
        for (;;) {
            MPI_Send(msg, 64, MPI_BYTE, 1, 0, MPI_COMM_WORLD);
            MPI_Recv(msg, 64, MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            n++;
            if ((n & 63) != 0)
                continue;
            uint64_t t = bench_ns();
            if (!timing && t - t0 >= warm * 1e9) {
                timing = true;
                start = t;
                n = 0;
            } else if (timing && t - start >= dur * 1e9) {
                printf("rtt %llu %.9f\n", (unsigned long long)n, (double)(t - start) / 1e9);
                break;
            }
        }
        MPI_Send(msg, 64, MPI_BYTE, 1, 1, MPI_COMM_WORLD);
    }
    fflush(stdout);
    MPI_Finalize();
    return 0;
}

int raw_mpi_rtt(const bench_ctx *ctx, bench_result *out)
{
    char self[4096];
    ssize_t l = readlink("/proc/self/exe", self, sizeof self - 1);
    if (l <= 0)
        return bench_fail(out, "readlink /proc/self/exe");
    self[l] = '\0';
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             /* A clean environment: this process may be an MPI singleton
              * already (the pool rows), whose variables would make
              * mpiexec's job join it. */
             "env -i PATH=/usr/local/bin:/usr/bin:/bin "
             "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
             "mpiexec --oversubscribe -n 2 '%s' %s %g %g 2>/dev/null",
             self, RAW_MPI_FLAG, ctx->warmup, ctx->duration);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return bench_fail(out, "popen mpiexec");
    unsigned long long n = 0;
    double secs = 0;
    int got = fscanf(p, "rtt %llu %lf", &n, &secs);
    int st = pclose(p);
    if (got != 2 || st != 0 || secs <= 0)
        return bench_fail(out, "mpiexec -n 2 mpbench %s failed", RAW_MPI_FLAG);
    bench_set_rate(out, n, 0, (uint64_t)(secs * 1e9));
    return BENCH_OK;
}

#else

int raw_mpi_main(int argc, char **argv)
{
    return 2;
}

int raw_mpi_rtt(const bench_ctx *ctx, bench_result *out)
{
    return bench_na(out, "libmp built without MPI");
}

#endif
