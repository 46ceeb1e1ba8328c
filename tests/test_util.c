/*
 * test_util.c: logging, finalizers and after-fork hooks (util.h), and the
 * life-cycle messages libmp logs.
 *
 * Tests that look at what a whole program prints run a "program" in a raw
 * fork of the test, with its standard error on a pipe, and compare the
 * lines.  Children report through their exit status.
 */
#include "internal/mp.h"
#include "internal/util.h"
#include "mptest.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(c)                         \
    do {                                 \
        if (!(c))                        \
            return 1 + (__LINE__ % 250); \
    } while (0)

static int setup(void **state)
{
    assert_int_equal(mp__heap_init(), 0);
    mp__log_state_set(MP_LOG_NOTSET, false);
    mpt_leak_begin();
    return 0;
}

static int teardown(void **state)
{
    mp__log_state_set(MP_LOG_NOTSET, false);
    mp_logger_set_handler(mp_get_logger(), NULL, NULL);
    mpt_leak_end();
    return 0;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/*
 * Run body(ctx) as a program: a raw fork whose stderr (and stdout, when
 * both is set) goes to a pipe; the program ends with exit(0) after body,
 * unless body exits itself.  Returns its exit status (mpt_wait_status);
 * the output is in out (NUL-terminated).
 */
static int run_program(void (*body)(void *), void *ctx, char *out, size_t size, bool both)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        dup2(pfd[1], STDERR_FILENO);
        if (both)
            dup2(pfd[1], STDOUT_FILENO);
        close(pfd[1]);
        body(ctx);
        exit(0);
    }
    close(pfd[1]);
    size_t len = 0;
    for (;;) {
        ssize_t n = read(pfd[0], out + len, size - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == size - 1)
            break;
    }
    out[len] = '\0';
    close(pfd[0]);
    return mpt_wait_status(pid);
}

/* The lines of text, as an array of at most max pointers into text. */
static int split_lines(char *text, char **lines, int max)
{
    int n = 0;
    for (char *s = text; *s && n < max;) {
        char *nl = strchr(s, '\n');
        lines[n++] = s;
        if (nl == NULL)
            break;
        *nl = '\0';
        s = nl + 1;
    }
    return n;
}

static int index_of(char **lines, int n, const char *line)
{
    for (int i = 0; i < n; i++)
        if (strcmp(lines[i], line) == 0)
            return i;
    return -1;
}

/* ---- levels and the logger handle --------------------------------------- */

static void test_level_names(void **state)
{
    char buf[32];
    assert_string_equal(mp_log_level_name(MP_LOG_NOTSET, buf, sizeof buf), "NOTSET");
    assert_string_equal(mp_log_level_name(MP_LOG_SUBDEBUG, buf, sizeof buf), "SUBDEBUG");
    assert_string_equal(mp_log_level_name(MP_LOG_DEBUG, buf, sizeof buf), "DEBUG");
    assert_string_equal(mp_log_level_name(MP_LOG_INFO, buf, sizeof buf), "INFO");
    assert_string_equal(mp_log_level_name(MP_LOG_SUBWARNING, buf, sizeof buf), "SUBWARNING");
    assert_string_equal(mp_log_level_name(MP_LOG_WARNING, buf, sizeof buf), "WARNING");
    assert_string_equal(mp_log_level_name(MP_LOG_ERROR, buf, sizeof buf), "ERROR");
    assert_string_equal(mp_log_level_name(MP_LOG_CRITICAL, buf, sizeof buf), "CRITICAL");
    assert_string_equal(mp_log_level_name(7, buf, sizeof buf), "Level 7");
    assert_int_equal(MP_LOG_SUBDEBUG, 5);
    assert_int_equal(MP_LOG_DEBUG, 10);
    assert_int_equal(MP_LOG_INFO, 20);
    assert_int_equal(MP_LOG_SUBWARNING, 25);
    assert_int_equal(MP_LOG_WARNING, 30);
    assert_int_equal(MP_LOG_ERROR, 40);
    assert_int_equal(MP_LOG_CRITICAL, 50);
}

