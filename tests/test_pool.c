/*
 * test_pool.c: Pool and ThreadPool (pool.h).
 *
 * Tasks run in worker processes: they report only through their results
 * and through counters in shared memory (mp_shared_alloc).  Every test runs
 * in the leak fixture: no fd, child or /dev/shm entry may be left.  The
 * tests named *_slow are built by test_pool_slow.c (suite "slow").
 */
#include "internal/mp.h"
#include "internal/pool.h"
#include "internal/popen.h"
#include "mptest.h"

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
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
    signal(SIGINT, SIG_DFL);
    mpt_leak_end();
    return 0;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static double now(void)
{
    return mp__now();
}

/* Both kinds of pool, for tests that run on each. */
static mp_pool *make_pool(bool threads, int n)
{
    mp_pool *p = threads ? mp_thread_pool_new(.processes = n) : mp_pool_new(.processes = n);
    assert_non_null(p);
    return p;
}

static void finish_pool(mp_pool *p)
{
    assert_int_equal(mp_pool_close(p), 0);
    assert_int_equal(mp_pool_join(p, MP_FOREVER), 0);
    mp_pool_free(p);
}

/* ---- tasks --------------------------------------------------------------- */

static int sq(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    int64_t x = *(const int64_t *)in;
    *(int64_t *)out = x * x + (arg != NULL ? *(const int64_t *)arg : 0);
    return 0;
}

/* Fails on multiples of 5 with -(100 + x) and a message. */
static int fail5(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    int64_t x = *(const int64_t *)in;
    if (x % 5 == 0) {
        mp_pool_set_error("item %lld is a multiple of five", (long long)x);
        return (int)-(100 + x);
    }
    *(int64_t *)out = x + 1;
    return 0;
}

/* Kills its own worker on the item equal to *arg. */
static int killer(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    int64_t x = *(const int64_t *)in;
    if (arg != NULL && x == *(const int64_t *)arg)
        raise(SIGKILL);
    *(int64_t *)out = x * 3;
    return 0;
}

/* Sleeps x milliseconds, returns its pid. */
static int nap(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    int64_t ms = *(const int64_t *)in;
    sleep_s((double)ms / 1000);
    if (out_size >= sizeof(int64_t))
        *(int64_t *)out = getpid();
    return 0;
}

static int getpid_task(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    *(int64_t *)out = getpid();
    return 0;
}

static int tid_task(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    *(int64_t *)out = (int64_t)gettid();
    return 0;
}

static int add3(const void *const *args, void *out, size_t out_size, void *arg)
{
    *(int64_t *)out = *(const int64_t *)args[0] + *(const int32_t *)args[1] * 1000 +
                      *(const int8_t *)args[2];
    return 0;
}

/* Fails with a message of 5000 + x bytes: "long:", zeros, then "7". */
static int long_msg(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    int64_t x = *(const int64_t *)in;
    mp_pool_set_error("long:%0*d", (int)(4995 + x), 7);
    return -9;
}

static int long_msg_bytes(const void *in, size_t n, mp_pool_out *out, void *arg)
{
    mp_pool_set_error("long:%0*d", (int)(4995 + n), 7);
    return -9;
}

/* Bytes: output the input reversed, repeated (size % 3 + 1) times. */
static int rev_bytes(const void *in, size_t n, mp_pool_out *out, void *arg)
{
    const char *s = in;
    for (size_t k = 0; k < n % 3 + 1; k++)
        for (size_t i = 0; i < n; i++)
            if (mp_pool_out_write(out, &s[n - 1 - i], 1) != 0)
                return -ENOMEM;
    return 0;
}

static int echo_bytes(const void *in, size_t n, mp_pool_out *out, void *arg)
{
    if (n == 4 && memcmp(in, "fail", 4) == 0) {
        mp_pool_set_error("asked to fail");
        return -42;
    }
    if (n == 4 && memcmp(in, "kill", 4) == 0)
        raise(SIGKILL);
    if (n == 5 && memcmp(in, "sleep", 5) == 0)
        sleep_s(10);
    if (n == 5 && memcmp(in, "nap02", 5) == 0)
        sleep_s(0.2);
    void *p = mp_pool_out_reserve(out, n);
    if (p == NULL && n > 0)
        return -ENOMEM;
    memcpy(p, in, n);
    return 0;
}

static int big_bytes(const void *in, size_t n, mp_pool_out *out, void *arg)
{
    size_t len = *(const size_t *)in;
    char *p = mp_pool_out_reserve(out, len);
    if (p == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < len; i++)
        p[i] = (char)(i * 7 + len);
    return 0;
}

static int init_count(void *arg, size_t size)
{
    if (size != sizeof(uint64_t *))
        return -1;
    uint64_t *counter = *(uint64_t **)arg;
    __atomic_fetch_add(counter, 1, __ATOMIC_SEQ_CST);
    return 0;
}

static int init_fail(void *arg, size_t size)
{
    return -5;
}

/* ---- construction ------------------------------------------------------- */

static void count_cb(const void *res, size_t size, void *arg);
static int gen_next(void *ctx, const void **data, size_t *size);
#define count_cb_decl count_cb
#define gen_next_decl gen_next

static void test_new_bad_args(void **state)
{
    assert_null(mp_pool_new(.processes = -1));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_pool_new(.processes = 100000));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_pool_new(.initarg_size = 4));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_pool_new(.initializer = (mp_pool_init_fn)(uintptr_t)0x1000));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_thread_pool_new(.processes = -3));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    /* Invalid handles. */
    assert_int_equal(mp_pool_close(NULL), MP_EINVAL);
    assert_int_equal(mp_pool_terminate(NULL), MP_EINVAL);
    assert_int_equal(mp_pool_join(NULL, 0), MP_EINVAL);
    assert_int_equal(mp_pool_processes(NULL), MP_EINVAL);
    mp_pool_free(NULL);
    mp_async_result_free(NULL);
    mp_imap_free(NULL);
    assert_int_equal(mp_async_result_get(NULL, 0, NULL, NULL), MP_EINVAL);
    assert_int_equal(mp_async_result_ready(NULL), MP_EINVAL);
    assert_int_equal(mp_imap_next(NULL, 0, NULL, NULL), MP_EINVAL);
    /* The default is one worker per cpu. */
    mp_pool *p = mp_pool_new();
    assert_non_null(p);
    assert_int_equal(mp_pool_processes(p), mp_cpu_count());
    finish_pool(p);
}

static void test_chunksize_rule(void **state)
{
    for (int nw = 1; nw <= 5; nw += 2) {
        mp_pool *p = mp_thread_pool_new(.processes = nw);
        assert_non_null(p);
        for (size_t n = 0; n < 200; n += 7) {
            size_t per = 4 * (size_t)nw;
            size_t want = n / per + (n % per ? 1 : 0);
            assert_int_equal(mp_pool_chunksize(p, n), want);
        }
        finish_pool(p);
    }
}

/* A task that tries to make a pool: workers are daemonic processes, which
 * may not have children (Python's AssertionError). */
static int nested_pool(const void *in, size_t n, mp_pool_out *out, void *arg)
{
    mp_pool *p = mp_pool_new(.processes = 1);
    int code = p == NULL ? mp_last_error() : 0;
    mp_pool_free(p);
    /* A thread pool is fine in a worker. */
    mp_pool *t = mp_thread_pool_new(.processes = 1);
    int tcode = t == NULL ? mp_last_error() : 0;
    mp_pool_free(t);
    int codes[2] = {code, tcode};
    return mp_pool_out_write(out, codes, sizeof codes);
}

static void test_new_in_worker_and_ctx(void **state)
{
    assert_null(mp_pool_new(.ctx = (mp_context *)(uintptr_t)0x1000));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    mp_pool *p = make_pool(false, 1);
    int codes[2] = {1, 1};
    size_t len;
    mp_async_result *r = mp_pool_apply_async(p, nested_pool, NULL, 0);
    assert_int_equal(mp_async_result_get_into(r, MP_FOREVER, codes, sizeof codes, &len), 0);
    mp_async_result_free(r);
    assert_int_equal(codes[0], MP_EINVAL);
    assert_int_equal(codes[1], 0);
    finish_pool(p);
    /* The task-side API outside a task, and with bad arguments. */
    mp_pool_set_error("not in a task");
    assert_int_equal(mp_pool_out_write(NULL, "x", 1), MP_EINVAL);
    assert_null(mp_pool_out_reserve(NULL, 1));
}

/* ---- map ------------------------------------------------------------------ */

static void check_map_serial(mp_pool *p)
{
    static const size_t sizes[] = {0, 1, 2, 3, 7, 8, 9, 31, 100, 1000, 10007};
    static const size_t css[] = {0, 1, 2, 3, 7, 64, 5000};
    for (size_t a = 0; a < sizeof sizes / sizeof *sizes; a++) {
        size_t n = sizes[a];
        int64_t *in = malloc((n + 1) * sizeof *in);
        int64_t *out = malloc((n + 1) * sizeof *out);
        int *st = malloc((n + 1) * sizeof *st);
        for (size_t i = 0; i < n; i++)
            in[i] = (int64_t)i * 3 - 50;
        for (size_t b = 0; b < sizeof css / sizeof *css; b++) {
            memset(out, 0xab, (n + 1) * sizeof *out);
            memset(st, 0x55, (n + 1) * sizeof *st);
            assert_int_equal(mp_pool_map(p, sq, in, sizeof *in, n, out, sizeof *out,
                                         .chunksize = css[b], .status = st),
                             0);
            for (size_t i = 0; i < n; i++) {
                assert_int_equal(out[i], in[i] * in[i]);
                assert_int_equal(st[i], 0);
            }
            int64_t canary;
            memset(&canary, 0xab, sizeof canary);
            assert_memory_equal(&out[n], &canary, sizeof canary);
        }
        free(in);
        free(out);
        free(st);
    }
}

static void test_map_serial(void **state)
{
    mp_pool *p = make_pool(false, 3);
    check_map_serial(p);
    finish_pool(p);
}

static void test_map_serial_threads(void **state)
{
    mp_pool *p = make_pool(true, 3);
    check_map_serial(p);
    finish_pool(p);
}

