/*
 * test_context.c: contexts and the start methods (context.h): the default
 * method and MP_START_METHOD, spawn and forkserver children, what they
 * inherit (fds, stdio, the arena), the handle rule under every method,
 * errors (unknown names, a second set_start_method, a target a spawned
 * child cannot reach, an executable of another build, the arena's address
 * taken), the forkserver's preload hook, life and restart, and a program
 * whose threads allocate and lock while it starts processes.
 *
 * Scenarios that need a program of their own (a fresh forkserver) run this
 * executable again with an argument (main's "scenario" mode).  Children
 * report through their exit code: 0 for success, otherwise the folded line
 * of the failed check.
 */
#include "internal/mp.h"
#include "internal/popen.h"
#include "internal/resource_tracker.h"
#include "internal/spawn.h"
#include "mptest.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(c)                         \
    do {                                 \
        if (!(c))                        \
            return 1 + (__LINE__ % 250); \
    } while (0)

static const char *const methods[] = {"fork", "spawn", "forkserver"};
#define NMETHODS 3

static int setup(void **state)
{
    assert_int_equal(mp__heap_init(), 0);
    /* The tests below use the forkserver whatever the default: its one fd
     * is opened before the leak count. */
    assert_int_equal(mp_forkserver_ensure_running(), 0);
    assert_int_equal(mp__tracker_start(), 0);
    mpt_leak_begin();
    return 0;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* This program's path: /proc/self/exe is valgrind's tool under valgrind,
 * whose readlink answer is the program. */
static const char *self_path(void)
{
    static char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    path[n > 0 ? n : 0] = '\0';
    return n > 0 ? path : "/proc/self/exe";
}

static mp_context *ctx_of(const char *m)
{
    mp_context *c = mp_get_context(m);
    assert_non_null(c);
    return c;
}

/* Start p, join it, return its exit code, free it. */
static int run_code(mp_process *p)
{
    assert_non_null(p);
    assert_int_equal(mp_process_start(p), 0);
    assert_int_equal(mp_process_join(p, 60), 0);
    int code = 12345;
    assert_int_equal(mp_process_exitcode(p, &code), 0);
    mp_process_free(p);
    return code;
}

/* ---- contexts and the default method ---------------------------------------- */

static void test_contexts(void **state)
{
    mp_context *c[NMETHODS];
    for (int i = 0; i < NMETHODS; i++) {
        c[i] = ctx_of(methods[i]);
        assert_ptr_equal(mp_get_context(methods[i]), c[i]);
        assert_string_equal(mp_context_get_start_method(c[i]), methods[i]);
        for (int j = 0; j < i; j++)
            assert_ptr_not_equal(c[i], c[j]);
    }
    /* Unknown names, wrong pointers. */
    assert_null(mp_get_context("thread"));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_get_context(""));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_get_context("Fork"));
    assert_null(mp_context_get_start_method(NULL));
    int not_a_context[8] = {0};
    assert_null(mp_context_get_start_method((mp_context *)not_a_context));
    void *block = mp_shared_alloc(64);
    assert_null(mp_context_get_start_method(block));
    assert_null(mp_process_new(.target = (mp_target_fn)(uintptr_t)sleep_s, .ctx = block));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    mp_shared_free(block);
    /* ctx.get_context(method): itself for None, else the named one. */
    for (int i = 0; i < NMETHODS; i++) {
        assert_ptr_equal(mp_context_get_context(c[i], NULL), c[i]);
        for (int j = 0; j < NMETHODS; j++)
            assert_ptr_equal(mp_context_get_context(c[i], methods[j]), c[j]);
        assert_null(mp_context_get_context(c[i], "threads"));
        assert_int_equal(mp_last_error(), MP_EINVAL);
        /* A concrete context's method cannot be set (ValueError). */
        assert_int_equal(mp_context_set_start_method(c[i], methods[i], false), MP_EINVAL);
        assert_int_equal(mp_context_set_start_method(c[i], "fork", true), MP_EINVAL);
        assert_int_equal(mp_context_set_start_method(c[i], NULL, true), MP_EINVAL);
    }
    assert_null(mp_context_get_context((mp_context *)not_a_context, NULL));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_context_get_context((mp_context *)not_a_context, "fork"));
    assert_int_equal(mp_context_set_start_method((mp_context *)not_a_context, "fork", true),
                     MP_EINVAL);
    assert_ptr_equal(mp_context_get_context(NULL, "spawn"), c[1]);
    /* The default context is one of the three. */
    mp_context *d = mp_get_context(NULL);
    assert_non_null(d);
    assert_string_equal(mp_context_get_start_method(d), mp_get_start_method(false));
}

/* The default method is process state: tested in a raw fork of the test,
 * so that the test program's own default is left as the suite set it. */