static void test_logger_levels(void **state)
{
    mp_logger *lg = mp_get_logger();
    assert_non_null(lg);
    assert_ptr_equal(mp_get_logger(), lg);
    assert_int_equal(mp_logger_get_level(lg), MP_LOG_NOTSET);
    assert_int_equal(mp_logger_effective_level(lg), MP_LOG_WARNING);
    assert_int_equal(mp_logger_is_enabled_for(lg, MP_LOG_INFO), 0);
    assert_int_equal(mp_logger_is_enabled_for(lg, MP_LOG_WARNING), 1);

    assert_int_equal(mp_logger_set_level(lg, MP_LOG_DEBUG), 0);
    assert_int_equal(mp_logger_get_level(lg), MP_LOG_DEBUG);
    assert_int_equal(mp_logger_effective_level(lg), MP_LOG_DEBUG);
    assert_int_equal(mp_logger_is_enabled_for(lg, MP_LOG_SUBDEBUG), 0);
    assert_int_equal(mp_logger_is_enabled_for(lg, MP_LOG_DEBUG), 1);
    assert_int_equal(mp_logger_set_level(lg, 7), 0); /* custom levels */
    assert_int_equal(mp_logger_get_level(lg), 7);

    assert_ptr_equal(mp_log_to_stderr(MP_LOG_NOTSET), lg);
    assert_int_equal(mp_logger_get_level(lg), 7); /* unchanged */
    assert_ptr_equal(mp_log_to_stderr(MP_LOG_INFO), lg);
    assert_int_equal(mp_logger_get_level(lg), MP_LOG_INFO);
}

static void test_logger_misuse(void **state)
{
    mp_logger *lg = mp_get_logger();
    assert_int_equal(mp_logger_set_level(lg, -1), MP_EINVAL);
    assert_int_equal(mp_logger_set_level(NULL, MP_LOG_INFO), MP_EINVAL);
    assert_int_equal(mp_logger_get_level(NULL), MP_EINVAL);
    assert_int_equal(mp_logger_effective_level(NULL), MP_EINVAL);
    assert_int_equal(mp_logger_is_enabled_for(NULL, 10), MP_EINVAL);
    assert_int_equal(mp_logger_set_handler(NULL, NULL, NULL), MP_EINVAL);
    assert_int_equal(mp_logger_log(NULL, MP_LOG_INFO, "x"), MP_EINVAL);
    /* Something that is not a logger. */
    void *other = mp_shared_alloc(64);
    assert_int_equal(mp_logger_set_level(other, MP_LOG_INFO), MP_EINVAL);
    char local[32] = {0};
    assert_int_equal(mp_logger_get_level((mp_logger *)local), MP_EINVAL);
    mp_shared_free(other);
    assert_int_equal(mp_logger_log(lg, -5, "x"), MP_EINVAL);
    assert_int_equal(mp_logger_log(lg, MP_LOG_INFO, NULL), MP_EINVAL);
    assert_int_equal(mp_log(-1, "x"), MP_EINVAL);
    assert_int_equal(mp_log(MP_LOG_INFO, NULL), MP_EINVAL);
}

/* ---- output --------------------------------------------------------------- */

static void log_some(void *ctx)
{
    int level = *(int *)ctx;
    if (level >= 0)
        mp_log_to_stderr(level);
    mp_log(MP_LOG_DEBUG, "debug %d", 1);
    mp_log(MP_LOG_INFO, "info %s", "two");
    mp_log(MP_LOG_SUBWARNING, "subwarning");
    mp_log(MP_LOG_WARNING, "warning %.1f", 3.5);
    mp_logger_log(mp_get_logger(), MP_LOG_CRITICAL, "critical");
    mp_log(42, "custom");
    _exit(0);
}

