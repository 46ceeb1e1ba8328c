/* test_synchronize.c: Lock, RLock, Semaphore, Condition, Event, Barrier. */
#include "internal/mp.h"
#include "internal/lifetoken.h"
#include "internal/sync.h"
#include "mptest.h"

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------ */

/* Children (mpt_fork) report through their exit status: 0 is success,
 * anything else names the check that failed. */

/* Wait until *flag >= v (another process sets it); false after 20 s. */
static bool wait_flag(_Atomic int *flag, int v)
{
    for (int i = 0; i < 20000; i++) {
        if (atomic_load(flag) >= v)
            return true;
        usleep(1000);
    }
    return false;
}

/* A block of shared scratch memory for one test. */
struct shared {
    _Atomic int flag;
    _Atomic int flag2;
    _Atomic int holders;
    _Atomic int max_holders;
    _Atomic int actions;
    _Atomic int woken;
    volatile long counter;
    int order[64];
    int norder;
    int marks[64][8];
    mp_lock *lock;
    mp_lock *rlock;
    mp_semaphore *sem;
    mp_condition *cond;
    mp_event *event;
    mp_barrier *barrier;
    double timeout;
    int iterations;
    int id;
};

static struct shared *shared_new(void)
{
    struct shared *s = mp_shared_alloc(sizeof *s);
    assert_non_null(s);
    return s;
}

/* ---- Lock --------------------------------------------------------------- */

static void test_lock_basic(void **state)
{
    mp_lock *l = mp_lock_new();
    assert_non_null(l);
    assert_int_equal(mp_lock_locked(l), 0);
    assert_int_equal(mp_lock_is_mine(l), 0);
    assert_int_equal(mp_lock_count(l), 0);
    assert_int_equal(mp_lock_release(l), MP_EINVAL); /* not held */
    assert_int_equal(mp_lock_acquire(l, MP_FOREVER), 0);
    assert_int_equal(mp_lock_locked(l), 1);
    assert_int_equal(mp_lock_is_mine(l), 1);
    assert_int_equal(mp_lock_count(l), 1);
    /* Not recursive: a second acquire by the holder. */
    assert_int_equal(mp_lock_acquire(l, 0), MP_ETIMEDOUT);
    assert_int_equal(mp_lock_acquire(l, MP_FOREVER), -EDEADLK);
    assert_int_equal(mp_lock_release(l), 0);
    assert_int_equal(mp_lock_release(l), MP_EINVAL);
    assert_int_equal(mp_lock_locked(l), 0);
    assert_int_equal(mp_lock_acquire(l, 0), 0);
    assert_int_equal(mp_lock_release(l), 0);
    assert_int_equal(mp_lock_acquire(l, 1.5), 0);
    assert_int_equal(mp_lock_release(l), 0);
    assert_int_equal(mp_lock_acquire(l, INFINITY), 0);
    assert_int_equal(mp_lock_release(l), 0);
    mp_lock_free(l);
}

static void test_lock_self_timeout(void **state)
{
    mp_lock *l = mp_lock_new();
    assert_int_equal(mp_lock_acquire(l, MP_FOREVER), 0);
    double t0 = mp__now();
    assert_int_equal(mp_lock_acquire(l, 0.2), MP_ETIMEDOUT);
    double dt = mp__now() - t0;
    assert_true(dt >= 0.2);
    assert_true(dt < 5.0);
    assert_int_equal(mp_lock_release(l), 0);
    mp_lock_free(l);
}

static int hold_until_flag2(void *arg)
{
    struct shared *s = arg;
    if (mp_lock_acquire(s->lock, MP_FOREVER) != 0)
        return 1;
    atomic_store(&s->flag, 1);
    if (!wait_flag(&s->flag2, 1))
        return 2;
    return mp_lock_release(s->lock) == 0 ? 0 : 3;
}

static void test_lock_timeout_across_processes(void **state)
{
    struct shared *s = shared_new();
    s->lock = mp_lock_new();
    pid_t pid = mpt_fork(hold_until_flag2, s);
    assert_true(wait_flag(&s->flag, 1));
    assert_int_equal(mp_lock_locked(s->lock), 1);
    assert_int_equal(mp_lock_is_mine(s->lock), 0);
    assert_int_equal(mp_lock_acquire(s->lock, 0), MP_ETIMEDOUT);
    double t0 = mp__now();
    assert_int_equal(mp_lock_acquire(s->lock, 0.3), MP_ETIMEDOUT);
    double dt = mp__now() - t0;
    assert_true(dt >= 0.3);
    assert_true(dt < 5.3);
    /* Releasing another process's lock is refused. */
    assert_int_equal(mp_lock_release(s->lock), MP_EINVAL);
    atomic_store(&s->flag2, 1);
    assert_int_equal(mp_lock_acquire(s->lock, 10.0), 0);
    assert_int_equal(mpt_wait_status(pid), 0);
    assert_int_equal(mp_lock_release(s->lock), 0);
    mp_lock_free(s->lock);
    mp_shared_free(s);
}

static int count_under_lock(void *arg)
{
    struct shared *s = arg;
    for (int i = 0; i < s->iterations; i++) {
        if (mp_lock_acquire(s->lock, MP_FOREVER) != 0)
            return 1;
        /* A read-modify-write that loses updates without the lock. */
        long v = s->counter;
        if (i % 64 == 0)
            sched_yield();
        s->counter = v + 1;
        if (mp_lock_release(s->lock) != 0)
            return 2;
    }
    return 0;
}

static void counter_run(mp_lock *l)
{
    enum { N = 4, M = 20000 };
    struct shared *s = shared_new();
    s->lock = l;
    s->iterations = M;
    pid_t pids[N];
    for (int i = 0; i < N; i++)
        pids[i] = mpt_fork(count_under_lock, s);
    for (int i = 0; i < N; i++)
        assert_int_equal(mpt_wait_status(pids[i]), 0);
    assert_int_equal(s->counter, (long)N * M);
    mp_lock_free(l);
    mp_shared_free(s);
}

static void test_lock_counter(void **state)
{
    counter_run(mp_lock_new());
}

static void test_rlock_counter(void **state)
{
    counter_run(mp_rlock_new());
}

static void *release_in_thread(void *arg)
{
    return (void *)(intptr_t)mp_lock_release(arg);
}

/* Case 2: an RLock held twice, whose recursion count a stranger's release
 * must not touch either. */
static void test_release_by_other_thread(void **state)
{
    mp_lock *locks[3] = {mp_lock_new(), mp_rlock_new(), mp_rlock_new()};
    for (int i = 0; i < 3; i++) {
        int levels = i == 2 ? 2 : 1;
        for (int k = 0; k < levels; k++)
            assert_int_equal(mp_lock_acquire(locks[i], MP_FOREVER), 0);
        pthread_t t;
        void *ret;
        assert_int_equal(pthread_create(&t, NULL, release_in_thread, locks[i]), 0);
        pthread_join(t, &ret);
        assert_int_equal((int)(intptr_t)ret, MP_EINVAL);
        assert_int_equal(mp_lock_is_mine(locks[i]), 1);
        assert_int_equal(mp_lock_count(locks[i]), levels);
        for (int k = 0; k < levels; k++)
            assert_int_equal(mp_lock_release(locks[i]), 0);
        assert_int_equal(mp_lock_locked(locks[i]), 0);
        assert_int_equal(mp_lock_release(locks[i]), MP_EINVAL);
        mp_lock_free(locks[i]);
    }
}

static int release_not_mine(void *arg)
{
    struct shared *s = arg;
    /* Inherited across fork: the parent's thread holds it, not this one. */
    if (mp_lock_is_mine(s->lock) != 0 || mp_lock_locked(s->lock) != 1)
        return 1;
    if (mp_lock_release(s->lock) != MP_EINVAL)
        return 2;
    if (mp_lock_acquire(s->lock, 0) != MP_ETIMEDOUT)
        return 3;
    if (mp_lock_release(s->rlock) != MP_EINVAL)
        return 4;
    if (mp_lock_acquire(s->rlock, 0.05) != MP_ETIMEDOUT)
        return 5;
    return 0;
}

static void test_release_by_other_process(void **state)
{
    struct shared *s = shared_new();
    s->lock = mp_lock_new();
    s->rlock = mp_rlock_new();
    assert_int_equal(mp_lock_acquire(s->lock, MP_FOREVER), 0);
    assert_int_equal(mp_lock_acquire(s->rlock, MP_FOREVER), 0);
    pid_t pid = mpt_fork(release_not_mine, s);
    assert_int_equal(mpt_wait_status(pid), 0);
    assert_int_equal(mp_lock_release(s->lock), 0);
    assert_int_equal(mp_lock_release(s->rlock), 0);
    mp_lock_free(s->lock);
    mp_lock_free(s->rlock);
    mp_shared_free(s);
}

static void test_rlock_recursion(void **state)
{
    mp_rlock *r = mp_rlock_new();
    assert_non_null(r);
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(mp_rlock_acquire(r, i == 2 ? 0 : MP_FOREVER), 0);
        assert_int_equal(mp_rlock_count(r), i);
    }
    assert_int_equal(mp_rlock_locked(r), 1);
    for (int i = 3; i >= 1; i--) {
        assert_int_equal(mp_rlock_release(r), 0);
        assert_int_equal(mp_rlock_count(r), i - 1);
    }
    assert_int_equal(mp_rlock_locked(r), 0);
    assert_int_equal(mp_rlock_release(r), MP_EINVAL);
    mp_rlock_free(r);
}

/* ---- owner death -------------------------------------------------------- */

static int hold_and_hang(void *arg)
{
    struct shared *s = arg;
    if (mp_lock_acquire(s->lock, MP_FOREVER) != 0)
        return 1;
    if (mp_lock_acquire(s->rlock, MP_FOREVER) != 0 ||
        mp_lock_acquire(s->rlock, MP_FOREVER) != 0)
        return 2;
    atomic_store(&s->flag, 1);
    for (;;)
        pause();
}

static int acquire_ok(void *arg)
{
    struct shared *s = arg;
    if (mp_lock_acquire(s->lock, 5.0) != 0 || mp_lock_release(s->lock) != 0)
        return 1;
    if (mp_lock_acquire(s->rlock, 5.0) != 0 || mp_lock_release(s->rlock) != 0)
        return 2;
    return 0;
}

static void owner_death_run(bool reap_first)
{
    struct shared *s = shared_new();
    s->lock = mp_lock_new();
    s->rlock = mp_rlock_new();
    pid_t pid = mpt_fork(hold_and_hang, s);
    assert_true(wait_flag(&s->flag, 1));
    assert_int_equal(mp_lock_acquire(s->lock, 0), MP_ETIMEDOUT);
    kill(pid, SIGKILL);
    if (reap_first)
        assert_int_equal(mpt_wait_status(pid), 1000 + SIGKILL);
    /* Not reaped yet: the kernel released the robust mutexes at exit. */
    assert_int_equal(mp_lock_acquire(s->lock, 10.0), MP_EOWNERDEAD);
    assert_int_equal(mp_lock_is_mine(s->lock), 1);
    assert_int_equal(mp_lock_acquire(s->rlock, MP_FOREVER), MP_EOWNERDEAD);
    assert_int_equal(mp_lock_count(s->rlock), 1);
    if (!reap_first)
        assert_int_equal(mpt_wait_status(pid), 1000 + SIGKILL);
    /* The locks keep working, here and in another process. */
    assert_int_equal(mp_lock_release(s->lock), 0);
    assert_int_equal(mp_lock_release(s->rlock), 0);
    assert_int_equal(mp_lock_acquire(s->lock, 0), 0);
    assert_int_equal(mp_lock_release(s->lock), 0);
    pid = mpt_fork(acquire_ok, s);
    assert_int_equal(mpt_wait_status(pid), 0);
    assert_int_equal(mp_lock_acquire(s->rlock, 0), 0);
    assert_int_equal(mp_lock_release(s->rlock), 0);
    mp_lock_free(s->lock);
    mp_lock_free(s->rlock);
    mp_shared_free(s);
}

