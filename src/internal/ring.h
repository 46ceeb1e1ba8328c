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

#define MP__RING_CACHE 4          /* recycled message blocks kept per ring */
#define MP__RING_SLOT_HEADER 16   /* state word + length */

enum {
    MP__RING_BOUNDED = 1u << 0,   /* maxsize > 0: the ring is the limit */
    MP__RING_JOINABLE = 1u << 1,  /* count gets for task_done / join */
};

typedef struct mp__ring_node mp__ring_node;

typedef struct mp__ring {
    /* Geometry, written once before the ring is shared. */
    uint64_t nslots;
    uint64_t mask;                /* nslots - 1 for a power of two, else 0 */
    uint32_t slot_size;
    uint32_t inline_max;          /* slot_size - MP__RING_SLOT_HEADER */
    uint32_t flags;
    unsigned char *slots;         /* arena address */

    /* Producers' and consumers' positions, on lines of their own. */
    _Atomic uint64_t tail MP__ALIGNED(MP__CACHELINE);
    _Atomic uint64_t head MP__ALIGNED(MP__CACHELINE);

    /* Event counts (futex words): bit 0 set means someone may sleep. */
    _Atomic uint32_t ev_get MP__ALIGNED(MP__CACHELINE);
    _Atomic uint32_t ev_put MP__ALIGNED(MP__CACHELINE);

    /* Overflow list of an unbounded ring whose slots are all taken. */
    _Atomic uint64_t ovf_count MP__ALIGNED(MP__CACHELINE);
    pthread_mutex_t ovf_lock MP__ALIGNED(MP__CACHELINE);
    mp__ring_node *ovf_head;
    mp__ring_node *ovf_tail;

    /* JoinableQueue accounting. */
    _Atomic uint64_t gets MP__ALIGNED(MP__CACHELINE);
    _Atomic uint64_t dones;
    _Atomic uint32_t ev_join;

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
int mp__ring_geometry(long maxsize, size_t capacity, size_t slot_size,
                      uint64_t *nslots, uint32_t *slot_size_out);

/* Initialise a ring whose slots (nslots * slot_size zero bytes) are at
 * slots.  0 or a negative code. */
int mp__ring_init(mp__ring *r, unsigned char *slots, uint64_t nslots,
                  uint32_t slot_size, uint32_t flags);

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

/* The calling process's pid, cached (refreshed in a forked child). */
pid_t mp__self_pid(void);

/*
 * Test hook: make the next put or get of this process that reaches point
 * stop there: it writes one byte to fd (if fd >= 0), then sleeps until it
 * is killed.  Only for tests that SIGKILL a process mid-operation.
 */
enum mp__ring_stop {
    MP__RING_STOP_NONE = 0,
    MP__RING_STOP_PUT,            /* slot claimed, half the message written */
    MP__RING_STOP_PUT_LARGE,      /* slot claimed, large block attached */
    MP__RING_STOP_GET,            /* slot claimed, half the message copied */
    MP__RING_STOP_PUT_OVERFLOW,   /* overflow lock held, node half linked */
    MP__RING_STOP_GET_OVERFLOW,   /* overflow lock held, node half unlinked */
};
void mp__ring_stop_at(int point, int fd);

/* Test hook: how long an unbounded ring must stay full before messages
 * overflow, in this process (0: the default, 100 ms). */
void mp__ring_set_patience(uint64_t ns);

#endif /* LIBMP_INTERNAL_RING_H */
