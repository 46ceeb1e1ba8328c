/*
 * pool_worker.c: what a pool worker does, in a worker process or a worker
 * thread alike: find a job on the ring, claim chunks by CAS on their state
 * words, run the items, publish the outputs, count the chunk.  Also the
 * task-side API (mp_pool_set_error, mp_pool_out_*).  docs/pool.md has the
 * design; internal/pool.h the state machine of a chunk.
 */
#include "internal/pool.h"
#include "internal/mpi.h"

#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long one idle worker spins before it sleeps. */
#define SPIN_NS 50000

/*
 * The message of the running task (mp_pool_set_error), per thread: in
 * task_msg when it fits, else in task_long (malloc'd, freed when the next
 * item starts and when the task ends, so a thread that exits leaks nothing).
 */
static MP__TLS char task_msg[MP__POOL_MSG];
static MP__TLS char *task_long;
static MP__TLS bool in_task;

static const char *msg_get(void)
{
    return task_long != NULL ? task_long : task_msg;
}

static inline void msg_reset(void)
{
    if (MP__UNLIKELY(task_long != NULL)) {
        free(task_long);
        task_long = NULL;
    }
    task_msg[0] = '\0';
}

/* Resolved task functions: dl_iterate_phdr is far too slow per chunk. */
struct fn_cache {
    uint64_t module, offset;
    void (*fn)(void);
};
static MP__TLS struct fn_cache fn_cache[8];

static void (*resolve(const mp__fnref *r))(void)
{
    unsigned i = (unsigned)((r->offset >> 4) ^ r->module) & 7;
    struct fn_cache *e = &fn_cache[i];
    if (e->fn != NULL && e->module == r->module && e->offset == r->offset)
        return e->fn;
    void (*fn)(void) = mp__fnref_resolve(r);
    if (fn != NULL) {
        e->module = r->module;
        e->offset = r->offset;
        e->fn = fn;
    }
    return fn;
}

/* ---- the task-side API ----------------------------------------------------- */