static void test_owner_killed(void **state)
{
    owner_death_run(false);
}

static void test_owner_killed_and_reaped(void **state)
{
    owner_death_run(true);
}

static int blocked_acquire(void *arg)
{
    struct shared *s = arg;
    atomic_store(&s->flag2, 1);
    int r = mp_lock_acquire(s->lock, 20.0);
    if (r != MP_EOWNERDEAD)
        return 1;
    return mp_lock_release(s->lock) == 0 ? 0 : 2;
}

static void test_owner_killed_while_waited_on(void **state)
{
    struct shared *s = shared_new();
    s->lock = mp_lock_new();
    s->rlock = mp_rlock_new();
    pid_t holder = mpt_fork(hold_and_hang, s);
    assert_true(wait_flag(&s->flag, 1));
    pid_t waiter = mpt_fork(blocked_acquire, s);
    assert_true(wait_flag(&s->flag2, 1));
    usleep(50000);
    kill(holder, SIGKILL);
    assert_int_equal(mpt_wait_status(waiter), 0);
    assert_int_equal(mpt_wait_status(holder), 1000 + SIGKILL);
    assert_int_equal(mp_lock_acquire(s->lock, 0), 0);
    assert_int_equal(mp_lock_release(s->lock), 0);
    mp_lock_free(s->lock);
    mp_lock_free(s->rlock);
    mp_shared_free(s);
}

static void *hold_and_exit(void *arg)
{
    return (void *)(intptr_t)mp_lock_acquire(arg, MP_FOREVER);
}

static void test_owner_thread_exits(void **state)
{
    mp_lock *l = mp_lock_new();
    pthread_t t;
    void *ret;
    assert_int_equal(pthread_create(&t, NULL, hold_and_exit, l), 0);
    pthread_join(t, &ret);
    assert_int_equal((int)(intptr_t)ret, 0);
    assert_int_equal(mp_lock_acquire(l, 5.0), MP_EOWNERDEAD);
    assert_int_equal(mp_lock_release(l), 0);
    mp_lock_free(l);
}

/* ---- life tokens -------------------------------------------------------- */

/* The slot index of a token (internal/lifetoken.h: index << 16 | gen). */
#define TOKEN_SLOT(t) ((t) >> 16)

struct churn {
    mp_lock *lock;
    _Atomic int failures;
    uint32_t token;
};

static void *churn_thread(void *arg)
{
    struct churn *c = arg;
    for (int i = 0; i < 10; i++) {
        int r = mp_lock_acquire(c->lock, 20.0);
        if (r != 0 && r != MP_EOWNERDEAD)
            atomic_fetch_add(&c->failures, 1);
        else if (mp_lock_release(c->lock) != 0)
            atomic_fetch_add(&c->failures, 1);
    }
    c->token = mp__token_cache;
    return NULL;
}

static void test_token_recycling(void **state)
{
    /* Threads one after the other, each with a token unlike the last. */
    struct churn c = {.lock = mp_lock_new()};
    uint32_t prev = 0;
    for (int i = 0; i < 300; i++) {
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, churn_thread, &c), 0);
        pthread_join(t, NULL);
        assert_int_not_equal(c.token, 0);
        assert_int_not_equal(c.token, prev);
        prev = c.token;
    }
    assert_int_equal(atomic_load(&c.failures), 0);
    /* Many at once, in rounds: the table does not grow past the most
     * threads alive at one time (plus this one). */
    enum { ROUNDS = 20, N = 24 };
    uint32_t max_slot = 0;
    for (int r = 0; r < ROUNDS; r++) {
        pthread_t t[N];
        struct churn cs[N];
        for (int i = 0; i < N; i++) {
            cs[i] = (struct churn){.lock = c.lock};
            assert_int_equal(pthread_create(&t[i], NULL, churn_thread, &cs[i]), 0);
        }
        for (int i = 0; i < N; i++) {
            pthread_join(t[i], NULL);
            assert_int_equal(atomic_load(&cs[i].failures), 0);
            if (TOKEN_SLOT(cs[i].token) > max_slot)
                max_slot = TOKEN_SLOT(cs[i].token);
        }
    }
    /* Claims go round the table from where the last one stopped; 480
     * threads, at most 25 alive at once, never need a second chunk of 256
     * slots. */
    assert_true(max_slot < 256);
    mp_lock_free(c.lock);
}

static void *take_and_exit(void *arg)
{
    struct churn *c = arg;
    c->token = mp__token_cache;
    int r = mp_lock_acquire(c->lock, MP_FOREVER);
    c->token = mp__token_cache;
    return (void *)(intptr_t)r;
}

static void test_token_reused_slot_is_not_owner(void **state)
{
    /* A thread exits holding the lock; the next thread most likely gets the
     * same slot back, with a new generation, and must not be the owner. */
    struct churn c = {.lock = mp_lock_new()};
    pthread_t t;
    void *ret;
    assert_int_equal(pthread_create(&t, NULL, take_and_exit, &c), 0);
    pthread_join(t, &ret);
    assert_int_equal((int)(intptr_t)ret, 0);
    uint32_t dead = c.token;
    struct churn c2 = {.lock = c.lock};
    assert_int_equal(pthread_create(&t, NULL, take_and_exit, &c2), 0);
    pthread_join(t, &ret);
    assert_int_equal((int)(intptr_t)ret, MP_EOWNERDEAD);
    assert_int_not_equal(c2.token, dead);
    /* c2's thread exited holding it too. */
    assert_int_equal(mp_lock_acquire(c.lock, 0), MP_EOWNERDEAD);
    assert_int_equal(mp_lock_release(c.lock), 0);
    mp_lock_free(c.lock);
}

struct sitter {
    mp_lock *lock;
    _Atomic int done;
    _Atomic int go;
    int result;
};

static void *sit(void *arg)
{
    struct sitter *s = arg;
    s->result = mp_lock_acquire(s->lock, 0);
    atomic_store(&s->done, 1);
    if (s->result == 0) {
        while (!atomic_load(&s->go))
            usleep(1000);
        mp_lock_release(s->lock);
    }
    return NULL;
}

static void test_token_table_full(void **state)
{
    /* With the table cut down to 4 slots, at most 4 live threads (this one
     * included, if its slot is among them) hold tokens: a fifth new thread
     * gets -EAGAIN. */
    enum { N = 5 };
    uint32_t saved = mp__token_limit;
    mp__token_limit = 4;
    struct sitter s[N];
    pthread_t t[N];
    int full = 0;
    for (int i = 0; i < N; i++) {
        s[i] = (struct sitter){.lock = mp_lock_new()};
        assert_int_equal(pthread_create(&t[i], NULL, sit, &s[i]), 0);
        while (!atomic_load(&s[i].done))
            usleep(1000);
        if (s[i].result == -EAGAIN)
            full++;
        else
            assert_int_equal(s[i].result, 0);
    }
    assert_true(full >= 1);
    for (int i = 0; i < N; i++) {
        atomic_store(&s[i].go, 1);
        pthread_join(t[i], NULL);
    }
    /* Slots given back by the exits serve new threads. */
    struct sitter again = {.lock = s[0].lock, .go = 1};
    pthread_t ta;
    assert_int_equal(pthread_create(&ta, NULL, sit, &again), 0);
    pthread_join(ta, NULL);
    assert_int_equal(again.result, 0);
    mp__token_limit = saved;
    for (int i = 0; i < N; i++)
        mp_lock_free(s[i].lock);
}

/* ---- waiters asleep when the holder goes -------------------------------- */

static int blocked_acquire_report(void *arg)
{
    struct shared *s = arg;
    atomic_fetch_add(&s->flag2, 1);
    double t0 = mp__now();
    int r = mp_lock_acquire(s->lock, 30.0);
    if (mp__now() - t0 > 15.0)
        return 10;
    if (r == MP_EOWNERDEAD)
        atomic_fetch_add(&s->actions, 1);
    else if (r != 0)
        return 1;
    /* A read-modify-write: two holders at once would lose a count. */
    long v = s->counter;
    usleep(1000);
    s->counter = v + 1;
    return mp_lock_release(s->lock) == 0 ? 0 : 2;
}

/* Several waiters asleep (processes) when the holder is killed: one gets
 * MP_EOWNERDEAD, all get the lock, none sleeps forever. */
static void many_waiters_holder_killed(void)
{
    enum { W = 4 };
    struct shared *s = shared_new();
    s->lock = mp_lock_new();
    s->rlock = mp_rlock_new();
    pid_t holder = mpt_fork(hold_and_hang, s);
    assert_true(wait_flag(&s->flag, 1));
    pid_t w[W];
    for (int i = 0; i < W; i++)
        w[i] = mpt_fork(blocked_acquire_report, s);
    assert_true(wait_flag(&s->flag2, W));
    usleep(200000); /* let them fall asleep */
    kill(holder, SIGKILL);
    for (int i = 0; i < W; i++)
        assert_int_equal(mpt_wait_status(w[i]), 0);
    assert_int_equal(mpt_wait_status(holder), 1000 + SIGKILL);
    assert_int_equal(atomic_load(&s->actions), 1);
    assert_int_equal(s->counter, W);
    assert_int_equal(mp_lock_acquire(s->lock, 0), 0);
    assert_int_equal(mp_lock_release(s->lock), 0);
    mp_lock_free(s->lock);
    mp_lock_free(s->rlock);
    mp_shared_free(s);
}

static void test_many_waiters_holder_killed(void **state)
{
    many_waiters_holder_killed();
}

struct exiter {
    mp_lock *lock;
    _Atomic int held;
    _Atomic int go;
};

static void *hold_then_exit(void *arg)
{
    struct exiter *e = arg;
    if (mp_lock_acquire(e->lock, MP_FOREVER) != 0)
        return NULL;
    atomic_store(&e->held, 1);
    while (!atomic_load(&e->go))
        usleep(1000);
    return NULL; /* without releasing */
}

/* A waiter asleep (another process) when the holder thread exits normally
 * without unlocking. */
static void waiter_holder_thread_exits(void)
{
    struct shared *s = shared_new();
    s->lock = mp_lock_new();
    struct exiter e = {.lock = s->lock};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, hold_then_exit, &e), 0);
    while (!atomic_load(&e.held))
        usleep(1000);
    pid_t w[2];
    for (int i = 0; i < 2; i++)
        w[i] = mpt_fork(blocked_acquire_report, s);
    assert_true(wait_flag(&s->flag2, 2));
    usleep(200000);
    atomic_store(&e.go, 1);
    pthread_join(t, NULL);
    for (int i = 0; i < 2; i++)
        assert_int_equal(mpt_wait_status(w[i]), 0);
    assert_int_equal(atomic_load(&s->actions), 1);
    assert_int_equal(s->counter, 2);
    mp_lock_free(s->lock);
    mp_shared_free(s);
}

static void test_waiter_holder_thread_exits(void **state)
{
    waiter_holder_thread_exits();
}

/* The same two with the sleep that replaces FUTEX_WAITV where the kernel
 * lacks it (ENOSYS): slices, looking at the holder between them. */
static void test_no_waitv_fallback(void **state)
{
    atomic_store(&mp__token_no_waitv, true);
    double t0 = mp__now();
    many_waiters_holder_killed();
    waiter_holder_thread_exits();
    test_owner_killed_while_waited_on(state);
    test_lock_timeout_across_processes(state);
    counter_run(mp_lock_new());
    atomic_store(&mp__token_no_waitv, false);
    assert_true(mp__now() - t0 < 60.0);
}

/* ---- fork ---------------------------------------------------------------- */