static void test_map_shared_and_arg(void **state)
{
    mp_pool *p = make_pool(false, 2);
    size_t n = 5000;
    int64_t *in = mp_shared_alloc(n * sizeof *in);
    int64_t *out = mp_shared_alloc(n * sizeof *out);
    assert_non_null(in);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++)
        in[i] = (int64_t)i;
    int64_t extra = 7;
    assert_int_equal(mp_pool_map(p, sq, in, sizeof *in, n, out, sizeof *out, .arg = &extra,
                                 .arg_size = sizeof extra),
                     0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(out[i], (int64_t)(i * i) + 7);
    /* A map for side effects only: no outputs. */
    assert_int_equal(mp_pool_map(p, sq, in, sizeof *in, 0, NULL, 0), 0);
    mp_shared_free(in);
    mp_shared_free(out);
    finish_pool(p);
}

static void check_map_errors(mp_pool *p)
{
    size_t n = 103;
    int64_t in[103], out[103];
    int st[103];
    for (size_t i = 0; i < n; i++)
        in[i] = (int64_t)i + 1;
    /* Items 4, 9, 14, ... (values 5, 10, 15 ...) fail; the first is item 4. */
    int r = mp_pool_map(p, fail5, in, sizeof *in, n, out, sizeof *out, .chunksize = 4,
                        .status = st);
    assert_int_equal(r, -105);
    assert_string_equal(mp_pool_error_message(), "item 5 is a multiple of five");
    for (size_t i = 0; i < n; i++) {
        if (in[i] % 5 == 0) {
            assert_int_equal(st[i], (int)-(100 + in[i]));
        } else {
            assert_int_equal(st[i], 0);
            assert_int_equal(out[i], in[i] + 1);
        }
    }
    /* The pool goes on working. */
    assert_int_equal(mp_pool_map(p, sq, in, sizeof *in, n, out, sizeof *out), 0);
    assert_int_equal(out[10], in[10] * in[10]);
    assert_string_equal(mp_pool_error_message(), "");
}

static void test_map_errors(void **state)
{
    mp_pool *p = make_pool(false, 3);
    check_map_errors(p);
    finish_pool(p);
    p = make_pool(true, 3);
    check_map_errors(p);
    finish_pool(p);
}

static void test_map_bad_args(void **state)
{
    mp_pool *p = make_pool(false, 2);
    int64_t in[4] = {1, 2, 3, 4}, out[4];
    assert_int_equal(mp_pool_map(NULL, sq, in, 8, 4, out, 8), MP_EINVAL);
    assert_int_equal(mp_pool_map(p, NULL, in, 8, 4, out, 8), MP_EINVAL);
    assert_int_equal(mp_pool_map(p, sq, in, 0, 4, out, 8), MP_EINVAL);
    assert_int_equal(mp_pool_map(p, sq, NULL, 8, 4, out, 8), MP_EINVAL);
    assert_int_equal(mp_pool_map(p, sq, in, 8, 4, NULL, 8), MP_EINVAL);
    assert_int_equal(mp_pool_map(p, sq, in, 8, SIZE_MAX / 2, out, 8), MP_EINVAL);
    assert_int_equal(mp_pool_map(p, sq, in, 8, 4, out, 8, .arg_size = 3), MP_EINVAL);
    assert_int_equal(mp_pool_map(p, (mp_pool_fn)(uintptr_t)0x1000, in, 8, 4, out, 8),
                     MP_EINVAL);
    assert_int_equal(mp_pool_map(p, sq, in, 8, 4, out, 8, .callback = count_cb_decl),
                     MP_EINVAL);
    assert_null(mp_pool_map_async(p, sq, NULL, 8, 4, out, 8));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_pool_imap(p, sq, in, 8, 4, 8, .next_input = gen_next_decl));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_pool_imap(p, sq, NULL, 8, 1, 8));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_pool_imap(p, sq, NULL, 0, 0, 8));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_int_equal(mp_pool_apply(p, echo_bytes, NULL, 3, NULL, NULL), MP_EINVAL);
    /* After close: no more tasks (Python's ValueError "Pool not running"). */
    assert_int_equal(mp_pool_join(p, 0), MP_EINVAL); /* still running */
    assert_int_equal(mp_pool_close(p), 0);
    assert_int_equal(mp_pool_close(p), 0);
    assert_int_equal(mp_pool_map(p, sq, in, 8, 4, out, 8), MP_EINVAL);
    assert_null(mp_pool_apply_async(p, echo_bytes, "x", 1));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_int_equal(mp_pool_join(p, -2.0), MP_EINVAL);
    assert_int_equal(mp_pool_join(p, MP_FOREVER), 0);
    assert_int_equal(mp_pool_join(p, MP_FOREVER), 0);
    assert_int_equal(mp_pool_terminate(p), 0);
    mp_pool_free(p);
    /* A freed pool is an invalid handle. */
    assert_int_equal(mp_pool_map(p, sq, in, 8, 4, out, 8), MP_EINVAL);
}

static void test_starmap(void **state)
{
    for (int t = 0; t < 2; t++) {
        mp_pool *p = make_pool(t == 1, 2);
        size_t n = 777;
        int64_t *a = malloc(n * sizeof *a), *out = malloc(n * sizeof *out);
        int32_t *b = mp_shared_alloc(n * sizeof *b);
        int8_t *c = malloc(n);
        for (size_t i = 0; i < n; i++) {
            a[i] = (int64_t)i;
            b[i] = (int32_t)(i % 13);
            c[i] = (int8_t)(i % 7 - 3);
        }
        const void *cols[3] = {a, b, c};
        size_t sizes[3] = {8, 4, 1};
        assert_int_equal(mp_pool_starmap(p, add3, 3, cols, sizes, n, out, sizeof *out,
                                         .chunksize = 10),
                         0);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(out[i], a[i] + b[i] * 1000 + c[i]);
        memset(out, 0, n * sizeof *out);
        mp_async_result *r = mp_pool_starmap_async(p, add3, 3, cols, sizes, n, out,
                                                   sizeof *out);
        assert_non_null(r);
        assert_int_equal(mp_async_result_get(r, MP_FOREVER, NULL, NULL), 0);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(out[i], a[i] + b[i] * 1000 + c[i]);
        mp_async_result_free(r);
        assert_int_equal(mp_pool_starmap(p, add3, 0, cols, sizes, n, out, 8), MP_EINVAL);
        assert_int_equal(mp_pool_starmap(p, add3, 17, cols, sizes, n, out, 8), MP_EINVAL);
        free(a);
        free(out);
        free(c);
        mp_shared_free(b);
        finish_pool(p);
    }
}

/* ---- apply and callbacks ------------------------------------------------------ */

static void test_apply(void **state)
{
    for (int t = 0; t < 2; t++) {
        mp_pool *p = make_pool(t == 1, 2);
        void *out = NULL;
        size_t len = 0;
        assert_int_equal(mp_pool_apply(p, echo_bytes, "hello", 5, &out, &len), 0);
        assert_int_equal(len, 5);
        assert_memory_equal(out, "hello", 5);
        free(out);
        assert_int_equal(mp_pool_apply(p, echo_bytes, NULL, 0, &out, &len), 0);
        assert_int_equal(len, 0);
        free(out);
        assert_int_equal(mp_pool_apply(p, echo_bytes, "hello", 5, NULL, NULL), 0);
        out = (void *)1;
        assert_int_equal(mp_pool_apply(p, echo_bytes, "fail", 4, &out, &len), -42);
        assert_ptr_equal(out, (void *)1);
        assert_string_equal(mp_pool_error_message(), "asked to fail");
        /* Large results and arguments go through arena blocks. */
        size_t big = 1 << 20;
        assert_int_equal(mp_pool_apply(p, big_bytes, &big, sizeof big, &out, &len), 0);
        assert_int_equal(len, big);
        for (size_t i = 0; i < big; i += 4099)
            assert_int_equal(((char *)out)[i], (char)(i * 7 + big));
        free(out);
        char *arg = malloc(300000);
        for (size_t i = 0; i < 300000; i++)
            arg[i] = (char)(i * 13);
        assert_int_equal(mp_pool_apply(p, echo_bytes, arg, 300000, &out, &len), 0);
        assert_int_equal(len, 300000);
        assert_memory_equal(out, arg, 300000);
        free(out);
        free(arg);
        finish_pool(p);
    }
}

struct counters {
    uint64_t ok, err, sum;
    int last_err;
};

static void count_cb(const void *res, size_t size, void *arg)
{
    struct counters *c = arg;
    uint64_t v = 0;
    memcpy(&v, res, size < sizeof v ? size : sizeof v);
    __atomic_fetch_add(&c->ok, 1, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&c->sum, v, __ATOMIC_SEQ_CST);
}

static void count_ecb(int code, const char *msg, void *arg)
{
    struct counters *c = arg;
    c->last_err = code;
    __atomic_fetch_add(&c->err, 1, __ATOMIC_SEQ_CST);
}

static void check_apply_async(mp_pool *p)
{
    enum { N = 3000 };
    struct counters c = {0};
    mp_async_result **rs = malloc(N * sizeof *rs);
    for (uint64_t i = 0; i < N; i++) {
        rs[i] = (i % 100 == 99)
                    ? mp_pool_apply_async(p, echo_bytes, "fail", 4, .callback = count_cb,
                                          .error_callback = count_ecb, .cb_arg = &c)
                    : mp_pool_apply_async(p, echo_bytes, &i, sizeof i, .callback = count_cb,
                                          .error_callback = count_ecb, .cb_arg = &c);
        assert_non_null(rs[i]);
    }
    uint64_t sum = 0;
    for (uint64_t i = 0; i < N; i++) {
        uint64_t v = 0;
        size_t len = 0;
        int r = mp_async_result_get_into(rs[i], MP_FOREVER, &v, sizeof v, &len);
        assert_int_equal(mp_async_result_ready(rs[i]), 1);
        if (i % 100 == 99) {
            assert_int_equal(r, -42);
            assert_string_equal(mp_pool_error_message(), "asked to fail");
            assert_int_equal(mp_async_result_successful(rs[i]), 0);
        } else {
            assert_int_equal(r, 0);
            assert_int_equal(len, sizeof v);
            assert_int_equal(v, i);
            assert_int_equal(mp_async_result_successful(rs[i]), 1);
            sum += i;
            /* get again: the same result, copied anew. */
            void *d = NULL;
            size_t dl = 0;
            assert_int_equal(mp_async_result_get(rs[i], 0, &d, &dl), 0);
            assert_int_equal(dl, sizeof v);
            assert_memory_equal(d, &i, sizeof i);
            free(d);
            char tiny[2];
            assert_int_equal(mp_async_result_get_into(rs[i], 0, tiny, sizeof tiny, &len),
                             MP_ETOOSHORT);
            assert_int_equal(len, sizeof v);
        }
        mp_async_result_free(rs[i]);
    }
    free(rs);
    /* Callbacks ran once each, before get returned. */
    assert_int_equal(c.ok, N - N / 100);
    assert_int_equal(c.err, N / 100);
    assert_int_equal(c.sum, sum);
    assert_int_equal(c.last_err, -42);
}

