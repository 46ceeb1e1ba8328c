/*
 * queues.c: Queue, JoinableQueue and SimpleQueue (Python's queues.py) on
 * top of the shared ring (ring.c).
 */
#include "internal/mp.h"
#include "internal/ring.h"

#include <limits.h>
#include <stdlib.h>

#define QUEUE_MAGIC MP__MAGIC('q', 'u', 'e', 'u')
#define SIMPLE_MAGIC MP__MAGIC('s', 'q', 'u', 'e')

/* One layout for all three kinds; the ring's slots follow the struct. */
struct mp_queue {
    mp__obj hdr;
    long maxsize;             /* 0: unbounded */
    _Atomic uint32_t nclosed; /* closes by any process (see closed_here) */
    mp__ring ring;
};

/* A SimpleQueue is the same object under another magic. */
static inline struct mp_queue *sq(mp_simple_queue *q)
{
    return (struct mp_queue *)q;
}

/* ---- close(), which is per process as in Python ------------------------- */

/*
 * The queues this process closed, as (object id, pid) keys in a
 * process-local table of chunks linked with compare-and-swap: no lock, so a
 * fork never inherits a held one.  The pid in the key makes a forked child
 * see the queue open again, as Python's Queue resets itself after fork.
 */
#define CLOSED_CHUNK 63

struct closed_chunk {
    _Atomic uint64_t key[CLOSED_CHUNK];
    _Atomic(struct closed_chunk *) next;
};

static struct closed_chunk closed_first;

static uint64_t closed_key(const struct mp_queue *q)
{
    return q->hdr.id << 22 | ((uint64_t)mp__self_pid() & ((1u << 22) - 1));
}

static _Atomic uint64_t *closed_find(uint64_t key)
{
    for (struct closed_chunk *c = &closed_first; c != NULL; c = atomic_load(&c->next))
        for (int i = 0; i < CLOSED_CHUNK; i++)
            if (atomic_load_explicit(&c->key[i], memory_order_relaxed) == key)
                return &c->key[i];
    return NULL;
}

static bool closed_here(const struct mp_queue *q)
{
    /* Only queues that some process closed pay for the lookup. */
    if (MP__LIKELY(atomic_load_explicit(&q->nclosed, memory_order_relaxed) == 0))
        return false;
    return closed_find(closed_key(q)) != NULL;
}

static int closed_add(struct mp_queue *q)
{
    uint64_t key = closed_key(q);
    if (closed_find(key) != NULL)
        return 0;
    struct closed_chunk *c = &closed_first;
    for (;;) {
        for (int i = 0; i < CLOSED_CHUNK; i++) {
            uint64_t e = 0;
            if (atomic_compare_exchange_strong(&c->key[i], &e, key)) {
                atomic_fetch_add(&q->nclosed, 1);
                return 0;
            }
        }
        struct closed_chunk *next = atomic_load(&c->next);
        if (next == NULL) {
            struct closed_chunk *fresh = calloc(1, sizeof *fresh);
            if (fresh == NULL)
                return -ENOMEM;
            if (atomic_compare_exchange_strong(&c->next, &next, fresh))
                next = fresh;
            else
                free(fresh);
        }
        c = next;
    }
}

static void closed_forget(const struct mp_queue *q)
{
    if (atomic_load(&q->nclosed) == 0)
        return;
    _Atomic uint64_t *e = closed_find(closed_key(q));
    if (e != NULL)
        atomic_store(e, 0);
}

/* ---- construction -------------------------------------------------------- */

