/*
 * ring.c: the shared-memory ring behind Queue, JoinableQueue and
 * SimpleQueue: many producers, many consumers, no lock and no system call
 * on the uncontended path, and no feeder thread.
 *
 * Each slot has a 64-bit state word: the lap base of the position it is
 * ready for (40 bits), a state (FREE, WRITING, FULL, READING) and the pid
 * of the process that claimed it (22 bits).  A producer claims the slot of
 * the tail position by a compare-and-swap FREE -> WRITING|pid, copies the
 * message and publishes it FULL; a consumer claims the head position FULL
 * -> READING|pid, copies the message out and frees the slot for the next
 * lap.  head and tail are only hints that anyone may advance; the state
 * words are the truth.  A claim that stays unchanged for a while is checked:
 * if its process is dead, whoever waits on it takes the slot over and frees
 * it, so a SIGKILL in the middle of a put or get never blocks the others.
 * docs/queues.md gives the full argument.
 */
#include "internal/mp.h"
#include "internal/ring.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_SLOT 128u
#define DEFAULT_CAPACITY (128u << 10)
#define MAX_SLOT (1u << 20)

#define TICK_NS MP__RING_TICK_NS
/* An unbounded ring full this long (a consumer stalled, not merely
 * descheduled for a moment) overflows; tests shorten it. */
#define PATIENCE_NS 100000000u
#define JOIN_TICK_NS 20000000u /* join re-checks at least this often */
#define CACHE_BLOCK_MAX (64u << 20)

/* A slot: state word, message length, then the message (inline) or the
 * arena address of the block holding it (len > inline_max). */
struct slot {
    _Atomic uint64_t w;
    _Atomic uint64_t len;
    unsigned char data[];
};

/* A message in the overflow list: inline bytes, or a block (blk). */
struct mp__ring_node {
    mp__ring_node *next;
    uint64_t len;
    void *blk;
    unsigned char data[];
};

/* ---- state words --------------------------------------------------------- */

enum { ST_FREE = 0, ST_WRITING = 1, ST_FULL = 2, ST_READING = 3 };

#define PID_BITS 22 /* Linux pids are below PID_MAX_LIMIT = 2^22 */
#define PID_MASK ((1u << PID_BITS) - 1)

static inline uint64_t wmake(uint64_t base, unsigned st, pid_t pid)
{
    return base << 24 | (uint64_t)st << PID_BITS | ((uint64_t)pid & PID_MASK);
}
static inline uint64_t wbase(uint64_t w)
{
    return w >> 24;
}
static inline unsigned wst(uint64_t w)
{
    return (unsigned)(w >> PID_BITS) & 3u;
}
static inline pid_t wpid(uint64_t w)
{
    return (pid_t)(w & PID_MASK);
}

/* Laps between w's base and base, computed on the 40 bits stored. */
static inline int64_t wdiff(uint64_t w, uint64_t base)
{
    return (int64_t)((wbase(w) - base) << 24) >> 24;
}

static inline struct slot *slot_at(const mp__ring *r, uint64_t pos, uint64_t *base)
{
    uint64_t i = r->mask ? pos & r->mask : pos % r->nslots;
    *base = pos - i;
    return (struct slot *)(r->slots + i * r->slot_size);
}

/* Ask for the slot PREFETCH positions ahead, for writing: in a stream of
 * messages its cache line then crosses from the other core while this one
 * works, instead of stalling the next claim. */
#define PREFETCH 4
static inline void prefetch_ahead(const mp__ring *r, uint64_t pos)
{
    uint64_t base;
    const char *s = (const char *)slot_at(r, pos + PREFETCH, &base);
    /* The first two lines: the state word and a 64-byte message straddle
     * them in a slot of 128 bytes. */
#if defined(__x86_64__)
    /* GCC drops __builtin_prefetch here; prefetchw is a hint (a no-op on
     * CPUs without it), so asm states it directly. */
    __asm__ __volatile__("prefetchw %0" : : "m"(*s));
    if (r->slot_size > 64)
        __asm__ __volatile__("prefetchw %0" : : "m"(*(s + 64)));
#else
    __builtin_prefetch(s, 1, 3);
    if (r->slot_size > 64)
        __builtin_prefetch(s + 64, 1, 3);
#endif
}

