/*
 * internal/pool.h: the shared structures of the worker pool (pool.c,
 * pool_worker.c, pool_calls.c).  docs/pool.md explains the design; the
 * comments here say what each field means and who may write it.
 *
 * Vocabulary.  A *job* is one call (apply_async, map, imap...).  Its work is
 * cut into *chunks* (Python's tasks); a worker claims a chunk, runs its
 * items, and marks it done.  Jobs reach the workers through the *ring*: a
 * fixed array of entries (job, hi) meaning "the chunks of job below hi may
 * be claimed".  Every chunk has a 64-bit *state word* (chunk number << 20 |
 * state) whose transitions are the single source of truth:
 *
 *     FREE --claim CAS by worker w--> OWNED(w) --store by w--> OK / ERR
 *     OWNED(w) --CAS by the pool's thread after w died--> LOST
 *     FREE --CAS by the caller (terminate, interrupt, free)--> CANCEL
 *
 * so a chunk is run at most once and a dead worker's chunk is found from
 * its state word alone.
 */
#ifndef LIBMP_INTERNAL_POOL_H
#define LIBMP_INTERNAL_POOL_H

#include "internal/mp.h"

#include <poll.h>
#include <pthread.h>

/* Thread-local storage in libmp itself.  No initial-exec model: the shared
 * library must stay loadable with dlopen (see docs/design.md, "Thread-local
 * storage"). */
#define MP__TLS __thread

/* Atomics on plain fields (the arena's objects are plain structs). */
#define MP__LD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define MP__LDA(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define MP__LDR(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define MP__ST(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define MP__STR(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define MP__ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
#define MP__SUB(p, v) __atomic_fetch_sub((p), (v), __ATOMIC_SEQ_CST)
#define MP__XCHG(p, v) __atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)
#define MP__CAS(p, e, d) \
    __atomic_compare_exchange_n((p), (e), (d), false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)

#define MP__POOL_MAGIC MP__MAGIC('p', 'o', 'o', 'l')
#define MP__JOB_ASYNC MP__MAGIC('p', 'j', 'a', 'r') /* an mp_async_result */
#define MP__JOB_IMAP MP__MAGIC('p', 'j', 'i', 't')  /* an mp_imap */
#define MP__JOB_SYNC MP__MAGIC('p', 'j', 's', 'y')  /* map/apply inside a call */

#define MP__POOL_MAX_WORKERS 4096
#define MP__POOL_RING_CAP ((uint64_t)1 << 16) /* entries; a power of two */
#define MP__POOL_HINT_CAP 1024u               /* per worker; a power of two */
#define MP__POOL_MSG 256
#define MP__POOL_SLOT_INLINE 64
#define MP__POOL_MAX_COLS 16

/* ---- chunk state words ---------------------------------------------------- */

#define MP__CS_SHIFT 20
#define MP__CS_MASK ((1u << MP__CS_SHIFT) - 1)
enum {
    MP__CS_FREE = 1,
    MP__CS_OWNED = 2,               /* + worker index */
    MP__CS_TAKEN = MP__CS_MASK - 4, /* imap: the caller has taken the results */
    MP__CS_CANCEL = MP__CS_MASK - 3,
    MP__CS_LOST = MP__CS_MASK - 2,
    MP__CS_ERR = MP__CS_MASK - 1,
    MP__CS_OK = MP__CS_MASK,
};

static inline uint64_t mp__cs(uint64_t k, uint32_t st)
{
    return k << MP__CS_SHIFT | st;
}
static inline uint32_t mp__cs_st(uint64_t v)
{
    return (uint32_t)(v & MP__CS_MASK);
}
static inline uint64_t mp__cs_k(uint64_t v)
{
    return v >> MP__CS_SHIFT;
}
/* A chunk whose items are final (TAKEN is not: it only exists after one). */
static inline bool mp__cs_final(uint32_t st)
{
    return st >= MP__CS_CANCEL;
}

/* ---- jobs ---------------------------------------------------------------- */

enum { MP__K_FIXED = 1, MP__K_SLOTS = 2 };

