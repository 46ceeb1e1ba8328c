/* futex.c: shared futex wait/wake and robust process-shared mutexes. */
#include "internal/mp.h"
#include "internal/sync.h"

#include "internal/linux.h"
#include <sys/syscall.h>
#include <unistd.h>

int mp__futex_wait(uint32_t *word, uint32_t expected, const mp__deadline *d)
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
        return 0;
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

bool mp__spin_while_equal(const uint32_t *word, uint32_t expected, uint64_t spin_ns)
{
    static int ncpu;
    if (ncpu == 0)
        ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu <= 1)
        return false;
    uint64_t start = 0;
    for (unsigned i = 1;; i++) {
        if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != expected)
            return true;
        if ((i & 31u) == 0) {
            uint64_t now = mp__now_ns();
            if (start == 0)
                start = now;
            else if (now - start > spin_ns)
                return false;
        }
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
