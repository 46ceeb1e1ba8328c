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
#include <sys/mman.h>
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

/*
 * Start shm_peer with argv in a process group of its own, its stdout a
 * pipe: *root is its pid, *out the pipe's read end.  0; -1 if no pipe could
 * be made, 1 if the spawn failed (nothing is left open then).
 */
static int spawn_peer_group(char *const argv[], pid_t *root, int *out)
{
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
    int r = posix_spawn(root, MPT_SHM_PEER, &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(p[1]);
    if (r != 0) {
        close(p[0]);
        return 1;
    }
    *out = p[0];
    return 0;
}

static int start_family(struct family *f, const char *tag)
{
    char what[32];
    snprintf(what, sizeof what, "fam%s", tag);
    mpt_shm_name(f->shm, sizeof f->shm, what);
    snprintf(f->sock, sizeof f->sock, "/tmp/mpt_sock%s_%d", tag, (int)getpid());
    unlink(f->sock);
    char *argv[] = {(char *)MPT_SHM_PEER, "family", f->shm, f->sock, NULL};
    int out;
    if (spawn_peer_group(argv, &f->root, &out) != 0)
        return -1;
    char line[32] = {0};
    struct pollfd pfd = {.fd = out, .events = POLLIN};
    if (poll(&pfd, 1, 20000) != 1 || read(out, line, sizeof line - 1) <= 0) {
        close(out);
        return -1;
    }
    close(out);
    f->child = atoi(line);
    f->tracker = find_tracker();
    return f->child > 0 && f->tracker > 0 && path_exists(f->sock) ? 0 : -1;
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

/* How many /dev/shm names the family of root has (mp_ROOT_...). */
static int family_names(pid_t root)
{
    char prefix[32];
    snprintf(prefix, sizeof prefix, "mp_%x_", (unsigned)root);
    return mpt_count_shm(prefix);
}

/* Wait (at most 10 s) until the trackers of root's family have run: no
 * name and no registry of it left.  How many names are left. */
static int names_after_trackers(pid_t root)
{
    for (int i = 0; i < 1000 && (family_names(root) > 0 || registry_left(root)); i++)
        usleep(10000);
    return family_names(root);
}

/* Wait (at most seconds) until process group pgid has no live process. */
static bool pgroup_gone(pid_t pgid, int seconds)
{
    for (int i = 0; i < seconds * 100 && mpt_count_pgroup(pgid) > 0; i++)
        usleep(10000);
    return mpt_count_pgroup(pgid) == 0;
}

/* Kill every process of f, the tracker included (a cgroup kill). */
static int kill_all(struct family *f)
{
    /* The tracker first: once the family is dead, a tracker still alive
     * would clean up and end by itself (on a loaded machine, before a
     * second kill arrives), and the next program would find nothing. */
    kill(f->tracker, SIGKILL);
    kill(-f->root, SIGKILL);
    if (mpt_wait_timed(f->root, 10) != 1000 + SIGKILL ||
        mpt_wait_timed(f->child, 10) != 1000 + SIGKILL ||
        mpt_wait_timed(f->tracker, 10) != 1000 + SIGKILL)
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
    if (mpt_wait_timed(f.root, 10) != 1000 + SIGKILL ||
        mpt_wait_timed(f.tracker, 10) != 1000 + SIGKILL)
        return 11;
    if (mp_cleanup_stale() < 0)
        return 12;
    if (!shm_exists(f.shm) || !path_exists(f.sock) || !registry_left(f.root))
        return 13;
    kill(f.child, SIGKILL);
    if (mpt_wait_timed(f.child, 10) != 1000 + SIGKILL)
        return 14;
    /* 0 when another program's tracker (a parallel test) removed the
     * family first; the look below says whether it is gone. */
    if (mp_cleanup_stale() < 0)
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
    if (mpt_wait_timed(f.root, 10) != 1000 + SIGKILL ||
        mpt_wait_timed(f.child, 10) != 1000 + SIGKILL)
        return 22;
    if (mpt_wait_timed(f.tracker, 10) != 0)
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
    /* No look at the dead family's files here: any libmp program that
     * starts meanwhile (a test running in parallel) may already have
     * removed them, which is the behaviour under test too.  What counts is
     * that they are gone once the next program has started. */
    if (start_family(&next, "d") != 0)
        return 33;
    bool cleaned = family_files_gone(&dead, 10) && !registry_left(dead.root);
    kill(-next.root, SIGKILL);
    if (mpt_wait_timed(next.root, 10) < 0 || mpt_wait_timed(next.child, 10) < 0 ||
        mpt_wait_timed(next.tracker, 10) != 0)
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
        char *argv[] = {(char *)MPT_SHM_PEER, "busy", sock, NULL};
        pid_t root;
        int out, r = spawn_peer_group(argv, &root, &out);
        if (r < 0)
            return 40;
        if (r > 0)
            return 41;
        struct pollfd pfd = {.fd = out, .events = POLLIN};
        bool ready = poll(&pfd, 1, 30000) == 1 && read(out, line, sizeof line - 1) > 0;
        close(out);
        if (!ready || strcmp(line, "ready\n") != 0)
            return 41;
        pid_t tracker = find_tracker();
        if (tracker <= 0)
            return 42;
        usleep((useconds_t)(mpt_rand(&rng) % 200000));
        if (kill(-root, SIGKILL) != 0)
            return 43;
        if (mpt_wait_timed(root, 10) != 1000 + SIGKILL)
            return 44;
        /* Only the tracker may outlive the kill, and it ends by itself. */
        if (mpt_wait_timed(tracker, 10) != 0)
            return 45;
        if (!pgroup_gone(root, 5))
            return 46;
        mpt_kill_children(); /* reaps the family's zombies, killed already */
        if (family_names(root) != 0 || path_exists(sock) || registry_left(root))
            return 47;
    }
    return 0;
}

static void test_busy_tree_kills_leave_nothing(void **state)
{
    run_scenario(scenario_busy_tree_kills);
}

/* Remove (and name) what the family of root left in /dev/shm; how many. */
static int remove_left(pid_t root)
{
    char prefix[32], name[300];
    snprintf(prefix, sizeof prefix, "mp_%x_", (unsigned)root);
    int n = 0;
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            printf("left: %s\n", e->d_name);
            snprintf(name, sizeof name, "/%s", e->d_name);
            shm_unlink(name);
            n++;
        }
    if (d != NULL)
        closedir(d);
    return n;
}

