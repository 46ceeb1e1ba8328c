/*
 * log_to_stderr: libmp's own log messages on standard error
 * (PyMOTW multiprocessing_log_to_stderr.py).
 */
#include <libmp.h>
#include <stdio.h>

static int worker(void *arg, size_t size)
{
    printf("Doing some work\n");
    fflush(stdout);
    return 0;
}

int main(void)
{
    mp_log_to_stderr(MP_LOG_DEBUG);
    mp_process *p = mp_process_new(.target = worker);
    if (p == NULL || mp_process_start(p) != 0)
        return 1;
    mp_process_join(p, MP_FOREVER);
    mp_process_free(p);
    return 0;
}
