/*
 * pool.c: the pool object and the life of jobs (Python's Pool.__init__,
 * close, terminate, join); its two threads are in pool_threads.c.
 *
 * Jobs are reclaimed once (a) the caller and the result thread dropped
 * them, (b) the ring head has passed their last entry, and (c) no worker's
 * hazard pointer names them; until then they wait in a limbo list that
 * every pool call and the handler thread retry.
 */
#include "internal/pool.h"
#include "internal/mpi.h"
#include "internal/popen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define MP__POOL_STAGE_CACHE_MAX ((size_t)256 << 20)

/* ---- the pointer set ---------------------------------------------------------- */

static size_t pset_hash(const mp__pjob *j, size_t cap)
{
    uintptr_t x = (uintptr_t)j >> 6;
    x *= 0x9e3779b97f4a7c15ull;
    return (size_t)(x >> 20) & (cap - 1);
}

static bool pset_contains(const mp__pset *s, const mp__pjob *j)
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

static int pset_add(mp__pset *s, mp__pjob *j);

static int pset_grow(mp__pset *s)
{
    size_t cap = s->cap ? s->cap * 2 : 64;
    if (s->n * 4 < s->cap)
        cap = s->cap; /* mostly tombstones: rehash at the same size */
    mp__pset old = *s;
    s->slot = calloc(cap, sizeof *s->slot);
    if (s->slot == NULL) {
        *s = old;
        return -ENOMEM;
    }
    s->cap = cap;
    s->n = s->used = 0;
    for (size_t i = 0; i < old.cap; i++)
        if (old.slot[i] != NULL && old.slot[i] != MP__PSET_TOMB)
            pset_add(s, old.slot[i]);
    free(old.slot);
    return 0;
}

static int pset_add(mp__pset *s, mp__pjob *j)
{
    if ((s->used + 1) * 2 > s->cap && pset_grow(s) != 0)
        return -ENOMEM;
    size_t i = pset_hash(j, s->cap);
    while (s->slot[i] != NULL && s->slot[i] != MP__PSET_TOMB)
        i = (i + 1) & (s->cap - 1);
    if (s->slot[i] == NULL)
        s->used++;
    s->slot[i] = j;
    s->n++;
    return 0;
}

static void pset_remove(mp__pset *s, const mp__pjob *j)
{
    if (s->cap == 0)
        return;
    for (size_t i = pset_hash(j, s->cap);; i = (i + 1) & (s->cap - 1)) {
        if (s->slot[i] == j) {
            s->slot[i] = MP__PSET_TOMB;
            s->n--;
            return;
        }
        if (s->slot[i] == NULL)
            return;
    }
}

/* ---- small helpers ---------------------------------------------------------------- */

void mp__pool_lock(struct mp_pool *pool)
{
    pthread_mutex_lock(&pool->L->lock);
}

void mp__pool_unlock(struct mp_pool *pool)
{
    pthread_mutex_unlock(&pool->L->lock);
}

static void lock(struct mp_pool *pool)
{
    mp__pool_lock(pool);
}

static void unlock(struct mp_pool *pool)
{
    mp__pool_unlock(pool);
}

void mp__pool_poke(struct mp_pool *pool)
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
static struct mp__plocal *live_plocals;
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;