static int child_token(void *arg)
{
    struct shared *s = arg;
    uint32_t parent = (uint32_t)s->id;
    /* The parent's thread holds s->lock: not this process's. */
    if (mp_lock_is_mine(s->lock) != 0)
        return 1;
    if (mp_lock_acquire(s->lock, 0) != MP_ETIMEDOUT)
        return 2;
    if (mp__token_cache == 0 || mp__token_cache == parent)
        return 3;
    /* Exit holding a lock: the parent gets MP_EOWNERDEAD. */
    if (mp_lock_acquire(s->rlock, 0) != 0)
        return 4;
    return 0;
}

static void *fork_from_thread(void *arg)
{
    struct shared *s = arg;
    if (mp_lock_acquire(s->lock, MP_FOREVER) != 0)
        return (void *)1;
    s->id = (int)mp__token_cache;
    pid_t pid = fork();
    if (pid == 0)
        _exit(child_token(s));
    intptr_t st = mpt_wait_status(pid);
    mp_lock_release(s->lock);
    return (void *)st;
}

static void test_fork_child_tokens(void **state)
{
    struct shared *s = shared_new();
    s->lock = mp_lock_new();
    s->rlock = mp_rlock_new();
    /* From the main thread. */
    assert_int_equal(mp_lock_acquire(s->lock, MP_FOREVER), 0);
    s->id = (int)mp__token_cache;
    pid_t pid = mpt_fork(child_token, s);
    assert_int_equal(mpt_wait_status(pid), 0);
    assert_int_equal(mp_lock_is_mine(s->lock), 1);
    assert_int_equal(mp_lock_release(s->lock), 0);
    assert_int_equal(mp_lock_acquire(s->rlock, 5.0), MP_EOWNERDEAD);
    assert_int_equal(mp_lock_release(s->rlock), 0);
    /* From another thread: the child's exit must not give that thread's
     * slot back. */
    pthread_t t;
    void *ret;
    assert_int_equal(pthread_create(&t, NULL, fork_from_thread, s), 0);
    pthread_join(t, &ret);
    assert_int_equal((int)(intptr_t)ret, 0);
    assert_int_equal(mp_lock_acquire(s->lock, 0), 0);
    assert_int_equal(mp_lock_release(s->lock), 0);
    assert_int_equal(mp_lock_acquire(s->rlock, 5.0), MP_EOWNERDEAD);
    assert_int_equal(mp_lock_release(s->rlock), 0);
    mp_lock_free(s->lock);
    mp_lock_free(s->rlock);
    mp_shared_free(s);
}

/* ---- threads and processes contending ----------------------------------- */

static void *count_thread(void *arg)
{
    return (void *)(intptr_t)count_under_lock(arg);
}

static int count_threads(void *arg)
{
    pthread_t t[3];
    int bad = 0;
    for (int i = 0; i < 3; i++)
        if (pthread_create(&t[i], NULL, count_thread, arg) != 0)
            return 9;
    for (int i = 0; i < 3; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad |= (int)(intptr_t)r;
    }
    return bad;
}

static void test_lock_counter_threads(void **state)
{
    enum { P = 3, M = 5000 };
    for (int k = 0; k < 2; k++) {
        struct shared *s = shared_new();
        s->lock = k ? mp_rlock_new() : mp_lock_new();
        s->iterations = M;
        pid_t pids[P];
        for (int i = 0; i < P; i++)
            pids[i] = mpt_fork(count_threads, s);
        for (int i = 0; i < P; i++)
            assert_int_equal(mpt_wait_status(pids[i]), 0);
        assert_int_equal(s->counter, (long)P * 3 * M);
        mp_lock_free(s->lock);
        mp_shared_free(s);
    }
}

/* ---- Semaphore ---------------------------------------------------------- */

static int use_semaphore(void *arg)
{
    struct shared *s = arg;
    for (int i = 0; i < s->iterations; i++) {
        if (mp_semaphore_acquire(s->sem, MP_FOREVER) != 0)
            return 1;
        int h = atomic_fetch_add(&s->holders, 1) + 1;
        int m = atomic_load(&s->max_holders);
        while (h > m && !atomic_compare_exchange_weak(&s->max_holders, &m, h))
            ;
        usleep(200);
        atomic_fetch_sub(&s->holders, 1);
        if (mp_semaphore_release(s->sem) != 0)
            return 2;
    }
    return 0;
}

static void test_semaphore_limit(void **state)
{
    enum { N = 8 };
    struct shared *s = shared_new();
    s->sem = mp_semaphore_new(.value = 3);
    s->iterations = 200;
    pid_t pids[N];
    for (int i = 0; i < N; i++)
        pids[i] = mpt_fork(use_semaphore, s);
    for (int i = 0; i < N; i++)
        assert_int_equal(mpt_wait_status(pids[i]), 0);
    assert_true(atomic_load(&s->max_holders) <= 3);
    assert_true(atomic_load(&s->max_holders) >= 1);
    assert_int_equal(mp_semaphore_get_value(s->sem), 3);
    mp_semaphore_free(s->sem);
    mp_shared_free(s);
}