enum {
    MP__JF_BYTES = 1u << 0,     /* fn is an mp_pool_bytes_fn */
    MP__JF_STAR = 1u << 1,      /* fn is an mp_pool_star_fn over columns */
    MP__JF_IMAP = 1u << 2,      /* an imap iterator: slots reused in a window */
    MP__JF_UNORDERED = 1u << 3, /* imap_unordered */
    MP__JF_CALLBACK = 1u << 4,  /* has callbacks: the result thread finishes it */
};

/*
 * An output record, in the output block of a slot: one per item, 16-byte
 * aligned, followed by size bytes of result and msg_len bytes of message.
 */
typedef struct mp__orec {
    int32_t code;
    uint32_t msg_len;
    uint64_t size;
} mp__orec;

#define MP__ALIGN16(x) (((x) + 15) & ~(size_t)15)

static inline const char *mp__orec_data(const mp__orec *h)
{
    return (const char *)(h + 1);
}

static inline const char *mp__orec_msg(const mp__orec *h)
{
    return h->msg_len ? mp__orec_data(h) + h->size : "";
}

/* How long a caller spins on a result before it sleeps on a futex. */
#define MP__POOL_SPIN_NS 20000


/*
 * One chunk of a slots job.  For an imap the slot of chunk k is k % nslots
 * and is refilled once the caller took chunk k's results.  The inputs are
 * written by the caller before the state becomes FREE; the outputs by the
 * owning worker before it stores OK/ERR.
 */
typedef struct mp__pslot {
    uint64_t state;
    uint64_t first; /* index of the chunk's first item */
    uint32_t nitems;
    int32_t chunk_code; /* ERR without outputs: every item failed with it */
    int32_t lost_exit;  /* LOST: the exit code of the worker that died */
    pid_t lost_pid;
    char *in; /* input records: fixed items, or [u64 size][data] */
    size_t in_len;
    char *in_block; /* an arena block owned by the slot (or NULL) */
    size_t in_cap;
    char *out; /* output records (inline or an arena block) */
    size_t out_len;
    _Alignas(16) char in_inline[MP__POOL_SLOT_INLINE];
    _Alignas(16) char out_inline[MP__POOL_SLOT_INLINE];
} mp__pslot;

struct mp_pool;

/* A column of a starmap. */
typedef struct mp__pcol {
    const char *p;
    size_t size;
} mp__pcol;

/* A chunk's results kept in the caller (an imap drained by join). */
typedef struct mp__spill {
    uint64_t first; /* index of its first item */
    uint32_t nitems;
    uint32_t st; /* its final state */
    int32_t chunk_code, lost_exit;
    pid_t lost_pid;
    char *out; /* malloc'd copy of the output records */
    size_t out_len;
} mp__spill;

/* The feeding and taking state of an imap (malloc'd: caller only). */
typedef struct mp__imapst {
    pthread_mutex_t lock; /* next, drain and free may come from several threads */
    uint64_t fed;         /* chunks fed */
    uint64_t taken;       /* ordered: chunks taken */
    uint64_t low;         /* unordered: lowest chunk not taken */
    int64_t cur;          /* unordered: chunk being returned, or -1 */
    uint32_t item_pos;    /* next item of the chunk being returned */
    size_t deliver_off;   /* offset of its next output record */
    bool input_ended, input_err_told;
    int input_err;
    size_t in_index; /* next input item */
    const char *src_fixed;
    const mp_pool_bytes *src_bytes;
    size_t src_n;
    mp_pool_next_fn src_next;
    void *src_ctx;
    mp__spill *spill; /* drained chunks, returned before anything else */
    size_t nspill, spill_head, capspill;
} mp__imapst;