static void test_format(void **state)
{
    char out[4096];
    int level = MP_LOG_DEBUG;
    assert_int_equal(run_program(log_some, &level, out, sizeof out, false), 0);
    assert_string_equal(out, "[DEBUG/MainProcess] debug 1\n"
                             "[INFO/MainProcess] info two\n"
                             "[SUBWARNING/MainProcess] subwarning\n"
                             "[WARNING/MainProcess] warning 3.5\n"
                             "[CRITICAL/MainProcess] critical\n"
                             "[Level 42/MainProcess] custom\n");

    /* log_to_stderr() without a level: the effective level is WARNING. */
    level = MP_LOG_NOTSET;
    assert_int_equal(run_program(log_some, &level, out, sizeof out, false), 0);
    assert_string_equal(out, "[WARNING/MainProcess] warning 3.5\n"
                             "[CRITICAL/MainProcess] critical\n"
                             "[Level 42/MainProcess] custom\n");

    /* No handler at all: Python's last resort, the bare message. */
    level = -1;
    assert_int_equal(run_program(log_some, &level, out, sizeof out, false), 0);
    assert_string_equal(out, "warning 3.5\ncritical\ncustom\n");
}

static void log_long(void *ctx)
{
    size_t n = *(size_t *)ctx;
    char *s = malloc(n + 1);
    memset(s, 'a', n);
    s[n] = '\0';
    mp_log_to_stderr(MP_LOG_INFO);
    mp_log(MP_LOG_INFO, "%s", s);
    free(s);
    _exit(0);
}

static void test_long_messages(void **state)
{
    size_t cap = 200000;
    char *out = malloc(cap);
    size_t n = 5000;
    assert_int_equal(run_program(log_long, &n, out, cap, false), 0);
    const char *prefix = "[INFO/MainProcess] ";
    assert_int_equal(strlen(out), strlen(prefix) + n + 1);
    size_t as = 0;
    for (const char *c = out + strlen(prefix); *c == 'a'; c++)
        as++;
    assert_int_equal(as, n);

    n = 100000; /* cut at 64 KiB */
    assert_int_equal(run_program(log_long, &n, out, cap, false), 0);
    size_t len = strlen(out);
    assert_int_equal(len, strlen(prefix) + 65535 + 1);
    assert_memory_equal(out + len - 4, "...\n", 4);
    free(out);
}

struct captured {
    int count;
    int level;
    char name[64];
    char message[128];
};

static void capture(int level, const char *name, const char *message, void *ctx)
{
    struct captured *c = ctx;
    c->count++;
    c->level = level;
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->message, sizeof c->message, "%s", message);
}

static void test_handler(void **state)
{
    struct captured c = {0};
    mp_logger *lg = mp_get_logger();
    assert_int_equal(mp_logger_set_handler(lg, capture, &c), 0);
    assert_int_equal(mp_logger_set_level(lg, MP_LOG_INFO), 0);
    mp_log(MP_LOG_DEBUG, "dropped");
    assert_int_equal(c.count, 0);
    assert_int_equal(mp_log(MP_LOG_ERROR, "bad %d", 7), 0);
    assert_int_equal(c.count, 1);
    assert_int_equal(c.level, MP_LOG_ERROR);
    assert_string_equal(c.name, mp_process_name(mp_current_process()));
    assert_string_equal(c.message, "bad 7");
    assert_int_equal(mp_logger_set_handler(lg, NULL, NULL), 0);
    mp_log(MP_LOG_INFO, "not captured");
    assert_int_equal(c.count, 1);
}

/* The handle works in a child, on the child's own logger. */
static int child_sets_level(void *arg, size_t n)
{
    mp_logger *lg = *(mp_logger **)arg;
    CHECK(mp_logger_get_level(lg) == MP_LOG_ERROR); /* inherited */
    CHECK(mp_logger_set_level(lg, MP_LOG_DEBUG) == 0);
    CHECK(mp_logger_get_level(mp_get_logger()) == MP_LOG_DEBUG);
    return 0;
}

static void test_logger_in_child(void **state)
{
    mp_logger *lg = mp_get_logger();
    mp_logger_set_level(lg, MP_LOG_ERROR);
    mpt_run_ok(child_sets_level, &lg, sizeof lg, MP_FOREVER);
    assert_int_equal(mp_logger_get_level(lg), MP_LOG_ERROR); /* the parent's own */
}

/* ---- the life-cycle messages ------------------------------------------------ */

static int ret5(void *arg, size_t n)
{
    return 5;
}

static int exit7(void *arg, size_t n)
{
    exit(7);
}