static void test_apply_async(void **state)
{
    mp_pool *p = make_pool(false, 3);
    check_apply_async(p);
    finish_pool(p);
    p = make_pool(true, 3);
    check_apply_async(p);
    finish_pool(p);
}

/* A callback that calls join and free on its own pool: both refused. */
struct self_ctx {
    mp_pool *pool;
    int join_code;
    int called;
};

static void self_cb(const void *res, size_t size, void *arg)
{
    struct self_ctx *c = arg;
    c->join_code = mp_pool_join(c->pool, 0);
    mp_pool_free(c->pool); /* a no-op on the pool's own thread */
    /* New work from a callback is fine (Python allows it). */
    mp_async_result *r = mp_pool_apply_async(c->pool, echo_bytes, "x", 1);
    mp_async_result_free(r);
    c->called++;
}

static void test_callback_self(void **state)
{
    mp_pool *p = make_pool(false, 2);
    struct self_ctx c = {.pool = p, .join_code = 1};
    mp_async_result *r = mp_pool_apply_async(p, echo_bytes, "y", 1, .callback = self_cb,
                                             .cb_arg = &c);
    assert_int_equal(mp_async_result_get(r, MP_FOREVER, NULL, NULL), 0);
    mp_async_result_free(r);
    assert_int_equal(c.called, 1);
    assert_int_equal(c.join_code, MP_EINVAL);
    finish_pool(p);
}

static void test_async_timeout(void **state)
{
    mp_pool *p = make_pool(false, 2);
    mp_async_result *r = mp_pool_apply_async(p, echo_bytes, "nap02", 5);
    assert_non_null(r);
    double t0 = now();
    assert_int_equal(mp_async_result_get(r, 0.05, NULL, NULL), MP_ETIMEDOUT);
    assert_true(now() - t0 >= 0.05);
    assert_true(now() - t0 < 3);
    assert_int_equal(mp_async_result_ready(r), 0);
    assert_int_equal(mp_async_result_successful(r), MP_EINVAL);
    assert_int_equal(mp_async_result_wait(r, 0), MP_ETIMEDOUT);
    assert_int_equal(mp_async_result_wait(r, NAN), MP_EINVAL);
    assert_int_equal(mp_async_result_wait(r, MP_FOREVER), 0);
    assert_int_equal(mp_async_result_ready(r), 1);
    void *d;
    size_t n;
    assert_int_equal(mp_async_result_get(r, 0, &d, &n), 0);
    assert_int_equal(n, 5);
    free(d);
    mp_async_result_free(r);
    /* An imap and a result are not the same kind of handle. */
    assert_int_equal(mp_imap_next((mp_imap *)r, 0, NULL, NULL), MP_EINVAL);
    finish_pool(p);
}

static void map_cb(const void *res, size_t size, void *arg)
{
    struct counters *c = arg;
    const int64_t *out = res;
    c->sum = 0;
    for (size_t i = 0; i < size / sizeof *out; i++)
        c->sum += (uint64_t)out[i];
    __atomic_fetch_add(&c->ok, 1, __ATOMIC_SEQ_CST);
}

static void test_map_async(void **state)
{
    for (int t = 0; t < 2; t++) {
        mp_pool *p = make_pool(t == 1, 2);
        struct counters c = {0};
        size_t n = 500;
        int64_t in[500], out[500];
        uint64_t want = 0;
        for (size_t i = 0; i < n; i++) {
            in[i] = (int64_t)i;
            want += i * i;
        }
        mp_async_result *r = mp_pool_map_async(p, sq, in, sizeof *in, n, out, sizeof *out,
                                               .callback = map_cb, .error_callback = count_ecb,
                                               .cb_arg = &c);
        assert_non_null(r);
        /* The inputs were copied: changing them now changes nothing. */
        memset(in, 0, sizeof in);
        size_t items = 0;
        assert_int_equal(mp_async_result_get(r, MP_FOREVER, NULL, &items), 0);
        assert_int_equal(items, n);
        assert_int_equal(c.ok, 1);
        assert_int_equal(c.err, 0);
        assert_int_equal(c.sum, want);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(out[i], (int64_t)(i * i));
        mp_async_result_free(r);
        /* Failure: the error callback, once, with the first error. */
        for (size_t i = 0; i < n; i++)
            in[i] = (int64_t)i + 1;
        r = mp_pool_map_async(p, fail5, in, sizeof *in, n, out, sizeof *out,
                              .callback = map_cb, .error_callback = count_ecb, .cb_arg = &c);
        assert_int_equal(mp_async_result_wait(r, MP_FOREVER), 0);
        assert_int_equal(mp_async_result_successful(r), 0);
        assert_int_equal(mp_async_result_get(r, 0, NULL, NULL), -105);
        assert_int_equal(c.ok, 1);
        assert_int_equal(c.err, 1);
        assert_int_equal(c.last_err, -105);
        mp_async_result_free(r);
        /* An empty map is ready at once and calls its callback. */
        r = mp_pool_map_async(p, sq, in, sizeof *in, 0, out, sizeof *out, .callback = map_cb,
                              .cb_arg = &c);
        assert_int_equal(mp_async_result_get(r, MP_FOREVER, NULL, NULL), 0);
        assert_int_equal(c.ok, 2);
        mp_async_result_free(r);
        finish_pool(p);
    }
}

static void test_map_bytes(void **state)
{
    for (int t = 0; t < 2; t++) {
        mp_pool *p = make_pool(t == 1, 3);
        size_t n = 300;
        mp_pool_bytes *in = calloc(n, sizeof *in), *out = calloc(n, sizeof *out);
        int *st = calloc(n, sizeof *st);
        for (size_t i = 0; i < n; i++) {
            in[i].size = i % 50;
            in[i].data = malloc(in[i].size + 1);
            for (size_t k = 0; k < in[i].size; k++)
                ((char *)in[i].data)[k] = (char)('a' + (i + k) % 26);
        }
        static const size_t css[] = {0, 1, 7, 300};
        for (size_t b = 0; b < 4; b++) {
            assert_int_equal(mp_pool_map_bytes(p, rev_bytes, in, n, out, .chunksize = css[b],
                                               .status = st),
                             0);
            for (size_t i = 0; i < n; i++) {
                size_t m = in[i].size;
                assert_int_equal(st[i], 0);
                assert_int_equal(out[i].size, m * (m % 3 + 1));
                for (size_t k = 0; k < out[i].size; k++)
                    assert_int_equal(((char *)out[i].data)[k],
                                     ((char *)in[i].data)[m - 1 - k % m]);
                free(out[i].data);
            }
        }
        /* Failures: per item codes; the others still done. */
        mp_pool_bytes fin[3] = {{"ab", 2}, {"fail", 4}, {"xyz", 3}}, fout[3];
        int fst[3];
        assert_int_equal(mp_pool_map_bytes(p, echo_bytes, fin, 3, fout, .status = fst), -42);
        assert_int_equal(fst[0], 0);
        assert_int_equal(fst[1], -42);
        assert_int_equal(fst[2], 0);
        assert_int_equal(fout[2].size, 3);
        assert_memory_equal(fout[2].data, "xyz", 3);
        for (int i = 0; i < 3; i++)
            free(fout[i].data);
        /* Async. */
        mp_async_result *r = mp_pool_map_bytes_async(p, echo_bytes, fin, 1, fout);
        assert_int_equal(mp_async_result_get(r, MP_FOREVER, NULL, NULL), 0);
        assert_int_equal(fout[0].size, 2);
        free(fout[0].data);
        mp_async_result_free(r);
        assert_int_equal(mp_pool_map_bytes(p, echo_bytes, in, 0, out), 0);
        for (size_t i = 0; i < n; i++)
            free(in[i].data);
        free(in);
        free(out);
        free(st);
        finish_pool(p);
    }
}

/* ---- imap ----------------------------------------------------------------- */

