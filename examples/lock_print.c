/*
 * lock_print: a Lock so that only one process prints at a time
 * (seed 002, "Synchronization between processes").
 *
 * Ten processes each print "hello world i" while holding the lock, and
 * flush before releasing it.
 */
#include <libmp.h>
#include <stdio.h>

struct job {
    mp_lock *l;
    int i;
};

static int f(void *arg, size_t size)
{
    struct job *j = arg;
    mp_lock_acquire(j->l, MP_FOREVER);
    printf("hello world %d\n", j->i);
    fflush(stdout);
    mp_lock_release(j->l);
    return 0;
}

int main(void)
{
    mp_lock *lock = mp_lock_new();
    if (lock == NULL)
        return 1;
    mp_process *p[10];
    for (int num = 0; num < 10; num++) {
        struct job j = {lock, num};
        p[num] = mp_process_new(.target = f, .arg = &j, .arg_size = sizeof j);
        if (p[num] == NULL || mp_process_start(p[num]) != 0)
            return 1;
    }
    /* Python joins the children at exit; the lock is freed after that. */
    for (int num = 0; num < 10; num++) {
        mp_process_join(p[num], MP_FOREVER);
        mp_process_free(p[num]);
    }
    mp_lock_free(lock);
    return 0;
}
