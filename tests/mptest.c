/* mptest.c: helpers shared by the unit tests. */
#include "internal/mp.h"
#include "mptest.h"

#include <dirent.h>
#include <errno.h>
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

/* ---- helpers ---------------------------------------------------------- */

int mpt_count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
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

static int leak_fds, leak_shm;

/* Only names libmp or Python's multiprocessing would create: other
 * programs on the machine may come and go in /dev/shm meanwhile. */
static int count_our_shm(void)
{
    return mpt_count_shm("mp") + mpt_count_shm("psm_");
}

void mpt_leak_begin(void)
{
    if (strcmp(mpt_method(), "forkserver") == 0)
        assert_int_equal(mp_forkserver_ensure_running(), 0);
    leak_fds = mpt_count_fds();
    leak_shm = count_our_shm();
}

void mpt_leak_end(void)
{
    assert_int_equal(mpt_count_children(), 0);
    assert_int_equal(mpt_count_fds(), leak_fds);
    assert_int_equal(count_our_shm(), leak_shm);
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
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] != '.' && fd != self && fd > top)
            top = fd;
    }
    closedir(d);
    if (getrlimit(RLIMIT_NOFILE, &fill_old) != 0)
        return -1;
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