typedef struct mp__pjob {
    mp__obj hdr;
    struct mp_pool *pool; /* NULL once the pool is freed */
    uint32_t kind;
    uint32_t flags;
    mp__fnref fn;
    void *arg; /* arena copy of the call's extra bytes */
    size_t arg_size;
    size_t in_size, out_size; /* fixed items (0 for bytes) */
    size_t n;                 /* items of a map */
    size_t chunksize;
    uint64_t nchunks; /* maps; an imap grows it as it feeds (caller) */
    /* MP__K_FIXED */
    const char *in;
    char *out;
    int32_t *status;  /* per item, or NULL */
    uint64_t *cstate; /* one state word per chunk; FREE is 0 */
    mp__pcol *cols;   /* starmap: ncols columns (arena) */
    uint32_t ncols;
    /* MP__K_SLOTS */
    uint32_t pad_;
    mp__pslot *slots;
    uint64_t nslots;

    /* Claiming: a hint, every chunk below it is not FREE. */
    uint64_t next MP__ALIGNED(MP__CACHELINE);
    /* Chunks not final (maps).  Its low 32 bits are the futex word that a
     * waiting caller sleeps on; woken when it reaches 0 or when dirty. */
    uint64_t remaining MP__ALIGNED(MP__CACHELINE);
    uint32_t waiters;  /* callers asleep on remaining or wake_seq */
    uint32_t wake_seq; /* bumped per final chunk of an imap, and when dirty */
    /* Set when a worker died between marking its chunk final and counting
     * it: remaining may then stay above 0, and observers count states. */
    uint32_t dirty;
    uint64_t final_below; /* of a dirty fixed map: chunks below it are final */
    int32_t cancel_code;  /* the code of CANCEL chunks */
    /* First failure of a fixed map, under the pool's err_lock. */
    uint64_t err_index;
    int32_t err_code;
    char *err_msg; /* arena, made on first error, grown for a longer one */

    /*
     * ---- state of the calling process only ----
     * Everything below is used by the creator of the pool (its threads
     * included) and nobody else; pointers here are that process's.
     */
    struct mp__pjob *prev, *next_job; /* the pool's list of jobs */
    int refs;                         /* the caller's handle, the result thread */
    uint32_t ready;                   /* futex: the result is ready (callbacks done) */
    uint32_t fin;                     /* 0, 1 finishing, 2 finished, 3 abandoned */
    int result;                       /* after finishing */
    uint64_t last_pos;                /* ring position of the latest entry + 1 (0: none) */
    bool entries_done;                /* no more entries will be pushed */
    bool abandoned;                   /* freed by the caller before completion */
    bool rh_pending;                  /* in the result thread's set */
    bool staged_out;                  /* out is a staging block to copy to user_out */
    bool counted_feeding;             /* counted in the pool's feeding */
    mp_pool_callback_fn cb;
    mp_pool_error_callback_fn ecb;
    void *cb_arg;
    char *msg;      /* malloc'd message of a failed result */
    void *user_out; /* where staged outputs go */
    int *user_status;
    mp_pool_bytes *user_bytes;
    char *stage_in, *stage_out; /* arena blocks owned by the job */
    int32_t *stage_status;
    char *in_blob;  /* arena block of bytes inputs */
    mp__imapst *im; /* imap only */
} mp__pjob;

/* ---- the pool ----------------------------------------------------------------- */

typedef struct mp__pentry {
    mp__pjob *job;
    uint64_t hi;
} mp__pentry;

enum { MP__W_EMPTY = 0, MP__W_STARTING, MP__W_READY, MP__W_EXITING, MP__W_INITFAIL };

/*
 * Per worker slot, written by the worker (and, after it died, by the pool's
 * thread in the creator).  cur_job/cur_chunk are set before a claim and
 * cleared after the chunk is counted; the hazard protects cur_job.
 */
typedef struct mp__wrec {
    mp__pjob *hazard MP__ALIGNED(MP__CACHELINE);
    mp__pjob *cur_job;
    uint64_t cur_chunk;
    /* Chunks [res_lo, res_hi) of the fixed map res_job, reserved for this
     * worker by moving the job's next past them (pool_worker.c); res_next
     * is the next to claim.  Each is still claimed by CAS on its state. */
    mp__pjob *res_job;
    uint64_t res_lo, res_hi, res_next;
    char *out_block; /* arena block being filled, freed if the worker dies */
    uint32_t state;
    int32_t init_code;
    pid_t pid;
    uint64_t tasks;
    /* Completed callback jobs for the result thread (single producer). */
    uint64_t hint_tail MP__ALIGNED(MP__CACHELINE);
    uint64_t hint_head MP__ALIGNED(MP__CACHELINE);
    uintptr_t hints[MP__POOL_HINT_CAP];
} mp__wrec;

enum { MP__P_RUN = 0, MP__P_CLOSE = 1, MP__P_TERMINATE = 2 };

struct mp__plocal;

