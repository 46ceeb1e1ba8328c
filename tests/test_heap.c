/* test_heap.c: the shared arena and mp_shared_alloc. */
#include "internal/mp.h"
#include "mptest.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int setup(void **state)
{
    assert_int_equal(mp__heap_init(), 0);
    mpt_leak_begin();
    return 0;
}

static int teardown(void **state)
{
    mpt_leak_end();
    return 0;
}

static bool all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

static void test_small_blocks(void **state)
{
    static const size_t sizes[] = {1, 15, 16, 17, 48, 63, 64, 65, 100, 200,
                                   1000, 4096, 5000, 32768};
    void *blocks[sizeof sizes / sizeof sizes[0]];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = mp_shared_alloc(sizes[i]);
        assert_non_null(p);
        assert_true(mp__in_arena(p));
        assert_true(mp_shared_size(p) >= sizes[i]);
        assert_int_equal((uintptr_t)p % (sizes[i] >= 64 ? 64 : 16), 0);
        assert_true(all_zero(p, sizes[i]));
        memset(p, 0xab, sizes[i]);
        blocks[i] = p;
    }
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        assert_int_equal(mp_shared_free(blocks[i]), 0);
    /* A reused block comes back zeroed. */
    unsigned char *p = mp_shared_alloc(1000);
    assert_true(all_zero(p, 1000));
    assert_int_equal(mp_shared_free(p), 0);
}

static void test_bad_frees(void **state)
{
    assert_int_equal(mp_shared_free(NULL), 0);
    char *m = malloc(32);
    assert_int_equal(mp_shared_free(m), MP_EINVAL);
    assert_int_equal(mp_shared_size(m), 0);
    free(m);
    char *p = mp_shared_alloc(64);
    assert_int_equal(mp_shared_free(p + 16), MP_EINVAL);
    assert_int_equal(mp_shared_free(p), 0);
    assert_int_equal(mp_shared_free(p), MP_EINVAL); /* double free */
    char *big = mp_shared_alloc(1 << 20);
    assert_int_equal(mp_shared_free(big + 65536), MP_EINVAL);
    assert_int_equal(mp_shared_free(big), 0);
    assert_int_equal(mp_shared_free(big), MP_EINVAL);
}

static void test_large_blocks_coalesce(void **state)
{
    char *a = mp_shared_alloc(1 << 20);
    char *b = mp_shared_alloc(1 << 20);
    char *c = mp_shared_alloc(1 << 20);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_int_equal((uintptr_t)a % 65536, 0);
    memset(a, 1, 1 << 20);
    memset(b, 2, 1 << 20);
    assert_int_equal(mp_shared_free(a), 0);
    assert_int_equal(mp_shared_free(b), 0);
    /* a and b merged: a 2 MiB block fits where they were, and is zero. */
    char *d = mp_shared_alloc(2 << 20);
    assert_ptr_equal(d, a);
    assert_true(all_zero((unsigned char *)d, 2 << 20));
    assert_int_equal(mp_shared_free(c), 0);
    assert_int_equal(mp_shared_free(d), 0);
}

static void test_huge_block(void **state)
{
    size_t gib = (size_t)1 << 30;
    char *p = mp_shared_alloc(gib);
    assert_non_null(p);
    p[0] = 1;
    p[gib - 1] = 2;
    assert_int_equal(mp_shared_free(p), 0);
    void *q = mp_shared_alloc((size_t)1 << 50);
    assert_null(q);
    assert_int_equal(mp_last_error(), -ENOMEM);
}

static void test_shared_between_processes(void **state)
{
    int *shared = mp_shared_alloc(sizeof(int) * 4);
    pid_t pid = fork();
    if (pid == 0) {
        shared[0] = 42;
        int *mine = mp_shared_alloc(4096);
        if (mine == NULL)
            _exit(1);
        mine[0] = 7;
        /* Hand the pointer itself over: it is valid in the parent too. */
        __atomic_store_n((int **)&shared[2], mine, __ATOMIC_RELEASE);
        _exit(0);
    }
    assert_int_equal(mpt_wait_status(pid), 0);
    assert_int_equal(shared[0], 42);
    int *theirs = __atomic_load_n((int **)&shared[2], __ATOMIC_ACQUIRE);
    assert_non_null(theirs);
    assert_int_equal(theirs[0], 7);
    assert_int_equal(mp_shared_free(theirs), 0);
    assert_int_equal(mp_shared_free(shared), 0);
}

/* Two processes allocate and free at random, checking their own patterns. */
static int churn(unsigned seed)
{
    enum { SLOTS = 64, ROUNDS = 20000 };
    unsigned char *slot[SLOTS] = {0};
    size_t len[SLOTS] = {0};
    const unsigned tag = seed % 7;
    for (int r = 0; r < ROUNDS; r++) {
        int i = (int)(rand_r(&seed) % SLOTS);
        if (slot[i]) {
            for (size_t k = 0; k < len[i]; k++)
                if (slot[i][k] != (unsigned char)(i + tag))
                    return 2;
            if (mp_shared_free(slot[i]) != 0)
                return 3;
            slot[i] = NULL;
        } else {
            size_t n = rand_r(&seed) % 8 == 0 ? 70000 + rand_r(&seed) % 200000
                                              : 1 + rand_r(&seed) % 3000;
            slot[i] = mp_shared_alloc(n);
            if (slot[i] == NULL)
                return 4;
            len[i] = n;
            memset(slot[i], (int)(i + tag), n);
        }
    }
    for (int i = 0; i < SLOTS; i++)
        if (slot[i] && mp_shared_free(slot[i]) != 0)
            return 5;
    return 0;
}

static void test_concurrent_churn(void **state)
{
    pid_t pids[3];
    for (int i = 0; i < 3; i++) {
        pids[i] = fork();
        if (pids[i] == 0)
            _exit(churn(1000u + (unsigned)i * 7919u));
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(mpt_wait_status(pids[i]), 0);
}

static void test_killed_allocator(void **state)
{
    /* A process killed while it allocates must not wedge the arena. */
    for (int round = 0; round < 5; round++) {
        pid_t pid = fork();
        if (pid == 0) {
            for (;;) {
                void *p = mp_shared_alloc(100 + (size_t)round * 1000);
                mp_shared_free(p);
            }
        }
        usleep(20000);
        kill(pid, SIGKILL);
        assert_int_equal(mpt_wait_status(pid), 1000 + SIGKILL);
        void *p = mp_shared_alloc(100);
        assert_non_null(p);
        assert_int_equal(mp_shared_free(p), 0);
    }
}

static void test_no_dev_shm_entry(void **state)
{
    int fd;
    void *addr;
    size_t size;
    mp__heap_info(&fd, &addr, &size);
    assert_true(fd >= 100);
    assert_non_null(addr);
    assert_true(size >= ((size_t)1 << 30));
    /* A memfd: never a name in /dev/shm. */
    assert_int_equal(mpt_count_shm("libmp-arena"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_small_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_frees, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_blocks_coalesce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_between_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_churn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_allocator, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_dev_shm_entry, setup, teardown),
    };
    return cmocka_run_group_tests_name(MP_TEST_NAME, tests, NULL, NULL);
}