/* The rest of random_kills_under for a kill of the peer's process group. */
static int random_group_kill(pid_t root, int out, int ms, const char *method, double t0)
{
    char line[16];
    struct pollfd pfd = {.fd = out, .events = POLLIN};
    /* The peer prints only at its end: anything here means it ended. */
    bool early = poll(&pfd, 1, ms) != 0 && read(out, line, sizeof line) != 0;
    close(out);
    if (early || kill(-root, SIGKILL) != 0 || mpt_wait_timed(root, 10) != 1000 + SIGKILL)
        return 70;
    if (!pgroup_gone(root, 10))
        return 71;
    /* The root's tracker (of the forkserver's socket) ends last. */
    int after = names_after_trackers(root);
    printf("shared memory random kills (%s), then kill -9 of the process group after %d ms: "
           "%d names left after the trackers ran; %.1f s\n",
           method, ms, after, mp__now() - t0);
    fflush(stdout);
    mpt_kill_children(); /* reaps the family's zombies, killed already */
    return remove_left(root) != 0 || registry_left(root) ? 72 : 0;
}

/* Creators and attachers of segments SIGKILLed at random points between
 * create, attach, write, close and unlink (shm_peer random-kills, a family
 * of its own, seed printed): no surviving reader sees a torn record, and
 * once the family has ended and its tracker has run, none of its names is
 * left in /dev/shm, not even those of creators killed inside
 * mp_shared_memory_new.  disable, if not NULL, is MP_DISABLE for the peer
 * ("tmpfile": names made with shm_open, reserved with the tracker first).
 * group_kill_ms > 0: kill -9 the peer's process group after that long,
 * while its writers create and unlink segments; the trackers (sessions of
 * their own) still leave nothing behind. */