static int pauser(void *arg, size_t n)
{
    for (;;)
        pause();
    return 0;
}

static int nap(void *arg, size_t n)
{
    sleep_s(0.1);
    return 0;
}

struct target_box {
    mp_target_fn fn;
};

static void one_child(void *ctx)
{
    mp_log_to_stderr(MP_LOG_DEBUG);
    mp_process *p = mp_process_new(.target = ((struct target_box *)ctx)->fn, .name = "w");
    if (p == NULL || mp_process_start(p) != 0 || mp_process_join(p, MP_FOREVER) != 0)
        _exit(3);
    mp_process_free(p);
}

static void test_lifecycle_messages(void **state)
{
    char out[4096];
    struct target_box box = {ret5};
    assert_int_equal(run_program(one_child, &box, out, sizeof out, false), 0);
    assert_string_equal(
        out, "[INFO/w] child process calling self.run()\n"
             "[INFO/w] process shutting down\n"
             "[DEBUG/w] running all \"atexit\" finalizers with priority >= 0\n"
             "[DEBUG/w] running the remaining \"atexit\" finalizers\n"
             "[INFO/w] process exiting with exitcode 5\n"
             "[INFO/MainProcess] process shutting down\n"
             "[DEBUG/MainProcess] running all \"atexit\" finalizers with priority >= 0\n"
             "[DEBUG/MainProcess] running the remaining \"atexit\" finalizers\n");

    /* A target that calls exit(): the code is logged all the same, where
     * the C library's on_exit hands it over (glibc; musl has no on_exit). */
#ifdef __GLIBC__
#define EXITING_7 "[INFO/w] process exiting with exitcode 7\n"
#else
#define EXITING_7 ""
#endif
    box.fn = exit7;
    assert_int_equal(run_program(one_child, &box, out, sizeof out, false), 0);
    assert_string_equal(
        out, "[INFO/w] child process calling self.run()\n"
             "[INFO/w] process shutting down\n"
             "[DEBUG/w] running all \"atexit\" finalizers with priority >= 0\n"
             "[DEBUG/w] running the remaining \"atexit\" finalizers\n" EXITING_7
             "[INFO/MainProcess] process shutting down\n"
             "[DEBUG/MainProcess] running all \"atexit\" finalizers with priority >= 0\n"
             "[DEBUG/MainProcess] running the remaining \"atexit\" finalizers\n");
}

static void log_fin(void *arg)
{
    mp_log(MP_LOG_INFO, "finalizer %s", (const char *)arg);
}

/* A program that leaves a daemonic and a plain child running, with
 * finalizers on both sides of the children's clean-up. */
static void leave_children(void *ctx)
{
    mp_log_to_stderr(MP_LOG_INFO);
    mp_process *d = mp_process_new(.target = pauser, .name = "d", .daemon = true);
    mp_process *n = mp_process_new(.target = nap, .name = "n");
    if (mp_process_start(d) != 0 || mp_process_start(n) != 0)
        _exit(3);
    mp_finalize(log_fin, "-5", -5);
    mp_finalize(log_fin, "10a", 10);
    mp_finalize(log_fin, "0", 0);
    mp_finalize(log_fin, "10b", 10);
    int id = mp_finalize(log_fin, "cancelled", 3);
    mp_finalizer_cancel(id);
}

