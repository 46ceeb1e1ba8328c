/*
 * internal/sync.h: direct entry points into synchronize.c for the other
 * modules of libmp (sharedctypes, queues, ...).
 *
 * They are the public mp_lock_* functions under hidden names: calls from
 * inside the library then go straight to them instead of through the PLT
 * that every exported (interposable) symbol gets.  Same arguments, same
 * return codes as in synchronize.h.
 */
#ifndef LIBMP_INTERNAL_SYNC_H
#define LIBMP_INTERNAL_SYNC_H

#include "mp.h"

int mp__lock_acquire(mp_lock *l, double timeout);
int mp__lock_release(mp_lock *l);
int mp__lock_is_mine(const mp_lock *l);

/* For tests: the token of the thread whose hold of l is registered (0 if
 * none), and whether a waiter has asked to be woken on the lock's life
 * mutex (so sleeps there, or is about to). */
uint32_t mp__lock_reg(const mp_lock *l);
bool mp__lock_life_waited(const mp_lock *l);

/*
 * A watch on a long wait: the sleep is cut into slices of slice_ns, and
 * between slices gone(arg) is asked; true ends the wait with MP_EEOF (the
 * object's owner, a manager's server, is gone).  Slicing is invisible to
 * the waits below: a slice that ends only puts the waiter back to sleep.
 */
typedef struct mp__watch {
    bool (*gone)(void *arg);
    void *arg;
    long slice_ns;
} mp__watch;

/* mp__futex_wait under a watch (w NULL: no watch): 0, MP_ETIMEDOUT when d
 * passed, -EINTR, or MP_EEOF when w says the owner is gone. */
int mp__futex_wait_watched(uint32_t *word, uint32_t expected, const mp__deadline *d,
                           const mp__watch *w);

/*
 * mp_condition_wait and mp_barrier_wait under a watch.  When the watch ends
 * the wait, the Condition's lock is NOT taken back (its owner is gone; the
 * waiter's record stays linked, freed with the condition), and the Barrier
 * is broken (the other parties wake with MP_EBROKEN).  MP_EEOF then.
 */
int mp__condition_wait_watched(mp_condition *c, double timeout, const mp__watch *w);
int mp__barrier_wait_watched(mp_barrier *b, double timeout, const mp__watch *w);

#endif /* LIBMP_INTERNAL_SYNC_H */
