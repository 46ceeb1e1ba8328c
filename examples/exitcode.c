/*
 * exitcode: the exit code of a process (PyMOTW multiprocessing_exitcode.py).
 *
 *   == 0  no error
 *   >  0  the process had an error and exited with that code
 *   <  0  the process was killed by signal -exitcode
 *
 * A C target returns its exit code (Python's sys.exit(n)); calling exit(n)
 * works too.  C has no exceptions: "raises" reports its error as Python's
 * bootstrap would and returns 1.
 */
#include <libmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int exit_error(void *arg, size_t size)
{
    exit(1); /* sys.exit(1) */
}

static int exit_ok(void *arg, size_t size)
{
    return 0;
}

static int return_value(void *arg, size_t size)
{
    /* Python ignores what a target returns ("return 1" still gives
     * exitcode 0); in C the return value is the exit code, so a result
     * that is not a status is handed back by other means. */
    return 0;
}

static int raises(void *arg, size_t size)
{
    fprintf(stderr, "Process %s:\n", mp_process_name(mp_current_process()));
    fprintf(stderr, "RuntimeError: There was an error!\n");
    return 1;
}

static int terminated(void *arg, size_t size)
{
    struct timespec ts = {3, 0};
    nanosleep(&ts, NULL);
    return 0;
}

int main(void)
{
    static const struct {
        const char *name;
        mp_target_fn fn;
    } funcs[] = {
        {"exit_error", exit_error}, {"exit_ok", exit_ok},       {"return_value", return_value},
        {"raises", raises},         {"terminated", terminated},
    };
    enum { N = sizeof funcs / sizeof funcs[0] };
    mp_process *jobs[N];
    for (int i = 0; i < N; i++) {
        printf("Starting process for %s\n", funcs[i].name);
        jobs[i] = mp_process_new(.target = funcs[i].fn, .name = funcs[i].name);
        if (jobs[i] == NULL || mp_process_start(jobs[i]) != 0)
            return 1;
    }

    mp_process_terminate(jobs[N - 1]);

    for (int i = 0; i < N; i++) {
        int code;
        mp_process_join(jobs[i], MP_FOREVER);
        mp_process_exitcode(jobs[i], &code);
        printf("%s.exitcode = %d\n", mp_process_name(jobs[i]), code);
        mp_process_free(jobs[i]);
    }
    return 0;
}