static int default_method_checks(void)
{
    unsetenv("MP_START_METHOD");
    CHECK(mp_set_start_method(NULL, true) == 0);
    CHECK(mp_get_start_method(true) == NULL);
    CHECK(strcmp(mp_get_start_method(false), "fork") == 0);  /* fixes it */
    CHECK(mp_set_start_method("spawn", false) == MP_EINVAL); /* already set */
    CHECK(mp_set_start_method("spawn", true) == 0);
    CHECK(strcmp(mp_get_start_method(true), "spawn") == 0);
    CHECK(mp_get_context(NULL) == mp_get_context("spawn"));
    CHECK(mp_set_start_method("bogus", true) == MP_EINVAL);
    CHECK(mp_set_start_method(NULL, true) == 0);
    CHECK(mp_set_start_method("bogus", false) == MP_EINVAL);
    CHECK(mp_set_start_method("forkserver", false) == 0);
    CHECK(mp_set_start_method("fork", false) == MP_EINVAL);
    CHECK(strcmp(mp_get_start_method(false), "forkserver") == 0);
    /* get_context(None) fixes the default, as in Python. */
    CHECK(mp_set_start_method(NULL, true) == 0);
    CHECK(mp_get_context(NULL) == mp_get_context("fork"));
    CHECK(mp_set_start_method("spawn", false) == MP_EINVAL);
    /* The default context's get_context and set_start_method. */
    CHECK(mp_context_set_start_method(NULL, NULL, true) == 0);
    CHECK(mp_context_get_context(NULL, "spawn") == mp_get_context("spawn"));
    CHECK(mp_get_start_method(true) == NULL); /* a named one does not fix it */
    CHECK(mp_context_set_start_method(NULL, "forkserver", false) == 0);
    CHECK(mp_context_get_context(NULL, NULL) == mp_get_context("forkserver"));
    CHECK(mp_context_set_start_method(NULL, "spawn", false) == MP_EINVAL);
    CHECK(mp_context_set_start_method(NULL, "bogus", true) == MP_EINVAL);
    CHECK(mp_context_set_start_method(NULL, "spawn", true) == 0);
    CHECK(mp_context_get_context(NULL, NULL) == mp_get_context("spawn"));
    /* Python 3.14's order: the platform's default first, whatever
     * set_start_method chose; unset, 3.12's fork, spawn, forkserver. */
    const char *order[3];
    CHECK(mp_get_all_start_methods(order, 3) == 3);
    CHECK(strcmp(order[0], "fork") == 0 && strcmp(order[1], "spawn") == 0 &&
          strcmp(order[2], "forkserver") == 0);
    CHECK(mp_context_set_start_method(NULL, NULL, true) == 0);
    CHECK(mp_context_get_context(NULL, NULL) == mp_get_context("fork"));
    /* set_start_method(None) without force fixes what would be picked. */
    CHECK(mp_set_start_method(NULL, true) == 0);
    CHECK(mp_set_start_method(NULL, false) == 0);
    CHECK(strcmp(mp_get_start_method(true), "fork") == 0);

    /* MP_START_METHOD picks the default... */
    setenv("MP_START_METHOD", "spawn", 1);
    CHECK(mp_set_start_method(NULL, true) == 0);
    CHECK(mp_get_start_method(true) == NULL);
    const char *all[3];
    CHECK(mp_get_all_start_methods(all, 3) == 3);
    CHECK(strcmp(all[0], "spawn") == 0 && strcmp(all[1], "fork") == 0 &&
          strcmp(all[2], "forkserver") == 0);
    CHECK(strcmp(mp_get_start_method(false), "spawn") == 0);
    /* ...but mp_set_start_method wins over it (not over the order). */
    CHECK(mp_set_start_method("forkserver", true) == 0);
    CHECK(strcmp(mp_get_start_method(false), "forkserver") == 0);
    CHECK(mp_get_all_start_methods(all, 3) == 3 && strcmp(all[0], "spawn") == 0);

    /* An unknown value is an error at first use. */
    setenv("MP_START_METHOD", "threads", 1);
    CHECK(mp_set_start_method(NULL, true) == 0);
    CHECK(mp_get_start_method(true) == NULL);
    CHECK(mp_get_start_method(false) == NULL);
    CHECK(mp_last_error() == MP_EINVAL);
    CHECK(mp_get_context(NULL) == NULL && mp_last_error() == MP_EINVAL);
    CHECK(mp_process_new(.target = (mp_target_fn)(uintptr_t)sleep_s) == NULL);
    CHECK(mp_last_error() == MP_EINVAL);
    CHECK(mp_set_start_method(NULL, false) == MP_EINVAL);
    CHECK(mp_get_all_start_methods(all, 3) == 3 && strcmp(all[0], "fork") == 0);
    /* Named contexts still work, and a set method too. */
    CHECK(mp_get_context("spawn") != NULL);
    CHECK(mp_set_start_method("spawn", false) == 0);
    CHECK(strcmp(mp_get_start_method(false), "spawn") == 0);
    return 0;
}

static void test_default_method(void **state)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(default_method_checks());
    assert_int_equal(mpt_wait_status(pid), 0);
}

static void test_all_start_methods(void **state)
{
    assert_int_equal(mp_get_all_start_methods(NULL, 0), 3);
    assert_int_equal(mp_get_all_start_methods(NULL, 1), MP_EINVAL);
    const char *two[2] = {NULL, NULL};
    assert_int_equal(mp_get_all_start_methods(two, 2), 3);
    assert_non_null(two[0]);
    assert_non_null(two[1]);
    const char *all[3];
    assert_int_equal(mp_get_all_start_methods(all, 3), 3);
    /* The default first; the three names once each. */
    assert_string_equal(all[0], mpt_method());
    int seen = 0;
    for (int i = 0; i < 3; i++)
        for (int m = 0; m < NMETHODS; m++)
            if (strcmp(all[i], methods[m]) == 0)
                seen |= 1 << m;
    assert_int_equal(seen, 7);
}

/* ---- each method runs the target ----------------------------------------------- */

static int report_method(void *arg, size_t n)
{
    const char *expect = arg;
    /* The child's default is the method that started it. */
    CHECK(strcmp(mp_get_start_method(true), expect) == 0);
    CHECK(mp_get_context(NULL) == mp_get_context(expect));
    CHECK(mp_context_get_context(NULL, NULL) == mp_get_context(expect));
    CHECK(mp_context_get_context(mp_get_context(expect), NULL) == mp_get_context(expect));
    CHECK(mp_context_set_start_method(mp_get_context(expect), "fork", true) == MP_EINVAL);
    /* The order of the methods is the platform's, not the child's default. */
    const char *all[3];
    CHECK(mp_get_all_start_methods(all, 3) == 3 && strcmp(all[0], mpt_method()) == 0);
    /* The spawn hand-over variable is gone from the environment. */
    CHECK(getenv("LIBMP_SPAWN_FD") == NULL);
    CHECK(mp_parent_process() != NULL);
    CHECK(mp_process_pid(mp_parent_process()) == *(pid_t *)((char *)arg + 16));
    CHECK(mp_process_is_alive(mp_parent_process()) == 1);
    /* The kernel shows the program's name, not "exe". */
    char comm[17] = "";
    CHECK(prctl(PR_GET_NAME, comm) == 0);
    CHECK(strcmp(comm, (char *)arg + 24) == 0);
    return 40 + (int)strlen(expect);
}

static void test_each_method(void **state)
{
    for (int i = 0; i < NMETHODS; i++) {
        char arg[48] = {0};
        snprintf(arg, 16, "%s", methods[i]);
        pid_t me = getpid();
        memcpy(arg + 16, &me, sizeof me);
        prctl(PR_GET_NAME, arg + 24);
        int code = run_code(mp_process_new(.target = report_method, .arg = arg,
                                           .arg_size = sizeof arg, .ctx = ctx_of(methods[i])));
        assert_int_equal(code, 40 + (int)strlen(methods[i]));
    }
}

/* Exit codes, signals, terminate: the same under every method. */
static int ret_arg(void *arg, size_t n)
{
    return *(int *)arg;
}

static int pauser(void *arg, size_t n)
{
    for (;;)
        pause();
    return 0;
}

static int self_kill(void *arg, size_t n)
{
    raise(SIGKILL);
    return 1;
}

static void test_exit_status(void **state)
{
    for (int i = 0; i < NMETHODS; i++) {
        mp_context *c = ctx_of(methods[i]);
        int v = 300;
        assert_int_equal(run_code(mp_process_new(.target = ret_arg, .arg = &v,
                                                 .arg_size = sizeof v, .ctx = c)),
                         300 & 0xff);
        assert_int_equal(run_code(mp_process_new(.target = self_kill, .ctx = c)), -SIGKILL);
        mp_process *p = mp_process_new(.target = pauser, .ctx = c);
        assert_int_equal(mp_process_start(p), 0);
        assert_true(mp_process_pid(p) > 0);
        assert_int_equal(mp_process_join(p, 0.05), MP_ETIMEDOUT);
        assert_int_equal(mp_process_is_alive(p), 1);
        int sentinel = mp_process_sentinel(p);
        assert_true(sentinel >= 0);
        struct pollfd pfd = {.fd = sentinel, .events = POLLIN};
        assert_int_equal(poll(&pfd, 1, 0), 0);
        assert_int_equal(mp_process_terminate(p), 0);
        assert_int_equal(poll(&pfd, 1, 30000), 1);
        assert_int_equal(mp_process_join(p, 30), 0);
        assert_int_equal(poll(&pfd, 1, 0), 1); /* stays readable */
        int code;
        assert_int_equal(mp_process_exitcode(p, &code), 0);
        assert_int_equal(code, -SIGTERM);
        assert_int_equal(mp_process_terminate(p), 0); /* ended: a no-op */
        mp_process_free(p);
    }
}

