/*
 * handles.c: the process-local table of descriptors owned by shared objects.
 *
 * The table maps an fd number to the shared object that owns it.  It is
 * two-level (1024 chunks of 1024 slots, chunks allocated on first use and
 * installed with a compare-and-swap), so no lock is ever taken: a fork in
 * the middle of an update cannot leave a child with a held lock.
 */
#include "internal/mp.h"

#include <stdatomic.h>
#include <stdlib.h>

#define CHUNK_BITS 10
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define NCHUNKS 1024u

typedef _Atomic(const void *) slot;
static _Atomic(slot *) chunks[NCHUNKS];
/* One past the highest chunk installed: mp__fd_foreach stops there (and
 * does not read, in a new child, pages of the table nobody used). */
static atomic_uint chunks_used;

static slot *slot_for(int fd, bool create)
{
    if (fd < 0 || (unsigned)fd >= CHUNK_SIZE * NCHUNKS)
        return NULL;
    unsigned c = (unsigned)fd >> CHUNK_BITS;
    slot *chunk = atomic_load_explicit(&chunks[c], memory_order_acquire);
    if (chunk == NULL) {
        if (!create)
            return NULL;
        slot *fresh = calloc(CHUNK_SIZE, sizeof *fresh);
        if (fresh == NULL)
            return NULL;
        slot *expected = NULL;
        if (atomic_compare_exchange_strong(&chunks[c], &expected, fresh)) {
            chunk = fresh;
            unsigned used = atomic_load(&chunks_used);
            while (used < c + 1 && !atomic_compare_exchange_weak(&chunks_used, &used, c + 1))
                ;
        } else {
            free(fresh);
            chunk = expected;
        }
    }
    return &chunk[(unsigned)fd & (CHUNK_SIZE - 1)];
}

int mp__fd_register(int fd, const void *owner)
{
    slot *s = slot_for(fd, true);
    if (s == NULL)
        return fd < 0 ? MP_EINVAL : -ENOMEM;
    atomic_store_explicit(s, owner, memory_order_release);
    return 0;
}

void mp__fd_unregister(int fd)
{
    slot *s = slot_for(fd, false);
    if (s != NULL)
        atomic_store_explicit(s, NULL, memory_order_release);
}

bool mp__fd_owned(int fd, const void *owner)
{
    slot *s = slot_for(fd, false);
    return s != NULL && owner != NULL &&
           atomic_load_explicit(s, memory_order_acquire) == owner;
}

void mp__fd_foreach(void (*fn)(int fd, const void *owner, void *ctx), void *ctx)
{
    unsigned used = atomic_load_explicit(&chunks_used, memory_order_acquire);
    for (unsigned c = 0; c < used; c++) {
        slot *chunk = atomic_load_explicit(&chunks[c], memory_order_acquire);
        if (chunk == NULL)
            continue;
        for (unsigned i = 0; i < CHUNK_SIZE; i++) {
            const void *owner = atomic_load_explicit(&chunk[i], memory_order_relaxed);
            if (owner != NULL)
                fn((int)(c * CHUNK_SIZE + i), owner, ctx);
        }
    }
}
