/*
 * get_logger: change the level of libmp's logger
 * (PyMOTW multiprocessing_get_logger.py).
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
    mp_log_to_stderr(MP_LOG_NOTSET);
    mp_logger *logger = mp_get_logger();
    mp_logger_set_level(logger, MP_LOG_INFO);
    mp_process *p = mp_process_new(.target = worker);
    if (p == NULL || mp_process_start(p) != 0)
        return 1;
    mp_process_join(p, MP_FOREVER);
    mp_process_free(p);
    return 0;
}
