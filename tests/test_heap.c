/* test_heap.c: the shared arena and mp_shared_alloc. */
#include "internal/mp.h"
#include "mptest.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static bool all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

static void test_small_blocks(void **state)
{
    static const size_t sizes[] = {1,  15,  16,  17,   48,   63,   64,
                                   65, 100, 200, 1000, 4096, 5000, 32768};
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

/* A forked child must not hand out the blocks its parent's cache holds. */
static void test_cache_fork_reset(void **state)
{
    enum { N = 16 };
    void *warm = mp_shared_alloc(64);
    assert_non_null(warm);
    assert_int_equal(mp_shared_free(warm), 0); /* the cache holds blocks now */
    void **theirs = mp_shared_alloc(N * sizeof *theirs);
    assert_non_null(theirs);
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < N; i++) {
            theirs[i] = mp_shared_alloc(64);
            if (theirs[i] == NULL)
                _exit(1);
            memset(theirs[i], 0xc5, 64);
        }
        _exit(0);
    }
    assert_int_equal(mpt_wait_status(pid), 0);
    void *mine[N];
    for (int i = 0; i < N; i++) {
        mine[i] = mp_shared_alloc(64);
        assert_non_null(mine[i]);
        assert_true(all_zero(mine[i], 64));
        for (int j = 0; j < N; j++)
            assert_ptr_not_equal(mine[i], theirs[j]);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(mp_shared_free(mine[i]), 0);
        assert_int_equal(mp_shared_free(theirs[i]), 0);
    }
    assert_int_equal(mp_shared_free(theirs), 0);
}

/* Blocks allocated here and freed in a child (into its cache): a second
 * free here is seen, and the child's cache goes back when it flushes. */
static void test_cache_cross_process_free(void **state)
{
    enum { N = 40 };
    void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = mp_shared_alloc(1 + (size_t)i * 26);
        assert_non_null(p[i]);
    }
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < N; i++)
            if (mp_shared_free(p[i]) != 0)
                _exit(1);
        mp__heap_cache_flush();
        _exit(0);
    }
    assert_int_equal(mpt_wait_status(pid), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(mp_shared_free(p[i]), MP_EINVAL);
    /* A double free in the same thread is seen while the block is cached. */
    void *q = mp_shared_alloc(64);
    assert_non_null(q);
    assert_int_equal(mp_shared_free(q), 0);
    assert_int_equal(mp_shared_free(q), MP_EINVAL);
}

/*
 * Processes allocate, fill, pass each other and free blocks (mostly of the
 * cached sizes) through shared slots while the test SIGKILLs them at random
 * points.  Every block carries a pattern made from its address, so a block
 * handed out twice (a corrupted free list) shows as a wrong pattern, seen
 * by a worker (it exits 2 instead of being killed) or at the end here.
 */
enum { KSLOTS = 256, KWORKERS = 3, KKILLS = 24 };

static unsigned char pattern_of(const void *p)
{
    return (unsigned char)((uintptr_t)p >> 4 | 1);
}

static bool pattern_ok(const unsigned char *p)
{
    size_t n = mp_shared_size(p);
    for (size_t i = 0; i < n; i++)
        if (p[i] != pattern_of(p))
            return false;
    return n != 0;
}

static _Noreturn void kill_worker(_Atomic(void *) *slots, unsigned seed)
{
    for (;;) {
        unsigned i = rand_r(&seed) % KSLOTS;
        unsigned char *p = atomic_exchange(&slots[i], NULL);
        if (p != NULL) {
            if (!pattern_ok(p))
                _exit(2);
            if (mp_shared_free(p) != 0)
                _exit(3);
            continue;
        }
        size_t n = rand_r(&seed) % 16 == 0 ? 40000 : 1 + rand_r(&seed) % 1100;
        p = mp_shared_alloc(n);
        if (p == NULL)
            _exit(4);
        memset(p, pattern_of(p), mp_shared_size(p));
        void *expected = NULL;
        if (!atomic_compare_exchange_strong(&slots[i], &expected, p) && mp_shared_free(p) != 0)
            _exit(5);
    }
}

