/*
 * libmp/synchronize.h: locks, semaphores, conditions, events and barriers
 * shared between processes, as multiprocessing.synchronize.
 *
 *   Python                                   C
 *   l = Lock()                               mp_lock *l = mp_lock_new();
 *   r = RLock()                              mp_rlock *r = mp_rlock_new();
 *   l.acquire(block, timeout)                mp_lock_acquire(l, timeout)   (0 / MP_ETIMEDOUT)
 *   l.acquire(False)                         mp_lock_acquire(l, 0)
 *   l.release()                              mp_lock_release(l)
 *   with l: ...                              mp_lock_acquire(l, MP_FOREVER); ...; mp_lock_release(l);
 *   l.locked()                               mp_lock_locked(l)
 *   s = Semaphore(3)                         mp_semaphore *s = mp_semaphore_new(.value = 3);
 *   s = BoundedSemaphore(3)                  mp_bounded_semaphore_new(.value = 3)
 *   s.acquire(timeout=t) / s.release()       mp_semaphore_acquire(s, t) / mp_semaphore_release(s)
 *   s.get_value()                            mp_semaphore_get_value(s)
 *   c = Condition(lock=None)                 mp_condition *c = mp_condition_new();  (.lock = l)
 *   c.wait(timeout)                          mp_condition_wait(c, timeout)   (0 / MP_ETIMEDOUT)
 *   c.wait_for(predicate, timeout)           mp_condition_wait_for(c, pred, arg, timeout)
 *   c.notify(n) / c.notify_all()             mp_condition_notify(c, n) / mp_condition_notify_all(c)
 *   e = Event()                              mp_event *e = mp_event_new();
 *   e.set() / e.clear() / e.is_set()         mp_event_set(e) / mp_event_clear(e) / mp_event_is_set(e)
 *   e.wait(timeout) -> bool                  mp_event_wait(e, timeout)       (0 = True / MP_ETIMEDOUT)
 *   b = Barrier(3, action=f, timeout=1.0)    mp_barrier *b = mp_barrier_new(.parties = 3, .action = f,
 *                                                                           .timeout = 1.0);
 *   b.wait(timeout) -> index                 mp_barrier_wait(b, timeout)     (index or MP_EBROKEN)
 *   b.reset() / b.abort()                    mp_barrier_reset(b) / mp_barrier_abort(b)
 *   b.parties / n_waiting / broken           mp_barrier_parties(b) / _n_waiting(b) / _broken(b)
 *   threading.BrokenBarrierError             MP_EBROKEN
 *   (object freed by garbage collection)     mp_X_free(x)
 *
 * Every object lives in the shared arena: the pointer is valid, unchanged,
 * in every process of the family under every start method, so it can be
 * passed to a child inside its argument bytes.  Exactly one process frees
 * an object, when no process uses it any more.
 *
 * Return values follow Python's booleans: 0 is True ("acquired", "was
 * set", "notified"), MP_ETIMEDOUT is False.  Timeouts are seconds (see
 * common.h): MP_FOREVER blocks, 0 tries once.  A signal delivered to a
 * waiting thread runs its handler and the wait goes on against the same
 * deadline (these calls never return -EINTR, as pthread_mutex_lock).
 *
 * Beyond Python: a Lock or RLock whose holder dies (a process killed with
 * SIGKILL, or a thread that exits) is handed to the next acquirer with
 * MP_EOWNERDEAD instead of staying locked forever.  docs/synchronize.md
 * lists every departure from Python's semantics.
 *
 * C++ has no compound literals (before C++20, see common.h): fill a
 * zero-initialised struct and call the _opts function, e.g.
 *     mp_semaphore_options o = {};
 *     o.value = 2;
 *     ... = mp_semaphore_new_opts(&o);
 */
#ifndef LIBMP_SYNCHRONIZE_H
#define LIBMP_SYNCHRONIZE_H

#include <stdbool.h>

