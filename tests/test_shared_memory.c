/* test_shared_memory.c: named shared memory and its tracker. */
#include "internal/mp.h"
#include "internal/resource_tracker.h"
#include "mptest.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int setup(void **state)
{
    assert_int_equal(mp__heap_init(), 0);
    assert_int_equal(mp__tracker_start(), 0);
    mpt_leak_begin();
    return 0;
}

static int teardown(void **state)
{
    mpt_leak_end();
    return 0;
}

static bool shm_exists(const char *name)
{
    char path[300];
    snprintf(path, sizeof path, "/dev/shm/%s", name);
    return access(path, F_OK) == 0;
}

static int run_peer(const char *mode, const char *name)
{
    pid_t pid;
    char *argv[] = {(char *)MPT_SHM_PEER, (char *)mode, (char *)name, NULL};
    if (posix_spawn(&pid, MPT_SHM_PEER, NULL, NULL, argv, environ) != 0)
        return -1;
    return mpt_wait_status(pid);
}

static void test_create_generated_name(void **state)
{
    mp_shared_memory *s = mp_shared_memory_new(.create = true, .size = 10000);
    assert_non_null(s);
    const char *name = mp_shared_memory_name(s);
    const char *prefix = mpt_shm_prefix();
    assert_int_equal(strncmp(name, prefix, strlen(prefix)), 0);
    assert_int_equal(strlen(name), strlen(prefix) + 12);
    assert_int_equal(mp_shared_memory_size(s), 10000);
    unsigned char *buf = mp_shared_memory_buf(s);
    assert_non_null(buf);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(buf[i], 0);
    struct stat st;
    char path[300];
    snprintf(path, sizeof path, "/dev/shm/%s", name);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(mp_shared_memory_unlink(s), 0);
    assert_false(shm_exists(name));
    /* The mapping outlives the name. */
    buf[9999] = 7;
    assert_int_equal(mp_shared_memory_unlink(s), -ENOENT);
    mp_shared_memory_free(s);
}

static void test_attach_by_name(void **state)
{
    char name[64], slashed[66];
    mpt_shm_name(name, sizeof name, "attach");
    snprintf(slashed, sizeof slashed, "/%s", name);
    mp_shared_memory *a = mp_shared_memory_new(.name = slashed, .create = true, .size = 64);
    assert_non_null(a);
    assert_string_equal(mp_shared_memory_name(a), name);
    strcpy(mp_shared_memory_buf(a), "hello");
    /* With or without the leading slash, and the size comes from the segment. */
    mp_shared_memory *b = mp_shared_memory_new(.name = name, .size = 5);
    assert_non_null(b);
    assert_int_equal(mp_shared_memory_size(b), 64);
    assert_string_equal(mp_shared_memory_buf(b), "hello");
    assert_null(mp_shared_memory_new(.name = name, .create = true, .size = 64));
    assert_int_equal(mp_last_error(), -EEXIST);
    assert_int_equal(mp_shared_memory_unlink(b), 0);
    assert_null(mp_shared_memory_new(.name = name));
    assert_int_equal(mp_last_error(), -ENOENT);
    mp_shared_memory_free(a);
    mp_shared_memory_free(b);
}

static void test_bad_arguments(void **state)
{
    char longname[MP_SHM_NAME_MAX + 2];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    const char *bad[] = {"", "/", "a/b", "/a/b", ".", "..", longname};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_null(mp_shared_memory_new(.name = bad[i], .create = true, .size = 8));
        assert_int_equal(mp_last_error(), MP_EINVAL);
    }
    longname[MP_SHM_NAME_MAX] = '\0'; /* exactly the longest accepted */
    char own[64];
    mpt_shm_name(own, sizeof own, "long");
    memcpy(longname, own, 4);
    memcpy(longname + MP_SHM_NAME_MAX - (strlen(own) - 4), own + 4, strlen(own) - 4);
    mp_shared_memory *s = mp_shared_memory_new(.name = longname, .create = true, .size = 8);
    assert_non_null(s);
    assert_int_equal(mp_shared_memory_unlink(s), 0);
    mp_shared_memory_free(s);
    assert_null(mp_shared_memory_new(.create = true, .size = 0));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_shared_memory_new());
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_shared_memory_new_opts(NULL));
    assert_null(mp_shared_memory_buf(NULL));
    assert_int_equal(mp_shared_memory_size(NULL), 0);
    assert_string_equal(mp_shared_memory_name(NULL), "");
    assert_int_equal(mp_shared_memory_close(NULL), MP_EINVAL);
    assert_int_equal(mp_shared_memory_unlink(NULL), MP_EINVAL);
    mp_shared_memory_free(NULL);
    int local;
    assert_int_equal(mp_shared_memory_close((mp_shared_memory *)&local), MP_EINVAL);
}

