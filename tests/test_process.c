/*
 * test_process.c: Process objects (process.h) with the fork start method.
 *
 * Children report through their exit code: 0 for success, otherwise the
 * (folded) line of the first failed check (CHECK below).  Every test runs
 * in the leak fixture: no fd, child or /dev/shm entry may be left.
 */
#include "internal/mp.h"
#include "internal/linux.h"
#include "internal/popen.h"
#include "mptest.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* In a child: fail with an exit code naming the line. */
#define CHECK(c)                         \
    do {                                 \
        if (!(c))                        \
            return 1 + (__LINE__ % 250); \
    } while (0)

static int setup(void **state)
{
    assert_int_equal(mp__heap_init(), 0);
    mpt_leak_begin();
    return 0;
}

static int teardown(void **state)
{
    mp__sentinel_force_pipe = false;
    signal(SIGCHLD, SIG_DFL);
    mpt_leak_end();
    return 0;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Start p, join it, return its exit code, free it. */
static int run_code(mp_process *p)
{
    assert_non_null(p);
    assert_int_equal(mp_process_start(p), 0);
    assert_int_equal(mp_process_join(p, MP_FOREVER), 0);
    int code = 12345;
    assert_int_equal(mp_process_exitcode(p, &code), 0);
    mp_process_free(p);
    return code;
}

/* ---- targets ------------------------------------------------------------- */

static int ret_int(void *arg, size_t n)
{
    return *(int *)arg;
}

static int call_exit(void *arg, size_t n)
{
    exit(*(int *)arg);
}

static int self_signal(void *arg, size_t n)
{
    raise(*(int *)arg);
    return 99;
}

static int crash_segv(void *arg, size_t n)
{
    /* The default action, whatever handler a sanitizer installed. */
    signal(SIGSEGV, SIG_DFL);
    volatile uintptr_t bad = 16;
    *(volatile int *)bad = 1;
    return 98;
}

static int crash_abort(void *arg, size_t n)
{
    abort();
}

static int sleeper(void *arg, size_t n)
{
    sleep_s(arg != NULL ? *(double *)arg : 60);
    return 0;
}

static int pauser(void *arg, size_t n)
{
    for (;;)
        pause();
    return 0;
}

static int noop(void *arg, size_t n)
{
    return 0;
}

/* ---- creation ------------------------------------------------------------ */

static void test_new_misuse(void **state)
{
    assert_null(mp_process_new());
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_process_new_opts(NULL));
    assert_int_equal(mp_last_error(), MP_EINVAL);

    assert_null(mp_process_new(.target = noop, .run = (mp_run_fn)(void (*)(void))noop));
    assert_int_equal(mp_last_error(), MP_EINVAL);

    assert_null(mp_process_new(.target = noop, .arg = NULL, .arg_size = 4));
    assert_int_equal(mp_last_error(), MP_EINVAL);

    /* A "function" that is in no loaded module. */
    assert_null(mp_process_new(.target = (mp_target_fn)(uintptr_t)0x1000));
    assert_int_equal(mp_last_error(), MP_EINVAL);

    /* A context libmp did not make. */
    assert_null(mp_process_new(.target = noop, .ctx = (mp_context *)(uintptr_t)0x1000));
    assert_int_equal(mp_last_error(), MP_EINVAL);

    char name[300];
    memset(name, 'x', sizeof name);
    name[256] = '\0';
    assert_null(mp_process_new(.target = noop, .name = name));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    name[255] = '\0';
    mp_process *p = mp_process_new(.target = noop, .name = name);
    assert_non_null(p);
    assert_string_equal(mp_process_name(p), name);
    mp_process_free(p);

    mp_process_free(NULL);
}

static void test_accessors_before_start(void **state)
{
    int x = 42;
    mp_process *p = mp_process_new(.target = ret_int, .arg = &x, .arg_size = sizeof x);
    assert_non_null(p);
    assert_int_equal(mp_process_pid(p), 0);
    assert_int_equal(mp_process_daemon(p), 0);
    assert_int_equal(mp_process_sentinel(p), MP_EINVAL);
    assert_int_equal(mp_process_is_alive(p), 0);
    int code = 7;
    assert_int_equal(mp_process_exitcode(p, &code), MP_ETIMEDOUT);
    assert_int_equal(code, 7);
    assert_int_equal(mp_process_exitcode(p, NULL), MP_EINVAL);
    assert_int_equal(mp_process_join(p, MP_FOREVER), MP_EINVAL);
    assert_int_equal(mp_process_terminate(p), MP_EINVAL);
    assert_int_equal(mp_process_kill(p), MP_EINVAL);
    assert_int_equal(mp_process_interrupt(p), MP_EINVAL);

    size_t n = 0;
    int *a = mp_process_arg(p, &n);
    assert_non_null(a);
    assert_int_equal(n, sizeof x);
    assert_int_equal(*a, 42);
    assert_ptr_not_equal(a, &x); /* copied */

    assert_int_equal(mp_process_set_daemon(p, true), 0);
    assert_int_equal(mp_process_daemon(p), 1);
    assert_int_equal(mp_process_set_daemon(p, false), 0);
    assert_int_equal(mp_process_set_name(p, "renamed"), 0);
    assert_string_equal(mp_process_name(p), "renamed");
    assert_int_equal(mp_process_set_name(p, NULL), MP_EINVAL);

    mp_process *q = mp_process_new(.target = noop);
    assert_null(mp_process_arg(q, &n));
    assert_int_equal(n, 0);
    mp_process_free(q);
    mp_process_free(p);
}

/* ---- exit codes ------------------------------------------------------------ */

static void test_exit_code_return(void **state)
{
    static const int in[] = {0, 1, 3, 255, 256, -1};
    static const int out[] = {0, 1, 3, 255, 0, 255};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        mp_process *p = mp_process_new(.target = ret_int, .arg = &in[i],
                                       .arg_size = sizeof in[i]);
        assert_int_equal(run_code(p), out[i]);
    }
}

static void test_exit_code_exit_call(void **state)
{
    int code = 7;
    assert_int_equal(run_code(mp_process_new(.target = call_exit, .arg = &code,
                                             .arg_size = sizeof code)),
                     7);
}

static void test_exit_code_signals(void **state)
{
    int sigs[] = {SIGKILL, SIGTERM, SIGUSR1};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        mp_process *p = mp_process_new(.target = self_signal, .arg = &sigs[i],
                                       .arg_size = sizeof sigs[i]);
        assert_int_equal(run_code(p), -sigs[i]);
    }
}

static void test_exit_code_crash(void **state)
{
    assert_int_equal(run_code(mp_process_new(.target = crash_segv)), -SIGSEGV);
    assert_int_equal(run_code(mp_process_new(.target = crash_abort)), -SIGABRT);
}

static void test_terminate_kill_interrupt(void **state)
{
    int (*fns[])(mp_process *) = {mp_process_terminate, mp_process_kill, mp_process_interrupt};
    int codes[] = {-SIGTERM, -SIGKILL, -SIGINT};
    for (int i = 0; i < 3; i++) {
        mp_process *p = mp_process_new(.target = pauser);
        assert_int_equal(mp_process_start(p), 0);
        assert_int_equal(mp_process_is_alive(p), 1);
        assert_int_equal(fns[i](p), 0);
        assert_int_equal(mp_process_join(p, MP_FOREVER), 0);
        int code;
        assert_int_equal(mp_process_exitcode(p, &code), 0);
        assert_int_equal(code, codes[i]);
        /* An ended process: signals are no-ops. */
        assert_int_equal(fns[i](p), 0);
        mp_process_free(p);
    }
}

