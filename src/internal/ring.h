/*
 * internal/ring.h: the shared-memory MPMC ring behind the queues (ring.c).
 *
 * A ring is embedded in a shared object; its slots follow it in the same
 * arena block.  Every field is shared between processes; the only pointers
 * stored are arena addresses, which are the same in every process.
 * docs/queues.md describes the protocol and why it survives SIGKILL.
 */
#ifndef LIBMP_INTERNAL_RING_H
#define LIBMP_INTERNAL_RING_H

#include "internal/mp.h"

#include <stdatomic.h>

#define MP__RING_CACHE 4        /* recycled message blocks kept per ring */
#define MP__RING_SLOT_HEADER 16 /* state word + length */

enum {
    MP__RING_BOUNDED = 1u << 0,  /* maxsize > 0: the ring is the limit */
    MP__RING_JOINABLE = 1u << 1, /* count gets for task_done / join */
};

typedef struct mp__ring_node mp__ring_node;

/*
 * An event count (ring_wait.c): the futex word, bit 0 set when someone may
 * sleep on it, and how the processes that wake it publish: plain stores
 * (MP__EVC_PLAIN, the sleeper issues a membarrier) or followed by a full
 * fence (MP__EVC_FENCED, the sleeper need not).  docs/queues.md, "Waiting".
 */
enum { MP__EVC_PLAIN = 0, MP__EVC_SWITCHING = 1, MP__EVC_FENCED = 2 };

typedef struct mp__evc {
    _Atomic uint32_t count;
    _Atomic uint32_t fenced;
} mp__evc;

typedef struct mp__ring {
    /* Geometry, written once before the ring is shared. */
    uint64_t nslots;
    uint64_t mask; /* nslots - 1 for a power of two, else 0 */
    uint32_t slot_size;
    uint32_t inline_max; /* slot_size - MP__RING_SLOT_HEADER */
    uint32_t flags;
    unsigned char *slots; /* arena address */

    /* Producers' and consumers' positions, on lines of their own. */
    _Atomic uint64_t tail MP__ALIGNED(MP__CACHELINE);
    _Atomic uint64_t head MP__ALIGNED(MP__CACHELINE);

    /* Event counts (futex words): bit 0 set means someone may sleep. */
    mp__evc ev_get MP__ALIGNED(MP__CACHELINE);
    mp__evc ev_put MP__ALIGNED(MP__CACHELINE);

    /* Overflow list of an unbounded ring whose slots are all taken. */
    _Atomic uint64_t ovf_count MP__ALIGNED(MP__CACHELINE);
    pthread_mutex_t ovf_lock MP__ALIGNED(MP__CACHELINE);
    mp__ring_node *ovf_head;
    mp__ring_node *ovf_tail;

    /* JoinableQueue accounting. */
    _Atomic uint64_t gets MP__ALIGNED(MP__CACHELINE);
    _Atomic uint64_t dones;
    mp__evc ev_join;

    /* Freed message blocks kept for the next large message. */
    _Atomic(void *) cache[MP__RING_CACHE] MP__ALIGNED(MP__CACHELINE);
    _Atomic uint32_t blocks_used; /* some message ever needed a block */
    _Atomic int64_t blk_bytes;    /* bytes in blocks of ring messages */
} mp__ring;

/*
 * Geometry for a ring: nslots slots of slot_size bytes.  slot_size 0 means
 * the default; maxsize > 0 gives a bounded ring of exactly maxsize slots,
 * otherwise capacity (0: default) bytes rounded down to a power of two
 * number of slots.  0 or MP_EINVAL.
 */
int mp__ring_geometry(long maxsize, size_t capacity, size_t slot_size, uint64_t *nslots,
                      uint32_t *slot_size_out);

/* Initialise a ring whose slots (nslots * slot_size zero bytes) are at
 * slots.  0 or a negative code. */
int mp__ring_init(mp__ring *r, unsigned char *slots, uint64_t nslots, uint32_t slot_size,
                  uint32_t flags);

/* Release every message still held (blocks, overflow nodes, cache). */
void mp__ring_destroy(mp__ring *r);

/* Put len bytes; 0, MP_EFULL (bounded ring still full at d), -ENOMEM. */
int mp__ring_put(mp__ring *r, const void *buf, size_t len, const mp__deadline *d);

/*
 * Get the oldest message.  Into buf (size bytes) when alloc is NULL: 0,
 * MP_ETOOSHORT (*len = needed size, message kept) or MP_EEMPTY at d.  With
 * alloc non-NULL, *alloc receives a malloc'd copy (never NULL); -ENOMEM
 * leaves the message in the ring.
 */
int mp__ring_get(mp__ring *r, void *buf, size_t size, void **alloc, size_t *len,
                 const mp__deadline *d);