static inline struct slot *slot_index(const mp__ring *r, uint64_t i)
{
    return (struct slot *)(r->slots + i * r->slot_size);
}

/*
 * head and tail are hints; the slot states are the truth.  The process
 * that claimed position `from` moves the hint on with a plain store (a
 * locked instruction here would halve the throughput); a store that lands
 * late may move the hint back, which whoever reads it next repairs by
 * helping it forward with help() past every slot already claimed.
 */
static inline void advance(_Atomic uint64_t *pos, uint64_t from)
{
    atomic_store_explicit(pos, from + 1, memory_order_relaxed);
}

static inline void help(_Atomic uint64_t *pos, uint64_t from)
{
    atomic_compare_exchange_strong_explicit(pos, &from, from + 1, memory_order_relaxed,
                                            memory_order_relaxed);
}

/* Claiming acquires: the claimer sees everything the previous owner did. */
static inline bool claim(struct slot *s, uint64_t *w, uint64_t nw)
{
    return atomic_compare_exchange_strong_explicit(&s->w, w, nw, memory_order_acquire,
                                                   memory_order_acquire);
}

/* Make a slot state visible; ring_wait.c says why a plain store suffices
 * in a registered process. */
static inline void publish(struct slot *s, uint64_t w)
{
    if (MP__LIKELY(atomic_load_explicit(&mp__ring_fenceless, memory_order_relaxed) > 0))
        atomic_store_explicit(&s->w, w, memory_order_release);
    else
        atomic_exchange_explicit(&s->w, w, memory_order_seq_cst);
}

/* ---- the test hooks ------------------------------------------------------ */

static uint64_t patience_ns = PATIENCE_NS;

void mp__ring_set_patience(uint64_t ns)
{
    patience_ns = ns ? ns : PATIENCE_NS;
}

static _Atomic int stop_point;
static int stop_fd = -1;

void mp__ring_stop_at(int point, int fd)
{
    stop_fd = fd;
    atomic_store(&stop_point, point);
}

static inline bool stop_armed(int point)
{
    return MP__UNLIKELY(atomic_load_explicit(&stop_point, memory_order_relaxed) == point);
}

static void stop_now(void)
{
    char c = 's';
    if (stop_fd >= 0)
        (void)!write(stop_fd, &c, 1);
    for (;;)
        pause();
}

/* ---- geometry ------------------------------------------------------------ */

int mp__ring_geometry(long maxsize, size_t capacity, size_t slot_size, uint64_t *nslots,
                      uint32_t *slot_size_out)
{
    if (slot_size == 0)
        slot_size = DEFAULT_SLOT;
    if (slot_size < 64 || slot_size > MAX_SLOT)
        return MP_EINVAL;
    slot_size = (slot_size + 63) & ~(size_t)63;
    uint64_t n;
    if (maxsize > 0) {
        n = (uint64_t)maxsize;
    } else {
        n = (capacity ? capacity : DEFAULT_CAPACITY) / slot_size;
        while (n & (n - 1))
            n &= n - 1;
        if (n < 2)
            n = 2;
    }
    if (n > (SIZE_MAX / 2) / slot_size)
        return -ENOMEM;
    *nslots = n;
    *slot_size_out = (uint32_t)slot_size;
    return 0;
}

int mp__ring_init(mp__ring *r, unsigned char *slots, uint64_t nslots, uint32_t slot_size,
                  uint32_t flags)
{
    /* Zeroed slots are FREE for lap 0: nothing to write, and the memory of
     * a large bounded ring is only committed as it is used. */
    r->nslots = nslots;
    r->mask = (nslots & (nslots - 1)) == 0 ? nslots - 1 : 0;
    r->slot_size = slot_size;
    r->inline_max = slot_size - MP__RING_SLOT_HEADER;
    r->flags = flags;
    r->slots = slots;
    return mp__robust_mutex_init(&r->ovf_lock);
}

/* ---- message blocks ------------------------------------------------------ */

/* A block for a message of len bytes: a recycled one of a fitting size, or
 * a fresh one from the arena. */
