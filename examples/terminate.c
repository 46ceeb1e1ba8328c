/*
 * terminate: terminate() a process (PyMOTW multiprocessing_terminate.py).
 *
 * mp_process_repr prints the process as Python 2 did.  The worker sleeps
 * for a second rather than 0.1 s, so that it is surely still running when
 * it is terminated; it never gets to "Finished worker".
 */
#include <libmp.h>
#include <stdio.h>
#include <time.h>

static int slow_worker(void *arg, size_t size)
{
    printf("Starting worker\n");
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
    printf("Finished worker\n");
    return 0;
}

static void show(const char *when, mp_process *p)
{
    char repr[300];
    mp_process_repr(p, repr, sizeof repr);
    printf("%s %s %s\n", when, repr, mp_process_is_alive(p) == 1 ? "True" : "False");
}

int main(void)
{
    mp_process *p = mp_process_new(.target = slow_worker);
    if (p == NULL)
        return 1;
    show("BEFORE:", p);

    mp_process_start(p);
    show("DURING:", p);

    mp_process_terminate(p);
    show("TERMINATED:", p);

    mp_process_join(p, MP_FOREVER);
    show("JOINED:", p);
    mp_process_free(p);
    return 0;
}
