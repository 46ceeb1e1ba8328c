/*
 * pool.c: the pool object, its two threads in the creating process and the
 * life of jobs (Python's Pool.__init__, _handle_workers, _handle_results,
 * close, terminate, join).
 *
 * The worker handler thread starts the workers, watches them (the pidfd
 * sentinel of each worker process, or an eventfd that exiting worker
 * threads write), replaces those that exit or die, accounts for the chunk a
 * dead worker owned, and carries out terminate.  The result handler thread
 * runs callbacks: workers hand it completed callback jobs through a small
 * single-producer ring in their record, and it sleeps on a futex.  Both
 * block every signal.
 *
 * Jobs are reclaimed once (a) the caller and the result thread dropped
 * them, (b) the ring head has passed their last entry, and (c) no worker's
 * hazard pointer names them; until then they wait in a limbo list that
 * every pool call and the handler thread retry.
 */
#include "internal/pool.h"
#include "internal/util.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define STAGE_CACHE 4
#define STAGE_CACHE_MAX ((size_t)256 << 20)

/* A set of job pointers (the result thread's pending callback jobs). */
typedef struct pset {
    mp__pjob **slot;
    size_t cap, n, used; /* used counts tombstones too */
} pset;

#define PSET_TOMB ((mp__pjob *)1)

struct mp__plocal {
    pthread_mutex_t lock; /* jobs, limbo, pending, ring pushes */
    pthread_mutex_t stage_lock; /* the stage cache (taken with or without lock) */
    pthread_t handler, rh;
    bool handler_started, rh_started, joined;
    int evfd;
    int fin_id;
    uint32_t started;      /* futex: the first workers are up (or failed) */
    int start_error;
    uint32_t handler_done; /* futex */
    uint32_t rh_done;      /* futex */
    mp__pjob *jobs;        /* every job not yet freed */
    mp__pjob **limbo;
    size_t nlimbo, caplimbo;
    pset pending;
    void *stage[STAGE_CACHE];
    /* Workers, indexed like pool->recs (handler thread only). */
    mp_process **procs;
    pthread_t *thr;
    bool *live;
    uint32_t *thr_exited;
    struct pollfd *pfd;
    uint32_t *pfd_worker;
    unsigned start_failures;
};

/* ---- the pointer set ---------------------------------------------------------- */

static size_t pset_hash(const mp__pjob *j, size_t cap)
{
    uintptr_t x = (uintptr_t)j >> 6;
    x *= 0x9e3779b97f4a7c15ull;
    return (size_t)(x >> 20) & (cap - 1);
}

static bool pset_contains(const pset *s, const mp__pjob *j)
{
    if (s->cap == 0)
        return false;
    for (size_t i = pset_hash(j, s->cap);; i = (i + 1) & (s->cap - 1)) {
        if (s->slot[i] == j)
            return true;
        if (s->slot[i] == NULL)
            return false;
    }
}

static int pset_add(pset *s, mp__pjob *j);

static int pset_grow(pset *s)
{
    size_t cap = s->cap ? s->cap * 2 : 64;
    if (s->n * 4 < s->cap)
        cap = s->cap; /* mostly tombstones: rehash at the same size */
    pset old = *s;
    s->slot = calloc(cap, sizeof *s->slot);
    if (s->slot == NULL) {
        *s = old;
        return -ENOMEM;
    }
    s->cap = cap;
    s->n = s->used = 0;
    for (size_t i = 0; i < old.cap; i++)
        if (old.slot[i] != NULL && old.slot[i] != PSET_TOMB)
            pset_add(s, old.slot[i]);
    free(old.slot);
    return 0;
}

static int pset_add(pset *s, mp__pjob *j)
{
    if ((s->used + 1) * 2 > s->cap && pset_grow(s) != 0)
        return -ENOMEM;
    size_t i = pset_hash(j, s->cap);
    while (s->slot[i] != NULL && s->slot[i] != PSET_TOMB)
        i = (i + 1) & (s->cap - 1);
    if (s->slot[i] == NULL)
        s->used++;
    s->slot[i] = j;
    s->n++;
    return 0;
}

static void pset_remove(pset *s, const mp__pjob *j)
{
    if (s->cap == 0)
        return;
    for (size_t i = pset_hash(j, s->cap);; i = (i + 1) & (s->cap - 1)) {
        if (s->slot[i] == j) {
            s->slot[i] = PSET_TOMB;
            s->n--;
            return;
        }
        if (s->slot[i] == NULL)
            return;
    }
}

/* ---- small helpers ---------------------------------------------------------------- */

static void lock(struct mp_pool *pool)
{
    pthread_mutex_lock(&pool->L->lock);
}

static void unlock(struct mp_pool *pool)
{
    pthread_mutex_unlock(&pool->L->lock);
}

