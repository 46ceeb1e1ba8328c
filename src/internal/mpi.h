/*
 * internal/mpi.h: the MPI pool (pool_mpi.c, the parent side; context_mpi.c,
 * MPI itself and the worker side).  docs/mpi.md describes the design.
 *
 * An MPI pool is a thread pool in the creating process whose threads are
 * proxies: thread w claims chunks exactly as a worker would, ships each
 * chunk to MPI rank w in one message and writes the reply where a worker
 * would have written its outputs.  Everything else (jobs, async results,
 * imap windows, callbacks) is the local pool's own code.
 *
 * Without MPI (meson -Dmpi=disabled or not found) only the stubs at the end
 * of context.c exist: they refuse with -ENOTSUP.
 */
#ifndef LIBMP_INTERNAL_MPI_H
#define LIBMP_INTERNAL_MPI_H

#include "internal/mp.h"

struct mp_pool;
struct mp__pjob;
struct mp__mpipool;

/* True when ctx is the "mpi" context. */
bool mp__context_is_mpi(const mp_context *ctx);

/* The "mpi" context object (context.c), or NULL with mp_last_error(). */
mp_context *mp__context_mpi(void);

/* mp_get_context("mpi"): initialises MPI first (context_mpi.c), or fails
 * with -ENOTSUP without MPI. */
mp_context *mp__mpi_get_context(void);

/*
 * Start the workers of an MPI pool (spawn or world mode), send each the
 * build check and the initializer, and collect their answers.  *n is the
 * number of workers asked for (0: all there are) and receives the number
 * started.  Returns the pool's MPI state, or NULL with mp_last_error().
 */
struct mp__mpipool *mp__mpi_pool_open(const mp_pool_options *o, uint32_t *n);

/* The initializer's code on worker w (0 or negative), for the proxy
 * thread that starts.  The proxy of a worker that died waits there until
 * the pool ends, so that it is not restarted in a loop. */
int mp__mpi_pool_init_code(struct mp_pool *pool, uint32_t w);

/* True when worker w died: its proxy leaves the claiming loop. */
bool mp__mpi_worker_dead(struct mp__mpipool *M, uint32_t w);

/* Run chunk c of j on worker w and set its state word (a proxy thread). */
void mp__mpi_run_chunk(struct mp_pool *pool, struct mp__pjob *j, uint64_t c, uint32_t w);

/* Tell the workers the pool is over (once every proxy thread is gone). */
void mp__mpi_pool_stop(struct mp__mpipool *M);

/* Grow *buf (capacity *cap, doubling from 4 KiB) to hold need bytes; false
 * when out of memory (*buf is then unchanged).  Not inlined: context_mpi.c
 * calls it from frames that use sigsetjmp. */
bool mp__mpi_grow(char **buf, size_t *cap, size_t need);

/* Stop if not stopped, then free. */
void mp__mpi_pool_free(struct mp__mpipool *M);

/* ---- between the two sides (context_mpi.c and pool_mpi.c) ---------------- */

#ifdef MP__HAVE_MPI_H
#include <mpi.h>

#define MP__MPI_MAGIC 0x6c69626d70697031ull /* "libmpip1" */
#define MP__MPI_WORKER_ARG "--libmp-mpi-worker"
#define MP__MPI_MAX_MODS 128
#define MP__MPI_IDLEN 40

enum {
    MP__MPI_TAG_HELLO = 0x6d70,
    MP__MPI_TAG_ACK,
    MP__MPI_TAG_TASK,
    MP__MPI_TAG_RESULT,
    MP__MPI_TAG_END,  /* the pool is over: wait for the next one */
    MP__MPI_TAG_EXIT, /* the program ends: finalise and exit */
};

/* One loaded module: the hash of its path (as fnref.c) and its build id. */
typedef struct mp__mpi_mod {
    uint64_t hash;
    uint32_t idlen;
    uint8_t id[MP__MPI_IDLEN];
} mp__mpi_mod;

/* Parent to worker when a pool starts; followed by initarg_size bytes. */
typedef struct mp__mpi_hello {
    uint64_t magic;
    uint64_t arena_lo, arena_len; /* the parent's arena (reserved, unmapped) */
    mp__fnref init;
    uint64_t initarg_size;
    uint32_t nmods;
    uint32_t pad_;
    mp__mpi_mod mods[MP__MPI_MAX_MODS];
} mp__mpi_hello;

typedef struct mp__mpi_ack {
    int32_t code;    /* 0, MP_EINVAL (another build), or the initializer's */
    int32_t refused; /* 1: the worker refused the pool (code says why) */
    int32_t pid;
    int32_t pad_;
    char host[64];
    char msg[192];
} mp__mpi_ack;

enum { MP__MPI_OP_FIXED = 1, MP__MPI_OP_STAR, MP__MPI_OP_SLOTS };

