/*
 * daemon: a daemonic process does not keep the program alive
 * (PyMOTW multiprocessing_daemon.py).
 *
 * When main returns, libmp terminates the daemonic child, which is still
 * sleeping: its "Exiting" line never appears (nor, when stdout is a pipe,
 * its "Starting" line, still in its stdio buffer, as in the Python
 * original's output).  Sleeps are shortened.
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
    mp_process *d = mp_process_new(.name = "daemon", .target = daemon_fn);
    mp_process_set_daemon(d, true);

    mp_process *n = mp_process_new(.name = "non-daemon", .target = non_daemon);
    mp_process_set_daemon(n, false);

    if (mp_process_start(d) != 0)
        return 1;
    sleep_s(0.2);
    if (mp_process_start(n) != 0)
        return 1;
    return 0;
}