static void test_semaphore_basic(void **state)
{
    mp_semaphore *s = mp_semaphore_new();
    assert_non_null(s);
    assert_int_equal(mp_semaphore_get_value(s), 0);
    assert_int_equal(mp_semaphore_locked(s), 1);
    assert_int_equal(mp_semaphore_acquire(s, 0), MP_ETIMEDOUT);
    double t0 = mp__now();
    assert_int_equal(mp_semaphore_acquire(s, 0.2), MP_ETIMEDOUT);
    double dt = mp__now() - t0;
    assert_true(dt >= 0.2);
    assert_true(dt < 5.2);
    for (int i = 0; i < 5; i++)
        assert_int_equal(mp_semaphore_release(s), 0);
    assert_int_equal(mp_semaphore_get_value(s), 5);
    assert_int_equal(mp_semaphore_locked(s), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(mp_semaphore_acquire(s, 0), 0);
    assert_int_equal(mp_semaphore_acquire(s, 0), MP_ETIMEDOUT);
    mp_semaphore_free(s);

    s = mp_semaphore_new(.value = INT32_MAX);
    assert_int_equal(mp_semaphore_release(s), -EOVERFLOW);
    mp_semaphore_free(s);
}

static void test_bounded_semaphore(void **state)
{
    mp_bounded_semaphore *s = mp_bounded_semaphore_new(.value = 2);
    assert_non_null(s);
    assert_int_equal(mp_bounded_semaphore_release(s), MP_EINVAL);
    assert_int_equal(mp_bounded_semaphore_get_value(s), 2);
    assert_int_equal(mp_bounded_semaphore_acquire(s, 0), 0);
    assert_int_equal(mp_bounded_semaphore_release(s), 0);
    assert_int_equal(mp_bounded_semaphore_release(s), MP_EINVAL);
    assert_int_equal(mp_bounded_semaphore_get_value(s), 2);
    mp_bounded_semaphore_free(s);
    s = mp_bounded_semaphore_new(.value = 0);
    assert_int_equal(mp_semaphore_release(s), MP_EINVAL);
    mp_semaphore_free(s);
}

static int sem_waiter(void *arg)
{
    struct shared *s = arg;
    atomic_store(&s->flag, 1);
    return mp_semaphore_acquire(s->sem, 20.0) == 0 ? 0 : 1;
}

static void test_semaphore_wakes_other_process(void **state)
{
    struct shared *s = shared_new();
    s->sem = mp_semaphore_new(.value = 0);
    pid_t pids[3];
    for (int i = 0; i < 3; i++)
        pids[i] = mpt_fork(sem_waiter, s);
    assert_true(wait_flag(&s->flag, 1));
    usleep(50000);
    for (int i = 0; i < 3; i++)
        assert_int_equal(mp_semaphore_release(s->sem), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(mpt_wait_status(pids[i]), 0);
    assert_int_equal(mp_semaphore_get_value(s->sem), 0);
    mp_semaphore_free(s->sem);
    mp_shared_free(s);
}

/* ---- Condition ---------------------------------------------------------- */

/* Wait on the condition, then record the waiter's id in wake order. */
static int cond_waiter(void *arg)
{
    struct shared *s = arg;
    int id = s->id;
    if (mp_condition_acquire(s->cond, MP_FOREVER) != 0)
        return 1;
    atomic_fetch_add(&s->flag, 1); /* under the lock, then waiting */
    int r = mp_condition_wait(s->cond, 20.0);
    if (r != 0)
        return 2;
    s->order[s->norder++] = id;
    atomic_fetch_add(&s->woken, 1);
    return mp_condition_release(s->cond) == 0 ? 0 : 3;
}

/* Start n waiters one after the other, each queued before the next. */
static void start_waiters(struct shared *s, pid_t *pids, int n)
{
    for (int i = 0; i < n; i++) {
        s->id = i;
        pids[i] = mpt_fork(cond_waiter, s);
        assert_true(wait_flag(&s->flag, i + 1));
        /* It counted itself under the lock; once we get the lock it is in
         * the queue. */
        assert_int_equal(mp_condition_acquire(s->cond, MP_FOREVER), 0);
        assert_int_equal(mp_condition_release(s->cond), 0);
    }
}

static void test_condition_order(void **state)
{
    enum { N = 5 };
    struct shared *s = shared_new();
    s->cond = mp_condition_new();
    pid_t pids[N];
    start_waiters(s, pids, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(mp_condition_acquire(s->cond, MP_FOREVER), 0);
        assert_int_equal(mp_condition_notify(s->cond, 1), 1);
        assert_int_equal(mp_condition_release(s->cond), 0);
        assert_true(wait_flag(&s->woken, i + 1));
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(mpt_wait_status(pids[i]), 0);
    assert_int_equal(s->norder, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(s->order[i], i);
    mp_condition_free(s->cond);
    mp_shared_free(s);
}

static void test_condition_notify_counts(void **state)
{
    enum { N = 5 };
    struct shared *s = shared_new();
    s->lock = mp_lock_new();
    s->cond = mp_condition_new(.lock = s->lock);
    assert_ptr_equal(mp_condition_get_lock(s->cond), s->lock);
    pid_t pids[N];
    start_waiters(s, pids, N);
    assert_int_equal(mp_condition_acquire(s->cond, MP_FOREVER), 0);
    assert_int_equal(mp_condition_notify(s->cond, 0), 0);
    assert_int_equal(mp_condition_notify(s->cond, 2), 2);
    assert_int_equal(mp_condition_release(s->cond), 0);
    assert_true(wait_flag(&s->woken, 2));
    usleep(100000);
    assert_int_equal(atomic_load(&s->woken), 2);
    assert_int_equal(mp_condition_acquire(s->cond, MP_FOREVER), 0);
    assert_int_equal(mp_condition_notify_all(s->cond), 3);
    assert_int_equal(mp_condition_notify_all(s->cond), 0);
    assert_int_equal(mp_condition_release(s->cond), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(mpt_wait_status(pids[i]), 0);
    assert_int_equal(atomic_load(&s->woken), N);
    mp_condition_free(s->cond);
    mp_lock_free(s->lock);
    mp_shared_free(s);
}

static void test_condition_timeout_and_misuse(void **state)
{
    mp_condition *c = mp_condition_new();
    assert_non_null(c);
    /* Not holding the lock. */
    assert_int_equal(mp_condition_wait(c, 0.1), MP_EINVAL);
    assert_int_equal(mp_condition_notify(c, 1), MP_EINVAL);
    assert_int_equal(mp_condition_notify_all(c), MP_EINVAL);
    assert_int_equal(mp_condition_release(c), MP_EINVAL);
    /* The own lock is an RLock: levels are restored after the wait. */
    assert_int_equal(mp_condition_acquire(c, MP_FOREVER), 0);
    assert_int_equal(mp_condition_acquire(c, MP_FOREVER), 0);
    assert_int_equal(mp_lock_count(mp_condition_get_lock(c)), 2);
    assert_int_equal(mp_condition_notify(c, -1), MP_EINVAL);
    assert_int_equal(mp_condition_wait(c, -2.0), MP_EINVAL);
    assert_int_equal(mp_condition_wait(c, NAN), MP_EINVAL);
    assert_int_equal(mp_condition_wait_for(c, NULL, NULL, 0), MP_EINVAL);
    double t0 = mp__now();
    assert_int_equal(mp_condition_wait(c, 0.2), MP_ETIMEDOUT);
    double dt = mp__now() - t0;
    assert_true(dt >= 0.2);
    assert_true(dt < 5.2);
    assert_int_equal(mp_lock_count(mp_condition_get_lock(c)), 2);
    assert_int_equal(mp_condition_wait(c, 0), MP_ETIMEDOUT);
    /* Nobody is left queued by the timed-out waits. */
    assert_int_equal(mp_condition_notify_all(c), 0);
    assert_int_equal(mp_condition_release(c), 0);
    assert_int_equal(mp_condition_release(c), 0);
    assert_int_equal(mp_condition_release(c), MP_EINVAL);
    mp_condition_free(c);
}

static bool counter_reached(void *arg)
{
    struct shared *s = arg;
    return s->counter >= 3;
}

static int bump_counter(void *arg)
{
    struct shared *s = arg;
    for (int i = 0; i < 3; i++) {
        usleep(20000);
        if (mp_condition_acquire(s->cond, MP_FOREVER) != 0)
            return 1;
        s->counter++;
        if (mp_condition_notify_all(s->cond) < 0)
            return 2;
        if (mp_condition_release(s->cond) != 0)
            return 3;
    }
    return 0;
}

static void test_condition_wait_for(void **state)
{
    struct shared *s = shared_new();
    s->cond = mp_condition_new();
    assert_int_equal(mp_condition_acquire(s->cond, MP_FOREVER), 0);
    /* False until the timeout. */
    double t0 = mp__now();
    assert_int_equal(mp_condition_wait_for(s->cond, counter_reached, s, 0.2), MP_ETIMEDOUT);
    assert_true(mp__now() - t0 >= 0.2);
    assert_int_equal(mp_condition_wait_for(s->cond, counter_reached, s, 0), MP_ETIMEDOUT);
    pid_t pid = mpt_fork(bump_counter, s);
    assert_int_equal(mp_condition_wait_for(s->cond, counter_reached, s, 20.0), 0);
    assert_int_equal(s->counter, 3);
    assert_int_equal(mp_lock_count(mp_condition_get_lock(s->cond)), 1);
    /* Already true: no wait at all. */
    assert_int_equal(mp_condition_wait_for(s->cond, counter_reached, s, 0), 0);
    assert_int_equal(mp_condition_release(s->cond), 0);
    assert_int_equal(mpt_wait_status(pid), 0);
    mp_condition_free(s->cond);
    mp_shared_free(s);
}

static int cond_wait_forever(void *arg)
{
    struct shared *s = arg;
    if (mp_condition_acquire(s->cond, MP_FOREVER) != 0)
        return 1;
    atomic_fetch_add(&s->flag, 1);
    mp_condition_wait(s->cond, MP_FOREVER);
    return 2;
}

static void test_condition_dead_waiter_skipped(void **state)
{
    struct shared *s = shared_new();
    s->cond = mp_condition_new();
    pid_t dead = mpt_fork(cond_wait_forever, s);
    assert_true(wait_flag(&s->flag, 1));
    assert_int_equal(mp_condition_acquire(s->cond, MP_FOREVER), 0);
    assert_int_equal(mp_condition_release(s->cond), 0);
    kill(dead, SIGKILL);
    assert_int_equal(mpt_wait_status(dead), 1000 + SIGKILL);
    /* A live waiter queued behind the dead one gets the notify. */
    pid_t live;
    s->id = 7;
    live = mpt_fork(cond_waiter, s);
    assert_true(wait_flag(&s->flag, 2));
    assert_int_equal(mp_condition_acquire(s->cond, MP_FOREVER), 0);
    assert_int_equal(mp_condition_notify(s->cond, 1), 1);
    assert_int_equal(mp_condition_release(s->cond), 0);
    assert_int_equal(mpt_wait_status(live), 0);
    assert_int_equal(s->order[0], 7);
    mp_condition_free(s->cond);
    mp_shared_free(s);
}

/* ---- Event -------------------------------------------------------------- */

static int event_waiter(void *arg)
{
    struct shared *s = arg;
    atomic_fetch_add(&s->flag, 1);
    if (mp_event_wait(s->event, 0.1) != MP_ETIMEDOUT)
        return 1;
    if (mp_event_is_set(s->event) != 0)
        return 2;
    atomic_fetch_add(&s->flag2, 1);
    if (mp_event_wait(s->event, MP_FOREVER) != 0)
        return 3;
    return 0;
}

static void test_event_across_processes(void **state)
{
    enum { N = 3 };
    struct shared *s = shared_new();
    s->event = mp_event_new();
    assert_non_null(s->event);
    assert_int_equal(mp_event_is_set(s->event), 0);
    pid_t pids[N];
    for (int i = 0; i < N; i++)
        pids[i] = mpt_fork(event_waiter, s);
    assert_true(wait_flag(&s->flag2, N));
    usleep(50000);
    assert_int_equal(mp_event_set(s->event), 0);
    assert_int_equal(mp_event_set(s->event), 0);
    assert_int_equal(mp_event_is_set(s->event), 1);
    for (int i = 0; i < N; i++)
        assert_int_equal(mpt_wait_status(pids[i]), 0);
    assert_int_equal(mp_event_wait(s->event, 0), 0);
    assert_int_equal(mp_event_clear(s->event), 0);
    assert_int_equal(mp_event_clear(s->event), 0);
    assert_int_equal(mp_event_is_set(s->event), 0);
    assert_int_equal(mp_event_wait(s->event, 0), MP_ETIMEDOUT);
    double t0 = mp__now();
    assert_int_equal(mp_event_wait(s->event, 0.2), MP_ETIMEDOUT);
    double dt = mp__now() - t0;
    assert_true(dt >= 0.2);
    assert_true(dt < 5.2);
    mp_event_free(s->event);
    mp_shared_free(s);
}

static int event_wait_once(void *arg)
{
    struct shared *s = arg;
    atomic_fetch_add(&s->flag, 1);
    return mp_event_wait(s->event, 20.0) == 0 ? 0 : 1;
}

static void test_event_set_then_clear(void **state)
{
    /* A set immediately followed by a clear still releases the waiters. */
    struct shared *s = shared_new();
    s->event = mp_event_new();
    pid_t pids[2];
    for (int i = 0; i < 2; i++)
        pids[i] = mpt_fork(event_wait_once, s);
    assert_true(wait_flag(&s->flag, 2));
    usleep(50000);
    assert_int_equal(mp_event_set(s->event), 0);
    assert_int_equal(mp_event_clear(s->event), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(mpt_wait_status(pids[i]), 0);
    mp_event_free(s->event);
    mp_shared_free(s);
}

/* ---- Barrier ------------------------------------------------------------ */

static int count_action(void *arg)
{
    struct shared *s = arg;
    atomic_fetch_add(&s->actions, 1);
    return 0;
}

static int failing_action(void *arg)
{
    return -1;
}

static int barrier_cycles(void *arg)
{
    struct shared *s = arg;
    for (int cycle = 0; cycle < s->iterations; cycle++) {
        int idx = mp_barrier_wait(s->barrier, 20.0);
        if (idx < 0 || idx >= 4)
            return 1;
        /* Every arrival index is marked once per cycle. */
        __atomic_fetch_add(&s->marks[cycle][idx], 1, __ATOMIC_SEQ_CST);
        if (atomic_load(&s->actions) < cycle + 1)
            return 2; /* released before the action ran */
    }
    return 0;
}

static void test_barrier_indexes_and_action(void **state)
{
    enum { N = 4, CYCLES = 20 };
    struct shared *s = shared_new();
    s->barrier = mp_barrier_new(.parties = N, .action = count_action, .action_arg = s);
    assert_non_null(s->barrier);
    assert_int_equal(mp_barrier_parties(s->barrier), N);
    s->iterations = CYCLES;
    pid_t pids[N];
    for (int i = 0; i < N; i++)
        pids[i] = mpt_fork(barrier_cycles, s);
    for (int i = 0; i < N; i++)
        assert_int_equal(mpt_wait_status(pids[i]), 0);
    assert_int_equal(atomic_load(&s->actions), CYCLES);
    for (int c = 0; c < CYCLES; c++)
        for (int i = 0; i < N; i++)
            assert_int_equal(s->marks[c][i], 1);
    assert_int_equal(mp_barrier_n_waiting(s->barrier), 0);
    assert_int_equal(mp_barrier_broken(s->barrier), 0);
    mp_barrier_free(s->barrier);
    mp_shared_free(s);
}

static int barrier_wait_expect(void *arg)
{
    struct shared *s = arg;
    atomic_fetch_add(&s->flag, 1);
    int r = mp_barrier_wait(s->barrier, s->timeout);
    return r == MP_EBROKEN ? 0 : 10 + (r < 0 ? 0 : r);
}

static void test_barrier_timeout_breaks(void **state)
{
    struct shared *s = shared_new();
    s->barrier = mp_barrier_new(.parties = 3);
    s->timeout = 20.0;
    pid_t pid = mpt_fork(barrier_wait_expect, s);
    assert_true(wait_flag(&s->flag, 1));
    for (int i = 0; i < 200 && mp_barrier_n_waiting(s->barrier) != 1; i++)
        usleep(5000);
    assert_int_equal(mp_barrier_n_waiting(s->barrier), 1);
    double t0 = mp__now();
    assert_int_equal(mp_barrier_wait(s->barrier, 0.2), MP_EBROKEN);
    double dt = mp__now() - t0;
    assert_true(dt >= 0.2);
    assert_true(dt < 5.2);
    assert_int_equal(mpt_wait_status(pid), 0);
    assert_int_equal(mp_barrier_broken(s->barrier), 1);
    assert_int_equal(mp_barrier_n_waiting(s->barrier), 0);
    assert_int_equal(mp_barrier_wait(s->barrier, 0), MP_EBROKEN);
    assert_int_equal(mp_barrier_reset(s->barrier), 0);
    assert_int_equal(mp_barrier_broken(s->barrier), 0);
    mp_barrier_free(s->barrier);

    /* The default timeout given at creation. */
    s->barrier = mp_barrier_new(.parties = 2, .timeout = 0.2);
    t0 = mp__now();
    assert_int_equal(mp_barrier_wait(s->barrier, MP_FOREVER), MP_EBROKEN);
    assert_true(mp__now() - t0 >= 0.2);
    assert_int_equal(mp_barrier_broken(s->barrier), 1);
    mp_barrier_free(s->barrier);

    /* parties = 1: every wait completes a cycle at once. */
    s->barrier = mp_barrier_new(.parties = 1, .action = count_action, .action_arg = s);
    atomic_store(&s->actions, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(mp_barrier_wait(s->barrier, 0), 0);
    assert_int_equal(atomic_load(&s->actions), 3);
    mp_barrier_free(s->barrier);
    mp_shared_free(s);
}

static void test_barrier_abort_reset_action(void **state)
{
    struct shared *s = shared_new();
    s->barrier = mp_barrier_new(.parties = 3);
    s->timeout = MP_FOREVER;
    pid_t pids[2];
    for (int i = 0; i < 2; i++)
        pids[i] = mpt_fork(barrier_wait_expect, s);
    for (int i = 0; i < 400 && mp_barrier_n_waiting(s->barrier) != 2; i++)
        usleep(5000);
    assert_int_equal(mp_barrier_n_waiting(s->barrier), 2);
    assert_int_equal(mp_barrier_abort(s->barrier), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(mpt_wait_status(pids[i]), 0);
    assert_int_equal(mp_barrier_broken(s->barrier), 1);
    assert_int_equal(mp_barrier_reset(s->barrier), 0);
    assert_int_equal(mp_barrier_broken(s->barrier), 0);

    /* reset() while processes wait: they get MP_EBROKEN, the barrier is
     * usable again afterwards. */
    atomic_store(&s->flag, 0);
    for (int i = 0; i < 2; i++)
        pids[i] = mpt_fork(barrier_wait_expect, s);
    for (int i = 0; i < 400 && mp_barrier_n_waiting(s->barrier) != 2; i++)
        usleep(5000);
    assert_int_equal(mp_barrier_n_waiting(s->barrier), 2);
    assert_int_equal(mp_barrier_reset(s->barrier), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(mpt_wait_status(pids[i]), 0);
    assert_int_equal(mp_barrier_broken(s->barrier), 0);
    mp_barrier_free(s->barrier);

    /* A failing action breaks the barrier for everybody. */
    s->barrier = mp_barrier_new(.parties = 2, .action = failing_action);
    atomic_store(&s->flag, 0);
    pids[0] = mpt_fork(barrier_wait_expect, s);
    assert_int_equal(mp_barrier_wait(s->barrier, 20.0), MP_EBROKEN);
    assert_int_equal(mpt_wait_status(pids[0]), 0);
    assert_int_equal(mp_barrier_broken(s->barrier), 1);
    mp_barrier_free(s->barrier);
    mp_shared_free(s);
}

static int barrier_wait_index(void *arg)
{
    struct shared *s = arg;
    atomic_fetch_add(&s->flag, 1);
    int r = mp_barrier_wait(s->barrier, s->timeout);
    if (r < 0)
        return 100;
    __atomic_fetch_add(&s->marks[0][r], 1, __ATOMIC_SEQ_CST);
    return 0;
}

static void test_barrier_dead_party(void **state)
{
    struct shared *s = shared_new();
    s->barrier = mp_barrier_new(.parties = 2);
    s->timeout = 20.0;
    /* A party is killed while it waits: it still counts as arrived. */
    pid_t dead = mpt_fork(barrier_wait_index, s);
    assert_true(wait_flag(&s->flag, 1));
    /* Killed only once it waits (which takes seconds under valgrind). */
    for (int i = 0; i < 4000 && mp_barrier_n_waiting(s->barrier) != 1; i++)
        usleep(5000);
    assert_int_equal(mp_barrier_n_waiting(s->barrier), 1);
    kill(dead, SIGKILL);
    assert_int_equal(mpt_wait_status(dead), 1000 + SIGKILL);
    assert_int_equal(mp_barrier_wait(s->barrier, 5.0), 1);
    /* It never leaves the drained cycle: the next waiters forget it after
     * a second and the barrier works again. */
    double t0 = mp__now();
    pid_t pid = mpt_fork(barrier_wait_index, s);
    int idx = mp_barrier_wait(s->barrier, 10.0);
    assert_true(idx == 0 || idx == 1);
    assert_int_equal(mpt_wait_status(pid), 0);
    assert_int_equal(s->marks[0][idx], 0);
    assert_int_equal(s->marks[0][1 - idx], 1);
    assert_true(mp__now() - t0 < 9.0);
    assert_int_equal(mp_barrier_broken(s->barrier), 0);
    mp_barrier_free(s->barrier);
    mp_shared_free(s);
}

static int die_in_action(void *arg)
{
    struct shared *s = arg;
    if (atomic_fetch_add(&s->actions, 1) == 0)
        raise(SIGKILL);
    return 0;
}

static void test_barrier_action_dies(void **state)
{
    struct shared *s = shared_new();
    s->barrier = mp_barrier_new(.parties = 2, .action = die_in_action, .action_arg = s);
    s->timeout = 20.0;
    /* The parent arrives first (it must not run the action: that would
     * kill the test), so it waits in the barrier before the child starts.
     * The child arrives last, runs the action and dies holding the
     * barrier's internal lock: the parent's wait times out broken. */
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 20000 && mp_barrier_n_waiting(s->barrier) < 1; i++)
            usleep(1000);
        _exit(barrier_wait_index(s));
    }
    assert_true(pid > 0);
    double t0 = mp__now();
    assert_int_equal(mp_barrier_wait(s->barrier, 3.0), MP_EBROKEN);
    assert_true(mp__now() - t0 >= 3.0);
    assert_int_equal(mpt_wait_status(pid), 1000 + SIGKILL);
    assert_int_equal(mp_barrier_broken(s->barrier), 1);
    assert_int_equal(atomic_load(&s->actions), 1);
    /* reset() forgets the dead party; a full cycle works again. */
    assert_int_equal(mp_barrier_reset(s->barrier), 0);
    assert_int_equal(mp_barrier_broken(s->barrier), 0);
    assert_int_equal(mp_barrier_n_waiting(s->barrier), 0);
    pid = mpt_fork(barrier_wait_index, s);
    int idx = mp_barrier_wait(s->barrier, 10.0);
    assert_true(idx == 0 || idx == 1);
    assert_int_equal(mpt_wait_status(pid), 0);
    assert_int_equal(atomic_load(&s->actions), 2);
    mp_barrier_free(s->barrier);
    mp_shared_free(s);
}

/* ---- bad arguments and freed objects ------------------------------------ */

static void test_bad_arguments(void **state)
{
    assert_int_equal(mp_lock_acquire(NULL, 0), MP_EINVAL);
    assert_int_equal(mp_lock_release(NULL), MP_EINVAL);
    assert_int_equal(mp_lock_locked(NULL), MP_EINVAL);
    assert_int_equal(mp_lock_is_mine(NULL), MP_EINVAL);
    assert_int_equal(mp_lock_count(NULL), MP_EINVAL);
    mp_lock_free(NULL);
    assert_int_equal(mp_semaphore_acquire(NULL, 0), MP_EINVAL);
    assert_int_equal(mp_semaphore_release(NULL), MP_EINVAL);
    assert_int_equal(mp_semaphore_get_value(NULL), MP_EINVAL);
    assert_int_equal(mp_semaphore_locked(NULL), MP_EINVAL);
    mp_semaphore_free(NULL);
    assert_int_equal(mp_condition_acquire(NULL, 0), MP_EINVAL);
    assert_int_equal(mp_condition_release(NULL), MP_EINVAL);
    assert_int_equal(mp_condition_wait(NULL, 0), MP_EINVAL);
    assert_int_equal(mp_condition_wait_for(NULL, counter_reached, NULL, 0), MP_EINVAL);
    assert_int_equal(mp_condition_notify(NULL, 1), MP_EINVAL);
    assert_int_equal(mp_condition_notify_all(NULL), MP_EINVAL);
    assert_null(mp_condition_get_lock(NULL));
    mp_condition_free(NULL);
    assert_int_equal(mp_event_set(NULL), MP_EINVAL);
    assert_int_equal(mp_event_clear(NULL), MP_EINVAL);
    assert_int_equal(mp_event_is_set(NULL), MP_EINVAL);
    assert_int_equal(mp_event_wait(NULL, 0), MP_EINVAL);
    mp_event_free(NULL);
    assert_int_equal(mp_barrier_wait(NULL, 0), MP_EINVAL);
    assert_int_equal(mp_barrier_reset(NULL), MP_EINVAL);
    assert_int_equal(mp_barrier_abort(NULL), MP_EINVAL);
    assert_int_equal(mp_barrier_parties(NULL), MP_EINVAL);
    assert_int_equal(mp_barrier_n_waiting(NULL), MP_EINVAL);
    assert_int_equal(mp_barrier_broken(NULL), MP_EINVAL);
    mp_barrier_free(NULL);

    /* Objects of the wrong type and memory outside the arena. */
    mp_event *e = mp_event_new();
    int local;
    assert_int_equal(mp_lock_acquire((mp_lock *)e, 0), MP_EINVAL);
    assert_int_equal(mp_semaphore_release((mp_semaphore *)e), MP_EINVAL);
    assert_int_equal(mp_event_set((mp_event *)&local), MP_EINVAL);

    /* Bad timeouts. */
    mp_lock *l = mp_lock_new();
    mp_semaphore *s = mp_semaphore_new(.value = 1);
    mp_barrier *b = mp_barrier_new(.parties = 2);
    assert_int_equal(mp_lock_acquire(l, -0.5), MP_EINVAL);
    assert_int_equal(mp_lock_acquire(l, NAN), MP_EINVAL);
    assert_int_equal(mp_semaphore_acquire(s, -3), MP_EINVAL);
    assert_int_equal(mp_event_wait(e, NAN), MP_EINVAL);
    assert_int_equal(mp_barrier_wait(b, -2), MP_EINVAL);
    assert_int_equal(mp_lock_locked(l), 0);
    assert_int_equal(mp_semaphore_get_value(s), 1);
    assert_int_equal(mp_barrier_n_waiting(b), 0);

    /* Bad options. */
    assert_null(mp_semaphore_new(.value = -1));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_bounded_semaphore_new(.value = -1));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_barrier_new());
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_barrier_new(.parties = 0));
    assert_null(mp_barrier_new(.parties = 2, .timeout = -5));
    assert_null(mp_barrier_new(.parties = 2, .timeout = NAN));
    assert_null(mp_barrier_new(.parties = 2, .action = (mp_barrier_action_fn)(uintptr_t)16));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_condition_new(.lock = (mp_lock *)e));
    assert_int_equal(mp_last_error(), MP_EINVAL);

    /* Freed objects. */
    mp_condition *c = mp_condition_new(.lock = l);
    mp_lock *r = mp_rlock_new();
    mp_lock_free(l);
    mp_lock_free(r);
    mp_semaphore_free(s);
    mp_event_free(e);
    mp_barrier_free(b);
    assert_int_equal(mp_lock_acquire(l, 0), MP_EINVAL);
    assert_int_equal(mp_lock_release(r), MP_EINVAL);
    assert_int_equal(mp_lock_locked(l), MP_EINVAL);
    assert_int_equal(mp_semaphore_acquire(s, 0), MP_EINVAL);
    assert_int_equal(mp_semaphore_get_value(s), MP_EINVAL);
    assert_int_equal(mp_event_set(e), MP_EINVAL);
    assert_int_equal(mp_event_wait(e, 0), MP_EINVAL);
    assert_int_equal(mp_barrier_wait(b, 0), MP_EINVAL);
    assert_int_equal(mp_barrier_parties(b), MP_EINVAL);
    /* A condition whose lock was freed. */
    assert_int_equal(mp_condition_wait(c, 0), MP_EINVAL);
    assert_int_equal(mp_condition_notify(c, 1), MP_EINVAL);
    assert_int_equal(mp_condition_acquire(c, 0), MP_EINVAL);
    mp_condition_free(c);
    assert_int_equal(mp_condition_notify(c, 1), MP_EINVAL);
    /* Double frees are ignored. */
    mp_lock_free(l);
    mp_semaphore_free(s);
    mp_event_free(e);
    mp_barrier_free(b);
    mp_condition_free(c);
}

static void test_free_held_lock(void **state)
{
    /* Held by the caller: released, then freed. */
    mp_lock *l = mp_rlock_new();
    assert_int_equal(mp_lock_acquire(l, 0), 0);
    assert_int_equal(mp_lock_acquire(l, 0), 0);
    mp_lock_free(l);
    assert_int_equal(mp_lock_acquire(l, 0), MP_EINVAL);
    /* Held by a process that died: freed normally. */
    struct shared *s = shared_new();
    s->lock = mp_lock_new();
    s->rlock = mp_rlock_new();
    pid_t pid = mpt_fork(hold_and_hang, s);
    assert_true(wait_flag(&s->flag, 1));
    kill(pid, SIGKILL);
    assert_int_equal(mpt_wait_status(pid), 1000 + SIGKILL);
    mp_lock_free(s->lock);
    mp_lock_free(s->rlock);
    assert_int_equal(mp_lock_locked(s->lock), MP_EINVAL);
    mp_shared_free(s);
}

struct holder {
    mp_lock *l;
    _Atomic int held;
    _Atomic int go;
    int release_result;
};

static void *hold_until_go(void *arg)
{
    struct holder *h = arg;
    mp_lock_acquire(h->l, MP_FOREVER);
    atomic_store(&h->held, 1);
    while (!atomic_load(&h->go))
        usleep(1000);
    h->release_result = mp_lock_release(h->l);
    return NULL;
}

/* Free l, which another thread holds: it is gone for this one. */
static void free_held_elsewhere(mp_lock *l)
{
    mp_lock_free(l);
    assert_int_equal(mp_lock_locked(l), MP_EINVAL);
    assert_int_equal(mp_lock_acquire(l, 0), MP_EINVAL);
}

/* Other robust mutexes still work after a thread's exit. */
static void new_lock_works(void)
{
    mp_lock *l = mp_lock_new();
    assert_int_equal(mp_lock_acquire(l, 0), 0);
    assert_int_equal(mp_lock_release(l), 0);
    mp_lock_free(l);
}

static void test_free_lock_held_by_other_thread(void **state)
{
    /* The object is marked freed, its memory stays (see mp_lock_free). */
    struct holder h = {.l = mp_lock_new()};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, hold_until_go, &h), 0);
    while (!atomic_load(&h.held))
        usleep(1000);
    free_held_elsewhere(h.l);
    atomic_store(&h.go, 1);
    pthread_join(t, NULL);
    assert_int_equal(h.release_result, MP_EINVAL);
    new_lock_works();
}

/* ---- registered holds (synchronize.c, "Registered holds") ----------------- */

/* Whether the library registers holds (with glibc only, for now). */
static bool holds_register(void)
{
#ifdef __GLIBC__
    return true;
#else
    return false;
#endif
}

/* True once thread tid of process pid sleeps in the kernel (state S), 20 s
 * at most. */
static bool task_sleeps(pid_t pid, pid_t tid)
{
    char path[96], buf[512];
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
    for (int i = 0; i < 20000; i++) {
        FILE *f = fopen(path, "r");
        size_t k = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[k] = '\0';
        const char *p = strrchr(buf, ')');
        if (p != NULL && p[1] == ' ' && p[2] == 'S')
            return true;
        usleep(1000);
    }
    return false;
}

static bool life_waited_soon(const mp_lock *l)
{
    for (int i = 0; i < 20000 && !mp__lock_life_waited(l); i++)
        usleep(1000);
    return mp__lock_life_waited(l);
}

struct reg_shared {
    mp_lock *l;
    _Atomic int phase;
    _Atomic pid_t tid;
    _Atomic int deaths; /* MP_EOWNERDEAD results */
};

/* Take the lock (the parent holds it, so this sleeps), report whether the
 * hold is registered, then hang until killed or, with phase 9, release. */
static int reg_take_and_hold(void *arg)
{
    struct reg_shared *s = arg;
    atomic_store(&s->tid, (pid_t)syscall(SYS_gettid));
    atomic_store(&s->phase, 1);
    if (mp_lock_acquire(s->l, 30.0) != 0)
        return 1;
    bool reg = mp__lock_reg(s->l) == mp__token_cache;
    atomic_store(&s->phase, reg ? 2 : 3);
    while (atomic_load(&s->phase) != 9)
        usleep(1000);
    return mp_lock_release(s->l) == 0 ? 0 : 4;
}

/* Wait for the registered holder's death: the lock well before the
 * timeout, with MP_EOWNERDEAD for exactly one of the waiters. */
static int reg_wait_for_death(void *arg)
{
    struct reg_shared *s = arg;
    double t0 = mp__now();
    int r = mp_lock_acquire(s->l, 60.0);
    if (r == MP_EOWNERDEAD)
        atomic_fetch_add(&s->deaths, 1);
    else if (r != 0)
        return 1;
    if (mp__now() - t0 > 30.0)
        return 2;
    return mp_lock_release(s->l) == 0 ? 0 : 3;
}

/* Wait for the registered holder's release: the lock well before the
 * timeout. */
static int reg_wait_for_release(void *arg)
{
    struct reg_shared *s = arg;
    double t0 = mp__now();
    if (mp_lock_acquire(s->l, 60.0) != 0)
        return 1;
    if (mp__now() - t0 > 30.0)
        return 2;
    return mp_lock_release(s->l) == 0 ? 0 : 3;
}

/* The parent holds s->l; a child takes it after sleeping: its hold is
 * registered.  The child's pid. */
static pid_t start_registered_holder(struct reg_shared *s)
{
    atomic_store(&s->phase, 0);
    assert_int_equal(mp_lock_acquire(s->l, 0), 0);
    pid_t pid = mpt_fork(reg_take_and_hold, s);
    assert_true(wait_flag(&s->phase, 1));
    assert_true(task_sleeps(pid, atomic_load(&s->tid)));
    assert_int_equal(mp_lock_release(s->l), 0);
    assert_true(wait_flag(&s->phase, 2));
    assert_int_equal(atomic_load(&s->phase), 2);
    assert_int_not_equal(mp__lock_reg(s->l), 0);
    return pid;
}

static void test_registered_holder_killed(void **state)
{
    if (!holds_register())
        skip();
    struct reg_shared *s = mp_shared_alloc(sizeof *s);
    assert_non_null(s);
    s->l = mp_lock_new();
    /* A waiter of a registered hold sleeps on the lock's life mutex; the
     * holder's release wakes it, */
    pid_t holder = start_registered_holder(s);
    pid_t waiter = mpt_fork(reg_wait_for_release, s);
    assert_true(life_waited_soon(s->l));
    atomic_store(&s->phase, 9);
    assert_int_equal(mpt_wait_timed(waiter, 45), 0);
    assert_int_equal(mpt_wait_timed(holder, 30), 0);
    /* and so does its death: the kernel wakes one sleeper, which wakes
     * the others. */
    holder = start_registered_holder(s);
    pid_t waiters[3];
    for (int i = 0; i < 3; i++) {
        waiters[i] = mpt_fork(reg_wait_for_death, s);
        assert_true(task_sleeps(waiters[i], waiters[i]));
    }
    assert_true(life_waited_soon(s->l));
    kill(holder, SIGKILL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(mpt_wait_timed(waiters[i], 45), 0);
    assert_int_equal(atomic_load(&s->deaths), 1);
    assert_int_equal(mpt_wait_status(holder), 1000 + SIGKILL);
    /* The dead holder's life mutex is taken over by the next registration,
     * and the lock hands over as before. */
    holder = start_registered_holder(s);
    atomic_store(&s->phase, 9);
    assert_int_equal(mpt_wait_timed(holder, 30), 0);
    assert_int_equal(mp_lock_acquire(s->l, 0), 0);
    assert_int_equal(mp_lock_release(s->l), 0);
    assert_int_equal(mp__lock_reg(s->l), 0);
    mp_lock_free(s->l);
    mp_shared_free(s);
}

/* Take the lock: the first to get it (the heir) records its pid and hangs,
 * to be killed; the other must learn of that death well before its
 * timeout. */
static int next_holder_or_heir(void *arg)
{
    struct reg_shared *s = arg;
    double t0 = mp__now();
    int r = mp_lock_acquire(s->l, 60.0);
    if (r == 0 && atomic_fetch_add(&s->phase, 1) == 0) {
        atomic_store(&s->tid, getpid());
        for (;;)
            pause();
    }
    if (r != MP_EOWNERDEAD)
        return 1;
    if (mp__now() - t0 > 30.0)
        return 2;
    return mp_lock_release(s->l) == 0 ? 0 : 3;
}

static void test_lock_heir_dies_holding(void **state)
{
    /*
     * Two waiters asleep under one holder; its release hands the lock to
     * one of them, which dies holding it.  The other, asleep since before
     * the handover, must learn of that death too (when it fell asleep it
     * watched the first holder's life, not the heir's).
     */
    struct reg_shared *s = mp_shared_alloc(sizeof *s);
    assert_non_null(s);
    s->l = mp_lock_new();
    assert_int_equal(mp_lock_acquire(s->l, 0), 0);
    pid_t w[2];
    for (int i = 0; i < 2; i++) {
        w[i] = mpt_fork(next_holder_or_heir, s);
        assert_true(task_sleeps(w[i], w[i]));
    }
    assert_int_equal(mp_lock_release(s->l), 0);
    for (int i = 0; i < 20000 && atomic_load(&s->tid) == 0; i++)
        usleep(1000);
    pid_t heir = atomic_load(&s->tid);
    assert_true(heir == w[0] || heir == w[1]);
    kill(heir, SIGKILL);
    assert_int_equal(mpt_wait_timed(heir == w[0] ? w[1] : w[0], 45), 0);
    assert_int_equal(mpt_wait_status(heir), 1000 + SIGKILL);
    assert_int_equal(mp_lock_acquire(s->l, 0), 0);
    assert_int_equal(mp_lock_release(s->l), 0);
    mp_lock_free(s->l);
    mp_shared_free(s);
}

struct reg_thread {
    mp_lock *l;
    bool release; /* at phase 5: release, or leave with the lock held */
    _Atomic int phase;
    _Atomic pid_t tid;
    int result;
};

/* Take the lock (it sleeps: the main thread holds it), say whether the
 * hold is registered (phase 2 or 3), then at phase 5 release it or not. */
static void *reg_thread_main(void *arg)
{
    struct reg_thread *t = arg;
    atomic_store(&t->tid, (pid_t)syscall(SYS_gettid));
    atomic_store(&t->phase, 1);
    int r = mp_lock_acquire(t->l, 30.0);
    atomic_store(&t->phase, r == 0 && mp__lock_reg(t->l) == mp__token_cache ? 2 : 3);
    while (atomic_load(&t->phase) != 5)
        usleep(1000);
    t->result = t->release ? mp_lock_release(t->l) : r;
    return NULL;
}

/* Start a thread whose hold of h->l is registered. */
static void start_registered_thread(struct reg_thread *h, pthread_t *t)
{
    assert_int_equal(mp_lock_acquire(h->l, 0), 0);
    assert_int_equal(pthread_create(t, NULL, reg_thread_main, h), 0);
    while (atomic_load(&h->phase) < 1)
        usleep(1000);
    assert_true(task_sleeps(getpid(), atomic_load(&h->tid)));
    assert_int_equal(mp_lock_release(h->l), 0);
    while (atomic_load(&h->phase) < 2)
        usleep(1000);
    assert_int_equal(atomic_load(&h->phase), 2);
}

static void *reg_wait_thread(void *arg)
{
    struct reg_thread *t = arg;
    t->result = mp_lock_acquire(t->l, 60.0);
    if (t->result == MP_EOWNERDEAD)
        mp_lock_release(t->l);
    return NULL;
}

static void test_registered_holder_thread_exits(void **state)
{
    if (!holds_register())
        skip();
    struct reg_thread h = {.l = mp_lock_new()};
    struct reg_thread w = {.l = h.l};
    pthread_t th, tw;
    start_registered_thread(&h, &th);
    assert_int_equal(pthread_create(&tw, NULL, reg_wait_thread, &w), 0);
    assert_true(life_waited_soon(h.l));
    atomic_store(&h.phase, 5); /* the holder returns with the lock held */
    pthread_join(th, NULL);
    pthread_join(tw, NULL);
    assert_int_equal(h.result, 0);
    assert_int_equal(w.result, MP_EOWNERDEAD);
    assert_int_equal(mp_lock_acquire(h.l, 0), 0);
    assert_int_equal(mp_lock_release(h.l), 0);
    mp_lock_free(h.l);
}

static void test_free_registered_lock_held_by_other_thread(void **state)
{
    if (!holds_register())
        skip();
    /* The holder's robust list holds the lock's life mutex: the memory
     * stays until its release, which says the lock is gone and ends the
     * hold (AddressSanitizer and the robust list would catch a lock freed
     * under it). */
    struct reg_thread h = {.l = mp_lock_new(), .release = true};
    pthread_t t;
    start_registered_thread(&h, &t);
    free_held_elsewhere(h.l);
    atomic_store(&h.phase, 5);
    pthread_join(t, NULL);
    assert_int_equal(h.result, MP_EINVAL);
    new_lock_works();
}

#define REG_LOCKS 40

struct reg_many {
    mp_lock *l[REG_LOCKS];
    _Atomic int taking; /* 1 + the index being taken */
    _Atomic pid_t tid;
    _Atomic int go;
    int registered, again, failures;
};

static void *reg_take_many(void *arg)
{
    struct reg_many *m = arg;
    atomic_store(&m->tid, (pid_t)syscall(SYS_gettid));
    for (int i = 0; i < REG_LOCKS; i++) {
        atomic_store(&m->taking, i + 1);
        if (mp_lock_acquire(m->l[i], 30.0) != 0)
            m->failures++;
        m->registered += mp__lock_reg(m->l[i]) == mp__token_cache;
    }
    atomic_store(&m->taking, REG_LOCKS + 1);
    while (!atomic_load(&m->go))
        usleep(1000);
    for (int i = 0; i < REG_LOCKS; i++)
        m->failures += mp_lock_release(m->l[i]) != 0;
    /* Registering works again once the holds ended. */
    atomic_store(&m->taking, REG_LOCKS + 2);
    while (atomic_load(&m->go) != 2)
        usleep(1000);
    atomic_store(&m->taking, REG_LOCKS + 3);
    if (mp_lock_acquire(m->l[0], 30.0) != 0)
        m->failures++;
    m->again = mp__lock_reg(m->l[0]) == mp__token_cache;
    m->failures += mp_lock_release(m->l[0]) != 0;
    return NULL;
}

static void test_registered_holds_bounded(void **state)
{
    if (!holds_register())
        skip();
    /* A thread registers at most 32 holds at once (its robust list stays
     * short); the other contended locks work as unregistered ones. */
    struct reg_many *m = calloc(1, sizeof *m);
    assert_non_null(m);
    for (int i = 0; i < REG_LOCKS; i++) {
        m->l[i] = mp_lock_new();
        assert_int_equal(mp_lock_acquire(m->l[i], 0), 0);
    }
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, reg_take_many, m), 0);
    for (int i = 0; i < REG_LOCKS; i++) {
        while (atomic_load(&m->taking) < i + 1)
            usleep(100);
        assert_true(task_sleeps(getpid(), atomic_load(&m->tid)));
        assert_int_equal(mp_lock_release(m->l[i]), 0);
    }
    while (atomic_load(&m->taking) < REG_LOCKS + 1)
        usleep(1000);
    assert_int_equal(m->registered, 32);
    assert_int_equal(mp_lock_acquire(m->l[0], 0), MP_ETIMEDOUT);
    atomic_store(&m->go, 1);
    while (atomic_load(&m->taking) < REG_LOCKS + 2)
        usleep(100);
    /* Hold l[0] again so that the thread's last acquire sleeps. */
    assert_int_equal(mp_lock_acquire(m->l[0], 0), 0);
    atomic_store(&m->go, 2);
    while (atomic_load(&m->taking) < REG_LOCKS + 3)
        usleep(100);
    assert_true(task_sleeps(getpid(), atomic_load(&m->tid)));
    assert_int_equal(mp_lock_release(m->l[0]), 0);
    pthread_join(t, NULL);
    assert_int_equal(m->failures, 0);
    assert_int_equal(m->again, 1);
    for (int i = 0; i < REG_LOCKS; i++)
        mp_lock_free(m->l[i]);
    free(m);
}