/* Checks that the child's mask is the bits in arg, that it ignores SIGUSR2
 * and that SIGTERM has its default disposition. */
static int check_signals(void *arg, size_t n)
{
    uint64_t want;
    CHECK(n == sizeof want);
    memcpy(&want, arg, sizeof want);
    CHECK(mp__sigmask_capture() == want);
    struct sigaction sa;
    CHECK(sigaction(SIGUSR2, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN);
    CHECK(sigaction(SIGTERM, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL);
    return 0;
}

static void *start_check_signals(void *arg)
{
    uint64_t want = mp__sigmask_capture();
    mp_process *p = mp_process_new(.target = check_signals, .arg = &want,
                                   .arg_size = sizeof want);
    int code = -1;
    if (p != NULL && mp_process_start(p) == 0 && mp_process_join(p, 60) == 0)
        mp_process_exitcode(p, &code);
    mp_process_free(p);
    *(int *)arg = code;
    return NULL;
}

/* A child runs with the mask of the thread that started it and ignores
 * what its parent ignores, under every start method (a forkserver child
 * used to get the mask of whatever thread had started the server). */
static void test_signal_mask(void **state)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    signal(SIGUSR2, SIG_IGN);
    int code = -1;
    start_check_signals(&code);
    assert_int_equal(code, 0);
    /* From a thread that blocks everything but SIGTERM. */
    sigfillset(&set);
    sigdelset(&set, SIGTERM);
    pthread_sigmask(SIG_SETMASK, &set, NULL);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, start_check_signals, &code), 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_join(t, NULL);
    signal(SIGUSR2, SIG_DFL);
    assert_int_equal(code, 0);
}

/* A child reaped behind libmp's back (SIGCHLD ignored) ends with 255. */
static void test_reaped_elsewhere(void **state)
{
    if (strcmp(mpt_method(), "forkserver") == 0)
        skip(); /* the server reaps its children, not us */
    for (int pipe_mode = 0; pipe_mode < 2; pipe_mode++) {
        mp__sentinel_force_pipe = pipe_mode;
        struct sigaction ign = {.sa_handler = SIG_IGN}, old;
        sigemptyset(&ign.sa_mask);
        sigaction(SIGCHLD, &ign, &old);
        int three = 3;
        mp_process *p = mp_process_new(.target = ret_int, .arg = &three,
                                       .arg_size = sizeof three);
        assert_int_equal(mp_process_start(p), 0);
        assert_int_equal(mp_process_join(p, 30), 0);
        int code;
        assert_int_equal(mp_process_exitcode(p, &code), 0);
        assert_int_equal(code, 255);
        sigaction(SIGCHLD, &old, NULL);
        mp_process_free(p);
    }
}

/*
 * No fd left (RLIMIT_NOFILE lowered, the table filled, in a forked child):
 * mp__sentinel_reaped, the sentinel of a child reaped behind libmp's back
 * before its pidfd was opened, fails with -EMFILE and leaves *po as it was;
 * a start fails with -EMFILE and leaves no child; once fds are free again
 * the same process starts and runs, with a pidfd as its sentinel where
 * the kernel has them (a first start short of fds once took them for
 * missing, for good).  The exit status says which step
 * failed.
 */
static int no_fd_child(void)
{
    mp__popen po = {.sentinel = -1, .aux = -1};
    if (mp__sentinel_reaped(&po) != 0)
        return 10;
    struct pollfd pfd = {.fd = po.sentinel, .events = POLLIN};
    if (poll(&pfd, 1, 0) != 1 || po.exitcode != 255 || po.ended != 1 ||
        po.kind != MP__SENTINEL_PIPE)
        return 11;
    close(po.sentinel);
    int three = 3;
    mp_process *p = mp_process_new(.target = ret_int, .arg = &three, .arg_size = sizeof three);
    if (p == NULL)
        return 12;
    struct rlimit rl, was;
    if (getrlimit(RLIMIT_NOFILE, &was) != 0)
        return 13;
    rl = was;
    rl.rlim_cur = 64;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 14;
    /* Whether the kernel has pidfds (valgrind does not pass pidfd_open on). */
    bool kernel_pidfd = mp__sentinel_pidfd_ok();
    /* The first start of a process probes pidfds: here, short of fds. */
    mp__sentinel_pidfd_forget();
    int fds[64], n = 0;
    while (n < 64 && (fds[n] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
        n++;
    if (n == 64 || errno != EMFILE)
        return 15;
    po = (mp__popen){.sentinel = -1, .aux = -1};
    if (mp__sentinel_reaped(&po) != -EMFILE || po.sentinel != -1 || po.ended != 0 ||
        po.exitcode != 0)
        return 16;
    int r = mp_process_start(p);
    if (r != -EMFILE)
        return 17;
    if (waitpid(-1, NULL, WNOHANG) != -1 || errno != ECHILD)
        return 18;
    for (int i = 0; i < n; i++)
        close(fds[i]);
    /* (The fds to pass to a spawned child may be numbered past 64.) */
    if (setrlimit(RLIMIT_NOFILE, &was) != 0)
        return 21;
    /* The failure said nothing of the kernel's pidfds. */
    if (kernel_pidfd && !mp__sentinel_pidfd_ok())
        return 22;
    int code = -1;
    r = mp_process_start(p);
    if (r != 0) {
        fprintf(stderr, "start again: %s\n", mp_err_name(r));
        return 19;
    }
    if (mp_process_join(p, 30) != 0 || mp_process_exitcode(p, &code) != 0 || code != 3)
        return 20;
    mp_process_free(p);
    return 0;
}

static void test_no_fd_for_sentinel(void **state)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(no_fd_child());
    assert_int_equal(mpt_wait_status(pid), 0);
}

/* ---- join ------------------------------------------------------------------ */

static void test_join_timeout(void **state)
{
    mp_process *p = mp_process_new(.target = pauser);
    assert_int_equal(mp_process_start(p), 0);

    double t0 = mp__now();
    assert_int_equal(mp_process_join(p, 0), MP_ETIMEDOUT);
    assert_true(mp__now() - t0 < 2.0);

    t0 = mp__now();
    assert_int_equal(mp_process_join(p, 0.3), MP_ETIMEDOUT);
    double took = mp__now() - t0;
    assert_true(took >= 0.3);
    assert_true(took < 3.3);

    int code;
    assert_int_equal(mp_process_exitcode(p, &code), MP_ETIMEDOUT);
    assert_int_equal(mp_process_kill(p), 0);
    assert_int_equal(mp_process_join(p, 10), 0);
    assert_int_equal(mp_process_join(p, 0), 0); /* again: at once */
    assert_int_equal(mp_process_join(p, INFINITY), 0);
    mp_process_free(p);
}

static void on_alarm(int sig)
{
}

static void test_join_eintr(void **state)
{
    struct sigaction sa = {.sa_handler = on_alarm}, old;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, &old); /* no SA_RESTART */
    struct itimerval it = {{0, 50000}, {0, 50000}};
    setitimer(ITIMER_REAL, &it, NULL);

    mp_process *p = mp_process_new(.target = pauser);
    assert_int_equal(mp_process_start(p), 0);
    double t0 = mp__now();
    assert_int_equal(mp_process_join(p, 0.5), MP_ETIMEDOUT);
    double took = mp__now() - t0;

    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old, NULL);

    assert_true(took >= 0.5);
    assert_true(took < 3.5);
    mp_process_kill(p);
    assert_int_equal(mp_process_join(p, MP_FOREVER), 0);
    mp_process_free(p);
}

