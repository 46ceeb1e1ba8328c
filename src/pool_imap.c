/*
 * pool_imap.c: imap and imap_unordered iterators (Python's IMapIterator and
 * IMapUnorderedIterator).
 *
 * An iterator is a slots job whose slots form a window: chunk k lives in
 * slot k % nslots.  The caller feeds chunks (copying input items into the
 * slot) as slots are freed by taking results, so at most a window of input
 * is read ahead, whatever the length of the input.  mp_pool_join, which in
 * Python returns once every task ran, drains the iterators still open: it
 * moves their results into caller memory (the "spill") to free slots and
 * feeds the rest of the input.
 */
#include "internal/pool.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void (*mp__pool_test_before_last_publish)(struct mp_pool *pool);

/* A chunk about to be returned: in a slot or in the spill. */
struct view {
    uint64_t first;
    uint32_t nitems;
    uint32_t st;
    const char *out;
    size_t out_len;
    mp__pslot meta; /* chunk_code, lost_pid, lost_exit */
};

static void im_lock(mp__pjob *j)
{
    pthread_mutex_lock(&j->im->lock);
}

static void im_unlock(mp__pjob *j)
{
    pthread_mutex_unlock(&j->im->lock);
}

void mp__pool_imap_free_state(mp__pjob *j)
{
    mp__imapst *im = j->im;
    if (im == NULL)
        return;
    for (size_t i = im->spill_head; i < im->nspill; i++)
        free(im->spill[i].out);
    free(im->spill);
    pthread_mutex_destroy(&im->lock);
    free(im);
    j->im = NULL;
}

static void end_input(mp__pjob *j, int err)
{
    mp__imapst *im = j->im;
    if (im->input_ended)
        return;
    im->input_ended = true;
    im->input_err = err;
    j->entries_done = true;
}

/*
 * The input has ended and its last chunks are published: the pool may stop
 * waiting for this iterator.  This must not happen in end_input, which runs
 * while the last chunks are still being gathered: a closed pool whose
 * workers saw no feeder and an empty queue in between would let them exit,
 * and join return, with those chunks never run (issue #6).
 */
static void stop_feeding(mp__pjob *j)
{
    if (j->im->input_ended && MP__LD(&j->counted_feeding)) {
        MP__ST(&j->counted_feeding, false);
        mp__pool_feeding_done(j->pool);
    }
}