/* Several threads joining one forkserver child see the same code. */
struct joiner {
    mp_process *p;
    int rc;
    int code;
};

static void *join_thread(void *arg)
{
    struct joiner *j = arg;
    j->rc = mp_process_join(j->p, 30);
    if (j->rc == 0)
        j->rc = mp_process_exitcode(j->p, &j->code);
    return NULL;
}

static int sleep_then(void *arg, size_t n)
{
    sleep_s(0.2);
    return 17;
}

static void test_join_threads(void **state)
{
    for (int i = 0; i < NMETHODS; i++) {
        mp_process *p = mp_process_new(.target = sleep_then, .ctx = ctx_of(methods[i]));
        assert_int_equal(mp_process_start(p), 0);
        struct joiner j[4];
        pthread_t t[4];
        for (int k = 0; k < 4; k++) {
            j[k] = (struct joiner){p, -1, -1};
            assert_int_equal(pthread_create(&t[k], NULL, join_thread, &j[k]), 0);
        }
        for (int k = 0; k < 4; k++) {
            pthread_join(t[k], NULL);
            assert_int_equal(j[k].rc, 0);
            assert_int_equal(j[k].code, 17);
        }
        mp_process_free(p);
    }
}

/* ---- what a child inherits --------------------------------------------------- */

struct fd_report {
    int passed_cloexec; /* registered, FD_CLOEXEC */
    int passed_plain;   /* registered, no FD_CLOEXEC */
    int unregistered;   /* not registered, no FD_CLOEXEC */
    int under_fork;
};

static int check_fds(void *arg, size_t n)
{
    const struct fd_report *r = arg;
    int fl = fcntl(r->passed_cloexec, F_GETFD);
    CHECK(fl >= 0 && (fl & FD_CLOEXEC));
    fl = fcntl(r->passed_plain, F_GETFD);
    CHECK(fl >= 0 && !(fl & FD_CLOEXEC));
    /* Python: a spawned child inherits only what it needs. */
    fl = fcntl(r->unregistered, F_GETFD);
    CHECK(r->under_fork ? fl >= 0 : fl < 0);
    char c = 'k';
    CHECK(write(r->passed_plain, &c, 1) == 1);
    CHECK(write(r->passed_cloexec, &c, 1) == 1);
    return 0;
}

static void test_fds_passed(void **state)
{
    int a[2], b[2], u;
    assert_int_equal(pipe2(a, O_CLOEXEC), 0);
    assert_int_equal(pipe(b), 0);
    assert_true((u = open("/dev/null", O_RDONLY)) >= 0);
    /* Numbers far apart, one above the arena's fd. */
    assert_int_equal(dup3(a[1], 777, O_CLOEXEC), 777);
    assert_int_equal(dup2(b[1], 61), 61);
    assert_int_equal(dup2(u, 62), 62);
    close(a[1]);
    close(b[1]);
    close(u);
    mpt_pass_fd(777);
    mpt_pass_fd(61);
    for (int i = 0; i < NMETHODS; i++) {
        struct fd_report r = {777, 61, 62, i == 0};
        assert_int_equal(run_code(mp_process_new(.target = check_fds, .arg = &r,
                                                 .arg_size = sizeof r,
                                                 .ctx = ctx_of(methods[i]))),
                         0);
        char c[2];
        assert_int_equal(read(a[0], c, 1), 1);
        assert_int_equal(read(b[0], c + 1, 1), 1);
    }
    mpt_close(777);
    mpt_close(61);
    close(62);
    close(a[0]);
    close(b[0]);
}

/* The child's stdio are the caller's, also under forkserver (whose server
 * keeps the stdio of the process that started it). */
static int say(void *arg, size_t n)
{
    printf("said %s\n", (const char *)arg);
    return 0;
}

static void test_stdio(void **state)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        for (int i = 0; i < NMETHODS; i++) {
            mp_process *p = mp_process_new(.target = say, .arg = methods[i],
                                           .arg_size = strlen(methods[i]) + 1,
                                           .ctx = mp_get_context(methods[i]));
            if (p == NULL || mp_process_start(p) != 0 || mp_process_join(p, 30) != 0)
                _exit(2);
            mp_process_free(p);
        }
        _exit(0);
    }
    close(pfd[1]);
    char out[256];
    size_t len = 0;
    ssize_t k;
    while ((k = read(pfd[0], out + len, sizeof out - 1 - len)) > 0)
        len += (size_t)k;
    out[len] = '\0';
    close(pfd[0]);
    assert_int_equal(mpt_wait_status(pid), 0);
    assert_string_equal(out, "said fork\nsaid spawn\nsaid forkserver\n");
}

/* ---- the handle rule -------------------------------------------------------- */

struct handles {
    int *counter;          /* mp_shared_alloc */
    mp_shared_memory *shm; /* named shared memory (the tracker's fd) */
    mp_process *parent;    /* a process object */
    mp_context *ctx;       /* a context */
    const char *method;    /* a string in the arena */
    int fd;                /* a registered pipe */
    mp_queue *queue;
    mp_lock *lock;
    mp_event *event;
    mp_value *value;
    mp_connection *conn; /* an fd-holding object: one end of a Pipe */
};

static int use_handles(void *arg, size_t n)
{
    const struct handles *h = arg;
    CHECK(n == sizeof *h);
    __atomic_add_fetch(h->counter, 1, __ATOMIC_SEQ_CST);
    char *buf = mp_shared_memory_buf(h->shm);
    CHECK(buf != NULL && strcmp(buf, "from parent") == 0);
    strcpy(buf + 32, h->method);
    CHECK(strcmp(mp_process_name(h->parent), "MainProcess") == 0);
    CHECK(strcmp(mp_context_get_start_method(h->ctx), h->method) == 0);
    CHECK(write(h->fd, "h", 1) == 1);
    /* The parent holds the lock: the child sees it taken, then free. */
    CHECK(mp_lock_acquire(h->lock, 0) == MP_ETIMEDOUT);
    mp_event_set(h->event);
    CHECK(mp_lock_acquire(h->lock, 30) == 0);
    int v = 0;
    CHECK(MP_VALUE_GET(h->value, &v) == 0);
    CHECK(MP_VALUE_SET(h->value, int, v + 10) == 0);
    CHECK(mp_lock_release(h->lock) == 0);
    CHECK(mp_queue_put(h->queue, h->method, strlen(h->method) + 1, 30) == 0);
    CHECK(mp_connection_send(h->conn, h->method, strlen(h->method)) == 0);
    /* The child may create tracked segments too (the tracker's pipe came
     * with the fds). */
    mp_shared_memory *mine = mp_shared_memory_new(.create = true, .size = 64);
    CHECK(mine != NULL);
    CHECK(mp_shared_memory_unlink(mine) == 0);
    mp_shared_memory_free(mine);
    return 0;
}

