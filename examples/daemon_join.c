/*
 * daemon_join: waiting for a daemonic process with join()
 * (PyMOTW multiprocessing_daemon_join.py).  Sleeps are shortened.
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
    sleep_s(0.5);
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
    mp_process *n = mp_process_new(.name = "non-daemon", .target = non_daemon,
                                   .daemon = false);
    if (d == NULL || n == NULL)
        return 1;

    mp_process_start(d);
    sleep_s(0.2);
    mp_process_start(n);

    mp_process_join(d, MP_FOREVER);
    mp_process_join(n, MP_FOREVER);
    mp_process_free(d);
    mp_process_free(n);
    return 0;
}