static void poke_handler(struct mp_pool *pool)
{
    uint64_t one = 1;
    ssize_t r = write(pool->L->evfd, &one, sizeof one);
    (void)r;
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static pid_t self_pid;
static pthread_once_t self_once = PTHREAD_ONCE_INIT;

static void self_after_fork(void)
{
    self_pid = getpid();
}

static void self_init(void)
{
    self_pid = getpid();
    pthread_atfork(NULL, NULL, self_after_fork);
}

pid_t mp__pool_self(void)
{
    pthread_once(&self_once, self_init);
    return self_pid;
}

int mp__pool_check_owner(const struct mp_pool *pool)
{
    if (mp__obj_check(pool, MP__POOL_MAGIC) != 0)
        return MP_EINVAL;
    return pool->creator == mp__pool_self() ? 0 : MP_EINVAL;
}

bool mp__pool_on_own_thread(const struct mp_pool *pool)
{
    struct mp__plocal *L = pool->L;
    pthread_t self = pthread_self();
    return (L->rh_started && pthread_equal(self, L->rh)) ||
           (L->handler_started && pthread_equal(self, L->handler));
}

/* ---- staging blocks ------------------------------------------------------------ */

/*
 * Staging blocks are kept for the next call: fresh arena pages must be
 * faulted in and zeroed, which costs more than the copy itself.  Sizes are
 * rounded up to a power of two so that calls of similar sizes share them.
 */
static size_t stage_round(size_t size)
{
    size_t r = (size_t)64 << 10;
    while (r < size && r < ((size_t)1 << 62))
        r <<= 1;
    return r < size ? size : r;
}

void *mp__pool_stage_get(struct mp_pool *pool, size_t size)
{
    void *best = NULL;
    int bi = -1;
    pthread_mutex_lock(&pool->L->stage_lock);
    for (int i = 0; i < STAGE_CACHE; i++) {
        void *b = pool->L->stage[i];
        if (b != NULL && mp__alloc_size(b) >= size &&
            (best == NULL || mp__alloc_size(b) < mp__alloc_size(best))) {
            best = b;
            bi = i;
        }
    }
    if (bi >= 0)
        pool->L->stage[bi] = NULL;
    pthread_mutex_unlock(&pool->L->stage_lock);
    return best != NULL ? best : mp__alloc(stage_round(size));
}

void mp__pool_stage_put(struct mp_pool *pool, void *block)
{
    if (block == NULL)
        return;
    size_t size = mp__alloc_size(block);
    if (pool != NULL && size <= STAGE_CACHE_MAX) {
        /* Keep it in place of an empty entry, or of the smallest if that
         * is smaller. */
        pthread_mutex_lock(&pool->L->stage_lock);
        int victim = -1;
        for (int i = 0; i < STAGE_CACHE; i++) {
            void *b = pool->L->stage[i];
            if (b == NULL) {
                victim = i;
                break;
            }
            if (mp__alloc_size(b) < size &&
                (victim < 0 || mp__alloc_size(b) < mp__alloc_size(pool->L->stage[victim])))
                victim = i;
        }
        if (victim >= 0) {
            void *old = pool->L->stage[victim];
            pool->L->stage[victim] = block;
            block = old;
        }
        pthread_mutex_unlock(&pool->L->stage_lock);
    }
    mp__free(block);
}

/* ---- the ring ------------------------------------------------------------------- */

/* Move the head past exhausted entries (caller holds the lock, which keeps
 * the jobs of entries at or past the head alive). */
static void advance_head(struct mp_pool *pool)
{
    uint64_t h = MP__LD(&pool->head);
    uint64_t t = MP__LD(&pool->tail);
    while (h < t) {
        mp__pentry *e = &pool->ring[h & (MP__POOL_RING_CAP - 1)];
        if (MP__LD(&e->job->next) < e->hi)
            break;
        MP__CAS(&pool->head, &h, h + 1);
        h = MP__LD(&pool->head);
    }
}

static void job_unlink_locked(struct mp_pool *pool, mp__pjob *j)
{
    if (j->prev != NULL)
        j->prev->next_job = j->next_job;
    else
        pool->L->jobs = j->next_job;
    if (j->next_job != NULL)
        j->next_job->prev = j->prev;
    j->prev = j->next_job = NULL;
}

static void job_destroy(mp__pjob *j)
{
    mp__pool_job_free_parts(j);
    mp__obj_free(j);
}

/*
 * Free the jobs of the limbo that nothing can reach any more (lock held):
 * those whose entries the head has passed and that no worker's hazard
 * names.  One look at the head and the hazards serves the whole batch
 * (they live on cache lines the workers write).  force: free them all
 * (no worker is left).
 */
static void reclaim_limbo_locked(struct mp_pool *pool, bool force)
{
    struct mp__plocal *L = pool->L;
    if (L->nlimbo == 0)
        return;
    uint64_t head = 0;
    uint32_t nh = 0;
    mp__pjob *hz[64];
    bool many = pool->nworkers > 64;
    if (!force) {
        advance_head(pool);
        head = MP__LD(&pool->head);
        for (uint32_t w = 0; w < pool->nworkers && !many; w++) {
            mp__pjob *h = MP__LD(&pool->recs[w].hazard);
            if (h != NULL)
                hz[nh++] = h;
        }
    }
    for (size_t i = 0; i < L->nlimbo;) {
        mp__pjob *j = L->limbo[i];
        bool ok = force;
        if (!ok) {
            ok = j->last_pos == 0 || (j->entries_done && j->last_pos <= head);
            for (uint32_t k = 0; ok && k < nh; k++)
                ok = hz[k] != j;
            for (uint32_t w = 0; ok && many && w < pool->nworkers; w++)
                ok = MP__LD(&pool->recs[w].hazard) != j;
        }
        if (ok) {
            L->limbo[i] = L->limbo[--L->nlimbo];
            job_unlink_locked(pool, j);
            job_destroy(j);
        } else {
            i++;
        }
    }
}

/* Append entry (j, hi) on the ring (lock held; may drop it while the ring
 * is full).  Fails when the pool is terminated or broken meanwhile. */
static int push_locked(struct mp_pool *pool, mp__pjob *j, uint64_t hi)
{
    if (pool->L->nlimbo >= 32)
        reclaim_limbo_locked(pool, false);
    for (;;) {
        if (MP__LD(&pool->state) == MP__P_TERMINATE)
            return MP_EWORKERLOST;
        if (MP__LD(&pool->broken) != 0)
            return MP__LD(&pool->broken);
        uint64_t t = MP__LDR(&pool->tail);
        if (t - MP__LD(&pool->head) < MP__POOL_RING_CAP)
            break;
        advance_head(pool);
        if (t - MP__LD(&pool->head) < MP__POOL_RING_CAP)
            break;
        /* The ring is full: wait for the workers to move on. */
        unlock(pool);
        sleep_us(100);
        lock(pool);
    }
    uint64_t t = MP__LDR(&pool->tail);
    mp__pentry *e = &pool->ring[t & (MP__POOL_RING_CAP - 1)];
    MP__STR(&e->job, j);
    MP__STR(&e->hi, hi);
    j->last_pos = t + 1;
    MP__ST(&pool->tail, t + 1);
    return 0;
}

int mp__pool_push(struct mp_pool *pool, mp__pjob *j, uint64_t hi, int nwake)
{
    lock(pool);
    int r = push_locked(pool, j, hi);
    unlock(pool);
    if (r == 0)
        mp__pool_wake_workers(pool, nwake);
    return r;
}

/* ---- jobs ------------------------------------------------------------------------ */

int mp__pool_submit(struct mp_pool *pool, mp__pjob *j, uint64_t hi, int nwake)
{
    j->pool = pool;
    j->refs = 1;
    lock(pool);
    if (MP__LD(&pool->state) != MP__P_RUN || MP__LD(&pool->broken) != 0) {
        int r = MP__LD(&pool->broken) != 0 ? MP__LD(&pool->broken) : MP_EINVAL;
        unlock(pool);
        return r;
    }
    int r = 0;
    j->entries_done = !(j->flags & MP__JF_IMAP);
    if (hi > 0)
        r = push_locked(pool, j, hi);
    if (r != 0) {
        unlock(pool);
        return r;
    }
    j->prev = NULL;
    j->next_job = pool->L->jobs;
    if (j->next_job != NULL)
        j->next_job->prev = j;
    pool->L->jobs = j;
    if ((j->flags & MP__JF_CALLBACK) && pset_add(&pool->L->pending, j) == 0) {
        j->rh_pending = true;
        j->refs++;
    }
    if (j->flags & MP__JF_IMAP) {
        MP__ADD(&pool->feeding, 1);
        j->counted_feeding = true;
    }
    unlock(pool);
    if (hi > 0)
        mp__pool_wake_workers(pool, nwake);
    if ((j->flags & MP__JF_CALLBACK) && hi == 0) {
        MP__ST(&pool->rh_rescan, 1);
        mp__pool_wake_rh(pool);
    }
    return 0;
}

void mp__pool_job_release(mp__pjob *j)
{
    if (MP__SUB(&j->refs, 1) != 1)
        return;
    struct mp_pool *pool = j->pool;
    if (pool == NULL) {
        job_destroy(j);
        return;
    }
    lock(pool);
    struct mp__plocal *L = pool->L;
    if (L->nlimbo == L->caplimbo) {
        size_t cap = L->caplimbo ? L->caplimbo * 2 : 64;
        mp__pjob **l = realloc(L->limbo, cap * sizeof *l);
        if (l != NULL) {
            L->limbo = l;
            L->caplimbo = cap;
        }
    }
    if (L->nlimbo < L->caplimbo)
        L->limbo[L->nlimbo++] = j;
    /* else: left on the jobs list, freed with the pool. */
    if (L->nlimbo >= 32)
        reclaim_limbo_locked(pool, false);
    unlock(pool);
}

/* Count cnt chunks of j made final by the caller side (cancel, lost). */
static void count_chunks(struct mp_pool *pool, mp__pjob *j, uint64_t cnt)
{
    if (j->flags & MP__JF_IMAP) {
        mp__pool_chunk_counted(pool, j, NULL);
        return;
    }
    while (cnt-- > 0)
        mp__pool_chunk_counted(pool, j, NULL);
}

void mp__pool_job_cancel(mp__pjob *j, int code)
{
    int32_t zero = 0;
    MP__CAS(&j->cancel_code, &zero, code);
    uint64_t total, from;
    if (j->flags & MP__JF_IMAP) {
        total = MP__LD(&j->nchunks);
        from = total > j->nslots ? total - j->nslots : 0;
    } else {
        total = j->nchunks;
        from = 0;
    }
    uint64_t n = 0;
    for (uint64_t c = from; c < total; c++) {
        uint64_t expect = mp__chunk_free(j, c);
        if (MP__CAS(mp__chunk_state(j, c), &expect, mp__cs(c, MP__CS_CANCEL)))
            n++;
    }
    /* Every chunk below total is now taken: let claims and the head move. */
    uint64_t nx = MP__LD(&j->next);
    while (nx < total && !MP__CAS(&j->next, &nx, total))
        ;
    if (n > 0 && j->pool != NULL)
        count_chunks(j->pool, j, n);
}

bool mp__pool_job_complete(mp__pjob *j)
{
    if (MP__LD(&j->remaining) == 0)
        return true;
    if (!MP__LD(&j->dirty))
        return false;
    for (uint64_t c = 0; c < j->nchunks; c++)
        if (!mp__cs_final(mp__cs_st(MP__LD(mp__chunk_state(j, c)))))
            return false;
    return true;
}

static void cancel_all(struct mp_pool *pool, int code)
{
    lock(pool);
    for (mp__pjob *j = pool->L->jobs; j != NULL; j = j->next_job)
        mp__pool_job_cancel(j, code);
    unlock(pool);
    MP__ST(&pool->rh_rescan, 1);
    mp__pool_wake_rh(pool);
}

void mp__pool_feeding_done(struct mp_pool *pool)
{
    if (pool == NULL)
        return;
    MP__SUB(&pool->feeding, 1);
    mp__pool_wake_workers(pool, INT32_MAX);
    poke_handler(pool);
}

/* ---- a dead worker --------------------------------------------------------------- */

void mp__pool_lost_message(char *buf, size_t size, pid_t pid, int exitcode)
{
    if (exitcode < 0) {
        const char *name = sigabbrev_np(-exitcode);
        snprintf(buf, size,
                 "worker process %d was killed by signal %d (SIG%s) while running the task",
                 (int)pid, -exitcode, name != NULL ? name : "?");
    } else {
        snprintf(buf, size,
                 "worker process %d exited with code %d while running the task",
                 (int)pid, exitcode);
    }
}

static uint32_t *remaining_word(mp__pjob *j)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (uint32_t *)&j->remaining;
#else
    return (uint32_t *)&j->remaining + 1;
#endif
}