static void test_join_misuse(void **state)
{
    mp_process *p = mp_process_new(.target = noop);
    assert_int_equal(mp_process_join(p, MP_FOREVER), MP_EINVAL); /* not started */
    assert_int_equal(mp_process_join(NULL, MP_FOREVER), MP_EINVAL);
    assert_int_equal(mp_process_join(mp_current_process(), MP_FOREVER), MP_EINVAL);
    assert_int_equal(mp_process_join(mp_current_process(), 0), MP_EINVAL);

    assert_int_equal(mp_process_start(p), 0);
    assert_int_equal(mp_process_join(p, -0.5), MP_EINVAL);
    assert_int_equal(mp_process_join(p, -2), MP_EINVAL);
    assert_int_equal(mp_process_join(p, NAN), MP_EINVAL);
    assert_int_equal(mp_process_join(p, -INFINITY), MP_EINVAL);
    assert_int_equal(mp_process_join(p, MP_FOREVER), 0);
    mp_process_free(p);
}

static void test_start_twice(void **state)
{
    mp_process *p = mp_process_new(.target = noop);
    assert_int_equal(mp_process_start(p), 0);
    assert_int_equal(mp_process_start(p), MP_EINVAL);
    assert_int_equal(mp_process_set_daemon(p, true), MP_EINVAL);
    assert_int_equal(mp_process_set_name(p, "late"), MP_EINVAL);
    assert_int_equal(mp_process_join(p, MP_FOREVER), 0);
    assert_int_equal(mp_process_start(p), MP_EINVAL);
    mp_process_free(p);
    assert_int_equal(mp_process_start(NULL), MP_EINVAL);
    assert_int_equal(mp_process_start(mp_current_process()), MP_EINVAL);
}

struct joiner {
    mp_process *p;
    int r, code;
};

static void *join_thread(void *arg)
{
    struct joiner *j = arg;
    j->r = mp_process_join(j->p, 10);
    if (j->r == 0)
        j->r = mp_process_exitcode(j->p, &j->code);
    return NULL;
}

