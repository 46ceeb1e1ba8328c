/*
 * pool_calls.c: the calls of a pool, on the caller's side: map, starmap,
 * apply, map_bytes (and their async forms), imap, async results.
 *
 * A call becomes a job (internal/pool.h).  Fixed-size maps give the
 * workers the input and output arrays themselves (in the arena: the
 * caller's own if it is arena memory, else a staging copy) and one state
 * word per chunk.  The other calls give each chunk a slot with its input
 * records, which the worker answers with output records.  The caller waits
 * on futexes that the workers wake only when someone sleeps.
 */
#include "internal/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long a caller spins before it sleeps on a futex. */
#define SPIN_NS 20000

#define TLS __thread __attribute__((tls_model("initial-exec")))

/* The message of the last task failure returned to this thread. */
static TLS char caller_msg[MP__POOL_MSG];

const char *mp_pool_error_message(void)
{
    return caller_msg;
}

/* Record the message of a failed result (malloc'd; NULL is fine). */
static void job_set_msg(mp__pjob *j, const char *msg)
{
    free(j->msg);
    j->msg = strdup(msg != NULL ? msg : "");
}

static void set_message(int code, const char *msg)
{
    if (code == 0)
        caller_msg[0] = '\0';
    else
        snprintf(caller_msg, sizeof caller_msg, "%s", msg != NULL ? msg : "");
}

/* ---- function references, cached per thread --------------------------------- */

struct ref_cache {
    void (*fn)(void);
    mp__fnref ref;
};
static TLS struct ref_cache ref_cache[8];

static int make_ref(mp__fnref *ref, void (*fn)(void))
{
    if (fn == NULL)
        return MP_EINVAL;
    struct ref_cache *e = &ref_cache[((uintptr_t)fn >> 4) & 7];
    if (e->fn == fn) {
        *ref = e->ref;
        return 0;
    }
    int r = mp__fnref_make(ref, fn);
    if (r == 0) {
        e->fn = fn;
        e->ref = *ref;
    }
    return r;
}

/* ---- helpers -------------------------------------------------------------- */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static uint32_t *remaining_word(mp__pjob *j)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (uint32_t *)&j->remaining;
#else
    return (uint32_t *)&j->remaining + 1;
#endif
}