static void *block_get(mp__ring *r, size_t len)
{
    for (int i = 0; i < MP__RING_CACHE; i++) {
        void *b = atomic_load_explicit(&r->cache[i], memory_order_relaxed);
        if (b == NULL)
            continue;
        size_t cap = mp__alloc_size(b);
        if (cap < len || cap / 2 > len + 65536)
            continue;
        if (atomic_compare_exchange_strong_explicit(&r->cache[i], &b, NULL,
                                                    memory_order_acquire,
                                                    memory_order_relaxed)) {
            /* Re-checked: the entry may have been swapped meanwhile. */
            if (mp__alloc_size(b) >= len)
                return b;
            mp__free(b);
        }
    }
    if (!atomic_load_explicit(&r->blocks_used, memory_order_relaxed))
        atomic_store_explicit(&r->blocks_used, 1, memory_order_relaxed);
    return mp__alloc(len);
}

static void block_put(mp__ring *r, void *b)
{
    if (mp__alloc_size(b) <= CACHE_BLOCK_MAX) {
        for (int i = 0; i < MP__RING_CACHE; i++) {
            void *e = NULL;
            if (atomic_compare_exchange_strong_explicit(&r->cache[i], &e, b,
                                                        memory_order_release,
                                                        memory_order_relaxed))
                return;
        }
    }
    mp__free(b);
}

/* ---- slots --------------------------------------------------------------- */

/* Give a claimed slot back, FREE for the next lap.  A FREE slot always has
 * length 0, so a slot taken over from a dead producer never shows a stale
 * block address. */
static void release_slot(mp__ring *r, struct slot *s, uint64_t base)
{
    atomic_store_explicit(&s->len, 0, memory_order_relaxed);
    publish(s, wmake(base + r->nslots, ST_FREE, 0));
    mp__ev_wake(&r->ev_put);
}

/*
 * Take over a slot claimed (WRITING or READING) by a process that died and
 * free it.  The claim moves to this process first, so dying here is
 * recovered the same way.  The message is dropped; its block, if the
 * length says one was attached, is freed (the dead producer wrote the
 * address before the length; a dead consumer frees blocks only after
 * releasing the slot).
 */
static void recover(mp__ring *r, struct slot *s, uint64_t w)
{
    uint64_t base = wbase(w);
    if (!claim(s, &w, wmake(base, ST_READING, mp__self_pid())))
        return;
    uint64_t n = atomic_load_explicit(&s->len, memory_order_acquire);
    void *blk = NULL;
    if (n > r->inline_max) {
        memcpy(&blk, s->data, sizeof blk);
        atomic_fetch_sub(&r->blk_bytes, (int64_t)n);
    }
    release_slot(r, s, base);
    if (blk != NULL)
        mp__free(blk);
    mp__ev_wake(&r->ev_get);
}

static void fill(mp__ring *r, struct slot *s, const void *buf, size_t len, void *blk)
{
    if (blk != NULL) {
        memcpy(s->data, &blk, sizeof blk);
        /* Counted before the length shows a block: see recover(). */
        atomic_fetch_add(&r->blk_bytes, (int64_t)len);
    } else if (len != 0) {
        if (stop_armed(MP__RING_STOP_PUT)) {
            memcpy(s->data, buf, len / 2);
            stop_now();
        }
        memcpy(s->data, buf, len);
    } else if (stop_armed(MP__RING_STOP_PUT)) {
        stop_now();
    }
    atomic_store_explicit(&s->len, len, memory_order_release);
    if (blk != NULL && stop_armed(MP__RING_STOP_PUT_LARGE))
        stop_now();
}

static void take(mp__ring *r, struct slot *s, uint64_t base, size_t n, void *out)
{
    void *blk = NULL;
    if (n > r->inline_max) {
        memcpy(&blk, s->data, sizeof blk);
        if (stop_armed(MP__RING_STOP_GET))
            stop_now();
    } else if (n != 0) {
        if (stop_armed(MP__RING_STOP_GET)) {
            memcpy(out, s->data, n / 2);
            stop_now();
        }
        memcpy(out, s->data, n);
    }
    if (r->flags & MP__RING_JOINABLE)
        atomic_fetch_add(&r->gets, 1);
    if (blk != NULL)
        atomic_fetch_sub(&r->blk_bytes, (int64_t)n);
    release_slot(r, s, base);
    if (blk != NULL) {
        memcpy(out, blk, n);
        block_put(r, blk);
    }
}

/* ---- overflow ------------------------------------------------------------ */