static void test_join_from_threads(void **state)
{
    int x = 9;
    mp_process *p = mp_process_new(.target = ret_int, .arg = &x, .arg_size = sizeof x);
    assert_int_equal(mp_process_start(p), 0);
    struct joiner j[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        j[i] = (struct joiner){p, -1, -1};
        pthread_create(&t[i], NULL, join_thread, &j[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(j[i].r, 0);
        assert_int_equal(j[i].code, 9);
    }
    mp_process_free(p);
}

/*
 * MP_DEBUG_WAIT: a child whose name matches waits before its target until
 * a tracer attaches (here the test, as gdb -p would); another runs at once.
 * Under forkserver the server's environment counts, and the server started
 * before the variable was set: nothing waits.
 */
static void test_debug_wait(void **state)
{
    bool waits = strcmp(mpt_method(), "forkserver") != 0;
    int x = 7, code = -1;
    mp_process *other = mp_process_new(.target = ret_int, .arg = &x, .arg_size = sizeof x,
                                       .name = "other");
    mp_process *p = mp_process_new(.target = ret_int, .arg = &x, .arg_size = sizeof x,
                                   .name = "mpt-wait-1");
    assert_non_null(other);
    assert_non_null(p);
    assert_int_equal(setenv("MP_DEBUG_WAIT", "mpt-wait*", 1), 0);
    int r1 = mp_process_start(other);
    /* LeakSanitizer checks at exit by tracing the process, which fails
     * while the test traces it: not in a spawned child that is traced. */
    const char *asan = getenv("ASAN_OPTIONS");
    char *saved = asan != NULL ? strdup(asan) : NULL;
    char opts[512];
    snprintf(opts, sizeof opts, "%s%sdetect_leaks=0", saved ? saved : "", saved ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    int r2 = mp_process_start(p);
    if (saved != NULL)
        setenv("ASAN_OPTIONS", saved, 1);
    else
        unsetenv("ASAN_OPTIONS");
    free(saved);
    unsetenv("MP_DEBUG_WAIT");
    assert_int_equal(r1, 0);
    assert_int_equal(r2, 0);
    assert_int_equal(mp_process_join(other, 60), 0);
    assert_int_equal(mp_process_exitcode(other, &code), 0);
    assert_int_equal(code, 7);
    mp_process_free(other);
    if (waits) {
        assert_int_equal(mp_process_join(p, 0.5), MP_ETIMEDOUT);
        if (ptrace(PTRACE_SEIZE, mp_process_pid(p), NULL, NULL) != 0) {
            int e = errno;
            mp_process_kill(p);
            mp_process_join(p, 60);
            mp_process_free(p);
            fprintf(stderr, "test_debug_wait: cannot trace the child (%s)\n", strerror(e));
            skip();
        }
    }
    assert_int_equal(mp_process_join(p, 60), 0);
    assert_int_equal(mp_process_exitcode(p, &code), 0);
    assert_int_equal(code, 7);
    mp_process_free(p);
}

/* ---- is_alive, sentinel, close, free ------------------------------------- */

static void test_is_alive(void **state)
{
    assert_int_equal(mp_process_is_alive(mp_current_process()), 1);
    assert_int_equal(mp_process_is_alive(NULL), MP_EINVAL);
    mp_process *p = mp_process_new(.target = pauser);
    assert_int_equal(mp_process_is_alive(p), 0);
    assert_int_equal(mp_process_start(p), 0);
    assert_int_equal(mp_process_is_alive(p), 1);
    assert_true(mp_process_pid(p) > 0);
    assert_int_equal(mp_process_kill(p), 0);
    double t0 = mp__now();
    while (mp_process_is_alive(p) == 1 && mp__now() - t0 < 10)
        sleep_s(0.01);
    assert_int_equal(mp_process_is_alive(p), 0);
    int code;
    assert_int_equal(mp_process_exitcode(p, &code), 0);
    assert_int_equal(code, -SIGKILL);
    mp_process_free(p);
}

static void check_sentinel(void)
{
    double t = 0.3;
    mp_process *p = mp_process_new(.target = sleeper, .arg = &t, .arg_size = sizeof t);
    assert_int_equal(mp_process_sentinel(p), MP_EINVAL);
    assert_int_equal(mp_process_start(p), 0);
    int fd = mp_process_sentinel(p);
    assert_true(fd >= 0);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 0), 0); /* still running */
    assert_int_equal(poll(&pfd, 1, 10000), 1);
    assert_true(pfd.revents & (POLLIN | POLLHUP));
    /* Readable before any join; still readable after. */
    assert_int_equal(mp_process_join(p, 5), 0);
    assert_int_equal(poll(&pfd, 1, 0), 1);
    assert_int_equal(mp_process_sentinel(p), fd);
    assert_int_equal(mp_process_close(p), 0);
    assert_int_equal(mp_process_sentinel(p), MP_EINVAL);
    mp_process_free(p);
}

static void test_sentinel(void **state)
{
    check_sentinel();
}

static void test_sentinel_pipe(void **state)
{
    mp__sentinel_force_pipe = true;
    check_sentinel();
    /* Exit codes and timeouts work the same way. */
    int sig = SIGTERM;
    assert_int_equal(run_code(mp_process_new(.target = self_signal, .arg = &sig,
                                             .arg_size = sizeof sig)),
                     -SIGTERM);
    mp_process *p = mp_process_new(.target = pauser);
    assert_int_equal(mp_process_start(p), 0);
    double t0 = mp__now();
    assert_int_equal(mp_process_join(p, 0.25), MP_ETIMEDOUT);
    assert_true(mp__now() - t0 >= 0.25);
    assert_int_equal(mp_process_terminate(p), 0);
    assert_int_equal(mp_process_join(p, 10), 0);
    mp_process_free(p);
}

/* A raw fork keeps the pipe sentinel's write end open: join must still see
 * the child end (by its status) without waiting for the grandchild. */
static int leave_raw_grandchild(void *arg, size_t n)
{
    int wfd = *(int *)arg;
    pid_t g = fork();
    if (g == 0) {
        sleep_s(20);
        _exit(0);
    }
    CHECK(write(wfd, &g, sizeof g) == (ssize_t)sizeof g);
    return 0;
}

static void test_sentinel_pipe_held_by_grandchild(void **state)
{
    mp__sentinel_force_pipe = true;
    int pfd[2];
    assert_int_equal(mpt_pipe(pfd), 0);
    mp_process *p = mp_process_new(.target = leave_raw_grandchild, .arg = &pfd[1],
                                   .arg_size = sizeof pfd[1]);
    double t0 = mp__now();
    assert_int_equal(run_code(p), 0);
    assert_true(mp__now() - t0 < 10);
    mpt_close(pfd[1]);
    pid_t g;
    assert_int_equal(read(pfd[0], &g, sizeof g), sizeof g);
    kill(g, SIGKILL);
    mpt_close(pfd[0]);
}

static void test_close(void **state)
{
    mp_process *p = mp_process_new(.target = pauser, .name = "c");
    assert_int_equal(mp_process_start(p), 0);
    assert_int_equal(mp_process_close(p), MP_EINVAL); /* still running */
    assert_int_equal(mp_process_terminate(p), 0);
    assert_int_equal(mp_process_join(p, MP_FOREVER), 0);
    assert_int_equal(mp_process_close(p), 0);
    assert_int_equal(mp_process_close(p), 0);

    int code;
    assert_int_equal(mp_process_start(p), MP_EINVAL);
    assert_int_equal(mp_process_join(p, 0), MP_EINVAL);
    assert_int_equal(mp_process_is_alive(p), MP_EINVAL);
    assert_int_equal(mp_process_terminate(p), MP_EINVAL);
    assert_int_equal(mp_process_kill(p), MP_EINVAL);
    assert_int_equal(mp_process_interrupt(p), MP_EINVAL);
    assert_int_equal(mp_process_exitcode(p, &code), MP_EINVAL);
    assert_int_equal(mp_process_pid(p), MP_EINVAL);
    assert_int_equal(mp_process_sentinel(p), MP_EINVAL);
    assert_string_equal(mp_process_name(p), "c");
    assert_int_equal(mp_process_daemon(p), 0);
    char buf[64];
    mp_process_repr(p, buf, sizeof buf);
    assert_string_equal(buf, "<Process(c, closed)>");
    mp_process_free(p);

    /* Closing a process never started is allowed; it cannot start then. */
    p = mp_process_new(.target = noop);
    assert_int_equal(mp_process_close(p), 0);
    assert_int_equal(mp_process_start(p), MP_EINVAL);
    mp_process_free(p);

    assert_int_equal(mp_process_close(NULL), MP_EINVAL);
    assert_int_equal(mp_process_close(mp_current_process()), MP_EINVAL);
}

static void test_after_free(void **state)
{
    mp_process *p = mp_process_new(.target = noop);
    assert_int_equal(mp_process_start(p), 0);
    assert_int_equal(mp_process_join(p, MP_FOREVER), 0);
    mp_process_free(p);

    int code;
    assert_int_equal(mp_process_start(p), MP_EINVAL);
    assert_int_equal(mp_process_join(p, 0), MP_EINVAL);
    assert_int_equal(mp_process_is_alive(p), MP_EINVAL);
    assert_int_equal(mp_process_terminate(p), MP_EINVAL);
    assert_int_equal(mp_process_kill(p), MP_EINVAL);
    assert_int_equal(mp_process_interrupt(p), MP_EINVAL);
    assert_int_equal(mp_process_exitcode(p, &code), MP_EINVAL);
    assert_int_equal(mp_process_close(p), MP_EINVAL);
    assert_int_equal(mp_process_pid(p), MP_EINVAL);
    assert_int_equal(mp_process_sentinel(p), MP_EINVAL);
    assert_int_equal(mp_process_daemon(p), MP_EINVAL);
    assert_int_equal(mp_process_set_name(p, "x"), MP_EINVAL);
    assert_int_equal(mp_process_set_daemon(p, true), MP_EINVAL);
    assert_string_equal(mp_process_name(p), "");
    assert_null(mp_process_arg(p, NULL));
    char buf[8];
    assert_int_equal(mp_process_repr(p, buf, sizeof buf), MP_EINVAL);
    mp_process_free(p); /* a no-op */

    /* Never started. */
    p = mp_process_new(.target = noop);
    mp_process_free(p);
    assert_int_equal(mp_process_start(p), MP_EINVAL);
}

static void test_free_running(void **state)
{
    double t = 0.2;
    int fds = mpt_count_fds();
    mp_process *p = mp_process_new(.target = sleeper, .arg = &t, .arg_size = sizeof t);
    assert_int_equal(mp_process_start(p), 0);
    mp_process_free(p); /* still running: kept until it ends */
    assert_int_equal(mp_process_join(p, 0), MP_EINVAL);
    assert_int_equal(mp_active_children(NULL, 0), 0); /* not listed */
    /* Reaped and released (its sentinel closed) once it has ended. */
    double t0 = mp__now();
    while ((mpt_count_children() > 0 || mpt_count_fds() != fds) && mp__now() - t0 < 10) {
        sleep_s(0.02);
        mp_active_children(NULL, 0);
    }
    assert_int_equal(mpt_count_children(), 0);
    assert_int_equal(mpt_count_fds(), fds);
}

/* ---- names, current and parent ------------------------------------------- */

struct names_report {
    char self[64];
    char via_current[64];
    char grandchild[64];
    char parent[64];
    pid_t parent_pid;
    int parent_alive;
    int renamed;
};

static int report_names(void *arg, size_t n)
{
    struct names_report *r = *(struct names_report **)arg;
    mp_process *me = mp_current_process();
    snprintf(r->via_current, sizeof r->via_current, "%s", mp_process_name(me));
    mp_process *g = mp_process_new(.target = noop);
    CHECK(g != NULL);
    snprintf(r->grandchild, sizeof r->grandchild, "%s", mp_process_name(g));
    CHECK(mp_process_start(g) == 0);
    CHECK(mp_process_join(g, 10) == 0);
    mp_process_free(g);
    mp_process *pp = mp_parent_process();
    CHECK(pp != NULL);
    CHECK(mp_parent_process() == pp);
    snprintf(r->parent, sizeof r->parent, "%s", mp_process_name(pp));
    r->parent_pid = mp_process_pid(pp);
    r->parent_alive = mp_process_is_alive(pp);
    CHECK(mp_process_join(pp, 0.05) == MP_ETIMEDOUT);
    CHECK(mp_process_pid(me) == getpid());
    CHECK(mp_process_is_alive(me) == 1);
    CHECK(mp_process_join(me, 0) == MP_EINVAL);
    CHECK(mp_process_start(pp) == MP_EINVAL);
    CHECK(mp_process_terminate(pp) == MP_EINVAL);
    CHECK(mp_process_close(pp) == MP_EINVAL);
    r->renamed = mp_process_set_name(me, "renamed-child");
    return 0;
}

static void test_names(void **state)
{
    assert_string_equal(mp_process_name(mp_current_process()), "MainProcess");
    assert_null(mp_parent_process());
    assert_int_equal(mp_process_pid(mp_current_process()), getpid());

    mp_process *a = mp_process_new(.target = noop);
    mp_process *b = mp_process_new(.target = noop, .name = "named");
    mp_process *c = mp_process_new(.target = noop);
    unsigned na, nc;
    assert_int_equal(sscanf(mp_process_name(a), "Process-%u", &na), 1);
    assert_int_equal(sscanf(mp_process_name(c), "Process-%u", &nc), 1);
    assert_int_equal(nc, na + 2); /* the named one counts too */
    assert_string_equal(mp_process_name(b), "named");
    mp_process_free(a);
    mp_process_free(b);
    mp_process_free(c);

    struct names_report *r = mp_shared_alloc(sizeof *r);
    mp_process *p = mp_process_new(.target = report_names, .arg = &r, .arg_size = sizeof r);
    snprintf(r->self, sizeof r->self, "%s", mp_process_name(p));
    assert_int_equal(run_code(p), 0);
    assert_string_equal(r->via_current, r->self);
    char want[80];
    snprintf(want, sizeof want, "%s:1", r->self);
    assert_string_equal(r->grandchild, want);
    assert_string_equal(r->parent, "MainProcess");
    assert_int_equal(r->parent_pid, getpid());
    assert_int_equal(r->parent_alive, 1);
    assert_int_equal(r->renamed, 0);
    mp_shared_free(r);
}

/* The grandchild of a killed child sees its parent end. */
static int watch_parent(void *arg, size_t n)
{
    int wfd = *(int *)arg;
    mp_process *pp = mp_parent_process();
    CHECK(pp != NULL && mp_process_is_alive(pp) == 1);
    char c = 'r';
    CHECK(write(wfd, &c, 1) == 1);
    CHECK(mp_process_join(pp, 30) == 0);
    CHECK(mp_process_is_alive(pp) == 0);
    c = 'd';
    CHECK(write(wfd, &c, 1) == 1);
    return 0;
}

static int start_watcher(void *arg, size_t n)
{
    mp_process *g = mp_process_new(.target = watch_parent, .arg = arg, .arg_size = n);
    CHECK(g != NULL && mp_process_start(g) == 0);
    pause();
    return 0;
}

static void check_parent_death(void)
{
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    int pfd[2];
    assert_int_equal(mpt_pipe(pfd), 0);
    mp_process *p = mp_process_new(.target = start_watcher, .arg = &pfd[1],
                                   .arg_size = sizeof pfd[1]);
    assert_int_equal(mp_process_start(p), 0);
    mpt_close(pfd[1]); /* a failing child then reads as EOF, not a hang */
    char c = 0;
    assert_int_equal(read(pfd[0], &c, 1), 1);
    assert_int_equal(c, 'r');
    assert_int_equal(mp_process_kill(p), 0);
    assert_int_equal(mp_process_join(p, 10), 0);
    assert_int_equal(read(pfd[0], &c, 1), 1);
    assert_int_equal(c, 'd');
    /* The grandchild was reparented to us (subreaper): reap it.  Under
     * forkserver it is the server's child. */
    if (strcmp(mpt_method(), "forkserver") != 0) {
        int st;
        pid_t g = waitpid(-1, &st, 0);
        assert_true(g > 0);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    prctl(PR_SET_CHILD_SUBREAPER, 0);
    mp_process_free(p);
    mpt_close(pfd[0]);
}

static void test_parent_death(void **state)
{
    check_parent_death();
}

static void test_parent_death_no_pidfd(void **state)
{
    mp__sentinel_force_pipe = true;
    check_parent_death();
}

/* ---- daemons ----------------------------------------------------------------- */

static int daemon_starts_child(void *arg, size_t n)
{
    mp_process *g = mp_process_new(.target = noop);
    CHECK(g != NULL);
    CHECK(mp_process_daemon(mp_current_process()) == 1);
    CHECK(mp_process_start(g) == MP_EINVAL);
    mp_process_free(g);
    return 0;
}

static void test_daemon_no_children(void **state)
{
    assert_int_equal(run_code(mp_process_new(.target = daemon_starts_child, .daemon = true)),
                     0);
}

/* Start a grandchild that never ends, report its pid, and return. */
static int start_and_leave(void *arg, size_t n)
{
    int wfd = ((int *)arg)[0];
    bool daemon = ((int *)arg)[1];
    double t = 0.3;
    mp_process *g = daemon
                        ? mp_process_new(.target = pauser, .daemon = true)
                        : mp_process_new(.target = sleeper, .arg = &t, .arg_size = sizeof t);
    CHECK(g != NULL && mp_process_start(g) == 0);
    pid_t pid = mp_process_pid(g);
    CHECK(write(wfd, &pid, sizeof pid) == (ssize_t)sizeof pid);
    return 0; /* the exit function deals with g */
}

/* Start a daemonic grandchild, report its pid, and wait to be killed. */
static int start_daemon_and_wait(void *arg, size_t n)
{
    int wfd = *(int *)arg;
    mp_process *g = mp_process_new(.target = pauser, .daemon = true);
    CHECK(g != NULL && mp_process_start(g) == 0);
    pid_t pid = mp_process_pid(g);
    CHECK(write(wfd, &pid, sizeof pid) == (ssize_t)sizeof pid);
    for (;;)
        pause();
}

/* The pid's process has ended (gone, or a zombie). */
static bool gone(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return true;
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[k] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp == NULL || rp[2] == 'Z' || rp[2] == 'X';
}

/* A daemonic child whose parent is killed dies too (under fork and spawn:
 * the parent-death signal; under forkserver the server kills it). */
static void test_daemon_dies_with_killed_parent(void **state)
{
    int pfd[2];
    assert_int_equal(mpt_pipe(pfd), 0);
    mp_process *p = mp_process_new(.target = start_daemon_and_wait, .arg = &pfd[1],
                                   .arg_size = sizeof pfd[1]);
    assert_int_equal(mp_process_start(p), 0);
    mpt_close(pfd[1]);
    pid_t g = 0;
    assert_int_equal(read(pfd[0], &g, sizeof g), (ssize_t)sizeof g);
    mpt_close(pfd[0]);
    assert_false(gone(g));
    assert_int_equal(mp_process_kill(p), 0);
    assert_int_equal(mp_process_join(p, 10), 0);
    mp_process_free(p);
    double t0 = mp__now();
    while (!gone(g) && mp__now() - t0 < 10)
        sleep_s(0.01);
    bool ended = gone(g);
    if (!ended)
        kill(g, SIGKILL);
    assert_true(ended);
}

static void *start_daemon_thread(void *arg)
{
    mp_process *p = mp_process_new(.target = pauser, .daemon = true);
    if (p != NULL && mp_process_start(p) != 0) {
        mp_process_free(p);
        p = NULL;
    }
    *(mp_process **)arg = p;
    return NULL;
}

/* A daemon started by a thread that then ends lives on: Linux sends the
 * parent-death signal when the starting thread ends, so libmp arms it only
 * for the main thread's children. */
static void test_daemon_outlives_its_thread(void **state)
{
    mp_process *p = NULL;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, start_daemon_thread, &p), 0);
    pthread_join(t, NULL);
    assert_non_null(p);
    sleep_s(0.3);
    assert_int_equal(mp_process_is_alive(p), 1);
    assert_int_equal(mp_process_terminate(p), 0);
    assert_int_equal(mp_process_join(p, 10), 0);
    mp_process_free(p);
}

