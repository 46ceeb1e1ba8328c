/*
 * manager_basic: a child stores typed entries in a Manager dict and
 * reverses a Manager list (the "server process" example of the
 * multiprocessing documentation).
 *
 * Keys and values keep their types: 1 and '2' and 0.25 are three different
 * kinds of key, and None is a value.  The dict prints in insertion order, as
 * Python 3's does: {1: '1', '2': 2, 0.25: None}; the seed (Python 2)
 * printed {0.25: None, 1: '1', '2': 2}, the same entries.
 */
#include <libmp.h>
#include <stdio.h>
#include <stdlib.h>

struct args {
    mp_proxy *d;
    mp_proxy *l;
};

static int f(void *arg, size_t size)
{
    struct args *a = arg;
    mp_dict_set(a->d, MP_I64(1), MP_STR("1"));
    mp_dict_set(a->d, MP_STR("2"), MP_I64(2));
    mp_dict_set(a->d, MP_FLOAT(0.25), MP_NONE);
    mp_list_reverse(a->l);
    return 0;
}

static void print_proxy(mp_proxy *p)
{
    char *s = mp_proxy_tostring(p);
    printf("%s\n", s ? s : "?");
    free(s);
}

int main(void)
{
    mp_manager *manager = mp_manager_new();
    if (manager == NULL || mp_manager_start(manager) != 0)
        return 1;
    mp_val *range10 = mp_val_range(0, 10, 1);
    struct args a = {mp_manager_dict(manager, NULL), mp_manager_list(manager, range10)};
    mp_val_free(range10);
    if (a.d == NULL || a.l == NULL)
        return 1;
    mp_process *p = mp_process_new(.target = f, .arg = &a, .arg_size = sizeof a);
    if (p == NULL || mp_process_start(p) != 0)
        return 1;
    mp_process_join(p, MP_FOREVER);
    mp_process_free(p);
    print_proxy(a.d);
    print_proxy(a.l);
    mp_proxy_free(a.d);
    mp_proxy_free(a.l);
    mp_manager_shutdown(manager);
    mp_manager_free(manager);
    return 0;
}