/*
 * Account for the chunk worker w owned when it died (handler thread, after
 * the worker was reaped: its memory writes are all visible and final).
 */
static void worker_lost(struct mp_pool *pool, uint32_t w, pid_t pid, int exitcode)
{
    mp__wrec *rec = &pool->recs[w];
    mp__pjob *j = rec->cur_job;
    if (j == NULL || MP__LD(&rec->hazard) != j)
        return;
    uint64_t c = rec->cur_chunk;
    uint64_t *sw = mp__chunk_state(j, c);
    uint64_t v = MP__LD(sw);
    if (v == mp__cs(c, MP__CS_OWNED + w)) {
        char msg[MP__POOL_MSG];
        mp__pool_lost_message(msg, sizeof msg, pid, exitcode);
        if (j->kind == MP__K_FIXED) {
            size_t lo = (size_t)c * j->chunksize;
            size_t hi = lo + j->chunksize < j->n ? lo + j->chunksize : j->n;
            if (j->status != NULL)
                for (size_t i = lo; i < hi; i++)
                    j->status[i] = MP_EWORKERLOST;
            mp__pool_record_error(pool, j, lo, MP_EWORKERLOST, msg);
        } else {
            mp__pslot *s = &j->slots[c % j->nslots];
            if (rec->out_block != NULL)
                mp__free(rec->out_block);
            s->out = NULL;
            s->out_len = 0;
            s->lost_pid = pid;
            s->lost_exit = exitcode;
        }
        rec->out_block = NULL;
        MP__ST(sw, mp__cs(c, MP__CS_LOST));
        mp__pool_chunk_counted(pool, j, NULL);
    } else if (mp__cs_k(v) == c && mp__cs_final(mp__cs_st(v))) {
        /* Died after finishing the chunk, perhaps before counting it. */
        MP__ST(&j->dirty, 1);
        MP__ADD(&j->wake_seq, 1);
        mp__futex_wake(&j->wake_seq, INT32_MAX);
        mp__futex_wake(remaining_word(j), INT32_MAX);
        MP__ST(&pool->rh_rescan, 1);
        mp__pool_wake_rh(pool);
    }
}

