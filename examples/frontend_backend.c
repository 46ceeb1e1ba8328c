/*
 * frontend_backend: a process with a frontend and a backend that talk over a
 * Pipe (seed 004, "Multiprocessing Ping Pong").
 *
 * The Python class MyProcess(Process) keeps the two ends of a Pipe; its run()
 * (the backend) answers "ping" with "pong" until it receives "stop"; the
 * frontend methods ping() and stop() run in the main program.  In C the
 * object is a struct holding the process and the two connections, and the
 * backend is the process's run function.  The 5-second sleeps of the
 * original are shortened to 0.2 s.
 */
#include <libmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct my_process {
    mp_process *proc;
    mp_connection *front_pipe, *back_pipe;
} my_process;

static void say(const char *s)
{
    printf("%s\n", s);
    fflush(stdout);
}

static void pause_a_little(void)
{
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* ---- backend: runs in the child ---- */

static void ping__(my_process *self)
{
    say("backend: got ping from frontend");
    mp_connection_send(self->back_pipe, "pong", 4);
}

static bool listen_front__(my_process *self)
{
    void *msg;
    size_t len;
    if (mp_connection_recv(self->back_pipe, &msg, &len) != 0)
        return false;
    bool go_on = true;
    if (len == 4 && memcmp(msg, "stop", 4) == 0) {
        go_on = false;
    } else if (len == 4 && memcmp(msg, "ping", 4) == 0) {
        ping__(self);
    } else {
        printf("listenFront__ : unknown message %.*s\n", (int)len, (char *)msg);
        fflush(stdout);
    }
    free(msg);
    return go_on;
}

static int run(mp_process *proc)
{
    size_t size;
    my_process *self = mp_process_arg(proc, &size);
    say("MyProcess: run");
    bool active = true;
    while (active)
        active = listen_front__(self);
    say("bye from multiprocess!");
    return 0;
}

/* ---- frontend: runs in the main program ---- */

static my_process *my_process_new(void)
{
    my_process *self = calloc(1, sizeof *self);
    if (self == NULL || mp_pipe(true, &self->front_pipe, &self->back_pipe) != 0)
        return NULL;
    /* The child gets a copy of the struct: the connection pointers in it are
     * valid there too. */
    self->proc = mp_process_new(.run = run, .arg = self, .arg_size = sizeof *self);
    return self->proc != NULL ? self : NULL;
}

static void ping(my_process *self)
{
    mp_connection_send(self->front_pipe, "ping", 4);
    void *msg;
    size_t len;
    if (mp_connection_recv(self->front_pipe, &msg, &len) == 0) {
        printf("frontend: got a message from backend: %.*s\n", (int)len, (char *)msg);
        fflush(stdout);
        free(msg);
    }
}

static void stop(my_process *self)
{
    mp_connection_send(self->front_pipe, "stop", 4);
    mp_process_join(self->proc, MP_FOREVER);
}

int main(void)
{
    my_process *p = my_process_new();
    if (p == NULL || mp_process_start(p->proc) != 0) {
        fprintf(stderr, "frontend_backend: %s\n", mp_strerror(mp_last_error()));
        return 1;
    }
    say("front: sleepin 5 secs");
    pause_a_little();
    ping(p);
    say("front: sleepin 5 secs");
    pause_a_little();
    stop(p);
    int code = -1;
    mp_process_exitcode(p->proc, &code);
    mp_process_free(p->proc);
    mp_connection_free(p->front_pipe);
    mp_connection_free(p->back_pipe);
    free(p);
    return code == 0 ? 0 : 1;
}