static void check_imap(mp_pool *p)
{
    size_t n = 1000;
    int64_t *in = malloc(n * sizeof *in);
    for (size_t i = 0; i < n; i++)
        in[i] = (int64_t)i;
    static const size_t css[] = {1, 3, 64, 2000};
    for (size_t b = 0; b < 4; b++) {
        mp_imap *it = mp_pool_imap(p, sq, in, sizeof *in, n, sizeof(int64_t),
                                   .chunksize = css[b]);
        assert_non_null(it);
        for (size_t i = 0; i < n; i++) {
            int64_t v = -1;
            size_t idx = 99999;
            assert_int_equal(mp_imap_next(it, MP_FOREVER, &v, &idx), 0);
            assert_int_equal(idx, i);
            assert_int_equal(v, (int64_t)(i * i));
        }
        assert_int_equal(mp_imap_next(it, MP_FOREVER, NULL, NULL), MP_EEOF);
        assert_int_equal(mp_imap_next(it, 0, NULL, NULL), MP_EEOF);
        mp_imap_free(it);

        it = mp_pool_imap_unordered(p, sq, in, sizeof *in, n, sizeof(int64_t),
                                    .chunksize = css[b]);
        assert_non_null(it);
        char *seen = calloc(n, 1);
        for (size_t i = 0; i < n; i++) {
            int64_t v = -1;
            size_t idx = 99999;
            assert_int_equal(mp_imap_next(it, MP_FOREVER, &v, &idx), 0);
            assert_true(idx < n);
            assert_false(seen[idx]);
            seen[idx] = 1;
            assert_int_equal(v, (int64_t)(idx * idx));
        }
        assert_int_equal(mp_imap_next(it, MP_FOREVER, NULL, NULL), MP_EEOF);
        free(seen);
        mp_imap_free(it);
    }
    /* Bytes. */
    mp_pool_bytes bin[4] = {{"one", 3}, {"", 0}, {"fail", 4}, {"four", 4}};
    mp_imap *it = mp_pool_imap_bytes(p, echo_bytes, bin, 4);
    void *d;
    size_t len, idx;
    assert_int_equal(mp_imap_next_bytes(it, MP_FOREVER, &d, &len, &idx), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(d, "one", 3);
    free(d);
    assert_int_equal(mp_imap_next_bytes(it, MP_FOREVER, &d, &len, &idx), 0);
    assert_int_equal(len, 0);
    free(d);
    /* A failed item is reported in its place; iteration goes on. */
    assert_int_equal(mp_imap_next_bytes(it, MP_FOREVER, &d, &len, &idx), -42);
    assert_int_equal(idx, 2);
    assert_string_equal(mp_pool_error_message(), "asked to fail");
    assert_int_equal(mp_imap_next_bytes(it, MP_FOREVER, &d, &len, &idx), 0);
    assert_int_equal(len, 4);
    free(d);
    assert_int_equal(mp_imap_next_bytes(it, MP_FOREVER, &d, &len, &idx), MP_EEOF);
    /* A bytes iterator has no fixed-size next. */
    assert_int_equal(mp_imap_next(it, 0, NULL, NULL), MP_EINVAL);
    mp_imap_free(it);
    /* Freed early: no leak, the pool goes on. */
    it = mp_pool_imap(p, sq, in, sizeof *in, n, sizeof(int64_t));
    int64_t v;
    assert_int_equal(mp_imap_next(it, MP_FOREVER, &v, NULL), 0);
    mp_imap_free(it);
    free(in);
}

static void test_imap(void **state)
{
    mp_pool *p = make_pool(false, 3);
    check_imap(p);
    finish_pool(p);
    p = make_pool(true, 2);
    check_imap(p);
    finish_pool(p);
}

/* Python's imap over an empty list: no item, then StopIteration. */
static void check_imap_empty(mp_pool *p)
{
    int64_t out[1];
    assert_int_equal(mp_pool_map(p, sq, NULL, 8, 0, out, 8), 0);
    for (int unordered = 0; unordered < 2; unordered++) {
        mp_imap *it = mp_pool_imap_opts(p, sq, NULL, 8, 0, 8, unordered,
                                        &(const mp_pool_call_options){0});
        assert_non_null(it);
        assert_int_equal(mp_imap_next(it, MP_FOREVER, out, NULL), MP_EEOF);
        assert_int_equal(mp_imap_next(it, 0, out, NULL), MP_EEOF);
        mp_imap_free(it);
        it = mp_pool_imap_bytes_opts(p, echo_bytes, NULL, 0, unordered,
                                     &(const mp_pool_call_options){0});
        assert_non_null(it);
        void *d = NULL;
        size_t len;
        assert_int_equal(mp_imap_next_bytes(it, 1.0, &d, &len, NULL), MP_EEOF);
        assert_null(d);
        mp_imap_free(it);
    }
    /* An empty input and a lazy one cannot both be given an array. */
    int64_t one = 1;
    assert_null(mp_pool_imap(p, sq, &one, 8, 0, 8, .next_input = gen_next_decl));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    /* The pool goes on working after the empty iterators. */
    mp_imap *it = mp_pool_imap(p, sq, &one, 8, 1, 8);
    assert_int_equal(mp_imap_next(it, MP_FOREVER, out, NULL), 0);
    assert_int_equal(out[0], 1);
    assert_int_equal(mp_imap_next(it, MP_FOREVER, out, NULL), MP_EEOF);
    mp_imap_free(it);
}

static void test_imap_empty(void **state)
{
    mp_pool *p = make_pool(false, 2);
    check_imap_empty(p);
    finish_pool(p);
    p = make_pool(true, 2);
    check_imap_empty(p);
    finish_pool(p);
}

static void assert_long_msg(const char *m, size_t extra)
{
    assert_int_equal(strlen(m), 5000 + extra);
    assert_memory_equal(m, "long:0000", 9);
    assert_int_equal(m[5000 + extra - 1], '7');
}

static char ecb_msg[8192];
static void long_ecb(int code, const char *message, void *cb_arg)
{
    snprintf(ecb_msg, sizeof ecb_msg, "%s", message);
}

/* A task's message is not cut at 255 bytes, by any way it comes back. */
static void check_long_message(mp_pool *p)
{
    int64_t in[6] = {1, 2, 3, 4, 5, 6}, out[6];
    assert_int_equal(mp_pool_map(p, long_msg, in, 8, 6, out, 8, .chunksize = 2), -9);
    assert_long_msg(mp_pool_error_message(), 1);
    /* A short message after a long one replaces it. */
    assert_int_equal(mp_pool_map(p, fail5, in, 8, 6, out, 8), -105);
    assert_string_equal(mp_pool_error_message(), "item 5 is a multiple of five");
    ecb_msg[0] = '\0';
    mp_async_result *r = mp_pool_map_async(p, long_msg, in + 2, 8, 2, out, 8,
                                           .error_callback = long_ecb);
    assert_non_null(r);
    assert_int_equal(mp_async_result_get(r, MP_FOREVER, NULL, NULL), -9);
    assert_long_msg(mp_pool_error_message(), 3);
    assert_long_msg(ecb_msg, 3);
    mp_async_result_free(r);
    assert_int_equal(mp_pool_apply(p, long_msg_bytes, "abc", 3, NULL, NULL), -9);
    assert_long_msg(mp_pool_error_message(), 3);
    mp_imap *it = mp_pool_imap(p, long_msg, in, 8, 6, 8, .chunksize = 4);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(mp_imap_next(it, MP_FOREVER, out, NULL), -9);
        assert_long_msg(mp_pool_error_message(), i + 1);
    }
    assert_int_equal(mp_imap_next(it, MP_FOREVER, out, NULL), MP_EEOF);
    mp_imap_free(it);
    assert_int_equal(mp_pool_map(p, sq, in, 8, 6, out, 8), 0);
    assert_string_equal(mp_pool_error_message(), "");
}

static void test_long_error_message(void **state)
{
    mp_pool *p = make_pool(false, 2);
    check_long_message(p);
    finish_pool(p);
    p = make_pool(true, 2);
    check_long_message(p);
    finish_pool(p);
}

struct gen {
    int64_t next, limit;
    int64_t produced, consumed;
    int64_t max_ahead;
    int fail_at;
    int64_t item;
};

static int gen_next(void *ctx, const void **data, size_t *size)
{
    struct gen *g = ctx;
    if (g->next >= g->limit)
        return 0;
    if (g->fail_at >= 0 && g->next == g->fail_at)
        return -77;
    g->item = g->next++;
    g->produced++;
    if (g->produced - g->consumed > g->max_ahead)
        g->max_ahead = g->produced - g->consumed;
    *data = &g->item;
    *size = sizeof g->item;
    return 1;
}

static void test_imap_lazy_input(void **state)
{
    mp_pool *p = make_pool(false, 2);
    struct gen g = {.limit = 200000, .fail_at = -1};
    size_t window = 16, cs = 4;
    mp_imap *it = mp_pool_imap(p, sq, NULL, sizeof(int64_t), 0, sizeof(int64_t),
                               .next_input = gen_next, .next_ctx = &g, .chunksize = cs,
                               .window = window);
    assert_non_null(it);
    int64_t v;
    size_t idx;
    for (int64_t i = 0; i < g.limit; i++) {
        assert_int_equal(mp_imap_next(it, MP_FOREVER, &v, &idx), 0);
        g.consumed++;
        assert_int_equal(idx, (size_t)i);
        assert_int_equal(v, i * i);
    }
    assert_int_equal(mp_imap_next(it, MP_FOREVER, &v, &idx), MP_EEOF);
    mp_imap_free(it);
    /* The input was never read more than a window ahead. */
    assert_true(g.max_ahead <= (int64_t)(window * cs + cs));

    /* An input that fails: its code once, after the items before it. */
    struct gen f = {.limit = 100, .fail_at = 10};
    it = mp_pool_imap_unordered(p, sq, NULL, sizeof(int64_t), 0, sizeof(int64_t),
                                .next_input = gen_next, .next_ctx = &f);
    for (int i = 0; i < 10; i++)
        assert_int_equal(mp_imap_next(it, MP_FOREVER, &v, &idx), 0);
    assert_int_equal(mp_imap_next(it, MP_FOREVER, &v, &idx), -77);
    assert_int_equal(mp_imap_next(it, MP_FOREVER, &v, &idx), MP_EEOF);
    mp_imap_free(it);
    /* Items of the wrong size end the input with MP_EINVAL. */
    struct gen w = {.limit = 5, .fail_at = -1};
    it = mp_pool_imap(p, sq, NULL, 4, 0, sizeof(int64_t), .next_input = gen_next,
                      .next_ctx = &w);
    assert_int_equal(mp_imap_next(it, MP_FOREVER, &v, &idx), MP_EINVAL);
    assert_int_equal(mp_imap_next(it, MP_FOREVER, &v, &idx), MP_EEOF);
    mp_imap_free(it);
    finish_pool(p);
}

/*
 * Python: it = imap(...); close(); join(); list(it) works, because join
 * returns once every task ran.  The pool keeps the results meanwhile: none
 * may need waiting for after join.
 */
static void imap_after_join(bool threads, bool unordered)
{
    mp_pool *p = make_pool(threads, 2);
    struct gen g = {.limit = 3000, .fail_at = -1};
    mp_pool_call_options o = {.next_input = gen_next,
                              .next_ctx = &g,
                              .window = 8,
                              .chunksize = 3};
    mp_imap *it = mp_pool_imap_opts(p, sq, NULL, sizeof(int64_t), 0, sizeof(int64_t),
                                    unordered, &o);
    assert_non_null(it);
    int64_t v;
    size_t idx;
    /* Take a few, leaving a chunk half returned. */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(mp_imap_next(it, MP_FOREVER, &v, &idx), 0);
        if (!unordered)
            assert_int_equal(idx, (size_t)i);
    }
    assert_int_equal(mp_pool_close(p), 0);
    assert_int_equal(mp_pool_join(p, MP_FOREVER), 0);
    assert_int_equal(g.produced, 3000);
    char *seen = calloc(3000, 1);
    size_t got = 4;
    while (mp_imap_next(it, 0, &v, &idx) == 0) {
        if (!unordered)
            assert_int_equal(idx, got);
        assert_false(seen[idx]);
        seen[idx] = 1;
        assert_int_equal(v, (int64_t)(idx * idx));
        got++;
    }
    assert_int_equal(got, 3000);
    assert_int_equal(mp_imap_next(it, 0, &v, &idx), MP_EEOF);
    free(seen);
    mp_imap_free(it);
    mp_pool_free(p);
}

static void test_imap_after_join(void **state)
{
    for (int t = 0; t < 4; t++)
        imap_after_join(t >= 2, t % 2 == 1);
}