/* A worker ended: account for it and empty its slot. */
static void worker_gone(struct mp_pool *pool, uint32_t w, pid_t pid, int exitcode)
{
    mp__wrec *rec = &pool->recs[w];
    uint32_t st = MP__LD(&rec->state);
    if (st == MP__W_INITFAIL) {
        int code = rec->init_code < 0 ? rec->init_code : MP_EWORKERLOST;
        int32_t zero = 0;
        if (MP__CAS(&pool->broken, &zero, code)) {
            if (pool->threads)
                mp__warn("pool initializer failed in a worker thread (%s): the pool is broken",
                         mp_err_name(code));
            else
                mp__warn("pool initializer failed in worker %d (%s): the pool is broken",
                         (int)pid, mp_err_name(code));
            cancel_all(pool, code);
        }
    } else if (!(st == MP__W_EXITING && exitcode == 0)) {
        if (MP__LD(&pool->state) != MP__P_TERMINATE)
            mp__debug("pool worker %d ended with exit code %d", (int)pid, exitcode);
        worker_lost(pool, w, pid, exitcode);
    }
    if (rec->out_block != NULL && rec->cur_job == NULL) {
        mp__free(rec->out_block);
        rec->out_block = NULL;
    }
    rec->cur_job = NULL;
    rec->pid = 0;
    rec->tasks = 0;
    MP__ST(&rec->hazard, NULL);
    MP__ST(&rec->state, MP__W_EMPTY);
    pool->L->live[w] = false;
}

/* ---- starting workers ----------------------------------------------------------- */

struct wstart {
    struct mp_pool *pool;
    uint32_t w;
};

static int run_initializer(struct mp_pool *pool, mp__wrec *rec)
{
    if (pool->init.module == 0 && pool->init.offset == 0)
        return 0;
    mp_pool_init_fn init = (mp_pool_init_fn)mp__fnref_resolve(&pool->init);
    if (init == NULL)
        return MP_EINVAL;
    void *copy = NULL;
    if (pool->initarg_size > 0) {
        copy = malloc(pool->initarg_size);
        if (copy == NULL)
            return -ENOMEM;
        memcpy(copy, pool->initarg, pool->initarg_size);
    }
    int r = init(copy, pool->initarg_size);
    free(copy);
    return r < 0 ? r : 0;
}

