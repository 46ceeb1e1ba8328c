/*
 * queue_two_way: one Queue carries a message each way between a parent and
 * its child ("How to exchange objects between processes", Queue).
 *
 * With a single queue used both ways, each side must not take back its own
 * message, so the two messages go one after the other: the parent's first
 * (the child takes and prints it), then the child's (the parent takes and
 * prints it).  The parent joins the child before reading its message:
 * with libmp's queue that is safe, the message is in shared memory as soon
 * as put returns.
 */
#include <libmp.h>
#include <stdio.h>

static int test_func(void *arg, size_t size)
{
    mp_queue *queue = *(mp_queue **)arg;
    char msg[128];
    size_t len = 0;
    if (mp_queue_get(queue, msg, sizeof msg, &len, MP_FOREVER) != 0)
        return 1;
    printf("%.*s\n", (int)len, msg);
    fflush(stdout);
    static const char reply[] = "Sending from Subprocess to Parent Process";
    return mp_queue_put(queue, reply, sizeof reply - 1, MP_FOREVER) == 0 ? 0 : 1;
}

int main(void)
{
    mp_queue *queue = mp_queue_new();
    mp_process *p = mp_process_new(.target = test_func, .arg = &queue,
                                   .arg_size = sizeof queue);
    if (queue == NULL || p == NULL)
        return 1;
    static const char msg[] = "Sending from Parent Process to Subprocess";
    mp_queue_put(queue, msg, sizeof msg - 1, MP_FOREVER);
    if (mp_process_start(p) != 0)
        return 1;
    mp_process_join(p, MP_FOREVER);
    char reply[128];
    size_t len = 0;
    if (mp_queue_get(queue, reply, sizeof reply, &len, 10.0) != 0)
        return 1;
    printf("%.*s\n", (int)len, reply);
    int code = -1;
    mp_process_exitcode(p, &code);
    mp_process_free(p);
    mp_queue_free(queue);
    return code;
}
