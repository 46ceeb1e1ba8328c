/*
 * names: naming processes (PyMOTW multiprocessing_names.py).
 *
 * The unnamed worker gets Python's default name, "Process-3": it is the
 * third process object created.  Sleeps are a tenth of the original's.
 */
#include <libmp.h>
#include <stdio.h>
#include <time.h>

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static int worker(void *arg, size_t size)
{
    const char *name = mp_process_name(mp_current_process());
    printf("%s Starting\n", name);
    sleep_s(0.2);
    printf("%s Exiting\n", name);
    return 0;
}

static int my_service(void *arg, size_t size)
{
    const char *name = mp_process_name(mp_current_process());
    printf("%s Starting\n", name);
    sleep_s(0.3);
    printf("%s Exiting\n", name);
    return 0;
}

int main(void)
{
    mp_process *service = mp_process_new(.name = "my_service", .target = my_service);
    mp_process *worker_1 = mp_process_new(.name = "worker 1", .target = worker);
    mp_process *worker_2 = mp_process_new(.target = worker); /* default name */
    if (service == NULL || worker_1 == NULL || worker_2 == NULL)
        return 1;

    mp_process_start(worker_1);
    mp_process_start(worker_2);
    mp_process_start(service);
    return 0;
}