/*
 * Issue #6: join drained the iterator's input, and the iterator told the
 * pool its input had ended before it published the last chunks.  If the
 * worker handler then found the queue empty, the workers exited at their
 * next nap's end (1 s), and join returned with the last chunk never run.
 * The hook holds the iterator in that gap, poking the handler, for longer
 * than a nap.
 */
static void hold_before_publish(struct mp_pool *pool)
{
    for (int i = 0; i < 25; i++) {
        mp__pool_poke(pool);
        usleep(100 * 1000);
    }
}

static void test_imap_join_late_publish(void **state)
{
    mp__pool_test_before_last_publish = hold_before_publish;
    imap_after_join(false, false);
    mp__pool_test_before_last_publish = NULL;
}

static void test_imap_timeout(void **state)
{
    mp_pool *p = make_pool(false, 2);
    int64_t ms[2] = {300, 0};
    mp_imap *it = mp_pool_imap(p, nap, ms, sizeof *ms, 2, sizeof(int64_t));
    int64_t v;
    double t0 = now();
    assert_int_equal(mp_imap_next(it, 0.05, &v, NULL), MP_ETIMEDOUT);
    assert_true(now() - t0 >= 0.05);
    assert_int_equal(mp_imap_next(it, MP_FOREVER, &v, NULL), 0);
    assert_int_equal(mp_imap_next(it, MP_FOREVER, &v, NULL), 0);
    assert_int_equal(mp_imap_next(it, 0.01, &v, NULL), MP_EEOF);
    mp_imap_free(it);
    finish_pool(p);
}

/* ---- workers: initializer, maxtasksperchild, death ---------------------------- */

static void test_initializer_once_per_worker(void **state)
{
    for (int t = 0; t < 2; t++) {
        uint64_t *counter = mp_shared_alloc(sizeof *counter);
        mp_pool_options o = {.processes = 3,
                             .initializer = init_count,
                             .initarg = &counter,
                             .initarg_size = sizeof counter};
        mp_pool *p = t ? mp_thread_pool_new_opts(&o) : mp_pool_new_opts(&o);
        assert_non_null(p);
        int64_t in[200], out[200];
        for (int i = 0; i < 200; i++)
            in[i] = i;
        for (int k = 0; k < 5; k++)
            assert_int_equal(mp_pool_map(p, sq, in, 8, 200, out, 8, .chunksize = 1), 0);
        finish_pool(p);
        assert_int_equal(*counter, 3);
        mp_shared_free(counter);
    }
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static size_t distinct(int64_t *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp64);
    size_t d = n > 0;
    for (size_t i = 1; i < n; i++)
        d += v[i] != v[i - 1];
    return d;
}

static void test_maxtasksperchild(void **state)
{
    for (int t = 0; t < 2; t++) {
        uint64_t *counter = mp_shared_alloc(sizeof *counter);
        mp_pool_options o = {.processes = 2,
                             .maxtasksperchild = 2,
                             .initializer = init_count,
                             .initarg = &counter,
                             .initarg_size = sizeof counter};
        mp_pool *p = t ? mp_thread_pool_new_opts(&o) : mp_pool_new_opts(&o);
        assert_non_null(p);
        int64_t in[10], out[10];
        for (int i = 0; i < 10; i++)
            in[i] = i;
        assert_int_equal(mp_pool_map(p, t ? tid_task : getpid_task, in, 8, 10, out, 8,
                                     .chunksize = 1),
                         0);
        /* 10 tasks, 2 per worker: at least 5 workers ran them. */
        assert_true(distinct(out, 10) >= 5);
        finish_pool(p);
        /* Workers are replaced even when there is no more work (Python). */
        assert_true(*counter >= 5);
        mp_shared_free(counter);
    }
}

static void test_initializer_fails(void **state)
{
    for (int t = 0; t < 2; t++) {
        mp_pool *p = t ? mp_thread_pool_new(.processes = 2, .initializer = init_fail)
                       : mp_pool_new(.processes = 2, .initializer = init_fail);
        assert_non_null(p);
        int64_t in[4] = {1, 2, 3, 4}, out[4];
        double t0 = now();
        /* Python restarts the workers forever and hangs; the pool fails. */
        int r = mp_pool_map(p, sq, in, 8, 4, out, 8);
        assert_true(r == -5 || r == MP_EINVAL);
        assert_true(now() - t0 < 10);
        mp_async_result *a = mp_pool_apply_async(p, echo_bytes, "x", 1);
        if (a != NULL) {
            assert_int_equal(mp_async_result_get(a, MP_FOREVER, NULL, NULL), -5);
            mp_async_result_free(a);
        } else {
            assert_int_equal(mp_last_error(), -5);
        }
        assert_int_equal(mp_pool_map(p, sq, in, 8, 4, out, 8), -5);
        finish_pool(p);
    }
}

static int init_crash(void *arg, size_t size)
{
    abort();
}

/* An initializer that crashes: Python restarts workers forever; the pool
 * breaks after three crashes in a row and fails the tasks. */
static void test_initializer_crashes(void **state)
{
    mp_pool *p = mp_pool_new(.processes = 2, .initializer = init_crash);
    assert_non_null(p);
    int64_t in[4] = {1, 2, 3, 4}, out[4];
    double t0 = now();
    int r = mp_pool_map(p, sq, in, 8, 4, out, 8);
    assert_true(r == MP_EWORKERLOST || r == MP_EINVAL);
    assert_true(now() - t0 < 10);
    assert_int_equal(mp_pool_map(p, sq, in, 8, 4, out, 8), MP_EWORKERLOST);
    finish_pool(p);
}

static void test_worker_killed_map(void **state)
{
    mp_pool *p = make_pool(false, 2);
    int64_t in[40], out[40];
    int st[40];
    for (int i = 0; i < 40; i++)
        in[i] = i;
    int64_t victim = 17;
    int r = mp_pool_map(p, killer, in, 8, 40, out, 8, .chunksize = 1, .status = st,
                        .arg = &victim, .arg_size = sizeof victim);
    assert_int_equal(r, MP_EWORKERLOST);
    assert_non_null(strstr(mp_pool_error_message(), "signal 9"));
    for (int i = 0; i < 40; i++) {
        if (i == 17) {
            assert_int_equal(st[i], MP_EWORKERLOST);
        } else {
            assert_int_equal(st[i], 0);
            assert_int_equal(out[i], i * 3);
        }
    }
    /* With chunks of 4, the items of the lost chunk are reported. */
    r = mp_pool_map(p, killer, in, 8, 40, out, 8, .chunksize = 4, .status = st, .arg = &victim,
                    .arg_size = sizeof victim);
    assert_int_equal(r, MP_EWORKERLOST);
    for (int i = 0; i < 40; i++)
        assert_int_equal(st[i], i >= 16 && i < 20 ? MP_EWORKERLOST : 0);
    /* A long map: the victim's worker dies holding a reservation of many
     * items (pool_worker.c); the others run them, only the victim is lost. */
    enum { N = 4000 };
    int64_t *bin = malloc(N * sizeof *bin), *bout = malloc(N * sizeof *bout);
    int *bst = malloc(N * sizeof *bst);
    assert_non_null(bin);
    assert_non_null(bout);
    assert_non_null(bst);
    for (int i = 0; i < N; i++)
        bin[i] = i;
    victim = 1000;
    r = mp_pool_map(p, killer, bin, 8, N, bout, 8, .chunksize = 1, .status = bst,
                    .arg = &victim, .arg_size = sizeof victim);
    assert_int_equal(r, MP_EWORKERLOST);
    for (int i = 0; i < N; i++) {
        assert_int_equal(bst[i], i == 1000 ? MP_EWORKERLOST : 0);
        if (i != 1000)
            assert_int_equal(bout[i], i * 3);
    }
    /* The ring full (forced): the run's unclaimed items fail as lost
     * instead, the others are whole, and the map still completes. */
    mp__pool_requeue_full = true;
    r = mp_pool_map(p, killer, bin, 8, N, bout, 8, .chunksize = 1, .status = bst,
                    .arg = &victim, .arg_size = sizeof victim);
    mp__pool_requeue_full = false;
    assert_int_equal(r, MP_EWORKERLOST);
    int lost = 0, lo = N, hi = -1;
    for (int i = 0; i < N; i++) {
        if (bst[i] == 0) {
            assert_int_equal(bout[i], i * 3);
            continue;
        }
        assert_int_equal(bst[i], MP_EWORKERLOST);
        lost++;
        lo = i < lo ? i : lo;
        hi = i > hi ? i : hi;
    }
    /* The victim and what followed it in its reservation (at most 64). */
    assert_int_equal(bst[1000], MP_EWORKERLOST);
    assert_int_equal(lo, 1000);
    assert_true(lost == hi - lo + 1 && lost <= 64);
    free(bin);
    free(bout);
    free(bst);
    /* The workers were replaced: the pool still has 2 and works.  Each nap
     * outlasts the replacement's start, so the two run on two workers; a
     * spawned replacement takes seconds to start under valgrind. */
    int64_t nap_ms = mpt_valgrind() ? 8000 : 100;
    int64_t pids[2], ms[2] = {nap_ms, nap_ms};
    assert_int_equal(mp_pool_map(p, nap, ms, 8, 2, pids, 8, .chunksize = 1), 0);
    assert_int_equal(distinct(pids, 2), 2);
    finish_pool(p);
}

static void test_worker_killed_async(void **state)
{
    mp_pool *p = make_pool(false, 2);
    struct counters c = {0};
    mp_async_result *r1 = mp_pool_apply_async(p, echo_bytes, "kill", 4, .callback = count_cb,
                                              .error_callback = count_ecb, .cb_arg = &c);
    mp_async_result *r2 = mp_pool_apply_async(p, echo_bytes, "fine", 4, .callback = count_cb,
                                              .error_callback = count_ecb, .cb_arg = &c);
    assert_int_equal(mp_async_result_get(r1, 20, NULL, NULL), MP_EWORKERLOST);
    assert_int_equal(mp_async_result_get(r2, 20, NULL, NULL), 0);
    assert_int_equal(c.err, 1);
    assert_int_equal(c.ok, 1);
    assert_int_equal(c.last_err, MP_EWORKERLOST);
    mp_async_result_free(r1);
    mp_async_result_free(r2);
    /* imap: the lost item in its place, the others fine. */
    mp_pool_bytes in[5] = {{"a", 1}, {"b", 1}, {"kill", 4}, {"d", 1}, {"e", 1}};
    mp_imap *it = mp_pool_imap_bytes(p, echo_bytes, in, 5);
    for (int i = 0; i < 5; i++) {
        void *d = NULL;
        size_t len, idx;
        int r = mp_imap_next_bytes(it, 20, &d, &len, &idx);
        assert_int_equal(idx, (size_t)i);
        assert_int_equal(r, i == 2 ? MP_EWORKERLOST : 0);
        free(d);
    }
    assert_int_equal(mp_imap_next_bytes(it, 20, NULL, NULL, NULL), MP_EEOF);
    mp_imap_free(it);
    finish_pool(p);
}