/* ---- chaos: lock holders killed at random -------------------------------- */

#define LC_WORKERS 4
#define LC_INCARNATIONS 1024

struct lc_shared {
    mp_lock *l;
    _Atomic int stop, bad, failed;
    _Atomic long repairs;
    long a, b; /* under the lock: equal whenever it is free */
    _Atomic long acked[LC_INCARNATIONS];
};

struct lc_arg {
    struct lc_shared *sh;
    int inc;
};

static int lc_worker(void *arg)
{
    struct lc_arg *w = arg;
    struct lc_shared *sh = w->sh;
    uint64_t rng = (uint64_t)w->inc * 0x9e3779b97f4a7c15ull + 1;
    while (!atomic_load(&sh->stop)) {
        int rc = mp_lock_acquire(sh->l, 10.0);
        if (rc == MP_EOWNERDEAD) {
            /* The dead holder may have counted a and not b yet. */
            if (sh->a != sh->b && sh->a != sh->b + 1)
                atomic_fetch_add(&sh->bad, 1);
            sh->b = sh->a;
            atomic_fetch_add(&sh->repairs, 1);
        } else if (rc != 0) {
            atomic_fetch_add(&sh->failed, 1);
            return 3;
        } else if (sh->a != sh->b) {
            atomic_fetch_add(&sh->bad, 1);
        }
        sh->a++;
        for (uint64_t n = mpt_rand(&rng) % 200; n > 0; n--)
            __asm__ volatile("" ::: "memory");
        sh->b++;
        if (mp_lock_release(sh->l) != 0)
            return 4;
        atomic_fetch_add(&sh->acked[w->inc], 1);
    }
    return 0;
}

