/*
 * synchronize.c: Lock, RLock, Semaphore, Condition, Event and Barrier shared
 * between processes (Python's multiprocessing/synchronize.py).
 *
 * Every object lives in the shared arena.  A lock is a futex word holding
 * its holder's life token (lifetoken.c), so the next acquirer can tell when
 * the holder died and take the lock over (MP_EOWNERDEAD).  Semaphores and events are shared futex words:
 * uncontended, one atomic instruction and no system call; a wake-up system
 * call only when a waiter has announced itself.  A condition keeps a FIFO
 * list of waiter records in the arena, each with a futex word of its own.
 * The barrier is a small state machine (Python's threading.Barrier) under a
 * robust mutex, with one futex word that changes whenever its state does.
 */
#include "internal/mp.h"
#include "internal/sync.h"
#include "internal/lifetoken.h"
#include "internal/linux.h"

#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LOCK_MAGIC MP__MAGIC('l', 'o', 'c', 'k')
#define LOCK_ORPHAN_MAGIC MP__MAGIC('l', 'o', 'c', 'o') /* freed, hold registered */
#define SEM_MAGIC MP__MAGIC('s', 'e', 'm', 'a')
#define COND_MAGIC MP__MAGIC('c', 'o', 'n', 'd')
#define EVENT_MAGIC MP__MAGIC('e', 'v', 'n', 't')
#define BARRIER_MAGIC MP__MAGIC('b', 'a', 'r', 'r')

/* ---- the calling thread's kernel id ------------------------------------- */

/*
 * A lock's holder is recorded as its kernel thread id, unique among the
 * live threads of every process of the family.  gettid is a system call,
 * so each thread caches its id; a forked child's only thread has a new id,
 * and the pthread_atfork handler forgets the cached one.
 */
static __thread pid_t cached_tid;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void forget_tid(void)
{
    cached_tid = 0;
}

static void install_atfork(void)
{
    pthread_atfork(NULL, NULL, forget_tid);
}

static pid_t tid_slow(void)
{
    pthread_once(&atfork_once, install_atfork);
    cached_tid = (pid_t)syscall(SYS_gettid);
    return cached_tid;
}

static inline pid_t self_tid(void)
{
    pid_t t = cached_tid;
    return MP__LIKELY(t != 0) ? t : tid_slow();
}

/* True when no thread with this id exists any more (a zombie still does). */
static bool thread_gone(pid_t tid)
{
    return kill(tid, 0) != 0 && errno == ESRCH;
}

/* ==== Lock and RLock ===================================================== */

/*
 * The lock is one futex word: 0 when free, else the holder's life token
 * (internal/lifetoken.h) with MP__TOKEN_WAITERS set once a waiter may be
 * asleep.  Taking a free lock is one compare-and-swap, giving it back one
 * compare-and-swap from the caller's own token, plus a wake-up only when
 * the waiters bit was set.  A waiter that finds the holder's token dead
 * takes the lock over with a compare-and-swap from the dead token, so only
 * one waiter can win it.
 *
 * The word has a cache line of its own.  The header (the magic that every
 * call checks) and the recursion count, which change only at creation and
 * when an RLock is taken again, stay on the first line, which every process
 * keeps a clean copy of.  With both on the word's line, each call read the
 * line before writing it: under contention that was two transfers of the
 * line between the processes' caches instead of one (locked Value, two
 * processes: 0.72x a raw mutex before, see docs/performance.md).
 *
 * Registered holds.  A waiter must wake when the holder releases the lock
 * and when the holder dies.  Asleep on the word alone it would miss the
 * death, so by default it sleeps on two words at once (FUTEX_WAITV on the
 * word and the holder's life word, mp__token_wait), which costs the kernel
 * a second futex key on every sleep.  A thread that takes the lock right
 * after a sleep that a release ended (the lock is being handed over) also
 * locks the lock's own
 * robust mutex `life`, which puts it on the thread's robust list, and
 * records its token in `reg`.  Later waiters sleep on life's futex word
 * alone: the release unlocks it (changing the word) and wakes them, and
 * the kernel marks it FUTEX_OWNER_DIED and wakes one of them if the holder
 * dies.  The word is the lock's own, locked only while one hold lasts, so
 * a waiter can never sleep on a later hold's word by mistake: a FUTEX_WAITERS
 * bit on it was set during the hold it belongs to, whose release sees it.
 * Only the holder that registered may touch `life`.  `word_sleepers` says
 * whether anyone sleeps on the word itself (the waiters bit alone would
 * make every release of a registered hold wake the word in vain).
 */

enum lock_kind { KIND_LOCK = 0, KIND_RLOCK = 1 };

#define LOCK_WAITERS MP__TOKEN_WAITERS

struct mp_lock {
    mp__obj hdr;
    uint32_t kind;
    /* Levels held beyond the first; written only by the holder (atomic
     * because a caller that does not hold the lock may read it). */
    _Atomic uint32_t extra;
    _Alignas(64) _Atomic uint32_t word; /* the futex word */
    _Atomic uint32_t reg;               /* token of the holder that holds life */
    _Atomic uint32_t word_sleepers;     /* threads asleep (or about to be) on word */
    _Atomic uint32_t releasing;         /* reg's token while its release runs */
    pthread_mutex_t life;               /* robust; see "Registered holds" */
};

_Static_assert(offsetof(struct mp_lock, life) + sizeof(pthread_mutex_t) <=
                   offsetof(struct mp_lock, word) + 64,
               "the lock's words share one cache line");

static inline uint32_t lock_extra(const mp_lock *l)
{
    return atomic_load_explicit(&l->extra, memory_order_relaxed);
}

static inline void lock_set_extra(mp_lock *l, uint32_t n)
{
    atomic_store_explicit(&l->extra, n, memory_order_relaxed);
}

static inline int lock_check(const mp_lock *l)
{
    return mp__obj_check(l, LOCK_MAGIC);
}