/* Read up to chunksize items of the input into slot s; the count read. */
static uint32_t gather(mp__pjob *j, mp__pslot *s)
{
    mp__imapst *im = j->im;
    uint32_t got = 0;
    while (got < j->chunksize && !im->input_ended) {
        const void *data;
        size_t size;
        if (im->src_next != NULL) {
            int r = im->src_next(im->src_ctx, &data, &size);
            if (r <= 0) {
                end_input(j, r < 0 ? r : 0);
                break;
            }
            if ((!(j->flags & MP__JF_BYTES) && size != j->in_size) ||
                (data == NULL && size > 0)) {
                end_input(j, MP_EINVAL);
                break;
            }
        } else if (im->in_index >= im->src_n) {
            end_input(j, 0);
            break;
        } else if (j->flags & MP__JF_BYTES) {
            data = im->src_bytes[im->in_index].data;
            size = im->src_bytes[im->in_index].size;
        } else {
            data = im->src_fixed + im->in_index * j->in_size;
            size = j->in_size;
        }
        int r = (j->flags & MP__JF_BYTES) ? mp__pool_slot_add_bytes(s, data, size)
                                          : mp__pool_slot_add_fixed(s, data, size);
        if (r != 0) {
            end_input(j, r);
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
static void feed(mp__pjob *j)
{
    mp__imapst *im = j->im;
    struct mp_pool *pool = j->pool;
    uint64_t start = im->fed;
    uint64_t base = (j->flags & MP__JF_UNORDERED) ? im->low : im->taken;
    if (im->input_ended || (im->fed - base) * 4 > j->nslots * 3)
        return;
    while (!im->input_ended && im->fed - base < j->nslots) {
        if (pool == NULL || MP__LD(&pool->state) == MP__P_TERMINATE) {
            end_input(j, MP_EWORKERLOST);
            break;
        }
        if (MP__LD(&pool->broken) != 0) {
            end_input(j, MP__LD(&pool->broken));
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
        uint32_t got = gather(j, s);
        if (got == 0)
            break;
        s->nitems = got;
        MP__ST(&s->state, mp__cs(im->fed, MP__CS_FREE));
        im->fed++;
    }
    if (im->fed > start) {
        if (MP__UNLIKELY(im->input_ended && mp__pool_test_before_last_publish != NULL))
            mp__pool_test_before_last_publish(pool);
        MP__ST(&j->nchunks, im->fed);
        if (mp__pool_push(pool, j, im->fed, mp__pool_nwake(pool, im->fed - start)) != 0) {
            mp__pool_job_cancel(j, MP_EWORKERLOST);
            end_input(j, MP_EWORKERLOST);
        }
    }
    stop_feeding(j);
}

/* ---- results in the slots -------------------------------------------------------- */

/* Slot of chunk k if it is final (ready to be returned), else NULL. */
static mp__pslot *ready(mp__pjob *j, uint64_t k)
{
    mp__pslot *s = &j->slots[k % j->nslots];
    uint64_t v = MP__LD(&s->state);
    return mp__cs_k(v) == k && mp__cs_final(mp__cs_st(v)) ? s : NULL;
}

static bool taken(mp__pjob *j, uint64_t k)
{
    return MP__LD(&j->slots[k % j->nslots].state) == mp__cs(k, MP__CS_TAKEN);
}

/* Chunk k (final) has been returned or spilled: give its slot back. */
static void release_slot(mp__pjob *j, uint64_t k, mp__pslot *s)
{
    mp__imapst *im = j->im;
    if (s->out != NULL && s->out != s->out_inline)
        mp__free(s->out);
    s->out = NULL;
    MP__ST(&s->state, mp__cs(k, MP__CS_TAKEN));
    if (j->flags & MP__JF_UNORDERED) {
        if (im->cur == (int64_t)k)
            im->cur = -1;
        while (im->low < im->fed && taken(j, im->low))
            im->low++;
    } else {
        im->taken++;
    }
}

/* The next chunk to return from the slots: its number, or -1. */
static int64_t pick(mp__pjob *j)
{
    mp__imapst *im = j->im;
    if (!(j->flags & MP__JF_UNORDERED))
        return im->taken < im->fed && ready(j, im->taken) ? (int64_t)im->taken : -1;
    if (im->cur >= 0)
        return im->cur;
    for (uint64_t k = im->low; k < im->fed; k++) {
        if (!taken(j, k) && ready(j, k)) {
            im->cur = (int64_t)k;
            return im->cur;
        }
    }
    return -1;
}

static void view_of_slot(struct view *v, const mp__pslot *s)
{
    v->first = s->first;
    v->nitems = s->nitems;
    v->st = mp__cs_st(MP__LD(&s->state));
    v->out = s->out;
    v->out_len = s->out_len;
    v->meta.chunk_code = s->chunk_code;
    v->meta.lost_pid = s->lost_pid;
    v->meta.lost_exit = s->lost_exit;
}

static void view_of_spill(struct view *v, const mp__spill *sp)
{
    v->first = sp->first;
    v->nitems = sp->nitems;
    v->st = sp->st;
    v->out = sp->out;
    v->out_len = sp->out_len;
    v->meta.chunk_code = sp->chunk_code;
    v->meta.lost_pid = sp->lost_pid;
    v->meta.lost_exit = sp->lost_exit;
}

/* Return the next item of the chunk v; true when it was the chunk's last. */
static bool deliver(mp__pjob *j, const struct view *v, void *fixed_out, void **data,
                    size_t *size, size_t *index, int *code)
{
    mp__imapst *im = j->im;
    const mp__orec *h = NULL;
    if (v->st == MP__CS_OK || v->st == MP__CS_ERR)
        h = mp__pool_orec_at(v->out, v->out_len, &im->deliver_off);
    char msg[MP__POOL_MSG];
    const char *m = msg;
    if (h != NULL) {
        *code = h->code;
        m = mp__orec_msg(h);
    } else {
        *code = mp__pool_slot_chunk_code(j, &v->meta, v->st, msg, sizeof msg);
    }
    if (index != NULL)
        *index = (size_t)v->first + im->item_pos;
    if (*code == 0) {
        const char *src = h != NULL ? mp__orec_data(h) : "";
        size_t n = h != NULL ? h->size : 0;
        if (fixed_out != NULL)
            memcpy(fixed_out, src, n < j->out_size ? n : j->out_size);
        if (data != NULL) {
            *data = mp__pool_dup(src, n);
            if (*data == NULL)
                *code = -ENOMEM;
        }
        if (size != NULL)
            *size = n;
    }
    mp__pool_set_message(*code, m);
    if (++im->item_pos < v->nitems)
        return false;
    im->item_pos = 0;
    im->deliver_off = 0;
    return true;
}

/* ---- the spill ------------------------------------------------------------------ */

/* Move chunk k's results (slot s, final) to the spill. */
static int spill_chunk(mp__pjob *j, uint64_t k, mp__pslot *s)
{
    mp__imapst *im = j->im;
    if (im->nspill == im->capspill) {
        size_t cap = im->capspill ? im->capspill * 2 : 64;
        mp__spill *n = realloc(im->spill, cap * sizeof *n);
        if (n == NULL)
            return -ENOMEM;
        im->spill = n;
        im->capspill = cap;
    }
    mp__spill *sp = &im->spill[im->nspill];
    sp->first = s->first;
    sp->nitems = s->nitems;
    sp->st = mp__cs_st(MP__LD(&s->state));
    sp->chunk_code = s->chunk_code;
    sp->lost_exit = s->lost_exit;
    sp->lost_pid = s->lost_pid;
    sp->out = NULL;
    sp->out_len = 0;
    if (s->out != NULL) {
        sp->out = malloc(s->out_len ? s->out_len : 1);
        if (sp->out == NULL)
            return -ENOMEM;
        memcpy(sp->out, s->out, s->out_len);
        sp->out_len = s->out_len;
    }
    im->nspill++;
    release_slot(j, k, s);
    return 0;
}

/* Spill every chunk that can be (in the order they would be returned). */
static int spill_ready(mp__pjob *j, bool *moved)
{
    mp__imapst *im = j->im;
    int64_t k;
    while ((k = pick(j)) >= 0) {
        int r = spill_chunk(j, (uint64_t)k, &j->slots[(uint64_t)k % j->nslots]);
        if (r != 0)
            return r;
        *moved = true;
        if (!(j->flags & MP__JF_UNORDERED) && im->taken >= im->fed)
            break;
    }
    return 0;
}

/* Wait (lock dropped) for a chunk of j to become final, from seq. */
static int wait_chunk(mp__pjob *j, uint32_t seq, const mp__deadline *d)
{
    MP__ADD(&j->waiters, 1);
    int r = mp__futex_wait(&j->wake_seq, seq, d);
    MP__SUB(&j->waiters, 1);
    return r == MP_ETIMEDOUT || r == -EINTR ? r : 0;
}

int mp__pool_imap_drain(mp__pjob *j, const mp__deadline *d)
{
    mp__imapst *im = j->im;
    im_lock(j);
    int r = 0;
    while (!im->input_ended) {
        uint32_t seq = MP__LD(&j->wake_seq);
        bool moved = false;
        r = spill_ready(j, &moved);
        if (r != 0)
            break;
        feed(j);
        if (moved || im->input_ended)
            continue;
        im_unlock(j);
        r = wait_chunk(j, seq, d);
        im_lock(j);
        if (r != 0)
            break;
    }
    im_unlock(j);
    return r;
}

/* ---- the iterator ---------------------------------------------------------------- */

static mp__pjob *imap_submit(mp_pool *pool, void (*fn)(void), uint32_t flags, const void *in,
                             size_t in_size, size_t n, size_t out_size,
                             const mp_pool_call_options *o, int *err)
{
    if (o == NULL || mp__pool_check_owner(pool) != 0 || fn == NULL || o->callback != NULL ||
        o->error_callback != NULL || o->status != NULL ||
        (in != NULL && o->next_input != NULL) || (in == NULL && n > 0) ||
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
    mp__pjob *j = mp__pool_job_new(MP__JOB_IMAP, MP__K_SLOTS, flags | MP__JF_IMAP, 0);
    if (j == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    int r = mp__pool_make_ref(&j->fn, fn);
    if (r == 0)
        r = mp__pool_job_set_arg(j, o);
    j->in_size = in_size;
    j->out_size = out_size;
    j->chunksize = o->chunksize ? o->chunksize : 1;
    mp__imapst *im = calloc(1, sizeof *im);
    if (r == 0 && im == NULL)
        r = -ENOMEM;
    if (r == 0) {
        pthread_mutex_init(&im->lock, NULL);
        j->im = im;
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
        mp__pool_job_discard(j);
        *err = r;
        return NULL;
    }
    im_lock(j);
    feed(j);
    im_unlock(j);
    return j;
}

mp_imap *mp_pool_imap_opts(mp_pool *pool, mp_pool_fn f, const void *in, size_t in_size,
                           size_t n, size_t out_size, bool unordered,
                           const mp_pool_call_options *o)
{
    mp_pool_call_options opts_local;
    int opts_err;
    o = MP__OPTS_LOAD(opts_local, o, window, &opts_err);
    if (opts_err != 0)
        return mp__fail_null(opts_err);
    int r;
    mp__pjob *j = imap_submit(pool, (void (*)(void))f, unordered ? MP__JF_UNORDERED : 0, in,
                              in_size, n, out_size, o, &r);
    return j != NULL ? (mp_imap *)j : mp__fail_null(r);
}

mp_imap *mp_pool_imap_bytes_opts(mp_pool *pool, mp_pool_bytes_fn f, const mp_pool_bytes *in,
                                 size_t n, bool unordered, const mp_pool_call_options *o)
{
    mp_pool_call_options opts_local;
    int opts_err;
    o = MP__OPTS_LOAD(opts_local, o, window, &opts_err);
    if (opts_err != 0)
        return mp__fail_null(opts_err);
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

static bool exhausted(const mp__pjob *j)
{
    const mp__imapst *im = j->im;
    uint64_t done = (j->flags & MP__JF_UNORDERED) ? im->low : im->taken;
    return im->input_ended && done == im->fed && im->spill_head == im->nspill;
}

/* One attempt to return an item (lock held): 1 with *code set, or 0. */
static int try_next(mp__pjob *j, void *fixed_out, void **data, size_t *size, size_t *index,
                    int *code)
{
    mp__imapst *im = j->im;
    struct view v;
    if (im->spill_head < im->nspill) {
        mp__spill *sp = &im->spill[im->spill_head];
        view_of_spill(&v, sp);
        if (deliver(j, &v, fixed_out, data, size, index, code)) {
            free(sp->out);
            sp->out = NULL;
            if (++im->spill_head == im->nspill)
                im->spill_head = im->nspill = 0;
        }
        return 1;
    }
    feed(j);
    int64_t k = pick(j);
    if (k >= 0) {
        mp__pslot *s = &j->slots[(uint64_t)k % j->nslots];
        view_of_slot(&v, s);
        if (deliver(j, &v, fixed_out, data, size, index, code))
            release_slot(j, (uint64_t)k, s);
        return 1;
    }
    if (exhausted(j)) {
        if (im->input_err != 0 && !im->input_err_told) {
            im->input_err_told = true;
            mp__pool_set_message(im->input_err, "the input failed");
            *code = im->input_err;
        } else {
            *code = MP_EEOF;
        }
        return 1;
    }
    return 0;
}

static int imap_next(mp__pjob *j, double timeout, void *fixed_out, void **data, size_t *size,
                     size_t *index)
{
    mp__deadline d;
    if (mp__deadline_init(&d, timeout) != 0)
        return MP_EINVAL;
    uint64_t spin_until = 0;
    int code;
    im_lock(j);
    for (;;) {
        uint32_t seq = MP__LD(&j->wake_seq);
        if (try_next(j, fixed_out, data, size, index, &code))
            break;
        if (d.nowait) {
            code = MP_ETIMEDOUT;
            break;
        }
        if (spin_until == 0) {
            uint64_t now = mp__now_ns();
            /* Oversubscribed: sleep at once (mp__cpu_busy). */
            spin_until = mp__cpu_busy_at(now) ? 1 : now + MP__POOL_SPIN_NS;
        }
        im_unlock(j);
        int r = 0;
        if (mp__now_ns() < spin_until) {
            for (int i = 0; i < 16; i++)
                mp__cpu_relax();
        } else {
            r = wait_chunk(j, seq, &d);
        }
        im_lock(j);
        if (r != 0) {
            if (!try_next(j, fixed_out, data, size, index, &code))
                code = r;
            break;
        }
    }
    im_unlock(j);
    return code;
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
    im_lock(j);
    end_input(j, 0);
    stop_feeding(j);
    im_unlock(j);
    mp__pool_job_cancel(j, MP_EWORKERLOST);
    mp__pool_job_abandon(j);
    MP__ST(&j->abandoned, true);
    mp__pool_job_release(j);
}
