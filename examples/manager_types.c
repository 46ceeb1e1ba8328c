/*
 * manager_types: a Manager's dict, list and Array changed by a child
 * (the "server process" example of the multiprocessing tutorial).
 *
 * Python's "with Manager() as manager:" is mp_manager_start at the start and
 * mp_manager_shutdown at the end of the block.
 */
#include <libmp.h>
#include <stdio.h>
#include <stdlib.h>

struct args {
    mp_proxy *dictionary;
    mp_proxy *lst;
    mp_proxy *ary;
};

static int test_func(void *arg, size_t size)
{
    struct args *a = arg;
    mp_dict_set(a->dictionary, MP_I64(1), MP_I64(1));
    mp_list_reverse(a->lst);
    ssize_t n = mp_arrayproxy_len(a->ary);
    for (ssize_t i = 0; i < n; i++) { /* for i, val in enumerate(ary) */
        mp_val *val;
        if (mp_arrayproxy_get(a->ary, i, &val) != 0)
            return 1;
        mp_arrayproxy_set(a->ary, i, MP_I64(val->i * val->i));
        mp_val_free(val);
    }
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
    struct args a = {
        .dictionary = mp_manager_dict(manager, NULL),
        .lst = mp_manager_list(manager, range10),
        .ary = mp_manager_array(manager, "i", range10),
    };
    mp_val_free(range10);
    if (a.dictionary == NULL || a.lst == NULL || a.ary == NULL)
        return 1;
    mp_process *p = mp_process_new(.target = test_func, .arg = &a, .arg_size = sizeof a);
    if (p == NULL || mp_process_start(p) != 0)
        return 1;
    mp_process_join(p, MP_FOREVER);
    mp_process_free(p);
    print_proxy(a.dictionary);
    print_proxy(a.lst);
    print_proxy(a.ary);
    mp_proxy_free(a.dictionary);
    mp_proxy_free(a.lst);
    mp_proxy_free(a.ary);
    mp_manager_shutdown(manager);
    mp_manager_free(manager);
    return 0;
}