static void test_daemon_terminated_at_exit(void **state)
{
    int pfd[2];
    assert_int_equal(mpt_pipe(pfd), 0);
    int arg[2] = {pfd[1], 1};
    mp_process *p = mp_process_new(.target = start_and_leave, .arg = arg,
                                   .arg_size = sizeof arg);
    assert_int_equal(run_code(p), 0);
    mpt_close(pfd[1]);
    pid_t g;
    assert_int_equal(read(pfd[0], &g, sizeof g), sizeof g);
    /* Terminated and reaped by its parent before the parent ended. */
    assert_int_equal(kill(g, 0), -1);
    assert_int_equal(errno, ESRCH);
    mpt_close(pfd[0]);
}

static void test_nondaemon_joined_at_exit(void **state)
{
    int pfd[2];
    assert_int_equal(mpt_pipe(pfd), 0);
    int arg[2] = {pfd[1], 0};
    mp_process *p = mp_process_new(.target = start_and_leave, .arg = arg,
                                   .arg_size = sizeof arg);
    double t0 = mp__now();
    assert_int_equal(run_code(p), 0);
    assert_true(mp__now() - t0 >= 0.3); /* it waited for the grandchild */
    mpt_close(pfd[1]);
    pid_t g;
    assert_int_equal(read(pfd[0], &g, sizeof g), sizeof g);
    assert_int_equal(kill(g, 0), -1);
    mpt_close(pfd[0]);
}

