/*
 * manager_dict: processes fill a dict held by a Manager
 * (PyMOTW multiprocessing_manager_dict.py).
 *
 * The dict keeps insertion order as Python 3's does, so the entries print
 * in the order the workers stored them; the seed (Python 2) printed them
 * sorted by hash.  The test compares the entries, not their order.
 */
#include <libmp.h>
#include <stdio.h>
#include <stdlib.h>

struct args {
    mp_proxy *d;
    int key;
    int value;
};

static int worker(void *arg, size_t size)
{
    struct args *a = arg;
    return mp_dict_set(a->d, MP_I64(a->key), MP_I64(a->value)) == 0 ? 0 : 1;
}

int main(void)
{
    mp_manager *mgr = mp_manager_new();
    if (mgr == NULL || mp_manager_start(mgr) != 0)
        return 1;
    mp_proxy *d = mp_manager_dict(mgr, NULL);
    if (d == NULL)
        return 1;
    mp_process *jobs[10];
    for (int i = 0; i < 10; i++) {
        struct args a = {d, i, i * 2};
        jobs[i] = mp_process_new(.target = worker, .arg = &a, .arg_size = sizeof a);
        if (jobs[i] == NULL)
            return 1;
    }
    for (int i = 0; i < 10; i++)
        if (mp_process_start(jobs[i]) != 0)
            return 1;
    for (int i = 0; i < 10; i++) {
        mp_process_join(jobs[i], MP_FOREVER);
        mp_process_free(jobs[i]);
    }
    char *s = mp_proxy_tostring(d);
    printf("Results: %s\n", s ? s : "?");
    free(s);
    mp_proxy_free(d);
    mp_manager_shutdown(mgr);
    mp_manager_free(mgr);
    return 0;
}
