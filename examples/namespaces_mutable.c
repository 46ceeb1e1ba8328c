/*
 * namespaces_mutable: changing a list fetched from a Namespace changes only
 * the fetched copy (PyMOTW multiprocessing_namespaces_mutable.py).
 *
 * mp_namespace_get hands out a copy, as Python's proxy does: the
 * producer's append changes its own copy and nothing in the manager, so
 * the consumer sees [] both times.  To update the list, set it again.
 */
#include <libmp.h>
#include <stdio.h>
#include <stdlib.h>

struct args {
    mp_proxy *ns;
    mp_event *event;
};

static int producer(void *arg, size_t size)
{
    struct args *a = arg;
    mp_val *my_list;
    if (mp_namespace_get(a->ns, "my_list", &my_list) != 0)
        return 1;
    mp_val_list_append(my_list,
                       MP_STR("This is the value")); /* DOES NOT UPDATE GLOBAL VALUE! */
    mp_val_free(my_list);
    mp_event_set(a->event);
    return 0;
}

static int print_list(const char *when, mp_proxy *ns)
{
    mp_val *v;
    if (mp_namespace_get(ns, "my_list", &v) != 0)
        return 1;
    char *s = mp_val_tostring(v);
    printf("%s, consumer got: %s\n", when, s ? s : "?");
    fflush(stdout);
    free(s);
    mp_val_free(v);
    return 0;
}

static int consumer(void *arg, size_t size)
{
    struct args *a = arg;
    if (print_list("Before event", a->ns) != 0)
        return 1;
    mp_event_wait(a->event, MP_FOREVER);
    return print_list("After event", a->ns);
}

int main(void)
{
    mp_manager *mgr = mp_manager_new();
    if (mgr == NULL || mp_manager_start(mgr) != 0)
        return 1;
    struct args a = {mp_manager_namespace(mgr), mp_event_new()};
    if (a.ns == NULL || a.event == NULL ||
        mp_namespace_set(a.ns, "my_list", MP_EMPTY_LIST) != 0)
        return 1;
    mp_process *p = mp_process_new(.target = producer, .arg = &a, .arg_size = sizeof a);
    mp_process *c = mp_process_new(.target = consumer, .arg = &a, .arg_size = sizeof a);
    if (p == NULL || c == NULL || mp_process_start(c) != 0 || mp_process_start(p) != 0)
        return 1;
    mp_process_join(c, MP_FOREVER);
    mp_process_join(p, MP_FOREVER);
    mp_process_free(c);
    mp_process_free(p);
    mp_event_free(a.event);
    mp_proxy_free(a.ns);
    mp_manager_shutdown(mgr);
    mp_manager_free(mgr);
    return 0;
}