static void test_handle_rule(void **state)
{
    int pfd[2];
    assert_int_equal(mpt_pipe(pfd), 0);
    struct handles h = {0};
    h.counter = mp_shared_alloc(sizeof *h.counter);
    assert_non_null(h.counter);
    h.shm = mp_shared_memory_new(.create = true, .size = 4096);
    assert_non_null(h.shm);
    strcpy(mp_shared_memory_buf(h.shm), "from parent");
    h.parent = mp_current_process();
    h.fd = pfd[1];
    h.queue = mp_queue_new();
    h.lock = mp_lock_new();
    h.event = mp_event_new();
    h.value = mp_value_new(.typecode = 'i', .value = 5);
    mp_connection *mine;
    assert_int_equal(mp_pipe(false, &mine, &h.conn), 0);
    assert_true(h.queue && h.lock && h.event && h.value);
    for (int i = 0; i < NMETHODS; i++) {
        h.ctx = ctx_of(methods[i]);
        char *name = mp_shared_alloc(16);
        strcpy(name, methods[i]);
        h.method = name;
        assert_int_equal(mp_lock_acquire(h.lock, 0), 0);
        mp_process *p = mp_process_new(.target = use_handles, .arg = &h, .arg_size = sizeof h,
                                       .ctx = h.ctx);
        assert_int_equal(mp_process_start(p), 0);
        assert_int_equal(mp_event_wait(h.event, 30), 0);
        mp_event_clear(h.event);
        assert_int_equal(mp_lock_release(h.lock), 0);
        assert_int_equal(mp_process_join(p, 30), 0);
        int code = -1;
        assert_int_equal(mp_process_exitcode(p, &code), 0);
        assert_int_equal(code, 0);
        mp_process_free(p);
        assert_int_equal(*h.counter, i + 1);
        int v = 0;
        assert_int_equal(MP_VALUE_GET(h.value, &v), 0);
        assert_int_equal(v, 5 + 10 * (i + 1));
        char got[16];
        size_t len = 0;
        assert_int_equal(mp_queue_get(h.queue, got, sizeof got, &len, 30), 0);
        assert_string_equal(got, methods[i]);
        void *msg = NULL;
        assert_int_equal(mp_connection_recv(mine, &msg, &len), 0);
        assert_int_equal(len, strlen(methods[i]));
        assert_memory_equal(msg, methods[i], len);
        free(msg);
        assert_string_equal((char *)mp_shared_memory_buf(h.shm) + 32, methods[i]);
        char c;
        assert_int_equal(read(pfd[0], &c, 1), 1);
        mp_shared_free(name);
    }
    assert_int_equal(mp_shared_memory_unlink(h.shm), 0);
    mp_shared_memory_free(h.shm);
    mp_shared_free(h.counter);
    mp_queue_free(h.queue);
    mp_lock_free(h.lock);
    mp_event_free(h.event);
    mp_value_free(h.value);
    mp_connection_free(mine);
    mp_connection_free(h.conn);
    mpt_close(pfd[0]);
    mpt_close(pfd[1]);
}

/* A process started by a spawned child, and by a forkserver child, with
 * every method: the family keeps one arena and one forkserver. */
static int nested(void *arg, size_t n)
{
    int *counter = *(int **)arg;
    __atomic_add_fetch(counter, 1, __ATOMIC_SEQ_CST);
    if (strchr(mp_process_name(mp_current_process()), ':') != NULL)
        return 0; /* a grandchild ("Process-N:M") just counts */
    for (int i = 0; i < NMETHODS; i++) {
        mp_process *g = mp_process_new(.target = nested, .ctx = mp_get_context(methods[i]),
                                       .arg = arg, .arg_size = n);
        CHECK(g != NULL);
        CHECK(mp_process_start(g) == 0);
        CHECK(mp_process_join(g, 30) == 0);
        int code = -1;
        CHECK(mp_process_exitcode(g, &code) == 0 && code == 0);
        mp_process_free(g);
    }
    return 0;
}

static void test_nested(void **state)
{
    int *counter = mp_shared_alloc(sizeof *counter);
    for (int i = 0; i < NMETHODS; i++) {
        *counter = 0;
        assert_int_equal(run_code(mp_process_new(.target = nested, .arg = &counter,
                                                 .arg_size = sizeof counter,
                                                 .ctx = ctx_of(methods[i]))),
                         0);
        assert_int_equal(*counter, 1 + NMETHODS);
    }
    mp_shared_free(counter);
}

/* ---- errors ------------------------------------------------------------------- */