static int random_kills_under(const char *method, const char *disable, uint64_t seed,
                              int group_kill_ms)
{
    char seed_text[32], line[256] = {0};
    snprintf(seed_text, sizeof seed_text, "%llu", (unsigned long long)seed);
    char *argv[] = {(char *)MPT_SHM_PEER, "random-kills", seed_text, NULL};
    pid_t root;
    int out;
    double t0 = mp__now();
    setenv("MP_START_METHOD", method, 1);
    char *had = getenv("MP_DISABLE") ? strdup(getenv("MP_DISABLE")) : NULL;
    if (disable != NULL)
        setenv("MP_DISABLE", disable, 1);
    int r = spawn_peer_group(argv, &root, &out);
    if (had != NULL)
        setenv("MP_DISABLE", had, 1);
    else
        unsetenv("MP_DISABLE");
    free(had);
    if (r < 0)
        return 60;
    if (r > 0)
        return 61;
    if (group_kill_ms > 0)
        return random_group_kill(root, out, group_kill_ms, method, t0);
    struct pollfd pfd = {.fd = out, .events = POLLIN};
    ssize_t n = poll(&pfd, 1, 60000) == 1 ? read(out, line, sizeof line - 1) : -1;
    close(out);
    int st = mpt_wait_timed(root, 30);
    if (st != 0) {
        printf("shm_peer random-kills exited with %d: %s\n", st, n > 0 ? line : "");
        return 62;
    }
    int kills = 0, in_create = 0, left = -1;
    unsigned long long created, unlinked, reads, stuck, torn;
    if (sscanf(
            line,
            "kills %d in-create %d created %llu unlinked %llu reads %llu stuck %llu torn %llu "
            "left %d",
            &kills, &in_create, &created, &unlinked, &reads, &stuck, &torn, &left) != 8)
        return 63;
    /* The trackers (one per writer) run once the family has ended. */
    int after = names_after_trackers(root);
    printf("shared memory random kills (%s%s%s): %d kills (%d inside mp_shared_memory_new), "
           "%llu segments created, %llu unlinked by their creators, %d left by killed ones at "
           "the end, %d after the tracker ran; %llu record reads, %llu torn, %llu given up (a "
           "writer inside); %.1f s\n",
           method, disable ? ", MP_DISABLE=" : "", disable ? disable : "", kills, in_create,
           created, unlinked, left, after, reads, torn, stuck, mp__now() - t0);
    fflush(stdout);
    if (remove_left(root) != 0 || registry_left(root))
        return 64;
    if (torn != 0 || reads == 0 || kills < 10)
        return 65;
    return 0;
}

/* The peer's children start with each method (the peer is a program of
 * its own: the suites' MP_START_METHOD does not choose for it); the names
 * are made nameless first and linked (O_TMPFILE), and once more under fork
 * with shm_open and reserved names, the fallback.  Then the same with a
 * kill of the whole process group at a random moment, under each. */
static int scenario_random_kills(void)
{
    uint64_t seed = mpt_seed("shared memory random kills");
    uint64_t rng = seed;
    static const char *const methods[] = {"fork", "spawn", "forkserver", "fork"};
    for (int k = 0; k < 8; k++) {
        int ms = k < 4 ? 0 : 200 + (int)(mpt_rand(&rng) % 1000);
        int r = random_kills_under(methods[k % 4], k % 4 == 3 ? "tmpfile" : NULL,
                                   seed + (uint64_t)k, ms);
        if (r != 0)
            return r;
    }
    return 0;
}

static void test_random_kills(void **state)
{
    /* A stress test by the clock: at least 10 kills and restarts in 1.5 s,
     * readers that spin up to 100000 times on a record.  Under valgrind a
     * process takes seconds to start, so it cannot pass there. */
    if (mpt_valgrind()) {
        fprintf(stderr, "test_random_kills: skipped under valgrind (a stress test by the "
                        "clock; processes start too slowly there)\n");
        skip();
    }
    run_scenario(scenario_random_kills);
}

