/* mptest.c: helpers shared by the unit tests. */
#include "internal/mp.h"
#include "internal/resource_tracker.h"
#include "mptest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal/linux.h"

/* ---- the 'fallback' suite ------------------------------------------------ */

/* The test program's own process, and the fallbacks it must take. */
static pid_t main_pid;
static char *expect_fallback;

/* Read before main, and removed from the environment, so that children
 * (spawned ones run this program again) do not check anything. */
__attribute__((constructor)) static void read_expect_fallback(void)
{
    const char *v = getenv("MPT_EXPECT_FALLBACK");
    if (v == NULL)
        return;
    expect_fallback = strdup(v);
    main_pid = getpid();
    unsetenv("MPT_EXPECT_FALLBACK");
}

/*
 * Under MP_DISABLE (the 'fallback' suite), MPT_EXPECT_FALLBACK names the
 * features whose fallback this test program must have taken: if one was
 * never taken, the forcing was ignored and the program fails as it exits.
 */
__attribute__((destructor)) static void check_fallbacks(void)
{
    const char *want = expect_fallback;
    if (want == NULL || main_pid != getpid())
        return;
    bool bad = false;
    for (int f = 0; f < MP__FEAT_COUNT; f++) {
        const char *name = mp__feature_name((enum mp__feature)f);
        size_t n = strlen(name);
        const char *at = strstr(want, name);
        if (at == NULL || (at[n] != '\0' && at[n] != ','))
            continue;
        unsigned long c = mp__fallback_count((enum mp__feature)f);
        fprintf(stderr, "fallback %s: taken %lu times (MP_DISABLE=%s)\n", name, c,
                getenv("MP_DISABLE") ? getenv("MP_DISABLE") : "");
        bad |= c == 0;
    }
    if (bad)
        _exit(1);
}

/* ---- valgrind ------------------------------------------------------------- */

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define MPT_HAVE_VALGRIND_H 1
#endif
#endif

int mpt_valgrind(void)
{
#ifdef MPT_HAVE_VALGRIND_H
    return RUNNING_ON_VALGRIND != 0;
#else
    /* valgrind preloads its own libraries into the programs it runs. */
    const char *pre = getenv("LD_PRELOAD");
    return pre != NULL && strstr(pre, "vgpreload") != NULL;
#endif
}

#ifdef MPT_HAVE_VALGRIND_H
/*
 * Under valgrind, memcheck's leak check reads every writable mapping of a
 * process as it ends, the whole shared arena included (2 GiB in the
 * 'valgrind' test setup): about 8 s on this machine, and the arena's pages
 * all allocated.  Forked children end with _exit holding their parent's
 * heap, so their leak report is the parent's over again; the leak check is
 * kept for the test program's own process, and turned off in every other
 * (forked children here, spawned ones and the forkserver's in
 * read_valgrind_role).  Memory errors are still checked everywhere.
 */
static void valgrind_no_leak_check(void)
{
    VALGRIND_CLO_CHANGE("--leak-check=no");
}

/* The test program's own process sets MPT_MAIN_PID; a process that finds it
 * set to another pid is a child started by exec (spawn, the forkserver). */
__attribute__((constructor)) static void read_valgrind_role(void)
{
    if (!RUNNING_ON_VALGRIND)
        return;
    char pid[24];
    const char *main_pid_env = getenv("MPT_MAIN_PID");
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    if (main_pid_env == NULL)
        setenv("MPT_MAIN_PID", pid, 1);
    else if (strcmp(main_pid_env, pid) != 0)
        valgrind_no_leak_check();
    pthread_atfork(NULL, NULL, valgrind_no_leak_check);
}
#endif

/* MPT_FILTER runs only the tests whose names match it (a glob), in every
 * test program: for one test under valgrind or gdb. */
__attribute__((constructor)) static void read_filter(void)
{
    const char *v = getenv("MPT_FILTER");
    if (v != NULL && *v != '\0')
        cmocka_set_test_filter(v);
}

/* ---- helpers ---------------------------------------------------------- */

int mpt_find_python3(char *out, size_t n)
{
    const char *path = getenv("PATH");
    while (path != NULL && *path) {
        const char *end = strchr(path, ':');
        size_t len = end ? (size_t)(end - path) : strlen(path);
        if (len > 0 && (size_t)snprintf(out, n, "%.*s/python3", (int)len, path) < n &&
            access(out, X_OK) == 0)
            return 1;
        path += len + (end != NULL);
    }
    return 0;
}