static int worker_body(struct mp_pool *pool, uint32_t w)
{
    mp__wrec *rec = &pool->recs[w];
    int r = run_initializer(pool, rec);
    if (r != 0) {
        rec->init_code = r;
        MP__ST(&rec->state, MP__W_INITFAIL);
        return 1;
    }
    MP__ST(&rec->state, MP__W_READY);
    return mp__pool_worker_run(pool, w);
}

static int worker_process_main(void *arg, size_t size)
{
    struct wstart ws;
    memcpy(&ws, arg, sizeof ws);
    /* The pool owns the workers' lifetime: Ctrl-C goes to the caller. */
    signal(SIGINT, SIG_IGN);
    /*
     * A replacement worker is forked by the pool's thread while the
     * caller's threads may be writing to stdout: whatever the buffers held
     * at the fork is the caller's to print, not ours.
     */
    __fpurge(stdout);
    __fpurge(stderr);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (kill(ws.pool->creator, 0) != 0)
        return 1;
    ws.pool->recs[ws.w].pid = getpid();
    return worker_body(ws.pool, ws.w);
}

static void *worker_thread_main(void *arg)
{
    struct wstart ws = *(struct wstart *)arg;
    free(arg);
    worker_body(ws.pool, ws.w);
    MP__ST(&ws.pool->L->thr_exited[ws.w], 1);
    poke_handler(ws.pool);
    return NULL;
}

/* Create a thread with every signal blocked. */
static int thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return -r;
}

static int start_worker(struct mp_pool *pool, uint32_t w)
{
    struct mp__plocal *L = pool->L;
    mp__wrec *rec = &pool->recs[w];
    rec->cur_job = NULL;
    rec->out_block = NULL;
    rec->tasks = 0;
    rec->init_code = 0;
    MP__ST(&rec->hazard, NULL);
    MP__ST(&rec->state, MP__W_STARTING);
    if (pool->threads) {
        struct wstart *ws = malloc(sizeof *ws);
        if (ws == NULL)
            return -ENOMEM;
        ws->pool = pool;
        ws->w = w;
        MP__ST(&L->thr_exited[w], 0);
        int r = thread_start(&L->thr[w], worker_thread_main, ws);
        if (r != 0) {
            free(ws);
            MP__ST(&rec->state, MP__W_EMPTY);
            return r;
        }
        L->live[w] = true;
        return 0;
    }
    struct wstart ws = {pool, w};
    mp_process *p = mp_process_new(.target = worker_process_main, .arg = &ws,
                                   .arg_size = sizeof ws, .daemon = true, .ctx = pool->ctx);
    if (p == NULL) {
        MP__ST(&rec->state, MP__W_EMPTY);
        return mp_last_error();
    }
    const char *name = mp_process_name(p);
    const char *num = strchr(name, '-');
    char buf[96];
    snprintf(buf, sizeof buf, "PoolWorker%s", num != NULL ? num : "");
    mp_process_set_name(p, buf);
    int r = mp_process_start(p);
    if (r != 0) {
        mp_process_free(p);
        MP__ST(&rec->state, MP__W_EMPTY);
        return r;
    }
    L->procs[w] = p;
    L->live[w] = true;
    return 0;
}

/* Reap worker w if it has ended; true when it had. */
static bool reap_worker(struct mp_pool *pool, uint32_t w, bool block)
{
    struct mp__plocal *L = pool->L;
    if (pool->threads) {
        if (!block && !MP__LD(&L->thr_exited[w]))
            return false;
        pthread_join(L->thr[w], NULL);
        worker_gone(pool, w, 0, 0);
        return true;
    }
    mp_process *p = L->procs[w];
    if (mp_process_join(p, block ? MP_FOREVER : 0) != 0)
        return false;
    int code = 0;
    mp_process_exitcode(p, &code);
    pid_t pid = mp_process_pid(p);
    worker_gone(pool, w, pid, code);
    mp_process_free(p);
    L->procs[w] = NULL;
    return true;
}

/* ---- the worker handler thread --------------------------------------------------- */

/* Is there queued work, or work still to come from an imap? */
static bool work_left(struct mp_pool *pool)
{
    lock(pool);
    advance_head(pool);
    bool left = MP__LD(&pool->head) != MP__LD(&pool->tail) || MP__LD(&pool->feeding) > 0;
    unlock(pool);
    return left;
}

static unsigned count_live(struct mp_pool *pool)
{
    unsigned n = 0;
    for (uint32_t w = 0; w < pool->nworkers; w++)
        n += pool->L->live[w];
    return n;
}

/* Start workers in the empty slots; false if some could not start. */
static bool replenish(struct mp_pool *pool)
{
    struct mp__plocal *L = pool->L;
    bool ok = true;
    for (uint32_t w = 0; w < pool->nworkers; w++) {
        if (L->live[w])
            continue;
        int r = start_worker(pool, w);
        if (r != 0) {
            ok = false;
            if (++L->start_failures >= 50 || count_live(pool) == 0) {
                /* No worker can run the queued tasks: fail them. */
                int32_t zero = 0;
                if (MP__CAS(&pool->broken, &zero, r)) {
                    mp__warn("pool cannot start workers (%s)", mp_err_name(r));
                    cancel_all(pool, r);
                }
            }
            break;
        }
        L->start_failures = 0;
    }
    return ok;
}