static const mp__deadline lock_forever = {.forever = true};

static mp_lock *lock_create(enum lock_kind kind)
{
    mp_lock *l = mp__obj_create(sizeof *l, 0);
    if (l == NULL)
        return NULL;
    int r = mp__robust_mutex_init(&l->life);
    if (r != 0) {
        mp__obj_free(l);
        return mp__fail_null(r);
    }
    l->kind = kind;
    __atomic_store_n(&l->hdr.magic, LOCK_MAGIC, __ATOMIC_RELEASE);
    return l;
}

mp_lock *mp_lock_new_opts(const mp_lock_options *opts)
{
    mp_lock_options opts_local;
    int opts_err;
    opts = MP__OPTS_LOAD(opts_local, opts, ctx, &opts_err);
    if (opts_err != 0)
        return mp__fail_null(opts_err);
    return lock_create(KIND_LOCK);
}

mp_rlock *mp_rlock_new_opts(const mp_lock_options *opts)
{
    mp_lock_options opts_local;
    int opts_err;
    opts = MP__OPTS_LOAD(opts_local, opts, ctx, &opts_err);
    if (opts_err != 0)
        return mp__fail_null(opts_err);
    return lock_create(KIND_RLOCK);
}

static inline uint32_t lock_holder(const mp_lock *l)
{
    return atomic_load_explicit(&l->word, memory_order_relaxed) & ~LOCK_WAITERS;
}

static bool lock_mine(const mp_lock *l)
{
    uint32_t me = mp__token_cache;
    return me != 0 && lock_holder(l) == me;
}

/* A thread keeps at most this many registered holds at once, so that its
 * robust list stays short (the kernel walks 2048 entries at most, and its
 * life token's mutex is among them) and ThreadSanitizer, which follows 64
 * held mutexes per thread, can follow it. */
#define REG_MAX 32

/* Registered holds rely on glibc's robust mutexes.  With musl the lock
 * ring chaos test hung in about 1 run of 8 with them (not yet explained)
 * and never without: there every waiter sleeps on two words, as before. */
#ifdef __GLIBC__
#define REGISTER_HOLDS 1
#else
#define REGISTER_HOLDS 0
#endif

static __thread uint32_t reg_owner; /* the token reg_count counts for */
static __thread uint32_t reg_count;

/* Register the caller's hold of l (it slept for it): see "Registered
 * holds".  Nothing happens when it cannot (limit, or life still held by
 * the previous holder, which is finishing its release). */
static void lock_register(mp_lock *l, uint32_t me)
{
    if (reg_owner != me) {
        reg_owner = me; /* a new thread, or a forked child's */
        reg_count = 0;
    }
    if (!REGISTER_HOLDS || reg_count >= REG_MAX)
        return;
    /* Taken over if a registered holder died: its sleepers were woken and
     * have found its token dead. */
    if (mp__robust_trylock(&l->life) != 0)
        return;
    reg_count++;
    atomic_store(&l->reg, me);
}

/*
 * End the caller's registered hold, after the word was freed: first reg,
 * so that no new waiter picks life; then the waiters bit, then the unlock
 * (life's word changes under the sleepers).  True when sleepers of life
 * must be woken.
 */
static bool lock_unregister(mp_lock *l)
{
    atomic_store(&l->reg, 0);
    uint32_t old = atomic_fetch_and(mp__robust_word(&l->life), ~(uint32_t)FUTEX_WAITERS);
    pthread_mutex_unlock(&l->life);
    if (reg_count > 0)
        reg_count--;
    return (old & FUTEX_WAITERS) != 0;
}

/*
 * Sleep on life while the holder's registered hold (word w) lasts.  As
 * mp__token_wait (1 woken, 0 did not sleep, MP_ETIMEDOUT), or 2 when the
 * hold is not registered (sleep on the word instead).
 */
static int lock_sleep_life(mp_lock *l, uint32_t w, uint32_t holder, const mp__deadline *d)
{
    if (atomic_load(&l->reg) != holder)
        return 2;
    _Atomic uint32_t *life = mp__robust_word(&l->life);
    uint32_t v = atomic_load(life);
    if ((v & FUTEX_TID_MASK) == 0 || (v & FUTEX_OWNER_DIED))
        return 2;
    if (!(v & FUTEX_WAITERS) && !atomic_compare_exchange_strong(life, &v, v | FUTEX_WAITERS))
        return 0; /* it changed: look again */
    v |= FUTEX_WAITERS;
    /* The bit is set: a release from here on sees it and wakes us. */
    if (atomic_load(&l->word) != w || atomic_load(&l->reg) != holder)
        return 0;
    int r = mp__futex_sleep((uint32_t *)life, v, d);
    if (atomic_load(life) & FUTEX_OWNER_DIED) {
        /* The kernel wakes one waiter of a dead thread's mutex: pass it on. */
        mp__futex_wake((uint32_t *)life, INT32_MAX);
    }
    return r == MP_ETIMEDOUT || r == 1 ? r : 0;
}

/* Unlock life if a dead registered holder left it marked owner-died (or,
 * with the C library's bookkeeping, locked).  So the memory can be reused
 * for another lock with no trace of the hold (ThreadSanitizer keeps one). */
static void lock_life_repair(mp_lock *l)
{
    if (mp__robust_trylock(&l->life) == 0)
        pthread_mutex_unlock(&l->life);
}

/* Sleep on the word (and the holder's life word), counted in
 * word_sleepers: as mp__token_wait. */
static int lock_sleep_word(mp_lock *l, uint32_t w, uint32_t holder, const mp__deadline *d)
{
    atomic_fetch_add(&l->word_sleepers, 1);
    int r = mp__token_wait((uint32_t *)&l->word, w, holder, d);
    atomic_fetch_sub(&l->word_sleepers, 1);
    return r;
}

/*
 * Take a lock the caller (token me) does not hold.  0, MP_EOWNERDEAD (the
 * holder died: the lock is the caller's now), or MP_ETIMEDOUT.
 */