/*
 * Processes that increment a two-word counter under one Lock, SIGKILLed at
 * random points (in the critical section too) while the others go on: the
 * next taker gets MP_EOWNERDEAD and repairs, nobody waits 10 s, nobody sees
 * the words torn outside a dead holder's section, and the count is exact
 * up to one unacknowledged increment per kill.
 */
static void test_lock_chaos_kills(void **state)
{
    uint64_t rng = mpt_seed("lock chaos");
    struct lc_shared *sh = mp_shared_alloc(sizeof *sh);
    assert_non_null(sh);
    memset(sh, 0, sizeof *sh);
    sh->l = mp_lock_new();
    assert_non_null(sh->l);
    struct lc_arg args[LC_INCARNATIONS];
    pid_t pids[LC_WORKERS];
    int next = 0, kills = 0;
    for (int i = 0; i < LC_WORKERS; i++) {
        args[next] = (struct lc_arg){sh, next};
        pids[i] = mpt_fork(lc_worker, &args[next++]);
    }
    double end = mp__now() + 2.0;
    while (mp__now() < end && next < LC_INCARNATIONS) {
        usleep(2000 + mpt_rand(&rng) % 20000);
        int i = (int)(mpt_rand(&rng) % LC_WORKERS);
        kill(pids[i], SIGKILL);
        assert_int_equal(mpt_wait_status(pids[i]), 1000 + SIGKILL);
        kills++;
        args[next] = (struct lc_arg){sh, next};
        pids[i] = mpt_fork(lc_worker, &args[next++]);
    }
    atomic_store(&sh->stop, 1);
    for (int i = 0; i < LC_WORKERS; i++)
        assert_int_equal(mpt_wait_status(pids[i]), 0);
    int rc = mp_lock_acquire(sh->l, 10.0);
    assert_true(rc == 0 || rc == MP_EOWNERDEAD);
    if (rc == MP_EOWNERDEAD)
        sh->b = sh->a;
    long acked = 0;
    for (int i = 0; i < next; i++)
        acked += atomic_load(&sh->acked[i]);
    printf("[ CHAOS    ] %ld increments acked, %ld counted, %d kills, %ld repairs\n", acked,
           sh->a, kills, atomic_load(&sh->repairs));
    assert_int_equal(atomic_load(&sh->bad), 0);
    assert_int_equal(atomic_load(&sh->failed), 0);
    assert_int_equal(sh->a, sh->b);
    assert_true(sh->a >= acked && sh->a - acked <= kills);
    assert_true(acked > 0);
    assert_int_equal(mp_lock_release(sh->l), 0);
    mp_lock_free(sh->l);
    mp_shared_free(sh);
}

