/*
 * semaphore_active_pool: a Semaphore lets three processes run at a time; a
 * Manager list, guarded by a Lock, tracks which ones are active
 * (PyMOTW multiprocessing_semaphore.py).
 *
 * Each worker sleeps a random time below 0.3 s instead of 1 s.  Lines are
 * flushed at once, as python -u does in the seed.
 */
#include <libmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Python's ActivePool: a manager list of names and a lock around it. */
struct active_pool {
    mp_proxy *active;
    mp_lock *lock;
};

static void make_active(struct active_pool *p, const char *name)
{
    mp_lock_acquire(p->lock, MP_FOREVER);
    mp_list_append(p->active, MP_STR(name));
    mp_lock_release(p->lock);
}

static void make_inactive(struct active_pool *p, const char *name)
{
    mp_lock_acquire(p->lock, MP_FOREVER);
    mp_list_remove(p->active, MP_STR(name));
    mp_lock_release(p->lock);
}

/* str(pool): the list as Python prints it, under the lock. */
static void print_pool(struct active_pool *p)
{
    mp_lock_acquire(p->lock, MP_FOREVER);
    char *s = mp_proxy_tostring(p->active);
    mp_lock_release(p->lock);
    printf("Now running: %s\n", s ? s : "?");
    fflush(stdout);
    free(s);
}

struct args {
    mp_semaphore *s;
    struct active_pool pool;
};

static int worker(void *arg, size_t size)
{
    struct args *a = arg;
    const char *name = mp_process_name(mp_current_process());
    unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
    mp_semaphore_acquire(a->s, MP_FOREVER); /* with s: */
    make_active(&a->pool, name);
    print_pool(&a->pool);
    double t = (double)rand_r(&seed) / RAND_MAX * 0.3;
    nanosleep(&(struct timespec){0, (long)(t * 1e9)}, NULL);
    make_inactive(&a->pool, name);
    mp_semaphore_release(a->s);
    return 0;
}

int main(void)
{
    mp_manager *mgr = mp_manager_new();
    if (mgr == NULL || mp_manager_start(mgr) != 0)
        return 1;
    struct args a = {
        .s = mp_semaphore_new(.value = 3),
        .pool = {.active = mp_manager_list(mgr, NULL), .lock = mp_lock_new()},
    };
    if (a.s == NULL || a.pool.active == NULL || a.pool.lock == NULL)
        return 1;
    mp_process *jobs[10];
    for (int i = 0; i < 10; i++) {
        char name[8];
        snprintf(name, sizeof name, "%d", i);
        jobs[i] = mp_process_new(.target = worker, .name = name, .arg = &a,
                                 .arg_size = sizeof a);
        if (jobs[i] == NULL)
            return 1;
    }
    for (int i = 0; i < 10; i++)
        if (mp_process_start(jobs[i]) != 0)
            return 1;
    for (int i = 0; i < 10; i++) {
        mp_process_join(jobs[i], MP_FOREVER);
        print_pool(&a.pool);
    }
    for (int i = 0; i < 10; i++)
        mp_process_free(jobs[i]);
    mp_proxy_free(a.pool.active);
    mp_lock_free(a.pool.lock);
    mp_semaphore_free(a.s);
    mp_manager_shutdown(mgr);
    mp_manager_free(mgr);
    return 0;
}