static void test_freed_and_closed(void **state)
{
    mp_shared_memory *s = mp_shared_memory_new(.create = true, .size = 8);
    assert_non_null(s);
    assert_int_equal(mp_shared_memory_close(s), 0);
    assert_int_equal(mp_shared_memory_close(s), 0);
    assert_null(mp_shared_memory_buf(s));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_int_equal(mp_shared_memory_unlink(s), 0);
    mp_shared_memory_free(s);
    assert_int_equal(mp_shared_memory_unlink(s), MP_EINVAL);
    assert_null(mp_shared_memory_buf(s));
}

static void test_fork_child_shares(void **state)
{
    mp_shared_memory *s = mp_shared_memory_new(.create = true, .size = 4096);
    int *buf = mp_shared_memory_buf(s);
    pid_t pid = fork();
    if (pid == 0) {
        int *mine = mp_shared_memory_buf(s);
        if (mine != buf)
            _exit(1);
        mine[0] = 99;
        /* Closing in the child leaves the parent's mapping alone. */
        if (mp_shared_memory_close(s) != 0 || mp_shared_memory_buf(s) != NULL)
            _exit(2);
        _exit(0);
    }
    assert_int_equal(mpt_wait_status(pid), 0);
    assert_int_equal(buf[0], 99);
    assert_ptr_equal(mp_shared_memory_buf(s), buf);
    assert_int_equal(mp_shared_memory_unlink(s), 0);
    mp_shared_memory_free(s);
}

static void test_unrelated_program_attaches(void **state)
{
    mp_shared_memory *s = mp_shared_memory_new(.create = true, .size = 64);
    char *buf = mp_shared_memory_buf(s);
    memcpy(buf, "ping", 4);
    assert_int_equal(run_peer("attach", mp_shared_memory_name(s)), 0);
    assert_memory_equal(buf + 4, "pong", 4);
    /* The peer attached without tracking: the segment is still there. */
    assert_true(shm_exists(mp_shared_memory_name(s)));
    assert_int_equal(mp_shared_memory_unlink(s), 0);
    mp_shared_memory_free(s);
}

static void test_tracker_unlinks_after_sigkill(void **state)
{
    char name[64];
    mpt_shm_name(name, sizeof name, "tracked");
    assert_int_equal(run_peer("die", name), 1000 + SIGKILL);
    /* The peer's tracker notices the end of its family and unlinks. */
    for (int i = 0; i < 500 && shm_exists(name); i++)
        usleep(10000);
    assert_false(shm_exists(name));

    mpt_shm_name(name, sizeof name, "untracked");
    assert_int_equal(run_peer("die-notrack", name), 1000 + SIGKILL);
    usleep(200000);
    assert_true(shm_exists(name));
    mp_shared_memory *s = mp_shared_memory_new(.name = name);
    assert_non_null(s);
    assert_int_equal(mp_shared_memory_unlink(s), 0);
    mp_shared_memory_free(s);
}

/* ---- tree kills and dead families ------------------------------------------
 *
 * Each scenario runs in a forked supervisor that is the subreaper of what it
 * starts (so that it can reap the peer's child and tracker) and reports the
 * first failed step as its exit status.  The peer families run in process
 * groups of their own.
 */

struct family {
    pid_t root, child, tracker;
    char shm[64], sock[108];
};

/* The peer's resource tracker: reparented to us, the subreaper, named
 * mp-tracker. */
static pid_t find_tracker(void)
{
    /* It names itself once it runs, which on a busy machine may be later. */
    for (int i = 0; i < 1000; i++) {
        pid_t pid = mpt_find_process("mp-tracker", getpid());
        if (pid > 0)
            return pid;
        usleep(10000);
    }
    return 0;
}