/* Socket files made at every moment of a kill: shm_peer sock-churn starts
 * a process (under each start method; the forkserver's directory and
 * socket go into a private TMPDIR) and then makes and closes Listeners at
 * paths in that directory, absolute and relative, in a loop; it is killed
 * with its process group at a random moment, the first rounds of each
 * method while it starts.  Once its tracker has run, the directory is
 * empty: no listener's path, no temporary name, no forkserver directory. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d != NULL)
        closedir(d);
    return n;
}

static int sock_churn_round(const char *dir, const char *method, int ms)
{
    char *argv[] = {(char *)MPT_SHM_PEER, "sock-churn", (char *)dir, NULL};
    pid_t root;
    int out;
    setenv("MP_START_METHOD", method, 1);
    int r = spawn_peer_group(argv, &root, &out);
    if (r < 0)
        return 80;
    if (r > 0)
        return 81;
    /* A negative ms counts from the start, a positive one from "ready". */
    struct pollfd pfd = {.fd = out, .events = POLLIN};
    char line[16] = {0};
    bool ok = ms < 0 || (poll(&pfd, 1, 30000) == 1 && read(out, line, sizeof line - 1) > 0 &&
                         strcmp(line, "ready\n") == 0);
    usleep((useconds_t)(ms < 0 ? -ms : ms) * 1000);
    int st = kill(-root, SIGKILL) == 0 ? mpt_wait_timed(root, 10) : -2;
    close(out); /* after the kill: "ready" must not meet a closed pipe */
    if (st != 1000 + SIGKILL) {
        printf("sock churn (%s, kill after %d ms): the peer ended with %d\n", method, ms, st);
        fflush(stdout);
        return 82;
    }
    for (int i = 0; i < 1000 && (count_entries(dir) > 0 || mpt_count_pgroup(root) > 0); i++)
        usleep(10000);
    mpt_kill_children(); /* reaps the family's zombies, killed already */
    int left = count_entries(dir);
    if (left != 0) {
        printf("sock churn (%s, kill after %d ms): %d names left in %s\n", method, ms, left,
               dir);
        fflush(stdout);
        return 83;
    }
    return ok ? 0 : 84;
}

static int scenario_sock_churn(void)
{
    uint64_t rng = mpt_seed("socket files and kills");
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/mpt_churn_%d", (int)getpid());
    if (mkdir(dir, 0700) != 0)
        return 85;
    static const char *const methods[] = {"fork", "spawn", "forkserver"};
    int r = 0;
    for (int round = 0; round < 24 && r == 0; round++) {
        int ms = 1 + (int)(mpt_rand(&rng) % 40);
        r = sock_churn_round(dir, methods[round % 3], round < 9 ? -ms : ms);
    }
    /* After a failure: what was left (a forkserver's directory holds its
     * socket). */
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[600];
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s/sock", dir, e->d_name);
        unlink(path);
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0)
            rmdir(path);
    }
    if (d != NULL)
        closedir(d);
    rmdir(dir);
    return r;
}

