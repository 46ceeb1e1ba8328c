/*
 * producer_consumer: worker processes take tasks from a Queue and put the
 * answers on another; a poison pill per worker stops them
 * (PyMOTW multiprocessing_producer_consumer.py, plain Queue version).
 *
 * Python's Task objects are pickled with their __call__; in C a task is a
 * struct of its operands and the worker calls task_call on it.  None, the
 * poison pill, is a zero-length message.  Consumer subclasses Process: the
 * C form passes .run and names each instance "Consumer-N".
 */
#include <libmp.h>
#include <stdio.h>
#include <time.h>

struct task {
    int a, b;
};

struct queues {
    mp_queue *tasks, *results;
};

/* Task.__call__: pretend to take some time, return "a * b = a*b". */
static int task_call(const struct task *t, char *answer, size_t size)
{
    nanosleep(&(struct timespec){0, 100000000}, NULL);
    return snprintf(answer, size, "%d * %d = %d", t->a, t->b, t->a * t->b);
}

/* Consumer.run */
static int consumer_run(mp_process *self)
{
    const struct queues *q = mp_process_arg(self, NULL);
    const char *proc_name = mp_process_name(self);
    for (;;) {
        struct task next_task;
        size_t len = 0;
        if (mp_queue_get(q->tasks, &next_task, sizeof next_task, &len, MP_FOREVER) != 0)
            return 1;
        if (len == 0) {
            /* Poison pill means we should exit */
            printf("%s: Exiting\n", proc_name);
            fflush(stdout);
            break;
        }
        printf("%s: %d * %d\n", proc_name, next_task.a, next_task.b);
        fflush(stdout);
        char answer[64];
        int n = task_call(&next_task, answer, sizeof answer);
        mp_queue_put(q->results, answer, (size_t)n, MP_FOREVER);
    }
    return 0;
}

int main(void)
{
    /* Establish communication queues */
    struct queues q = {mp_queue_new(), mp_queue_new()};
    if (q.tasks == NULL || q.results == NULL)
        return 1;

    /* Start consumers */
    int num_consumers = mp_cpu_count() * 2;
    printf("Creating %d consumers\n", num_consumers);
    mp_process *consumers[num_consumers];
    for (int i = 0; i < num_consumers; i++) {
        char name[32];
        snprintf(name, sizeof name, "Consumer-%d", i + 1);
        consumers[i] = mp_process_new(.run = consumer_run, .arg = &q, .arg_size = sizeof q,
                                      .name = name);
        if (consumers[i] == NULL || mp_process_start(consumers[i]) != 0)
            return 1;
    }

    /* Enqueue jobs */
    int num_jobs = 10;
    for (int i = 0; i < num_jobs; i++)
        mp_queue_put(q.tasks, &(struct task){i, i}, sizeof(struct task), MP_FOREVER);

    /* Add a poison pill for each consumer */
    for (int i = 0; i < num_consumers; i++)
        mp_queue_put(q.tasks, NULL, 0, MP_FOREVER);

    /* Start printing results */
    while (num_jobs) {
        char result[64];
        size_t len = 0;
        if (mp_queue_get(q.results, result, sizeof result, &len, MP_FOREVER) != 0)
            return 1;
        printf("Result: %.*s\n", (int)len, result);
        num_jobs--;
    }
    fflush(stdout);

    int rc = 0;
    for (int i = 0; i < num_consumers; i++) {
        int code = -1;
        mp_process_join(consumers[i], MP_FOREVER);
        mp_process_exitcode(consumers[i], &code);
        rc |= code;
        mp_process_free(consumers[i]);
    }
    mp_queue_free(q.tasks);
    mp_queue_free(q.results);
    return rc;
}