/* Rebuild tail and count from the list after a holder of the lock died:
 * every single store of append and pop leaves the list walkable. */
static void ovf_repair(mp__ring *r)
{
    uint64_t n = 0;
    mp__ring_node *last = NULL;
    for (mp__ring_node *p = r->ovf_head; p != NULL; p = p->next) {
        last = p;
        n++;
    }
    r->ovf_tail = last;
    atomic_store(&r->ovf_count, n);
}

static void ovf_lock(mp__ring *r)
{
    if (mp__robust_lock(&r->ovf_lock) == 1)
        ovf_repair(r);
}

/* Append to the overflow list; takes blk (if any) only on success. */
static int ovf_put(mp__ring *r, const void *buf, size_t len, void *blk)
{
    mp__ring_node *n = mp__alloc(sizeof *n + (blk != NULL ? 0 : len));
    if (n == NULL)
        return -ENOMEM;
    n->len = len;
    n->blk = blk;
    if (blk == NULL && len != 0)
        memcpy(n->data, buf, len);
    ovf_lock(r);
    if (r->ovf_tail != NULL)
        r->ovf_tail->next = n;
    else
        r->ovf_head = n;
    if (stop_armed(MP__RING_STOP_PUT_OVERFLOW))
        stop_now();
    r->ovf_tail = n;
    atomic_store(&r->ovf_count, atomic_load_explicit(&r->ovf_count, memory_order_relaxed) + 1);
    mp__robust_unlock(&r->ovf_lock);
    mp__ev_wake(&r->ev_get);
    return 0;
}

struct getbuf {
    void *buf;
    size_t size;
    bool alloc;
};

/* The buffer cannot hold an n-byte message: MP_ETOOSHORT, or grow a
 * malloc'd one (0 to retry). */
static int too_short(struct getbuf *gb, size_t n, size_t *outlen)
{
    if (!gb->alloc) {
        *outlen = n;
        return MP_ETOOSHORT;
    }
    void *p = realloc(gb->buf, n ? n : 1);
    if (p == NULL)
        return -ENOMEM;
    gb->buf = p;
    gb->size = n;
    return 0;
}

static int ovf_get(mp__ring *r, struct getbuf *gb, size_t *outlen)
{
    for (;;) {
        ovf_lock(r);
        mp__ring_node *n = r->ovf_head;
        if (n == NULL) {
            mp__robust_unlock(&r->ovf_lock);
            return MP_EEMPTY;
        }
        if (n->len > gb->size || (gb->alloc && gb->buf == NULL)) {
            size_t len = n->len;
            mp__robust_unlock(&r->ovf_lock);
            int rc = too_short(gb, len, outlen);
            if (rc != 0)
                return rc;
            continue;
        }
        r->ovf_head = n->next;
        if (stop_armed(MP__RING_STOP_GET_OVERFLOW))
            stop_now();
        if (r->ovf_head == NULL)
            r->ovf_tail = NULL;
        /* gets before the count: see ring_idle. */
        if (r->flags & MP__RING_JOINABLE)
            atomic_fetch_add(&r->gets, 1);
        atomic_store(&r->ovf_count,
                     atomic_load_explicit(&r->ovf_count, memory_order_relaxed) - 1);
        mp__robust_unlock(&r->ovf_lock);
        if (n->len != 0)
            memcpy(gb->buf, n->blk != NULL ? n->blk : n->data, n->len);
        *outlen = n->len;
        if (n->blk != NULL)
            block_put(r, n->blk);
        mp__free(n);
        return 0;
    }
}

/* ---- put and get --------------------------------------------------------- */

/*
 * The ring is full at position t.  Rather than re-reading the slot that the
 * consumers are about to free (each read pulls the line away from them in
 * the middle of their work), wait until the head hint shows that a batch of
 * slots has been taken, looking at it only every few steps for the same
 * reason.  Spins and sleeps as waiter_step decides; returns 0 when the
 * caller should look at the ring again (a batch is free, or the waiter is
 * armed and wants one last check before sleeping), MP_ETIMEDOUT at d.
 */