static bool path_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static int start_family(struct family *f, const char *tag)
{
    char what[32];
    snprintf(what, sizeof what, "fam%s", tag);
    mpt_shm_name(f->shm, sizeof f->shm, what);
    snprintf(f->sock, sizeof f->sock, "/tmp/mpt_sock%s_%d", tag, (int)getpid());
    unlink(f->sock);
    int p[2];
    if (pipe(p) != 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&at, 0);
    char *argv[] = {(char *)MPT_SHM_PEER, "family", f->shm, f->sock, NULL};
    int r = posix_spawn(&f->root, MPT_SHM_PEER, &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(p[1]);
    char line[32] = {0};
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    if (r != 0 || poll(&pfd, 1, 20000) != 1 || read(p[0], line, sizeof line - 1) <= 0) {
        close(p[0]);
        return -1;
    }
    close(p[0]);
    f->child = atoi(line);
    f->tracker = find_tracker();
    return f->child > 0 && f->tracker > 0 && path_exists(f->sock) ? 0 : -1;
}

/* waitpid with a deadline: the status as mpt_wait_status, or -1. */
static int wait_for(pid_t pid, double seconds)
{
    for (int i = 0; i < seconds * 100; i++) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
        if (r < 0)
            return -1;
        usleep(10000);
    }
    return -1;
}

static bool family_files_gone(const struct family *f, double seconds)
{
    for (int i = 0; i < seconds * 100; i++) {
        if (!shm_exists(f->shm) && !path_exists(f->sock))
            return true;
        usleep(10000);
    }
    return false;
}

/* A registry of this family (fam-ROOTPID-*) is still there. */
static bool registry_left(pid_t root)
{
    char dir[64], prefix[32];
    snprintf(dir, sizeof dir, "/dev/shm/libmp-%u", (unsigned)geteuid());
    snprintf(prefix, sizeof prefix, "fam-%d-", (int)root);
    DIR *d = opendir(dir);
    bool left = false;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL)
        left |= strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d != NULL)
        closedir(d);
    return left;
}

/* Kill every process of f, the tracker included (a cgroup kill). */
static int kill_all(struct family *f)
{
    kill(-f->root, SIGKILL);
    kill(f->tracker, SIGKILL);
    if (wait_for(f->root, 10) != 1000 + SIGKILL || wait_for(f->child, 10) != 1000 + SIGKILL ||
        wait_for(f->tracker, 10) != 1000 + SIGKILL)
        return -1;
    return 0;
}

/* A live family (its root and tracker dead, a child alive) is left alone;
 * once the child is dead too, mp_cleanup_stale removes its files. */
static int scenario_stale(void)
{
    struct family f;
    if (start_family(&f, "a") != 0)
        return 10;
    kill(f.root, SIGKILL);
    kill(f.tracker, SIGKILL);
    if (wait_for(f.root, 10) != 1000 + SIGKILL || wait_for(f.tracker, 10) != 1000 + SIGKILL)
        return 11;
    if (mp_cleanup_stale() < 0)
        return 12;
    if (!shm_exists(f.shm) || !path_exists(f.sock) || !registry_left(f.root))
        return 13;
    kill(f.child, SIGKILL);
    if (wait_for(f.child, 10) != 1000 + SIGKILL)
        return 14;
    int n = mp_cleanup_stale();
    if (n < 1)
        return 15;
    if (shm_exists(f.shm) || path_exists(f.sock) || registry_left(f.root))
        return 16;
    return 0;
}

/* kill -9 of the family's process group: the tracker, in a session of its
 * own, survives, removes the files and ends; nothing else is left. */
static int scenario_tree_kill(void)
{
    struct family f;
    if (start_family(&f, "b") != 0)
        return 20;
    if (kill(-f.root, SIGKILL) != 0)
        return 21;
    if (wait_for(f.root, 10) != 1000 + SIGKILL || wait_for(f.child, 10) != 1000 + SIGKILL)
        return 22;
    if (wait_for(f.tracker, 10) != 0)
        return 23;
    if (shm_exists(f.shm) || path_exists(f.sock) || registry_left(f.root))
        return 24;
    if (mpt_count_pgroup(f.root) != 0 || waitpid(-1, NULL, WNOHANG) != -1)
        return 25;
    return 0;
}

