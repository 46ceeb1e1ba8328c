/*
 * libmp/heap.h: raw shared memory from the arena (Python's heap.py).
 *
 * Every libmp object lives in one shared arena that is mapped at the same
 * address in every process of the program family, under every start
 * method.  These functions hand out plain memory from it: a pointer
 * returned here can be stored anywhere (in another shared block, in a
 * process argument, in a queue message) and used unchanged by any process
 * of the family.  The arena is a memfd: nothing appears in /dev/shm, and the
 * memory goes back to the system when the last process of the family ends,
 * however it ends.
 */
#ifndef LIBMP_HEAP_H
#define LIBMP_HEAP_H

#include "common.h"

MP_BEGIN_DECLS

/*
 * mp_shared_alloc: allocate size bytes of zeroed shared memory.
 *
 * size  bytes wanted; 0 is treated as 1.
 *
 * Returns the block, aligned to 64 bytes when size >= 64 (16 otherwise),
 * or NULL when the arena is exhausted or cannot be created (mp_last_error()
 * says why: -ENOMEM, or the error that creating the arena met).  The block
 * belongs to the caller until mp_shared_free; any process of the family may
 * free it.  Thread-safe and usable from every process of the family at
 * once.  Blocks of 64 KiB and more are whole pages given back to the system
 * when freed (but for a few recent ones, see mp_shared_alloc_uninit).
 */
MP_EXTERN void *mp_shared_alloc(size_t size);

/*
 * mp_shared_alloc_uninit: mp_shared_alloc without the zeroing, for a block
 * the caller fills anyway (a large message handed off through a Queue,
 * docs/queues.md).  A block of 64 KiB to 4 MiB may be one that was freed a
 * moment ago, with its old bytes and its pages still mapped: taking and
 * freeing such blocks costs no lock, no system call and no page fault (up
 * to 64 blocks of at most 1 MiB and 16 larger ones are kept).  Smaller
 * blocks are zeroed as by mp_shared_alloc.  Same returns, ownership and
 * thread- and fork-safety as mp_shared_alloc; free with mp_shared_free.
 */
MP_EXTERN void *mp_shared_alloc_uninit(size_t size);

/*
 * mp_shared_free: give back a block from mp_shared_alloc.
 *
 * ptr  the block; NULL is a no-op.
 *
 * Returns 0, or MP_EINVAL when ptr is not the start of a live block of the
 * arena (a pointer from malloc, into the middle of a block, or a double
 * free that can be seen).  Any process of the family may free any block.
 */
MP_EXTERN int mp_shared_free(void *ptr);

/*
 * mp_shared_size: the usable size of a block from mp_shared_alloc, which is
 * at least the size asked for; 0 when ptr is not a block of the arena.
 */
MP_EXTERN size_t mp_shared_size(const void *ptr);

MP_END_DECLS

#endif /* LIBMP_HEAP_H */