static void handler_wait(struct mp_pool *pool, int timeout_ms)
{
    struct mp__plocal *L = pool->L;
    nfds_t n = 0;
    L->pfd[n].fd = L->evfd;
    L->pfd[n].events = POLLIN;
    n++;
    if (!pool->threads) {
        for (uint32_t w = 0; w < pool->nworkers; w++) {
            if (!L->live[w])
                continue;
            L->pfd[n].fd = mp_process_sentinel(L->procs[w]);
            L->pfd[n].events = POLLIN;
            L->pfd_worker[n] = w;
            n++;
        }
    }
    if (poll(L->pfd, n, timeout_ms) > 0 && (L->pfd[0].revents & POLLIN)) {
        uint64_t v;
        ssize_t r = read(L->evfd, &v, sizeof v);
        (void)r;
    }
}

static void handler_terminate(struct mp_pool *pool)
{
    struct mp__plocal *L = pool->L;
    if (!pool->threads)
        for (uint32_t w = 0; w < pool->nworkers; w++)
            if (L->live[w])
                mp_process_kill(L->procs[w]);
    mp__pool_wake_workers(pool, INT32_MAX);
    for (uint32_t w = 0; w < pool->nworkers; w++)
        if (L->live[w])
            reap_worker(pool, w, true);
    cancel_all(pool, MP_EWORKERLOST);
}

static void *handler_main(void *arg)
{
    struct mp_pool *pool = arg;
    struct mp__plocal *L = pool->L;
    for (uint32_t w = 0; w < pool->nworkers && L->start_error == 0; w++)
        L->start_error = start_worker(pool, w);
    MP__ST(&L->started, 1);
    mp__futex_wake(&L->started, INT32_MAX);
    if (L->start_error != 0) {
        /* pool_new terminates the pool: wait for that. */
        while (MP__LD(&pool->state) != MP__P_TERMINATE)
            handler_wait(pool, 100);
    }
    bool retry = false;
    for (;;) {
        uint32_t state = MP__LD(&pool->state);
        if (state == MP__P_TERMINATE)
            break;
        lock(pool);
        bool limbo = L->nlimbo > 0;
        unlock(pool);
        handler_wait(pool, retry || limbo ? 100 : -1);
        for (uint32_t w = 0; w < pool->nworkers; w++)
            if (L->live[w])
                reap_worker(pool, w, false);
        lock(pool);
        reclaim_limbo_locked(pool, false);
        unlock(pool);
        state = MP__LD(&pool->state);
        if (state == MP__P_TERMINATE)
            break;
        retry = false;
        bool left = work_left(pool);
        if (MP__LD(&pool->broken) == 0 && (state == MP__P_RUN || left))
            retry = !replenish(pool);
        if (state == MP__P_CLOSE && !left && count_live(pool) == 0)
            break;
        if (MP__LD(&pool->broken) != 0 && state == MP__P_CLOSE && count_live(pool) == 0)
            break;
    }
    handler_terminate(pool);
    MP__ST(&L->handler_done, 1);
    mp__futex_wake(&L->handler_done, INT32_MAX);
    MP__ST(&pool->rh_rescan, 1);
    mp__pool_wake_rh(pool);
    return NULL;
}

/* ---- the result handler thread ------------------------------------------------------ */

/* Finish j if it is a pending callback job that is complete. */
static void rh_consider(struct mp_pool *pool, mp__pjob *j)
{
    struct mp__plocal *L = pool->L;
    lock(pool);
    bool pending = pset_contains(&L->pending, j);
    unlock(pool);
    if (!pending || !mp__pool_job_complete(j))
        return;
    lock(pool);
    pset_remove(&L->pending, j);
    j->rh_pending = false;
    unlock(pool);
    int r = mp__pool_job_finish(j);
    if (MP__LD(&j->fin) == 2) {
        if (r == 0 && j->cb != NULL) {
            const void *res;
            size_t size;
            mp__pool_job_result(j, &res, &size);
            j->cb(res, size, j->cb_arg);
        } else if (r != 0 && j->ecb != NULL) {
            j->ecb(r, j->msg != NULL ? j->msg : "", j->cb_arg);
        }
    }
    MP__ST(&j->ready, 1);
    mp__futex_wake(&j->ready, INT32_MAX);
    mp__pool_job_release(j);
}

static void rh_rescan(struct mp_pool *pool)
{
    struct mp__plocal *L = pool->L;
    lock(pool);
    size_t n = 0;
    mp__pjob **list = malloc((L->pending.n ? L->pending.n : 1) * sizeof *list);
    if (list != NULL)
        for (size_t i = 0; i < L->pending.cap; i++)
            if (L->pending.slot[i] != NULL && L->pending.slot[i] != PSET_TOMB)
                list[n++] = L->pending.slot[i];
    unlock(pool);
    if (list == NULL) {
        MP__ST(&pool->rh_rescan, 1); /* try again later */
        return;
    }
    for (size_t i = 0; i < n; i++)
        rh_consider(pool, list[i]);
    free(list);
}

static bool rh_has_hints(struct mp_pool *pool)
{
    for (uint32_t w = 0; w < pool->nworkers; w++) {
        mp__wrec *rec = &pool->recs[w];
        if (MP__LDA(&rec->hint_tail) != MP__LDR(&rec->hint_head))
            return true;
    }
    return MP__LD(&pool->rh_rescan) != 0;
}

static bool rh_finished(struct mp_pool *pool)
{
    if (!MP__LD(&pool->L->handler_done))
        return false;
    lock(pool);
    bool empty = pool->L->pending.n == 0;
    unlock(pool);
    return empty;
}