int mpt_count_fds(void)
{
    /* Only those below the soft limit: valgrind keeps its own fds (more
     * of them while it reads a library's debug information) above it. */
    struct rlimit rl;
    long limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                     ? (long)rl.rlim_cur
                     : LONG_MAX;
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && strtol(e->d_name, NULL, 10) < limit)
            n++;
    closedir(d);
    return n - 1; /* the directory's own fd */
}

int mpt_count_shm(const char *prefix)
{
    int n = 0;
    DIR *d = opendir("/dev/shm");
    if (d == NULL)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (prefix == NULL || strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    }
    closedir(d);
    return n;
}

int mpt_count_children(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    int n = 0, pid;
    while (fscanf(f, "%d", &pid) == 1)
        n++;
    fclose(f);
    return n;
}

int mpt_proc_stat(pid_t pid, char *state, pid_t *ppid, pid_t *pgid, char *comm, size_t commlen)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
    char st;
    int pp, pg;
    if (open_paren == NULL || close_paren == NULL ||
        sscanf(close_paren + 1, " %c %d %d", &st, &pp, &pg) != 3)
        return -1;
    if (comm != NULL && commlen > 0)
        snprintf(comm, commlen, "%.*s", (int)(close_paren - open_paren - 1), open_paren + 1);
    if (state != NULL)
        *state = st;
    if (ppid != NULL)
        *ppid = pp;
    if (pgid != NULL)
        *pgid = pg;
    return 0;
}

/* Call fn for every process in /proc until it returns nonzero. */
static pid_t each_process(int (*fn)(pid_t pid, const void *ctx), const void *ctx)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return 0;
    struct dirent *e;
    pid_t found = 0;
    while (found == 0 && (e = readdir(d)) != NULL) {
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid > 0 && fn(pid, ctx))
            found = pid;
    }
    closedir(d);
    return found;
}

struct pgroup_count {
    pid_t pgid;
    int n;
};

static int in_pgroup(pid_t pid, const void *ctx)
{
    struct pgroup_count *c = (struct pgroup_count *)ctx;
    char st;
    pid_t pg;
    if (mpt_proc_stat(pid, &st, NULL, &pg, NULL, 0) == 0 && pg == c->pgid && st != 'Z')
        c->n++;
    return 0;
}

int mpt_count_pgroup(pid_t pgid)
{
    struct pgroup_count c = {pgid, 0};
    each_process(in_pgroup, &c);
    return c.n;
}

struct named {
    const char *comm;
    pid_t ppid;
};

static int is_named(pid_t pid, const void *ctx)
{
    const struct named *w = ctx;
    char st, comm[32];
    pid_t pp;
    return mpt_proc_stat(pid, &st, &pp, NULL, comm, sizeof comm) == 0 && st != 'Z' &&
           pp == w->ppid && strcmp(comm, w->comm) == 0;
}

pid_t mpt_find_process(const char *comm, pid_t ppid)
{
    struct named w = {comm, ppid};
    return each_process(is_named, &w);
}

uint64_t mpt_seed(const char *test)
{
    const char *env = getenv("MPT_SEED");
    uint64_t seed = env != NULL && *env ? strtoull(env, NULL, 0) : (uint64_t)mp__now_ns();
    if (seed == 0)
        seed = 1;
    printf("[ SEED     ] %s: MPT_SEED=%llu\n", test, (unsigned long long)seed);
    fflush(stdout);
    return seed;
}

uint64_t mpt_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

void mpt_kill_children(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
    for (int round = 0; round < 1000; round++) {
        FILE *f = fopen(path, "r");
        int pid, n = 0;
        while (f != NULL && fscanf(f, "%d", &pid) == 1) {
            kill(pid, SIGKILL);
            n++;
        }
        if (f != NULL)
            fclose(f);
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        if (n == 0 && waitpid(-1, NULL, WNOHANG) < 0)
            return;
        usleep(1000);
    }
}

pid_t mpt_fork(int (*fn)(void *arg), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(fn(arg));
    assert_true(pid > 0);
    return pid;
}

int mpt_wait_status(pid_t pid)
{
    int st;
    pid_t r;
    do
        r = waitpid(pid, &st, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -1;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 1000 + WTERMSIG(st);
}

mp_process *mpt_start(int (*target)(void *arg, size_t size), void *arg, size_t size)
{
    mp_process *p = mp_process_new(.target = target, .arg = arg, .arg_size = size);
    assert_non_null(p);
    assert_int_equal(mp_process_start(p), 0);
    return p;
}

void mpt_join_ok(mp_process *p, double timeout)
{
    int code = -1;
    assert_int_equal(mp_process_join(p, timeout), 0);
    assert_int_equal(mp_process_exitcode(p, &code), 0);
    assert_int_equal(code, 0);
    mp_process_free(p);
}

void mpt_run_ok(int (*target)(void *arg, size_t size), void *arg, size_t size, double timeout)
{
    mpt_join_ok(mpt_start(target, arg, size), timeout);
}

int mpt_wait_timed(pid_t pid, double seconds)
{
    /* Counted naps, not a clock deadline: on a loaded machine (or under
     * valgrind) the wait stretches rather than ends early. */
    for (int i = 0; i < seconds * 100; i++) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
        if (r < 0 && errno != EINTR)
            return -1;
        usleep(10000);
    }
    return -1;
}

