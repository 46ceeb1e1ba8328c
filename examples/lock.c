/*
 * lock: controlling access to a resource with a Lock
 * (PyMOTW multiprocessing_lock.py).
 *
 * Python's "with lock:" is an acquire/release pair.  Each worker flushes
 * standard output while it holds the lock, so the lock is what keeps the
 * two lines whole.
 */
#include <libmp.h>
#include <stdio.h>

static int worker_with(void *arg, size_t size)
{
    mp_lock *lock = *(mp_lock **)arg;
    mp_lock_acquire(lock, MP_FOREVER); /* with lock: */
    fputs("Lock acquired via with\n", stdout);
    fflush(stdout);
    mp_lock_release(lock);
    return 0;
}

static int worker_no_with(void *arg, size_t size)
{
    mp_lock *lock = *(mp_lock **)arg;
    if (mp_lock_acquire(lock, MP_FOREVER) == 0) {
        fputs("Lock acquired directly\n", stdout);
        fflush(stdout);
        mp_lock_release(lock); /* the finally: clause */
    }
    return 0;
}

int main(void)
{
    mp_lock *lock = mp_lock_new();
    if (lock == NULL)
        return 1;
    mp_process *w = mp_process_new(.target = worker_with, .arg = &lock,
                                   .arg_size = sizeof lock);
    mp_process *nw = mp_process_new(.target = worker_no_with, .arg = &lock,
                                    .arg_size = sizeof lock);
    if (w == NULL || nw == NULL || mp_process_start(w) != 0 || mp_process_start(nw) != 0)
        return 1;
    mp_process_join(w, MP_FOREVER);
    mp_process_join(nw, MP_FOREVER);
    mp_process_free(w);
    mp_process_free(nw);
    mp_lock_free(lock);
    return 0;
}