static bool mul_ok(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* Whether [p, p + len) is memory of the arena (used in place). */
static bool in_arena(const void *p, size_t len)
{
    return p != NULL && len > 0 && mp__in_arena(p) &&
           mp__in_arena((const char *)p + len - 1);
}

static size_t default_chunksize(const struct mp_pool *pool, size_t n)
{
    size_t cs = mp_pool_chunksize(pool, n);
    return cs ? cs : 1;
}

/* A new job with nslots slots allocated with it (0: none). */
static mp__pjob *job_new(uint32_t magic, uint32_t kind, uint32_t flags, size_t nslots)
{
    size_t size = sizeof(mp__pjob) + nslots * sizeof(mp__pslot);
    mp__pjob *j = mp__obj_new(size, magic);
    if (j == NULL)
        return NULL;
    j->kind = kind;
    j->flags = flags;
    j->err_index = UINT64_MAX;
    if (nslots > 0) {
        j->slots = (mp__pslot *)(j + 1);
        j->nslots = nslots;
    }
    return j;
}

static bool slots_inline(const mp__pjob *j)
{
    return j->slots == (const mp__pslot *)(j + 1);
}

static int job_set_arg(mp__pjob *j, const mp_pool_call_options *o)
{
    if (o->arg == NULL && o->arg_size > 0)
        return MP_EINVAL;
    if (o->arg_size == 0)
        return 0;
    j->arg = mp__alloc(o->arg_size);
    if (j->arg == NULL)
        return -ENOMEM;
    memcpy(j->arg, o->arg, o->arg_size);
    j->arg_size = o->arg_size;
    return 0;
}

static void job_set_callbacks(mp__pjob *j, const mp_pool_call_options *o)
{
    j->cb = o->callback;
    j->ecb = o->error_callback;
    j->cb_arg = o->cb_arg;
    if (o->callback != NULL || o->error_callback != NULL)
        j->flags |= MP__JF_CALLBACK;
}

void mp__pool_job_free_parts(mp__pjob *j)
{
    struct mp_pool *pool = j->pool;
    mp__free(j->arg);
    mp__free(j->cstate);
    mp__pool_stage_put(pool, j->stage_in);
    mp__pool_stage_put(pool, j->stage_out);
    mp__free(j->stage_status);
    mp__free(j->in_blob);
    mp__free(j->err_msg);
    mp__free(j->cols);
    free(j->msg);
    free(j->im);
    j->err_msg = NULL;
    j->cols = NULL;
    j->msg = NULL;
    j->im = NULL;
    j->arg = NULL;
    j->cstate = NULL;
    j->stage_in = j->stage_out = NULL;
    j->stage_status = NULL;
    j->in_blob = NULL;
    for (uint64_t i = 0; j->slots != NULL && i < j->nslots; i++) {
        mp__pslot *s = &j->slots[i];
        mp__free(s->in_block);
        if (s->out != NULL && s->out != s->out_inline)
            mp__free(s->out);
        s->in_block = s->out = NULL;
    }
    if (j->slots != NULL && !slots_inline(j))
        mp__free(j->slots);
    j->slots = NULL;
}

/* Free a job that was never submitted. */
static void job_discard(mp__pjob *j)
{
    mp__pool_job_free_parts(j);
    mp__obj_free(j);
}

/* ---- waiting -------------------------------------------------------------- */

/* Wait until every chunk of map job j is final: 0, MP_ETIMEDOUT, -EINTR. */
static int wait_complete(mp__pjob *j, const mp__deadline *d)
{
    uint64_t spin_until = mp__now_ns() + SPIN_NS;
    do {
        if (mp__pool_job_complete(j))
            return 0;
        if (d->nowait)
            return MP_ETIMEDOUT;
        for (int i = 0; i < 16; i++)
            cpu_relax();
    } while (mp__now_ns() < spin_until);
    for (;;) {
        if (mp__pool_job_complete(j))
            return 0;
        MP__ADD(&j->waiters, 1);
        uint64_t v = MP__LD(&j->remaining);
        int r = 0;
        if (v != 0 && !mp__pool_job_complete(j))
            r = mp__futex_wait(remaining_word(j), (uint32_t)v, d);
        MP__SUB(&j->waiters, 1);
        if (r == MP_ETIMEDOUT || r == -EINTR)
            return mp__pool_job_complete(j) ? 0 : r;
    }
}

/* Wait until the result thread made callback job j ready. */
static int wait_ready(mp__pjob *j, const mp__deadline *d)
{
    while (!MP__LD(&j->ready)) {
        int r = mp__futex_wait(&j->ready, 0, d);
        if ((r == MP_ETIMEDOUT || r == -EINTR) && !MP__LD(&j->ready))
            return r;
    }
    return 0;
}

/* ---- finishing -------------------------------------------------------------- */

static const char *cancel_text(int code)
{
    if (code == -EINTR)
        return "the call was interrupted before the task ran";
    if (code == MP_EWORKERLOST)
        return "the pool was terminated before the task ran";
    return "the pool is broken: a worker initializer failed";
}

/* The code and message of item i of a slots chunk that has no records. */
static int slot_chunk_code(const mp__pjob *j, const mp__pslot *s, uint32_t st, char *msg,
                           size_t msize)
{
    if (st == MP__CS_LOST) {
        mp__pool_lost_message(msg, msize, s->lost_pid, s->lost_exit);
        return MP_EWORKERLOST;
    }
    if (st == MP__CS_CANCEL) {
        int code = MP__LD(&j->cancel_code);
        snprintf(msg, msize, "%s", cancel_text(code));
        return code;
    }
    snprintf(msg, msize, "out of memory for the results");
    return s->chunk_code != 0 ? s->chunk_code : -ENOMEM;
}

static void finish_fixed(mp__pjob *j)
{
    uint64_t first = MP__LD(&j->err_index);
    int code = j->err_code;
    const char *first_msg = j->err_msg != NULL ? j->err_msg : "";
    int cancel = MP__LD(&j->cancel_code);
    if (cancel != 0) {
        for (uint64_t c = 0; c < j->nchunks; c++) {
            if (mp__cs_st(MP__LD(&j->cstate[c])) != MP__CS_CANCEL)
                continue;
            size_t lo = (size_t)c * j->chunksize;
            size_t hi = lo + j->chunksize < j->n ? lo + j->chunksize : j->n;
            if (j->status != NULL)
                for (size_t i = lo; i < hi; i++)
                    j->status[i] = cancel;
            if (lo < first) {
                first = lo;
                code = cancel;
                first_msg = cancel_text(cancel);
            }
        }
    }
    j->result = first == UINT64_MAX ? 0 : code;
    if (j->result != 0)
        job_set_msg(j, first_msg);
    if (j->staged_out && j->n > 0 && j->out_size > 0)
        memcpy(j->user_out, j->stage_out, j->n * j->out_size);
    if (j->user_status != NULL)
        for (size_t i = 0; i < j->n; i++)
            j->user_status[i] = j->stage_status[i];
    /* Every chunk is final: the workers no longer touch the arrays. */
    mp__pool_stage_put(j->pool, j->stage_in);
    mp__pool_stage_put(j->pool, j->stage_out);
    j->stage_in = j->stage_out = NULL;
}

/* Walk the output records of slot s: record i, or NULL past the end. */
static const mp__orec *orec_at(const mp__pslot *s, size_t *off)
{
    if (s->out == NULL || *off + sizeof(mp__orec) > s->out_len)
        return NULL;
    const mp__orec *h = (const mp__orec *)(s->out + *off);
    *off += MP__ALIGN16(sizeof *h + h->size + h->msg_len);
    return h;
}

static const char *orec_data(const mp__orec *h)
{
    return (const char *)(h + 1);
}

static const char *orec_msg(const mp__orec *h)
{
    return h->msg_len ? orec_data(h) + h->size : "";
}

static void *dup_bytes(const void *p, size_t n)
{
    void *d = malloc(n ? n : 1);
    if (d != NULL && n > 0)
        memcpy(d, p, n);
    return d;
}

/* map_bytes and apply: collect the per-item results of every chunk. */
static void finish_slots(mp__pjob *j)
{
    uint64_t first = UINT64_MAX;
    int first_code = 0;
    char msg[MP__POOL_MSG];
    for (uint64_t c = 0; c < j->nchunks; c++) {
        mp__pslot *s = &j->slots[c];
        uint32_t st = mp__cs_st(MP__LD(&s->state));
        size_t off = 0;
        for (uint32_t i = 0; i < s->nitems; i++) {
            size_t idx = (size_t)s->first + i;
            const mp__orec *h = (st == MP__CS_OK || st == MP__CS_ERR) ? orec_at(s, &off) : NULL;
            int code;
            const char *m;
            if (h != NULL) {
                code = h->code;
                m = orec_msg(h);
            } else {
                code = slot_chunk_code(j, s, st, msg, sizeof msg);
                m = msg;
            }
            if (j->user_bytes != NULL) {
                j->user_bytes[idx].size = h != NULL ? h->size : 0;
                j->user_bytes[idx].data =
                    dup_bytes(h != NULL ? orec_data(h) : "", h != NULL ? h->size : 0);
                if (j->user_bytes[idx].data == NULL && code == 0)
                    code = -ENOMEM;
            }
            if (j->user_status != NULL)
                j->user_status[idx] = code;
            if (code != 0 && idx < first) {
                first = idx;
                first_code = code;
                job_set_msg(j, m);
            }
        }
    }
    j->result = first == UINT64_MAX ? 0 : first_code;
}

int mp__pool_job_finish(mp__pjob *j)
{
    for (;;) {
        uint32_t f = MP__LD(&j->fin);
        if (f == 2)
            return j->result;
        if (f == 3)
            return MP_EINVAL;
        if (f == 0 && MP__CAS(&j->fin, &f, 1))
            break;
        if (f == 1)
            mp__futex_wait(&j->fin, 1, NULL);
    }
    if (j->kind == MP__K_FIXED)
        finish_fixed(j);
    else
        finish_slots(j);
    MP__ST(&j->fin, 2);
    mp__futex_wake(&j->fin, INT32_MAX);
    return j->result;
}

/* Stop j from writing into the caller's arrays; wait for a finish in
 * progress.  After this the job is never finished. */
static void job_abandon(mp__pjob *j)
{
    for (;;) {
        uint32_t f = MP__LD(&j->fin);
        if (f >= 2)
            return;
        if (f == 0 && MP__CAS(&j->fin, &f, 3))
            return;
        if (f == 1)
            mp__futex_wait(&j->fin, 1, NULL);
    }
}

void mp__pool_job_result(mp__pjob *j, const void **res, size_t *size)
{
    if (j->kind == MP__K_FIXED) {
        *res = j->user_out;
        *size = j->n * j->out_size;
    } else if (j->user_bytes != NULL) {
        *res = j->user_bytes;
        *size = j->n * sizeof(mp_pool_bytes);
    } else {
        size_t off = 0;
        const mp__orec *h = orec_at(&j->slots[0], &off);
        *res = h != NULL ? orec_data(h) : "";
        *size = h != NULL ? h->size : 0;
    }
}

/* ---- fixed-size maps -------------------------------------------------------- */

struct fixed_call {
    mp_pool *pool;
    void (*fn)(void);
    uint32_t flags;
    size_t ncols;
    const void *const *cols;
    const size_t *sizes;
    const void *in;
    size_t in_size, n;
    void *out;
    size_t out_size;
    const mp_pool_call_options *o;
    bool async;
};

static int fixed_check(const struct fixed_call *fc)
{
    const mp_pool_call_options *o = fc->o;
    if (o == NULL || mp__pool_check_owner(fc->pool) != 0 || fc->fn == NULL)
        return MP_EINVAL;
    if (o->next_input != NULL || o->window != 0)
        return MP_EINVAL;
    if (!fc->async && (o->callback != NULL || o->error_callback != NULL))
        return MP_EINVAL;
    if (fc->n > 0 && fc->out == NULL && fc->out_size > 0)
        return MP_EINVAL;
    size_t total;
    if (!mul_ok(fc->n, fc->out_size, &total))
        return MP_EINVAL;
    if (fc->flags & MP__JF_STAR) {
        if (fc->ncols == 0 || fc->ncols > MP__POOL_MAX_COLS || fc->cols == NULL ||
            fc->sizes == NULL)
            return MP_EINVAL;
        for (size_t k = 0; k < fc->ncols; k++)
            if (fc->sizes[k] == 0 || (fc->n > 0 && fc->cols[k] == NULL) ||
                !mul_ok(fc->n, fc->sizes[k], &total))
                return MP_EINVAL;
    } else {
        if (fc->in_size == 0 || (fc->n > 0 && fc->in == NULL) ||
            !mul_ok(fc->n, fc->in_size, &total))
            return MP_EINVAL;
    }
    return 0;
}

/* Give the job arena arrays for the inputs (in place or staged). */
static int fixed_stage_inputs(mp__pjob *j, const struct fixed_call *fc)
{
    if (!(fc->flags & MP__JF_STAR)) {
        size_t len = fc->n * fc->in_size;
        if (in_arena(fc->in, len)) {
            j->in = fc->in;
            return 0;
        }
        j->stage_in = mp__pool_stage_get(fc->pool, len);
        if (j->stage_in == NULL)
            return -ENOMEM;
        memcpy(j->stage_in, fc->in, len);
        j->in = j->stage_in;
        return 0;
    }
    bool all_shared = true;
    size_t total = 0;
    for (size_t k = 0; k < fc->ncols; k++) {
        size_t len = fc->n * fc->sizes[k];
        all_shared = all_shared && in_arena(fc->cols[k], len);
        if (__builtin_add_overflow(total, MP__ALIGN16(len), &total))
            return -ENOMEM;
    }
    j->cols = mp__alloc(fc->ncols * sizeof *j->cols);
    if (j->cols == NULL)
        return -ENOMEM;
    j->ncols = (uint32_t)fc->ncols;
    for (size_t k = 0; k < fc->ncols; k++) {
        j->cols[k].size = fc->sizes[k];
        j->cols[k].p = fc->cols[k];
    }
    if (all_shared)
        return 0;
    j->stage_in = mp__pool_stage_get(fc->pool, total);
    if (j->stage_in == NULL)
        return -ENOMEM;
    size_t off = 0;
    for (size_t k = 0; k < fc->ncols; k++) {
        size_t len = fc->n * fc->sizes[k];
        memcpy(j->stage_in + off, fc->cols[k], len);
        j->cols[k].p = j->stage_in + off;
        off += MP__ALIGN16(len);
    }
    return 0;
}

static int fixed_prepare(mp__pjob *j, const struct fixed_call *fc)
{
    const mp_pool_call_options *o = fc->o;
    int r = make_ref(&j->fn, fc->fn);
    if (r == 0)
        r = job_set_arg(j, o);
    if (r != 0)
        return r;
    j->in_size = fc->in_size;
    j->out_size = fc->out_size;
    j->n = fc->n;
    j->chunksize = o->chunksize ? o->chunksize : default_chunksize(fc->pool, fc->n);
    j->nchunks = fc->n / j->chunksize + (fc->n % j->chunksize != 0);
    j->remaining = j->nchunks;
    if (fc->n == 0)
        return 0;
    r = fixed_stage_inputs(j, fc);
    if (r != 0)
        return r;
    size_t out_len = fc->n * fc->out_size;
    if (out_len > 0) {
        if (in_arena(fc->out, out_len)) {
            j->out = fc->out;
        } else {
            j->stage_out = mp__pool_stage_get(fc->pool, out_len);
            if (j->stage_out == NULL)
                return -ENOMEM;
            j->out = j->stage_out;
            j->staged_out = true;
            j->user_out = fc->out;
        }
    }
    j->user_out = fc->out;
    if (o->status != NULL) {
        j->stage_status = mp__alloc(fc->n * sizeof(int32_t));
        if (j->stage_status == NULL)
            return -ENOMEM;
        j->status = j->stage_status;
        j->user_status = o->status;
    }
    j->cstate = mp__alloc(j->nchunks * sizeof(uint64_t));
    return j->cstate != NULL ? 0 : -ENOMEM;
}

static int nwake_for(const mp_pool *pool, uint64_t chunks)
{
    return chunks < pool->nworkers ? (int)chunks : (int)pool->nworkers;
}

/* Build and submit the job of a fixed map; NULL with *err on failure. */
static mp__pjob *fixed_submit(const struct fixed_call *fc, uint32_t magic, int *err)
{
    int r = fixed_check(fc);
    if (r != 0) {
        *err = r;
        return NULL;
    }
    mp__pjob *j = job_new(magic, MP__K_FIXED, fc->flags, 0);
    if (j == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    if (fc->async)
        job_set_callbacks(j, fc->o);
    r = fixed_prepare(j, fc);
    if (r == 0)
        r = mp__pool_submit(fc->pool, j, j->nchunks, nwake_for(fc->pool, j->nchunks));
    if (r != 0) {
        job_discard(j);
        *err = r;
        return NULL;
    }
    return j;
}

/* Wait for a job inside a blocking call, finish it and drop it. */
static int sync_finish(mp__pjob *j)
{
    mp__deadline forever;
    mp__deadline_init(&forever, MP_FOREVER);
    int r = wait_complete(j, &forever);
    if (r != 0) {
        /* Interrupted: drop the tasks not started, leave the rest. */
        mp__pool_job_cancel(j, r);
        job_abandon(j);
        mp__pool_job_release(j);
        return r;
    }
    r = mp__pool_job_finish(j);
    set_message(r, j->msg);
    mp__pool_job_release(j);
    return r;
}

int mp_pool_map_opts(mp_pool *pool, mp_pool_fn f, const void *in, size_t in_size,
                     size_t n, void *out, size_t out_size, const mp_pool_call_options *o)
{
    struct fixed_call fc = {.pool = pool, .fn = (void (*)(void))f, .in = in,
                            .in_size = in_size, .n = n, .out = out,
                            .out_size = out_size, .o = o};
    int r = fixed_check(&fc);
    if (r != 0)
        return r;
    if (n == 0)
        return MP__LD(&pool->state) == MP__P_RUN ? 0 : MP_EINVAL;
    mp__pjob *j = fixed_submit(&fc, MP__JOB_SYNC, &r);
    return j != NULL ? sync_finish(j) : r;
}

mp_async_result *mp_pool_map_async_opts(mp_pool *pool, mp_pool_fn f, const void *in,
                                        size_t in_size, size_t n, void *out,
                                        size_t out_size, const mp_pool_call_options *o)
{
    struct fixed_call fc = {.pool = pool, .fn = (void (*)(void))f, .in = in,
                            .in_size = in_size, .n = n, .out = out,
                            .out_size = out_size, .o = o, .async = true};
    int r;
    mp__pjob *j = fixed_submit(&fc, MP__JOB_ASYNC, &r);
    return j != NULL ? (mp_async_result *)j : mp__fail_null(r);
}

int mp_pool_starmap_opts(mp_pool *pool, mp_pool_star_fn f, size_t ncols,
                         const void *const *cols, const size_t *sizes, size_t n,
                         void *out, size_t out_size, const mp_pool_call_options *o)
{
    struct fixed_call fc = {.pool = pool, .fn = (void (*)(void))f, .flags = MP__JF_STAR,
                            .ncols = ncols, .cols = cols, .sizes = sizes, .n = n,
                            .out = out, .out_size = out_size, .o = o};
    int r = fixed_check(&fc);
    if (r != 0)
        return r;
    if (n == 0)
        return MP__LD(&pool->state) == MP__P_RUN ? 0 : MP_EINVAL;
    mp__pjob *j = fixed_submit(&fc, MP__JOB_SYNC, &r);
    return j != NULL ? sync_finish(j) : r;
}

mp_async_result *mp_pool_starmap_async_opts(mp_pool *pool, mp_pool_star_fn f, size_t ncols,
                                            const void *const *cols, const size_t *sizes,
                                            size_t n, void *out, size_t out_size,
                                            const mp_pool_call_options *o)
{
    struct fixed_call fc = {.pool = pool, .fn = (void (*)(void))f, .flags = MP__JF_STAR,
                            .ncols = ncols, .cols = cols, .sizes = sizes, .n = n,
                            .out = out, .out_size = out_size, .o = o, .async = true};
    int r;
    mp__pjob *j = fixed_submit(&fc, MP__JOB_ASYNC, &r);
    return j != NULL ? (mp_async_result *)j : mp__fail_null(r);
}

/* ---- slots: input records ------------------------------------------------------ */

static size_t slot_cap(const mp__pslot *s)
{
    return s->in_block != NULL ? s->in_cap : sizeof s->in_inline;
}

/* Make room for need more input bytes in slot s. */
static int slot_in_reserve(mp__pslot *s, size_t need)
{
    if (s->in == NULL)
        s->in = s->in_block != NULL ? s->in_block : s->in_inline;
    if (need <= slot_cap(s) - s->in_len)
        return 0;
    size_t cap = slot_cap(s) * 2;
    if (cap < s->in_len + need)
        cap = s->in_len + need;
    char *b = mp__alloc(cap);
    if (b == NULL)
        return -ENOMEM;
    memcpy(b, s->in, s->in_len);
    mp__free(s->in_block);
    s->in_block = b;
    s->in_cap = mp__alloc_size(b);
    s->in = b;
    return 0;
}

static int slot_add_bytes(mp__pslot *s, const void *data, size_t size)
{
    size_t rec = MP__ALIGN16(16 + size);
    if (rec < size)
        return MP_EINVAL;
    int r = slot_in_reserve(s, rec);
    if (r != 0)
        return r;
    char *p = s->in + s->in_len;
    memset(p, 0, 16);
    *(uint64_t *)p = size;
    if (size > 0)
        memcpy(p + 16, data, size);
    s->in_len += rec;
    return 0;
}

static int slot_add_fixed(mp__pslot *s, const void *data, size_t size)
{
    int r = slot_in_reserve(s, size);
    if (r != 0)
        return r;
    memcpy(s->in + s->in_len, data, size);
    s->in_len += size;
    return 0;
}

/* ---- apply ------------------------------------------------------------------ */

static mp__pjob *apply_submit(mp_pool *pool, mp_pool_bytes_fn f, const void *in,
                              size_t in_size, const mp_pool_call_options *o, bool async,
                              uint32_t magic, int *err)
{
    int r = MP_EINVAL;
    if (o == NULL || mp__pool_check_owner(pool) != 0 || f == NULL ||
        (in == NULL && in_size > 0) || o->next_input != NULL || o->status != NULL ||
        o->window != 0 || o->chunksize > 1 ||
        (!async && (o->callback != NULL || o->error_callback != NULL))) {
        *err = r;
        return NULL;
    }
    mp__pjob *j = job_new(magic, MP__K_SLOTS, MP__JF_BYTES, 1);
    if (j == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    if (async)
        job_set_callbacks(j, o);
    r = make_ref(&j->fn, (void (*)(void))f);
    if (r == 0)
        r = job_set_arg(j, o);
    mp__pslot *s = &j->slots[0];
    if (r == 0)
        r = slot_add_bytes(s, in, in_size);
    if (r == 0) {
        s->nitems = 1;
        s->state = mp__cs(0, MP__CS_FREE);
        j->n = 1;
        j->chunksize = 1;
        j->nchunks = 1;
        j->remaining = 1;
        r = mp__pool_submit(pool, j, 1, 1);
    }
    if (r != 0) {
        job_discard(j);
        *err = r;
        return NULL;
    }
    return j;
}

/* Copy the result of apply job j: malloc'd, or into buf. */
static int apply_output(mp__pjob *j, void **out, size_t *out_size)
{
    const void *res;
    size_t size;
    mp__pool_job_result(j, &res, &size);
    if (out != NULL) {
        void *d = dup_bytes(res, size);
        if (d == NULL)
            return -ENOMEM;
        *out = d;
    }
    if (out_size != NULL)
        *out_size = size;
    return 0;
}

int mp_pool_apply_opts(mp_pool *pool, mp_pool_bytes_fn f, const void *in, size_t in_size,
                       void **out, size_t *out_size, const mp_pool_call_options *o)
{
    int r;
    mp__pjob *j = apply_submit(pool, f, in, in_size, o, false, MP__JOB_SYNC, &r);
    if (j == NULL)
        return r;
    mp__deadline forever;
    mp__deadline_init(&forever, MP_FOREVER);
    r = wait_complete(j, &forever);
    if (r != 0) {
        mp__pool_job_cancel(j, r);
        job_abandon(j);
        mp__pool_job_release(j);
        return r;
    }
    r = mp__pool_job_finish(j);
    set_message(r, j->msg);
    if (r == 0)
        r = apply_output(j, out, out_size);
    mp__pool_job_release(j);
    return r;
}

mp_async_result *mp_pool_apply_async_opts(mp_pool *pool, mp_pool_bytes_fn f, const void *in,
                                          size_t in_size, const mp_pool_call_options *o)
{
    int r;
    mp__pjob *j = apply_submit(pool, f, in, in_size, o, true, MP__JOB_ASYNC, &r);
    return j != NULL ? (mp_async_result *)j : mp__fail_null(r);
}

/* ---- map over bytes ---------------------------------------------------------- */

static mp__pjob *bytes_submit(mp_pool *pool, mp_pool_bytes_fn f, const mp_pool_bytes *in,
                              size_t n, mp_pool_bytes *out, const mp_pool_call_options *o,
                              bool async, uint32_t magic, int *err)
{
    if (o == NULL || mp__pool_check_owner(pool) != 0 || f == NULL ||
        (n > 0 && (in == NULL || out == NULL)) || o->next_input != NULL || o->window != 0 ||
        (!async && (o->callback != NULL || o->error_callback != NULL))) {
        *err = MP_EINVAL;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (in[i].data == NULL && in[i].size > 0) {
            *err = MP_EINVAL;
            return NULL;
        }
    }
    mp__pjob *j = job_new(magic, MP__K_SLOTS, MP__JF_BYTES, 0);
    if (j == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    if (async)
        job_set_callbacks(j, o);
    int r = make_ref(&j->fn, (void (*)(void))f);
    if (r == 0)
        r = job_set_arg(j, o);
    j->n = n;
    j->chunksize = o->chunksize ? o->chunksize : default_chunksize(pool, n);
    j->nchunks = n / j->chunksize + (n % j->chunksize != 0);
    j->remaining = j->nchunks;
    j->user_bytes = out;
    j->user_status = o->status;
    size_t total = 0;
    for (size_t i = 0; r == 0 && i < n; i++)
        if (__builtin_add_overflow(total, MP__ALIGN16(16 + in[i].size), &total))
            r = -ENOMEM;
    if (r == 0 && n > 0) {
        j->slots = mp__alloc(j->nchunks * sizeof(mp__pslot));
        j->nslots = j->nchunks;
        j->in_blob = mp__alloc(total);
        if (j->slots == NULL || j->in_blob == NULL)
            r = -ENOMEM;
    }
    size_t off = 0;
    for (uint64_t c = 0; r == 0 && c < j->nchunks; c++) {
        mp__pslot *s = &j->slots[c];
        size_t lo = (size_t)c * j->chunksize;
        size_t hi = lo + j->chunksize < n ? lo + j->chunksize : n;
        s->in = j->in_blob + off;
        s->first = lo;
        s->nitems = (uint32_t)(hi - lo);
        for (size_t i = lo; i < hi; i++) {
            char *p = j->in_blob + off;
            *(uint64_t *)p = in[i].size;
            if (in[i].size > 0)
                memcpy(p + 16, in[i].data, in[i].size);
            off += MP__ALIGN16(16 + in[i].size);
        }
        s->in_len = (size_t)(j->in_blob + off - s->in);
        s->state = mp__cs(c, MP__CS_FREE);
    }
    if (r == 0 && j->chunksize > UINT32_MAX)
        r = MP_EINVAL;
    if (r == 0)
        r = mp__pool_submit(pool, j, j->nchunks, nwake_for(pool, j->nchunks));
    if (r != 0) {
        job_discard(j);
        *err = r;
        return NULL;
    }
    return j;
}

int mp_pool_map_bytes_opts(mp_pool *pool, mp_pool_bytes_fn f, const mp_pool_bytes *in,
                           size_t n, mp_pool_bytes *out, const mp_pool_call_options *o)
{
    int r;
    mp__pjob *j = bytes_submit(pool, f, in, n, out, o, false, MP__JOB_SYNC, &r);
    if (j == NULL)
        return r;
    if (n == 0) {
        mp__pool_job_release(j);
        return 0;
    }
    return sync_finish(j);
}

mp_async_result *mp_pool_map_bytes_async_opts(mp_pool *pool, mp_pool_bytes_fn f,
                                              const mp_pool_bytes *in, size_t n,
                                              mp_pool_bytes *out,
                                              const mp_pool_call_options *o)
{
    int r;
    mp__pjob *j = bytes_submit(pool, f, in, n, out, o, true, MP__JOB_ASYNC, &r);
    return j != NULL ? (mp_async_result *)j : mp__fail_null(r);
}

/* ---- async results ------------------------------------------------------------ */

static int result_check(mp_async_result *r)
{
    mp__pjob *j = (mp__pjob *)r;
    if (mp__obj_check(j, MP__JOB_ASYNC) != 0)
        return MP_EINVAL;
    if (j->pool != NULL && j->pool->creator != mp__pool_self())
        return MP_EINVAL;
    return 0;
}

/* Wait until ready and finished: 0, MP_ETIMEDOUT, -EINTR. */
static int result_wait(mp__pjob *j, double timeout)
{
    mp__deadline d;
    if (mp__deadline_init(&d, timeout) != 0)
        return MP_EINVAL;
    if (j->flags & MP__JF_CALLBACK)
        return wait_ready(j, &d);
    int r = wait_complete(j, &d);
    if (r == 0)
        mp__pool_job_finish(j);
    return r;
}

int mp_async_result_get(mp_async_result *res, double timeout, void **out, size_t *size)
{
    if (result_check(res) != 0)
        return MP_EINVAL;
    mp__pjob *j = (mp__pjob *)res;
    int r = result_wait(j, timeout);
    if (r != 0)
        return r;
    r = j->result;
    set_message(r, j->msg);
    if (r != 0)
        return r;
    if (j->kind == MP__K_SLOTS && j->user_bytes == NULL)
        return apply_output(j, out, size);
    if (size != NULL)
        *size = j->n;
    return 0;
}

int mp_async_result_get_into(mp_async_result *res, double timeout, void *buf, size_t size,
                             size_t *len)
{
    if (result_check(res) != 0 || (buf == NULL && size > 0))
        return MP_EINVAL;
    mp__pjob *j = (mp__pjob *)res;
    if (!(j->kind == MP__K_SLOTS && j->user_bytes == NULL))
        return mp_async_result_get(res, timeout, NULL, len);
    int r = result_wait(j, timeout);
    if (r != 0)
        return r;
    r = j->result;
    set_message(r, j->msg);
    if (r != 0)
        return r;
    const void *data;
    size_t n;
    mp__pool_job_result(j, &data, &n);
    if (len != NULL)
        *len = n;
    if (n > size)
        return MP_ETOOSHORT;
    if (n > 0)
        memcpy(buf, data, n);
    return 0;
}

int mp_async_result_wait(mp_async_result *res, double timeout)
{
    if (result_check(res) != 0)
        return MP_EINVAL;
    return result_wait((mp__pjob *)res, timeout);
}

int mp_async_result_ready(mp_async_result *res)
{
    if (result_check(res) != 0)
        return MP_EINVAL;
    mp__pjob *j = (mp__pjob *)res;
    if (j->flags & MP__JF_CALLBACK)
        return MP__LD(&j->ready) != 0;
    if (!mp__pool_job_complete(j))
        return 0;
    mp__pool_job_finish(j);
    return 1;
}

int mp_async_result_successful(mp_async_result *res)
{
    int r = mp_async_result_ready(res);
    if (r <= 0)
        return MP_EINVAL;
    return ((mp__pjob *)res)->result == 0;
}

void mp_async_result_free(mp_async_result *res)
{
    if (result_check(res) != 0)
        return;
    mp__pjob *j = (mp__pjob *)res;
    if (!mp__pool_job_complete(j))
        mp__pool_job_cancel(j, MP_EWORKERLOST);
    job_abandon(j);
    MP__ST(&j->abandoned, true);
    mp__pool_job_release(j);
}

/* ---- imap ------------------------------------------------------------------- */

static void imap_end_input(mp__pjob *j, int err)
{
    mp__imapst *im = j->im;
    if (im->input_ended)
        return;
    im->input_ended = true;
    im->input_err = err;
    j->entries_done = true;
    if (j->counted_feeding) {
        j->counted_feeding = false;
        mp__pool_feeding_done(j->pool);
    }
}

/* Read up to chunksize items of the input into slot s; the count read. */
static uint32_t imap_gather(mp__pjob *j, mp__pslot *s)
{
    mp__imapst *im = j->im;
    uint32_t got = 0;
    while (got < j->chunksize && !im->input_ended) {
        const void *data;
        size_t size;
        if (im->src_next != NULL) {
            int r = im->src_next(im->src_ctx, &data, &size);
            if (r <= 0) {
                imap_end_input(j, r < 0 ? r : 0);
                break;
            }
            if ((!(j->flags & MP__JF_BYTES) && size != j->in_size) ||
                (data == NULL && size > 0)) {
                imap_end_input(j, MP_EINVAL);
                break;
            }
        } else if (im->in_index >= im->src_n) {
            imap_end_input(j, 0);
            break;
        } else if (j->flags & MP__JF_BYTES) {
            data = im->src_bytes[im->in_index].data;
            size = im->src_bytes[im->in_index].size;
        } else {
            data = im->src_fixed + im->in_index * j->in_size;
            size = j->in_size;
        }
        int r = (j->flags & MP__JF_BYTES) ? slot_add_bytes(s, data, size)
                                          : slot_add_fixed(s, data, size);
        if (r != 0) {
            imap_end_input(j, r);
            break;
        }
        im->in_index++;
        got++;
    }
    return got;
}

/*
 * Feed chunks into the free slots of the window and publish them, once at
 * least a quarter of the window is free (so that the workers get batches,
 * not one chunk per call).
 */
static void imap_feed(mp__pjob *j)
{
    mp__imapst *im = j->im;
    struct mp_pool *pool = j->pool;
    uint64_t start = im->fed;
    uint64_t base = (j->flags & MP__JF_UNORDERED) ? im->low : im->taken;
    if (im->input_ended || (im->fed - base) * 4 > j->nslots * 3)
        return;
    while (!im->input_ended && im->fed - base < j->nslots) {
        if (pool == NULL || MP__LD(&pool->state) == MP__P_TERMINATE) {
            imap_end_input(j, MP_EWORKERLOST);
            break;
        }
        if (MP__LD(&pool->broken) != 0) {
            imap_end_input(j, MP__LD(&pool->broken));
            break;
        }
        mp__pslot *s = &j->slots[im->fed % j->nslots];
        s->in = NULL;
        s->in_len = 0;
        s->first = im->in_index;
        s->out = NULL;
        s->out_len = 0;
        s->chunk_code = s->lost_exit = 0;
        s->lost_pid = 0;
        uint32_t got = imap_gather(j, s);
        if (got == 0)
            break;
        s->nitems = got;
        MP__ST(&s->state, mp__cs(im->fed, MP__CS_FREE));
        im->fed++;
    }
    if (im->fed > start) {
        MP__ST(&j->nchunks, im->fed);
        if (mp__pool_push(pool, j, im->fed, nwake_for(pool, im->fed - start)) != 0) {
            mp__pool_job_cancel(j, MP_EWORKERLOST);
            imap_end_input(j, MP_EWORKERLOST);
        }
    }
}

static mp__pjob *imap_submit(mp_pool *pool, void (*fn)(void), uint32_t flags, const void *in,
                             size_t in_size, size_t n, size_t out_size,
                             const mp_pool_call_options *o, int *err)
{
    if (o == NULL || mp__pool_check_owner(pool) != 0 || fn == NULL ||
        o->callback != NULL || o->error_callback != NULL || o->status != NULL ||
        (in == NULL) == (o->next_input == NULL) || (in == NULL && n > 0) ||
        o->chunksize > UINT32_MAX || (!(flags & MP__JF_BYTES) && in_size == 0)) {
        *err = MP_EINVAL;
        return NULL;
    }
    size_t window = o->window ? o->window : 16 * (size_t)pool->nworkers;
    if (window < 64 && o->window == 0)
        window = 64;
    if (window < 2 || window > (1u << 20)) {
        *err = MP_EINVAL;
        return NULL;
    }
    mp__pjob *j = job_new(MP__JOB_IMAP, MP__K_SLOTS, flags | MP__JF_IMAP, 0);
    if (j == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    int r = make_ref(&j->fn, fn);
    if (r == 0)
        r = job_set_arg(j, o);
    j->in_size = in_size;
    j->out_size = out_size;
    j->chunksize = o->chunksize ? o->chunksize : 1;
    j->im = calloc(1, sizeof *j->im);
    if (r == 0 && j->im == NULL)
        r = -ENOMEM;
    if (r == 0) {
        mp__imapst *im = j->im;
        im->cur = -1;
        im->src_n = n;
        im->src_next = o->next_input;
        im->src_ctx = o->next_ctx;
        if (flags & MP__JF_BYTES)
            im->src_bytes = in;
        else
            im->src_fixed = in;
        j->slots = mp__alloc(window * sizeof(mp__pslot));
        j->nslots = window;
        if (j->slots == NULL)
            r = -ENOMEM;
    }
    if (r == 0)
        r = mp__pool_submit(pool, j, 0, 0);
    if (r != 0) {
        job_discard(j);
        *err = r;
        return NULL;
    }
    imap_feed(j);
    return j;
}

mp_imap *mp_pool_imap_opts(mp_pool *pool, mp_pool_fn f, const void *in, size_t in_size,
                           size_t n, size_t out_size, bool unordered,
                           const mp_pool_call_options *o)
{
    int r;
    mp__pjob *j = imap_submit(pool, (void (*)(void))f, unordered ? MP__JF_UNORDERED : 0, in,
                              in_size, n, out_size, o, &r);
    return j != NULL ? (mp_imap *)j : mp__fail_null(r);
}

mp_imap *mp_pool_imap_bytes_opts(mp_pool *pool, mp_pool_bytes_fn f, const mp_pool_bytes *in,
                                 size_t n, bool unordered, const mp_pool_call_options *o)
{
    int r;
    if (in != NULL)
        for (size_t i = 0; i < n; i++)
            if (in[i].data == NULL && in[i].size > 0)
                return mp__fail_null(MP_EINVAL);
    mp__pjob *j = imap_submit(pool, (void (*)(void))f,
                              MP__JF_BYTES | (unordered ? MP__JF_UNORDERED : 0), in, 0, n, 0,
                              o, &r);
    return j != NULL ? (mp_imap *)j : mp__fail_null(r);
}

/* Slot of chunk k if it is final (ready to be returned), else NULL. */
static mp__pslot *imap_ready(mp__pjob *j, uint64_t k)
{
    mp__pslot *s = &j->slots[k % j->nslots];
    uint64_t v = MP__LD(&s->state);
    return mp__cs_k(v) == k && mp__cs_final(mp__cs_st(v)) ? s : NULL;
}

/* Has chunk k been taken? */
static bool imap_taken(mp__pjob *j, uint64_t k)
{
    uint64_t v = MP__LD(&j->slots[k % j->nslots].state);
    return v == mp__cs(k, MP__CS_TAKEN);
}

/* Return the next item of chunk k (slot s): its code; the chunk is taken
 * after its last item. */
static int imap_deliver(mp__pjob *j, uint64_t k, mp__pslot *s, void *fixed_out, void **data,
                        size_t *size, size_t *index)
{
    mp__imapst *im = j->im;
    uint32_t st = mp__cs_st(MP__LD(&s->state));
    const mp__orec *h = NULL;
    if (st == MP__CS_OK || st == MP__CS_ERR)
        h = orec_at(s, &im->deliver_off);
    char msg[MP__POOL_MSG];
    int code;
    if (h != NULL) {
        code = h->code;
        snprintf(msg, sizeof msg, "%s", orec_msg(h));
    } else {
        code = slot_chunk_code(j, s, st, msg, sizeof msg);
    }
    if (index != NULL)
        *index = (size_t)s->first + im->item_pos;
    if (code == 0) {
        const char *src = h != NULL ? orec_data(h) : "";
        size_t n = h != NULL ? h->size : 0;
        if (fixed_out != NULL)
            memcpy(fixed_out, src, n < j->out_size ? n : j->out_size);
        if (data != NULL) {
            *data = dup_bytes(src, n);
            if (*data == NULL)
                code = -ENOMEM;
        }
        if (size != NULL)
            *size = n;
    }
    set_message(code, msg);
    if (++im->item_pos == s->nitems) {
        if (s->out != NULL && s->out != s->out_inline)
            mp__free(s->out);
        s->out = NULL;
        im->item_pos = 0;
        im->deliver_off = 0;
        MP__ST(&s->state, mp__cs(k, MP__CS_TAKEN));
        if (j->flags & MP__JF_UNORDERED) {
            im->cur = -1;
            while (im->low < im->fed && imap_taken(j, im->low))
                im->low++;
        } else {
            im->taken++;
        }
    }
    return code;
}

/* Find the chunk whose items come next: its number, or -1 for none yet. */
static int64_t imap_pick(mp__pjob *j)
{
    mp__imapst *im = j->im;
    if (!(j->flags & MP__JF_UNORDERED))
        return im->taken < im->fed && imap_ready(j, im->taken) ? (int64_t)im->taken : -1;
    if (im->cur >= 0)
        return im->cur;
    for (uint64_t k = im->low; k < im->fed; k++) {
        if (!imap_taken(j, k) && imap_ready(j, k)) {
            im->cur = (int64_t)k;
            return im->cur;
        }
    }
    return -1;
}

static bool imap_exhausted(const mp__pjob *j)
{
    const mp__imapst *im = j->im;
    uint64_t done = (j->flags & MP__JF_UNORDERED) ? im->low : im->taken;
    return im->input_ended && done == im->fed;
}

static int imap_next(mp__pjob *j, double timeout, void *fixed_out, void **data, size_t *size,
                     size_t *index)
{
    mp__imapst *im = j->im;
    mp__deadline d;
    if (mp__deadline_init(&d, timeout) != 0)
        return MP_EINVAL;
    uint64_t spin_until = 0;
    for (;;) {
        imap_feed(j);
        int64_t k = imap_pick(j);
        if (k >= 0)
            return imap_deliver(j, (uint64_t)k, &j->slots[(uint64_t)k % j->nslots], fixed_out,
                                data, size, index);
        if (imap_exhausted(j)) {
            if (im->input_err != 0 && !im->input_err_told) {
                im->input_err_told = true;
                set_message(im->input_err, "the input failed");
                return im->input_err;
            }
            return MP_EEOF;
        }
        if (d.nowait)
            return MP_ETIMEDOUT;
        if (spin_until == 0)
            spin_until = mp__now_ns() + SPIN_NS;
        if (mp__now_ns() < spin_until) {
            for (int i = 0; i < 16; i++)
                cpu_relax();
            continue;
        }
        MP__ADD(&j->waiters, 1);
        uint32_t seq = MP__LD(&j->wake_seq);
        int r = 0;
        if (imap_pick(j) < 0)
            r = mp__futex_wait(&j->wake_seq, seq, &d);
        MP__SUB(&j->waiters, 1);
        if ((r == MP_ETIMEDOUT || r == -EINTR) && imap_pick(j) < 0)
            return r;
    }
}

static int imap_check(mp_imap *it)
{
    mp__pjob *j = (mp__pjob *)it;
    if (mp__obj_check(j, MP__JOB_IMAP) != 0)
        return MP_EINVAL;
    if (j->pool != NULL && j->pool->creator != mp__pool_self())
        return MP_EINVAL;
    return 0;
}

int mp_imap_next(mp_imap *it, double timeout, void *out, size_t *index)
{
    if (imap_check(it) != 0 || (((mp__pjob *)it)->flags & MP__JF_BYTES))
        return MP_EINVAL;
    return imap_next((mp__pjob *)it, timeout, out, NULL, NULL, index);
}

int mp_imap_next_bytes(mp_imap *it, double timeout, void **data, size_t *size, size_t *index)
{
    if (imap_check(it) != 0)
        return MP_EINVAL;
    return imap_next((mp__pjob *)it, timeout, NULL, data, size, index);
}

void mp_imap_free(mp_imap *it)
{
    if (imap_check(it) != 0)
        return;
    mp__pjob *j = (mp__pjob *)it;
    imap_end_input(j, 0);
    mp__pool_job_cancel(j, MP_EWORKERLOST);
    job_abandon(j);
    MP__ST(&j->abandoned, true);
    mp__pool_job_release(j);
}
