/*
 * simpleargs: pass an argument to each process
 * (PyMOTW multiprocessing_simpleargs.py).
 *
 * Python pickles args=(i,); libmp copies the bytes of i to the child.
 */
#include <libmp.h>
#include <stdio.h>

static int worker(void *arg, size_t size)
{
    int num = *(int *)arg;
    printf("Worker: %d\n", num);
    return 0;
}

int main(void)
{
    mp_process *jobs[5];
    for (int i = 0; i < 5; i++) {
        jobs[i] = mp_process_new(.target = worker, .arg = &i, .arg_size = sizeof i);
        if (jobs[i] == NULL || mp_process_start(jobs[i]) != 0) {
            fprintf(stderr, "simpleargs: %s\n", mp_strerror(mp_last_error()));
            return 1;
        }
    }
    for (int i = 0; i < 5; i++) {
        mp_process_join(jobs[i], MP_FOREVER);
        mp_process_free(jobs[i]);
    }
    return 0;
}