/* A "main program" (a raw fork of the test) that exits normally with a
 * daemonic and a non-daemonic child still running. */
static void test_main_exit(void **state)
{
    int pfd[2];
    assert_int_equal(mpt_pipe(pfd), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t m = fork();
    if (m == 0) {
        double t = 0.3;
        mp_process *d = mp_process_new(.target = pauser, .daemon = true);
        mp_process *n = mp_process_new(.target = sleeper, .arg = &t, .arg_size = sizeof t);
        if (mp_process_start(d) != 0 || mp_process_start(n) != 0)
            _exit(3);
        pid_t pids[2] = {mp_process_pid(d), mp_process_pid(n)};
        if (write(pfd[1], pids, sizeof pids) != (ssize_t)sizeof pids)
            _exit(4);
        exit(0);
    }
    assert_true(m > 0);
    mpt_close(pfd[1]);
    double t0 = mp__now();
    assert_int_equal(mpt_wait_status(m), 0);
    assert_true(mp__now() - t0 >= 0.3);
    pid_t pids[2];
    assert_int_equal(read(pfd[0], pids, sizeof pids), sizeof pids);
    assert_int_equal(kill(pids[0], 0), -1);
    assert_int_equal(kill(pids[1], 0), -1);
    mpt_close(pfd[0]);
}

/* ---- active children --------------------------------------------------------- */

static int wait_on_pipe(void *arg, size_t n)
{
    char c;
    return read(*(int *)arg, &c, 1) == 1 ? 0 : 1;
}

static void test_active_children(void **state)
{
    assert_int_equal(mp_active_children(NULL, 0), 0);
    assert_int_equal(mp_active_children(NULL, 1), MP_EINVAL);
    int pfd[2];
    assert_int_equal(mpt_pipe(pfd), 0);
    mp_process *quick[2], *slow;
    for (int i = 0; i < 2; i++) {
        quick[i] = mp_process_new(.target = noop);
        assert_int_equal(mp_process_start(quick[i]), 0);
    }
    slow = mp_process_new(.target = wait_on_pipe, .arg = &pfd[0], .arg_size = sizeof pfd[0]);
    assert_int_equal(mp_process_start(slow), 0);

    mp_process *list[4] = {NULL};
    double t0 = mp__now();
    int n;
    while ((n = mp_active_children(list, 4)) > 1 && mp__now() - t0 < 10)
        sleep_s(0.01);
    assert_int_equal(n, 1);
    assert_ptr_equal(list[0], slow);
    /* The others are reaped (under forkserver, the server's children). */
    assert_int_equal(mpt_count_children(), strcmp(mpt_method(), "forkserver") == 0 ? 0 : 1);
    assert_int_equal(mp_active_children(NULL, 0), 1);

    for (int i = 0; i < 2; i++) {
        int code;
        assert_int_equal(mp_process_exitcode(quick[i], &code), 0);
        assert_int_equal(code, 0);
        assert_int_equal(mp_process_is_alive(quick[i]), 0);
        mp_process_free(quick[i]);
    }
    assert_int_equal(write(pfd[1], "x", 1), 1);
    assert_int_equal(mp_process_join(slow, 10), 0);
    assert_int_equal(mp_active_children(list, 4), 0);
    mp_process_free(slow);
    mpt_close(pfd[0]);
    mpt_close(pfd[1]);
}

/* ---- arguments, run, ownership ----------------------------------------------- */

static int scribble(void *arg, size_t n)
{
    size_t m;
    CHECK(mp_process_arg(mp_current_process(), &m) == arg && m == n);
    CHECK(!mp__in_arena(arg)); /* a private copy */
    unsigned char *b = arg;
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += b[i];
        b[i] = 0xee;
    }
    return sum == 100u * 101u / 2u ? 0 : 200;
}

static void test_arg_private(void **state)
{
    unsigned char bytes[100];
    for (int i = 0; i < 100; i++)
        bytes[i] = (unsigned char)(i + 1);
    mp_process *p = mp_process_new(.target = scribble, .arg = bytes, .arg_size = sizeof bytes);
    assert_int_equal(mp_process_start(p), 0);
    assert_int_equal(mp_process_join(p, MP_FOREVER), 0);
    int code;
    assert_int_equal(mp_process_exitcode(p, &code), 0);
    assert_int_equal(code, 0);
    size_t n;
    unsigned char *shared = mp_process_arg(p, &n);
    assert_int_equal(n, 100);
    assert_memory_equal(shared, bytes, 100); /* the child's writes stayed there */
    mp_process_free(p);
}

static int run_method(mp_process *self)
{
    size_t n;
    int *v = mp_process_arg(self, &n);
    CHECK(self == mp_current_process());
    CHECK(n == sizeof *v && v != NULL);
    CHECK(strcmp(mp_process_name(self), "runner") == 0);
    return *v;
}

static void test_run(void **state)
{
    int v = 17;
    mp_process *p = mp_process_new(.run = run_method, .arg = &v, .arg_size = sizeof v,
                                   .name = "runner");
    assert_int_equal(run_code(p), 17);
}

struct others {
    mp_process *ended, *running, *unstarted;
};