struct mp_pool {
    mp__obj hdr;
    uint32_t threads; /* a ThreadPool */
    uint32_t nworkers;
    uint64_t maxtasks;
    mp__fnref init;
    void *initarg;
    size_t initarg_size;
    mp_context *ctx;
    pid_t creator;
    uint64_t sig_block; /* the creating thread's mask, the workers' */
    uint32_t state;
    int32_t broken; /* an initializer failed: its code */
    mp__pentry *ring;
    mp__wrec *recs;
    pthread_mutex_t err_lock; /* robust, shared: first errors of fixed maps */

    uint64_t head MP__ALIGNED(MP__CACHELINE);
    uint64_t tail MP__ALIGNED(MP__CACHELINE);
    uint32_t work_seq MP__ALIGNED(MP__CACHELINE);
    uint32_t sleepers;
    uint32_t spinner; /* 1 while one idle worker spins for work */
    uint32_t feeding; /* imaps whose input has not ended */
    uint32_t rh_seq MP__ALIGNED(MP__CACHELINE);
    uint32_t rh_sleeping;
    uint32_t rh_rescan;

    /* malloc'd by the creator: meaningful only in that process. */
    struct mp__plocal *L;
    /* An MPI pool's state (creator only), or NULL: see internal/mpi.h. */
    struct mp__mpipool *mpi;
};

/* ---- the creating process's state --------------------------------------------- */

#define MP__POOL_STAGE_CACHE 4

/* A set of job pointers (the result thread's pending callback jobs). */
typedef struct mp__pset {
    mp__pjob **slot;
    size_t cap, n, used; /* used counts tombstones too */
} mp__pset;

#define MP__PSET_TOMB ((mp__pjob *)1)

/*
 * The pool's state in its creating process (malloc'd there, pointed to by
 * pool->L, meaningless anywhere else).
 */
struct mp__plocal {
    /* Every plocal of this process, linked from a static list so that the
     * memory stays reachable from the library's own state (a pool left
     * running at exit is not a leak to LeakSanitizer). */
    struct mp__plocal *live_prev, *live_next;
    pthread_mutex_t lock;       /* jobs, limbo, pending, ring pushes */
    pthread_mutex_t stage_lock; /* the stage cache (taken with or without lock) */
    pthread_t handler, rh;
    bool handler_started, rh_started, joined;
    int evfd;
    int fin_id;
    uint32_t started; /* futex: the first workers are up (or failed) */
    int start_error;
    uint32_t handler_done; /* futex */
    uint32_t rh_done;      /* futex */
    mp__pjob *jobs;        /* every job not yet freed */
    mp__pjob **limbo;
    size_t nlimbo, caplimbo;
    mp__pset pending;
    void *stage[MP__POOL_STAGE_CACHE];
    /* Workers, indexed like pool->recs (handler thread only). */
    mp_process **procs;
    pthread_t *thr;
    bool *live;
    uint32_t *thr_exited;
    struct pollfd *pfd;
    uint32_t *pfd_worker;
    unsigned start_failures;
    unsigned init_crashes; /* workers in a row that died in their initializer */
};

/* ---- pool_worker.c: the worker side -------------------------------------------- */

/* Run worker w of pool until it must exit; returns its exit code. */
int mp__pool_worker_run(struct mp_pool *pool, uint32_t w);

/* The state word of chunk c of job j. */
static inline uint64_t *mp__chunk_state(mp__pjob *j, uint64_t c)
{
    return j->kind == MP__K_FIXED ? &j->cstate[c] : &j->slots[c % j->nslots].state;
}

/* The futex word of j->remaining: its low 32 bits. */
static inline uint32_t *mp__job_remaining_word(mp__pjob *j)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (uint32_t *)&j->remaining;
#else
    return (uint32_t *)&j->remaining + 1;
#endif
}

/* The state word value of chunk c when FREE. */
static inline uint64_t mp__chunk_free(const mp__pjob *j, uint64_t c)
{
    return j->kind == MP__K_FIXED ? 0 : mp__cs(c, MP__CS_FREE);
}

/*
 * Count a final chunk of j: wake the callers waiting on it and tell the
 * result thread when j is complete.  hint_rec: the worker record whose hint
 * ring to use, or NULL from the creator (the result thread then rescans).
 */