static void test_bad_target(void **state)
{
    static int data_word;
    /* Not a function of a loaded module: refused at creation. */
    assert_null(mp_process_new(.target = (mp_target_fn)(uintptr_t)&data_word));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    void *heap = malloc(16);
    assert_null(
        mp_process_new(.target = (mp_target_fn)(uintptr_t)heap, .ctx = ctx_of("spawn")));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    free(heap);

    /* A function of a library loaded with dlopen: a fork child has it, a
     * spawned child or the forkserver does not, and the start says so. */
    void *lib = dlopen(MPT_DL_TARGET, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(lib);
    mp_target_fn fn = (mp_target_fn)(uintptr_t)dlsym(lib, "mpt_dl_target");
    assert_non_null(fn);
    assert_int_equal(run_code(mp_process_new(.target = fn, .ctx = ctx_of("fork"))), 9);
    for (int i = 1; i < NMETHODS; i++) {
        mp_process *p = mp_process_new(.target = fn, .ctx = ctx_of(methods[i]));
        assert_non_null(p);
        assert_int_equal(mp_process_start(p), MP_EINVAL);
        /* Nothing started: the object can be started again or freed. */
        assert_int_equal(mp_process_is_alive(p), 0);
        assert_int_equal(mp_process_join(p, 0), MP_EINVAL);
        mp_process_free(p);
    }
    dlclose(lib);
}

static void test_set_executable(void **state)
{
    assert_int_equal(mp_set_executable(""), MP_EINVAL);
    assert_int_equal(mp_set_executable("/nonexistent/program"), -ENOENT);
    char longpath[PATH_MAX + 8];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = '\0';
    assert_int_equal(mp_set_executable(longpath), MP_EINVAL);
    int v = 5;

    /* The same program under another name works. */
    char copy[] = "/tmp/libmp-test-exe-XXXXXX";
    int out = mkstemp(copy);
    assert_true(out >= 0);
    int in = open(self_path(), O_RDONLY);
    assert_true(in >= 0);
    char buf[65536];
    ssize_t k;
    while ((k = read(in, buf, sizeof buf)) > 0)
        assert_int_equal(write(out, buf, (size_t)k), k);
    close(in);
    fchmod(out, 0700);
    close(out);
    assert_int_equal(mp_set_executable(copy), 0);
    assert_int_equal(run_code(mp_process_new(.target = ret_arg, .arg = &v,
                                             .arg_size = sizeof v, .ctx = ctx_of("spawn"))),
                     5);

    /* A libmp program of another build: refused by the child. */
    assert_int_equal(mp_set_executable(MPT_SHM_PEER), 0);
    mp_process *p = mp_process_new(.target = ret_arg, .arg = &v, .arg_size = sizeof v,
                                   .ctx = ctx_of("spawn"));
    assert_int_equal(mp_process_start(p), -ENOEXEC);
    /* A program without libmp, which ends without answering. */
    assert_int_equal(mp_set_executable("/bin/true"), 0);
    assert_int_equal(mp_process_start(p), -ECHILD);
    assert_int_equal(mp_set_executable(NULL), 0);
    assert_int_equal(mp_process_start(p), 0);
    assert_int_equal(mp_process_join(p, 30), 0);
    mp_process_free(p);
    unlink(copy);
}

/*
 * The arena's address taken in the child: a constructor of this program
 * maps something there (or uses libmp) when asked to by the environment
 * (which the parent sets only around the start of that child); the child
 * is taken over after the constructors, and says so.
 */
__attribute__((constructor)) static void occupy_arena(void)
{
    const char *v = getenv("MPT_OCCUPY_ARENA");
    if (v == NULL)
        return;
    if (strcmp(v, "map") == 0) {
        void *addr = (void *)(uintptr_t)strtoull(getenv("MPT_ARENA_ADDR"), NULL, 16);
        mmap(addr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    } else {
        mp_shared_alloc(16);
    }
}

static void test_arena_taken(void **state)
{
    void *addr;
    mp__heap_info(NULL, &addr, NULL);
    char hex[32];
    snprintf(hex, sizeof hex, "%llx", (unsigned long long)(uintptr_t)addr);
    setenv("MPT_ARENA_ADDR", hex, 1);
    const char *how[] = {"map", "alloc"};
    int v = 0;
    for (int i = 0; i < 2; i++) {
        setenv("MPT_OCCUPY_ARENA", how[i], 1);
        mp_process *p = mp_process_new(.target = ret_arg, .arg = &v, .arg_size = sizeof v,
                                       .ctx = ctx_of("spawn"));
        int r = mp_process_start(p);
        unsetenv("MPT_OCCUPY_ARENA"); /* first: a failure must not leave it set */
        assert_int_equal(r, -EADDRINUSE);
        assert_int_equal(mp_process_start(p), 0); /* the object is still usable */
        assert_int_equal(mp_process_join(p, 30), 0);
        mp_process_free(p);
    }
    unsetenv("MPT_ARENA_ADDR");
}

/* ---- the forkserver ------------------------------------------------------------ */

/* The pid's process has ended (gone, or a zombie nobody reaps). */
static bool ended(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return true;
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[k] = '\0';
    const char *close_paren = strrchr(buf, ')');
    return close_paren == NULL || close_paren[2] == 'Z' || close_paren[2] == 'X';
}

static void test_forkserver_restart(void **state)
{
    struct mp__forkserver *fs = NULL;
    assert_int_equal(mp__forkserver_get(&fs, false), 0);
    pid_t server = mp__forkserver_pid(fs);
    assert_true(server > 0);
    char dir[128];
    snprintf(dir, sizeof dir, "%s", mp__forkserver_dir(fs));
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    char sock[160];
    snprintf(sock, sizeof sock, "%s/sock", dir);
    assert_int_equal(stat(sock, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* A client without the key is turned away, and so is one that skips
     * the challenge. */
    mp_connection *c = mp_client(.path = sock, .authkey = "wrong", .authkey_len = 5);
    assert_null(c);
    assert_int_equal(mp_last_error(), MP_EAUTH);
    int raw = mp__forkserver_connect(fs);
    assert_true(raw >= 0);
    struct mp__fs_request rq = {.magic = MP__FS_MAGIC, .version = MP__FS_VERSION};
    assert_int_equal(mp__write_full(raw, &rq, sizeof rq), 0);
    char buf[256];
    ssize_t k;
    while ((k = read(raw, buf, sizeof buf)) > 0) /* the challenge, then EOF */
        ;
    assert_int_equal(k, 0);
    close(raw);
    /* The key itself works. */
    raw = mp__forkserver_connect(fs);
    assert_int_equal(mp__forkserver_auth(raw, fs, false), 0);
    close(raw);

    /* Killed, it is replaced at the next start. */
    assert_int_equal(kill(server, SIGKILL), 0);
    double t0 = mp__now();
    while (!ended(server) && mp__now() - t0 < 10)
        sleep_s(0.01);
    int v = 6;
    assert_int_equal(run_code(mp_process_new(.target = ret_arg, .arg = &v,
                                             .arg_size = sizeof v,
                                             .ctx = ctx_of("forkserver"))),
                     6);
    struct mp__forkserver *again = NULL;
    assert_int_equal(mp__forkserver_get(&again, false), 0);
    assert_ptr_not_equal(again, fs);
    /* The killed server could not clean up its directory. */
    unlink(sock);
    rmdir(dir);
}

/*
 * A stand-in for a server that is dying: it listens at the server's path,
 * says so on ready, and when a client connects it either exits without
 * accepting (the kernel resets the queued connection) or accepts and hangs
 * up before the handshake.
 */
struct dying_server {
    const char *path;
    int ready;
    bool accept_first;
};

static int dying_server_main(void *arg)
{
    const struct dying_server *d = arg;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", d->path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4) != 0)
        return 2;
    if (write(d->ready, "r", 1) != 1)
        return 3;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 60000) != 1)
        return 4;
    if (d->accept_first)
        close(accept(fd, NULL, NULL));
    return 0;
}

/* Kill fs's server and put a dying stand-in at its path: a process started
 * then must get a new server. */
static void start_past_dying_server(struct mp__forkserver *fs, bool accept_first)
{
    pid_t server = mp__forkserver_pid(fs);
    assert_int_equal(kill(server, SIGKILL), 0);
    double t0 = mp__now();
    while (!ended(server) && mp__now() - t0 < 10)
        sleep_s(0.01);
    char sock[160];
    snprintf(sock, sizeof sock, "%s/sock", mp__forkserver_dir(fs));
    unlink(sock);
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    struct dying_server d = {.path = sock, .ready = ready[1], .accept_first = accept_first};
    pid_t stand_in = mpt_fork(dying_server_main, &d);
    close(ready[1]);
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    int v = 9;
    assert_int_equal(run_code(mp_process_new(.target = ret_arg, .arg = &v,
                                             .arg_size = sizeof v,
                                             .ctx = ctx_of("forkserver"))),
                     9);
    assert_int_equal(mpt_wait_timed(stand_in, 30), 0);
    struct mp__forkserver *again = NULL;
    assert_int_equal(mp__forkserver_get(&again, false), 0);
    assert_ptr_not_equal(again, fs);
    unlink(sock);
    rmdir(mp__forkserver_dir(fs));
}

/* A server whose socket still takes connections as it dies is replaced
 * too: the connection is reset, or closed before the handshake. */
static void test_forkserver_dying(void **state)
{
    for (int i = 0; i < 2; i++) {
        struct mp__forkserver *fs = NULL;
        assert_int_equal(mp__forkserver_get(&fs, false), 0);
        start_past_dying_server(fs, i == 1);
    }
}

/* Wait for an event, then return 7. */
static int wait_event_then(void *arg, size_t n)
{
    return mp_event_wait(*(mp_event **)arg, 30) == 0 ? 7 : 1;
}

/*
 * A forkserver child whose server dies meanwhile: it still runs, signals
 * still reach it, join waits for its real end, and its exit code is 255
 * (nobody reaped it to tell, as Python reports).
 */
static void test_forkserver_dies(void **state)
{
    mp_event *ev = mp_event_new();
    mp_process *p = mp_process_new(.target = wait_event_then, .arg = &ev,
                                   .arg_size = sizeof ev, .ctx = ctx_of("forkserver"));
    mp_process *q = mp_process_new(.target = pauser, .ctx = ctx_of("forkserver"));
    assert_int_equal(mp_process_start(p), 0);
    assert_int_equal(mp_process_start(q), 0);
    struct mp__forkserver *fs = NULL;
    assert_int_equal(mp__forkserver_get(&fs, false), 0);
    pid_t server = mp__forkserver_pid(fs);
    char dir[128];
    snprintf(dir, sizeof dir, "%s", mp__forkserver_dir(fs));
    assert_int_equal(kill(server, SIGKILL), 0);
    double t0 = mp__now();
    while (!ended(server) && mp__now() - t0 < 10)
        sleep_s(0.01);

    assert_int_equal(mp_process_join(p, 0.1), MP_ETIMEDOUT);
    assert_int_equal(mp_process_is_alive(p), 1);
    mp_event_set(ev);
    assert_int_equal(mp_process_join(p, 30), 0);
    int code;
    assert_int_equal(mp_process_exitcode(p, &code), 0);
    assert_int_equal(code, 255);

    assert_int_equal(mp_process_is_alive(q), 1);
    assert_int_equal(mp_process_kill(q), 0);
    assert_int_equal(mp_process_join(q, 30), 0);
    assert_int_equal(mp_process_exitcode(q, &code), 0);
    assert_int_equal(code, 255);
    mp_process_free(p);
    mp_process_free(q);
    mp_event_free(ev);
    char sock[160];
    snprintf(sock, sizeof sock, "%s/sock", dir);
    unlink(sock);
    rmdir(dir);
    /* And the next start brings a new server. */
    int v = 8;
    assert_int_equal(run_code(mp_process_new(.target = ret_arg, .arg = &v,
                                             .arg_size = sizeof v,
                                             .ctx = ctx_of("forkserver"))),
                     8);
}

/* Run this executable again as a fresh program: main's scenario mode. */
static int run_scenario(const char *name, char *out, size_t size)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execl(self_path(), "test_context", name, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    size_t len = 0;
    ssize_t k;
    while (len < size - 1 && (k = read(pfd[0], out + len, size - 1 - len)) > 0)
        len += (size_t)k;
    out[len] = '\0';
    close(pfd[0]);
    return mpt_wait_status(pid);
}

static void test_preload(void **state)
{
    char out[64];
    assert_int_equal(run_scenario("preload", out, sizeof out), 0);
}

/* The server of a program ends with it, and removes its directory. */
static void test_forkserver_lifetime(void **state)
{
    char out[256];
    assert_int_equal(run_scenario("lifetime", out, sizeof out), 0);
    int server = 0;
    char dir[200];
    assert_int_equal(sscanf(out, "%d %199s", &server, dir), 2);
    double t0 = mp__now();
    struct stat st;
    while (stat(dir, &st) == 0 && mp__now() - t0 < 10)
        sleep_s(0.01);
    assert_int_not_equal(stat(dir, &st), 0);
    while (!ended(server) && mp__now() - t0 < 10)
        sleep_s(0.01);
    assert_true(ended(server));
}

/*
 * A Pool is the forkserver's first user, so the server is started by the
 * pool's thread, which blocks every signal: the server blocks only
 * SIGCHLD all the same, a later child can be terminated, and a daemonic
 * child (sleeping 20 s) does not hold up the program's exit.
 */
static void test_forkserver_after_pool(void **state)
{
    char out[64];
    double t0 = mp__now();
    assert_int_equal(run_scenario("pool_first", out, sizeof out), 0);
    assert_true(mp__now() - t0 < 15);
}

/* Counts in shared memory after 0.3 s. */
static int mark_late(void *arg, size_t n)
{
    int *counter;
    memcpy(&counter, arg, sizeof counter);
    sleep_s(0.3);
    __atomic_fetch_add(counter, 1, __ATOMIC_SEQ_CST);
    return 0;
}

/* In a forked child, with no fd left (spare: 1, with one, and the check
 * before the request skipped, so that the answer's fds are cut): a
 * forkserver start fails with -EMFILE (it used to say -EPIPE) and leaves
 * no child running. */
static int emfile_start(int spare)
{
    if (mp_forkserver_ensure_running() != 0)
        return 40;
    int *counter = mp_shared_alloc(sizeof *counter);
    if (counter == NULL)
        return 41;
    *counter = 0;
    mp_context *fs = mp_get_context("forkserver");
    mp_process *p = mp_process_new(.target = mark_late, .arg = &counter,
                                   .arg_size = sizeof counter, .ctx = fs);
    if (p == NULL || mpt_fds_exhaust(spare) != 0)
        return 42;
    mp__fs_no_fd_check = spare > 0;
    int r = mp_process_start(p);
    mp__fs_no_fd_check = false;
    mpt_fds_restore();
    if (r != -EMFILE) {
        fprintf(stderr, "forkserver start without fds: %s\n", mp_err_name(r));
        return 43;
    }
    sleep_s(1);
    if (__atomic_load_n(counter, __ATOMIC_SEQ_CST) != 0)
        return 44; /* a child ran after all */
    /* The channel still works. */
    if (mp_process_start(p) != 0 || mp_process_join(p, 30) != 0 ||
        __atomic_load_n(counter, __ATOMIC_SEQ_CST) != 1)
        return 45;
    mp_process_free(p);
    mp_shared_free(counter);
    return 0;
}

static void test_forkserver_emfile(void **state)
{
    /* The second case needs an answer of two fds, one of them cut: without
     * pidfds the answer has one.  valgrind keeps the fd limit itself
     * (setrlimit does not reach the kernel): calls that return one fd fail
     * at it, but fds received with SCM_RIGHTS do not, so nothing is cut. */
    int cases = mpt_valgrind() || !mp__sentinel_pidfd_ok() ? 1 : 2;
    if (cases == 1)
        fprintf(stderr, "test_forkserver_emfile: only the case with no fd left (%s)\n",
                mpt_valgrind() ? "valgrind does not apply its fd limit to received fds"
                               : "without pidfds the answer has one fd");
    for (int spare = 0; spare < cases; spare++) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0)
            _exit(emfile_start(spare));
        assert_int_equal(mpt_wait_status(pid), 0);
    }
}