/* A task that crashes (abort) rather than being killed. */
static int crasher(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    if (*(const int64_t *)in == 3)
        abort();
    *(int64_t *)out = 1;
    return 0;
}

static void test_worker_crash(void **state)
{
    mp_pool *p = make_pool(false, 2);
    int64_t in[8] = {0, 1, 2, 3, 4, 5, 6, 7}, out[8];
    int st[8];
    assert_int_equal(mp_pool_map(p, crasher, in, 8, 8, out, 8, .chunksize = 1, .status = st),
                     MP_EWORKERLOST);
    assert_int_equal(st[3], MP_EWORKERLOST);
    assert_int_equal(st[4], 0);
    finish_pool(p);
}

/* ---- terminate, free, close/join ---------------------------------------------- */

static void test_terminate_running(void **state)
{
    mp_pool *p = make_pool(false, 2);
    struct counters c = {0};
    mp_async_result *r[4];
    for (int i = 0; i < 4; i++)
        r[i] = mp_pool_apply_async(p, echo_bytes, "sleep", 5, .error_callback = count_ecb,
                                   .cb_arg = &c);
    sleep_s(0.2); /* two of them are running */
    double t0 = now();
    assert_int_equal(mp_pool_terminate(p), 0);
    assert_true(now() - t0 < 3);
    assert_int_equal(mpt_count_children(), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(mp_async_result_get(r[i], 5, NULL, NULL), MP_EWORKERLOST);
        mp_async_result_free(r[i]);
    }
    assert_int_equal(mp_pool_join(p, 5), 0);
    assert_int_equal(c.err, 4);
    assert_int_equal(mp_pool_close(p), MP_EINVAL);
    assert_int_equal(mp_pool_terminate(p), 0);
    mp_pool_free(p);
}

static void test_free_without_close(void **state)
{
    mp_pool *p = make_pool(false, 2);
    mp_async_result *r = mp_pool_apply_async(p, echo_bytes, "sleep", 5);
    mp_pool_bytes two[2] = {{"sleep", 5}, {"x", 1}};
    mp_imap *it = mp_pool_imap_bytes(p, echo_bytes, two, 2);
    sleep_s(0.1);
    double t0 = now();
    mp_pool_free(p);
    assert_true(now() - t0 < 3);
    assert_int_equal(mpt_count_children(), 0);
    /* Results survive their pool, failed. */
    assert_int_equal(mp_async_result_get(r, 1, NULL, NULL), MP_EWORKERLOST);
    mp_async_result_free(r);
    assert_int_equal(mp_imap_next_bytes(it, 1, NULL, NULL, NULL), MP_EWORKERLOST);
    mp_imap_free(it);
    /* A thread pool too (the running task finishes first). */
    p = make_pool(true, 2);
    r = mp_pool_apply_async(p, echo_bytes, "nap02", 5);
    sleep_s(0.05);
    mp_pool_free(p);
    assert_int_equal(mp_async_result_get(r, 1, NULL, NULL), 0);
    mp_async_result_free(r);
}

static void test_close_join(void **state)
{
    for (int t = 0; t < 2; t++) {
        mp_pool *p = make_pool(t == 1, 2);
        struct counters c = {0};
        mp_async_result *r[6];
        for (int i = 0; i < 6; i++)
            r[i] = mp_pool_apply_async(p, echo_bytes, "nap02", 5, .callback = count_cb,
                                       .cb_arg = &c);
        assert_int_equal(mp_pool_close(p), 0);
        double t0 = now();
        assert_int_equal(mp_pool_join(p, 0.05), MP_ETIMEDOUT);
        assert_true(now() - t0 >= 0.05);
        assert_int_equal(mp_pool_join(p, MP_FOREVER), 0);
        /* join waited for the tasks and their callbacks. */
        assert_int_equal(c.ok, 6);
        for (int i = 0; i < 6; i++) {
            assert_int_equal(mp_async_result_ready(r[i]), 1);
            assert_int_equal(mp_async_result_get(r[i], 0, NULL, NULL), 0);
            mp_async_result_free(r[i]);
        }
        mp_pool_free(p);
    }
}

static void test_async_free_early(void **state)
{
    mp_pool *p = make_pool(false, 1);
    struct counters c = {0};
    mp_async_result *r = mp_pool_apply_async(p, echo_bytes, "nap02", 5, .callback = count_cb,
                                             .cb_arg = &c);
    mp_async_result *r2 = mp_pool_apply_async(p, echo_bytes, "x", 1, .callback = count_cb,
                                              .cb_arg = &c);
    mp_async_result_free(r2); /* not started: dropped */
    mp_async_result_free(r);  /* running: finishes in the background */
    int64_t in[3] = {1, 2, 3}, out[3];
    assert_int_equal(mp_pool_map(p, sq, in, 8, 3, out, 8), 0);
    finish_pool(p);
    assert_int_equal(c.ok, 0);
}

/* ---- SIGINT ------------------------------------------------------------------- */

static volatile sig_atomic_t got_sigint;

static void on_sigint(int sig)
{
    got_sigint = 1;
}

static void *send_sigint(void *arg)
{
    sleep_s(*(double *)arg);
    kill(getpid(), SIGINT);
    return NULL;
}

static void check_sigint(bool threads)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint; /* no SA_RESTART, as Python installs it */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    got_sigint = 0;
    mp_pool *p = make_pool(threads, 2);
    /* Workers ignore SIGINT: a Ctrl-C to the group does not kill them. */
    int64_t pids[2], ms[2] = {100, 100};
    assert_int_equal(mp_pool_map(p, nap, ms, 8, 2, pids, 8, .chunksize = 1), 0);
    if (!threads)
        for (int i = 0; i < 2; i++)
            kill((pid_t)pids[i], SIGINT);
    /* A long map (200 tasks of 50 ms on 2 workers: 5 s), interrupted. */
    int64_t in[200], out[200];
    for (int i = 0; i < 200; i++)
        in[i] = 50;
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    pthread_t t;
    double delay = 0.3;
    assert_int_equal(pthread_create(&t, NULL, send_sigint, &delay), 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    double t0 = now();
    int r = mp_pool_map(p, nap, in, 8, 200, out, 8, .chunksize = 1);
    double dt = now() - t0;
    pthread_join(t, NULL);
    assert_int_equal(r, -EINTR);
    assert_true(got_sigint);
    assert_true(dt >= 0.25);
    assert_true(dt < 2.5);
    /* The pool is fine: no worker died of the signal. */
    assert_int_equal(mp_pool_map(p, nap, ms, 8, 2, pids, 8, .chunksize = 1), 0);
    signal(SIGINT, SIG_DFL);
    t0 = now();
    finish_pool(p);
    assert_true(now() - t0 < 30); /* the running tasks end; slow under valgrind */
}

static void test_sigint(void **state)
{
    check_sigint(false);
}

static void test_sigint_threads(void **state)
{
    check_sigint(true);
}

/* ---- signals in worker processes ------------------------------------------------- */

/* Raises SIGTERM on item 0: the worker dies of it (issue 16: it used to run
 * with every signal blocked, and the task returned). */
static int raise_term(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    if (*(const int64_t *)in == 0)
        raise(SIGTERM);
    *(int64_t *)out = 1;
    return 0;
}

static void test_task_sigterm(void **state)
{
    mp_pool *p = make_pool(false, 1);
    int64_t in[2] = {0, 1}, out[2] = {0, 0};
    int st[2];
    assert_int_equal(mp_pool_map(p, raise_term, in, 8, 2, out, 8, .chunksize = 1,
                                 .status = st),
                     MP_EWORKERLOST);
    assert_int_equal(st[0], MP_EWORKERLOST);
    assert_int_equal(st[1], 0);
    assert_int_equal(out[1], 1);
    assert_non_null(strstr(mp_pool_error_message(), "SIGTERM"));
    finish_pool(p);
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    alarms++;
}

/* alarm(1), sleep(3): the handler runs after about a second and cuts the
 * sleep short.  Out: the milliseconds slept, or -1 if no alarm came. */
static int alarm_task(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, &old);
    alarms = 0;
    double t0 = mp__now();
    alarm(1);
    sleep(3);
    alarm(0);
    sigaction(SIGALRM, &old, NULL);
    *(int64_t *)out = alarms > 0 ? (int64_t)((mp__now() - t0) * 1000) : -1;
    return 0;
}

static void test_task_sigalrm(void **state)
{
    mp_pool *p = make_pool(false, 1);
    int64_t in = 0, ms = 0;
    assert_int_equal(mp_pool_map(p, alarm_task, &in, 8, 1, &ms, 8), 0);
    assert_true(ms >= 900);
    assert_true(ms < 2900);
    finish_pool(p);
}

/* Out: the worker's blocked signals (bit n-1 for signal n), and whether it
 * ignores SIGINT (bit 63). */
static int mask_task(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    uint64_t bits = mp__sigmask_capture() & ~(UINT64_C(1) << 63);
    struct sigaction sa;
    sigaction(SIGINT, NULL, &sa);
    if (sa.sa_handler == SIG_IGN)
        bits |= UINT64_C(1) << 63;
    memcpy(out, &bits, sizeof bits);
    return 0;
}

#define SIGBIT(s) (UINT64_C(1) << ((s)-1))

/* Workers get the mask of the thread that made the pool, not the pool's
 * own threads' (which block everything), and ignore SIGINT. */
static void test_worker_mask(void **state)
{
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, &old);
    mp_pool *p = make_pool(false, 2);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    uint64_t in[2] = {0, 0}, bits[2] = {0, 0};
    assert_int_equal(mp_pool_map(p, mask_task, in, 8, 2, bits, 8, .chunksize = 1), 0);
    for (int i = 0; i < 2; i++)
        assert_true(bits[i] == (SIGBIT(SIGUSR1) | (UINT64_C(1) << 63)));
    finish_pool(p);
}