#include "common.h"

MP_BEGIN_DECLS

/* ==== Lock and RLock ===================================================== */

/*
 * A Lock and an RLock are the same C type: mp_rlock is another name for
 * mp_lock, every mp_lock_* function works on both, and a Condition, a Value
 * or an Array accepts either as its lock.  The mp_rlock_* names are aliases
 * for readability.
 *
 * The holder is a thread of a process (Python's (pid, thread id)).  Only the
 * holder may release: releasing a Lock from another thread or process is
 * MP_EINVAL (Python allows it for Lock; see docs/synchronize.md, and use a
 * Semaphore for cross-process signalling).
 */
typedef struct mp_lock mp_lock;
typedef struct mp_lock mp_rlock;

typedef struct mp_lock_options {
    size_t struct_size; /* sizeof: the macros set it; 0 is the 0.1 layout (common.h) */
    mp_context *ctx;    /* accepted for symmetry with Python; unused */
} mp_lock_options;

/*
 * mp_lock_new: a new, unlocked, non-recursive lock (Python's Lock()).
 * mp_rlock_new: a new, unlocked, recursive lock (Python's RLock()): its
 * holder may acquire it again and must release it as many times.
 *
 * Options (designated initializers, all optional): .ctx.
 *
 * Returns the lock, owned by the caller (mp_lock_free), or NULL with
 * mp_last_error() set: -ENOMEM when the arena is full, or the error met
 * creating the arena.  Fork-safe: the lock may be created before or after
 * a fork and used by every process of the family.
 */
#define mp_lock_new(...) mp_lock_new_opts(MP__OPTS(mp_lock_options, __VA_ARGS__))
#define mp_rlock_new(...) mp_rlock_new_opts(MP__OPTS(mp_lock_options, __VA_ARGS__))
MP_EXTERN mp_lock *mp_lock_new_opts(const mp_lock_options *opts);
MP_EXTERN mp_rlock *mp_rlock_new_opts(const mp_lock_options *opts);

/*
 * mp_lock_acquire: take the lock (Python's acquire(block, timeout)).
 *
 * timeout  MP_FOREVER blocks until the lock is free, 0 tries once, t > 0
 *          waits at most t seconds.
 *
 * Returns:
 *   0               the caller holds the lock (for an RLock already held by
 *                   the caller: the recursion level went up by one);
 *   MP_EOWNERDEAD   the caller holds the lock, but its previous holder died
 *                   while holding it: what the lock protects may be half
 *                   updated.  The lock itself works normally afterwards (an
 *                   RLock is held once, whatever the dead holder's level);
 *   MP_ETIMEDOUT    not acquired within the timeout (Python's False);
 *   -EDEADLK        a Lock (not RLock) already held by the calling thread,
 *                   with MP_FOREVER: Python would hang forever.  With a
 *                   finite timeout the call waits and returns MP_ETIMEDOUT,
 *                   as in Python;
 *   -EAGAIN         an RLock's recursion level would pass UINT32_MAX; or
 *                   this is the calling thread's first acquire and 32768
 *                   threads of the family that took libmp locks are alive
 *                   (each holds one life token until it exits: see
 *                   docs/synchronize.md);
 *   -ENOMEM         the calling thread's first acquire found no arena
 *                   memory for its life token;
 *   -ENOTSUP        the C library's robust mutexes are not laid out as
 *                   glibc's or musl's (a holder's death could not be seen);
 *   MP_EINVAL       l is NULL or freed, or the timeout is invalid.
 * Uncontended, acquire and release each cost one atomic instruction and no
 * system call.  Thread-safe; usable from every process of the family.
 */
MP_EXTERN int mp_lock_acquire(mp_lock *l, double timeout);

/*
 * mp_lock_release: release the lock (for an RLock: one recursion level).
 *
 * Returns 0, or MP_EINVAL when l is NULL or freed, when the lock is not
 * held, or when it is held by another thread or process (see above).
 */