/* ---- threads ------------------------------------------------------------------- */

struct stress {
    atomic_bool stop;
    pthread_mutex_t lock;
    mp_lock *shared_lock;
    long counter;
};

static void *churn(void *arg)
{
    struct stress *s = arg;
    unsigned seed = (unsigned)(uintptr_t)&seed;
    while (!atomic_load(&s->stop)) {
        size_t n = 16 + (size_t)(rand_r(&seed) % 8192);
        void *a = mp_shared_alloc(n);
        void *b = malloc(n);
        if (a != NULL)
            memset(a, 1, n);
        if (b != NULL)
            memset(b, 2, n);
        pthread_mutex_lock(&s->lock);
        s->counter++;
        pthread_mutex_unlock(&s->lock);
        if (mp_lock_acquire(s->shared_lock, MP_FOREVER) == 0)
            mp_lock_release(s->shared_lock);
        mp_shared_free(a);
        free(b);
    }
    return NULL;
}

static void test_threads_running(void **state)
{
    struct stress s = {.lock = PTHREAD_MUTEX_INITIALIZER, .shared_lock = mp_lock_new()};
    assert_non_null(s.shared_lock);
    mp_context *c[2] = {ctx_of("spawn"), ctx_of("forkserver")};
    for (int round = 0; round < 5; round++) {
        atomic_store(&s.stop, false);
        pthread_t t[8];
        for (int i = 0; i < 8; i++)
            assert_int_equal(pthread_create(&t[i], NULL, churn, &s), 0);
        for (int i = 0; i < 20; i++) {
            int v = i;
            mp_process *p = mp_process_new(.target = ret_arg, .arg = &v, .arg_size = sizeof v,
                                           .ctx = c[i & 1]);
            assert_int_equal(mp_process_start(p), 0);
            /* A deadlocked child would show here. */
            assert_int_equal(mp_process_join(p, 60), 0);
            int code;
            assert_int_equal(mp_process_exitcode(p, &code), 0);
            assert_int_equal(code, v);
            mp_process_free(p);
        }
        atomic_store(&s.stop, true);
        for (int i = 0; i < 8; i++)
            pthread_join(t[i], NULL);
    }
    assert_true(s.counter > 0);
    mp_lock_free(s.shared_lock);
}

