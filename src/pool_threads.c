/*
 * pool_threads.c: the two threads a pool has in its creating process, as
 * Python's Pool has its handler threads.
 *
 * The worker handler starts the workers, watches them (the pidfd sentinel
 * of each worker process, or an eventfd that exiting worker threads
 * write), replaces those that exit or die, accounts for the chunk a dead
 * worker owned, and carries out terminate.  The result handler runs
 * callbacks: workers hand it completed callback jobs through a small
 * single-producer ring in their record, and it sleeps on a futex.  Both
 * block every signal.
 */
#include "internal/pool.h"
#include "internal/mpi.h"
#include "internal/popen.h"
#include "internal/util.h"

#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

/* ---- a dead worker --------------------------------------------------------------- */

void mp__pool_lost_message(char *buf, size_t size, pid_t pid, int exitcode)
{
    if (exitcode < 0) {
        const char *name = mp__signal_abbrev(-exitcode);
        snprintf(buf, size,
                 "worker process %d was killed by signal %d (SIG%s) while running the task",
                 (int)pid, -exitcode, name != NULL ? name : "?");
    } else {
        snprintf(buf, size, "worker process %d exited with code %d while running the task",
                 (int)pid, exitcode);
    }
}

void mp__pool_chunk_lost(struct mp_pool *pool, mp__pjob *j, uint64_t c, pid_t pid,
                         int exitcode, const char *msg)
{
    if (j->kind == MP__K_FIXED) {
        size_t lo = (size_t)c * j->chunksize;
        size_t hi = lo + j->chunksize < j->n ? lo + j->chunksize : j->n;
        if (j->status != NULL)
            for (size_t i = lo; i < hi; i++)
                j->status[i] = MP_EWORKERLOST;
        mp__pool_record_error(pool, j, lo, MP_EWORKERLOST, msg);
    } else {
        mp__pslot *s = &j->slots[c % j->nslots];
        s->out = NULL;
        s->out_len = 0;
        s->lost_pid = pid;
        s->lost_exit = exitcode;
    }
    MP__ST(mp__chunk_state(j, c), mp__cs(c, MP__CS_LOST));
}

/*
 * Account for the chunk worker w owned when it died (handler thread, after
 * the worker was reaped: its memory writes are all visible and final).
 */
/* From now on, j's completion is decided from its chunks' states. */
static void job_dirty(struct mp_pool *pool, mp__pjob *j)
{
    MP__ST(&j->dirty, 1);
    MP__ADD(&j->wake_seq, 1);
    mp__futex_wake(&j->wake_seq, INT32_MAX);
    mp__futex_wake(mp__job_remaining_word(j), INT32_MAX);
    MP__ST(&pool->rh_rescan, 1);
    mp__pool_wake_rh(pool);
}

static void chunk_lost(struct mp_pool *pool, mp__wrec *rec, mp__pjob *j, uint64_t c, pid_t pid,
                       int exitcode)
{
    char msg[MP__POOL_MSG];
    mp__pool_lost_message(msg, sizeof msg, pid, exitcode);
    if (j->kind != MP__K_FIXED && rec->out_block != NULL)
        mp__free(rec->out_block);
    rec->out_block = NULL;
    mp__pool_chunk_lost(pool, j, c, pid, exitcode, msg);
    mp__pool_chunk_counted(pool, j, NULL);
}

/*
 * The dead worker's reservation of a fixed map: the chunks it ran may not
 * be counted yet (they are counted once per reservation), and those it did
 * not claim go to the other workers.  Only if the ring is full are they
 * failed as lost instead.
 */
static void reservation_lost(struct mp_pool *pool, uint32_t w, pid_t pid, int exitcode)
{
    mp__wrec *rec = &pool->recs[w];
    mp__pjob *j = rec->res_job;
    rec->res_job = NULL;
    if (j == NULL || MP__LD(&rec->hazard) != j)
        return;
    job_dirty(pool, j);
    if (mp__pool_requeue(pool, j, rec->res_lo, rec->res_hi) != -EAGAIN)
        return;
    for (uint64_t c = rec->res_lo; c < rec->res_hi; c++) {
        uint64_t expect = mp__chunk_free(j, c);
        if (MP__CAS(mp__chunk_state(j, c), &expect, mp__cs(c, MP__CS_OWNED + w)))
            chunk_lost(pool, rec, j, c, pid, exitcode);
    }
}

