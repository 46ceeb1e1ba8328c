/*
 * daemon_join_timeout: join() with a timeout returns while the process
 * still runs (PyMOTW multiprocessing_daemon_join_timeout.py).
 *
 * Python's join(1) returns None either way; mp_process_join says which
 * (MP_ETIMEDOUT here).  The daemon is terminated when main returns.
 */
#include <libmp.h>
#include <stdio.h>
#include <time.h>

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static int daemon_fn(void *arg, size_t size)
{
    printf("Starting: %s\n", mp_process_name(mp_current_process()));
    sleep_s(2);
    printf("Exiting : %s\n", mp_process_name(mp_current_process()));
    return 0;
}

static int non_daemon(void *arg, size_t size)
{
    printf("Starting: %s\n", mp_process_name(mp_current_process()));
    printf("Exiting : %s\n", mp_process_name(mp_current_process()));
    return 0;
}

int main(void)
{
    mp_process *d = mp_process_new(.name = "daemon", .target = daemon_fn, .daemon = true);
    mp_process *n = mp_process_new(.name = "non-daemon", .target = non_daemon);
    if (d == NULL || n == NULL)
        return 1;

    mp_process_start(d);
    mp_process_start(n);

    mp_process_join(d, 1);
    printf("d.is_alive() %s\n", mp_process_is_alive(d) == 1 ? "True" : "False");
    mp_process_join(n, MP_FOREVER);
    return 0;
}