/* ---- the start-up hook and the hand-over ------------------------------------------- */

/* Wait for pid at most s seconds (killing it then): its status, as
 * mpt_wait_status, or 2000 if it had to be killed. */
static int wait_bounded(pid_t pid, double s)
{
    int st = mpt_wait_timed(pid, s);
    if (st >= 0)
        return st;
    kill(pid, SIGKILL);
    mpt_wait_status(pid);
    return 2000;
}

enum stray {
    STRAY_GARBAGE,
    STRAY_OLD,
    STRAY_CLOSED,
    STRAY_PIPE,
    STRAY_OWN_SOCKET,
    STRAY_PARENT_JUNK,
    STRAY_COUNT
};

/*
 * Run this program ("stray" scenario) with a LIBMP_SPAWN_FD that no libmp
 * parent set: main must run (the scenario checks the variable is gone and
 * exits 0), at once, whatever the variable points at.
 */
static int run_stray(enum stray kind)
{
    static const char tok[] = "00112233445566778899aabbccddeeff";
    int sp[2] = {-1, -1};
    if (kind == STRAY_PARENT_JUNK) {
        /* A socket the parent made, but the message is not libmp's. */
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
        char junk[4096];
        memset(junk, 0x5a, sizeof junk);
        assert_int_equal(write(sp[0], junk, sizeof junk), (ssize_t)sizeof junk);
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char v[128];
        int fds[2];
        switch (kind) {
        case STRAY_GARBAGE:
            snprintf(v, sizeof v, "not a number");
            break;
        case STRAY_OLD:
            snprintf(v, sizeof v, "7");
            break;
        case STRAY_CLOSED:
            close(200);
            snprintf(v, sizeof v, "200:%d:%s", (int)parent, tok);
            break;
        case STRAY_PIPE: /* an idle pipe: never read from */
            if (pipe(fds) != 0)
                _exit(90);
            snprintf(v, sizeof v, "%d:%d:%s", fds[0], (int)parent, tok);
            break;
        case STRAY_OWN_SOCKET: /* a socket the named parent did not make */
            if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
                _exit(90);
            snprintf(v, sizeof v, "%d:%d:%s", fds[0], (int)parent, tok);
            break;
        default:
            snprintf(v, sizeof v, "%d:%d:%s", sp[1], (int)parent, tok);
            break;
        }
        setenv("LIBMP_SPAWN_FD", v, 1);
        execl(self_path(), "test_context", "stray", (char *)NULL);
        _exit(91);
    }
    int code = wait_bounded(pid, 20);
    if (sp[0] >= 0) {
        close(sp[0]);
        close(sp[1]);
    }
    return code;
}

static void test_stray_variable(void **state)
{
    for (int k = 0; k < STRAY_COUNT; k++) {
        int code = run_stray((enum stray)k);
        if (code != 0)
            fail_msg("stray LIBMP_SPAWN_FD case %d: status %d", k, code);
    }
}

/* A process without the start-up hook (libmp linked into the main program,
 * as a static program that does not call mp_spawn_main): spawn and
 * forkserver refuse with MP_ESPAWNMAIN; fork works.  In a raw fork. */
static int no_hook_child(void)
{
    mp__spawn_boot_set(MP__BOOT_NONE, NULL);
    int v = 3;
    for (int i = 1; i < NMETHODS; i++) {
        mp_process *p = mp_process_new(.target = ret_arg, .arg = &v, .arg_size = sizeof v,
                                       .ctx = mp_get_context(methods[i]));
        CHECK(p != NULL);
        CHECK(mp_process_start(p) == MP_ESPAWNMAIN);
        mp_process_free(p);
    }
    CHECK(strstr(mp_strerror(MP_ESPAWNMAIN), "mp_spawn_main") != NULL);
    mp_process *p = mp_process_new(.target = ret_arg, .arg = &v, .arg_size = sizeof v,
                                   .ctx = mp_get_context("fork"));
    int code = -1;
    CHECK(p != NULL && mp_process_start(p) == 0 && mp_process_join(p, 30) == 0);
    CHECK(mp_process_exitcode(p, &code) == 0 && code == 3);
    mp_process_free(p);
    /* mp_spawn_main records the hook: spawn works again. */
    char *argv[] = {(char *)"/proc/self/exe", NULL};
    CHECK(mp_spawn_main(1, argv) == 0);
    CHECK(mp__spawn_boot_how() == MP__BOOT_CALL);
    p = mp_process_new(.target = ret_arg, .arg = &v, .arg_size = sizeof v,
                       .ctx = mp_get_context("spawn"));
    CHECK(p != NULL && mp_process_start(p) == 0 && mp_process_join(p, 30) == 0);
    CHECK(mp_process_exitcode(p, &code) == 0 && code == 3);
    mp_process_free(p);
    return 0;
}

static void test_no_hook(void **state)
{
    /* This program starts through libmp's hook (libmp.a in a dynamically
     * linked program), and mp_spawn_main changes nothing then. */
    assert_int_equal(mp__spawn_boot_how(), MP__BOOT_HOOK);
    assert_int_equal(mp_spawn_main(0, NULL), 0);
    assert_int_equal(mp__spawn_boot_how(), MP__BOOT_HOOK);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(no_hook_child());
    assert_int_equal(mpt_wait_status(pid), 0);
}

/* Issue 16: an fd at or above the soft RLIMIT_NOFILE (dup2(0, 200) under
 * a limit of 100) does not stop spawn or a new forkserver. */
