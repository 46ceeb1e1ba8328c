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

#endif /* LIBMP_INTERNAL_SYNC_H */