void mp_pool_set_error(const char *fmt, ...)
{
    if (!in_task || fmt == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(task_msg, sizeof task_msg, fmt, ap);
    va_end(ap);
    free(task_long);
    task_long = NULL;
    if (n < (int)sizeof task_msg)
        return;
    task_long = malloc((size_t)n + 1);
    if (task_long != NULL) {
        va_start(ap, fmt);
        vsnprintf(task_long, (size_t)n + 1, fmt, ap);
        va_end(ap);
        return;
    }
    /* Out of memory: keep the start, and say it was cut. */
    memcpy(task_msg + sizeof task_msg - 4, "...", 4);
}

struct mp_pool_out {
    mp__wrec *rec; /* the worker's record (NULL in a thread pool: no death) */
    char *buf;
    size_t len, cap;
    bool arena;  /* buf is an arena block this builder allocated */
    bool failed; /* an allocation failed: the item gets -ENOMEM */
    bool heap;   /* an MPI worker's: buf is malloc'd, never the arena */
};

/* Make room for extra more bytes; false when memory ran out. */
static bool out_ensure(mp_pool_out *o, size_t extra)
{
    if (o->failed)
        return false;
    if (extra <= o->cap - o->len)
        return true;
    size_t need = o->len + extra;
    if (need < o->len) {
        o->failed = true;
        return false;
    }
    size_t cap = o->cap * 2 > need ? o->cap * 2 : need;
    if (cap < 256)
        cap = 256;
    if (o->heap) {
        char *hb = realloc(o->buf, cap);
        if (hb == NULL) {
            o->failed = true;
            return false;
        }
        o->buf = hb;
        o->cap = cap;
        return true;
    }
    char *nb = mp__alloc(cap);
    if (nb == NULL) {
        o->failed = true;
        return false;
    }
    memcpy(nb, o->buf, o->len);
    /* Recorded before the old block goes, so that the pool frees it if
     * this worker dies now: at most the old block leaks. */
    if (o->rec != NULL)
        o->rec->out_block = nb;
    if (o->arena)
        mp__free(o->buf);
    o->buf = nb;
    o->cap = mp__alloc_size(nb);
    o->arena = true;
    return true;
}

int mp_pool_out_write(mp_pool_out *out, const void *buf, size_t n)
{
    if (out == NULL || (buf == NULL && n > 0))
        return MP_EINVAL;
    if (!out_ensure(out, n))
        return -ENOMEM;
    if (n > 0)
        memcpy(out->buf + out->len, buf, n);
    out->len += n;
    return 0;
}

void *mp_pool_out_reserve(mp_pool_out *out, size_t n)
{
    if (out == NULL || !out_ensure(out, n))
        return NULL;
    void *p = out->buf + out->len;
    out->len += n;
    return p;
}

/* ---- counting chunks, waking --------------------------------------------------- */

void mp__pool_wake_workers(struct mp_pool *pool, int n)
{
    MP__ADD(&pool->work_seq, 1);
    /*
     * The spinning worker (if any) takes one entry without a system call;
     * it clears spinner before its last look at the ring, so a skipped
     * wake is never lost (both sides sequentially consistent).
     */
    if (n < INT32_MAX && MP__LD(&pool->spinner))
        n--;
    if (n > 0 && MP__LD(&pool->sleepers) > 0)
        mp__futex_wake(&pool->work_seq, n);
}

void mp__pool_wake_rh(struct mp_pool *pool)
{
    MP__ADD(&pool->rh_seq, 1);
    if (MP__LD(&pool->rh_sleeping))
        mp__futex_wake(&pool->rh_seq, 1);
}

static void hint(struct mp_pool *pool, mp__pjob *j, mp__wrec *rec)
{
    if (rec != NULL) {
        uint64_t t = rec->hint_tail;
        uint64_t h = MP__LDA(&rec->hint_head);
        if (t - h < MP__POOL_HINT_CAP) {
            rec->hints[t & (MP__POOL_HINT_CAP - 1)] = (uintptr_t)j;
            MP__STR(&rec->hint_tail, t + 1);
            mp__pool_wake_rh(pool);
            return;
        }
    }
    MP__ST(&pool->rh_rescan, 1);
    mp__pool_wake_rh(pool);
}

static inline void counted(struct mp_pool *pool, mp__pjob *j, mp__wrec *hint_rec, uint64_t k)
{
    if (j->flags & MP__JF_IMAP) {
        MP__ADD(&j->wake_seq, 1);
        if (MP__LD(&j->waiters) > 0)
            mp__futex_wake(&j->wake_seq, INT32_MAX);
        return;
    }
    uint64_t left = MP__SUB(&j->remaining, k) - k;
    /*
     * dirty is read after the decrement (both sequentially consistent): if
     * the pool's thread marked the job dirty after this read, its own scan
     * of the states comes later and sees this chunk final.
     */
    if (left == 0 || MP__LD(&j->dirty)) {
        if (MP__LD(&j->waiters) > 0)
            mp__futex_wake(mp__job_remaining_word(j), INT32_MAX);
        if (j->flags & MP__JF_CALLBACK)
            hint(pool, j, hint_rec);
    }
}

void mp__pool_chunk_counted(struct mp_pool *pool, mp__pjob *j, mp__wrec *hint_rec)
{
    counted(pool, j, hint_rec, 1);
}

void mp__pool_chunks_counted(struct mp_pool *pool, mp__pjob *j, mp__wrec *hint_rec, uint64_t k)
{
    if (k > 0)
        counted(pool, j, hint_rec, k);
}

void mp__pool_record_error(struct mp_pool *pool, mp__pjob *j, uint64_t index, int code,
                           const char *msg)
{
    mp__robust_lock(&pool->err_lock);
    if (index < j->err_index) {
        j->err_index = index;
        j->err_code = code;
        if (msg == NULL)
            msg = "";
        size_t l = strlen(msg) + 1;
        if (j->err_msg != NULL && mp__alloc_size(j->err_msg) < l) {
            mp__free(j->err_msg);
            j->err_msg = NULL;
        }
        if (j->err_msg == NULL)
            j->err_msg = mp__alloc(l > MP__POOL_MSG ? l : MP__POOL_MSG);
        if (j->err_msg != NULL)
            memcpy(j->err_msg, msg, l);
    }
    mp__robust_unlock(&pool->err_lock);
}

/* ---- claiming ------------------------------------------------------------------ */

/*
 * Claim a chunk of j below hi for worker w.  cur_job/cur_chunk are written
 * before the CAS that makes the chunk ours, so that after this worker dies
 * the pool finds the only chunk it can own by its state word.
 */
static bool claim(mp__pjob *j, uint64_t hi, uint32_t w, mp__wrec *rec, uint64_t *out)
{
    uint64_t c = MP__LDR(&j->next);
    while (c < hi) {
        uint64_t expect = mp__chunk_free(j, c);
        rec->cur_job = j;
        rec->cur_chunk = c;
        if (MP__CAS(mp__chunk_state(j, c), &expect, mp__cs(c, MP__CS_OWNED + w))) {
            uint64_t cc = c;
            MP__CAS(&j->next, &cc, c + 1);
            *out = c;
            return true;
        }
        /* Taken or cancelled: move the hint on and retry from it. */
        uint64_t cc = c;
        if (MP__CAS(&j->next, &cc, c + 1))
            c = c + 1;
        else
            c = cc;
    }
    rec->cur_job = NULL;
    return false;
}

bool mp__pool_claim(mp__pjob *j, uint64_t hi, uint32_t w, mp__wrec *rec, uint64_t *out)
{
    return claim(j, hi, w, rec, out);
}

/* The most chunks of a fixed map one reservation takes. */
#define RES_MAX 64

/*
 * Claim a chunk of the fixed map j below hi for worker w, from a run of
 * chunks reserved for it.  Claiming one chunk at a time made every worker
 * move j->next and write the state words and outputs of neighbouring
 * chunks, from every cpu: with chunksize 1, two workers on two cpus ran a
 * third as fast as on one.  A reservation moves next once for up to
 * RES_MAX chunks: fewer as the map nears its end, so that the last ones
 * spread over the workers, and never more than budget, so that a worker
 * that must stop has none left.  The chunks stay FREE until claimed one by
 * one as before.  If the worker dies, the pool's thread finds those still
 * FREE between res_lo and res_hi and gives them to the others
 * (mp__pool_requeue).
 */
static bool claim_reserved(struct mp_pool *pool, mp__pjob *j, uint64_t hi, uint32_t w,
                           mp__wrec *rec, uint64_t budget, uint64_t *out)
{
    for (;;) {
        while (rec->res_job == j && rec->res_next < rec->res_hi) {
            uint64_t c = rec->res_next++;
            uint64_t expect = 0;
            rec->cur_job = j;
            rec->cur_chunk = c;
            if (MP__CAS(mp__chunk_state(j, c), &expect, mp__cs(c, MP__CS_OWNED + w))) {
                *out = c;
                return true;
            }
        }
        uint64_t c = MP__LDR(&j->next), n;
        do {
            /* res_job stays set until the caller has counted what it ran. */
            if (c >= hi)
                return false;
            n = (hi - c) / (4 * (uint64_t)pool->nworkers);
            n = n < 1 ? 1 : n > RES_MAX ? RES_MAX : n;
            n = n > budget ? budget : n;
            /* Recorded before the CAS that makes it ours, for the pool's
             * thread should this worker die right after it. */
            rec->res_lo = rec->res_next = c;
            rec->res_hi = c + n;
            MP__ST(&rec->res_job, j);
        } while (!MP__CAS(&j->next, &c, c + n));
    }
}

/* ---- running a chunk ----------------------------------------------------------- */

static void run_fixed(struct mp_pool *pool, mp__pjob *j, uint64_t c, mp__wrec *rec)
{
    size_t lo = (size_t)c * j->chunksize;
    size_t hi = lo + j->chunksize < j->n ? lo + j->chunksize : j->n;
    void (*fn)(void) = resolve(&j->fn);
    bool failed = false;
    in_task = true;
    if (fn == NULL) {
        for (size_t i = lo; i < hi; i++) {
            if (j->status)
                j->status[i] = MP_EINVAL;
        }
        mp__pool_record_error(pool, j, lo, MP_EINVAL,
                              "the task function is not loaded in the worker");
        failed = true;
    } else if (j->flags & MP__JF_STAR) {
        mp_pool_star_fn f = (mp_pool_star_fn)fn;
        const void *args[MP__POOL_MAX_COLS];
        for (size_t i = lo; i < hi; i++) {
            for (uint32_t k = 0; k < j->ncols; k++)
                args[k] = j->cols[k].p + i * j->cols[k].size;
            msg_reset();
            int r = f(args, j->out + i * j->out_size, j->out_size, j->arg);
            if (j->status)
                j->status[i] = r < 0 ? r : 0;
            if (MP__UNLIKELY(r < 0)) {
                failed = true;
                mp__pool_record_error(pool, j, i, r, msg_get());
            }
        }
    } else {
        mp_pool_fn f = (mp_pool_fn)fn;
        const char *in = j->in;
        char *out = j->out;
        size_t isz = j->in_size, osz = j->out_size;
        void *arg = j->arg;
        for (size_t i = lo; i < hi; i++) {
            msg_reset();
            int r = f(in + i * isz, isz, out + i * osz, osz, arg);
            if (j->status)
                j->status[i] = r < 0 ? r : 0;
            if (MP__UNLIKELY(r < 0)) {
                failed = true;
                mp__pool_record_error(pool, j, i, r, msg_get());
            }
        }
    }
    in_task = false;
    msg_reset();
    MP__ST(mp__chunk_state(j, c), mp__cs(c, failed ? MP__CS_ERR : MP__CS_OK));
}

/* Append an item's output record header; returns its offset or SIZE_MAX. */
static size_t orec_begin(mp_pool_out *o)
{
    size_t at = o->len;
    if (!out_ensure(o, sizeof(mp__orec)))
        return SIZE_MAX;
    memset(o->buf + at, 0, sizeof(mp__orec));
    o->len += sizeof(mp__orec);
    return at;
}

static void orec_end(mp_pool_out *o, size_t at, int r, const char *msg)
{
    size_t size = o->len - at - sizeof(mp__orec);
    uint32_t mlen = 0;
    if (r < 0 && msg[0] != '\0') {
        size_t l = strlen(msg) + 1;
        if (out_ensure(o, l)) {
            memcpy(o->buf + o->len, msg, l - 1);
            o->buf[o->len + l - 1] = '\0';
            o->len += l;
            mlen = (uint32_t)l;
        }
    }
    size_t pad = MP__ALIGN16(o->len) - o->len;
    if (out_ensure(o, pad)) {
        memset(o->buf + o->len, 0, pad);
        o->len += pad;
    }
    mp__orec *h = (mp__orec *)(o->buf + at);
    h->code = r < 0 ? r : 0;
    h->size = size;
    h->msg_len = mlen;
}

static void run_slots(struct mp_pool *pool, mp__pjob *j, uint64_t c, mp__wrec *rec, bool track)
{
    mp__pslot *s = &j->slots[c % j->nslots];
    mp_pool_out o = {
        track ? rec : NULL, s->out_inline, 0, sizeof s->out_inline, false, false, false};
    void (*fn)(void) = resolve(&j->fn);
    bool failed = false;
    const char *in = s->in;
    size_t off = 0;
    in_task = true;
    for (uint32_t i = 0; i < s->nitems; i++) {
        const void *item;
        size_t isz;
        if (j->flags & MP__JF_BYTES) {
            isz = (size_t) * (const uint64_t *)(in + off);
            item = in + off + 16;
            off += MP__ALIGN16(16 + isz);
        } else {
            isz = j->in_size;
            item = in + off;
            off += isz;
        }
        size_t at = orec_begin(&o);
        if (at == SIZE_MAX) {
            failed = true;
            break;
        }
        msg_reset();
        int r;
        if (fn == NULL) {
            snprintf(task_msg, sizeof task_msg,
                     "the task function is not loaded in the worker");
            r = MP_EINVAL;
        } else if (j->flags & MP__JF_BYTES) {
            r = ((mp_pool_bytes_fn)fn)(item, isz, &o, j->arg);
        } else {
            void *dst = mp_pool_out_reserve(&o, j->out_size);
            r = dst == NULL ? -ENOMEM : ((mp_pool_fn)fn)(item, isz, dst, j->out_size, j->arg);
        }
        if (o.failed && r >= 0)
            r = -ENOMEM;
        if (r < 0)
            failed = true;
        orec_end(&o, at, r, msg_get());
    }
    in_task = false;
    msg_reset();
    if (o.failed && o.len < (size_t)s->nitems * sizeof(mp__orec)) {
        /* Not even the records fit: the whole chunk failed. */
        if (o.arena)
            mp__free(o.buf);
        s->out = NULL;
        s->out_len = 0;
        s->chunk_code = -ENOMEM;
    } else {
        s->out = o.buf;
        s->out_len = o.len;
    }
    MP__ST(&s->state, mp__cs(c, failed ? MP__CS_ERR : MP__CS_OK));
    if (track)
        rec->out_block = NULL;
}

static void run_chunk(struct mp_pool *pool, mp__pjob *j, uint64_t c, mp__wrec *rec)
{
    if (MP__UNLIKELY(pool->mpi != NULL))
        mp__mpi_run_chunk(pool, j, c, (uint32_t)(rec - pool->recs));
    else if (j->kind == MP__K_FIXED)
        run_fixed(pool, j, c, rec);
    else
        run_slots(pool, j, c, rec, !pool->threads);
    mp__pool_chunk_counted(pool, j, rec);
    rec->cur_job = NULL;
}

/*
 * Run the chunks of the fixed map j that this worker reserves, at most
 * budget.  They are counted once per reservation, not once per chunk
 * (another line every cpu wrote): a worker that dies with chunks run but
 * not counted leaves its reservation recorded, and the pool's thread then
 * marks the job dirty, so that completion is decided from the states.
 */
static uint64_t run_reserved(struct mp_pool *pool, mp__pjob *j, uint64_t hi, uint32_t w,
                             mp__wrec *rec, uint64_t budget)
{
    uint64_t c, done = 0, uncounted = 0;
    while (done < budget && MP__LDR(&pool->state) != MP__P_TERMINATE &&
           claim_reserved(pool, j, hi, w, rec, budget - done, &c)) {
        run_fixed(pool, j, c, rec);
        done++;
        if (++uncounted, rec->res_next == rec->res_hi) {
            mp__pool_chunks_counted(pool, j, rec, uncounted);
            uncounted = 0;
        }
    }
    mp__pool_chunks_counted(pool, j, rec, uncounted);
    rec->cur_job = NULL;
    /* Only now: a death before this line finds the reservation, and the
     * pool's thread marks j dirty for the chunks not yet counted.  (After
     * terminate, the rest of the reservation is cancelled.) */
    MP__ST(&rec->res_job, NULL);
    return done;
}

/* ---- in an MPI worker: the same, in the worker's own memory ----------------------- */

bool mp__pool_local_fixed(void (*fn)(void), bool star, const char *in, size_t in_size,
                          const char *const *cols, const size_t *col_size, uint32_t ncols,
                          size_t nitems, char *out, size_t out_size, void *arg,
                          int32_t *status, int64_t *err_index, int32_t *err_code,
                          char *err_msg, size_t msg_size)
{
    bool failed = false;
    const void *args[MP__POOL_MAX_COLS];
    in_task = true;
    for (size_t i = 0; i < nitems; i++) {
        task_msg[0] = '\0';
        int r;
        if (fn == NULL) {
            snprintf(task_msg, sizeof task_msg,
                     "the task function is not loaded in the MPI worker");
            r = MP_EINVAL;
        } else if (star) {
            for (uint32_t k = 0; k < ncols; k++)
                args[k] = cols[k] + i * col_size[k];
            r = ((mp_pool_star_fn)fn)(args, out + i * out_size, out_size, arg);
        } else {
            r = ((mp_pool_fn)fn)(in + i * in_size, in_size, out + i * out_size, out_size, arg);
        }
        status[i] = r < 0 ? r : 0;
        if (r < 0 && !failed) {
            failed = true;
            *err_index = (int64_t)i;
            *err_code = r;
            snprintf(err_msg, msg_size, "%s", task_msg);
        }
    }
    in_task = false;
    return !failed;
}

int mp__pool_local_slots(void (*fn)(void), bool bytes, const char *in, uint32_t nitems,
                         size_t in_size, size_t out_size, void *arg, char **out,
                         size_t *out_len)
{
    mp_pool_out o = {NULL, NULL, 0, 0, false, false, true};
    bool failed = false;
    size_t off = 0;
    in_task = true;
    for (uint32_t i = 0; i < nitems; i++) {
        const void *item;
        size_t isz;
        if (bytes) {
            isz = (size_t) * (const uint64_t *)(in + off);
            item = in + off + 16;
            off += MP__ALIGN16(16 + isz);
        } else {
            isz = in_size;
            item = in + off;
            off += isz;
        }
        size_t at = orec_begin(&o);
        if (at == SIZE_MAX)
            break;
        task_msg[0] = '\0';
        int r;
        if (fn == NULL) {
            snprintf(task_msg, sizeof task_msg,
                     "the task function is not loaded in the MPI worker");
            r = MP_EINVAL;
        } else if (bytes) {
            r = ((mp_pool_bytes_fn)fn)(item, isz, &o, arg);
        } else {
            /* Reserved, then found again: the buffer may move in the task. */
            size_t dst = o.len;
            r = mp_pool_out_reserve(&o, out_size) == NULL
                    ? -ENOMEM
                    : ((mp_pool_fn)fn)(item, isz, o.buf + dst, out_size, arg);
        }
        if (o.failed && r >= 0)
            r = -ENOMEM;
        if (r < 0)
            failed = true;
        orec_end(&o, at, r, task_msg);
    }
    in_task = false;
    if (o.failed && o.len < (size_t)nitems * sizeof(mp__orec)) {
        free(o.buf);
        return -ENOMEM;
    }
    *out = o.buf;
    *out_len = o.len;
    return failed ? 1 : 0;
}

/* ---- the loop ------------------------------------------------------------------ */

static bool has_work(struct mp_pool *pool)
{
    return MP__LD(&pool->head) != MP__LD(&pool->tail);
}

/*
 * Scan the ring from its head for a job with chunks to claim and run them,
 * at most budget chunks.  Returns the number run.
 */
static uint64_t work_once(struct mp_pool *pool, uint32_t w, mp__wrec *rec, uint64_t budget)
{
    uint64_t p = MP__LD(&pool->head);
    uint64_t t = MP__LD(&pool->tail);
    while (p < t) {
        mp__pentry *e = &pool->ring[p & (MP__POOL_RING_CAP - 1)];
        mp__pjob *j = MP__LDR(&e->job);
        uint64_t hi = MP__LDR(&e->hi);
        /*
         * Hazard pointer: published, then the entry validated by reading the
         * head again.  If the head has not passed p, the job was still on the
         * ring after our hazard became visible, so whoever frees it later
         * sees the hazard; and the entry was not overwritten before we read
         * it (the caller reuses an entry only once the head has passed it).
         */
        MP__ST(&rec->hazard, j);
        uint64_t h = MP__LD(&pool->head);
        if (h > p) {
            p = h;
            continue;
        }
        uint64_t c, done = 0;
        if (j->kind == MP__K_FIXED && pool->mpi == NULL) {
            done = run_reserved(pool, j, hi, w, rec, budget);
        } else {
            while (done < budget && MP__LDR(&pool->state) != MP__P_TERMINATE &&
                   claim(j, hi, w, rec, &c)) {
                run_chunk(pool, j, c, rec);
                done++;
            }
        }
        if (done > 0)
            return done;
        if (p == h)
            MP__CAS(&pool->head, &h, p + 1);
        p++;
    }
    MP__ST(&rec->hazard, NULL);
    return 0;
}

/* Has the process that owns the pool gone (a worker process orphaned)? */
static bool creator_gone(struct mp_pool *pool)
{
    return !pool->threads && kill(pool->creator, 0) != 0 && errno == ESRCH;
}

/*
 * Wait for work.  One idle worker at a time spins for a short while (so
 * that work published while the pool is busy is taken without a system
 * call), the others sleep on the pool's futex at once: on a machine with
 * few cpus, spinning workers would take the cpu from the caller that
 * produces the work.  Returns false when the creator is gone.
 */
static bool idle(struct mp_pool *pool, mp__wrec *rec, uint32_t state)
{
    MP__ST(&rec->hazard, NULL);
    uint32_t zero = 0;
    uint64_t now = mp__now_ns();
    /* Oversubscribed: every idle worker sleeps at once (mp__cpu_busy). */
    if (!mp__cpu_busy_at(now) && MP__CAS(&pool->spinner, &zero, 1)) {
        uint64_t until = now + SPIN_NS;
        bool found = false;
        do {
            for (int i = 0; i < 32 && !found; i++) {
                found = has_work(pool) || MP__LDR(&pool->state) != state;
                mp__cpu_relax();
            }
        } while (!found && mp__now_ns() < until);
        MP__ADD(&pool->sleepers, 1);
        MP__ST(&pool->spinner, 0);
        if (found) {
            MP__SUB(&pool->sleepers, 1);
            return true;
        }
    } else {
        MP__ADD(&pool->sleepers, 1);
    }
    uint32_t seq = MP__LD(&pool->work_seq);
    bool alive = true;
    if (!has_work(pool) && MP__LD(&pool->state) == state) {
        mp__deadline d;
        mp__deadline_init(&d, 1.0);
        if (mp__futex_wait(&pool->work_seq, seq, &d) == MP_ETIMEDOUT && creator_gone(pool))
            alive = false;
    }
    MP__SUB(&pool->sleepers, 1);
    return alive;
}

int mp__pool_worker_run(struct mp_pool *pool, uint32_t w)
{
    mp__wrec *rec = &pool->recs[w];
    uint64_t tasks = 0;
    for (;;) {
        uint32_t state = MP__LD(&pool->state);
        if (state == MP__P_TERMINATE)
            break;
        if (pool->maxtasks != 0 && tasks >= pool->maxtasks)
            break;
        uint64_t budget = pool->maxtasks != 0 ? pool->maxtasks - tasks : UINT64_MAX;
        if (MP__UNLIKELY(pool->mpi != NULL)) {
            /* An MPI proxy looks at its worker between chunks. */
            if (mp__mpi_worker_dead(pool->mpi, w))
                break;
            budget = 1;
        }
        uint64_t done = work_once(pool, w, rec, budget);
        if (done > 0) {
            tasks += done;
            rec->tasks = tasks;
            continue;
        }
        if (state == MP__P_CLOSE && MP__LD(&pool->feeding) == 0 && !has_work(pool))
            break;
        if (!idle(pool, rec, state))
            break;
    }
    MP__ST(&rec->hazard, NULL);
    MP__ST(&rec->state, MP__W_EXITING);
    return 0;
}
