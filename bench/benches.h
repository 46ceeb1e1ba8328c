/*
 * benches.h: every benchmark function of mpbench.
 *
 * raw_*  the operating-system mechanism, in C (raw.c);
 * lm_*   the libmp operation (libmp_<module>.c).  A libmp module that is not
 *        on main yet has a stub returning BENCH_NA; its comment names the API
 *        it will call.
 * The table in mpbench.c puts each lm_* beside its raw_* and the CPython
 * figure of the same id (bench_cpython.py).
 */
#ifndef MPBENCH_BENCHES_H
#define MPBENCH_BENCHES_H

#include "harness.h"

/* raw.c */
int raw_fork_waitpid(const bench_ctx *ctx, bench_result *out);
int raw_posix_spawn(const bench_ctx *ctx, bench_result *out);
int raw_mutex_uncontended(const bench_ctx *ctx, bench_result *out);
int raw_robust_mutex_uncontended(const bench_ctx *ctx, bench_result *out);
int raw_sem_uncontended(const bench_ctx *ctx, bench_result *out);
int raw_mutex_contended(const bench_ctx *ctx, bench_result *out);
int raw_mutex_counter(const bench_ctx *ctx, bench_result *out);
int raw_robust_mutex_counter(const bench_ctx *ctx, bench_result *out);
int raw_futex_pingpong(const bench_ctx *ctx, bench_result *out);
int raw_futex_pingpong_sleep(const bench_ctx *ctx, bench_result *out);
int raw_ring_64(const bench_ctx *ctx, bench_result *out);
int raw_ring_1m(const bench_ctx *ctx, bench_result *out);
int raw_memcpy_1m(const bench_ctx *ctx, bench_result *out);
int raw_memcpy_64m(const bench_ctx *ctx, bench_result *out);
int raw_pipe_pingpong(const bench_ctx *ctx, bench_result *out);
int raw_socketpair_pingpong(const bench_ctx *ctx, bench_result *out);
int raw_malloc_64(const bench_ctx *ctx, bench_result *out);
int raw_malloc_64_pair(const bench_ctx *ctx, bench_result *out);
int raw_malloc_4k(const bench_ctx *ctx, bench_result *out);
int raw_malloc_1m(const bench_ctx *ctx, bench_result *out);

/* libmp_heap.c */
int lm_heap_alloc_64(const bench_ctx *ctx, bench_result *out);
int lm_heap_alloc_64_pair(const bench_ctx *ctx, bench_result *out);
int lm_heap_alloc_4k(const bench_ctx *ctx, bench_result *out);
int lm_heap_alloc_1m(const bench_ctx *ctx, bench_result *out);

/* libmp_process.c (stubs until src/process.c lands) */
int lm_process_fork(const bench_ctx *ctx, bench_result *out);
int lm_process_spawn(const bench_ctx *ctx, bench_result *out);
int lm_process_forkserver(const bench_ctx *ctx, bench_result *out);

/* libmp_sync.c */
int lm_lock_uncontended(const bench_ctx *ctx, bench_result *out);
int lm_lock_contended(const bench_ctx *ctx, bench_result *out);
int lm_value_contended(const bench_ctx *ctx, bench_result *out);
int lm_event_pingpong(const bench_ctx *ctx, bench_result *out);

/* libmp_queues.c */
int lm_queue_64(const bench_ctx *ctx, bench_result *out);
int lm_queue_1m(const bench_ctx *ctx, bench_result *out);
int lm_queue_1m_zero_copy(const bench_ctx *ctx, bench_result *out);
int lm_queue_ptr_bounded(const bench_ctx *ctx, bench_result *out);
int lm_queue_pingpong(const bench_ctx *ctx, bench_result *out);

/* libmp_connection.c */
int lm_pipe_pingpong(const bench_ctx *ctx, bench_result *out);
int lm_pipe_duplex_pingpong(const bench_ctx *ctx, bench_result *out);

/* libmp_pool.c (stubs until pool.h lands) */
int lm_pool_map_cs1(const bench_ctx *ctx, bench_result *out);
int lm_pool_map_default(const bench_ctx *ctx, bench_result *out);
int lm_pool_apply_async(const bench_ctx *ctx, bench_result *out);
int lm_pool_imap_unordered(const bench_ctx *ctx, bench_result *out);
int lm_pool_mpi_map_cs1(const bench_ctx *ctx, bench_result *out);
int lm_pool_mpi_map_default(const bench_ctx *ctx, bench_result *out);
int lm_pool_mpi_apply_async(const bench_ctx *ctx, bench_result *out);

/* raw_mpi.c: MPI_Send/MPI_Recv of 64 B between two ranks, round trips per
 * second (BENCH_NA without MPI).  raw_mpi_main is mpbench's main when it
 * runs as one of those ranks (argv[1] == RAW_MPI_FLAG). */
#define RAW_MPI_FLAG "--raw-mpi-rtt"
int raw_mpi_rtt(const bench_ctx *ctx, bench_result *out);
int raw_mpi_main(int argc, char **argv);

/* libmp_managers.c (stub until managers.h lands) */
int lm_manager_dict(const bench_ctx *ctx, bench_result *out);
int lm_manager_lock(const bench_ctx *ctx, bench_result *out);

/* oversub.c: the --oversubscribe tables (printed to stdout); 0 or 1.
 * selected(id) says which rows to run (ids oversub.event, oversub.lock,
 * oversub.sem, oversub.queue, oversub.pool, oversub.ring; the raw
 * comparator runs with any ping-pong row, the raw Lock ring with
 * oversub.lock); pairs (0: 1, 2, 4 and 8) limits the P column. */
int oversub_main(const bench_ctx *ctx, int repeats, bool (*selected)(const char *id),
                 int pairs);

#endif /* MPBENCH_BENCHES_H */
