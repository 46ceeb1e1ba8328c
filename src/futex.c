/* futex.c: shared futex wait/wake and robust process-shared mutexes. */
#include "internal/mp.h"
#include "internal/sync.h"
#include "internal/util.h"

#include "internal/linux.h"
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int mp__futex_sleep(uint32_t *word, uint32_t expected, const mp__deadline *d)
{
    const struct timespec *at = NULL;
    if (d != NULL && !d->forever) {
        if (mp__deadline_expired(d))
            return MP_ETIMEDOUT;
        at = &d->at;
    }
    /*
     * FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, so a retry
     * never extends the wait.  No FUTEX_PRIVATE_FLAG: the word is shared
     * between processes.
     */
    long r = syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, at, NULL,
                     FUTEX_BITSET_MATCH_ANY);
    if (r == 0)
        return 1;
    switch (errno) {
    case EAGAIN:
        return 0;
    case ETIMEDOUT:
        return MP_ETIMEDOUT;
    case EINTR:
        return -EINTR;
    default:
        return mp__errno();
    }
}

int mp__futex_wait(uint32_t *word, uint32_t expected, const mp__deadline *d)
{
    int r = mp__futex_sleep(word, expected, d);
    return r == 1 ? 0 : r;
}

int mp__futex_wait_watched(uint32_t *word, uint32_t expected, const mp__deadline *d,
                           const mp__watch *w)
{
    if (w == NULL)
        return mp__futex_wait(word, expected, d);
    mp__deadline slice = {.forever = false, .nowait = false};
    clock_gettime(CLOCK_MONOTONIC, &slice.at);
    slice.at.tv_nsec += w->slice_ns;
    while (slice.at.tv_nsec >= 1000000000L) {
        slice.at.tv_sec++;
        slice.at.tv_nsec -= 1000000000L;
    }
    bool last = d != NULL && !d->forever &&
                (d->at.tv_sec < slice.at.tv_sec ||
                 (d->at.tv_sec == slice.at.tv_sec && d->at.tv_nsec <= slice.at.tv_nsec));
    int r = mp__futex_wait(word, expected, last ? d : &slice);
    if (r != MP_ETIMEDOUT || last)
        return r;
    return w->gone(w->arg) ? MP_EEOF : 0;
}

/*
 * Whether runnable tasks outnumber the cpus this process may use: then a
 * poll before sleeping burns the time slice that the task which would end
 * the wait needs, and every waiter should sleep at once.  The answer is the
 * kernel's instantaneous count of runnable tasks (the fourth field of
 * /proc/loadavg, which counts the caller itself), refreshed by whichever
 * waiter finds it older than BUSY_CHECK_NS.  The answer lives in the arena's
 * header, shared by the whole family, so the family asks the kernel at most
 * about a hundred times a second, however many processes wait (reading the
 * file costs 5 to 20 us here: 16 processes each reading it every 10 ms took
 * over 1% of a cpu); without an arena each process keeps its own.  Spinning
 * waiters count as runnable, which is what is wanted: P spinning pairs on
 * fewer than 2P cpus are oversubscribed (and stay so for BUSY_HOLD_NS after
 * the last sample that said so).  Plain atomics, no thread-local storage;
 * the clock is CLOCK_MONOTONIC, the same in every process.
 */
#define BUSY_CHECK_NS 10000000u
#define BUSY_HOLD_NS 100000000u

static mp__busy_state busy_local;
static _Atomic int busy_ncpu;
static _Atomic int busy_forced = -1;

void mp__cpu_busy_force(int mode)
{
    atomic_store_explicit(&busy_forced, mode < 0 ? -1 : mode != 0, memory_order_relaxed);
}

static int usable_cpus(void)
{
    int n = atomic_load_explicit(&busy_ncpu, memory_order_relaxed);
    if (n > 0)
        return n;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    if (n <= 0)
        n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0)
        n = 1;
    atomic_store_explicit(&busy_ncpu, n, memory_order_relaxed);
    return n;
}

static int runnable_tasks(void)
{
    char buf[128];
    if (mp__read_text("/proc/loadavg", buf, sizeof buf) <= 0)
        return -1;
    /* "0.50 0.40 0.30 3/512 1234": the count before the slash. */
    const char *p = buf;
    for (int field = 0; field < 3; field++) {
        p = strchr(p, ' ');
        if (p == NULL)
            return -1;
        p++;
    }
    char *end;
    long r = strtol(p, &end, 10);
    return end != p && *end == '/' && r >= 0 && r < INT32_MAX ? (int)r : -1;
}

bool mp__cpu_busy_at(uint64_t now)
{
    int forced = atomic_load_explicit(&busy_forced, memory_order_relaxed);
    if (MP__UNLIKELY(forced >= 0))
        return forced != 0;
    mp__busy_state *b = mp__heap_busy_state();
    if (b == NULL)
        b = &busy_local;
    uint64_t at = atomic_load_explicit(&b->checked_at, memory_order_relaxed);
    /* Signed: another process's sample may be a little ahead of our now. */
    if (at != 0 && (int64_t)(now - at) < (int64_t)BUSY_CHECK_NS)
        return atomic_load_explicit(&b->busy, memory_order_relaxed) != 0;
    /* One waiter refreshes; the others keep the previous answer. */
    if (!atomic_compare_exchange_strong(&b->checked_at, &at, now))
        return atomic_load_explicit(&b->busy, memory_order_relaxed) != 0;
    int ncpu = usable_cpus();
    int run = ncpu > 1 ? runnable_tasks() : ncpu + 1;
    /*
     * A sample counts the waiters that were spinning at that instant, and
     * none of those asleep: processes that ping-pong on too few cpus look
     * busy while they spin and idle once they all sleep, so a busy sample
     * holds for BUSY_HOLD_NS, ten samples, before polling resumes.
     */
    if (run > ncpu)
        atomic_store_explicit(&b->seen_at, now, memory_order_relaxed);
    uint64_t seen = atomic_load_explicit(&b->seen_at, memory_order_relaxed);
    bool busy = seen != 0 && (int64_t)(now - seen) < (int64_t)BUSY_HOLD_NS;
    atomic_store_explicit(&b->busy, busy, memory_order_relaxed);
    return busy;
}

bool mp__cpu_busy(void)
{
    return mp__cpu_busy_at(mp__now_ns());
}

bool mp__spin_while_equal(const uint32_t *word, uint32_t expected, uint64_t spin_ns)
{
    if (spin_ns == 0)
        return false;
    uint64_t start = mp__now_ns();
    if (mp__cpu_busy_at(start))
        return false;
    for (unsigned i = 1;; i++) {
        if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != expected)
            return true;
        if ((i & 31u) == 0 && mp__now_ns() - start > spin_ns)
            return false;
        mp__cpu_relax();
    }
}

int mp__futex_wake(uint32_t *word, int n)
{
    long r = syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
    return r < 0 ? 0 : (int)r;
}

int mp__robust_mutex_init(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    int r = pthread_mutexattr_init(&a);
    if (r != 0)
        return -r;
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    r = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return -r;
}

int mp__robust_trylock(pthread_mutex_t *m)
{
    int r = pthread_mutex_trylock(m);
    if (r == EOWNERDEAD) {
        pthread_mutex_consistent(m);
        r = 0;
    }
    return r;
}

int mp__robust_lock(pthread_mutex_t *m)
{
    int r = pthread_mutex_lock(m);
    if (r == EOWNERDEAD) {
        pthread_mutex_consistent(m);
        return 1;
    }
    return 0;
}

void mp__robust_unlock(pthread_mutex_t *m)
{
    pthread_mutex_unlock(m);
}