/* ---- chaos: three locks passed along a chain, holders killed ------------- */

/*
 * Processes of LR_THREADS threads each pass three locks along a chain (take
 * L0; take L1, let L0 go; take L2, let L1 go; let L2 go: the order L0 < L1
 * < L2 rules out a deadlock), each acquire with a random timeout (0, a few
 * milliseconds, or none), so that holds are handed over to sleepers and
 * registered, and their waiters sleep on the lock's life mutex.  The parent
 * SIGKILLs random processes inside their critical sections (holding one
 * lock or two, registered or not, with waiters asleep on them) and starts
 * replacements, each of which first takes and gives back each lock without
 * a timeout, whatever else happens.  In epochs: at the end of each the parent stops
 * new rounds (after a kill, at times) and every process must finish its
 * round within LR_DRAIN_S, which a waiter nobody wakes would not.
 *
 * One known hazard is kept out.  A process killed in a lock call may be a
 * waiter that the kernel (at a holder's death, one sleeper of its robust
 * mutex) has just woken: that wake-up is lost with it and the other
 * waiters sleep on, with the lock held by a dead token; hence kills in
 * critical sections only, and one thread per process (a sibling thread is
 * killed wherever it is).  (Releases wake every sleeper, so a release's
 * wake-up is not lost that way, and a sleeper of the word no longer
 * oversleeps the death of a holder it did not fall asleep under:
 * test_lock_heir_dies_holding; the replacements' rescue round stays as a
 * second check.)
 */
#define LR_PROCS 4
#define LR_THREADS 1
#define LR_INCARNATIONS 1024
#define LR_DRAIN_S 10.0

struct lr_shared {
    mp_lock *l[3];
    bool rlock;
    _Atomic int stop, pause, bad, failed;
    _Atomic long rounds, timeouts, deaths, registered, life_waited;
    _Atomic int busy[LR_PROCS][LR_THREADS]; /* in a round */
    _Atomic int crit[LR_PROCS]; /* between a lock call's return and the next call */
    long a[3], b[3];            /* under l[k]: equal whenever it is free */
    _Atomic long acked[3];      /* increments of a[k] whose release returned */
};

struct lr_arg {
    struct lr_shared *sh;
    int slot, inc;
    bool rescue; /* a replacement: its first round ignores pause */
    uint64_t seed;
};

struct lr_thread {
    struct lr_arg *w;
    int t, status;
};

static double lr_timeout(uint64_t *rng)
{
    switch (mpt_rand(rng) % 3) {
    case 0:
        return 0;
    case 1:
        return (double)(mpt_rand(rng) % 5000 + 1) * 1e-6;
    default:
        return MP_FOREVER;
    }
}

/* Take l[k] (bad return: the check that failed, else 0; *got: held). */
/* The calling process's crit flag (one thread per process). */
static _Atomic int *lr_crit;

static int lr_take(struct lr_shared *sh, int k, uint64_t *rng, bool rescue, bool *got)
{
    mp_lock *l = sh->l[k];
    double timeout = rescue ? MP_FOREVER : lr_timeout(rng);
    *got = false;
    atomic_store(lr_crit, 0);
    int rc = mp_lock_acquire(l, timeout);
    if (rc == MP_ETIMEDOUT) {
        atomic_fetch_add(&sh->timeouts, 1);
        return timeout == MP_FOREVER ? 10 : 0;
    }
    if (rc != 0 && rc != MP_EOWNERDEAD)
        return 11;
    *got = true;
    if (mp__lock_reg(l) == mp__token_cache)
        atomic_fetch_add(&sh->registered, 1);
    if (sh->rlock && (mp_lock_acquire(l, lr_timeout(rng)) != 0 || mp_lock_count(l) != 2))
        return 12;
    atomic_store(lr_crit, 1);
    if (rc == MP_EOWNERDEAD) {
        /* The dead holder may have counted a and not b yet. */
        if (sh->a[k] != sh->b[k] && sh->a[k] != sh->b[k] + 1)
            atomic_fetch_add(&sh->bad, 1);
        sh->b[k] = sh->a[k];
        atomic_fetch_add(&sh->deaths, 1);
    } else if (sh->a[k] != sh->b[k]) {
        atomic_fetch_add(&sh->bad, 1);
    }
    sh->a[k]++;
    uint64_t r = mpt_rand(rng);
    if (r % 4 == 0)
        usleep((useconds_t)(r >> 8) % 300); /* long enough for waiters to sleep */
    else
        for (uint64_t n = (r >> 8) % 500; n > 0; n--)
            __asm__ volatile("" ::: "memory");
    if (mp__lock_life_waited(l))
        atomic_fetch_add(&sh->life_waited, 1);
    sh->b[k]++;
    return 0;
}