static int await_room(mp__ring *r, uint64_t t, mp__waiter *wt, const mp__deadline *d,
                      uint64_t tick_ns)
{
    uint64_t batch = r->nslots >= 64 ? r->nslots / 16 : 1;
    uint64_t want = t - r->nslots + batch;
    for (unsigned i = 0;; i++) {
        if ((i & 15) == 0) {
            uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
            if ((int64_t)(h - want) >= 0)
                return 0;
            mp__waiter_progress(wt, h);
        }
        int rc = mp__waiter_step(wt, &r->ev_put, d, tick_ns);
        if (rc != 0 || wt->armed)
            return rc;
    }
}

static int ring_put(mp__ring *r, const void *buf, size_t len, void *blk, const mp__deadline *d)
{
    bool bounded = r->flags & MP__RING_BOUNDED;
    mp__waiter wt = {0};
    mp__stuck st = {0};
    uint64_t full_since = 0;
    for (;;) {
        /* Once messages overflow, later ones follow them, keeping order. */
        if (!bounded && atomic_load_explicit(&r->ovf_count, memory_order_relaxed) != 0)
            return ovf_put(r, buf, len, blk);
        uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed), base;
        struct slot *s = slot_at(r, t, &base);
        uint64_t w = atomic_load_explicit(&s->w, memory_order_acquire);
        int64_t dd = wdiff(w, base);
        if (dd == 0 && wst(w) == ST_FREE) {
            if (!claim(s, &w, wmake(base, ST_WRITING, mp__self_pid())))
                continue;
            advance(&r->tail, t);
            prefetch_ahead(r, t);
            fill(r, s, buf, len, blk);
            publish(s, wmake(base, ST_FULL, 0));
            mp__ev_wake(&r->ev_get);
            return 0;
        }
        if (dd >= 0) { /* taken by another producer, or a stale tail */
            help(&r->tail, t);
            continue;
        }
        /* The slot still holds the previous lap's message: full here. */
        bool transient = wst(w) != ST_FULL;
        if (transient && mp__stuck_dead(&st, w, wpid(w))) {
            recover(r, s, w);
            continue;
        }
        if (!bounded && !transient) {
            if (d->nowait)
                return ovf_put(r, buf, len, blk);
            uint64_t now = mp__now_ns();
            if (full_since == 0)
                full_since = now;
            else if (now - full_since >= patience_ns)
                return ovf_put(r, buf, len, blk);
        }
        if (d->nowait && !transient)
            return MP_EFULL;
        uint64_t tick = transient || !bounded ? TICK_NS : 0;
        int rc = !transient && !wt.armed ? await_room(r, t, &wt, d, tick)
                                         : mp__waiter_step(&wt, &r->ev_put, d, tick);
        if (rc != 0) {
            /* A short wait never reaches the stuck tick: look once. */
            if (transient && mp__pid_dead(wpid(w))) {
                recover(r, s, w);
                continue;
            }
            return bounded ? MP_EFULL : ovf_put(r, buf, len, blk);
        }
    }
}

/* Bytes in blocks of the messages in the ring, counted from the slots. */
static int64_t count_block_bytes(mp__ring *r)
{
    int64_t sum = 0;
    for (uint64_t i = 0; i < r->nslots; i++) {
        struct slot *s = slot_index(r, i);
        uint64_t n = atomic_load_explicit(&s->len, memory_order_relaxed);
        if (wst(atomic_load(&s->w)) != ST_FREE && n > r->inline_max)
            sum += (int64_t)n;
    }
    return sum;
}

/*
 * Soft backpressure for an unbounded ring: bytes in blocks count against
 * the ring's capacity, so a producer that runs ahead of a consumer waits
 * for it instead of piling up fresh blocks (page faults, then holes
 * punched).  It waits at most the overflow patience: an unbounded put must
 * not block.  A message larger than the whole capacity passes when no
 * other block is pending.  The count is a hint: a process killed between
 * updating it and the slot makes it drift, so a producer that waited in
 * vain recounts it from the slots.
 */
static void pace(mp__ring *r, size_t len, const mp__deadline *d)
{
    uint64_t budget = r->nslots * r->slot_size;
    mp__waiter wt = {0};
    uint64_t since = 0;
    for (;;) {
        int64_t used = atomic_load(&r->blk_bytes);
        if (used <= 0 || (uint64_t)used + len <= budget || d->nowait)
            return;
        uint64_t now = mp__now_ns();
        if (since == 0) {
            since = now;
        } else if (now - since >= patience_ns) {
            atomic_store(&r->blk_bytes, count_block_bytes(r));
            return;
        }
        if (mp__waiter_step(&wt, &r->ev_put, d, TICK_NS) != 0)
            return;
    }
}

