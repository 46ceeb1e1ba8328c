/*
 * libmp/mpi.h: pools whose workers are MPI processes (mpi4py.futures,
 * mpi4py.util.pool).
 *
 *   Python (mpi4py)                           C
 *   MPIPoolExecutor(max_workers=n)            ctx = mp_get_context("mpi");
 *   mpi4py.util.pool.Pool(n)                  p = mp_pool_new(.ctx = ctx, .processes = n)
 *   mpiexec -n N python -m mpi4py.futures     mpiexec -n N ./prog, with
 *     prog.py (ranks 1..N-1 serve rank 0)       mp_mpi_main(&argc, &argv) at the
 *                                               top of main
 *
 * With the "mpi" context, mp_pool_new starts a pool whose workers are MPI
 * processes, and the whole Pool API (include/libmp/pool.h) works on it
 * unchanged.  Two launch modes (docs/mpi.md):
 *
 *   spawn  the program runs alone (./prog, or mpiexec -n 1 ./prog): the
 *          pool starts its workers with MPI_Comm_spawn of the same
 *          executable (mp_set_executable respected).  libmp takes a spawned
 *          worker over after the program's constructors and before main,
 *          as for the "spawn" start method (a static program calls
 *          mp_mpi_main or mp_spawn_main at the top of main).
 *   world  mpiexec -n N ./prog: rank 0 runs the program and ranks 1..N-1
 *          serve its pools.  This needs mp_mpi_main at the top of main.
 *
 * Workers share no memory with the program: inputs and results travel in
 * MPI messages, and a pointer to a libmp object is meaningless there.
 *
 * Built only where libmp found MPI (meson option "mpi"); elsewhere
 * mp_get_context("mpi") and mp_mpi_main fail with -ENOTSUP.
 */
#ifndef LIBMP_MPI_H
#define LIBMP_MPI_H

#include "common.h"

MP_BEGIN_DECLS

/*
 * mp_mpi_main: make this process part of libmp's MPI pools; call it first
 * thing in main, with main's argc and argv (both may be NULL).
 *
 * Initialises MPI (MPI_Init_thread, unless the program did already; libmp
 * then finalises it at exit).  On rank 0 of MPI_COMM_WORLD, or when the
 * program runs alone, it returns 0 and main goes on.  On ranks 1..N-1 of an
 * "mpiexec -n N" launch it does not return: the rank serves rank 0's MPI
 * pools until rank 0 finalises, then exits with status 0.  A worker
 * started by an MPI pool's MPI_Comm_spawn is taken over by libmp's start-up
 * hook before main; where the program has no hook (fully static), this
 * call takes it over (it serves and exits).  Must be called by every rank
 * (it duplicates MPI_COMM_WORLD, a collective call).
 *
 * Returns 0; -ENOTSUP when libmp was built without MPI; MP_EINVAL when MPI
 * was already finalised or gives less than MPI_THREAD_SERIALIZED.
 * Call it once, from the main thread, before starting threads.
 */
MP_EXTERN int mp_mpi_main(int *argc, char ***argv);

MP_END_DECLS

#endif /* LIBMP_MPI_H */