static int leak_fds, leak_shm;

const char *mpt_shm_prefix(void)
{
    static char prefix[32];
    snprintf(prefix, sizeof prefix, "mp_%x_", (unsigned)mp__heap_creator());
    return prefix;
}

/* Only this test run's names: generated ones carry the family root's pid,
 * and the tests' own names end with the test program's pid (mpt_shm_name).
 * Other programs, and other test runs, come and go in /dev/shm meanwhile. */
int mpt_count_own_shm(void)
{
    char mine[32];
    snprintf(mine, sizeof mine, "_%d", (int)getpid());
    size_t ml = strlen(mine);
    const char *gen = mpt_shm_prefix();
    int n = 0;
    DIR *d = opendir("/dev/shm");
    if (d == NULL)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, gen, strlen(gen)) == 0 ||
            (strncmp(e->d_name, "mpt_", 4) == 0 && len > ml &&
             strcmp(e->d_name + len - ml, mine) == 0))
            n++;
    }
    closedir(d);
    return n;
}

void mpt_shm_name(char *out, size_t n, const char *what)
{
    snprintf(out, n, "mpt_%s_%d", what, (int)getpid());
}

void mpt_leak_begin(void)
{
    /* The process's long-lived helpers first, so that their fds (kept
     * until the test program exits) do not count as leaks. */
    assert_int_equal(mp__tracker_start(), 0);
    if (strcmp(mpt_method(), "forkserver") == 0)
        assert_int_equal(mp_forkserver_ensure_running(), 0);
    leak_fds = mpt_count_fds();
    leak_shm = mpt_count_own_shm();
}

void mpt_leak_end(void)
{
    assert_int_equal(mpt_count_children(), 0);
    assert_int_equal(mpt_count_fds(), leak_fds);
    assert_int_equal(mpt_count_own_shm(), leak_shm);
}

int mpt_setup(void **state)
{
    assert_int_equal(mp__heap_init(), 0);
    mpt_leak_begin();
    return 0;
}

int mpt_teardown(void **state)
{
    mpt_leak_end();
    return 0;
}

const char *mpt_method(void)
{
    const char *m = getenv("MP_START_METHOD");
    return m != NULL && *m != '\0' ? m : "fork";
}

int mpt_forking(void)
{
    return strcmp(mpt_method(), "fork") == 0;
}

static void *pass_owner(void)
{
    static void *owner;
    if (owner == NULL)
        owner = mp_shared_alloc(64);
    return owner;
}

void mpt_pass_fd(int fd)
{
    assert_int_equal(mp__fd_register(fd, pass_owner()), 0);
}

int mpt_pipe(int pfd[2])
{
    if (pipe(pfd) != 0)
        return -1;
    mpt_pass_fd(pfd[0]);
    mpt_pass_fd(pfd[1]);
    return 0;
}

void mpt_close(int fd)
{
    mp__fd_unregister(fd);
    close(fd);
}

static int fill_fds[4096];
static int fill_n;
static struct rlimit fill_old;

int mpt_fds_exhaust(int spare)
{
    int top = -1;
    if (getrlimit(RLIMIT_NOFILE, &fill_old) != 0)
        return -1;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        /* Not valgrind's own fds, above the soft limit. */
        if (e->d_name[0] != '.' && fd != self && fd > top &&
            (fill_old.rlim_cur == RLIM_INFINITY || (rlim_t)fd < fill_old.rlim_cur))
            top = fd;
    }
    closedir(d);
    struct rlimit low = {(rlim_t)top + 1, fill_old.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &low) != 0)
        return -1;
    fill_n = 0;
    int fd;
    while (fill_n < 4096 && (fd = dup(top)) >= 0)
        fill_fds[fill_n++] = fd;
    if (errno != EMFILE || fill_n < spare)
        return -1;
    for (int i = 0; i < spare; i++)
        close(fill_fds[--fill_n]);
    return 0;
}

void mpt_fds_restore(void)
{
    while (fill_n > 0)
        close(fill_fds[--fill_n]);
    setrlimit(RLIMIT_NOFILE, &fill_old);
}