static void *rh_main(void *arg)
{
    struct mp_pool *pool = arg;
    for (;;) {
        for (uint32_t w = 0; w < pool->nworkers; w++) {
            mp__wrec *rec = &pool->recs[w];
            uint64_t h = MP__LDR(&rec->hint_head);
            uint64_t t = MP__LDA(&rec->hint_tail);
            while (h < t) {
                mp__pjob *j = (mp__pjob *)rec->hints[h & (MP__POOL_HINT_CAP - 1)];
                MP__STR(&rec->hint_head, ++h);
                rh_consider(pool, j);
            }
        }
        if (MP__XCHG(&pool->rh_rescan, 0))
            rh_rescan(pool);
        if (rh_finished(pool)) {
            /* The handler is done: every job is final now. */
            if (!MP__LD(&pool->rh_rescan))
                break;
            continue;
        }
        MP__ST(&pool->rh_sleeping, 1);
        uint32_t seq = MP__LD(&pool->rh_seq);
        if (!rh_has_hints(pool) && !rh_finished(pool))
            mp__futex_wait(&pool->rh_seq, seq, NULL);
        MP__ST(&pool->rh_sleeping, 0);
    }
    MP__ST(&pool->L->rh_done, 1);
    mp__futex_wake(&pool->L->rh_done, INT32_MAX);
    return NULL;
}

/* ---- construction ---------------------------------------------------------------- */

static void plocal_free(struct mp__plocal *L)
{
    if (L == NULL)
        return;
    if (L->evfd >= 0)
        close(L->evfd);
    free(L->limbo);
    free(L->pending.slot);
    free(L->procs);
    free(L->thr);
    free(L->live);
    free(L->thr_exited);
    free(L->pfd);
    free(L->pfd_worker);
    pthread_mutex_destroy(&L->lock);
    pthread_mutex_destroy(&L->stage_lock);
    free(L);
}

static struct mp__plocal *plocal_new(uint32_t n)
{
    struct mp__plocal *L = calloc(1, sizeof *L);
    if (L == NULL)
        return NULL;
    L->evfd = -1;
    pthread_mutex_init(&L->lock, NULL);
    pthread_mutex_init(&L->stage_lock, NULL);
    L->procs = calloc(n, sizeof *L->procs);
    L->thr = calloc(n, sizeof *L->thr);
    L->live = calloc(n, sizeof *L->live);
    L->thr_exited = calloc(n, sizeof *L->thr_exited);
    L->pfd = calloc(n + 1, sizeof *L->pfd);
    L->pfd_worker = calloc(n + 1, sizeof *L->pfd_worker);
    L->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!L->procs || !L->thr || !L->live || !L->thr_exited || !L->pfd ||
        !L->pfd_worker || L->evfd < 0) {
        plocal_free(L);
        return NULL;
    }
    return L;
}

/* Release everything (threads joined, no worker left). */
static void pool_destroy(struct mp_pool *pool)
{
    struct mp__plocal *L = pool->L;
    lock(pool);
    reclaim_limbo_locked(pool, true);
    for (mp__pjob *j = L->jobs; j != NULL;) {
        mp__pjob *next = j->next_job;
        j->pool = NULL;
        j->prev = j->next_job = NULL;
        j = next;
    }
    L->jobs = NULL;
    unlock(pool);
    for (int i = 0; i < STAGE_CACHE; i++)
        mp__free(L->stage[i]);
    plocal_free(L);
    mp__free(pool->ring);
    mp__free(pool->recs);
    mp__free(pool->initarg);
    mp__obj_free(pool);
}

static void pool_at_exit(void *arg);

static int wait_flag(uint32_t *flag, const mp__deadline *d)
{
    while (!MP__LD(flag)) {
        int r = mp__futex_wait(flag, 0, d);
        if (r == MP_ETIMEDOUT || r == -EINTR)
            return r;
    }
    return 0;
}

static mp_pool *pool_create(const mp_pool_options *o, bool threads)
{
    if (o == NULL || o->processes < 0 || o->processes > MP__POOL_MAX_WORKERS ||
        (o->initarg == NULL && o->initarg_size > 0))
        return mp__fail_null(MP_EINVAL);
    mp__fnref init;
    if (mp__fnref_make(&init, (void (*)(void))o->initializer) != 0)
        return mp__fail_null(MP_EINVAL);
    int r = mp__heap_init();
    if (r != 0)
        return mp__fail_null(r);
    uint32_t n = o->processes > 0 ? (uint32_t)o->processes : (uint32_t)mp_cpu_count();
    if (n > MP__POOL_MAX_WORKERS)
        n = MP__POOL_MAX_WORKERS;

    struct mp_pool *pool = mp__obj_new(sizeof *pool, MP__POOL_MAGIC);
    if (pool == NULL)
        return mp__fail_null(-ENOMEM);
    pool->threads = threads;
    pool->nworkers = n;
    pool->maxtasks = o->maxtasksperchild;
    pool->init = init;
    pool->ctx = o->ctx;
    pool->creator = mp__pool_self();
    pool->ring = mp__alloc(MP__POOL_RING_CAP * sizeof *pool->ring);
    pool->recs = mp__alloc(n * sizeof *pool->recs);
    if (o->initarg_size > 0) {
        pool->initarg = mp__alloc(o->initarg_size);
        if (pool->initarg != NULL)
            memcpy(pool->initarg, o->initarg, o->initarg_size);
        pool->initarg_size = o->initarg_size;
    }
    pool->L = plocal_new(n);
    if (pool->ring == NULL || pool->recs == NULL || pool->L == NULL ||
        (o->initarg_size > 0 && pool->initarg == NULL)) {
        plocal_free(pool->L);
        mp__free(pool->ring);
        mp__free(pool->recs);
        mp__free(pool->initarg);
        mp__obj_free(pool);
        return mp__fail_null(-ENOMEM);
    }
    mp__robust_mutex_init(&pool->err_lock);
    mp_current_process(); /* the exit function and the process state */

    struct mp__plocal *L = pool->L;
    r = thread_start(&L->rh, rh_main, pool);
    if (r == 0) {
        L->rh_started = true;
        r = thread_start(&L->handler, handler_main, pool);
    }
    if (r == 0) {
        L->handler_started = true;
        mp__deadline forever;
        mp__deadline_init(&forever, MP_FOREVER);
        while (wait_flag(&L->started, &forever) != 0)
            ;
        r = L->start_error;
    }
    if (r != 0) {
        if (L->handler_started) {
            mp_pool_terminate(pool);
        } else {
            MP__ST(&L->handler_done, 1);
            mp__pool_wake_rh(pool);
        }
        if (L->rh_started)
            pthread_join(L->rh, NULL);
        if (L->handler_started)
            pthread_join(L->handler, NULL);
        pool_destroy(pool);
        return mp__fail_null(r);
    }
    L->fin_id = mp_finalize(pool_at_exit, pool, 15);
    return pool;
}