static void test_exit_with_children(void **state)
{
    char out[4096];
    assert_int_equal(run_program(leave_children, NULL, out, sizeof out, false), 0);
    char *lines[64];
    int n = split_lines(out, lines, 64);
    int down = index_of(lines, n, "[INFO/MainProcess] process shutting down");
    int f10b = index_of(lines, n, "[INFO/MainProcess] finalizer 10b");
    int f10a = index_of(lines, n, "[INFO/MainProcess] finalizer 10a");
    int f0 = index_of(lines, n, "[INFO/MainProcess] finalizer 0");
    int term = index_of(lines, n, "[INFO/MainProcess] calling terminate() for daemon d");
    int jd = index_of(lines, n, "[INFO/MainProcess] calling join() for process d");
    int jn = index_of(lines, n, "[INFO/MainProcess] calling join() for process n");
    int fm5 = index_of(lines, n, "[INFO/MainProcess] finalizer -5");
    int nexit = index_of(lines, n, "[INFO/n] process exiting with exitcode 0");
    assert_true(down >= 0 && f10b > down && f10a > f10b && f0 > f10a);
    /* The daemon may be gone (and reaped) before the join loop, which then
     * does not list it, as in Python. */
    assert_true(term > f0 && (jd == -1 || jd > term) && jn > term);
    assert_true(fm5 > jd && fm5 > jn && fm5 > nexit);
    assert_int_equal(index_of(lines, n, "[INFO/MainProcess] finalizer cancelled"), -1);
    /* The daemon was killed by SIGTERM: it logs nothing more. */
    assert_int_equal(index_of(lines, n, "[INFO/d] process shutting down"), -1);
}

/* ---- finalizers ------------------------------------------------------------- */

static int fin_calls;

static void count_fin(void *arg)
{
    fin_calls += *(int *)arg;
}

static void test_finalizer_api(void **state)
{
    int one = 1;
    fin_calls = 0;
    assert_int_equal(mp_finalize(NULL, NULL, 0), MP_EINVAL);
    int id = mp_finalize(count_fin, &one, 0);
    assert_true(id > 0);
    assert_int_equal(mp_finalizer_still_active(id), 1);
    assert_int_equal(mp_finalizer_run(id), 0);
    assert_int_equal(fin_calls, 1);
    assert_int_equal(mp_finalizer_still_active(id), 0);
    assert_int_equal(mp_finalizer_run(id), MP_EINVAL); /* only once */
    assert_int_equal(mp_finalizer_cancel(id), MP_EINVAL);
    assert_int_equal(fin_calls, 1);

    int id2 = mp_finalize(count_fin, &one, -3);
    assert_true(id2 > id);
    assert_int_equal(mp_finalizer_cancel(id2), 0);
    assert_int_equal(mp_finalizer_still_active(id2), 0);
    assert_int_equal(mp_finalizer_run(id2), MP_EINVAL);
    assert_int_equal(mp_finalizer_run(0), MP_EINVAL);
    assert_int_equal(mp_finalizer_run(-4), MP_EINVAL);
    assert_int_equal(fin_calls, 1);
}

static int order[8], norder;

static void record(void *arg)
{
    order[norder++] = (int)(intptr_t)arg;
}

static void test_finalizer_order(void **state)
{
    norder = 0;
    mp_finalize(record, (void *)1, 0);
    mp_finalize(record, (void *)2, 5);
    mp_finalize(record, (void *)3, -1);
    mp_finalize(record, (void *)4, 5);
    mp_finalize(record, (void *)5, 0);
    mp__run_finalizers(0, false);
    assert_int_equal(norder, 4);
    assert_int_equal(order[0], 4);
    assert_int_equal(order[1], 2);
    assert_int_equal(order[2], 5);
    assert_int_equal(order[3], 1);
    mp__run_finalizers(0, true);
    assert_int_equal(norder, 5);
    assert_int_equal(order[4], 3);
}

static void write_p(void *arg)
{
    (void)!write(*(int *)arg, "P", 1);
}

static int finalizer_free_child(void *arg, size_t n)
{
    return 0;
}

/* A child does not run its parent's finalizers. */
static void fin_parent(void *ctx)
{
    mp_finalize(write_p, ctx, 0);
    mp_process *p = mp_process_new(.target = finalizer_free_child);
    if (p == NULL || mp_process_start(p) != 0 || mp_process_join(p, MP_FOREVER) != 0)
        _exit(3);
    mp_process_free(p);
}

static void test_finalizers_not_inherited(void **state)
{
    int pfd[2];
    assert_int_equal(mpt_pipe(pfd), 0);
    char out[64];
    assert_int_equal(run_program(fin_parent, &pfd[1], out, sizeof out, false), 0);
    mpt_close(pfd[1]);
    char buf[8];
    assert_int_equal(read(pfd[0], buf, sizeof buf), 1);
    mpt_close(pfd[0]);
}