static void test_fd_above_limit(void **state)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(self_path(), "test_context", "fdlimit", (char *)NULL);
        _exit(91);
    }
    assert_int_equal(wait_bounded(pid, 120), 0);
}

/* ---- scenarios (a fresh program each) ------------------------------------------- */

static int preload_runs;

static void preload_fn(void)
{
    preload_runs++;
}

static int report_preload(void *arg, size_t n)
{
    return preload_runs;
}

static int scenario_preload(void)
{
    static int data_word;
    if (mp_set_forkserver_preload((void (*)(void))(uintptr_t)&data_word) != MP_EINVAL)
        return 10;
    if (mp_set_forkserver_preload(preload_fn) != 0)
        return 11;
    for (int i = 0; i < 2; i++) {
        mp_process *p = mp_process_new(.target = report_preload,
                                       .ctx = mp_get_context("forkserver"));
        int code = -1;
        if (p == NULL || mp_process_start(p) != 0 || mp_process_join(p, 30) != 0 ||
            mp_process_exitcode(p, &code) != 0)
            return 12;
        mp_process_free(p);
        if (code != 1) /* run once, in the server */
            return 13;
    }
    /* Not in spawned children, nor here. */
    mp_process *p = mp_process_new(.target = report_preload, .ctx = mp_get_context("spawn"));
    int code = -1;
    if (p == NULL || mp_process_start(p) != 0 || mp_process_join(p, 30) != 0 ||
        mp_process_exitcode(p, &code) != 0 || code != 0 || preload_runs != 0)
        return 14;
    mp_process_free(p);
    if (mp_set_forkserver_preload(NULL) != 0)
        return 15;
    return 0;
}

static int scenario_lifetime(void)
{
    if (mp_forkserver_ensure_running() != 0)
        return 20;
    struct mp__forkserver *fs = NULL;
    if (mp__forkserver_get(&fs, false) != 0)
        return 21;
    printf("%d %s\n", (int)mp__forkserver_pid(fs), mp__forkserver_dir(fs));
    return 0;
}

/* Started with a stray LIBMP_SPAWN_FD: main runs, without it. */
static int scenario_stray(void)
{
    return getenv("LIBMP_SPAWN_FD") == NULL ? 0 : 30;
}

static int scenario_fdlimit(void)
{
    if (dup2(0, 200) != 200 || dup2(0, 150) != 150)
        return 40;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 41;
    rl.rlim_cur = 100;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 42;
    for (int i = 0; i < NMETHODS; i++) {
        int v = 10 + i;
        mp_process *p = mp_process_new(.target = ret_arg, .arg = &v, .arg_size = sizeof v,
                                       .ctx = mp_get_context(methods[i]));
        int code = -1;
        int r = p == NULL ? mp_last_error() : mp_process_start(p);
        if (r != 0) {
            fprintf(stderr, "fdlimit: %s: %s\n", methods[i], mp_err_name(r));
            return 43 + i;
        }
        if (mp_process_join(p, 60) != 0 || mp_process_exitcode(p, &code) != 0 || code != v)
            return 46 + i;
        mp_process_free(p);
    }
    /* The fd above the limit stayed the parent's only. */
    if (fcntl(200, F_GETFD) < 0)
        return 49;
    /* An fd that must reach a spawned child at its number, above the
     * limit: glibc's file actions cannot name it; refused, not retried. */
    void *owner = mp_shared_alloc(16);
    if (owner == NULL || mp__fd_register(150, owner) != 0)
        return 52;
    int v = 1;
    mp_process *p = mp_process_new(.target = ret_arg, .arg = &v, .arg_size = sizeof v,
                                   .ctx = mp_get_context("spawn"));
    int r = p == NULL ? mp_last_error() : mp_process_start(p);
    if (r != -EBADF) {
        fprintf(stderr, "fdlimit: passing fd 150: %s\n", mp_err_name(r));
        return 50;
    }
    mp__fd_unregister(150);
    close(150);
    mp_shared_free(owner);
    int code = -1;
    if (mp_process_start(p) != 0 || mp_process_join(p, 60) != 0 ||
        mp_process_exitcode(p, &code) != 0 || code != 1)
        return 51;
    mp_process_free(p);
    return 0;
}

static int square(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    int64_t x = *(const int64_t *)in;
    *(int64_t *)out = x * x;
    return 0;
}

static int nap20(void *arg, size_t n)
{
    sleep(20);
    return 0;
}

/* The mask of pid, from /proc: SigBlk. */
static uint64_t blocked_of(pid_t pid)
{
    char path[64], line[128];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    unsigned long long bits = ~0ull;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "SigBlk: %llx", &bits) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return bits;
}

static int scenario_pool_first(void)
{
    mp_context *fs = mp_get_context("forkserver");
    mp_pool *pool = mp_pool_new(.processes = 1, .ctx = fs);
    int64_t in[2] = {2, 3}, res[2];
    if (pool == NULL || mp_pool_map(pool, square, in, 8, 2, res, 8) != 0 || res[1] != 9)
        return 30;
    if (mp_pool_close(pool) != 0 || mp_pool_join(pool, 30) != 0)
        return 31;
    mp_pool_free(pool);
    struct mp__forkserver *srv = NULL;
    if (mp__forkserver_get(&srv, false) != 0)
        return 32;
    if (blocked_of(mp__forkserver_pid(srv)) != UINT64_C(1) << (SIGCHLD - 1))
        return 33;
    mp_process *p = mp_process_new(.target = pauser, .ctx = fs);
    int code = 0;
    if (p == NULL || mp_process_start(p) != 0 || mp_process_terminate(p) != 0 ||
        mp_process_join(p, 10) != 0 || mp_process_exitcode(p, &code) != 0 || code != -SIGTERM)
        return 34;
    mp_process_free(p);
    mp_process *d = mp_process_new(.target = nap20, .daemon = true, .ctx = fs);
    if (d == NULL || mp_process_start(d) != 0)
        return 35;
    return 0; /* exit terminates d */
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        if (strcmp(argv[1], "stray") == 0)
            return scenario_stray();
        if (strcmp(argv[1], "fdlimit") == 0)
            return scenario_fdlimit();
        if (strcmp(argv[1], "preload") == 0)
            return scenario_preload();
        if (strcmp(argv[1], "lifetime") == 0)
            return scenario_lifetime();
        if (strcmp(argv[1], "pool_first") == 0)
            return scenario_pool_first();
        return 99;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_contexts, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_default_method, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_all_start_methods, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_each_method, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_exit_status, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_join_threads, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_fds_passed, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_stdio, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_handle_rule, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_nested, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_bad_target, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_set_executable, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_arena_taken, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_forkserver_restart, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_forkserver_dying, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_forkserver_dies, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_preload, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_forkserver_lifetime, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_forkserver_after_pool, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_forkserver_emfile, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_threads_running, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_stray_variable, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_no_hook, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_fd_above_limit, setup, mpt_teardown),
    };
    int rc = cmocka_run_group_tests_name(MP_TEST_NAME, tests, NULL, NULL);
    mp_process *left[64];
    int n = mp_active_children(left, 64);
    for (int i = 0; i < n && i < 64; i++)
        mp_process_kill(left[i]);
    return rc;
}