static int poke_others(void *arg, size_t n)
{
    struct others *o = arg;
    int code = -1;
    CHECK(mp_process_exitcode(o->ended, &code) == 0 && code == 5);
    CHECK(mp_process_exitcode(o->running, &code) == MP_ETIMEDOUT);
    CHECK(mp_process_join(o->running, 0) == MP_EINVAL);
    CHECK(mp_process_is_alive(o->running) == MP_EINVAL);
    CHECK(mp_process_terminate(o->running) == MP_EINVAL);
    CHECK(mp_process_kill(o->running) == MP_EINVAL);
    CHECK(mp_process_close(o->running) == MP_EINVAL);
    CHECK(mp_process_sentinel(o->running) == MP_EINVAL);
    CHECK(mp_process_pid(o->running) > 0);
    CHECK(strcmp(mp_process_name(o->running), "sibling") == 0);
    CHECK(mp_process_start(o->unstarted) == MP_EINVAL);
    CHECK(mp_process_set_daemon(o->unstarted, true) == MP_EINVAL);
    CHECK(mp_process_set_name(o->unstarted, "x") == MP_EINVAL);
    mp_process_free(o->running); /* not ours: a no-op */
    CHECK(mp_process_pid(o->running) > 0);
    return 0;
}

static void test_not_owner(void **state)
{
    int five = 5;
    struct others o;
    o.ended = mp_process_new(.target = ret_int, .arg = &five, .arg_size = sizeof five);
    assert_int_equal(mp_process_start(o.ended), 0);
    assert_int_equal(mp_process_join(o.ended, MP_FOREVER), 0);
    o.running = mp_process_new(.target = pauser, .name = "sibling");
    assert_int_equal(mp_process_start(o.running), 0);
    o.unstarted = mp_process_new(.target = noop);
    assert_int_equal(run_code(mp_process_new(.target = poke_others, .arg = &o,
                                             .arg_size = sizeof o)),
                     0);
    assert_int_equal(mp_process_kill(o.running), 0);
    assert_int_equal(mp_process_join(o.running, MP_FOREVER), 0);
    mp_process_free(o.ended);
    mp_process_free(o.running);
    mp_process_free(o.unstarted);
}

/* ---- repr and cpu_count ------------------------------------------------------ */

static void test_repr(void **state)
{
    char buf[128];
    mp_process *p = mp_process_new(.target = pauser, .name = "r");
    assert_int_equal(mp_process_repr(p, buf, sizeof buf),
                     (int)strlen("<Process(r, initial)>"));
    assert_string_equal(buf, "<Process(r, initial)>");
    mp_process_set_daemon(p, true);
    mp_process_repr(p, buf, sizeof buf);
    assert_string_equal(buf, "<Process(r, initial daemon)>");
    assert_int_equal(mp_process_start(p), 0);
    mp_process_repr(p, buf, sizeof buf);
    assert_string_equal(buf, "<Process(r, started daemon)>");
    mp_process_kill(p);
    mp_process_join(p, MP_FOREVER);
    mp_process_repr(p, buf, sizeof buf);
    assert_string_equal(buf, "<Process(r, stopped[SIGKILL] daemon)>");
    /* Truncation reports the full length, as snprintf. */
    char small[8];
    assert_int_equal(mp_process_repr(p, small, sizeof small), (int)strlen(buf));
    assert_string_equal(small, "<Proces");
    assert_int_equal(mp_process_repr(p, NULL, 0), (int)strlen(buf));
    assert_int_equal(mp_process_repr(p, NULL, 4), MP_EINVAL);
    mp_process_free(p);

    int three = 3, zero = 0;
    p = mp_process_new(.target = ret_int, .arg = &three, .arg_size = sizeof three,
                       .name = "s");
    mp_process_start(p);
    mp_process_join(p, MP_FOREVER);
    mp_process_repr(p, buf, sizeof buf);
    assert_string_equal(buf, "<Process(s, stopped[3])>");
    mp_process_free(p);
    p = mp_process_new(.target = ret_int, .arg = &zero, .arg_size = sizeof zero, .name = "z");
    mp_process_start(p);
    mp_process_join(p, MP_FOREVER);
    mp_process_repr(p, buf, sizeof buf);
    assert_string_equal(buf, "<Process(z, stopped)>");
    mp_process_free(p);

    mp_process_repr(mp_current_process(), buf, sizeof buf);
    assert_string_equal(buf, "<Process(MainProcess, started)>");
}

static void test_cpu_count(void **state)
{
    int n = mp_cpu_count();
    assert_true(n >= 1);
    assert_int_equal(n, (int)sysconf(_SC_NPROCESSORS_ONLN));
}

/* Many short children in a row: nothing accumulates. */
static void test_many(void **state)
{
    for (int i = 0; i < 200; i++) {
        int v = i & 0x7f;
        assert_int_equal(run_code(mp_process_new(.target = ret_int, .arg = &v,
                                                 .arg_size = sizeof v)),
                         v);
    }
}

/* ---- authkey ----------------------------------------------------------------- */

struct key_arg {
    uint32_t len;
    unsigned char key[MP_AUTHKEY_MAX];
    uint32_t grand_len; /* a key the child sets for itself, 0: none */
    unsigned char grand[16];
};

static int grandchild_key(void *arg, size_t n)
{
    const struct key_arg *k = arg;
    unsigned char got[MP_AUTHKEY_MAX];
    CHECK(mp_process_authkey(mp_current_process(), got, sizeof got) == (int)k->grand_len);
    CHECK(memcmp(got, k->grand, k->grand_len) == 0);
    return 0;
}

/* The child's key is the one given in arg; a grandchild gets what the
 * child set for itself. */
static int child_key(void *arg, size_t n)
{
    const struct key_arg *k = arg;
    unsigned char got[MP_AUTHKEY_MAX];
    CHECK(mp_process_authkey(mp_current_process(), got, sizeof got) == (int)k->len);
    CHECK(memcmp(got, k->key, k->len) == 0);
    CHECK(mp_process_authkey(mp_parent_process(), got, sizeof got) == (int)k->len);
    CHECK(mp_process_authkey(mp_current_process(), NULL, 0) == (int)k->len);
    if (k->grand_len == 0)
        return 0;
    CHECK(mp_process_set_authkey(mp_current_process(), k->grand, k->grand_len) == 0);
    mp_process *g = mp_process_new(.target = grandchild_key, .arg = k, .arg_size = sizeof *k);
    CHECK(g != NULL && mp_process_start(g) == 0 && mp_process_join(g, 60) == 0);
    int code = -1;
    CHECK(mp_process_exitcode(g, &code) == 0);
    mp_process_free(g);
    return code == 0 ? 0 : 200;
}