MP_EXTERN int mp_lock_release(mp_lock *l);

/*
 * mp_lock_locked: 1 if some thread of some process holds the lock (also a
 * holder that died and whose lock nobody took over yet), 0 if it is free,
 * MP_EINVAL for NULL or a freed lock.  The answer may be stale by the time
 * it is read.
 */
MP_EXTERN int mp_lock_locked(const mp_lock *l);

/*
 * mp_lock_is_mine: 1 if the calling thread holds the lock, 0 if not,
 * MP_EINVAL for NULL or a freed lock (Python's private _is_mine()).
 */
MP_EXTERN int mp_lock_is_mine(const mp_lock *l);

/*
 * mp_lock_count: the recursion level the calling thread holds the lock at
 * (0 when it does not hold it; a held Lock is 1), or MP_EINVAL.
 */
MP_EXTERN int mp_lock_count(const mp_lock *l);

/*
 * mp_lock_free: release the object.  NULL and already freed locks are
 * ignored.  If the calling thread holds the lock it is released first.  If
 * another thread holds it, the object is freed all the same: that thread's
 * later calls with it return MP_EINVAL (as long as the memory was not
 * reused for another lock).  No thread may be waiting on it.
 */
MP_EXTERN void mp_lock_free(mp_lock *l);

#define mp_rlock_acquire mp_lock_acquire
#define mp_rlock_release mp_lock_release
#define mp_rlock_locked mp_lock_locked
#define mp_rlock_is_mine mp_lock_is_mine
#define mp_rlock_count mp_lock_count
#define mp_rlock_free mp_lock_free

/* ==== Semaphore and BoundedSemaphore ===================================== */

/*
 * A BoundedSemaphore is an mp_semaphore whose value may never rise above
 * its initial value; mp_bounded_semaphore is another name for the type.
 */
typedef struct mp_semaphore mp_semaphore;
typedef struct mp_semaphore mp_bounded_semaphore;

typedef struct mp_semaphore_options {
    size_t struct_size; /* sizeof: the macros set it; 0 is the 0.1 layout (common.h) */
    int value;          /* initial value, 0 .. INT32_MAX (default 0, see below) */
    mp_context *ctx;    /* accepted for symmetry with Python; unused */
} mp_semaphore_options;

/*
 * mp_semaphore_new: a counting semaphore (Python's Semaphore(value)).
 * mp_bounded_semaphore_new: one that refuses to be released above its
 * initial value (Python's BoundedSemaphore(value)).
 *
 * Options: .value, the initial value.  Left out, it is 0, not Python's 1
 * (C cannot tell a field left out from one set to 0): write .value = 1.
 *
 * Returns the semaphore, owned by the caller (mp_semaphore_free), or NULL
 * with mp_last_error() set: MP_EINVAL for a negative value, -ENOMEM.
 */
#define mp_semaphore_new(...) \
    mp_semaphore_new_opts(MP__OPTS(mp_semaphore_options, __VA_ARGS__))
#define mp_bounded_semaphore_new(...) \
    mp_bounded_semaphore_new_opts(MP__OPTS(mp_semaphore_options, __VA_ARGS__))
MP_EXTERN mp_semaphore *mp_semaphore_new_opts(const mp_semaphore_options *opts);
MP_EXTERN mp_bounded_semaphore *
mp_bounded_semaphore_new_opts(const mp_semaphore_options *opts);

/*
 * mp_semaphore_acquire: decrement the value, waiting while it is 0.
 *
 * Returns 0 (decremented), MP_ETIMEDOUT (still 0 at the timeout), or
 * MP_EINVAL (s NULL or freed, bad timeout).  Waiters are not served in a
 * guaranteed order.  Any thread of any process may acquire and release.
 */
MP_EXTERN int mp_semaphore_acquire(mp_semaphore *s, double timeout);

