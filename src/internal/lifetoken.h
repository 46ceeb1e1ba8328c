/*
 * internal/lifetoken.h: per-thread life tokens (lifetoken.c), the owner
 * identity of libmp's Lock and RLock.
 *
 * Every thread that takes a libmp lock claims, once, a slot of a table in
 * the shared arena.  The slot holds a robust process-shared mutex that the
 * thread keeps locked for as long as it lives, and a generation counter.
 * The thread's token packs the slot index and the generation it claimed the
 * slot at: a 31-bit value, never 0, unique among the live threads of the
 * family.  The token is dead once the slot's generation moved on (the
 * thread exited and released the slot) or the kernel marked the slot's
 * mutex FUTEX_OWNER_DIED (the thread died, however it died).  See
 * docs/synchronize.md, "How they are built".
 */
#ifndef LIBMP_INTERNAL_LIFETOKEN_H
#define LIBMP_INTERNAL_LIFETOKEN_H

#include "mp.h"

/* The bit of a lock word that says a waiter may be asleep on it; never part
 * of a token. */
#define MP__TOKEN_WAITERS 0x80000000u

/* The calling thread's token, 0 before its first claim (and in a forked
 * child until it claims its own). */
extern __thread uint32_t mp__token_cache;

/*
 * Claim a slot for the calling thread and store its token in *out (and in
 * mp__token_cache).  0, -ENOMEM, -EAGAIN when every slot of the table is
 * held by a live thread, or -ENOTSUP when the C library's robust mutex does
 * not keep its futex word where lifetoken.c expects it.
 */
int mp__token_claim(uint32_t *out);

/* The calling thread's token, claiming it on first use: 0 or as above. */
static inline int mp__token_self(uint32_t *out)
{
    uint32_t t = mp__token_cache;
    if (MP__LIKELY(t != 0)) {
        *out = t;
        return 0;
    }
    return mp__token_claim(out);
}

/* True when the thread that owned token is gone (also for a token that
 * names no slot). */
bool mp__token_dead(uint32_t token);

/*
 * Sleep while *word == expected and the thread with token holder lives,
 * until woken or d expires.  Returns 1 when it slept and was woken, 0 when
 * it did not sleep (look at the word again either way; wake-ups may be
 * spurious), or MP_ETIMEDOUT.  Uses FUTEX_WAITV on the word and the
 * holder's life word; without it, sleeps on the word in slices and looks at
 * the holder between slices.
 */
int mp__token_wait(uint32_t *word, uint32_t expected, uint32_t holder, const mp__deadline *d);

/*
 * The futex word inside a robust mutex made by mp__robust_mutex_init: the
 * word the kernel marks FUTEX_OWNER_DIED (and wakes one waiter of, if
 * FUTEX_WAITERS is set) when the thread holding the mutex dies.  Valid
 * once mp__token_claim has succeeded in this process (it checks the C
 * library's layout).
 */
_Atomic uint32_t *mp__robust_word(pthread_mutex_t *m);

/* Tests set this to force the sliced sleep that replaces FUTEX_WAITV on
 * kernels without it (ENOSYS).  Also set when the kernel says ENOSYS. */
extern _Atomic bool mp__token_no_waitv;

/* Tests lower this to fill the table: claims look at slots below it only
 * (process-local; 32768, the whole table, by default). */
extern uint32_t mp__token_limit;

/* The length of one slice of the sliced sleep, in nanoseconds. */
#define MP__TOKEN_SLICE_NS 50000000L

#endif /* LIBMP_INTERNAL_LIFETOKEN_H */