/* After a cgroup kill, the next libmp program's tracker cleans up. */
static int scenario_next_program(void)
{
    struct family dead, next;
    if (start_family(&dead, "c") != 0)
        return 30;
    if (kill_all(&dead) != 0)
        return 31;
    if (!shm_exists(dead.shm) || !path_exists(dead.sock))
        return 32;
    if (start_family(&next, "d") != 0)
        return 33;
    bool cleaned = family_files_gone(&dead, 10) && !registry_left(dead.root);
    kill(-next.root, SIGKILL);
    if (wait_for(next.root, 10) < 0 || wait_for(next.child, 10) < 0 || wait_for(next.tracker, 10) != 0)
        return 34;
    if (!cleaned)
        return 35;
    if (!family_files_gone(&next, 1))
        return 36;
    return 0;
}

static void run_scenario(int (*fn)(void))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        int r = fn();
        /* Leave nothing behind whatever failed: everything the scenario
         * started is our child by now (we are its subreaper). */
        mpt_kill_children();
        _exit(r);
    }
    assert_int_equal(mpt_wait_status(pid), 0);
}

static void test_stale_family_cleaned_live_untouched(void **state)
{
    run_scenario(scenario_stale);
}

static void test_tree_kill_leaves_nothing(void **state)
{
    run_scenario(scenario_tree_kill);
}

static void test_next_program_cleans_dead_family(void **state)
{
    run_scenario(scenario_next_program);
}

/* A busy family (queue producers and consumers, a pool at work, segments,
 * a socket file), kill -9 of its process group at a random moment, several
 * times: afterwards none of its /dev/shm names, its socket or its registry
 * is left, its process group is empty, and its tracker ended by itself. */
static int scenario_busy_tree_kills(void)
{
    uint64_t rng = mpt_seed("tree kill chaos");
    for (int round = 0; round < 4; round++) {
        char sock[108], line[16] = {0};
        snprintf(sock, sizeof sock, "/tmp/mpt_busy%d_%d", round, (int)getpid());
        int p[2];
        if (pipe(p) != 0)
            return 40;
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t at;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, p[1], 1);
        posix_spawn_file_actions_addclose(&fa, p[0]);
        posix_spawnattr_init(&at);
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
        posix_spawnattr_setpgroup(&at, 0);
        char *argv[] = {(char *)MPT_SHM_PEER, "busy", sock, NULL};
        pid_t root;
        int r = posix_spawn(&root, MPT_SHM_PEER, &fa, &at, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&at);
        close(p[1]);
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        bool ready = r == 0 && poll(&pfd, 1, 30000) == 1 && read(p[0], line, sizeof line - 1) > 0;
        close(p[0]);
        if (!ready || strcmp(line, "ready\n") != 0)
            return 41;
        pid_t tracker = find_tracker();
        if (tracker <= 0)
            return 42;
        usleep((useconds_t)(mpt_rand(&rng) % 200000));
        if (kill(-root, SIGKILL) != 0)
            return 43;
        if (wait_for(root, 10) != 1000 + SIGKILL)
            return 44;
        /* Only the tracker may outlive the kill, and it ends by itself. */
        if (wait_for(tracker, 10) != 0)
            return 45;
        for (int i = 0; i < 500 && mpt_count_pgroup(root) > 0; i++)
            usleep(10000);
        if (mpt_count_pgroup(root) != 0)
            return 46;
        mpt_kill_children(); /* reaps the family's zombies, killed already */
        char prefix[32];
        snprintf(prefix, sizeof prefix, "mp_%x_", (unsigned)root);
        if (mpt_count_shm(prefix) != 0 || path_exists(sock) || registry_left(root))
            return 47;
    }
    return 0;
}

static void test_busy_tree_kills_leave_nothing(void **state)
{
    run_scenario(scenario_busy_tree_kills);
}

static void test_cleanup_stale_spares_own_family(void **state)
{
    /* This program's family is alive: its segment survives a clean-up. */
    mp_shared_memory *s = mp_shared_memory_new(.create = true, .size = 64);
    assert_non_null(s);
    assert_true(mp_cleanup_stale() >= 0);
    assert_true(shm_exists(mp_shared_memory_name(s)));
    assert_int_equal(mp_shared_memory_unlink(s), 0);
    mp_shared_memory_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_generated_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attach_by_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_freed_and_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fork_child_shares, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unrelated_program_attaches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tracker_unlinks_after_sigkill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_family_cleaned_live_untouched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tree_kill_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_next_program_cleans_dead_family, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cleanup_stale_spares_own_family, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_tree_kills_leave_nothing, setup, teardown),
    };
    return cmocka_run_group_tests_name(MP_TEST_NAME, tests, NULL, NULL);
}