/*
 * mp_semaphore_release: increment the value, waking one waiter if any.
 *
 * Returns 0; MP_EINVAL for NULL or freed, and for a bounded semaphore
 * already at its initial value (Python's ValueError "released too many
 * times"; the check and the increment are one atomic step); -EOVERFLOW
 * when the value is INT32_MAX.
 */
MP_EXTERN int mp_semaphore_release(mp_semaphore *s);

/* mp_semaphore_get_value: the current value (>= 0), or MP_EINVAL. */
MP_EXTERN int mp_semaphore_get_value(const mp_semaphore *s);

/* mp_semaphore_locked: 1 if the value is 0 (acquire would block), 0 if
 * not, MP_EINVAL for NULL or freed. */
MP_EXTERN int mp_semaphore_locked(const mp_semaphore *s);

/* mp_semaphore_free: release the object; NULL is a no-op.  No thread may
 * be waiting on it. */
MP_EXTERN void mp_semaphore_free(mp_semaphore *s);

#define mp_bounded_semaphore_acquire mp_semaphore_acquire
#define mp_bounded_semaphore_release mp_semaphore_release
#define mp_bounded_semaphore_get_value mp_semaphore_get_value
#define mp_bounded_semaphore_locked mp_semaphore_locked
#define mp_bounded_semaphore_free mp_semaphore_free

/* ==== Condition ========================================================== */

typedef struct mp_condition mp_condition;

/* A wait_for predicate: called in the waiting process, with the lock held;
 * returns true when the awaited state is reached. */
typedef bool (*mp_predicate_fn)(void *arg);

typedef struct mp_condition_options {
    size_t struct_size; /* sizeof: the macros set it; 0 is the 0.1 layout (common.h) */
    mp_lock *lock;      /* a Lock or RLock to use; NULL: a new RLock of its own */
    mp_context *ctx;    /* accepted for symmetry with Python; unused */
} mp_condition_options;

/*
 * mp_condition_new: a condition variable (Python's Condition(lock)).
 *
 * Options: .lock, the lock (Lock or RLock) the condition uses; left out, the
 * condition makes an RLock of its own, freed with it.  A given lock stays
 * the caller's: it must outlive the condition.
 *
 * Returns the condition, owned by the caller (mp_condition_free), or NULL
 * with mp_last_error() set: MP_EINVAL for a freed lock, -ENOMEM.
 */
#define mp_condition_new(...) \
    mp_condition_new_opts(MP__OPTS(mp_condition_options, __VA_ARGS__))
MP_EXTERN mp_condition *mp_condition_new_opts(const mp_condition_options *opts);

/* mp_condition_acquire / mp_condition_release: the condition's lock, as
 * mp_lock_acquire and mp_lock_release (same return codes). */
MP_EXTERN int mp_condition_acquire(mp_condition *c, double timeout);
MP_EXTERN int mp_condition_release(mp_condition *c);

/* mp_condition_get_lock: the condition's lock (owned by the condition if
 * it made it), or NULL for an invalid condition. */
MP_EXTERN mp_lock *mp_condition_get_lock(const mp_condition *c);

/*
 * mp_condition_wait: release the lock, wait for a notify, take the lock
 * again (Python's wait(timeout)).  The caller must hold the lock; an RLock
 * held at several levels is released completely and taken back at the same
 * level.
 *
 * Returns:
 *   0              notified (Python's True); the caller holds the lock;
 *   MP_ETIMEDOUT   not notified within the timeout (False); the caller
 *                  holds the lock;
 *   MP_EOWNERDEAD  taking the lock back found its holder dead (see
 *                  mp_lock_acquire); the caller holds the lock;
 *   MP_EINVAL      c NULL or freed, its lock freed, a bad timeout, or the
 *                  caller does not hold the lock (Python's RuntimeError);
 *                  the lock is left as it was;
 *   -ENOMEM        no memory for the waiter record.
 * Waiters are woken in the order they started waiting.  There are no
 * spurious wake-ups: 0 means a notify chose this waiter.
 */