typedef void worker_fn(_Atomic(void *) *slots, unsigned seed);

/* A forked worker; it runs until it is killed (or _exits on a fault). */
static pid_t fork_worker(worker_fn *fn, _Atomic(void *) *slots, unsigned seed)
{
    pid_t pid = fork();
    if (pid == 0) {
        fn(slots, seed);
        _exit(1);
    }
    assert_true(pid > 0);
    return pid;
}

/* KWORKERS workers, kills of one at random moments (each replaced by a new
 * one), then all killed: every one must have died of the SIGKILL. */
static void kill_workers_at_random(worker_fn *fn, _Atomic(void *) *slots, unsigned *seed,
                                   int kills)
{
    pid_t pids[KWORKERS];
    for (int w = 0; w < KWORKERS; w++)
        pids[w] = fork_worker(fn, slots, *seed + (unsigned)w);
    for (int k = 0; k < kills; k++) {
        usleep(1000 + rand_r(seed) % 20000);
        int w = (int)(rand_r(seed) % KWORKERS);
        kill(pids[w], SIGKILL);
        assert_int_equal(mpt_wait_status(pids[w]), 1000 + SIGKILL);
        pids[w] = fork_worker(fn, slots, *seed + 100u + (unsigned)k);
    }
    for (int w = 0; w < KWORKERS; w++) {
        kill(pids[w], SIGKILL);
        assert_int_equal(mpt_wait_status(pids[w]), 1000 + SIGKILL);
    }
}

static void test_killed_at_random(void **state)
{
    _Atomic(void *) *slots = mp_shared_alloc(KSLOTS * sizeof *slots);
    assert_non_null(slots);
    unsigned seed = (unsigned)getpid();
    kill_workers_at_random(kill_worker, slots, &seed, KKILLS);
    /* What the workers left is intact; new blocks are zero and distinct. */
    for (int i = 0; i < KSLOTS; i++) {
        unsigned char *p = atomic_load(&slots[i]);
        if (p != NULL) {
            assert_true(pattern_ok(p));
            assert_int_equal(mp_shared_free(p), 0);
        }
    }
    enum { FRESH = 600 };
    unsigned char *fresh[FRESH];
    for (int i = 0; i < FRESH; i++) {
        size_t n = 1 + rand_r(&seed) % 1100;
        fresh[i] = mp_shared_alloc(n);
        assert_non_null(fresh[i]);
        assert_true(all_zero(fresh[i], n));
        memset(fresh[i], pattern_of(fresh[i]), mp_shared_size(fresh[i]));
    }
    for (int i = 0; i < FRESH; i++) {
        assert_true(pattern_ok(fresh[i]));
        assert_int_equal(mp_shared_free(fresh[i]), 0);
    }
    assert_int_equal(mp_shared_free(slots), 0);
}

/*
 * The same with large blocks from mp_shared_alloc_uninit, which are kept
 * for reuse and taken back without the lock, mixed with zeroed large
 * blocks (which must never get a kept block's contents).  A live block
 * carries LIVE ^ stamp in its first word and the stamp in its last, the
 * stamp unique to the allocation: a block handed out twice shows as a live
 * block at allocation (exit 2) or as two slots with one stamp at the end.
 */
enum { USLOTS = 48, UKILLS = 24 };
#define LIVE 0x11fe11fe11fe11feull

static size_t uninit_size(unsigned *seed)
{
    unsigned r = rand_r(seed) % 8;
    if (r == 0) /* the slots for blocks above 1 MiB */
        return ((size_t)1 << 20) + 1 + rand_r(seed) % ((size_t)3 << 20);
    return (size_t)32769 + rand_r(seed) % (((size_t)1 << 20) - 32768);
}

static bool live_ok(const uint64_t *p, size_t n)
{
    return n != 0 && (p[0] ^ p[n / 8 - 1]) == LIVE;
}