static void test_socket_files_random_kills(void **state)
{
    run_scenario(scenario_sock_churn);
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

/* ---- ShareableList and SharedMemoryManager ---------------------------------- */

static void assert_item(mp_shareable_list *l, int64_t i, const char *repr)
{
    mp_val *v = NULL;
    assert_int_equal(mp_shareable_list_get(l, i, &v), 0);
    char *r = mp_val_repr(v);
    if (strcmp(r, repr) != 0)
        fail_msg("item %lld: got %s, want %s", (long long)i, r, repr);
    free(r);
    mp_val_free(v);
}

static void test_shareable_list(void **state)
{
    mp_shareable_list *l = mp_shareable_list_new(MP_LIST(MP_I64(-5), MP_FLOAT(2.5),
                                                         MP_STR("hello"), MP_BYTES("ab\0c", 4),
                                                         MP_TRUE, MP_NONE, MP_STR("exactly8")),
                                                 NULL);
    assert_non_null(l);
    assert_int_equal(mp_shareable_list_len(l), 7);
    /* Python's layout: n, n + 1 offsets, data, formats, codes. */
    mp_shared_memory *shm = mp_shareable_list_shm(l);
    assert_int_equal(mp_shared_memory_size(shm), 9 * 8 + (8 * 6 + 16) + 7 * 9);
    const unsigned char *b = mp_shared_memory_buf(shm);
    int64_t w[9];
    memcpy(w, b, sizeof w);
    assert_int_equal(w[0], 7);
    assert_int_equal(w[1], 0);
    assert_int_equal(w[4], 24); /* "hello": 8 bytes of room */
    assert_int_equal(w[8], 64); /* "exactly8": 16 */
    assert_memory_equal(b + 72 + 64 + 6 * 8, "16s\0\0\0\0\0", 8);
    assert_memory_equal(b + 72 + 64 + 4 * 8, "xxxxxxx?", 8);
    assert_int_equal(b[72 + 64 + 56 + 3], 2); /* bytes */

    assert_item(l, 0, "-5");
    assert_item(l, 1, "2.5");
    assert_item(l, 2, "'hello'");
    assert_item(l, 3, "b'ab\\x00c'");
    assert_item(l, 4, "True");
    assert_item(l, 5, "None");
    assert_item(l, -1, "'exactly8'");
    mp_val *v;
    assert_int_equal(mp_shareable_list_get(l, 7, &v), MP_EINVAL);
    assert_int_equal(mp_shareable_list_get(l, -8, &v), MP_EINVAL);
    /* Any type replaces any other; a str must fit its room. */
    assert_int_equal(mp_shareable_list_set(l, 0, MP_STR("12345678")), 0);
    assert_item(l, 0, "'12345678'");
    assert_int_equal(mp_shareable_list_set(l, 0, MP_STR("123456789")), MP_EINVAL);
    assert_int_equal(mp_shareable_list_set(l, 2, MP_I64(7)), 0);
    assert_item(l, 2, "7");
    assert_int_equal(mp_shareable_list_set(l, 2, MP_BYTES("x", 1)), 0);
    assert_item(l, 2, "b'x'");
    assert_int_equal(mp_shareable_list_set(l, -1, MP_NONE), 0);
    assert_item(l, 6, "None");
    assert_int_equal(mp_shareable_list_set(l, 1, MP_LIST(MP_I64(1))), MP_EINVAL);
    int64_t at = -1;
    assert_int_equal(mp_shareable_list_index(l, MP_NONE, &at), 0);
    assert_int_equal(at, 5);
    assert_int_equal(mp_shareable_list_count(l, MP_NONE), 2);
    assert_int_equal(mp_shareable_list_index(l, MP_I64(99), &at), -ENOENT);
    /* Errors. */
    assert_null(mp_shareable_list_new(MP_I64(1), NULL));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    mp_val *dl = mp_val_list(), *dd = mp_val_dict();
    assert_int_equal(mp_val_list_append(dl, dd), 0);
    assert_null(mp_shareable_list_new(dl, NULL));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    mp_val_free(dl);
    mp_val_free(dd);
    assert_null(mp_shareable_list_attach(NULL));
    assert_null(mp_shareable_list_attach("mp_no_such_list_here"));
    assert_int_equal(mp_last_error(), -ENOENT);
    /* Garbage in a segment is refused, not read. */
    mp_shared_memory *junk = mp_shared_memory_new(.create = true, .size = 64);
    memset(mp_shared_memory_buf(junk), 0x7f, 64);
    assert_null(mp_shareable_list_attach(mp_shared_memory_name(junk)));
    assert_int_equal(mp_last_error(), -EPROTO);
    mp_shared_memory_unlink(junk);
    mp_shared_memory_free(junk);
    /* Attach by name: the same items. */
    mp_shareable_list *l2 = mp_shareable_list_attach(mp_shareable_list_name(l));
    assert_non_null(l2);
    assert_item(l2, 2, "b'x'");
    mp_shareable_list_free(l2);
    /* An empty list. */
    mp_val *empty = mp_val_tuple();
    mp_shareable_list *e = mp_shareable_list_new(empty, NULL);
    mp_val_free(empty);
    assert_non_null(e);
    assert_int_equal(mp_shareable_list_len(e), 0);
    assert_int_equal(mp_shared_memory_size(mp_shareable_list_shm(e)), 16);
    assert_int_equal(mp_shareable_list_unlink(e), 0);
    mp_shareable_list_free(e);
    assert_int_equal(mp_shareable_list_unlink(l), 0);
    mp_shareable_list_free(l);
}

/* Run python3 -c script arg; its stdout (up to n - 1 bytes) in out. */
static int run_python(const char *python, const char *script, const char *arg, char *out,
                      size_t n)
{
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    char *argv[] = {(char *)python, "-c", (char *)script, (char *)arg, NULL};
    pid_t pid;
    int r = posix_spawn(&pid, python, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    assert_int_equal(r, 0);
    size_t have = 0;
    ssize_t k;
    while (have + 1 < n && (k = read(fds[0], out + have, n - 1 - have)) > 0)
        have += (size_t)k;
    out[have] = '\0';
    close(fds[0]);
    return mpt_wait_status(pid);
}

/* Python attaches to (and its tracker must not unlink) what C made. */
static const char PY_READ[] = "import sys\n"
                              "from multiprocessing import resource_tracker\n"
                              "from multiprocessing.shared_memory import ShareableList\n"
                              "sl = ShareableList(name=sys.argv[1])\n"
                              "resource_tracker.unregister(sl.shm._name, 'shared_memory')\n"
                              "print(repr(list(sl)))\n"
                              "sl[0] = 'from py'\n"
                              "sl[1] = 12345\n"
                              "sl[3] = None\n"
                              "sl.shm.close()\n";

static const char PY_MAKE[] =
    "import sys\n"
    "from multiprocessing import resource_tracker\n"
    "from multiprocessing.shared_memory import ShareableList\n"
    "sl = ShareableList([7, 'abc', 1.5, False, None, b'xy', 'longer text here'], "
    "name=sys.argv[1])\n"
    "resource_tracker.unregister(sl.shm._name, 'shared_memory')\n"
    "sl.shm.close()\n";

static void test_shareable_list_python(void **state)
{
    char python[512];
    if (!mpt_find_python3(python, sizeof python)) {
        print_message("python3 is not on PATH: skipping\n");
        skip();
    }
    /* libmp creates, Python reads and writes. */
    mp_shareable_list *l = mp_shareable_list_new(MP_LIST(MP_STR("hello, python"),
                                                         MP_FLOAT(-0.25), MP_I64(1LL << 40),
                                                         MP_TRUE, MP_NONE,
                                                         MP_BYTES("\x01\x02", 2)),
                                                 NULL);
    assert_non_null(l);
    char out[512];
    assert_int_equal(run_python(python, PY_READ, mp_shareable_list_name(l), out, sizeof out),
                     0);
    assert_string_equal(
        out, "['hello, python', -0.25, 1099511627776, True, None, b'\\x01\\x02']\n");
    assert_item(l, 0, "'from py'");
    assert_item(l, 1, "12345");
    assert_item(l, 3, "None");
    assert_int_equal(mp_shareable_list_unlink(l), 0);
    mp_shareable_list_free(l);

    /* Python creates, libmp attaches. */
    char name[64];
    snprintf(name, sizeof name, "mp_test_pysl_%d", (int)getpid());
    assert_int_equal(run_python(python, PY_MAKE, name, out, sizeof out), 0);
    l = mp_shareable_list_attach(name);
    assert_non_null(l);
    assert_int_equal(mp_shareable_list_len(l), 7);
    assert_item(l, 0, "7");
    assert_item(l, 1, "'abc'");
    assert_item(l, 2, "1.5");
    assert_item(l, 3, "False");
    assert_item(l, 4, "None");
    assert_item(l, 5, "b'xy'");
    assert_item(l, 6, "'longer text here'");
    assert_int_equal(mp_shareable_list_set(l, 1, MP_STR("123456789")), MP_EINVAL);
    assert_int_equal(mp_shareable_list_set(l, 6, MP_STR("short")), 0);
    assert_item(l, 6, "'short'");
    assert_int_equal(mp_shareable_list_unlink(l), 0);
    mp_shareable_list_free(l);
}

struct smm_arg {
    mp_shm_manager *m;
    mp_shareable_list *l;
};

/* In a child of each start method: the manager and the list work there. */
static int smm_child(void *arg, size_t n)
{
    const struct smm_arg *a = arg;
    mp_shared_memory *s = mp_shm_manager_shared_memory(a->m, 100);
    if (s == NULL)
        return 1;
    mp_shared_memory_free(s);
    mp_val *v = NULL;
    if (mp_shareable_list_get(a->l, 0, &v) != 0)
        return 2;
    int64_t x = 0;
    mp_val_as_int(v, &x);
    mp_val_free(v);
    return mp_shareable_list_set(a->l, 0, MP_I64(x + 1)) == 0 ? 0 : 3;
}

static int setup_methods(void **state)
{
    assert_int_equal(mp__heap_init(), 0);
    assert_int_equal(mp_forkserver_ensure_running(), 0);
    return setup(state);
}

static void test_shm_manager(void **state)
{
    mp_shm_manager *m = mp_shm_manager_new();
    assert_non_null(m);
    mp_shared_memory *s = mp_shm_manager_shared_memory(m, 1000);
    assert_non_null(s);
    mp_shareable_list *l = mp_shm_manager_shareable_list(m, MP_LIST(MP_I64(1), MP_STR("a")));
    assert_non_null(l);
    char sname[256], lname[256];
    snprintf(sname, sizeof sname, "%s", mp_shared_memory_name(s));
    snprintf(lname, sizeof lname, "%s", mp_shareable_list_name(l));
    /* Children of the family, under each start method, hand out more and
     * use the list. */
    static const char *const methods[] = {"fork", "spawn", "forkserver"};
    struct smm_arg sa = {m, l};
    for (int k = 0; k < 3; k++) {
        mp_process *p = mp_process_new(.target = smm_child, .arg = &sa, .arg_size = sizeof sa,
                                       .ctx = mp_get_context(methods[k]));
        assert_int_equal(mp_process_start(p), 0);
        assert_int_equal(mp_process_join(p, 60), 0);
        int code = -1;
        mp_process_exitcode(p, &code);
        assert_int_equal(code, 0);
        mp_process_free(p);
    }
    assert_item(l, 0, "4");
    assert_true(shm_exists(sname));
    assert_true(shm_exists(lname));
    assert_int_equal(mp_shm_manager_shutdown(m), 0);
    assert_false(shm_exists(sname));
    assert_false(shm_exists(lname));
    /* Mappings stay valid; the manager hands out nothing more. */
    memset(mp_shared_memory_buf(s), 1, 1000);
    assert_null(mp_shm_manager_shared_memory(m, 10));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_shm_manager_shareable_list(m, MP_LIST(MP_I64(1))));
    assert_int_equal(mp_shm_manager_shutdown(m), 0);
    mp_shared_memory_free(s);
    mp_shareable_list_free(l);
    mp_shm_manager_free(m);
    assert_int_equal(mp_shm_manager_shutdown(NULL), MP_EINVAL);
    mp_shm_manager_free(NULL);
}

/* A program killed before its manager's shutdown: the tracker unlinks. */
static void test_shm_manager_killed(void **state)
{
    char file[64];
    snprintf(file, sizeof file, "/tmp/mp-test-smm-%d", (int)getpid());
    assert_int_equal(run_peer("smm-die", file), 1000 + SIGKILL);
    FILE *f = fopen(file, "r");
    assert_non_null(f);
    char a[256], b[256];
    assert_int_equal(fscanf(f, "%255s %255s", a, b), 2);
    fclose(f);
    unlink(file);
    for (int i = 0; i < 500 && (shm_exists(a) || shm_exists(b)); i++)
        usleep(10000);
    assert_false(shm_exists(a));
    assert_false(shm_exists(b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_generated_name, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_attach_by_name, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_freed_and_closed, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_fork_child_shares, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_unrelated_program_attaches, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_tracker_unlinks_after_sigkill, setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_stale_family_cleaned_live_untouched, setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_tree_kill_leaves_nothing, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_next_program_cleans_dead_family, setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_cleanup_stale_spares_own_family, setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_busy_tree_kills_leave_nothing, setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_random_kills, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_socket_files_random_kills, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_shareable_list, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_shareable_list_python, setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_shm_manager, setup_methods, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_shm_manager_killed, setup, mpt_teardown),
    };
    if (getenv("MPT_FILTER") != NULL)
        cmocka_set_test_filter(getenv("MPT_FILTER"));
    return cmocka_run_group_tests_name(MP_TEST_NAME, tests, NULL, NULL);
}