static int lock_take(mp_lock *l, const mp__deadline *d, uint32_t me)
{
    uint32_t want = me; /* with the waiters bit once this thread slept */
    bool nowait = d->nowait;
    bool woken = false; /* the last wait slept until a release woke it */
    /*
     * No spinning before the sleep: with two processes hammering one lock,
     * spins of 30 and 200 pauses measured slower than none (the spinner
     * steals the word's cache line from the holder, which takes it back
     * within nanoseconds anyway).
     */
    uint32_t w = atomic_load_explicit(&l->word, memory_order_relaxed);
    for (;;) {
        if (w == 0) {
            if (!atomic_compare_exchange_weak_explicit(&l->word, &w, want,
                                                       memory_order_acquire,
                                                       memory_order_relaxed))
                continue;
            /*
             * Register only after a real sleep: the lock is handed over
             * (held long enough for a waiter to fall asleep).  Under a
             * storm of short holds a waiter's waits mostly find the word
             * changed, and registering every hold it wins cost more than
             * it saved (two processes hammering one lock: 0.8x).
             */
            if (woken)
                lock_register(l, me);
            return 0;
        }
        uint32_t holder = w & ~LOCK_WAITERS;
        if (mp__token_dead(holder)) {
            /* Keep the waiters bit: others may sleep on the word. */
            if (atomic_compare_exchange_strong(&l->word, &w, me | (w & LOCK_WAITERS))) {
                lock_set_extra(l, 0); /* the dead holder's levels */
                /* Its registration too (life was marked dead with it). */
                uint32_t dead = holder;
                if (atomic_compare_exchange_strong(&l->reg, &dead, 0))
                    lock_life_repair(l);
                return MP_EOWNERDEAD;
            }
            continue;
        }
        if (nowait)
            return MP_ETIMEDOUT;
        if (!(w & LOCK_WAITERS)) {
            if (!atomic_compare_exchange_weak(&l->word, &w, w | LOCK_WAITERS))
                continue;
            w |= LOCK_WAITERS;
        }
        want = me | LOCK_WAITERS;
        int r = lock_sleep_life(l, w, holder, d);
        if (r == 2)
            r = lock_sleep_word(l, w, holder, d);
        woken = r == 1;
        /* After the deadline, one last look at the word, then give up. */
        if (r == MP_ETIMEDOUT)
            nowait = true;
        w = atomic_load_explicit(&l->word, memory_order_relaxed);
    }
}

/* The caller already holds l: recursion for an RLock, else a wait that can
 * only end with the timeout. */
static int lock_again(mp_lock *l, const mp__deadline *d)
{
    if (l->kind == KIND_RLOCK) {
        uint32_t n = lock_extra(l);
        if (n == UINT32_MAX - 1)
            return -EAGAIN;
        lock_set_extra(l, n + 1);
        return 0;
    }
    if (d->forever)
        return -EDEADLK;
    if (!d->nowait) {
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &d->at, NULL) == EINTR)
            ;
    }
    return MP_ETIMEDOUT;
}

static int __attribute__((noinline)) lock_acquire_slow(mp_lock *l, double timeout, uint32_t me)
{
    mp__deadline d;
    int r = mp__deadline_init(&d, timeout);
    if (r != 0)
        return r;
    if (lock_holder(l) == me)
        return lock_again(l, &d);
    return lock_take(l, &d, me);
}

int mp__lock_acquire(mp_lock *l, double timeout)
{
    int r = lock_check(l);
    if (MP__UNLIKELY(r != 0))
        return r;
    uint32_t me;
    r = mp__token_self(&me);
    if (MP__UNLIKELY(r != 0))
        return r;
    /* A valid timeout and a free lock: no clock reading, one CAS. */
    uint32_t w = 0;
    if (MP__LIKELY((timeout == MP_FOREVER || timeout >= 0) &&
                   atomic_compare_exchange_strong_explicit(&l->word, &w, me,
                                                           memory_order_acquire,
                                                           memory_order_relaxed)))
        return 0;
    return lock_acquire_slow(l, timeout, me);
}

/*
 * Free the word (held with the waiters bit, or about to be given up
 * whatever it holds), then end a registered hold and wake the sleepers of
 * the word.  The exchange orders the word's release before the look at
 * word_sleepers, as a sleeper's count comes before its sleep (which
 * compares the word): one of the two sees the other.
 *
 * All of them, not one: a sleeper of the word also watches the life of the
 * holder it fell asleep under, and no other.  Woken one at a time, the
 * others would sleep on through the next holder's death (nothing wakes the
 * word then), and through the death of the one woken before it takes the
 * lock.  Woken all, each looks again and sleeps under the new holder.
 */
static void lock_free_word(mp_lock *l, uint32_t me)
{
    /*
     * Once the word is free, another thread may take the lock, give it
     * back and free it: a registered release, which still has life to
     * unlock, says so in `releasing`, which mp_lock_free waits for.  The
     * wake-ups at the end only name the addresses.
     */
    bool registered = me != 0 && atomic_load(&l->reg) == me;
    if (registered)
        atomic_store(&l->releasing, me);
    atomic_exchange(&l->word, 0);
    bool wake_life = registered && lock_unregister(l);
    bool wake_word = atomic_load(&l->word_sleepers) > 0;
    if (registered)
        atomic_store(&l->releasing, 0);
    if (wake_life)
        mp__futex_wake((uint32_t *)mp__robust_word(&l->life), INT32_MAX);
    if (wake_word)
        mp__futex_wake((uint32_t *)&l->word, INT32_MAX);
}

/* Give the lock back, whatever level the caller holds it at. */
static void lock_drop(mp_lock *l)
{
    lock_set_extra(l, 0);
    lock_free_word(l, mp__token_cache);
}