static _Noreturn void uninit_worker(_Atomic(void *) *slots, unsigned seed)
{
    uint64_t stamp = (uint64_t)getpid() << 32;
    for (;;) {
        unsigned i = rand_r(&seed) % USLOTS;
        uint64_t *p = atomic_exchange(&slots[i], NULL);
        if (p != NULL) {
            if (!live_ok(p, mp_shared_size(p)))
                _exit(2);
            p[0] = 0; /* no longer live */
            if (mp_shared_free(p) != 0)
                _exit(3);
            continue;
        }
        bool zeroed = rand_r(&seed) % 8 == 0;
        size_t n = zeroed ? (size_t)100000 : uninit_size(&seed);
        p = zeroed ? mp_shared_alloc(n) : mp_shared_alloc_uninit(n);
        if (p == NULL)
            _exit(4);
        size_t words = mp_shared_size(p) / 8;
        if (words < n / 8 || (zeroed && !all_zero((unsigned char *)p, n)) ||
            (p[0] ^ p[words - 1]) == LIVE)
            _exit(2);
        stamp++;
        p[words - 1] = stamp;
        p[0] = LIVE ^ stamp;
        void *expected = NULL;
        if (!atomic_compare_exchange_strong(&slots[i], &expected, p)) {
            p[0] = 0;
            if (mp_shared_free(p) != 0)
                _exit(5);
        }
    }
}

static void test_killed_at_random_uninit(void **state)
{
    _Atomic(void *) *slots = mp_shared_alloc(USLOTS * sizeof *slots);
    assert_non_null(slots);
    unsigned seed = (unsigned)getpid() * 31u;
    kill_workers_at_random(uninit_worker, slots, &seed, UKILLS);
    /* Every block left is live, with its own stamp. */
    uint64_t stamps[USLOTS];
    int nlive = 0;
    for (int i = 0; i < USLOTS; i++) {
        uint64_t *p = atomic_load(&slots[i]);
        if (p == NULL)
            continue;
        size_t words = mp_shared_size(p) / 8;
        assert_true(live_ok(p, words * 8));
        for (int j = 0; j < nlive; j++)
            assert_true(stamps[j] != p[words - 1]);
        stamps[nlive++] = p[words - 1];
    }
    /* Fresh blocks, kept ones included, never overlap the live ones, and
     * zeroed ones are zero. */
    enum { FRESH = 40 };
    void *fresh[FRESH];
    for (int i = 0; i < FRESH; i++) {
        bool zeroed = i % 4 == 0;
        size_t n = zeroed ? (size_t)100000 : uninit_size(&seed);
        unsigned char *p = zeroed ? mp_shared_alloc(n) : mp_shared_alloc_uninit(n);
        assert_non_null(p);
        if (zeroed)
            assert_true(all_zero(p, n));
        for (int j = 0; j < USLOTS; j++) {
            unsigned char *q = atomic_load(&slots[j]);
            if (q != NULL)
                assert_true(p + mp_shared_size(p) <= q || q + mp_shared_size(q) <= p);
        }
        memset(p, 0x5c, n);
        fresh[i] = p;
    }
    for (int i = 0; i < USLOTS; i++) {
        uint64_t *p = atomic_load(&slots[i]);
        if (p != NULL) {
            assert_true(live_ok(p, mp_shared_size(p)));
            p[0] = 0;
            assert_int_equal(mp_shared_free(p), 0);
        }
    }
    for (int i = 0; i < FRESH; i++)
        assert_int_equal(mp_shared_free(fresh[i]), 0);
    assert_int_equal(mp_shared_free(slots), 0);
}

/*
 * Two threads hand kept blocks to each other through a mailbox and both
 * allocate and free them, so the lock-free slots are used from threads of
 * one process (what ThreadSanitizer can check).
 */
enum { TBOX = 8, TROUNDS = 3000 };