/* Finalize(obj, ...): tied to an object's lifetime. */
static void test_finalizer_object(void **state)
{
    int one = 1;
    assert_int_equal(mp_finalize_object(NULL, count_fin, &one, MP_NO_EXITPRIORITY), MP_EINVAL);
    assert_int_equal(mp_finalize(count_fin, &one, MP_NO_EXITPRIORITY), MP_EINVAL);
    assert_int_equal(mp_finalize_object(&one, NULL, &one, 0), MP_EINVAL);

    /* A libmp object: its free runs the finalizers, the most recent first. */
    norder = 0;
    mp_lock *lk = mp_lock_new();
    assert_non_null(lk);
    int a = mp_finalize_object(lk, record, (void *)1, MP_NO_EXITPRIORITY);
    int b = mp_finalize_object(lk, record, (void *)2, 3);
    assert_true(a > 0 && b > a);
    mp_lock_free(lk);
    assert_int_equal(norder, 2);
    assert_int_equal(order[0], 2);
    assert_int_equal(order[1], 1);
    assert_int_equal(mp_finalizer_still_active(a), 0);
    assert_int_equal(mp_finalizer_still_active(b), 0);

    /* A shared block. */
    void *blk = mp_shared_alloc(32);
    assert_true(mp_finalize_object(blk, record, (void *)3, MP_NO_EXITPRIORITY) > 0);
    assert_int_equal(mp_shared_free(blk), 0);
    assert_int_equal(norder, 3);
    assert_int_equal(order[2], 3);

    /* Any other pointer: the program says when it dies. */
    int *m = malloc(sizeof *m);
    assert_true(mp_finalize_object(m, record, (void *)4, MP_NO_EXITPRIORITY) > 0);
    int c = mp_finalize_object(m, record, (void *)5, MP_NO_EXITPRIORITY);
    /* Run early by hand: it no longer runs at the free. */
    assert_int_equal(mp_finalizer_run(c), 0);
    assert_int_equal(order[3], 5);
    assert_int_equal(mp_finalize_object_freed(m), 1);
    assert_int_equal(order[4], 4);
    assert_int_equal(mp_finalize_object_freed(m), 0);
    free(m);
    assert_int_equal(mp_finalize_object_freed(NULL), 0);
    /* Cancelled: never runs. */
    mp_lock *lk2 = mp_lock_new();
    int d = mp_finalize_object(lk2, record, (void *)6, 1);
    assert_int_equal(mp_finalizer_cancel(d), 0);
    mp_lock_free(lk2);
    assert_int_equal(norder, 5);

    /* Exit runs those with a priority, never those without. */
    int e = mp_finalize_object(&one, record, (void *)7, MP_NO_EXITPRIORITY);
    int f = mp_finalize_object(&one, record, (void *)8, 0);
    mp__run_finalizers(0, true);
    assert_int_equal(norder, 6);
    assert_int_equal(order[5], 8);
    assert_int_equal(mp_finalizer_still_active(e), 1);
    assert_int_equal(mp_finalizer_still_active(f), 0);
    assert_int_equal(mp_finalize_object_freed(&one), 1);
    assert_int_equal(order[6], 7);
}

/* In a child of the suite's start method: an object freed runs its
 * finalizer then; at the child's exit, the one with a priority runs and the
 * one without does not.  The child records the order in shared memory. */
static void rec_shared(void *arg)
{
    char *log = mp_process_arg(mp_current_process(), NULL);
    log = *(char **)log;
    size_t n = strlen(log);
    log[n] = (char)(intptr_t)arg;
    log[n + 1] = '\0';
}

static int fin_object_child(void *arg, size_t n)
{
    static int obj_keep, obj_never;
    mp_lock *lk = mp_lock_new();
    if (lk == NULL)
        return 1;
    if (mp_finalize_object(&obj_keep, rec_shared, (void *)'A', 5) <= 0 ||
        mp_finalize_object(&obj_never, rec_shared, (void *)'B', MP_NO_EXITPRIORITY) <= 0 ||
        mp_finalize(rec_shared, (void *)'C', 1) <= 0 ||
        mp_finalize_object(lk, rec_shared, (void *)'D', 9) <= 0)
        return 2;
    mp_lock_free(lk); /* D now */
    return 0;         /* then A, C at exit; never B */
}