static void test_authkey(void **state)
{
    mp_process *me = mp_current_process();
    unsigned char main_key[MP_AUTHKEY_MAX];
    int n = mp_process_authkey(me, main_key, sizeof main_key);
    /* os.urandom(32): 32 bytes, not all zero. */
    assert_int_equal(n, 32);
    unsigned char zero[32] = {0};
    assert_memory_not_equal(main_key, zero, 32);

    /* Inherited by default, under the suite's start method. */
    struct key_arg k = {.len = (uint32_t)n};
    memcpy(k.key, main_key, (size_t)n);
    assert_int_equal(run_code(
                         mp_process_new(.target = child_key, .arg = &k, .arg_size = sizeof k)),
                     0);

    /* p.authkey = ... before start: the child's key; the caller's stays. */
    mp_process *p = mp_process_new(.target = child_key, .arg = &k, .arg_size = sizeof k);
    k.len = 9;
    memcpy(k.key, "child-key", 9);
    k.grand_len = 5;
    memcpy(k.grand, "grand", 5);
    memcpy(mp_process_arg(p, NULL), &k, sizeof k);
    assert_int_equal(mp_process_set_authkey(p, "child-key", 9), 0);
    unsigned char got[MP_AUTHKEY_MAX];
    assert_int_equal(mp_process_authkey(p, got, sizeof got), 9);
    assert_memory_equal(got, "child-key", 9);
    assert_int_equal(run_code(p), 0);
    assert_int_equal(mp_process_authkey(me, got, sizeof got), 32);
    assert_memory_equal(got, main_key, 32);

    /* current_process().authkey = ...: children made afterwards get it. */
    assert_int_equal(mp_process_set_authkey(me, "new main key", 12), 0);
    k.len = 12;
    memcpy(k.key, "new main key", 12);
    k.grand_len = 0;
    assert_int_equal(run_code(
                         mp_process_new(.target = child_key, .arg = &k, .arg_size = sizeof k)),
                     0);
    /* An empty key is a key. */
    assert_int_equal(mp_process_set_authkey(me, "", 0), 0);
    assert_int_equal(mp_process_authkey(me, got, sizeof got), 0);
    assert_int_equal(mp_process_set_authkey(me, main_key, 32), 0);

    /* Errors. */
    assert_int_equal(mp_process_authkey(me, got, 31), MP_ETOOSHORT);
    assert_int_equal(mp_process_authkey(me, NULL, 5), MP_EINVAL);
    assert_int_equal(mp_process_authkey(NULL, got, sizeof got), MP_EINVAL);
    assert_int_equal(mp_process_set_authkey(NULL, "x", 1), MP_EINVAL);
    assert_int_equal(mp_process_set_authkey(me, NULL, 1), MP_EINVAL);
    unsigned char big[MP_AUTHKEY_MAX + 1] = {0};
    assert_int_equal(mp_process_set_authkey(me, big, sizeof big), MP_EINVAL);
    assert_int_equal(mp_process_set_authkey(me, big, MP_AUTHKEY_MAX), 0);
    assert_int_equal(mp_process_authkey(me, got, sizeof got), MP_AUTHKEY_MAX);
    assert_int_equal(mp_process_set_authkey(me, main_key, 32), 0);
    /* A started process's key can no longer change. */
    k.len = 32;
    memcpy(k.key, main_key, 32);
    p = mp_process_new(.target = child_key, .arg = &k, .arg_size = sizeof k);
    assert_int_equal(mp_process_start(p), 0);
    assert_int_equal(mp_process_set_authkey(p, "late", 4), MP_EINVAL);
    assert_int_equal(mp_process_join(p, MP_FOREVER), 0);
    int code = -1;
    assert_int_equal(mp_process_exitcode(p, &code), 0);
    assert_int_equal(code, 0);
    mp_process_free(p);
}

/* A raw fork shares the key, as a Python os.fork child does. */
static void test_authkey_raw_fork(void **state)
{
    unsigned char a[MP_AUTHKEY_MAX];
    int n = mp_process_authkey(mp_current_process(), a, sizeof a);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        unsigned char b[MP_AUTHKEY_MAX];
        int m = mp_process_authkey(mp_current_process(), b, sizeof b);
        _exit(m == n && memcmp(a, b, (size_t)n) == 0 ? 0 : 1);
    }
    assert_int_equal(mpt_wait_status(pid), 0);
}

/* ---- atexit in children ---------------------------------------------------- */

static char *exit_log; /* shared: each handler appends its letter */

static void log_letter(char ch)
{
    size_t i = __atomic_fetch_add((size_t *)exit_log, 1, __ATOMIC_SEQ_CST);
    exit_log[sizeof(size_t) + i] = ch;
}

static void mp_handler_a(void *arg)
{
    log_letter((char)(intptr_t)arg);
}

static void c_handler_c(void)
{
    log_letter('c');
}

static void mp_handler_p(void *arg)
{
    log_letter('P');
}

static void c_handler_q(void)
{
    log_letter('Q');
}

/* Registers handlers of its own, one registering another when it runs. */
static void mp_handler_again(void *arg)
{
    log_letter('b');
    mp_atexit(mp_handler_a, (void *)'z');
}

static int atexit_target(void *arg, size_t n)
{
    exit_log = *(char **)arg;
    if (mp_atexit(mp_handler_a, (void *)'a') != 0 || mp_atexit(mp_handler_again, NULL) != 0 ||
        atexit(c_handler_c) != 0)
        return 1;
    return 0;
}

/* A raw fork of the test acts as the main program. */
static int atexit_program(char *log)
{
    exit_log = log;
    CHECK(mp_atexit(NULL, NULL) == MP_EINVAL);
    CHECK(mp_atexit(mp_handler_p, NULL) == 0);
    CHECK(atexit(c_handler_q) == 0);
    mp_process *p = mp_process_new(.target = atexit_target, .arg = &log,
                                   .arg_size = sizeof log);
    CHECK(p != NULL && mp_process_start(p) == 0 && mp_process_join(p, 60) == 0);
    int code = -1;
    CHECK(mp_process_exitcode(p, &code) == 0 && code == 0);
    mp_process_free(p);
    exit(0); /* the program's own handlers run now: P and Q */
}

static void test_atexit_in_children(void **state)
{
    char *log = mp_shared_alloc(64);
    memset(log, 0, 64);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(atexit_program(log));
    assert_int_equal(mpt_wait_status(pid), 0);
    const char *got = log + sizeof(size_t);
    /* The child: its mp_atexit handlers, the last first, and one added by
     * a handler; then, in a fresh image, its C atexit handler. */
    const char *child = mpt_forking() ? "bza" : "bzac";
    size_t cn = strlen(child);
    if (strncmp(got, child, cn) != 0)
        fail_msg("child's handlers: got \"%s\", want \"%s...\"", got, child);
    /* Then the program's own, once each (never in the child). */
    assert_int_equal(strlen(got), cn + 2);
    assert_non_null(strchr(got + cn, 'P'));
    assert_non_null(strchr(got + cn, 'Q'));
    mp_shared_free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_misuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authkey, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authkey_raw_fork, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atexit_in_children, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accessors_before_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_code_return, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_code_exit_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_code_signals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_code_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_terminate_kill_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signal_mask, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reaped_elsewhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_fd_for_sentinel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_eintr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_misuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_from_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_debug_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_is_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sentinel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sentinel_pipe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sentinel_pipe_held_by_grandchild, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_after_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parent_death, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parent_death_no_pidfd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_daemon_no_children, setup, teardown),
        cmocka_unit_test_setup_teardown(test_daemon_terminated_at_exit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_daemon_dies_with_killed_parent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_daemon_outlives_its_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nondaemon_joined_at_exit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_main_exit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_active_children, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arg_private, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cpu_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many, setup, teardown),
    };
    if (getenv("MPT_FILTER") != NULL)
        cmocka_set_test_filter(getenv("MPT_FILTER"));
    int rc = cmocka_run_group_tests_name(MP_TEST_NAME, tests, NULL, NULL);
    /* After a failed test, children may be left running: kill them rather
     * than let the exit handler join them forever. */
    mp_process *left[64];
    int n = mp_active_children(left, 64);
    for (int i = 0; i < n && i < 64; i++)
        mp_process_kill(left[i]);
    return rc;
}