static struct mp_queue *queue_create(uint32_t magic, long maxsize, size_t capacity,
                                     size_t slot_size, uint32_t flags)
{
    int rc = mp__heap_init();
    if (rc != 0)
        return mp__fail_null(rc);
    uint64_t nslots;
    uint32_t ss;
    rc = mp__ring_geometry(maxsize, capacity, slot_size, &nslots, &ss);
    if (rc != 0)
        return mp__fail_null(rc);
    if (nslots > (SIZE_MAX / 2 - sizeof(struct mp_queue)) / ss)
        return mp__fail_null(-ENOMEM);
    struct mp_queue *q = mp__obj_new(sizeof *q + nslots * ss, magic);
    if (q == NULL)
        return mp__fail_null(-ENOMEM);
    q->maxsize = maxsize > 0 ? maxsize : 0;
    if (maxsize > 0)
        flags |= MP__RING_BOUNDED;
    rc = mp__ring_init(&q->ring, (unsigned char *)(q + 1), nslots, ss, flags);
    if (rc != 0) {
        mp__obj_free(q);
        return mp__fail_null(rc);
    }
    return q;
}

mp_queue *mp_queue_new_opts(const mp_queue_options *o)
{
    mp_queue_options opts_local;
    int opts_err;
    o = MP__OPTS_LOAD(opts_local, o, ctx, &opts_err);
    if (opts_err != 0)
        return mp__fail_null(opts_err);
    if (o == NULL)
        return mp__fail_null(MP_EINVAL);
    return queue_create(QUEUE_MAGIC, o->maxsize, o->capacity, o->slot_size, 0);
}

mp_queue *mp_joinable_queue_new_opts(const mp_queue_options *o)
{
    mp_queue_options opts_local;
    int opts_err;
    o = MP__OPTS_LOAD(opts_local, o, ctx, &opts_err);
    if (opts_err != 0)
        return mp__fail_null(opts_err);
    if (o == NULL)
        return mp__fail_null(MP_EINVAL);
    return queue_create(QUEUE_MAGIC, o->maxsize, o->capacity, o->slot_size, MP__RING_JOINABLE);
}

mp_simple_queue *mp_simple_queue_new_opts(const mp_simple_queue_options *o)
{
    mp_simple_queue_options opts_local;
    int opts_err;
    o = MP__OPTS_LOAD(opts_local, o, ctx, &opts_err);
    if (opts_err != 0)
        return mp__fail_null(opts_err);
    if (o == NULL)
        return mp__fail_null(MP_EINVAL);
    return (mp_simple_queue *)queue_create(SIMPLE_MAGIC, 0, o->capacity, o->slot_size, 0);
}

static void queue_free(struct mp_queue *q, uint32_t magic)
{
    if (mp__obj_check(q, magic) != 0)
        return;
    closed_forget(q);
    mp__ring_destroy(&q->ring);
    mp__obj_free(q);
}

void mp_queue_free(mp_queue *q)
{
    queue_free(q, QUEUE_MAGIC);
}

void mp_simple_queue_free(mp_simple_queue *q)
{
    queue_free(sq(q), SIMPLE_MAGIC);
}

/* ---- Queue --------------------------------------------------------------- */

/* A live queue of this kind that this process has not closed. */
static inline int usable(const struct mp_queue *q, uint32_t magic)
{
    if (MP__UNLIKELY(mp__obj_check(q, magic) != 0 || closed_here(q)))
        return MP_EINVAL;
    return 0;
}

static int queue_put(struct mp_queue *q, uint32_t magic, const void *buf, size_t len,
                     double timeout)
{
    mp__deadline d;
    if (usable(q, magic) != 0 || (buf == NULL && len != 0) ||
        mp__deadline_init(&d, timeout) != 0)
        return MP_EINVAL;
    return mp__ring_put(&q->ring, buf, len, &d);
}

static int queue_get(struct mp_queue *q, uint32_t magic, void *buf, size_t size, void **alloc,
                     size_t *len, double timeout)
{
    mp__deadline d;
    if (usable(q, magic) != 0 || mp__deadline_init(&d, timeout) != 0)
        return MP_EINVAL;
    return mp__ring_get(&q->ring, buf, size, alloc, len, &d);
}

int mp_queue_put(mp_queue *q, const void *buf, size_t len, double timeout)
{
    return queue_put(q, QUEUE_MAGIC, buf, len, timeout);
}