static int __attribute__((noinline)) lock_release_slow(mp_lock *l, uint32_t me)
{
    if (me == 0 || lock_holder(l) != me)
        return MP_EINVAL;
    uint32_t n = lock_extra(l);
    if (n > 0) {
        lock_set_extra(l, n - 1);
        return 0;
    }
    lock_free_word(l, me);
    return 0;
}

/* A release of a lock freed while the caller held it registered: end the
 * hold, free the memory, and report the lock as freed. */
static int __attribute__((noinline)) lock_release_orphan(mp_lock *l, int r)
{
    uint32_t me = mp__token_cache;
    if (mp__obj_check(l, LOCK_ORPHAN_MAGIC) == 0 && me != 0 && atomic_load(&l->reg) == me) {
        lock_set_extra(l, 0);
        lock_free_word(l, me);
        pthread_mutex_destroy(&l->life);
        mp__obj_free(l);
    }
    return r;
}

int mp__lock_release(mp_lock *l)
{
    int r = lock_check(l);
    if (MP__UNLIKELY(r != 0))
        return lock_release_orphan(l, r);
    /*
     * Held once and no waiter: one compare-and-swap from our own token, with
     * no read of the word before it (a read would fetch the line shared and
     * the swap fetch it again).  Every other case (recursion, waiters, not
     * the holder) fails the swap and is sorted out by the slow path.
     */
    uint32_t me = mp__token_cache;
    uint32_t w = me;
    if (MP__LIKELY(me != 0 && lock_extra(l) == 0 &&
                   atomic_compare_exchange_strong_explicit(&l->word, &w, 0,
                                                           memory_order_release,
                                                           memory_order_relaxed)))
        return 0;
    return lock_release_slow(l, me);
}

/* The exported names are aliases of the hidden ones (internal/sync.h). */
int mp_lock_acquire(mp_lock *l, double timeout) __attribute__((alias("mp__lock_acquire")));
int mp_lock_release(mp_lock *l) __attribute__((alias("mp__lock_release")));

int mp_lock_locked(const mp_lock *l)
{
    int r = mp__obj_check(l, LOCK_MAGIC);
    if (r != 0)
        return r;
    return atomic_load_explicit(&l->word, memory_order_relaxed) != 0;
}

int mp__lock_is_mine(const mp_lock *l)
{
    int r = mp__obj_check(l, LOCK_MAGIC);
    return r != 0 ? r : lock_mine(l);
}

int mp_lock_is_mine(const mp_lock *l) __attribute__((alias("mp__lock_is_mine")));

uint32_t mp__lock_reg(const mp_lock *l)
{
    return atomic_load(&l->reg);
}

bool mp__lock_life_waited(const mp_lock *l)
{
    return (atomic_load(mp__robust_word((pthread_mutex_t *)&l->life)) & FUTEX_WAITERS) != 0;
}

int mp_lock_count(const mp_lock *l)
{
    int r = mp__obj_check(l, LOCK_MAGIC);
    if (r != 0)
        return r;
    if (!lock_mine(l))
        return 0;
    uint32_t n = lock_extra(l);
    return n >= INT_MAX ? INT_MAX : (int)n + 1;
}

void mp_lock_free(mp_lock *l)
{
    if (mp__obj_check(l, LOCK_MAGIC) != 0)
        return;
    if (lock_mine(l))
        lock_drop(l);
    /* A registered release that has freed the word may still be at life
     * (lock_free_word); its thread's death ends it too. */
    for (uint32_t t; (t = atomic_load(&l->releasing)) != 0 && !mp__token_dead(t);)
        sched_yield();
    uint32_t reg = atomic_load(&l->reg);
    if (reg != 0 && !mp__token_dead(reg)) {
        /* Another thread's registered hold: life is on that thread's
         * robust list, so the memory stays until its release (which then
         * returns MP_EINVAL) or, if it never comes, for good. */
        __atomic_store_n(&l->hdr.magic, LOCK_ORPHAN_MAGIC, __ATOMIC_RELEASE);
        return;
    }
    if (reg != 0)
        lock_life_repair(l); /* its registered holder died */
    pthread_mutex_destroy(&l->life);
    mp__obj_free(l);
}

/* ==== Semaphore and BoundedSemaphore ===================================== */

struct mp_semaphore {
    mp__obj hdr;
    _Atomic uint32_t value;   /* the futex word */
    _Atomic uint32_t waiters; /* threads asleep (or about to sleep) on it */
    uint32_t max;             /* release refuses to go above this */
    bool bounded;
};

static mp_semaphore *sem_create(const mp_semaphore_options *opts, bool bounded)
{
    mp_semaphore_options opts_local;
    int opts_err;
    opts = MP__OPTS_LOAD(opts_local, opts, ctx, &opts_err);
    if (opts_err != 0)
        return mp__fail_null(opts_err);
    int value = opts ? opts->value : 0;
    if (value < 0)
        return mp__fail_null(MP_EINVAL);
    mp_semaphore *s = mp__obj_create(sizeof *s, 0);
    if (s == NULL)
        return NULL;
    atomic_init(&s->value, (uint32_t)value);
    s->max = bounded ? (uint32_t)value : (uint32_t)INT32_MAX;
    s->bounded = bounded;
    __atomic_store_n(&s->hdr.magic, SEM_MAGIC, __ATOMIC_RELEASE);
    return s;
}

mp_semaphore *mp_semaphore_new_opts(const mp_semaphore_options *opts)
{
    return sem_create(opts, false);
}

mp_bounded_semaphore *mp_bounded_semaphore_new_opts(const mp_semaphore_options *opts)
{
    return sem_create(opts, true);
}

