/*
 * namespaces: a Namespace held by a Manager, set by one process and read by
 * another (PyMOTW multiprocessing_namespaces.py).
 *
 * As in the original, the consumer starts first and reads the attribute
 * before the producer has set it; the producer waits 0.2 s before setting
 * it so that the order does not depend on how fast processes start.  The
 * error is the one Python prints: getting a missing attribute returns
 * MP_EREMOTE and mp_remote_error_message() holds str(err).
 */
#include <libmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct args {
    mp_proxy *ns;
    mp_event *event;
};

static int producer(void *arg, size_t size)
{
    struct args *a = arg;
    nanosleep(&(struct timespec){0, 200000000}, NULL);
    mp_namespace_set(a->ns, "value", MP_STR("This is the value"));
    mp_event_set(a->event);
    return 0;
}

static void print_value(const char *when, mp_val *v)
{
    char *s = mp_val_tostring(v); /* print's str() */
    printf("%s, consumer got: %s\n", when, s ? s : "?");
    fflush(stdout);
    free(s);
    mp_val_free(v);
}

static int consumer(void *arg, size_t size)
{
    struct args *a = arg;
    mp_val *v;
    if (mp_namespace_get(a->ns, "value", &v) == 0) {
        print_value("Before event", v);
    } else {
        printf("Before event, consumer got: %s\n", mp_remote_error_message());
        fflush(stdout);
    }
    mp_event_wait(a->event, MP_FOREVER);
    if (mp_namespace_get(a->ns, "value", &v) != 0)
        return 1;
    print_value("After event", v);
    return 0;
}

int main(void)
{
    mp_manager *mgr = mp_manager_new();
    if (mgr == NULL || mp_manager_start(mgr) != 0)
        return 1;
    struct args a = {mp_manager_namespace(mgr), mp_event_new()};
    if (a.ns == NULL || a.event == NULL)
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