MP_EXTERN int mp_condition_wait(mp_condition *c, double timeout);

/*
 * mp_condition_wait_for: wait until pred(arg) is true (Python's
 * wait_for(predicate, timeout)).  pred is called with the lock held, first
 * before any wait and again after every wake-up, in the calling process.
 *
 * Returns 0 when pred returned true, MP_ETIMEDOUT when it was still false
 * at the timeout, MP_EINVAL for a NULL pred and as mp_condition_wait,
 * MP_EOWNERDEAD as mp_condition_wait (pred is then not called again).
 * The caller holds the lock on return in every case but MP_EINVAL.
 */
MP_EXTERN int mp_condition_wait_for(mp_condition *c, mp_predicate_fn pred, void *arg,
                                    double timeout);

/*
 * mp_condition_notify: wake up to n waiters, oldest first (Python's
 * notify(n)).  The caller must hold the lock.  Waiters whose thread no
 * longer exists (a process killed while waiting) are dropped, not counted.
 *
 * Returns the number of waiters woken (0 when nobody waits), or MP_EINVAL
 * for c NULL or freed, n < 0, or a caller that does not hold the lock.
 */
MP_EXTERN int mp_condition_notify(mp_condition *c, int n);

/* mp_condition_notify_all: wake every waiter; as mp_condition_notify. */
MP_EXTERN int mp_condition_notify_all(mp_condition *c);

/* mp_condition_free: release the condition (and its own lock, if it made
 * one); NULL is a no-op.  Nobody may be waiting on it. */
MP_EXTERN void mp_condition_free(mp_condition *c);

/* ==== Event ============================================================== */

typedef struct mp_event mp_event;

typedef struct mp_event_options {
    size_t struct_size; /* sizeof: the macros set it; 0 is the 0.1 layout (common.h) */
    mp_context *ctx;    /* accepted for symmetry with Python; unused */
} mp_event_options;

/*
 * mp_event_new: a new event, not set (Python's Event()).  Returns the
 * event, owned by the caller (mp_event_free), or NULL with mp_last_error()
 * set (-ENOMEM).
 */
#define mp_event_new(...) mp_event_new_opts(MP__OPTS(mp_event_options, __VA_ARGS__))
MP_EXTERN mp_event *mp_event_new_opts(const mp_event_options *opts);

/* mp_event_set: set the flag and wake every waiter.  mp_event_clear: reset
 * it.  Both return 0, or MP_EINVAL for NULL or freed.  Neither makes a
 * system call when nobody waits. */
MP_EXTERN int mp_event_set(mp_event *e);
MP_EXTERN int mp_event_clear(mp_event *e);

/* mp_event_is_set: 1 if set, 0 if not, MP_EINVAL for NULL or freed. */
MP_EXTERN int mp_event_is_set(const mp_event *e);

/*
 * mp_event_wait: wait until the flag is set (Python's wait(timeout)).
 *
 * Returns 0 when the flag is set, or was set while the caller waited even
 * if it has been cleared since (Python's True); MP_ETIMEDOUT when it was
 * not set within the timeout (False); MP_EINVAL for NULL, freed, or a bad
 * timeout.
 *
 * CPU use: before it sleeps, the caller polls the flag, 3 us at first.  The
 * poll of a thread whose waits keep ending soon after it went to sleep
 * grows to twice such a wait, 200 us at most, and shrinks again as polls
 * succeed; it never runs past the timeout.  A thread waiting on an Event
 * set every few tens of microseconds therefore spins rather than sleeps
 * (docs/synchronize.md).
 */
MP_EXTERN int mp_event_wait(mp_event *e, double timeout);

/* mp_event_free: release the event; NULL is a no-op.  Nobody may wait. */
MP_EXTERN void mp_event_free(mp_event *e);

/* ==== Barrier ============================================================ */

typedef struct mp_barrier mp_barrier;

