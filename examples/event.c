/*
 * event: signalling between processes with an Event
 * (PyMOTW multiprocessing_event.py).
 *
 * One child waits for the event without a timeout, the other with one that
 * runs out before the parent sets it.  The timeouts are shorter than the
 * original's (0.5 s wait, 1.5 s before set(), instead of 2 s and 3 s).
 * Every line is flushed at once, as python -u does in the seed.
 */
#include <libmp.h>
#include <stdio.h>
#include <time.h>

struct args {
    mp_event *e;
    double t;
};

static void say(const char *what, int is_set)
{
    if (is_set < 0)
        printf("%s\n", what);
    else
        printf("%s %s\n", what, is_set ? "True" : "False");
    fflush(stdout);
}

static int wait_for_event(void *arg, size_t size)
{
    struct args *a = arg;
    say("wait_for_event: starting", -1);
    mp_event_wait(a->e, MP_FOREVER);
    say("wait_for_event: e.is_set()->", mp_event_is_set(a->e));
    return 0;
}

static int wait_for_event_timeout(void *arg, size_t size)
{
    struct args *a = arg;
    say("wait_for_event_timeout: starting", -1);
    mp_event_wait(a->e, a->t); /* MP_ETIMEDOUT: the caller checks is_set */
    say("wait_for_event_timeout: e.is_set()->", mp_event_is_set(a->e));
    return 0;
}

int main(void)
{
    mp_event *e = mp_event_new();
    if (e == NULL)
        return 1;
    struct args block = {e, MP_FOREVER}, nonblock = {e, 0.5};
    mp_process *w1 = mp_process_new(.name = "block", .target = wait_for_event, .arg = &block,
                                    .arg_size = sizeof block);
    mp_process *w2 = mp_process_new(.name = "non-block", .target = wait_for_event_timeout,
                                    .arg = &nonblock, .arg_size = sizeof nonblock);
    if (w1 == NULL || w2 == NULL || mp_process_start(w1) != 0 || mp_process_start(w2) != 0)
        return 1;

    say("main: waiting before calling Event.set()", -1);
    nanosleep(&(struct timespec){1, 500000000}, NULL);
    mp_event_set(e);
    say("main: event is set", -1);

    mp_process_join(w1, MP_FOREVER);
    mp_process_join(w2, MP_FOREVER);
    mp_process_free(w1);
    mp_process_free(w2);
    mp_event_free(e);
    return 0;
}
