/*
 * pool_calls.c: the calls of a pool, on the caller's side: map, starmap,
 * apply, map_bytes (and their async forms), and async results.  imap is
 * in pool_imap.c.
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

/*
 * The message of the last task failure returned to this thread: in
 * caller_msg when it fits, else in caller_long (malloc'd, and also held
 * under a thread key whose destructor frees it when the thread exits).
 */
static MP__TLS char caller_msg[MP__POOL_MSG];
static MP__TLS char *caller_long;
static pthread_key_t caller_key;
static pthread_once_t caller_once = PTHREAD_ONCE_INIT;
static bool caller_key_ok;

static void caller_key_make(void)
{
    caller_key_ok = pthread_key_create(&caller_key, free) == 0;
}

const char *mp_pool_error_message(void)
{
    return caller_long != NULL ? caller_long : caller_msg;
}

/* Record the message of a failed result (malloc'd; NULL is fine). */
static void job_set_msg(mp__pjob *j, const char *msg)
{
    free(j->msg);
    j->msg = strdup(msg != NULL ? msg : "");
}

void mp__pool_set_message(int code, const char *msg)
{
    if (caller_long != NULL) {
        free(caller_long);
        caller_long = NULL;
        pthread_setspecific(caller_key, NULL);
    }
    if (code == 0 || msg == NULL) {
        caller_msg[0] = '\0';
        return;
    }
    size_t l = strlen(msg);
    if (l < sizeof caller_msg) {
        memcpy(caller_msg, msg, l + 1);
        return;
    }
    pthread_once(&caller_once, caller_key_make);
    if (caller_key_ok && (caller_long = strdup(msg)) != NULL) {
        pthread_setspecific(caller_key, caller_long);
        return;
    }
    /* Out of memory: keep the start, and say it was cut. */
    memcpy(caller_msg, msg, sizeof caller_msg - 4);
    memcpy(caller_msg + sizeof caller_msg - 4, "...", 4);
}

/* ---- function references, cached per thread --------------------------------- */

struct ref_cache {
    void (*fn)(void);
    mp__fnref ref;
};
static MP__TLS struct ref_cache ref_cache[8];

int mp__pool_make_ref(mp__fnref *ref, void (*fn)(void))
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