static bool sem_trydown(mp_semaphore *s)
{
    uint32_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
    while (v > 0) {
        if (atomic_compare_exchange_weak_explicit(&s->value, &v, v - 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    }
    return false;
}

static int sem_wait_slow(mp_semaphore *s, const mp__deadline *d)
{
    /*
     * Announce the waiter before the last look at the value: a release
     * increments the value and then reads the count (both sequentially
     * consistent), so either it sees this waiter and wakes it, or the
     * futex sees the new value and does not sleep.
     */
    atomic_fetch_add(&s->waiters, 1);
    int ret;
    for (;;) {
        if (sem_trydown(s)) {
            ret = 0;
            break;
        }
        int r = mp__futex_wait((uint32_t *)&s->value, 0, d);
        if (r == MP_ETIMEDOUT) {
            /* A wake-up meant for us may have raced the timeout: never
             * leave a unit unclaimed while another waiter sleeps. */
            ret = sem_trydown(s) ? 0 : MP_ETIMEDOUT;
            break;
        }
    }
    atomic_fetch_sub(&s->waiters, 1);
    return ret;
}

int mp_semaphore_acquire(mp_semaphore *s, double timeout)
{
    int r = mp__obj_check(s, SEM_MAGIC);
    if (MP__UNLIKELY(r != 0))
        return r;
    mp__deadline d;
    r = mp__deadline_init(&d, timeout);
    if (r != 0)
        return r;
    if (MP__LIKELY(sem_trydown(s)))
        return 0;
    if (d.nowait)
        return MP_ETIMEDOUT;
    return sem_wait_slow(s, &d);
}

int mp_semaphore_release(mp_semaphore *s)
{
    int r = mp__obj_check(s, SEM_MAGIC);
    if (MP__UNLIKELY(r != 0))
        return r;
    uint32_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
    do {
        if (v >= s->max)
            return s->bounded ? MP_EINVAL : -EOVERFLOW;
    } while (!atomic_compare_exchange_weak(&s->value, &v, v + 1));
    if (atomic_load(&s->waiters) != 0)
        mp__futex_wake((uint32_t *)&s->value, 1);
    return 0;
}

int mp_semaphore_get_value(const mp_semaphore *s)
{
    int r = mp__obj_check(s, SEM_MAGIC);
    return r != 0 ? r : (int)atomic_load(&s->value);
}

int mp_semaphore_locked(const mp_semaphore *s)
{
    int r = mp__obj_check(s, SEM_MAGIC);
    return r != 0 ? r : atomic_load(&s->value) == 0;
}

void mp_semaphore_free(mp_semaphore *s)
{
    if (mp__obj_check(s, SEM_MAGIC) == 0)
        mp__obj_free(s);
}

/* ==== Condition ========================================================== */

/*
 * A waiter record, in the arena so that the notifier (another process) can
 * reach it.  The list is only touched with the condition's lock held: the
 * waiter links itself in before releasing the lock, a notifier unlinks the
 * records it wakes, and a waiter that timed out unlinks itself after taking
 * the lock back.  The waiter frees its record, also with the lock held, so
 * a notifier never touches a freed record.
 */
struct waiter {
    struct waiter *next;
    struct waiter *prev;
    _Atomic uint32_t woken; /* futex word: 0 waiting, 1 notified */
    pid_t tid;
};

struct mp_condition {
    mp__obj hdr;
    mp_lock *lock;
    bool own_lock;
    struct waiter *head;
    struct waiter *tail;
};

mp_condition *mp_condition_new_opts(const mp_condition_options *opts)
{
    mp_condition_options opts_local;
    int opts_err;
    opts = MP__OPTS_LOAD(opts_local, opts, ctx, &opts_err);
    if (opts_err != 0)
        return mp__fail_null(opts_err);
    mp_lock *lock = opts ? opts->lock : NULL;
    if (lock != NULL && mp__obj_check(lock, LOCK_MAGIC) != 0)
        return mp__fail_null(MP_EINVAL);
    mp_condition *c = mp__obj_create(sizeof *c, 0);
    if (c == NULL)
        return NULL;
    if (lock == NULL) {
        lock = mp_rlock_new();
        if (lock == NULL) {
            mp__obj_free(c);
            return mp__fail_null(-ENOMEM);
        }
        c->own_lock = true;
    }
    c->lock = lock;
    __atomic_store_n(&c->hdr.magic, COND_MAGIC, __ATOMIC_RELEASE);
    return c;
}

/* 0 when c is a live condition whose lock is live too. */
static int cond_check(const mp_condition *c)
{
    int r = mp__obj_check(c, COND_MAGIC);
    return r != 0 ? r : mp__obj_check(c->lock, LOCK_MAGIC);
}

int mp_condition_acquire(mp_condition *c, double timeout)
{
    int r = mp__obj_check(c, COND_MAGIC);
    return r != 0 ? r : mp__lock_acquire(c->lock, timeout);
}

int mp_condition_release(mp_condition *c)
{
    int r = mp__obj_check(c, COND_MAGIC);
    return r != 0 ? r : mp__lock_release(c->lock);
}

mp_lock *mp_condition_get_lock(const mp_condition *c)
{
    return mp__obj_check(c, COND_MAGIC) == 0 ? c->lock : NULL;
}

static void waiter_unlink(mp_condition *c, struct waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        c->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        c->tail = w->prev;
    w->next = w->prev = NULL;
}

/* The wait itself; the caller holds c->lock and has checked c.  Under a
 * watch that ends it, the lock is not taken back and the record stays
 * linked (a notifier may still reach it; mp_condition_free frees it). */
static int cond_wait(mp_condition *c, const mp__deadline *d, const mp__watch *watch)
{
    mp_lock *l = c->lock;
    struct waiter *w = mp__alloc(sizeof *w);
    if (w == NULL)
        return -ENOMEM;
    w->tid = self_tid();
    w->prev = c->tail;
    if (c->tail)
        c->tail->next = w;
    else
        c->head = w;
    c->tail = w;

    uint32_t extra = lock_extra(l);
    lock_drop(l);
    while (atomic_load_explicit(&w->woken, memory_order_acquire) == 0) {
        int r = mp__futex_wait_watched((uint32_t *)&w->woken, 0, d, watch);
        if (r == MP_EEOF)
            return r;
        if (r == MP_ETIMEDOUT)
            break;
    }
    int took = lock_take(l, &lock_forever, mp__token_cache);
    if (took != 0 && took != MP_EOWNERDEAD)
        return took; /* not held again: the record cannot be touched */
    lock_set_extra(l, extra);

    int ret = 0;
    if (atomic_load_explicit(&w->woken, memory_order_acquire) == 0) {
        waiter_unlink(c, w);
        ret = MP_ETIMEDOUT;
    }
    mp__free(w);
    return took == MP_EOWNERDEAD ? MP_EOWNERDEAD : ret;
}

int mp__condition_wait_watched(mp_condition *c, double timeout, const mp__watch *w)
{
    int r = cond_check(c);
    if (r != 0)
        return r;
    mp__deadline d;
    r = mp__deadline_init(&d, timeout);
    if (r != 0)
        return r;
    if (!lock_mine(c->lock))
        return MP_EINVAL;
    return cond_wait(c, &d, w);
}

int mp_condition_wait(mp_condition *c, double timeout)
{
    return mp__condition_wait_watched(c, timeout, NULL);
}

int mp_condition_wait_for(mp_condition *c, mp_predicate_fn pred, void *arg, double timeout)
{
    int r = cond_check(c);
    if (r != 0)
        return r;
    mp__deadline d;
    r = mp__deadline_init(&d, timeout);
    if (r != 0)
        return r;
    if (pred == NULL || !lock_mine(c->lock))
        return MP_EINVAL;
    while (!pred(arg)) {
        r = cond_wait(c, &d, NULL);
        if (r == MP_ETIMEDOUT)
            return pred(arg) ? 0 : MP_ETIMEDOUT;
        if (r != 0)
            return r;
    }
    return 0;
}

int mp_condition_notify(mp_condition *c, int n)
{
    int r = cond_check(c);
    if (r != 0)
        return r;
    if (n < 0 || !lock_mine(c->lock))
        return MP_EINVAL;
    int woken = 0;
    while (woken < n && c->head != NULL) {
        struct waiter *w = c->head;
        waiter_unlink(c, w);
        if (thread_gone(w->tid)) {
            /* Its process was killed while waiting: nobody frees it. */
            mp__free(w);
            continue;
        }
        atomic_store_explicit(&w->woken, 1, memory_order_release);
        mp__futex_wake((uint32_t *)&w->woken, 1);
        woken++;
    }
    return woken;
}

int mp_condition_notify_all(mp_condition *c)
{
    return mp_condition_notify(c, INT_MAX);
}

void mp_condition_free(mp_condition *c)
{
    if (mp__obj_check(c, COND_MAGIC) != 0)
        return;
    /* Records left behind by waiters that died. */
    while (c->head != NULL) {
        struct waiter *w = c->head;
        c->head = w->next;
        mp__free(w);
    }
    if (c->own_lock)
        mp_lock_free(c->lock);
    mp__obj_free(c);
}

/* ==== Event ============================================================== */

/*
 * The word is (number of times the event was set) << 1 | (is set).  A
 * waiter that saw the flag clear sleeps until the word changes: any change
 * from a clear word is a set, even if a clear followed before the waiter
 * woke up.
 */
struct mp_event {
    mp__obj hdr;
    _Atomic uint32_t word;
    _Atomic uint32_t waiters;
};

mp_event *mp_event_new_opts(const mp_event_options *opts)
{
    mp_event_options opts_local;
    int opts_err;
    opts = MP__OPTS_LOAD(opts_local, opts, ctx, &opts_err);
    if (opts_err != 0)
        return mp__fail_null(opts_err);
    return mp__obj_create(sizeof(mp_event), EVENT_MAGIC);
}

int mp_event_set(mp_event *e)
{
    int r = mp__obj_check(e, EVENT_MAGIC);
    if (r != 0)
        return r;
    uint32_t w = atomic_load_explicit(&e->word, memory_order_relaxed);
    do {
        if (w & 1)
            return 0;
    } while (!atomic_compare_exchange_weak(&e->word, &w, (w + 2) | 1));
    if (atomic_load(&e->waiters) != 0)
        mp__futex_wake((uint32_t *)&e->word, INT32_MAX);
    return 0;
}

int mp_event_clear(mp_event *e)
{
    int r = mp__obj_check(e, EVENT_MAGIC);
    if (r != 0)
        return r;
    uint32_t w = atomic_load_explicit(&e->word, memory_order_relaxed);
    do {
        if (!(w & 1))
            return 0;
    } while (!atomic_compare_exchange_weak(&e->word, &w, w & ~1u));
    return 0;
}

int mp_event_is_set(const mp_event *e)
{
    int r = mp__obj_check(e, EVENT_MAGIC);
    return r != 0 ? r : (int)(atomic_load(&e->word) & 1);
}

/*
 * How long a waiter polls before it sleeps: a set() that comes within this
 * costs neither side a system call.  The budget adapts per thread.  A sleep
 * that a set() ended soon (within EVENT_SPIN_MAX_NS) means a longer poll
 * would have caught it: the next wait polls for twice the whole wait.  That
 * breaks a trap two threads ping-ponging through Events fall into on a
 * machine where waking a sleeper is slow (60 us on a virtual CPU that halts
 * when idle): each side's short poll ends before the other wakes, so each
 * sleeps in turn, and every round trip costs two wake-ups for good.  A
 * sleep longer than the maximum (an Event set rarely) leaves the short
 * poll, and every wait that the poll catches halves the budget back.
 */
#define EVENT_SPIN_NS 3000u
#define EVENT_SPIN_MAX_NS 200000u

static __thread uint32_t event_spin_ns = EVENT_SPIN_NS;

static void event_spin_caught(void)
{
    uint32_t n = event_spin_ns / 2;
    event_spin_ns = n > EVENT_SPIN_NS ? n : EVENT_SPIN_NS;
}

static void event_spin_slept(uint64_t waited_ns)
{
    event_spin_ns = waited_ns < EVENT_SPIN_MAX_NS / 2 ? (uint32_t)waited_ns * 2
                                                      : EVENT_SPIN_NS;
    if (event_spin_ns < EVENT_SPIN_NS)
        event_spin_ns = EVENT_SPIN_NS;
}

int mp_event_wait(mp_event *e, double timeout)
{
    int r = mp__obj_check(e, EVENT_MAGIC);
    if (r != 0)
        return r;
    mp__deadline d;
    r = mp__deadline_init(&d, timeout);
    if (r != 0)
        return r;
    uint32_t w = atomic_load_explicit(&e->word, memory_order_acquire);
    if (w & 1)
        return 0;
    if (d.nowait)
        return MP_ETIMEDOUT;
    /* Any change of the word is a set(), as in the sleeping loop below. */
    uint64_t spin = event_spin_ns;
    if (!d.forever) {
        /* The poll never runs past the deadline. */
        uint64_t now = mp__now_ns();
        uint64_t at = (uint64_t)d.at.tv_sec * 1000000000u + (uint64_t)d.at.tv_nsec;
        uint64_t left = at > now ? at - now : 0;
        if (spin > left)
            spin = left;
    }
    if (mp__spin_while_equal((const uint32_t *)&e->word, w, spin)) {
        event_spin_caught();
        return 0;
    }
    /* Announced before sleeping; see sem_wait_slow for why this order. */
    atomic_fetch_add(&e->waiters, 1);
    uint64_t slept_from = mp__now_ns();
    int ret;
    for (;;) {
        r = mp__futex_wait((uint32_t *)&e->word, w, &d);
        if (atomic_load(&e->word) != w) {
            ret = 0;
            break;
        }
        if (r == MP_ETIMEDOUT) {
            ret = MP_ETIMEDOUT;
            break;
        }
    }
    atomic_fetch_sub(&e->waiters, 1);
    if (ret == 0)
        event_spin_slept(spin + (mp__now_ns() - slept_from));
    return ret;
}

void mp_event_free(mp_event *e)
{
    if (mp__obj_check(e, EVENT_MAGIC) == 0)
        mp__obj_free(e);
}

/* ==== Barrier ============================================================ */

/* Python's threading.Barrier states. */
enum { FILLING = 0, DRAINING = 1, RESETTING = -1, BROKEN = -2 };

struct mp_barrier {
    mp__obj hdr;
    pthread_mutex_t mutex; /* robust, process-shared: guards what follows */
    _Atomic uint32_t seq;  /* futex word, bumped on every state change */
    uint32_t sleepers;     /* waiters asleep on seq */
    _Atomic int32_t state;
    _Atomic int32_t count; /* waiters in the current cycle */
    int32_t parties;
    double timeout; /* default; negative: none */
    mp__fnref action;
    void *action_arg;
    /*
     * The thread id of the waiter that arrived with each index in the
     * current cycle (0: none), so that waiters whose process died can be
     * told apart and forgotten (barrier_prune).
     */
    pid_t slots[];
};

mp_barrier *mp_barrier_new_opts(const mp_barrier_options *opts)
{
    mp_barrier_options opts_local;
    int opts_err;
    opts = MP__OPTS_LOAD(opts_local, opts, ctx, &opts_err);
    if (opts_err != 0)
        return mp__fail_null(opts_err);
    if (opts == NULL || opts->parties < 1)
        return mp__fail_null(MP_EINVAL);
    double timeout = opts->timeout;
    mp__deadline probe;
    if (mp__deadline_init(&probe, timeout) != 0)
        return mp__fail_null(MP_EINVAL);
    if (timeout == 0)
        timeout = MP_FOREVER;
    mp__fnref action;
    if (mp__fnref_make(&action, (void (*)(void))opts->action) != 0)
        return mp__fail_null(MP_EINVAL);
    mp_barrier *b = mp__obj_create(sizeof *b + (size_t)opts->parties * sizeof(pid_t), 0);
    if (b == NULL)
        return NULL;
    int r = mp__robust_mutex_init(&b->mutex);
    if (r != 0) {
        mp__obj_free(b);
        return mp__fail_null(r);
    }
    b->parties = opts->parties;
    b->timeout = timeout;
    b->action = action;
    b->action_arg = opts->action_arg;
    __atomic_store_n(&b->hdr.magic, BARRIER_MAGIC, __ATOMIC_RELEASE);
    return b;
}

/* Wake everybody who sleeps on the barrier; the mutex is held. */
static void barrier_changed(mp_barrier *b)
{
    atomic_fetch_add(&b->seq, 1);
    if (b->sleepers != 0)
        mp__futex_wake((uint32_t *)&b->seq, INT32_MAX);
}

static void barrier_break(mp_barrier *b)
{
    atomic_store(&b->state, BROKEN);
    barrier_changed(b);
}

/*
 * Forget the waiters whose thread no longer exists: they will never leave
 * and decrement the count.  Only called on the way to the broken or the
 * resetting state, where no index is handed out until the count is 0.
 */
static void barrier_prune(mp_barrier *b)
{
    for (int i = 0; i < b->parties; i++) {
        if (b->slots[i] != 0 && thread_gone(b->slots[i])) {
            b->slots[i] = 0;
            atomic_fetch_sub(&b->count, 1);
        }
    }
}

static void barrier_lock(mp_barrier *b)
{
    /* A process died in the middle of an update: trust nothing. */
    if (mp__robust_lock(&b->mutex)) {
        barrier_prune(b);
        barrier_break(b);
    }
}

/*
 * Sleep until the state changes or d expires (d NULL: forever); the mutex
 * is held on entry and on return.  The word is read with the mutex held,
 * and every change bumps it with the mutex held, so no change is missed.
 */
static int barrier_sleep(mp_barrier *b, const mp__deadline *d, const mp__watch *w)
{
    uint32_t seen = atomic_load(&b->seq);
    b->sleepers++;
    mp__robust_unlock(&b->mutex);
    int r = mp__futex_wait_watched((uint32_t *)&b->seq, seen, d, w);
    barrier_lock(b);
    b->sleepers--;
    return r == MP_ETIMEDOUT || r == MP_EEOF ? r : 0;
}

/* The last arrival: run the action, then release the others. */
static int barrier_release(mp_barrier *b, int index)
{
    if (b->action.module != 0 || b->action.offset != 0) {
        mp_barrier_action_fn fn = (mp_barrier_action_fn)mp__fnref_resolve(&b->action);
        if (fn == NULL || fn(b->action_arg) != 0) {
            barrier_break(b);
            return MP_EBROKEN;
        }
    }
    atomic_store(&b->state, DRAINING);
    barrier_changed(b);
    return index;
}

/* After the last waiter of a drained or reset cycle left: open the next. */
static void barrier_open_if_empty(mp_barrier *b)
{
    int s = atomic_load(&b->state);
    if (atomic_load(&b->count) == 0 && (s == DRAINING || s == RESETTING)) {
        atomic_store(&b->state, FILLING);
        barrier_changed(b);
    }
}

static bool before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/*
 * Python's _enter: wait while the previous cycle drains or resets.  That
 * normally takes an instant; if it takes over a second, a waiter of that
 * cycle may have died before leaving, so the dead are forgotten every
 * second.  A deadline that passes here breaks the barrier.
 */
static int barrier_enter(mp_barrier *b, const mp__deadline *d, const mp__watch *w)
{
    for (;;) {
        int s = atomic_load(&b->state);
        if (s != DRAINING && s != RESETTING)
            return s == BROKEN ? MP_EBROKEN : 0;
        mp__deadline slice;
        mp__deadline_init(&slice, 1.0);
        bool last = !d->forever && !before(&slice.at, &d->at);
        int r = barrier_sleep(b, last ? d : &slice, w);
        if (r == MP_EEOF)
            return r;
        if (r != MP_ETIMEDOUT)
            continue;
        barrier_prune(b);
        barrier_open_if_empty(b);
        s = atomic_load(&b->state);
        if (last && (s == DRAINING || s == RESETTING)) {
            barrier_break(b);
            return MP_EBROKEN;
        }
    }
}

/* A waiter that is not the last: wait until the cycle ends one way or
 * another; a timeout breaks the barrier. */
static int barrier_await(mp_barrier *b, int index, const mp__deadline *d, const mp__watch *w)
{
    while (atomic_load(&b->state) == FILLING) {
        int r = barrier_sleep(b, d, w);
        if (r != 0 && atomic_load(&b->state) == FILLING) {
            barrier_break(b);
            if (r == MP_EEOF)
                return r;
            break;
        }
    }
    return atomic_load(&b->state) < 0 ? MP_EBROKEN : index;
}

int mp_barrier_wait(mp_barrier *b, double timeout)
{
    return mp__barrier_wait_watched(b, timeout, NULL);
}

int mp__barrier_wait_watched(mp_barrier *b, double timeout, const mp__watch *w)
{
    int r = mp__obj_check(b, BARRIER_MAGIC);
    if (r != 0)
        return r;
    mp__deadline d;
    r = mp__deadline_init(&d, timeout == MP_FOREVER ? b->timeout : timeout);
    if (r != 0)
        return r;
    barrier_lock(b);
    r = barrier_enter(b, &d, w);
    if (r != 0) {
        mp__robust_unlock(&b->mutex);
        return r;
    }
    int index = atomic_fetch_add(&b->count, 1);
    if (index >= b->parties) { /* only after a death mid-update */
        atomic_fetch_sub(&b->count, 1);
        barrier_break(b);
        mp__robust_unlock(&b->mutex);
        return MP_EBROKEN;
    }
    b->slots[index] = self_tid();
    int ret = index + 1 == b->parties ? barrier_release(b, index)
                                      : barrier_await(b, index, &d, w);
    b->slots[index] = 0;
    atomic_fetch_sub(&b->count, 1);
    barrier_open_if_empty(b);
    mp__robust_unlock(&b->mutex);
    return ret;
}

int mp_barrier_reset(mp_barrier *b)
{
    int r = mp__obj_check(b, BARRIER_MAGIC);
    if (r != 0)
        return r;
    barrier_lock(b);
    barrier_prune(b);
    if (atomic_load(&b->count) > 0) {
        int s = atomic_load(&b->state);
        if (s == FILLING || s == BROKEN)
            atomic_store(&b->state, RESETTING);
    } else {
        atomic_store(&b->state, FILLING);
    }
    barrier_changed(b);
    mp__robust_unlock(&b->mutex);
    return 0;
}

int mp_barrier_abort(mp_barrier *b)
{
    int r = mp__obj_check(b, BARRIER_MAGIC);
    if (r != 0)
        return r;
    barrier_lock(b);
    barrier_break(b);
    mp__robust_unlock(&b->mutex);
    return 0;
}

/* The getters read without the mutex, so that an action may call them. */
int mp_barrier_parties(const mp_barrier *b)
{
    int r = mp__obj_check(b, BARRIER_MAGIC);
    return r != 0 ? r : b->parties;
}

int mp_barrier_n_waiting(const mp_barrier *b)
{
    int r = mp__obj_check(b, BARRIER_MAGIC);
    if (r != 0)
        return r;
    return atomic_load(&b->state) == FILLING ? atomic_load(&b->count) : 0;
}

int mp_barrier_broken(const mp_barrier *b)
{
    int r = mp__obj_check(b, BARRIER_MAGIC);
    return r != 0 ? r : atomic_load(&b->state) == BROKEN;
}

void mp_barrier_free(mp_barrier *b)
{
    if (mp__obj_check(b, BARRIER_MAGIC) != 0)
        return;
    pthread_mutex_destroy(&b->mutex);
    mp__obj_free(b);
}