int mp__ring_put(mp__ring *r, const void *buf, size_t len, const mp__deadline *d)
{
    void *blk = NULL;
    if (len > r->inline_max) {
        if (!(r->flags & MP__RING_BOUNDED))
            pace(r, len, d);
        /* Copied before any slot is claimed: the claim stays short. */
        blk = block_get(r, len);
        if (blk == NULL)
            return -ENOMEM;
        memcpy(blk, buf, len);
    }
    int rc = ring_put(r, buf, len, blk, d);
    if (rc != 0 && blk != NULL)
        block_put(r, blk);
    return rc;
}

static int ring_get(mp__ring *r, struct getbuf *gb, size_t *outlen, const mp__deadline *d)
{
    mp__waiter wt = {0};
    mp__stuck st = {0};
    for (;;) {
        /*
         * The overflow count is read before the head slot.  Messages
         * overflow only after the ring filled up, so if the count was
         * non-zero and the head slot is still empty afterwards, every
         * ring message older than the overflowing ones has been taken.
         * Read after the slot, a get preempted in between could take an
         * overflow message ahead of a whole ring of older ones.
         */
        uint64_t ovf = atomic_load_explicit(&r->ovf_count, memory_order_acquire);
        uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed), base;
        struct slot *s = slot_at(r, h, &base);
        uint64_t w = atomic_load_explicit(&s->w, memory_order_acquire);
        int64_t dd = wdiff(w, base);
        if (dd > 0 || (dd == 0 && wst(w) == ST_READING)) {
            help(&r->head, h);
            continue;
        }
        bool transient = false;
        if (dd == 0 && wst(w) == ST_FULL) {
            size_t n = atomic_load_explicit(&s->len, memory_order_relaxed);
            if (MP__UNLIKELY(n > gb->size || (gb->alloc && gb->buf == NULL))) {
                /* The length is valid only if the slot did not move on. */
                atomic_thread_fence(memory_order_acquire);
                if (atomic_load_explicit(&s->w, memory_order_relaxed) != w)
                    continue;
                int rc = too_short(gb, n, outlen);
                if (rc != 0)
                    return rc;
                continue;
            }
            if (!claim(s, &w, wmake(base, ST_READING, mp__self_pid())))
                continue;
            advance(&r->head, h);
            prefetch_ahead(r, h);
            take(r, s, base, n, gb->buf);
            *outlen = n;
            return 0;
        }
        if (dd == 0 && wst(w) == ST_WRITING) {
            /* A put is under way at the head: wait for it, not past it. */
            transient = true;
            if (mp__stuck_dead(&st, w, wpid(w))) {
                recover(r, s, w);
                continue;
            }
        } else if (ovf != 0) {
            int rc = ovf_get(r, gb, outlen);
            if (rc != MP_EEMPTY)
                return rc;
            continue;
        }
        if (d->nowait && !transient)
            return MP_EEMPTY;
        if (mp__waiter_step(&wt, &r->ev_get, d, transient ? TICK_NS : 0) != 0) {
            /* A short wait (get_nowait polling, say) never reaches the
             * stuck tick: look once, or a dead claim would block forever
             * every consumer that only polls. */
            if (transient && mp__pid_dead(wpid(w))) {
                recover(r, s, w);
                continue;
            }
            return MP_EEMPTY;
        }
    }
}

int mp__ring_get(mp__ring *r, void *buf, size_t size, void **alloc, size_t *len,
                 const mp__deadline *d)
{
    struct getbuf gb = {alloc ? NULL : buf, alloc ? 0 : size, alloc != NULL};
    size_t n = 0;
    int rc = ring_get(r, &gb, &n, d);
    if (alloc != NULL) {
        if (rc == 0)
            *alloc = gb.buf;
        else
            free(gb.buf);
    }
    if ((rc == 0 || rc == MP_ETOOSHORT) && len != NULL)
        *len = n;
    return rc;
}

/* Move a hint past every position whose slot shows it is already taken
 * (tail: claimed by a producer; head: claimed by a consumer), and return it. */