void mp__pool_chunk_counted(struct mp_pool *pool, mp__pjob *j, mp__wrec *hint_rec);

/* The same for k final chunks at once (an MPI proxy's batch). */
void mp__pool_chunks_counted(struct mp_pool *pool, mp__pjob *j, mp__wrec *hint_rec,
                             uint64_t k);

/* Record the first failure of a fixed map (lowest item index wins). */
void mp__pool_record_error(struct mp_pool *pool, mp__pjob *j, uint64_t index, int code,
                           const char *msg);

/* Wake up to n sleeping workers after new work or a state change. */
void mp__pool_wake_workers(struct mp_pool *pool, int n);

/* Wake the result thread (after a hint or a rescan request). */
void mp__pool_wake_rh(struct mp_pool *pool);

/* ---- pool.c: lifecycle, threads, reclaiming --------------------------------------- */

/* 0 if pool is a live pool created by the calling process, else MP_EINVAL. */
int mp__pool_check_owner(const struct mp_pool *pool);

/*
 * Submit a new job: check that the pool runs, register the job (list,
 * result thread if it has callbacks, imap feeding count) and publish its
 * first entry (j, hi) unless hi is 0, then wake nwake workers.  All under
 * the pool's lock, so that close and terminate see the job or refuse it.
 * Returns 0, MP_EINVAL (pool not running), or the broken pool's code.
 */
int mp__pool_submit(struct mp_pool *pool, mp__pjob *j, uint64_t hi, int nwake);

/* Publish another entry of an imap (pool closed is fine, not terminated). */
int mp__pool_push(struct mp_pool *pool, mp__pjob *j, uint64_t hi, int nwake);

/*
 * After a worker died holding the reservation [lo, hi) of the fixed map j
 * (handler thread; the dead worker's hazard keeps j alive): let the other
 * workers claim its chunks that are still FREE, through a new ring entry.
 * Returns 0 (also when the pool is terminated or broken: those chunks are
 * cancelled), or -EAGAIN when the ring is full.
 */
int mp__pool_requeue(struct mp_pool *pool, mp__pjob *j, uint64_t lo, uint64_t hi);
/* Tests: mp__pool_requeue acts as if the ring were full. */
extern bool mp__pool_requeue_full;

/* Drop a reference on j; free it once nothing can reach it any more. */
void mp__pool_job_release(mp__pjob *j);
/* Another reference to j, for a holder of one (release it as above). */
void mp__pool_job_retain(mp__pjob *j);
/* Once j is freed by its caller (abandoned): whether its callbacks run or
 * ran, that is whether it finished first (a callback job finished is
 * always handed to the result thread). */
bool mp__pool_job_calls_back(mp__pjob *j);

/* Cancel the chunks of j that are still FREE, with code. */
void mp__pool_job_cancel(mp__pjob *j, int code);

/* True when every chunk of map job j is final. */
bool mp__pool_job_complete(mp__pjob *j);

/* Arena staging blocks: a cached block of at least size bytes, or NULL. */
void *mp__pool_stage_get(struct mp_pool *pool, size_t size);
void mp__pool_stage_put(struct mp_pool *pool, void *block);

/* The pool's imap feeding count (pool may be NULL once freed). */
void mp__pool_feeding_done(struct mp_pool *pool);

/* getpid(), cached (glibc makes it a system call). */
pid_t mp__pool_self(void);

/* True on a thread of the pool (callbacks run there). */
bool mp__pool_on_own_thread(const struct mp_pool *pool);

/* The pool's lock (jobs, limbo, pending set, ring pushes). */
void mp__pool_lock(struct mp_pool *pool);
void mp__pool_unlock(struct mp_pool *pool);

/* Wake the worker handler thread. */
void mp__pool_poke(struct mp_pool *pool);

/* Cancel the FREE chunks of every job with code, then have the result
 * thread rescan. */
void mp__pool_cancel_all(struct mp_pool *pool, int code);

/* Is there queued work, or work still to come from an imap? */
bool mp__pool_work_left(struct mp_pool *pool);

/* Free what the limbo can give back; true when it is empty afterwards. */
bool mp__pool_reclaim(struct mp_pool *pool);

