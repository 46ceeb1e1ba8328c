/*
 * condition: synchronising stages of a workflow with a Condition
 * (PyMOTW multiprocessing_condition.py).
 *
 * Two stage_2 processes wait on the condition; s1 notifies them when the
 * first stage is done.  The seed relies on sleep(1) so that both stage_2
 * processes are waiting before s1 notifies; here they wait with
 * wait_for() on a "stage 1 done" flag kept under the condition's lock, so
 * the example cannot hang on a slow machine, and the sleeps are shorter.
 */
#include <libmp.h>
#include <stdio.h>
#include <time.h>

struct stages {
    mp_condition *cond;
    mp_value *stage1_done; /* a RawValue('i'), read under cond's lock */
};

static bool stage1_finished(void *arg)
{
    return MP_VALUE((mp_value *)arg, int) != 0;
}

static void say(const char *fmt, const char *name)
{
    printf(fmt, name);
    fflush(stdout);
}

static int stage_1(void *arg, size_t size)
{
    struct stages *s = arg;
    const char *name = mp_process_name(mp_current_process());
    say("Starting %s\n", name);
    mp_condition_acquire(s->cond, MP_FOREVER);
    say("%s done and ready for stage 2\n", name);
    MP_VALUE(s->stage1_done, int) = 1;
    mp_condition_notify_all(s->cond);
    mp_condition_release(s->cond);
    return 0;
}

static int stage_2(void *arg, size_t size)
{
    struct stages *s = arg;
    const char *name = mp_process_name(mp_current_process());
    say("Starting %s\n", name);
    mp_condition_acquire(s->cond, MP_FOREVER);
    mp_condition_wait_for(s->cond, stage1_finished, s->stage1_done, MP_FOREVER);
    say("%s running\n", name);
    mp_condition_release(s->cond);
    return 0;
}

int main(void)
{
    struct stages s = {mp_condition_new(), mp_raw_value_new(.typecode = 'i')};
    if (s.cond == NULL || s.stage1_done == NULL)
        return 1;
    mp_process *s1 = mp_process_new(.name = "s1", .target = stage_1, .arg = &s,
                                    .arg_size = sizeof s);
    mp_process *s2_clients[2];
    for (int i = 0; i < 2; i++) {
        char name[32];
        snprintf(name, sizeof name, "stage_2[%d]", i + 1);
        s2_clients[i] = mp_process_new(.name = name, .target = stage_2, .arg = &s,
                                       .arg_size = sizeof s);
        if (s2_clients[i] == NULL)
            return 1;
    }
    if (s1 == NULL)
        return 1;

    for (int i = 0; i < 2; i++) {
        mp_process_start(s2_clients[i]);
        nanosleep(&(struct timespec){0, 200000000}, NULL);
    }
    mp_process_start(s1);

    mp_process_join(s1, MP_FOREVER);
    for (int i = 0; i < 2; i++) {
        mp_process_join(s2_clients[i], MP_FOREVER);
        mp_process_free(s2_clients[i]);
    }
    mp_process_free(s1);
    mp_condition_free(s.cond);
    mp_value_free(s.stage1_done);
    return 0;
}