static void test_finalizer_object_child(void **state)
{
    char *log = mp_shared_alloc(16);
    memset(log, 0, 16);
    mpt_run_ok(fin_object_child, &log, sizeof log, 60);
    assert_string_equal(log, "DAC");
    mp_shared_free(log);
}

/* ---- after-fork hooks --------------------------------------------------------- */

static int forked_flag;

static void set_flag(void *arg)
{
    forked_flag += *(int *)arg;
}

static int report_flag(void *arg, size_t n)
{
    return forked_flag;
}

static void test_after_fork(void **state)
{
    static int three = 3;
    if (!mpt_forking())
        skip(); /* the hooks run in children made by fork only */
    assert_int_equal(mp_register_after_fork(NULL, NULL), MP_EINVAL);
    forked_flag = 0;
    assert_int_equal(mp_register_after_fork(set_flag, &three), 0);
    mp_process *p = mp_process_new(.target = report_flag);
    assert_int_equal(mp_process_start(p), 0);
    assert_int_equal(mp_process_join(p, MP_FOREVER), 0);
    int code;
    assert_int_equal(mp_process_exitcode(p, &code), 0);
    assert_int_equal(code, 3);
    assert_int_equal(forked_flag, 0); /* not in the parent */
    mp_process_free(p);
}

/* ---- fork safety ---------------------------------------------------------------- */

static _Atomic int stop_logging;

/*
 * At most 200000 lines a thread (5 MiB from both), well inside what the
 * reader keeps: under valgrind the forks are slow enough for unbounded
 * loggers to fill its 16 MiB, after which it stopped reading and the
 * program died of SIGPIPE.
 */
static void *log_loop(void *arg)
{
    for (int i = 0; i < 200000 && !stop_logging; i++) {
        mp_log(MP_LOG_INFO, "busy %d", 1);
        sleep_s(0.0001);
    }
    return NULL;
}

static int log_in_child(void *arg, size_t n)
{
    mp_log(MP_LOG_INFO, "from the child");
    return 0;
}

static void threads_and_children(void *ctx)
{
    mp_log_to_stderr(MP_LOG_INFO);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, log_loop, NULL);
    for (int i = 0; i < 20; i++) {
        mp_process *p = mp_process_new(.target = log_in_child);
        if (mp_process_start(p) != 0 || mp_process_join(p, 30) != 0)
            _exit(3);
        mp_process_free(p);
    }
    stop_logging = 1;
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    _exit(0);
}

static void test_log_while_forking(void **state)
{
    size_t cap = 1 << 24;
    char *out = malloc(cap);
    assert_int_equal(run_program(threads_and_children, NULL, out, cap, false), 0);
    /* Every line is whole. */
    int children = 0;
    for (char *s = out; *s;) {
        char *nl = strchr(s, '\n');
        assert_non_null(nl);
        *nl = '\0';
        assert_true(strcmp(s, "[INFO/MainProcess] busy 1") == 0 ||
                    strstr(s, "] from the child") != NULL ||
                    strstr(s, "] child process calling self.run()") != NULL ||
                    strstr(s, "] process shutting down") != NULL ||
                    strstr(s, "] process exiting with exitcode 0") != NULL);
        if (strstr(s, "] from the child") != NULL)
            children++;
        s = nl + 1;
    }
    assert_int_equal(children, 20);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_level_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logger_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logger_misuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logger_in_child, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_with_children, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finalizer_api, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finalizer_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finalizers_not_inherited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finalizer_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finalizer_object_child, setup, teardown),
        cmocka_unit_test_setup_teardown(test_after_fork, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_while_forking, setup, teardown),
    };
    int rc = cmocka_run_group_tests_name(MP_TEST_NAME, tests, NULL, NULL);
    /* After a failed test, children may be left running: kill them rather
     * than let the exit handler join them forever. */
    mp_process *left[64];
    int n = mp_active_children(left, 64);
    for (int i = 0; i < n && i < 64; i++)
        mp_process_kill(left[i]);
    return rc;
}