/* Messages held (see mp_queue_qsize). */
uint64_t mp__ring_count(mp__ring *r);

/* JoinableQueue: task_done (0 or MP_EINVAL) and join (0 or MP_ETIMEDOUT). */
int mp__ring_task_done(mp__ring *r);
int mp__ring_join(mp__ring *r, const mp__deadline *d);

/* ---- waiting (ring_wait.c) ---------------------------------------------- */

#define MP__RING_TICK_NS 1000000u /* a claim unchanged this long is checked */

/* The calling process's pid, cached (refreshed in a forked child).  The
 * first call also registers the process for membarrier. */
pid_t mp__self_pid(void);

/* 1: this process publishes with plain release stores (registered for
 * MEMBARRIER_CMD_GLOBAL_EXPEDITED); -1: with sequentially consistent
 * exchanges; 0: not set up yet (mp__self_pid does it). */
extern _Atomic int mp__ring_fenceless;

/* True when pid has ended (gone, or a zombie); unknown counts as alive. */
bool mp__pid_dead(pid_t pid);

/*
 * Event counts.  A sleeper sets bit 0 (mp__ev_arm), re-checks its condition
 * and sleeps on the value returned; a waker that has just made progress
 * visible calls mp__ev_wake, which costs two loads of one cache line unless
 * bit 0 is set (and a fence while the count is in fenced mode).  busy: the
 * machine is oversubscribed, so the count is switched to fenced publication
 * and sleepers skip the membarrier.
 */
uint32_t mp__ev_arm(mp__evc *e, bool busy);
void mp__ev_wake_slow(mp__evc *e, uint32_t k);

static inline void mp__ev_wake(mp__evc *e)
{
    /* The fenced word is read after the caller's store and before the
     * count (ring_wait.c says why that order matters). */
    if (MP__UNLIKELY(atomic_load_explicit(&e->fenced, memory_order_acquire) != MP__EVC_PLAIN))
        atomic_thread_fence(memory_order_seq_cst);
    uint32_t k = atomic_load(&e->count);
    if (MP__UNLIKELY(k & 1u))
        mp__ev_wake_slow(e, k);
}

/* The state of one wait; zero-initialise (no_spin: arm at once). */
typedef struct mp__waiter {
    uint64_t start;
    uint64_t progress;
    uint32_t spins;
    uint32_t key;
    bool armed;
    bool no_spin;
    bool busy; /* the machine was oversubscribed when the wait began */
} mp__waiter;

/*
 * One step of waiting for a condition the caller re-evaluates after every
 * step: spin, then arm ev, then sleep until woken, d, or a slice of tick_ns
 * (0: none).  0 to re-evaluate, MP_ETIMEDOUT when d has passed.
 */
int mp__waiter_step(mp__waiter *wt, mp__evc *ev, const mp__deadline *d, uint64_t tick_ns);

/*
 * The other side moved (progress is a position it advances): restart the
 * spin budget.  A producer facing a consumer that keeps taking messages
 * then keeps spinning instead of going to sleep, which would cost the
 * consumer a wake-up system call for every slot it frees; against a
 * consumer that stalls for a whole budget it still sleeps.
 */
static inline void mp__waiter_progress(mp__waiter *wt, uint64_t progress)
{
    if (progress != wt->progress) {
        wt->progress = progress;
        wt->start = 0;
    }
}

/* A claim seen unchanged: is it stuck because its process (pid) died?
 * Checks at most once per MP__RING_TICK_NS; zero-initialise. */
typedef struct mp__stuck {
    uint64_t w;
    uint64_t since;
} mp__stuck;

bool mp__stuck_dead(mp__stuck *st, uint64_t w, pid_t pid);

/*
 * Test hook: make the next put or get of this process that reaches point
 * stop there: it writes one byte to fd (if fd >= 0), then sleeps until it
 * is killed.  Only for tests that SIGKILL a process mid-operation.
 */
enum mp__ring_stop {
    MP__RING_STOP_NONE = 0,
    MP__RING_STOP_PUT,          /* slot claimed, half the message written */
    MP__RING_STOP_PUT_LARGE,    /* slot claimed, large block attached */
    MP__RING_STOP_GET,          /* slot claimed, half the message copied */
    MP__RING_STOP_PUT_OVERFLOW, /* overflow lock held, node half linked */
    MP__RING_STOP_GET_OVERFLOW, /* overflow lock held, node half unlinked */
};
void mp__ring_stop_at(int point, int fd);

/* Test hook: how long an unbounded ring must stay full before messages
 * overflow, in this process (0: the default, 100 ms). */
void mp__ring_set_patience(uint64_t ns);

#endif /* LIBMP_INTERNAL_RING_H */