mp_pool *mp_pool_new_opts(const mp_pool_options *opts)
{
    return pool_create(opts, false);
}

mp_pool *mp_thread_pool_new_opts(const mp_pool_options *opts)
{
    return pool_create(opts, true);
}

/* ---- close, terminate, join, free --------------------------------------------------- */

int mp_pool_close(mp_pool *pool)
{
    if (mp__pool_check_owner(pool) != 0)
        return MP_EINVAL;
    uint32_t run = MP__P_RUN;
    if (!MP__CAS(&pool->state, &run, MP__P_CLOSE) && run == MP__P_TERMINATE)
        return MP_EINVAL;
    mp__pool_wake_workers(pool, INT32_MAX);
    poke_handler(pool);
    return 0;
}

int mp_pool_terminate(mp_pool *pool)
{
    if (mp__pool_check_owner(pool) != 0)
        return MP_EINVAL;
    MP__ST(&pool->state, MP__P_TERMINATE);
    mp__pool_wake_workers(pool, INT32_MAX);
    poke_handler(pool);
    if (pool->L->handler_started && !pthread_equal(pthread_self(), pool->L->handler)) {
        mp__deadline forever;
        mp__deadline_init(&forever, MP_FOREVER);
        while (wait_flag(&pool->L->handler_done, &forever) != 0)
            ;
    }
    return 0;
}

/*
 * Run the input of the iterators still open to its end (Python's task
 * handler feeds every input before join returns), keeping their results in
 * the caller until they are taken.
 */
static int drain_imaps(mp_pool *pool, const mp__deadline *d)
{
    struct mp__plocal *L = pool->L;
    lock(pool);
    size_t n = 0;
    for (mp__pjob *j = L->jobs; j != NULL; j = j->next_job)
        n += (j->flags & MP__JF_IMAP) && j->counted_feeding;
    mp__pjob **list = malloc((n ? n : 1) * sizeof *list);
    size_t k = 0;
    for (mp__pjob *j = L->jobs; list != NULL && j != NULL; j = j->next_job) {
        if ((j->flags & MP__JF_IMAP) && j->counted_feeding) {
            MP__ADD(&j->refs, 1);
            list[k++] = j;
        }
    }
    unlock(pool);
    if (list == NULL)
        return -ENOMEM;
    int r = 0;
    for (size_t i = 0; i < k; i++) {
        if (r == 0)
            r = mp__pool_imap_drain(list[i], d);
        mp__pool_job_release(list[i]);
    }
    free(list);
    return r;
}

int mp_pool_join(mp_pool *pool, double timeout)
{
    if (mp__pool_check_owner(pool) != 0)
        return MP_EINVAL;
    mp__deadline d;
    if (mp__deadline_init(&d, timeout) != 0 || MP__LD(&pool->state) == MP__P_RUN ||
        mp__pool_on_own_thread(pool))
        return MP_EINVAL;
    struct mp__plocal *L = pool->L;
    int r = 0;
    if (MP__LD(&pool->state) == MP__P_CLOSE)
        r = drain_imaps(pool, &d);
    if (r == 0)
        r = wait_flag(&L->handler_done, &d);
    if (r == 0)
        r = wait_flag(&L->rh_done, &d);
    if (r != 0)
        return r;
    lock(pool);
    bool join = !L->joined;
    L->joined = true;
    unlock(pool);
    if (join) {
        pthread_join(L->handler, NULL);
        pthread_join(L->rh, NULL);
    }
    return 0;
}

static void pool_at_exit(void *arg)
{
    mp_pool *pool = arg;
    mp_pool_terminate(pool);
    mp_pool_join(pool, MP_FOREVER);
}

void mp_pool_free(mp_pool *pool)
{
    if (mp__pool_check_owner(pool) != 0 || mp__pool_on_own_thread(pool))
        return;
    if (pool->L->fin_id > 0)
        mp_finalizer_cancel(pool->L->fin_id);
    if (!pool->L->joined) {
        mp_pool_terminate(pool);
        while (mp_pool_join(pool, MP_FOREVER) == -EINTR)
            ;
    }
    pool_destroy(pool);
}

int mp_pool_processes(const mp_pool *pool)
{
    if (mp__obj_check(pool, MP__POOL_MAGIC) != 0)
        return MP_EINVAL;
    return (int)pool->nworkers;
}

size_t mp_pool_chunksize(const mp_pool *pool, size_t n)
{
    if (mp__obj_check(pool, MP__POOL_MAGIC) != 0 || n == 0)
        return 0;
    size_t per = (size_t)pool->nworkers * 4;
    return n / per + (n % per != 0);
}
