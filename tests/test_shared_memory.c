/* test_shared_memory.c: named shared memory and its tracker. */
#include "internal/mp.h"
#include "internal/resource_tracker.h"
#include "mptest.h"

#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
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
    };
    return cmocka_run_group_tests_name(MP_TEST_NAME, tests, NULL, NULL);
}