static int lr_give(struct lr_shared *sh, int k)
{
    atomic_store(lr_crit, 0);
    if (sh->rlock && mp_lock_release(sh->l[k]) != 0)
        return 13;
    if (mp_lock_release(sh->l[k]) != 0)
        return 14;
    atomic_fetch_add(&sh->acked[k], 1);
    return 0;
}

/* One round along the chain, or a rescue round (each lock taken and given
 * back without a timeout): 0, or the check that failed. */
static int lr_round(struct lr_shared *sh, uint64_t *rng, bool rescue)
{
    /* Each lock on its own, the last first: a lock's holder may wait for
     * the next one, whose holder died. */
    for (int k = 2; rescue && k >= 0; k--) {
        bool got;
        int r = lr_take(sh, k, rng, true, &got);
        if (r != 0 || !got || (r = lr_give(sh, k)) != 0)
            return r != 0 ? r : 15;
    }
    if (rescue)
        return 0;
    int held = -1;
    for (int k = 0; k < 3; k++) {
        bool got;
        int r = lr_take(sh, k, rng, false, &got);
        if (r == 0 && held >= 0)
            r = lr_give(sh, held);
        held = got ? k : -1;
        if (r != 0 || !got)
            return r != 0 ? r : held >= 0 ? lr_give(sh, held) : 0;
    }
    return lr_give(sh, held);
}

static void *lr_thread_main(void *arg)
{
    struct lr_thread *th = arg;
    struct lr_shared *sh = th->w->sh;
    _Atomic int *busy = &sh->busy[th->w->slot][th->t];
    lr_crit = &sh->crit[th->w->slot];
    uint64_t rng = th->w->seed ^
                   ((uint64_t)th->w->inc << 8 | (uint64_t)th->t) * 0x9e3779b97f4a7c15ull;
    bool rescue = th->w->rescue;
    while (!atomic_load(&sh->stop)) {
        /* Busy first, then the look at pause: the parent sets pause, then
         * waits for busy to fall, so one of the two sees the other. */
        atomic_store(busy, 1);
        if (atomic_load(&sh->pause) && !rescue) {
            atomic_store(busy, 0);
            usleep(200);
            continue;
        }
        th->status = lr_round(sh, &rng, rescue);
        rescue = false;
        atomic_store(busy, 0);
        if (th->status != 0) {
            atomic_fetch_add(&sh->failed, 1);
            break;
        }
        atomic_fetch_add(&sh->rounds, 1);
    }
    return NULL;
}

static int lr_proc(void *arg)
{
    struct lr_arg *w = arg;
    struct lr_thread th[LR_THREADS];
    pthread_t tid[LR_THREADS];
    for (int t = 0; t < LR_THREADS; t++) {
        th[t] = (struct lr_thread){w, t, 0};
        if (t > 0 && pthread_create(&tid[t], NULL, lr_thread_main, &th[t]) != 0)
            return 20;
    }
    lr_thread_main(&th[0]);
    int status = th[0].status;
    for (int t = 1; t < LR_THREADS; t++) {
        pthread_join(tid[t], NULL);
        if (status == 0)
            status = th[t].status;
    }
    return status;
}

/*
 * SIGKILL process slot i inside a critical section (it holds one lock or
 * two and is in no lock call), looked at while it is stopped: true if it
 * was killed.  Not in a lock call, so never as a waiter that a release or
 * the kernel has just woken, whose wake-up would be lost with it (see
 * lock_ring_chaos).
 */
static bool lr_kill_holder(struct lr_shared *sh, pid_t pid, int i, uint64_t *rng)
{
    for (int tries = 0; tries < 100; tries++) {
        kill(pid, SIGSTOP);
        char st = 0;
        for (int n = 0;
             n < 10000 && mpt_proc_stat(pid, &st, NULL, NULL, NULL, 0) == 0 && st != 'T'; n++)
            usleep(100);
        if (st == 'T' && atomic_load(&sh->crit[i])) {
            kill(pid, SIGKILL);
            return true;
        }
        kill(pid, SIGCONT);
        usleep((useconds_t)(mpt_rand(rng) % 500));
    }
    return false;
}

/* Reap process slot i (killed) and start its replacement. */
static void lr_replace(struct lr_shared *sh, struct lr_arg *args, pid_t *pids, int i,
                       int *next, uint64_t seed)
{
    assert_int_equal(mpt_wait_status(pids[i]), 1000 + SIGKILL);
    atomic_store(&sh->crit[i], 0);
    for (int t = 0; t < LR_THREADS; t++)
        atomic_store(&sh->busy[i][t], 1); /* until its first round ends */
    args[*next] = (struct lr_arg){sh, i, *next, true, seed};
    pids[i] = mpt_fork(lr_proc, &args[(*next)++]);
}

/* True once no thread is in a round (LR_DRAIN_S at most). */
static bool lr_drained(struct lr_shared *sh)
{
    for (int n = 0; n < (int)(LR_DRAIN_S * 1000); n++) {
        int busy = 0;
        for (int i = 0; i < LR_PROCS; i++)
            for (int t = 0; t < LR_THREADS; t++)
                busy += atomic_load(&sh->busy[i][t]);
        if (busy == 0)
            return true;
        usleep(1000);
    }
    return false;
}

static void lock_ring_chaos(bool rlock, const char *name)
{
    if (mpt_valgrind())
        skip();
    uint64_t seed = mpt_seed(name);
    uint64_t rng = seed;
    struct lr_shared *sh = mp_shared_alloc(sizeof *sh);
    assert_non_null(sh);
    memset(sh, 0, sizeof *sh);
    sh->rlock = rlock;
    for (int k = 0; k < 3; k++) {
        sh->l[k] = rlock ? mp_rlock_new() : mp_lock_new();
        assert_non_null(sh->l[k]);
    }
    static struct lr_arg args[LR_INCARNATIONS];
    pid_t pids[LR_PROCS];
    int next = 0, kills = 0, epochs = 0, hung = 0;
    for (int i = 0; i < LR_PROCS; i++) {
        args[next] = (struct lr_arg){sh, i, next, false, seed};
        pids[i] = mpt_fork(lr_proc, &args[next++]);
    }
    double end = mp__now() + 3.0;
    while (mp__now() < end && next < LR_INCARNATIONS - 4 && !atomic_load(&sh->failed)) {
        /* An epoch: traffic with kills at random moments, */
        int nkills = (int)(mpt_rand(&rng) % 3);
        for (int n = 0; n < nkills; n++) {
            usleep((useconds_t)(1000 + mpt_rand(&rng) % 30000));
            int i = (int)(mpt_rand(&rng) % LR_PROCS);
            if (lr_kill_holder(sh, pids[i], i, &rng)) {
                lr_replace(sh, args, pids, i, &next, seed);
                kills++;
            }
        }
        usleep((useconds_t)(1000 + mpt_rand(&rng) % 20000));
        /* then no new rounds (right after a kill, at times): every round
         * under way ends, whoever sleeps in it. */
        bool kill_last = mpt_rand(&rng) % 2 == 0;
        int victim = (int)(mpt_rand(&rng) % LR_PROCS);
        kill_last = kill_last && lr_kill_holder(sh, pids[victim], victim, &rng);
        atomic_store(&sh->pause, 1);
        if (kill_last) {
            lr_replace(sh, args, pids, victim, &next, seed);
            kills++;
        }
        if (!lr_drained(sh)) {
            hung++;
            break;
        }
        epochs++;
        atomic_store(&sh->pause, 0);
    }
    atomic_store(&sh->stop, 1);
    atomic_store(&sh->pause, 0);
    int statuses[LR_PROCS];
    for (int i = 0; i < LR_PROCS; i++) {
        statuses[i] = mpt_wait_timed(pids[i], LR_DRAIN_S);
        if (statuses[i] == -1) {
            kill(pids[i], SIGKILL);
            mpt_wait_status(pids[i]);
        }
    }
    printf("[ CHAOS    ] %s: %ld rounds, %d epochs, %d kills, %ld deaths, %ld timeouts, "
           "%ld registered, %ld life-waited, %d hung\n",
           name, atomic_load(&sh->rounds), epochs, kills, atomic_load(&sh->deaths),
           atomic_load(&sh->timeouts), atomic_load(&sh->registered),
           atomic_load(&sh->life_waited), hung);
    assert_int_equal(hung, 0);
    for (int i = 0; i < LR_PROCS; i++)
        assert_true(statuses[i] == 0 || statuses[i] == 1000 + SIGKILL);
    assert_int_equal(atomic_load(&sh->failed), 0);
    assert_int_equal(atomic_load(&sh->bad), 0);
    for (int k = 0; k < 3; k++) {
        int rc = mp_lock_acquire(sh->l[k], 10.0);
        assert_true(rc == 0 || rc == MP_EOWNERDEAD);
        if (rc == MP_EOWNERDEAD)
            sh->b[k] = sh->a[k];
        assert_int_equal(sh->a[k], sh->b[k]);
        long acked = atomic_load(&sh->acked[k]);
        assert_true(sh->a[k] >= acked && sh->a[k] - acked <= kills);
        assert_int_equal(mp_lock_release(sh->l[k]), 0);
        mp_lock_free(sh->l[k]);
    }
    assert_true(atomic_load(&sh->rounds) > 0);
    if (holds_register()) {
        assert_true(atomic_load(&sh->registered) > 0);
        assert_true(atomic_load(&sh->life_waited) > 0);
    }
    mp_shared_free(sh);
}

static void test_lock_ring_chaos(void **state)
{
    (void)state;
    lock_ring_chaos(false, "lock ring chaos");
}

static void test_rlock_ring_chaos(void **state)
{
    (void)state;
    lock_ring_chaos(true, "rlock ring chaos");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lock_basic, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_lock_chaos_kills, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_lock_ring_chaos, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_rlock_ring_chaos, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_lock_self_timeout, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_lock_timeout_across_processes, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_lock_counter, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_rlock_counter, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_release_by_other_thread, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_release_by_other_process, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_rlock_recursion, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_owner_killed, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_owner_killed_and_reaped, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_owner_killed_while_waited_on, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_owner_thread_exits, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_token_recycling, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_token_reused_slot_is_not_owner, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_token_table_full, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_many_waiters_holder_killed, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_waiter_holder_thread_exits, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_no_waitv_fallback, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_fork_child_tokens, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_lock_counter_threads, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_semaphore_limit, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_semaphore_basic, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_bounded_semaphore, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_semaphore_wakes_other_process, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_condition_order, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_condition_notify_counts, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_condition_timeout_and_misuse, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_condition_wait_for, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_condition_dead_waiter_skipped, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_event_across_processes, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_event_set_then_clear, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_barrier_indexes_and_action, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_barrier_timeout_breaks, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_barrier_abort_reset_action, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_barrier_dead_party, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_barrier_action_dies, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_free_held_lock, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_free_lock_held_by_other_thread, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_registered_holder_killed, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_lock_heir_dies_holding, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_registered_holder_thread_exits, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_free_registered_lock_held_by_other_thread,
                                        mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_registered_holds_bounded, mpt_setup,
                                        mpt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
