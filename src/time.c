/* time.c: timeouts turned into CLOCK_MONOTONIC deadlines. */
#include "internal/mp.h"

#include <math.h>

uint64_t mp__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double mp__now(void)
{
    return (double)mp__now_ns() / 1e9;
}

int mp__deadline_init(mp__deadline *d, double timeout)
{
    d->forever = false;
    d->nowait = false;
    if (isnan(timeout))
        return MP_EINVAL;
    if (timeout < 0) {
        if (timeout != MP_FOREVER)
            return MP_EINVAL;
        d->forever = true;
        return 0;
    }
    if (isinf(timeout) || timeout > 1e9) {
        d->forever = true;
        return 0;
    }
    d->nowait = timeout == 0;
    clock_gettime(CLOCK_MONOTONIC, &d->at);
    double whole = floor(timeout);
    d->at.tv_sec += (time_t)whole;
    d->at.tv_nsec += (long)((timeout - whole) * 1e9);
    if (d->at.tv_nsec >= 1000000000L) {
        d->at.tv_sec++;
        d->at.tv_nsec -= 1000000000L;
    }
    return 0;
}

int mp__deadline_left(const mp__deadline *d, struct timespec *left)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    left->tv_sec = d->at.tv_sec - now.tv_sec;
    left->tv_nsec = d->at.tv_nsec - now.tv_nsec;
    if (left->tv_nsec < 0) {
        left->tv_sec--;
        left->tv_nsec += 1000000000L;
    }
    if (left->tv_sec < 0 || (left->tv_sec == 0 && left->tv_nsec == 0)) {
        left->tv_sec = 0;
        left->tv_nsec = 0;
        return MP_ETIMEDOUT;
    }
    return 0;
}

bool mp__deadline_expired(const mp__deadline *d)
{
    struct timespec left;
    if (d->forever)
        return false;
    return mp__deadline_left(d, &left) != 0;
}

int mp__deadline_poll_ms(const mp__deadline *d)
{
    struct timespec left;
    if (d->forever)
        return -1;
    if (mp__deadline_left(d, &left) != 0)
        return 0;
    if (left.tv_sec > 86400 * 24)
        return 86400 * 24 * 1000;
    return (int)(left.tv_sec * 1000 + (left.tv_nsec + 999999) / 1000000);
}