struct thand {
    _Atomic(void *) *box; /* TBOX slots, shared by the threads */
    unsigned seed;
    int bad;
};

static void *thand_run(void *arg)
{
    struct thand *h = arg;
    unsigned seed = h->seed;
    for (int r = 0; r < TROUNDS; r++) {
        unsigned i = rand_r(&seed) % TBOX;
        uint64_t *p = atomic_exchange(&h->box[i], NULL);
        if (p != NULL) {
            size_t words = mp_shared_size(p) / 8;
            if (words == 0 || (p[0] ^ p[words - 1]) != LIVE)
                h->bad = 1;
            p[0] = 0;
            if (mp_shared_free(p) != 0)
                h->bad = 1;
        }
        size_t n = (size_t)65536 * (1 + rand_r(&seed) % 3);
        p = mp_shared_alloc_uninit(n);
        if (p == NULL || mp_shared_size(p) != n || (p[0] ^ p[n / 8 - 1]) == LIVE) {
            h->bad = 1;
            break;
        }
        p[n / 8 - 1] = (uint64_t)r;
        p[0] = LIVE ^ (uint64_t)r;
        void *expected = NULL;
        if (!atomic_compare_exchange_strong(&h->box[i], &expected, p)) {
            p[0] = 0;
            if (mp_shared_free(p) != 0)
                h->bad = 1;
        }
    }
    return NULL;
}

static void test_uninit_threads(void **state)
{
    static _Atomic(void *) box[TBOX];
    struct thand h[2] = {{box, 7u, 0}, {box, 8u, 0}};
    pthread_t t[2];
    mp__heap_trim(); /* no kept block of an earlier test */
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, thand_run, &h[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(h[0].bad + h[1].bad, 0);
    for (int i = 0; i < TBOX; i++) {
        void *p = atomic_exchange(&box[i], NULL);
        if (p != NULL)
            assert_int_equal(mp_shared_free(p), 0);
    }
}

/* Large blocks from mp_shared_alloc_uninit are kept for reuse, unzeroed;
 * mp_shared_alloc's stay zeroed; a second free is seen either way. */
static void test_alloc_uninit(void **state)
{
    size_t n = (size_t)1 << 20;
    mp__heap_trim(); /* forget what earlier tests left kept */
    unsigned char *a = mp_shared_alloc_uninit(n);
    assert_non_null(a);
    assert_true(mp_shared_size(a) >= n);
    memset(a, 0xab, n);
    assert_int_equal(mp_shared_free(a), 0);
    assert_int_equal(mp_shared_size(a), 0);
    assert_int_equal(mp_shared_free(a), MP_EINVAL);
    unsigned char *z = mp_shared_alloc(n);
    assert_non_null(z);
    assert_true(all_zero(z, n));
    unsigned char *b = mp_shared_alloc_uninit(n);
    assert_ptr_equal(b, a); /* the kept block, its pages still mapped */
    assert_int_equal(mp_shared_free(b), 0);
    assert_int_equal(mp_shared_free(z), 0);
    unsigned char *small = mp_shared_alloc_uninit(100);
    assert_non_null(small);
    assert_true(all_zero(small, 100));
    assert_int_equal(mp_shared_free(small), 0);
    /* Beyond the reuse size: an ordinary block. */
    unsigned char *big = mp_shared_alloc_uninit((size_t)8 << 20);
    assert_non_null(big);
    assert_int_equal(mp_shared_free(big), 0);
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
        cmocka_unit_test_setup_teardown(test_small_blocks, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_bad_frees, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_large_blocks_coalesce, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_huge_block, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_shared_between_processes, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_churn, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_killed_allocator, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_cache_fork_reset, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_cache_cross_process_free, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_killed_at_random, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_killed_at_random_uninit, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_uninit_threads, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_alloc_uninit, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_no_dev_shm_entry, mpt_setup, mpt_teardown),
    };
    return cmocka_run_group_tests_name(MP_TEST_NAME, tests, NULL, NULL);
}