static void self_after_fork(void)
{
    self_pid = getpid();
    /* Another thread may have held it at the fork. */
    pthread_mutex_init(&live_lock, NULL);
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
    for (int i = 0; i < MP__POOL_STAGE_CACHE; i++) {
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
    if (pool != NULL && size <= MP__POOL_STAGE_CACHE_MAX) {
        /* Keep it in place of an empty entry, or of the smallest if that
         * is smaller. */
        pthread_mutex_lock(&pool->L->stage_lock);
        int victim = -1;
        for (int i = 0; i < MP__POOL_STAGE_CACHE; i++) {
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

/* Append entry (j, hi) on the ring (lock held; unless nowait, may drop it
 * while the ring is full, else -EAGAIN).  Fails when the pool is
 * terminated or broken meanwhile. */
static int push_locked(struct mp_pool *pool, mp__pjob *j, uint64_t hi, bool nowait)
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
        if (nowait)
            return -EAGAIN;
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
    int r = push_locked(pool, j, hi, false);
    unlock(pool);
    if (r == 0)
        mp__pool_wake_workers(pool, nwake);
    return r;
}

bool mp__pool_requeue_full;

int mp__pool_requeue(struct mp_pool *pool, mp__pjob *j, uint64_t lo, uint64_t hi)
{
    if (mp__pool_requeue_full)
        return -EAGAIN;
    while (lo < hi && MP__LD(mp__chunk_state(j, lo)) != mp__chunk_free(j, lo))
        lo++;
    if (lo == hi)
        return 0;
    lock(pool);
    int r = push_locked(pool, j, hi, true);
    if (r == 0) {
        /* Claims start from next: move it back to the first free chunk.
         * Chunks between it and the old next that are taken, or reserved by
         * live workers, are skipped or raced for by CAS on their states. */
        uint64_t nx = MP__LD(&j->next);
        while (nx > lo && !MP__CAS(&j->next, &nx, lo))
            ;
    }
    unlock(pool);
    if (r == 0)
        mp__pool_wake_workers(pool, INT32_MAX);
    return r == -EAGAIN ? r : 0;
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
        r = push_locked(pool, j, hi, false);
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
        MP__ST(&j->counted_feeding, true);
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

void mp__pool_job_retain(mp__pjob *j)
{
    MP__ADD(&j->refs, 1);
}

bool mp__pool_job_calls_back(mp__pjob *j)
{
    return MP__LD(&j->fin) == 2;
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
    if (j->kind != MP__K_FIXED) {
        for (uint64_t c = 0; c < j->nchunks; c++)
            if (!mp__cs_final(mp__cs_st(MP__LD(mp__chunk_state(j, c)))))
                return false;
        return true;
    }
    /* A fixed map's states never leave final: each look starts where the
     * last stopped, or a caller woken once per batch of chunks would scan
     * the whole map each time. */
    uint64_t from = MP__LD(&j->final_below), c = from;
    while (c < j->nchunks && mp__cs_final(mp__cs_st(MP__LD(mp__chunk_state(j, c)))))
        c++;
    while (from < c && !MP__CAS(&j->final_below, &from, c))
        ;
    return c == j->nchunks;
}

void mp__pool_cancel_all(struct mp_pool *pool, int code)
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
    mp__pool_poke(pool);
}

/* ---- for the pool's threads ------------------------------------------------------ */

bool mp__pool_work_left(struct mp_pool *pool)
{
    lock(pool);
    advance_head(pool);
    bool left = MP__LD(&pool->head) != MP__LD(&pool->tail) || MP__LD(&pool->feeding) > 0;
    unlock(pool);
    return left;
}

bool mp__pool_reclaim(struct mp_pool *pool)
{
    lock(pool);
    reclaim_limbo_locked(pool, false);
    bool empty = pool->L->nlimbo == 0;
    unlock(pool);
    return empty;
}

bool mp__pool_pending_has(struct mp_pool *pool, const mp__pjob *j)
{
    lock(pool);
    bool in = pset_contains(&pool->L->pending, j);
    unlock(pool);
    return in;
}

bool mp__pool_pending_take(struct mp_pool *pool, mp__pjob *j)
{
    lock(pool);
    bool in = pset_contains(&pool->L->pending, j);
    if (in) {
        pset_remove(&pool->L->pending, j);
        j->rh_pending = false;
    }
    unlock(pool);
    return in;
}

mp__pjob **mp__pool_pending_list(struct mp_pool *pool, size_t *n)
{
    mp__pset *s = &pool->L->pending;
    lock(pool);
    mp__pjob **list = malloc((s->n ? s->n : 1) * sizeof *list);
    *n = 0;
    for (size_t i = 0; list != NULL && i < s->cap; i++)
        if (s->slot[i] != NULL && s->slot[i] != MP__PSET_TOMB)
            list[(*n)++] = s->slot[i];
    unlock(pool);
    return list;
}

bool mp__pool_pending_empty(struct mp_pool *pool)
{
    lock(pool);
    bool empty = pool->L->pending.n == 0;
    unlock(pool);
    return empty;
}

/* ---- construction ---------------------------------------------------------------- */


static void live_link(struct mp__plocal *L)
{
    pthread_mutex_lock(&live_lock);
    L->live_next = live_plocals;
    if (live_plocals != NULL)
        live_plocals->live_prev = L;
    live_plocals = L;
    pthread_mutex_unlock(&live_lock);
}

static void live_unlink(struct mp__plocal *L)
{
    pthread_mutex_lock(&live_lock);
    if (L->live_prev != NULL)
        L->live_prev->live_next = L->live_next;
    else if (live_plocals == L)
        live_plocals = L->live_next;
    if (L->live_next != NULL)
        L->live_next->live_prev = L->live_prev;
    L->live_prev = L->live_next = NULL;
    pthread_mutex_unlock(&live_lock);
}

static void plocal_free(struct mp__plocal *L)
{
    if (L == NULL)
        return;
    live_unlink(L);
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

/* The creator's state for n workers, or NULL with *err set. */
static struct mp__plocal *plocal_new(uint32_t n, int *err)
{
    *err = -ENOMEM;
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
    if (!L->procs || !L->thr || !L->live || !L->thr_exited || !L->pfd || !L->pfd_worker) {
        plocal_free(L);
        return NULL;
    }
    L->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (L->evfd < 0) {
        *err = mp__errno(); /* -EMFILE when the fds ran out */
        plocal_free(L);
        return NULL;
    }
    live_link(L);
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
    for (int i = 0; i < MP__POOL_STAGE_CACHE; i++)
        mp__free(L->stage[i]);
    plocal_free(L);
    mp__mpi_pool_free(pool->mpi);
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
    mp_pool_options opts_local;
    int opts_err;
    o = MP__OPTS_LOAD(opts_local, o, ctx, &opts_err);
    if (opts_err != 0)
        return mp__fail_null(opts_err);
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
    /* The one switch to MPI: proxy threads stand for the MPI workers. */
    struct mp__mpipool *M = NULL;
    if (!threads && mp__context_is_mpi(o->ctx)) {
        if (o->maxtasksperchild != 0)
            return mp__fail_null(MP_EINVAL);
        n = (uint32_t)o->processes;
        M = mp__mpi_pool_open(o, &n);
        if (M == NULL)
            return NULL;
        threads = true;
    }

    struct mp_pool *pool = mp__obj_new(sizeof *pool, MP__POOL_MAGIC);
    if (pool == NULL) {
        mp__mpi_pool_free(M);
        return mp__fail_null(-ENOMEM);
    }
    pool->mpi = M;
    pool->threads = threads;
    pool->nworkers = n;
    pool->maxtasks = o->maxtasksperchild;
    pool->init = init;
    pool->ctx = o->ctx;
    pool->creator = mp__pool_self();
    pool->sig_block = mp__sigmask_capture();
    pool->ring = mp__alloc(MP__POOL_RING_CAP * sizeof *pool->ring);
    pool->recs = mp__alloc(n * sizeof *pool->recs);
    if (o->initarg_size > 0) {
        pool->initarg = mp__alloc(o->initarg_size);
        if (pool->initarg != NULL)
            memcpy(pool->initarg, o->initarg, o->initarg_size);
        pool->initarg_size = o->initarg_size;
    }
    r = -ENOMEM;
    if (pool->ring != NULL && pool->recs != NULL &&
        (o->initarg_size == 0 || pool->initarg != NULL))
        pool->L = plocal_new(n, &r);
    if (pool->L == NULL) {
        mp__mpi_pool_free(M);
        mp__free(pool->ring);
        mp__free(pool->recs);
        mp__free(pool->initarg);
        mp__obj_free(pool);
        return mp__fail_null(r);
    }
    mp__robust_mutex_init(&pool->err_lock);
    mp_current_process(); /* the exit function and the process state */

    struct mp__plocal *L = pool->L;
    r = mp__pool_thread_start(&L->rh, mp__pool_rh_main, pool);
    if (r == 0) {
        L->rh_started = true;
        r = mp__pool_thread_start(&L->handler, mp__pool_handler_main, pool);
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
    mp__pool_poke(pool);
    return 0;
}

int mp_pool_terminate(mp_pool *pool)
{
    if (mp__pool_check_owner(pool) != 0)
        return MP_EINVAL;
    MP__ST(&pool->state, MP__P_TERMINATE);
    mp__pool_wake_workers(pool, INT32_MAX);
    mp__pool_poke(pool);
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
        n += (j->flags & MP__JF_IMAP) && MP__LD(&j->counted_feeding);
    mp__pjob **list = malloc((n ? n : 1) * sizeof *list);
    size_t k = 0;
    for (mp__pjob *j = L->jobs; list != NULL && j != NULL; j = j->next_job) {
        if ((j->flags & MP__JF_IMAP) && MP__LD(&j->counted_feeding)) {
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