static bool mul_ok(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* Whether [p, p + len) is memory of the arena (used in place). */
static bool in_arena(const void *p, size_t len)
{
    return p != NULL && len > 0 && mp__in_arena(p) && mp__in_arena((const char *)p + len - 1);
}

static size_t default_chunksize(const struct mp_pool *pool, size_t n)
{
    size_t cs = mp_pool_chunksize(pool, n);
    return cs ? cs : 1;
}

/* A new job with nslots slots allocated with it (0: none). */
mp__pjob *mp__pool_job_new(uint32_t magic, uint32_t kind, uint32_t flags, size_t nslots)
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

int mp__pool_job_set_arg(mp__pjob *j, const mp_pool_call_options *o)
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
    mp__pool_imap_free_state(j);
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
void mp__pool_job_discard(mp__pjob *j)
{
    mp__pool_job_free_parts(j);
    mp__obj_free(j);
}

/* ---- waiting -------------------------------------------------------------- */

/* Wait until every chunk of map job j is final: 0, MP_ETIMEDOUT, -EINTR. */
static int wait_complete(mp__pjob *j, const mp__deadline *d)
{
    uint64_t now = mp__now_ns();
    /* Oversubscribed: no poll, the workers need the cpu (mp__cpu_busy). */
    uint64_t spin_until = mp__cpu_busy_at(now) ? 0 : now + MP__POOL_SPIN_NS;
    do {
        if (mp__pool_job_complete(j))
            return 0;
        if (d->nowait)
            return MP_ETIMEDOUT;
        for (int i = 0; i < 16; i++)
            mp__cpu_relax();
    } while (mp__now_ns() < spin_until);
    for (;;) {
        if (mp__pool_job_complete(j))
            return 0;
        MP__ADD(&j->waiters, 1);
        uint64_t v = MP__LD(&j->remaining);
        int r = 0;
        if (v != 0 && !mp__pool_job_complete(j))
            r = mp__futex_wait(mp__job_remaining_word(j), (uint32_t)v, d);
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
    return "the pool is broken: its workers cannot start (initializer)";
}

/* The code and message of item i of a slots chunk that has no records. */
int mp__pool_slot_chunk_code(const mp__pjob *j, const mp__pslot *s, uint32_t st, char *msg,
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
const mp__orec *mp__pool_orec_at(const char *out, size_t out_len, size_t *off)
{
    if (out == NULL || *off + sizeof(mp__orec) > out_len)
        return NULL;
    const mp__orec *h = (const mp__orec *)(out + *off);
    *off += MP__ALIGN16(sizeof *h + h->size + h->msg_len);
    return h;
}

void *mp__pool_dup(const void *p, size_t n)
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
            const mp__orec *h = (st == MP__CS_OK || st == MP__CS_ERR)
                                    ? mp__pool_orec_at(s->out, s->out_len, &off)
                                    : NULL;
            int code;
            const char *m;
            if (h != NULL) {
                code = h->code;
                m = mp__orec_msg(h);
            } else {
                code = mp__pool_slot_chunk_code(j, s, st, msg, sizeof msg);
                m = msg;
            }
            if (j->user_bytes != NULL) {
                j->user_bytes[idx].size = h != NULL ? h->size : 0;
                j->user_bytes[idx].data = mp__pool_dup(h != NULL ? mp__orec_data(h) : "",
                                                       h != NULL ? h->size : 0);
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
void mp__pool_job_abandon(mp__pjob *j)
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
        const mp__orec *h = mp__pool_orec_at(j->slots[0].out, j->slots[0].out_len, &off);
        *res = h != NULL ? mp__orec_data(h) : "";
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
    int r = mp__pool_make_ref(&j->fn, fc->fn);
    if (r == 0)
        r = mp__pool_job_set_arg(j, o);
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

int mp__pool_nwake(const mp_pool *pool, uint64_t chunks)
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
    mp__pjob *j = mp__pool_job_new(magic, MP__K_FIXED, fc->flags, 0);
    if (j == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    if (fc->async)
        job_set_callbacks(j, fc->o);
    r = fixed_prepare(j, fc);
    if (r == 0)
        r = mp__pool_submit(fc->pool, j, j->nchunks, mp__pool_nwake(fc->pool, j->nchunks));
    if (r != 0) {
        mp__pool_job_discard(j);
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
        void *d = mp__pool_dup(res, size);
        if (d == NULL)
            return -ENOMEM;
        *out = d;
    }
    if (out_size != NULL)
        *out_size = size;
    return 0;
}

/*
 * Wait for a job inside a blocking call, finish it and drop it.  With out or
 * out_size (apply jobs only), also hand back its result as apply_output.
 */
static int sync_finish(mp__pjob *j, void **out, size_t *out_size)
{
    mp__deadline forever;
    mp__deadline_init(&forever, MP_FOREVER);
    int r = wait_complete(j, &forever);
    if (r != 0) {
        /* Interrupted: drop the tasks not started, leave the rest. */
        mp__pool_job_cancel(j, r);
        mp__pool_job_abandon(j);
        mp__pool_job_release(j);
        return r;
    }
    r = mp__pool_job_finish(j);
    mp__pool_set_message(r, j->msg);
    if (r == 0 && (out != NULL || out_size != NULL))
        r = apply_output(j, out, out_size);
    mp__pool_job_release(j);
    return r;
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

int mp__pool_slot_add_bytes(mp__pslot *s, const void *data, size_t size)
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

int mp__pool_slot_add_fixed(mp__pslot *s, const void *data, size_t size)
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
    mp__pjob *j = mp__pool_job_new(magic, MP__K_SLOTS, MP__JF_BYTES, 1);
    if (j == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    if (async)
        job_set_callbacks(j, o);
    r = mp__pool_make_ref(&j->fn, (void (*)(void))f);
    if (r == 0)
        r = mp__pool_job_set_arg(j, o);
    mp__pslot *s = &j->slots[0];
    if (r == 0)
        r = mp__pool_slot_add_bytes(s, in, in_size);
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
        mp__pool_job_discard(j);
        *err = r;
        return NULL;
    }
    return j;
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
    mp__pjob *j = mp__pool_job_new(magic, MP__K_SLOTS, MP__JF_BYTES, 0);
    if (j == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    if (async)
        job_set_callbacks(j, o);
    int r = mp__pool_make_ref(&j->fn, (void (*)(void))f);
    if (r == 0)
        r = mp__pool_job_set_arg(j, o);
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
        r = mp__pool_submit(pool, j, j->nchunks, mp__pool_nwake(pool, j->nchunks));
    if (r != 0) {
        mp__pool_job_discard(j);
        *err = r;
        return NULL;
    }
    return j;
}

/* ---- the entry points ---------------------------------------------------------- */

enum call_kind { CALL_FIXED, CALL_APPLY, CALL_BYTES };

/* One call of the pool, as an entry point describes it. */
struct pool_call {
    enum call_kind kind;
    struct fixed_call fc;     /* CALL_FIXED (its o and async are filled here) */
    mp_pool *pool;            /* CALL_APPLY, CALL_BYTES */
    mp_pool_bytes_fn bfn;     /* CALL_APPLY, CALL_BYTES */
    const void *in;           /* CALL_APPLY */
    size_t in_size;           /* CALL_APPLY */
    void **out;               /* CALL_APPLY: the blocking call's result */
    size_t *out_size;         /* CALL_APPLY */
    const mp_pool_bytes *bin; /* CALL_BYTES */
    size_t n;                 /* CALL_BYTES */
    mp_pool_bytes *bout;      /* CALL_BYTES */
};

/*
 * What every entry point does: load the caller's options, build and submit
 * the job, and either wait for it (async_job NULL: the call's result) or
 * hand it back in *async_job (0, or the error).
 */
static int pool_call(struct pool_call *c, const mp_pool_call_options *o, mp__pjob **async_job)
{
    mp_pool_call_options opts_local;
    int r;
    o = MP__OPTS_LOAD(opts_local, o, window, &r);
    if (r != 0)
        return r;
    bool async = async_job != NULL;
    uint32_t magic = async ? MP__JOB_ASYNC : MP__JOB_SYNC;
    mp__pjob *j = NULL;
    switch (c->kind) {
    case CALL_FIXED:
        c->fc.o = o;
        c->fc.async = async;
        if (!async) {
            r = fixed_check(&c->fc);
            if (r != 0)
                return r;
            if (c->fc.n == 0)
                return MP__LD(&c->fc.pool->state) == MP__P_RUN ? 0 : MP_EINVAL;
        }
        j = fixed_submit(&c->fc, magic, &r);
        break;
    case CALL_APPLY:
        j = apply_submit(c->pool, c->bfn, c->in, c->in_size, o, async, magic, &r);
        break;
    case CALL_BYTES:
        j = bytes_submit(c->pool, c->bfn, c->bin, c->n, c->bout, o, async, magic, &r);
        if (j != NULL && !async && c->n == 0) {
            mp__pool_job_release(j);
            return 0;
        }
        break;
    }
    if (j == NULL)
        return r;
    if (async) {
        *async_job = j;
        return 0;
    }
    return sync_finish(j, c->out, c->out_size);
}

static mp_async_result *pool_call_async(struct pool_call *c, const mp_pool_call_options *o)
{
    mp__pjob *j = NULL;
    int r = pool_call(c, o, &j);
    return r == 0 ? (mp_async_result *)j : mp__fail_null(r);
}

static struct pool_call map_call(mp_pool *pool, mp_pool_fn f, const void *in, size_t in_size,
                                 size_t n, void *out, size_t out_size)
{
    return (struct pool_call){.kind = CALL_FIXED,
                              .fc = {.pool = pool,
                                     .fn = (void (*)(void))f,
                                     .in = in,
                                     .in_size = in_size,
                                     .n = n,
                                     .out = out,
                                     .out_size = out_size}};
}

int mp_pool_map_opts(mp_pool *pool, mp_pool_fn f, const void *in, size_t in_size, size_t n,
                     void *out, size_t out_size, const mp_pool_call_options *o)
{
    struct pool_call c = map_call(pool, f, in, in_size, n, out, out_size);
    return pool_call(&c, o, NULL);
}

mp_async_result *mp_pool_map_async_opts(mp_pool *pool, mp_pool_fn f, const void *in,
                                        size_t in_size, size_t n, void *out, size_t out_size,
                                        const mp_pool_call_options *o)
{
    struct pool_call c = map_call(pool, f, in, in_size, n, out, out_size);
    return pool_call_async(&c, o);
}

static struct pool_call starmap_call(mp_pool *pool, mp_pool_star_fn f, size_t ncols,
                                     const void *const *cols, const size_t *sizes, size_t n,
                                     void *out, size_t out_size)
{
    return (struct pool_call){.kind = CALL_FIXED,
                              .fc = {.pool = pool,
                                     .fn = (void (*)(void))f,
                                     .flags = MP__JF_STAR,
                                     .ncols = ncols,
                                     .cols = cols,
                                     .sizes = sizes,
                                     .n = n,
                                     .out = out,
                                     .out_size = out_size}};
}

int mp_pool_starmap_opts(mp_pool *pool, mp_pool_star_fn f, size_t ncols,
                         const void *const *cols, const size_t *sizes, size_t n, void *out,
                         size_t out_size, const mp_pool_call_options *o)
{
    struct pool_call c = starmap_call(pool, f, ncols, cols, sizes, n, out, out_size);
    return pool_call(&c, o, NULL);
}

mp_async_result *mp_pool_starmap_async_opts(mp_pool *pool, mp_pool_star_fn f, size_t ncols,
                                            const void *const *cols, const size_t *sizes,
                                            size_t n, void *out, size_t out_size,
                                            const mp_pool_call_options *o)
{
    struct pool_call c = starmap_call(pool, f, ncols, cols, sizes, n, out, out_size);
    return pool_call_async(&c, o);
}

int mp_pool_apply_opts(mp_pool *pool, mp_pool_bytes_fn f, const void *in, size_t in_size,
                       void **out, size_t *out_size, const mp_pool_call_options *o)
{
    struct pool_call c = {.kind = CALL_APPLY,
                          .pool = pool,
                          .bfn = f,
                          .in = in,
                          .in_size = in_size,
                          .out = out,
                          .out_size = out_size};
    return pool_call(&c, o, NULL);
}

mp_async_result *mp_pool_apply_async_opts(mp_pool *pool, mp_pool_bytes_fn f, const void *in,
                                          size_t in_size, const mp_pool_call_options *o)
{
    struct pool_call c = {
        .kind = CALL_APPLY, .pool = pool, .bfn = f, .in = in, .in_size = in_size};
    return pool_call_async(&c, o);
}

int mp_pool_map_bytes_opts(mp_pool *pool, mp_pool_bytes_fn f, const mp_pool_bytes *in,
                           size_t n, mp_pool_bytes *out, const mp_pool_call_options *o)
{
    struct pool_call c = {
        .kind = CALL_BYTES, .pool = pool, .bfn = f, .bin = in, .n = n, .bout = out};
    return pool_call(&c, o, NULL);
}

mp_async_result *mp_pool_map_bytes_async_opts(mp_pool *pool, mp_pool_bytes_fn f,
                                              const mp_pool_bytes *in, size_t n,
                                              mp_pool_bytes *out,
                                              const mp_pool_call_options *o)
{
    struct pool_call c = {
        .kind = CALL_BYTES, .pool = pool, .bfn = f, .bin = in, .n = n, .bout = out};
    return pool_call_async(&c, o);
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
    mp__pool_set_message(r, j->msg);
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
    mp__pool_set_message(r, j->msg);
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
    mp__pool_job_abandon(j);
    MP__ST(&j->abandoned, true);
    mp__pool_job_release(j);
}