/* With no fd left, mp_pool_new says so (it used to report -ENOMEM). */
static void test_new_emfile(void **state)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (mpt_fds_exhaust(0) != 0)
            _exit(2);
        mp_pool *p = mp_pool_new(.processes = 1);
        int err = mp_last_error();
        mpt_fds_restore();
        if (p != NULL)
            _exit(3);
        if (err != -EMFILE)
            _exit(4);
        /* And with fds again it works. */
        p = mp_pool_new(.processes = 1);
        int64_t in = 3, out = 0;
        if (p == NULL || mp_pool_map(p, sq, &in, 8, 1, &out, 8) != 0 || out != 9)
            _exit(5);
        mp_pool_close(p);
        mp_pool_join(p, MP_FOREVER);
        mp_pool_free(p);
        _exit(0);
    }
    assert_int_equal(mpt_wait_status(pid), 0);
}

/* ---- the pool belongs to its creator --------------------------------------------- */

static void test_other_process_refused(void **state)
{
    mp_pool *p = make_pool(false, 2);
    int64_t in[2] = {1, 2}, out[2];
    mp_async_result *r = mp_pool_apply_async(p, echo_bytes, "x", 1);
    pid_t pid = fork();
    if (pid == 0) {
        int bad = 0;
        bad |= mp_pool_map(p, sq, in, 8, 2, out, 8) != MP_EINVAL;
        bad |= mp_async_result_get(r, 0, NULL, NULL) != MP_EINVAL;
        bad |= mp_pool_close(p) != MP_EINVAL;
        mp_pool_free(p); /* a no-op here */
        _exit(bad);
    }
    assert_int_equal(mpt_wait_status(pid), 0);
    assert_int_equal(mp_async_result_get(r, MP_FOREVER, NULL, NULL), 0);
    mp_async_result_free(r);
    assert_int_equal(mp_pool_map(p, sq, in, 8, 2, out, 8), 0);
    finish_pool(p);
}

/* A process that exits with a running pool: the exit function terminates
 * it, and no worker is left behind. */
static mp_pool *exiting_pool; /* reachable at exit: not a leak to LSan */

static int exit_with_pool(void *arg, size_t size)
{
    int fd = *(int *)arg;
    mp_pool *p = exiting_pool = mp_pool_new(.processes = 2);
    if (p == NULL)
        return 2;
    int64_t in[2] = {0, 0}, pids[2];
    if (mp_pool_map(p, nap, in, 8, 2, pids, 8, .chunksize = 1) != 0)
        return 3;
    if (write(fd, pids, sizeof pids) != sizeof pids)
        return 4;
    mp_async_result *r = mp_pool_apply_async(p, echo_bytes, "sleep", 5);
    (void)r;
    return 0;
}

static void test_exit_terminates(void **state)
{
    int fds[2];
    assert_int_equal(mpt_pipe(fds), 0);
    mp_process *proc = mp_process_new(.target = exit_with_pool, .arg = &fds[1],
                                      .arg_size = sizeof fds[1]);
    double t0 = now();
    assert_int_equal(mp_process_start(proc), 0);
    mpt_close(fds[1]);
    int64_t pids[2];
    assert_int_equal(read(fds[0], pids, sizeof pids), (ssize_t)sizeof pids);
    mpt_close(fds[0]);
    assert_int_equal(mp_process_join(proc, 20), 0);
    assert_true(now() - t0 < 8);
    int code = -1;
    assert_int_equal(mp_process_exitcode(proc, &code), 0);
    assert_int_equal(code, 0);
    mp_process_free(proc);
    for (int i = 0; i < 2; i++)
        assert_true(kill((pid_t)pids[i], 0) != 0);
}

/* A process whose pool is running is SIGKILLed: the workers go too
 * (PR_SET_PDEATHSIG), none is left behind. */
static int pool_then_hang(void *arg, size_t size)
{
    int fd = *(int *)arg;
    mp_pool *p = mp_pool_new(.processes = 2);
    if (p == NULL)
        return 2;
    int64_t in[2] = {50, 50}, pids[2];
    if (mp_pool_map(p, nap, in, 8, 2, pids, 8, .chunksize = 1) != 0)
        return 3;
    if (write(fd, pids, sizeof pids) != sizeof pids)
        return 4;
    for (;;)
        pause();
}

/* Alive and not a zombie. */
static bool process_alive(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp != NULL && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

static void test_creator_killed(void **state)
{
    int fds[2];
    assert_int_equal(mpt_pipe(fds), 0);
    mp_process *proc = mp_process_new(.target = pool_then_hang, .arg = &fds[1],
                                      .arg_size = sizeof fds[1]);
    assert_int_equal(mp_process_start(proc), 0);
    mpt_close(fds[1]);
    int64_t pids[2];
    assert_int_equal(read(fds[0], pids, sizeof pids), (ssize_t)sizeof pids);
    mpt_close(fds[0]);
    assert_true(process_alive((pid_t)pids[0]) && process_alive((pid_t)pids[1]));
    assert_int_equal(mp_process_kill(proc), 0);
    assert_int_equal(mp_process_join(proc, 10), 0);
    mp_process_free(proc);
    double t0 = now();
    while ((process_alive((pid_t)pids[0]) || process_alive((pid_t)pids[1])) && now() - t0 < 5)
        sleep_s(0.01);
    assert_false(process_alive((pid_t)pids[0]));
    assert_false(process_alive((pid_t)pids[1]));
}

/* ---- slow: stress ----------------------------------------------------------------- */

/* Kills its worker on every 97th item. */
static int sometimes_killer(const void *in, size_t in_size, void *out, size_t out_size,
                            void *arg)
{
    int64_t x = *(const int64_t *)in;
    if (x % 97 == 96)
        raise(SIGKILL);
    *(int64_t *)out = x + 1;
    return 0;
}

static void test_many_deaths_slow(void **state)
{
    mp_pool *p = make_pool(false, 3);
    size_t n = 3000;
    int64_t *in = malloc(n * sizeof *in), *out = malloc(n * sizeof *out);
    int *st = malloc(n * sizeof *st);
    for (size_t i = 0; i < n; i++)
        in[i] = (int64_t)i;
    for (int round = 0; round < 3; round++) {
        size_t cs = round == 0 ? 1 : round == 1 ? 5 : 0;
        int r = mp_pool_map(p, sometimes_killer, in, 8, n, out, 8, .chunksize = cs,
                            .status = st);
        assert_int_equal(r, MP_EWORKERLOST);
        size_t eff = cs ? cs : mp_pool_chunksize(p, n);
        for (size_t i = 0; i < n; i++) {
            bool chunk_lost = false;
            for (size_t k = i / eff * eff; k < (i / eff + 1) * eff && k < n; k++)
                chunk_lost |= k % 97 == 96;
            if (chunk_lost) {
                assert_int_equal(st[i], MP_EWORKERLOST);
            } else {
                assert_int_equal(st[i], 0);
                assert_int_equal(out[i], (int64_t)i + 1);
            }
        }
    }
    /* apply_async flood with deaths: every result arrives. */
    enum { N = 500 };
    mp_async_result *rs[N];
    for (int i = 0; i < N; i++)
        rs[i] = mp_pool_apply_async(p, echo_bytes, i % 50 == 7 ? "kill" : "ok",
                                    i % 50 == 7 ? 4 : 2);
    for (int i = 0; i < N; i++) {
        assert_int_equal(mp_async_result_get(rs[i], 60, NULL, NULL),
                         i % 50 == 7 ? MP_EWORKERLOST : 0);
        mp_async_result_free(rs[i]);
    }
    free(in);
    free(out);
    free(st);
    finish_pool(p);
}

static void test_terminate_repeatedly_slow(void **state)
{
    for (int round = 0; round < 100; round++) {
        mp_pool *p = make_pool(round % 2 == 1, 3);
        size_t n = 20000;
        int64_t *in = malloc(n * sizeof *in), *out = malloc(n * sizeof *out);
        for (size_t i = 0; i < n; i++)
            in[i] = (int64_t)i;
        mp_async_result *r = mp_pool_map_async(p, sq, in, 8, n, out, 8, .chunksize = 1);
        mp_imap *it = mp_pool_imap(p, sq, in, 8, n, 8);
        int64_t v;
        for (int k = 0; k < 100; k++)
            assert_int_equal(mp_imap_next(it, MP_FOREVER, &v, NULL), 0);
        sleep_s(0.0002 * round);
        assert_int_equal(mp_pool_terminate(p), 0);
        int g = mp_async_result_get(r, 10, NULL, NULL);
        assert_true(g == 0 || g == MP_EWORKERLOST);
        for (;;) {
            int x = mp_imap_next(it, 10, &v, NULL);
            assert_true(x == 0 || x == MP_EWORKERLOST || x == MP_EEOF);
            if (x == MP_EEOF)
                break;
        }
        mp_imap_free(it);
        mp_async_result_free(r);
        mp_pool_free(p);
        free(in);
        free(out);
        assert_int_equal(mpt_count_children(), 0);
    }
}

/* Spins about us microseconds. */
static int busy(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    int64_t x = *(const int64_t *)in;
    uint64_t until = mp__now_ns() + 2000;
    while (mp__now_ns() < until)
        ;
    *(int64_t *)out = x * 7 + 1;
    return 0;
}

static int busy_bytes(const void *in, size_t n, mp_pool_out *out, void *arg)
{
    uint64_t until = mp__now_ns() + 2000;
    while (mp__now_ns() < until)
        ;
    return mp_pool_out_write(out, in, n);
}

struct killer_ctx {
    mp_pool *pool;
    volatile int stop;
    uint64_t rng;
    int kills;
};

/* SIGKILL a random worker every 1 to 4 ms, at whatever point it is. */
static void *random_killer(void *arg)
{
    struct killer_ctx *k = arg;
    while (!k->stop) {
        sleep_s(0.001 * (double)(1 + mpt_rand(&k->rng) % 4));
        uint32_t w = (uint32_t)(mpt_rand(&k->rng) % k->pool->nworkers);
        pid_t pid = __atomic_load_n(&k->pool->recs[w].pid, __ATOMIC_ACQUIRE);
        if (pid > 0 && kill(pid, SIGKILL) == 0)
            k->kills++;
    }
    return NULL;
}

/*
 * The tasks of the random kill test count how many times each task ran to
 * its end in a shared array (the task's key indexes it; arg is the array's
 * address, the same in every worker under every start method).
 */
static int busy_counted(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    uint32_t *runs = *(uint32_t *const *)arg;
    int64_t x = *(const int64_t *)in;
    busy(in, in_size, out, out_size, NULL);
    __atomic_fetch_add(&runs[x], 1, __ATOMIC_SEQ_CST);
    return 0;
}

static int busy_counted_bytes(const void *in, size_t n, mp_pool_out *out, void *arg)
{
    uint32_t *runs = *(uint32_t *const *)arg;
    int64_t x;
    memcpy(&x, in, sizeof x);
    int r = busy_bytes(in, n, out, NULL);
    __atomic_fetch_add(&runs[x], 1, __ATOMIC_SEQ_CST);
    return r;
}

struct kill_tally {
    size_t tasks, ok, lost, ran_but_lost;
};

/* One task's fate: its correct result exactly once, or MP_EWORKERLOST; it
 * ran to its end exactly once if it succeeded, at most once if lost. */
static void tally(struct kill_tally *t, int st, int64_t got, int64_t want, uint32_t runs)
{
    t->tasks++;
    if (st == 0) {
        assert_int_equal(got, want);
        assert_int_equal(runs, 1);
        t->ok++;
    } else {
        assert_int_equal(st, MP_EWORKERLOST);
        assert_true(runs <= 1);
        t->lost++;
        t->ran_but_lost += runs;
    }
}

/*
 * Workers SIGKILLed at random moments (seed printed, MPT_SEED replays the
 * killer's choices) during map, apply_async and imap_unordered: every task
 * gives its correct result exactly once or fails with MP_EWORKERLOST, no
 * task runs twice, nothing hangs, and a clean map afterwards gives every
 * result.
 */
static void test_random_kills_slow(void **state)
{
    mp_pool *p = make_pool(false, 3);
    struct killer_ctx k = {.pool = p, .rng = mpt_seed("pool random kills") | 1};
    enum { NMAP = 30000, NASYNC = 10000, NIMAP = 30000 };
    size_t total = 3 * NMAP + NASYNC + NIMAP;
    uint32_t *runs = mp_shared_alloc(total * sizeof *runs);
    assert_non_null(runs);
    int64_t *in = malloc(total * sizeof *in), *out = malloc(NMAP * sizeof *out);
    int *st = malloc(NMAP * sizeof *st);
    for (size_t i = 0; i < total; i++)
        in[i] = (int64_t)i;
    struct kill_tally t = {0};
    double t0 = now();
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, random_killer, &k), 0);
    static const size_t css[] = {1, 7, 0};
    size_t base = 0;
    for (int round = 0; round < 3; round++, base += NMAP) {
        int r = mp_pool_map(p, busy_counted, in + base, 8, NMAP, out, 8,
                            .chunksize = css[round], .status = st, .arg = &runs,
                            .arg_size = sizeof runs);
        assert_true(r == 0 || r == MP_EWORKERLOST);
        size_t lost_before = t.lost;
        for (size_t i = 0; i < NMAP; i++)
            tally(&t, st[i], out[i], in[base + i] * 7 + 1, runs[base + i]);
        /* With chunksize 1, a death loses only the item its worker ran: the
         * items it had reserved but not begun go to the others. */
        if (css[round] == 1)
            assert_true(t.lost - lost_before <=
                        (size_t)__atomic_load_n(&k.kills, __ATOMIC_SEQ_CST));
    }
    mp_async_result **rs = malloc(NASYNC * sizeof *rs);
    for (int i = 0; i < NASYNC; i++) {
        rs[i] = mp_pool_apply_async(p, busy_counted_bytes, &in[base + i], sizeof in[0],
                                    .arg = &runs, .arg_size = sizeof runs);
        assert_non_null(rs[i]);
    }
    for (int i = 0; i < NASYNC; i++) {
        int64_t v = -1;
        size_t len = 0;
        int r = mp_async_result_get_into(rs[i], 60, &v, sizeof v, &len);
        assert_true(r != MP_ETIMEDOUT);
        if (r == 0)
            assert_int_equal(len, sizeof v);
        tally(&t, r, v, in[base + i], runs[base + i]);
        mp_async_result_free(rs[i]);
    }
    free(rs);
    base += NASYNC;
    mp_imap *it = mp_pool_imap_unordered(p, busy_counted, in + base, 8, NIMAP, 8,
                                         .chunksize = 3, .arg = &runs,
                                         .arg_size = sizeof runs);
    assert_non_null(it);
    char *seen = calloc(NIMAP, 1);
    int64_t v;
    size_t idx, got = 0;
    int r;
    while ((r = mp_imap_next(it, 60, &v, &idx)) != MP_EEOF) {
        assert_true(r != MP_ETIMEDOUT);
        assert_true(idx < NIMAP);
        assert_int_equal(seen[idx], 0);
        seen[idx] = 1;
        tally(&t, r, v, in[base + idx] * 7 + 1, runs[base + idx]);
        got++;
    }
    assert_int_equal(got, NIMAP);
    free(seen);
    mp_imap_free(it);
    k.stop = 1;
    pthread_join(th, NULL);
    assert_int_equal(t.tasks, total);
    print_message("pool random kills: %zu tasks, %d kills, %zu ok, %zu lost with "
                  "MP_EWORKERLOST (%zu of them had run), 0 wrong, 0 duplicated, %.1f s\n",
                  t.tasks, k.kills, t.ok, t.lost, t.ran_but_lost, now() - t0);
    assert_true(k.kills > 10);
    /* Still a working pool, and it closes and joins in bounded time. */
    assert_int_equal(mp_pool_map(p, sq, in, 8, 1000, out, 8, .status = st), 0);
    for (size_t i = 0; i < 1000; i++)
        assert_int_equal(out[i], (int64_t)(i * i));
    assert_int_equal(mp_pool_close(p), 0);
    assert_int_equal(mp_pool_join(p, 30), 0);
    mp_pool_free(p);
    mp_shared_free(runs);
    free(in);
    free(out);
    free(st);
}