/*
 * A barrier action: run by one of the waiters (the last to arrive) when the
 * barrier fills, before any waiter is released, with the barrier's internal
 * lock held (it must not call mp_barrier_wait, reset or abort).  Returning
 * non-zero is Python's action raising: the barrier breaks.  The action is
 * stored as a module + offset, so it may run in any process of the family,
 * under every start method; action_arg must be valid there too (NULL, a
 * global, or memory from the arena).
 */
typedef int (*mp_barrier_action_fn)(void *arg);

typedef struct mp_barrier_options {
    size_t struct_size; /* sizeof: the macros set it; 0 is the 0.1 layout (common.h) */
    int parties;        /* number of waiters per cycle, >= 1 */
    mp_barrier_action_fn action; /* optional */
    void *action_arg;            /* passed to action */
    double timeout;              /* default for mp_barrier_wait; 0 (left out)
                                    or MP_FOREVER: none (Python's None) */
    mp_context *ctx;             /* accepted for symmetry with Python; unused */
} mp_barrier_options;

/*
 * mp_barrier_new: a barrier for .parties waiters (Python's
 * Barrier(parties, action, timeout)).
 *
 * Returns the barrier, owned by the caller (mp_barrier_free), or NULL with
 * mp_last_error() set: MP_EINVAL for parties < 1, a negative timeout other
 * than MP_FOREVER, NaN, or an action that is in no loaded module; -ENOMEM.
 */
#define mp_barrier_new(...) mp_barrier_new_opts(MP__OPTS(mp_barrier_options, __VA_ARGS__))
MP_EXTERN mp_barrier *mp_barrier_new_opts(const mp_barrier_options *opts);

/*
 * mp_barrier_wait: wait until .parties waiters have called it (Python's
 * wait(timeout)).
 *
 * timeout  MP_FOREVER (Python's None): the barrier's own timeout, which
 *          itself may be none; otherwise as everywhere (0 tries once).
 *          The deadline covers the whole call, including waiting for the
 *          previous cycle to drain.  A waiter that times out breaks the
 *          barrier, as in Python.
 *
 * Returns the arrival index, 0 .. parties-1 (each index once per cycle),
 * or MP_EBROKEN when the barrier is or becomes broken (a timeout, abort, a
 * failing action, reset while waiting, a process that died while holding
 * the barrier's internal lock); MP_EINVAL for NULL, freed, or a bad timeout.
 * A party whose process was killed while waiting counts as arrived (as in
 * Python); it is forgotten by reset, when the barrier breaks, and when a
 * drain it never finishes has taken a second, so it cannot wedge the
 * barrier for good (docs/synchronize.md).
 */
MP_EXTERN int mp_barrier_wait(mp_barrier *b, double timeout);

/*
 * mp_barrier_reset: return the barrier to its empty state; current waiters
 * get MP_EBROKEN (Python's reset()).  mp_barrier_abort: put it in the
 * broken state, waking every waiter with MP_EBROKEN (Python's abort()).
 * Both return 0 or MP_EINVAL.
 */
MP_EXTERN int mp_barrier_reset(mp_barrier *b);
MP_EXTERN int mp_barrier_abort(mp_barrier *b);

/* mp_barrier_parties: the number of parties.  mp_barrier_n_waiting: how
 * many wait in the current cycle.  mp_barrier_broken: 1 if broken, else 0.
 * Each returns MP_EINVAL for NULL or freed. */
MP_EXTERN int mp_barrier_parties(const mp_barrier *b);
MP_EXTERN int mp_barrier_n_waiting(const mp_barrier *b);
MP_EXTERN int mp_barrier_broken(const mp_barrier *b);

/* mp_barrier_free: release the barrier; NULL is a no-op.  Nobody may wait. */
MP_EXTERN void mp_barrier_free(mp_barrier *b);

MP_END_DECLS

#endif /* LIBMP_SYNCHRONIZE_H */