static void worker_lost(struct mp_pool *pool, uint32_t w, pid_t pid, int exitcode)
{
    mp__wrec *rec = &pool->recs[w];
    mp__pjob *j = rec->cur_job;
    if (j != NULL && MP__LD(&rec->hazard) == j) {
        uint64_t c = rec->cur_chunk;
        uint64_t v = MP__LD(mp__chunk_state(j, c));
        if (v == mp__cs(c, MP__CS_OWNED + w))
            chunk_lost(pool, rec, j, c, pid, exitcode);
        else if (mp__cs_k(v) == c && mp__cs_final(mp__cs_st(v)))
            job_dirty(pool, j); /* died after finishing it, perhaps before counting it */
    }
    reservation_lost(pool, w, pid, exitcode);
}

/* No worker can start: fail every pending and later task with code. */
static void pool_break(struct mp_pool *pool, int code, pid_t pid, const char *why)
{
    int32_t zero = 0;
    if (!MP__CAS(&pool->broken, &zero, code))
        return;
    if (pool->threads)
        mp__warn("pool initializer %s in a worker thread (%s): the pool is broken", why,
                 mp_err_name(code));
    else
        mp__warn("pool initializer %s in worker %d (%s): the pool is broken", why, (int)pid,
                 mp_err_name(code));
    mp__pool_cancel_all(pool, code);
}

/* A worker ended: account for it and empty its slot. */
static void worker_gone(struct mp_pool *pool, uint32_t w, pid_t pid, int exitcode)
{
    mp__wrec *rec = &pool->recs[w];
    uint32_t st = MP__LD(&rec->state);
    /*
     * A worker that crashes before its initializer returned (not one
     * killed from outside) would be restarted forever, as Python does:
     * three in a row break the pool instead.
     */
    if (st == MP__W_STARTING && exitcode != -SIGKILL && exitcode != -SIGTERM &&
        MP__LD(&pool->state) != MP__P_TERMINATE) {
        if (++pool->L->init_crashes >= 3)
            pool_break(pool, MP_EWORKERLOST, pid, "crashed");
    } else if (st != MP__W_STARTING) {
        pool->L->init_crashes = 0;
    }
    if (st == MP__W_INITFAIL) {
        pool_break(pool, rec->init_code < 0 ? rec->init_code : MP_EWORKERLOST, pid, "failed");
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
    rec->res_job = NULL;
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
    int r = pool->mpi != NULL ? mp__mpi_pool_init_code(pool, w) : run_initializer(pool, rec);
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
    mp__pool_poke(ws.pool);
    return NULL;
}

/* Create a thread with every signal blocked. */
int mp__pool_thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
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
    rec->res_job = NULL;
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
        int r = mp__pool_thread_start(&L->thr[w], worker_thread_main, ws);
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
    /* This thread blocks every signal; the worker gets its pool's mask. */
    mp__process_set_sigmask(p, pool->sig_block);
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
                    mp__pool_cancel_all(pool, r);
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
    mp__pool_cancel_all(pool, MP_EWORKERLOST);
}

void *mp__pool_handler_main(void *arg)
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
    bool retry = false, limbo_empty = true;
    for (;;) {
        uint32_t state = MP__LD(&pool->state);
        if (state == MP__P_TERMINATE)
            break;
        handler_wait(pool, retry || !limbo_empty ? 100 : -1);
        for (uint32_t w = 0; w < pool->nworkers; w++)
            if (L->live[w])
                reap_worker(pool, w, false);
        limbo_empty = mp__pool_reclaim(pool);
        state = MP__LD(&pool->state);
        if (state == MP__P_TERMINATE)
            break;
        retry = false;
        bool left = mp__pool_work_left(pool);
        if (MP__LD(&pool->broken) == 0 && (state == MP__P_RUN || left))
            retry = !replenish(pool);
        if (state == MP__P_CLOSE && !left && count_live(pool) == 0)
            break;
        if (MP__LD(&pool->broken) != 0 && state == MP__P_CLOSE && count_live(pool) == 0)
            break;
    }
    handler_terminate(pool);
    if (pool->mpi != NULL)
        mp__mpi_pool_stop(pool->mpi);
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
    /* A hint may name a job finished and freed long ago: only a job still
     * pending (which the result thread alone takes out) may be read. */
    if (!mp__pool_pending_has(pool, j) || !mp__pool_job_complete(j))
        return;
    mp__pool_pending_take(pool, j);
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
    size_t n;
    mp__pjob **list = mp__pool_pending_list(pool, &n);
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
    return MP__LD(&pool->L->handler_done) && mp__pool_pending_empty(pool);
}

void *mp__pool_rh_main(void *arg)
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