static uint64_t settle(mp__ring *r, _Atomic uint64_t *pos, bool is_tail)
{
    for (;;) {
        uint64_t p = atomic_load(pos), base;
        struct slot *s = slot_at(r, p, &base);
        uint64_t w = atomic_load_explicit(&s->w, memory_order_acquire);
        int64_t dd = wdiff(w, base);
        bool taken = dd > 0 ||
                     (dd == 0 && (is_tail ? wst(w) != ST_FREE : wst(w) == ST_READING));
        if (!taken)
            return p;
        help(pos, p);
    }
}

uint64_t mp__ring_count(mp__ring *r)
{
    /* head first: a racing get can only make the answer too high, never
     * report a non-empty queue as empty. */
    uint64_t h = settle(r, &r->head, false);
    uint64_t t = settle(r, &r->tail, true);
    uint64_t n = (int64_t)(t - h) > 0 ? t - h : 0;
    if (n > r->nslots)
        n = r->nslots;
    return n + atomic_load(&r->ovf_count);
}

/* ---- JoinableQueue ------------------------------------------------------- */

int mp__ring_task_done(mp__ring *r)
{
    uint64_t done = atomic_load(&r->dones);
    do {
        if (done >= atomic_load(&r->gets))
            return MP_EINVAL;
    } while (!atomic_compare_exchange_weak(&r->dones, &done, done + 1));
    if (done + 1 == atomic_load(&r->gets))
        mp__ev_wake(&r->ev_join);
    return 0;
}

/*
 * No task unfinished: nothing in the ring or the overflow, and as many
 * task_done calls as gets.  Consumers count a get before they release the
 * slot (or drop the overflow count), and dones is read first, so a task
 * is seen either in the queue or in gets - dones; slots are scanned because
 * head may already be past a message being copied out.  Claims of dead
 * processes found on the way are recovered.
 */
static bool ring_idle(mp__ring *r)
{
    uint64_t done = atomic_load(&r->dones);
    if (atomic_load(&r->gets) != done || mp__ring_count(r) != 0)
        return false;
    /* Slots past tail + 1 have never been used in a ring that has not
     * wrapped; they need not be read (reading would commit their memory). */
    uint64_t t = atomic_load(&r->tail);
    uint64_t n = t + 2 < r->nslots ? t + 2 : r->nslots;
    for (uint64_t i = 0; i < n; i++) {
        struct slot *s = slot_index(r, i);
        uint64_t w = atomic_load(&s->w);
        if (wst(w) == ST_FREE)
            continue;
        if (wst(w) != ST_FULL && mp__pid_dead(wpid(w))) {
            recover(r, s, w);
            continue;
        }
        return false;
    }
    return atomic_load(&r->ovf_count) == 0 && atomic_load(&r->gets) == done;
}

int mp__ring_join(mp__ring *r, const mp__deadline *d)
{
    mp__waiter wt = {.no_spin = true};
    for (;;) {
        if (ring_idle(r))
            return 0;
        if (d->nowait)
            return MP_ETIMEDOUT;
        if (mp__waiter_step(&wt, &r->ev_join, d, JOIN_TICK_NS) != 0)
            return MP_ETIMEDOUT;
    }
}

/* ---- teardown ------------------------------------------------------------ */

void mp__ring_destroy(mp__ring *r)
{
    /* Blocks of messages still in the ring; skipped (and the ring's pages
     * left untouched) when no message ever needed one. */
    if (atomic_load(&r->blocks_used)) {
        for (uint64_t i = 0; i < r->nslots; i++) {
            struct slot *s = slot_index(r, i);
            if (atomic_load_explicit(&s->len, memory_order_relaxed) > r->inline_max) {
                void *blk;
                memcpy(&blk, s->data, sizeof blk);
                mp__free(blk);
            }
        }
    }
    mp__ring_node *n = r->ovf_head;
    while (n != NULL) {
        mp__ring_node *next = n->next;
        if (n->blk != NULL)
            mp__free(n->blk);
        mp__free(n);
        n = next;
    }
    r->ovf_head = r->ovf_tail = NULL;
    for (int i = 0; i < MP__RING_CACHE; i++) {
        void *b = atomic_exchange(&r->cache[i], NULL);
        if (b != NULL)
            mp__free(b);
    }
}