/*
 * Parent to worker, per message.  Followed by arg_size bytes of the call's
 * .arg when has_arg (sent once per job and worker), then in_len bytes of
 * inputs: FIXED nitems * in_size; STAR each column's nitems items in turn;
 * SLOTS the slot's input records as the local pool lays them out.  A FIXED
 * or STAR message may carry several chunks of a map (a batch): their items
 * follow one another, and the worker runs them as one run of nitems items.
 */
typedef struct mp__mpi_task {
    uint32_t op;
    uint32_t flags; /* the job's MP__JF_* flags */
    mp__fnref fn;
    uint64_t job; /* the job's id: the worker keeps its .arg */
    uint64_t arg_size;
    uint32_t has_arg;
    uint32_t nitems;
    uint64_t in_size, out_size;
    uint32_t ncols;
    uint32_t pad_;
    uint64_t col_size[16];
    uint64_t in_len;
} mp__mpi_task;

/*
 * Worker to parent, per chunk.  Followed by out_len bytes: FIXED and STAR
 * the nitems outputs then, when failed, nitems int32 codes; SLOTS the
 * output records.
 */
typedef struct mp__mpi_result {
    int32_t chunk_code; /* SLOTS without records: every item failed with it */
    uint32_t failed;
    uint64_t out_len;
    uint64_t run_ns;   /* the worker's time running the items (the parent's window) */
    int64_t err_index; /* FIXED/STAR: the first failed item in the chunk */
    int32_t err_code;
    uint32_t pad_;
    char err_msg[256];
} mp__mpi_result;

/* Serialise the process's MPI calls when MPI is not MPI_THREAD_MULTIPLE. */
void mp__mpi_lock(void);
void mp__mpi_unlock(void);

/* Initialise MPI if nobody did; 0, or MP_EINVAL / -ENOTSUP. */
int mp__mpi_init(int *argc, char ***argv);

/* The duplicate of MPI_COMM_WORLD made by mp_mpi_main (world mode), or
 * MPI_COMM_NULL. */
MPI_Comm mp__mpi_world(void);

/* Wait for a message from src with tag on comm (polling with back-off, so
 * an idle process does not burn a cpu).  0, or -EIO when MPI failed. */
int mp__mpi_wait(MPI_Comm comm, int src, int tag, MPI_Status *st);

/* The same, testing the nsends requests *sends[k] meanwhile (completed ones
 * become MPI_REQUEST_NULL); it never sleeps while one is not complete. */
int mp__mpi_wait_sends(MPI_Comm comm, int src, int tag, MPI_Status *st,
                       MPI_Request *const *sends, unsigned nsends);

/* True when a worker spawned from this program will be taken over before
 * main: libmp's start-up hook ran here, or mp_spawn_main or mp_mpi_main
 * was called (the worker is the same program and starts the same way). */
bool mp__mpi_workers_boot(void);

/* At exit, before MPI_Finalize: end the spawned workers kept for reuse. */
void mp__mpi_spawned_exit_all(void);

/* Fill the table of loaded modules; returns how many. */
uint32_t mp__mpi_modules(mp__mpi_mod *mods, uint32_t cap);

/* World mode: take up to want free ranks (0: all), 1-based world ranks in
 * ranks[]; returns how many.  Give them back with mp__mpi_world_put. */
uint32_t mp__mpi_world_take(uint32_t want, int *ranks, uint32_t cap);
void mp__mpi_world_put(const int *ranks, uint32_t n);
#endif

/* ---- pool_worker.c: running a chunk in an MPI worker's own memory ---------- */

/* Claim a chunk of j below hi for worker w (pool_worker.c's claim). */
struct mp__wrec;
bool mp__pool_claim(struct mp__pjob *j, uint64_t hi, uint32_t w, struct mp__wrec *rec,
                    uint64_t *out);

/*
 * Run nitems fixed-size items (or starmap rows: cols[k] are the columns'
 * first items of the chunk) with f, writing outputs at out and codes at
 * status.  The first failure's index, code and message go to *err_*.
 * Returns true when every item succeeded.
 */
bool mp__pool_local_fixed(void (*f)(void), bool star, const char *in, size_t in_size,
                          const char *const *cols, const size_t *col_size, uint32_t ncols,
                          size_t nitems, char *out, size_t out_size, void *arg,
                          int32_t *status, int64_t *err_index, int32_t *err_code,
                          char *err_msg, size_t msg_size);

/*
 * Run the input records of a slot (bytes when bytes, else fixed in_size
 * items) with f; the output records go to a malloc'd buffer (*out,
 * *out_len).  Returns 0 when every item succeeded, 1 when some failed, or
 * a negative code when the records themselves could not be built.
 */
int mp__pool_local_slots(void (*f)(void), bool bytes, const char *in, uint32_t nitems,
                         size_t in_size, size_t out_size, void *arg, char **out,
                         size_t *out_len);

#endif /* LIBMP_INTERNAL_MPI_H */