static void test_long_imap_slow(void **state)
{
    mp_pool *p = make_pool(false, 2);
    struct gen g = {.limit = 3000000, .fail_at = -1};
    mp_imap *it = mp_pool_imap_unordered(p, sq, NULL, sizeof(int64_t), 0, sizeof(int64_t),
                                         .next_input = gen_next, .next_ctx = &g,
                                         .chunksize = 16, .window = 32);
    int64_t v, sum = 0;
    size_t idx;
    while (mp_imap_next(it, MP_FOREVER, &v, &idx) == 0) {
        g.consumed++;
        sum += v - (int64_t)idx * (int64_t)idx;
    }
    mp_imap_free(it);
    assert_int_equal(g.consumed, g.limit);
    assert_int_equal(sum, 0);
    assert_true(g.max_ahead <= 32 * 16 + 16);
    finish_pool(p);
}

static void apply_flood(bool threads)
{
    mp_pool *p = make_pool(threads, 2);
    struct counters c = {0};
    enum { N = 1000000 };
    mp_async_result **rs = malloc(N * sizeof *rs);
    for (uint64_t i = 0; i < N; i++)
        rs[i] = mp_pool_apply_async(p, echo_bytes, &i, sizeof i, .callback = count_cb,
                                    .cb_arg = &c);
    for (uint64_t i = 0; i < N; i++) {
        uint64_t v;
        assert_int_equal(mp_async_result_get_into(rs[i], MP_FOREVER, &v, sizeof v, NULL), 0);
        assert_int_equal(v, i);
        mp_async_result_free(rs[i]);
    }
    free(rs);
    finish_pool(p);
    assert_int_equal(c.ok, N);
    assert_int_equal(c.sum, (uint64_t)N * (N - 1) / 2);
}

static void test_apply_flood_slow(void **state)
{
    apply_flood(false);
    apply_flood(true);
}

/* More tasks than the ring holds (65536 entries): apply_async waits for
 * the workers to move on, and every result arrives. */
static void test_ring_full_slow(void **state)
{
    mp_pool *p = make_pool(false, 1);
    enum { N = 70000 };
    mp_async_result **rs = malloc(N * sizeof *rs);
    rs[0] = mp_pool_apply_async(p, echo_bytes, "nap02", 5);
    double t0 = now();
    for (uint64_t i = 1; i < N; i++) {
        rs[i] = mp_pool_apply_async(p, echo_bytes, &i, sizeof i);
        assert_non_null(rs[i]);
    }
    /* The first task held the only worker for 0.2 s while the ring filled. */
    assert_true(now() - t0 >= 0.1);
    for (uint64_t i = 0; i < N; i++) {
        uint64_t v = 0;
        size_t len;
        assert_int_equal(mp_async_result_get_into(rs[i], MP_FOREVER, &v, sizeof v, &len), 0);
        if (i > 0)
            assert_int_equal(v, i);
        mp_async_result_free(rs[i]);
    }
    free(rs);
    finish_pool(p);
}

static void test_big_map_slow(void **state)
{
    mp_pool *p = make_pool(false, 2);
    size_t n = (size_t)1 << 24;
    int64_t *in = malloc(n * sizeof *in), *out = malloc(n * sizeof *out);
    for (size_t i = 0; i < n; i++)
        in[i] = (int64_t)(i % 100000);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(mp_pool_map(p, sq, in, 8, n, out, 8), 0);
        for (size_t i = 0; i < n; i += 1009)
            assert_int_equal(out[i], in[i] * in[i]);
    }
    free(in);
    free(out);
    finish_pool(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_bad_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunksize_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_in_worker_and_ctx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_self, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_serial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_serial_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_shared_and_arg, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_bad_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_starmap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_async, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_async, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imap_lazy_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imap_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_error_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imap_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imap_after_join, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imap_join_late_publish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_initializer_once_per_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_maxtasksperchild, setup, teardown),
        cmocka_unit_test_setup_teardown(test_initializer_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_initializer_crashes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_killed_map, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_killed_async, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_terminate_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_without_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_join, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_free_early, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigint_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_sigterm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_sigalrm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_mask, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_emfile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_process_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_terminates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_creator_killed, setup, teardown),
    };
    const struct CMUnitTest slow[] = {
        cmocka_unit_test_setup_teardown(test_many_deaths_slow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_terminate_repeatedly_slow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_map_slow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_kills_slow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_imap_slow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_flood_slow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_full_slow, setup, teardown),
    };
    if (getenv("MPT_FILTER") != NULL)
        cmocka_set_test_filter(getenv("MPT_FILTER"));
#ifdef MPT_POOL_SLOW
    (void)tests;
    return cmocka_run_group_tests_name("pool_slow", slow, NULL, NULL);
#else
    (void)slow;
    return cmocka_run_group_tests_name("pool", tests, NULL, NULL);
#endif
}