int mp_queue_put_nowait(mp_queue *q, const void *buf, size_t len)
{
    return queue_put(q, QUEUE_MAGIC, buf, len, 0);
}

int mp_queue_get(mp_queue *q, void *buf, size_t size, size_t *len, double timeout)
{
    if (buf == NULL && size != 0)
        return MP_EINVAL;
    return queue_get(q, QUEUE_MAGIC, buf, size, NULL, len, timeout);
}

int mp_queue_get_nowait(mp_queue *q, void *buf, size_t size, size_t *len)
{
    return mp_queue_get(q, buf, size, len, 0);
}

int mp_queue_get_alloc(mp_queue *q, void **buf, size_t *len, double timeout)
{
    if (buf == NULL)
        return MP_EINVAL;
    return queue_get(q, QUEUE_MAGIC, NULL, 0, buf, len, timeout);
}

long mp_queue_qsize(const mp_queue *q)
{
    if (mp__obj_check(q, QUEUE_MAGIC) != 0)
        return MP_EINVAL;
    uint64_t n = mp__ring_count((mp__ring *)&q->ring);
    return n > LONG_MAX ? LONG_MAX : (long)n;
}

int mp_queue_empty(const mp_queue *q)
{
    long n = mp_queue_qsize(q);
    return n < 0 ? (int)n : n == 0;
}

int mp_queue_full(const mp_queue *q)
{
    long n = mp_queue_qsize(q);
    if (n < 0)
        return (int)n;
    return q->maxsize > 0 && n >= q->maxsize;
}

int mp_queue_close(mp_queue *q)
{
    if (mp__obj_check(q, QUEUE_MAGIC) != 0)
        return MP_EINVAL;
    return closed_add(q);
}

int mp_queue_join_thread(mp_queue *q)
{
    if (mp__obj_check(q, QUEUE_MAGIC) != 0 || !closed_here(q))
        return MP_EINVAL;
    return 0;
}

int mp_queue_cancel_join_thread(mp_queue *q)
{
    return mp__obj_check(q, QUEUE_MAGIC);
}

int mp_queue_task_done(mp_queue *q)
{
    if (mp__obj_check(q, QUEUE_MAGIC) != 0 || !(q->ring.flags & MP__RING_JOINABLE))
        return MP_EINVAL;
    return mp__ring_task_done(&q->ring);
}

int mp_queue_join(mp_queue *q, double timeout)
{
    mp__deadline d;
    if (mp__obj_check(q, QUEUE_MAGIC) != 0 || !(q->ring.flags & MP__RING_JOINABLE) ||
        mp__deadline_init(&d, timeout) != 0)
        return MP_EINVAL;
    return mp__ring_join(&q->ring, &d);
}

/* ---- SimpleQueue --------------------------------------------------------- */

int mp_simple_queue_put(mp_simple_queue *q, const void *buf, size_t len)
{
    return queue_put(sq(q), SIMPLE_MAGIC, buf, len, MP_FOREVER);
}

int mp_simple_queue_get(mp_simple_queue *q, void *buf, size_t size, size_t *len)
{
    if (buf == NULL && size != 0)
        return MP_EINVAL;
    return queue_get(sq(q), SIMPLE_MAGIC, buf, size, NULL, len, MP_FOREVER);
}

int mp_simple_queue_get_alloc(mp_simple_queue *q, void **buf, size_t *len)
{
    if (buf == NULL)
        return MP_EINVAL;
    return queue_get(sq(q), SIMPLE_MAGIC, NULL, 0, buf, len, MP_FOREVER);
}

int mp_simple_queue_empty(mp_simple_queue *q)
{
    if (usable(sq(q), SIMPLE_MAGIC) != 0)
        return MP_EINVAL;
    return mp__ring_count(&sq(q)->ring) == 0;
}

int mp_simple_queue_close(mp_simple_queue *q)
{
    if (mp__obj_check(sq(q), SIMPLE_MAGIC) != 0)
        return MP_EINVAL;
    return closed_add(sq(q));
}