/* The pending callback jobs (only the result thread takes jobs out): is j
 * one; take j out if it is in (true); or copy them all out (malloc'd, *n
 * entries; NULL when out of memory). */
bool mp__pool_pending_has(struct mp_pool *pool, const mp__pjob *j);
bool mp__pool_pending_take(struct mp_pool *pool, mp__pjob *j);
mp__pjob **mp__pool_pending_list(struct mp_pool *pool, size_t *n);
bool mp__pool_pending_empty(struct mp_pool *pool);

/* ---- pool_threads.c: the worker handler and result handler threads ----------- */

void *mp__pool_handler_main(void *arg);
void *mp__pool_rh_main(void *arg);

/* Create a thread with every signal blocked: 0 or -errno. */
int mp__pool_thread_start(pthread_t *t, void *(*fn)(void *), void *arg);

/* ---- pool_calls.c ------------------------------------------------------------ */

/* Free what the caller side of a job owns (blocks, slots); not the job. */
void mp__pool_job_free_parts(mp__pjob *j);

/* Finish a complete job once (copy out, compute the result). */
int mp__pool_job_finish(mp__pjob *j);

/* What a callback receives: the result as get gives it. */
void mp__pool_job_result(mp__pjob *j, const void **res, size_t *size);

/* The message text for a lost worker. */
void mp__pool_lost_message(char *buf, size_t size, pid_t pid, int exitcode);

/*
 * Mark chunk c of j lost with its worker (pid, exitcode as for
 * mp__pool_lost_message; msg is the text of a fixed-size job's error): the
 * items fail with MP_EWORKERLOST and the state word says MP__CS_LOST.  The
 * caller counts the chunk.  Used for a dead local worker and a dead MPI one.
 */
void mp__pool_chunk_lost(struct mp_pool *pool, mp__pjob *j, uint64_t c, pid_t pid,
                         int exitcode, const char *msg);

/* Set the calling thread's mp_pool_error_message ("" when code is 0). */
void mp__pool_set_message(int code, const char *msg);

/* A function reference, cached per thread. */
int mp__pool_make_ref(mp__fnref *ref, void (*fn)(void));

/* A new job (magic, kind, flags) with nslots slots allocated with it. */
mp__pjob *mp__pool_job_new(uint32_t magic, uint32_t kind, uint32_t flags, size_t nslots);

/* Copy the call's .arg bytes into the job. */
int mp__pool_job_set_arg(mp__pjob *j, const mp_pool_call_options *o);

/* Free a job that was never submitted. */
void mp__pool_job_discard(mp__pjob *j);

/* Never finish j again (its arrays are not written after this returns). */
void mp__pool_job_abandon(mp__pjob *j);

/* The code and message of the items of a chunk without output records. */
int mp__pool_slot_chunk_code(const mp__pjob *j, const mp__pslot *s, uint32_t st, char *msg,
                             size_t msize);

/* The next output record of a chunk's outputs at *off, or NULL. */
const mp__orec *mp__pool_orec_at(const char *out, size_t out_len, size_t *off);

/* A malloc'd copy of n bytes (1 byte for n == 0), or NULL. */
void *mp__pool_dup(const void *p, size_t n);

/* Append one input record to slot s. */
int mp__pool_slot_add_bytes(mp__pslot *s, const void *data, size_t size);
int mp__pool_slot_add_fixed(mp__pslot *s, const void *data, size_t size);

/* How many workers to wake for chunks new chunks. */
int mp__pool_nwake(const struct mp_pool *pool, uint64_t chunks);

/* ---- pool_imap.c ------------------------------------------------------------- */

/* In mp_pool_join, after close: run the open iterators' input to its end,
 * keeping their results in the caller (Python's task thread feeds all). */
int mp__pool_imap_drain(mp__pjob *j, const mp__deadline *d);

/* The caller-side state of an imap, freed with the job. */
void mp__pool_imap_free_state(mp__pjob *j);

/* Tests only: called (when set) by an iterator between reading the end of
 * its input and publishing its last chunks, to hold open the window of the
 * race fixed for issue #6. */
extern void (*mp__pool_test_before_last_publish)(struct mp_pool *pool);

#endif /* LIBMP_INTERNAL_POOL_H */
