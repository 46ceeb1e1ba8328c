/*
 * simple: the simplest use of a process (PyMOTW multiprocessing_simple.py).
 *
 * Five processes each print "Worker".  As in the Python original, main does
 * not join them: libmp joins the remaining children when main returns.
 */
#include <libmp.h>
#include <stdio.h>

static int worker(void *arg, size_t size)
{
    printf("Worker\n");
    return 0;
}

int main(void)
{
    for (int i = 0; i < 5; i++) {
        mp_process *p = mp_process_new(.target = worker);
        if (p == NULL || mp_process_start(p) != 0) {
            fprintf(stderr, "simple: %s\n", mp_strerror(mp_last_error()));
            return 1;
        }
    }
    return 0;
}
