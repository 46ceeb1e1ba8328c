/*
 * queue_fancy: passing an object to a worker through a Queue
 * (PyMOTW multiprocessing_queue.py).
 *
 * Python pickles a MyFancyClass instance; in C the object is a plain struct
 * sent as bytes, and its method is a function the worker calls on the copy
 * it received.
 */
#include <libmp.h>
#include <stdio.h>

/* class MyFancyClass: def __init__(self, name) */
struct fancy {
    char name[32];
};

/* MyFancyClass.do_something */
static void fancy_do_something(const struct fancy *self)
{
    printf("Doing something fancy in %s for %s!\n", mp_process_name(mp_current_process()),
           self->name);
}

static int worker(void *arg, size_t size)
{
    mp_queue *q = *(mp_queue **)arg;
    struct fancy obj;
    size_t len = 0;
    if (mp_queue_get(q, &obj, sizeof obj, &len, MP_FOREVER) != 0 || len != sizeof obj)
        return 1;
    fancy_do_something(&obj);
    return 0;
}

int main(void)
{
    mp_queue *queue = mp_queue_new();
    if (queue == NULL)
        return 1;
    mp_process *p = mp_process_new(.target = worker, .arg = &queue, .arg_size = sizeof queue);
    if (p == NULL || mp_process_start(p) != 0)
        return 1;

    struct fancy obj = {"Fancy Dan"};
    mp_queue_put(queue, &obj, sizeof obj, MP_FOREVER);

    /* Wait for the worker to finish.  close and join_thread are kept from
     * the original; with no feeder thread there is nothing to flush. */
    mp_queue_close(queue);
    mp_queue_join_thread(queue);
    mp_process_join(p, MP_FOREVER);
    int code = -1;
    mp_process_exitcode(p, &code);
    mp_process_free(p);
    mp_queue_free(queue);
    return code;
}
