/*
 * subclass: the C form of subclassing Process and overriding run()
 * (PyMOTW multiprocessing_subclass.py).
 *
 * A "class" is a constructor that passes .run: run(self) is called in the
 * child with the process object.  Python names an instance of a subclass
 * after the class ("Worker-1"); worker_new does the same with the default
 * name's number.
 */
#include <libmp.h>
#include <stdio.h>
#include <string.h>

/* class Worker(multiprocessing.Process): def run(self): ... */
static int worker_run(mp_process *self)
{
    printf("In %s\n", mp_process_name(self));
    return 0;
}

static mp_process *worker_new(void)
{
    mp_process *p = mp_process_new(.run = worker_run);
    if (p != NULL) {
        char name[64];
        snprintf(name, sizeof name, "Worker-%s", mp_process_name(p) + strlen("Process-"));
        mp_process_set_name(p, name);
    }
    return p;
}

int main(void)
{
    mp_process *jobs[5];
    for (int i = 0; i < 5; i++) {
        jobs[i] = worker_new();
        if (jobs[i] == NULL || mp_process_start(jobs[i]) != 0)
            return 1;
    }
    for (int i = 0; i < 5; i++) {
        mp_process_join(jobs[i], MP_FOREVER);
        mp_process_free(jobs[i]);
    }
    return 0;
}
