/* test_queues.c: Queue, JoinableQueue, SimpleQueue and the shared ring. */
#include "internal/mp.h"
#include "internal/ring.h"
#include "mptest.h"

#include <math.h>
#include <stdatomic.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Wait for pid at most seconds; kill it and return -1 if it is still running. */
static int wait_within(pid_t pid, double seconds)
{
    int st = mpt_wait_timed(pid, seconds);
    if (st < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return st;
}

static void fill_pattern(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 31u + seed);
}

static bool check_pattern(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(i * 31u + seed))
            return false;
    return true;
}

static int put_int(mp_queue *q, int v)
{
    return mp_queue_put(q, &v, sizeof v, MP_FOREVER);
}

/* The next int in q (within timeout), or -1000 - error code. */
static int get_int(mp_queue *q, double timeout)
{
    int v = 0;
    size_t len = 0;
    int rc = mp_queue_get(q, &v, sizeof v, &len, timeout);
    if (rc != 0)
        return -1000 + rc;
    return len == sizeof v ? v : -999;
}

/* ---- basics -------------------------------------------------------------- */

static void test_fifo_and_size(void **state)
{
    mp_queue *q = mp_queue_new();
    assert_non_null(q);
    assert_int_equal(mp_queue_qsize(q), 0);
    assert_int_equal(mp_queue_empty(q), 1);
    assert_int_equal(mp_queue_full(q), 0);
    for (int i = 0; i < 3000; i++) /* more than a ring's worth */
        assert_int_equal(put_int(q, i), 0);
    assert_int_equal(mp_queue_qsize(q), 3000);
    assert_int_equal(mp_queue_empty(q), 0);
    assert_int_equal(mp_queue_full(q), 0);
    for (int i = 0; i < 3000; i++)
        assert_int_equal(get_int(q, MP_FOREVER), i);
    assert_int_equal(mp_queue_qsize(q), 0);
    int v;
    assert_int_equal(mp_queue_get_nowait(q, &v, sizeof v, NULL), MP_EEMPTY);
    assert_int_equal(mp_queue_get(q, &v, sizeof v, NULL, 0), MP_EEMPTY);
    assert_int_equal(mp_queue_put_nowait(q, &v, sizeof v), 0);
    assert_int_equal(mp_queue_get_nowait(q, &v, sizeof v, NULL), 0);
    mp_queue_free(q);
}

static void test_message_sizes(void **state)
{
    static const size_t sizes[] = {0,    1,     47,      48,      111,  112, 113,   1000,
                                   4096, 65536, 1 << 20, 3 << 20, 8191, 200, 33000, 1 << 16};
    const size_t n = sizeof sizes / sizeof sizes[0];
    mp_queue *q = mp_queue_new();
    assert_non_null(q);
    unsigned char *buf = malloc(3 << 20);
    for (size_t i = 0; i < n; i++) {
        fill_pattern(buf, sizes[i], (unsigned)i);
        assert_int_equal(mp_queue_put(q, buf, sizes[i], MP_FOREVER), 0);
    }
    assert_int_equal(mp_queue_qsize(q), n);
    /* Half into a caller buffer, half allocated. */
    for (size_t i = 0; i < n; i++) {
        size_t len = 12345;
        if (i % 2 == 0) {
            memset(buf, 0, 3 << 20);
            assert_int_equal(mp_queue_get(q, buf, 3 << 20, &len, MP_FOREVER), 0);
            assert_int_equal(len, sizes[i]);
            assert_true(check_pattern(buf, len, (unsigned)i));
        } else {
            void *p = NULL;
            assert_int_equal(mp_queue_get_alloc(q, &p, &len, MP_FOREVER), 0);
            assert_non_null(p);
            assert_int_equal(len, sizes[i]);
            assert_true(check_pattern(p, len, (unsigned)i));
            free(p);
        }
    }
    free(buf);
    mp_queue_free(q);
}

static void test_slot_sizes(void **state)
{
    static const size_t slots[] = {64, 100, 128, 4096, 1 << 20};
    for (size_t s = 0; s < sizeof slots / sizeof slots[0]; s++) {
        mp_queue *q = mp_queue_new(.slot_size = slots[s], .capacity = 1 << 20);
        assert_non_null(q);
        unsigned char buf[5000], out[5000];
        for (unsigned i = 0; i < 200; i++) {
            size_t len = (i * 37) % sizeof buf;
            fill_pattern(buf, len, i);
            assert_int_equal(mp_queue_put(q, buf, len, MP_FOREVER), 0);
            size_t got = 0;
            assert_int_equal(mp_queue_get(q, out, sizeof out, &got, MP_FOREVER), 0);
            assert_int_equal(got, len);
            assert_true(check_pattern(out, got, i));
        }
        mp_queue_free(q);
    }
}

static void test_zero_length(void **state)
{
    mp_queue *q = mp_queue_new();
    for (int i = 0; i < 3; i++)
        assert_int_equal(mp_queue_put(q, NULL, 0, MP_FOREVER), 0);
    int v = 5;
    assert_int_equal(mp_queue_put(q, &v, 0, MP_FOREVER), 0);
    assert_int_equal(mp_queue_qsize(q), 4);
    size_t len = 99;
    assert_int_equal(mp_queue_get(q, NULL, 0, &len, MP_FOREVER), 0);
    assert_int_equal(len, 0);
    len = 99;
    assert_int_equal(mp_queue_get(q, &v, sizeof v, &len, MP_FOREVER), 0);
    assert_int_equal(len, 0);
    void *p = NULL;
    assert_int_equal(mp_queue_get_alloc(q, &p, &len, MP_FOREVER), 0);
    assert_non_null(p);
    assert_int_equal(len, 0);
    free(p);
    assert_int_equal(mp_queue_get(q, NULL, 0, NULL, 0), 0);
    assert_int_equal(mp_queue_empty(q), 1);
    mp_queue_free(q);
}

static void test_too_short_keeps_message(void **state)
{
    mp_queue *q = mp_queue_new();
    unsigned char big[500], small[10], out[500];
    fill_pattern(big, sizeof big, 7);
    assert_int_equal(mp_queue_put(q, big, 100, MP_FOREVER), 0); /* inline */
    assert_int_equal(mp_queue_put(q, big, 500, MP_FOREVER), 0); /* block */
    size_t len = 0;
    assert_int_equal(mp_queue_get(q, small, sizeof small, &len, 0), MP_ETOOSHORT);
    assert_int_equal(len, 100);
    assert_int_equal(mp_queue_get(q, small, sizeof small, NULL, MP_FOREVER), MP_ETOOSHORT);
    assert_int_equal(mp_queue_get(q, NULL, 0, &len, 0), MP_ETOOSHORT);
    assert_int_equal(mp_queue_qsize(q), 2);
    assert_int_equal(mp_queue_get(q, out, 100, &len, 0), 0);
    assert_int_equal(len, 100);
    assert_true(check_pattern(out, 100, 7));
    assert_int_equal(mp_queue_get(q, out, 499, &len, 0), MP_ETOOSHORT);
    assert_int_equal(len, 500);
    assert_int_equal(mp_queue_get(q, out, 500, &len, 0), 0);
    assert_true(check_pattern(out, 500, 7));
    mp_queue_free(q);
}

static void test_bad_input(void **state)
{
    int v = 0;
    size_t len;
    void *p = NULL;
    /* NULL everywhere. */
    assert_int_equal(mp_queue_put(NULL, &v, 1, 0), MP_EINVAL);
    assert_int_equal(mp_queue_put_nowait(NULL, &v, 1), MP_EINVAL);
    assert_int_equal(mp_queue_get(NULL, &v, 1, &len, 0), MP_EINVAL);
    assert_int_equal(mp_queue_get_nowait(NULL, &v, 1, &len), MP_EINVAL);
    assert_int_equal(mp_queue_get_alloc(NULL, &p, &len, 0), MP_EINVAL);
    assert_int_equal(mp_queue_qsize(NULL), MP_EINVAL);
    assert_int_equal(mp_queue_empty(NULL), MP_EINVAL);
    assert_int_equal(mp_queue_full(NULL), MP_EINVAL);
    assert_int_equal(mp_queue_close(NULL), MP_EINVAL);
    assert_int_equal(mp_queue_join_thread(NULL), MP_EINVAL);
    assert_int_equal(mp_queue_cancel_join_thread(NULL), MP_EINVAL);
    assert_int_equal(mp_queue_task_done(NULL), MP_EINVAL);
    assert_int_equal(mp_queue_join(NULL, 0), MP_EINVAL);
    mp_queue_free(NULL);
    assert_int_equal(mp_simple_queue_put(NULL, &v, 1), MP_EINVAL);
    assert_int_equal(mp_simple_queue_get(NULL, &v, 1, &len), MP_EINVAL);
    assert_int_equal(mp_simple_queue_get_alloc(NULL, &p, &len), MP_EINVAL);
    assert_int_equal(mp_simple_queue_empty(NULL), MP_EINVAL);
    assert_int_equal(mp_simple_queue_close(NULL), MP_EINVAL);
    mp_simple_queue_free(NULL);
    assert_null(mp_queue_new_opts(NULL));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_joinable_queue_new_opts(NULL));
    assert_null(mp_simple_queue_new_opts(NULL));

    /* Bad buffers and timeouts. */
    mp_queue *q = mp_queue_new();
    assert_non_null(q);
    assert_int_equal(mp_queue_put(q, NULL, 5, 0), MP_EINVAL);
    assert_int_equal(mp_queue_put_nowait(q, NULL, 5), MP_EINVAL);
    assert_int_equal(mp_queue_get(q, NULL, 5, &len, 0), MP_EINVAL);
    assert_int_equal(mp_queue_get_alloc(q, NULL, &len, 0), MP_EINVAL);
    assert_int_equal(mp_queue_put(q, &v, 1, -2.0), MP_EINVAL);
    assert_int_equal(mp_queue_put(q, &v, 1, NAN), MP_EINVAL);
    assert_int_equal(mp_queue_get(q, &v, 1, &len, -0.5), MP_EINVAL);
    assert_int_equal(mp_queue_get(q, &v, 1, &len, NAN), MP_EINVAL);
    assert_int_equal(mp_queue_get_alloc(q, &p, &len, -3.0), MP_EINVAL);
    assert_int_equal(mp_queue_qsize(q), 0); /* nothing slipped in */
    /* A plain Queue is not joinable. */
    assert_int_equal(mp_queue_task_done(q), MP_EINVAL);
    assert_int_equal(mp_queue_join(q, 0), MP_EINVAL);

    /* Wrong kinds of object. */
    mp_simple_queue *s = mp_simple_queue_new();
    assert_non_null(s);
    assert_int_equal(mp_queue_put((mp_queue *)s, &v, 1, 0), MP_EINVAL);
    assert_int_equal(mp_simple_queue_put((mp_simple_queue *)q, &v, 1), MP_EINVAL);
    char *m = malloc(4096);
    memset(m, 0, 4096);
    assert_int_equal(mp_queue_put((mp_queue *)m, &v, 1, 0), MP_EINVAL);
    assert_int_equal(mp_queue_qsize((mp_queue *)m), MP_EINVAL);
    free(m);

    /* Joinable timeouts. */
    mp_queue *j = mp_joinable_queue_new();
    assert_int_equal(mp_queue_join(j, -7.0), MP_EINVAL);
    assert_int_equal(mp_queue_join(j, NAN), MP_EINVAL);
    mp_queue_free(j);

    /* Freed objects. */
    mp_queue_free(q);
    assert_int_equal(mp_queue_put(q, &v, 1, 0), MP_EINVAL);
    assert_int_equal(mp_queue_get(q, &v, 1, &len, 0), MP_EINVAL);
    assert_int_equal(mp_queue_qsize(q), MP_EINVAL);
    mp_queue_free(q); /* stale pointer: ignored */
    mp_simple_queue_free(s);
    assert_int_equal(mp_simple_queue_put(s, &v, 1), MP_EINVAL);
    assert_int_equal(mp_simple_queue_empty(s), MP_EINVAL);

    /* Options out of range. */
    assert_null(mp_queue_new(.slot_size = 32));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_queue_new(.slot_size = (2u << 20)));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_simple_queue_new(.slot_size = 1));
    assert_null(mp_queue_new(.maxsize = 1L << 50));
    assert_int_equal(mp_last_error(), -ENOMEM);
    q = mp_queue_new(.slot_size = 100, .capacity = 1, .maxsize = -5, .ctx = NULL);
    assert_non_null(q); /* rounded up; tiny capacity gives 2 slots */
    assert_int_equal(mp_queue_full(q), 0);
    mp_queue_free(q);
}

/* ---- bounded queues and timeouts ------------------------------------------ */

static void test_maxsize_and_timeouts(void **state)
{
    mp_queue *q = mp_queue_new(.maxsize = 3);
    assert_non_null(q);
    for (int i = 0; i < 3; i++)
        assert_int_equal(put_int(q, i), 0);
    assert_int_equal(mp_queue_qsize(q), 3);
    assert_int_equal(mp_queue_full(q), 1);
    int v = 9;
    assert_int_equal(mp_queue_put_nowait(q, &v, sizeof v), MP_EFULL);
    assert_int_equal(mp_queue_put(q, &v, sizeof v, 0), MP_EFULL);
    double t0 = mp__now();
    assert_int_equal(mp_queue_put(q, &v, sizeof v, 0.2), MP_EFULL);
    double dt = mp__now() - t0;
    assert_true(dt >= 0.2);
    assert_true(dt < 5.0);
    assert_int_equal(mp_queue_qsize(q), 3);
    assert_int_equal(get_int(q, 0), 0);
    assert_int_equal(mp_queue_full(q), 0);
    assert_int_equal(mp_queue_put_nowait(q, &v, sizeof v), 0);
    assert_int_equal(get_int(q, 0), 1);
    assert_int_equal(get_int(q, 0), 2);
    assert_int_equal(get_int(q, 0), 9);
    t0 = mp__now();
    assert_int_equal(get_int(q, 0.2), -1000 + MP_EEMPTY);
    dt = mp__now() - t0;
    assert_true(dt >= 0.2);
    assert_true(dt < 5.0);
    /* Many laps of a ring whose size is not a power of two. */
    for (int i = 0; i < 5000; i++) {
        assert_int_equal(put_int(q, i), 0);
        assert_int_equal(put_int(q, -i), 0);
        assert_int_equal(get_int(q, 0), i);
        assert_int_equal(get_int(q, 0), -i);
    }
    mp_queue_free(q);

    q = mp_queue_new(.maxsize = 1);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(put_int(q, i), 0);
        assert_int_equal(mp_queue_put_nowait(q, &v, sizeof v), MP_EFULL);
        assert_int_equal(get_int(q, 0), i);
    }
    mp_queue_free(q);
}

static int child_get_42(void *arg)
{
    int v = get_int(arg, 20.0);
    return v == 42 ? 0 : 1;
}

static int child_put_blocked(void *arg)
{
    /* The queue is full: this put waits until the parent makes room. */
    int v = 43;
    return mp_queue_put(arg, &v, sizeof v, 20.0) == 0 ? 0 : 1;
}

static void test_blocking_wakeups(void **state)
{
    mp_queue *q = mp_queue_new(.maxsize = 1);
    pid_t c = mpt_fork(child_get_42, q);
    usleep(100000); /* let it sleep in get */
    assert_int_equal(put_int(q, 42), 0);
    assert_int_equal(wait_within(c, 20), 0);

    assert_int_equal(put_int(q, 1), 0);
    c = mpt_fork(child_put_blocked, q);
    usleep(100000);
    assert_int_equal(get_int(q, 0), 1);
    assert_int_equal(wait_within(c, 20), 0);
    assert_int_equal(get_int(q, 5.0), 43);
    mp_queue_free(q);
}

/* ---- waits on an oversubscribed machine ----------------------------------- */

/* A bare ring in the arena (the queue's own is private to queues.c). */
static mp__ring *ring_new(long maxsize)
{
    uint64_t nslots;
    uint32_t ss;
    if (mp__ring_geometry(maxsize, 0, 0, &nslots, &ss) != 0)
        return NULL;
    mp__ring *r = mp__alloc(sizeof *r + nslots * ss);
    if (r != NULL && mp__ring_init(r, (unsigned char *)(r + 1), nslots, ss,
                                   maxsize > 0 ? MP__RING_BOUNDED : 0) != 0) {
        mp__free(r);
        return NULL;
    }
    return r;
}

static void ring_free(mp__ring *r)
{
    mp__ring_destroy(r);
    mp__free(r);
}

static int ring_op(mp__ring *r, bool put, uint32_t *v, double timeout)
{
    mp__deadline d;
    size_t len = 0;
    if (mp__deadline_init(&d, timeout) != 0)
        return -EINVAL;
    if (put)
        return mp__ring_put(r, v, sizeof *v, &d);
    int rc = mp__ring_get(r, v, sizeof *v, NULL, &len, &d);
    return rc == 0 && len != sizeof *v ? -EPROTO : rc;
}

#define PINGPONG_ROUNDS 3000

struct echo_arg {
    mp__ring *in, *out;
};

/* Echo every number back plus one; a get that waits 20 s means a lost
 * wake-up. */
static int child_echo(void *arg)
{
    struct echo_arg *a = arg;
    for (uint32_t i = 0; i < PINGPONG_ROUNDS; i++) {
        uint32_t v;
        if (ring_op(a->in, false, &v, 20.0) != 0 || v != 2 * i)
            return 1;
        v++;
        if (ring_op(a->out, true, &v, 20.0) != 0)
            return 2;
    }
    return 0;
}

static void pingpong(mp__ring *a, mp__ring *b)
{
    struct echo_arg ea = {a, b};
    pid_t c = mpt_fork(child_echo, &ea);
    for (uint32_t i = 0; i < PINGPONG_ROUNDS; i++) {
        uint32_t v = 2 * i;
        assert_int_equal(ring_op(a, true, &v, 20.0), 0);
        assert_int_equal(ring_op(b, false, &v, 20.0), 0);
        assert_int_equal(v, 2 * i + 1);
    }
    assert_int_equal(wait_within(c, 20), 0);
}

/*
 * On a busy machine a sleeper switches the event count to fenced
 * publication and sleeps without a membarrier; on an idle one it switches
 * back.  Both ways, round trips (every wait a sleep when busy) lose no
 * wake-up, and a producer waiting for room in a bounded ring does the same.
 */
static void test_busy_fenced_wakeups(void **state)
{
    mp__ring *a = ring_new(0), *b = ring_new(0), *one = ring_new(1);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(one);
    uint32_t v = 7;

    mp__cpu_busy_force(1);
    assert_int_equal(ring_op(a, false, &v, 0.01), MP_EEMPTY);
    /* Without membarrier (MP_DISABLE) every publisher fences anyway and
     * the counts stay PLAIN. */
    uint32_t fenced = atomic_load(&mp__ring_fenceless) > 0 ? MP__EVC_FENCED : MP__EVC_PLAIN;
    assert_int_equal(atomic_load(&a->ev_get.fenced), fenced);
    assert_int_equal(atomic_load(&b->ev_get.fenced), MP__EVC_PLAIN);
    pingpong(a, b);
    assert_int_equal(atomic_load(&b->ev_get.fenced), fenced);
    assert_int_equal(ring_op(one, true, &v, 0.01), 0);
    assert_int_equal(ring_op(one, true, &v, 0.01), MP_EFULL);
    assert_int_equal(atomic_load(&one->ev_put.fenced), fenced);

    mp__cpu_busy_force(0);
    assert_int_equal(ring_op(a, false, &v, 0.01), MP_EEMPTY);
    assert_int_equal(atomic_load(&a->ev_get.fenced), MP__EVC_PLAIN);
    pingpong(a, b);
    assert_int_equal(ring_op(one, true, &v, 0.01), MP_EFULL);
    assert_int_equal(atomic_load(&one->ev_put.fenced), MP__EVC_PLAIN);

    /* Mixed: the echoing child busy, this process idle. */
    mp__cpu_busy_force(1);
    struct echo_arg ea = {a, b};
    pid_t c = mpt_fork(child_echo, &ea);
    mp__cpu_busy_force(0);
    for (uint32_t i = 0; i < PINGPONG_ROUNDS; i++) {
        v = 2 * i;
        assert_int_equal(ring_op(a, true, &v, 20.0), 0);
        assert_int_equal(ring_op(b, false, &v, 20.0), 0);
        assert_int_equal(v, 2 * i + 1);
    }
    assert_int_equal(wait_within(c, 20), 0);
    mp__cpu_busy_force(-1);
    ring_free(a);
    ring_free(b);
    ring_free(one);
}

/* ---- no feeder thread: put == in the queue -------------------------------- */

struct produce_arg {
    mp_queue *q;
    int first, n;
};

static int child_produce(void *arg)
{
    struct produce_arg *a = arg;
    for (int i = a->first; i < a->first + a->n; i++)
        if (put_int(a->q, i) != 0)
            return 1;
    return 0;
}

static int child_put_then_die(void *arg)
{
    put_int(arg, 77);
    raise(SIGKILL);
    return 0;
}

static void test_producer_exit_and_join_before_drain(void **state)
{
    /* A tiny ring: most messages overflow, and put still never blocks. */
    mp_queue *q = mp_queue_new(.capacity = 1024);
    struct produce_arg a = {q, 0, 20000};
    pid_t c = mpt_fork(child_produce, &a);
    /* Python's trap: joining a producer before draining.  Here it works. */
    assert_int_equal(wait_within(c, 60), 0);
    assert_int_equal(mp_queue_qsize(q), 20000);
    for (int i = 0; i < 20000; i++)
        assert_int_equal(get_int(q, 0), i);
    assert_int_equal(mp_queue_empty(q), 1);

    /* A message put just before the producer is killed is delivered. */
    c = mpt_fork(child_put_then_die, q);
    assert_int_equal(wait_within(c, 20), 1000 + SIGKILL);
    assert_int_equal(get_int(q, 0), 77);
    mp_queue_free(q);
}

static int child_consume_checked(void *arg)
{
    struct produce_arg *a = arg;
    for (int i = a->first; i < a->first + a->n; i++) {
        if (get_int(a->q, 30.0) != i)
            return 1;
        if (i % 1000 == 0)
            usleep(i % 10000 == 0 ? 150000 : 3000); /* the ring fills, overflows */
    }
    return 0;
}

static void test_overflow_order_with_slow_consumer(void **state)
{
    mp_queue *q = mp_queue_new(.capacity = 1024);
    struct produce_arg a = {q, 0, 30000};
    pid_t c = mpt_fork(child_consume_checked, &a);
    unsigned char big[300];
    for (int i = 0; i < 30000; i++)
        assert_int_equal(put_int(q, i), 0);
    assert_int_equal(wait_within(c, 60), 0);
    /* Large messages and a too-short buffer through the overflow list. */
    for (int i = 0; i < 40; i++) {
        fill_pattern(big, sizeof big, (unsigned)i);
        assert_int_equal(mp_queue_put_nowait(q, big, sizeof big), 0);
    }
    size_t len = 0;
    for (int i = 0; i < 40; i++) {
        unsigned char out[300];
        assert_int_equal(mp_queue_get(q, out, 10, &len, 0), MP_ETOOSHORT);
        assert_int_equal(len, 300);
        assert_int_equal(mp_queue_get(q, out, sizeof out, &len, 0), 0);
        assert_true(check_pattern(out, 300, (unsigned)i));
    }
    mp_queue_free(q);
}

/* ---- many producers, many consumers ------------------------------------- */

struct msg {
    uint32_t producer;
    uint32_t size;
    uint64_t seq;
    uint64_t check;
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

#define NPROD 4
#define NCONS 4

struct mpmc_arg {
    mp_queue *q;
    int id;
    long n;
    int fd;
};

struct mpmc_result {
    int error;
    uint64_t count[NPROD];
    uint64_t sum[NPROD];
    uint64_t sumsq[NPROD];
};

static int mpmc_producer(void *arg)
{
    struct mpmc_arg *a = arg;
    unsigned char buf[1024];
    for (long i = 0; i < a->n; i++) {
        struct msg m = {(uint32_t)a->id, sizeof m, (uint64_t)i,
                        mix((uint64_t)a->id << 40 | (uint64_t)i)};
        if (i % 97 == 5)
            m.size = 300 + (uint32_t)(i % 700); /* through a block */
        else if (i % 13 == 1)
            m.size = 100;
        memcpy(buf, &m, sizeof m);
        fill_pattern(buf + sizeof m, m.size - sizeof m, (unsigned)i);
        if (mp_queue_put(a->q, buf, m.size, MP_FOREVER) != 0)
            return 1;
    }
    return 0;
}

static int mpmc_consumer(void *arg)
{
    struct mpmc_arg *a = arg;
    struct mpmc_result res;
    memset(&res, 0, sizeof res);
    int64_t last[NPROD] = {-1, -1, -1, -1};
    unsigned char buf[1024];
    for (;;) {
        size_t len = 0;
        if (mp_queue_get(a->q, buf, sizeof buf, &len, 60.0) != 0) {
            res.error = 1;
            break;
        }
        if (len == 0) /* poison pill */
            break;
        struct msg m;
        memcpy(&m, buf, sizeof m);
        if (len != m.size || m.producer >= NPROD ||
            m.check != mix((uint64_t)m.producer << 40 | m.seq) ||
            !check_pattern(buf + sizeof m, len - sizeof m, (unsigned)m.seq)) {
            res.error = 2;
            break;
        }
        /* Each producer's messages arrive in order. */
        if ((int64_t)m.seq <= last[m.producer]) {
            res.error = 3;
            break;
        }
        last[m.producer] = (int64_t)m.seq;
        res.count[m.producer]++;
        res.sum[m.producer] += m.seq;
        res.sumsq[m.producer] += m.seq * m.seq;
    }
    return write(a->fd, &res, sizeof res) == sizeof res ? 0 : 1;
}

static void run_mpmc(mp_queue *q, long n)
{
    int fds[NCONS][2];
    pid_t cons[NCONS], prod[NPROD];
    struct mpmc_arg ca[NCONS], pa[NPROD];
    for (int i = 0; i < NCONS; i++) {
        assert_int_equal(pipe(fds[i]), 0);
        ca[i] = (struct mpmc_arg){q, i, n, fds[i][1]};
        cons[i] = mpt_fork(mpmc_consumer, &ca[i]);
        close(fds[i][1]);
    }
    for (int i = 0; i < NPROD; i++) {
        pa[i] = (struct mpmc_arg){q, i, n, -1};
        prod[i] = mpt_fork(mpmc_producer, &pa[i]);
    }
    for (int i = 0; i < NPROD; i++)
        assert_int_equal(wait_within(prod[i], 600), 0);
    for (int i = 0; i < NCONS; i++)
        assert_int_equal(mp_queue_put(q, NULL, 0, MP_FOREVER), 0);
    struct mpmc_result total;
    memset(&total, 0, sizeof total);
    for (int i = 0; i < NCONS; i++) {
        struct mpmc_result r;
        assert_int_equal(read(fds[i][0], &r, sizeof r), sizeof r);
        close(fds[i][0]);
        assert_int_equal(r.error, 0);
        for (int p = 0; p < NPROD; p++) {
            total.count[p] += r.count[p];
            total.sum[p] += r.sum[p];
            total.sumsq[p] += r.sumsq[p];
        }
        assert_int_equal(wait_within(cons[i], 60), 0);
    }
    /* Nothing lost, nothing duplicated. */
    uint64_t un = (uint64_t)n;
    for (int p = 0; p < NPROD; p++) {
        assert_int_equal(total.count[p], un);
        assert_int_equal(total.sum[p], un * (un - 1) / 2);
        assert_int_equal(total.sumsq[p], (un - 1) * un * (2 * un - 1) / 6);
    }
    assert_int_equal(mp_queue_qsize(q), 0);
}

static void test_mpmc_small(void **state)
{
    mp_queue *q = mp_queue_new();
    run_mpmc(q, 20000);
    mp_queue_free(q);
    q = mp_queue_new(.maxsize = 7); /* contended, bounded, wraps a lot */
    run_mpmc(q, 5000);
    mp_queue_free(q);
    /* 4 slots that overflow after 50 us full: ring and overflow list
     * interleave under contention. */
    mp__ring_set_patience(50000);
    q = mp_queue_new(.capacity = 512);
    run_mpmc(q, 5000);
    mp_queue_free(q);
    mp__ring_set_patience(0);
}

static void test_mpmc_1e6(void **state)
{
    mp_queue *q = mp_queue_new();
    run_mpmc(q, 1000000);
    mp_queue_free(q);
}

/* ---- threads of one process ---------------------------------------------- */

struct thread_arg {
    mp_queue *q;
    int id;
    long sum;
};

static void *thread_producer(void *arg)
{
    struct thread_arg *a = arg;
    for (int i = 1; i <= 20000; i++)
        if (put_int(a->q, i) != 0)
            a->sum = -1;
    return NULL;
}

static void *thread_consumer(void *arg)
{
    struct thread_arg *a = arg;
    for (;;) {
        int v = get_int(a->q, 30.0);
        if (v == 0)
            break;
        if (v < 0) {
            a->sum = -1;
            break;
        }
        a->sum += v;
    }
    return NULL;
}

static void test_threads(void **state)
{
    mp_queue *q = mp_queue_new(.maxsize = 16);
    pthread_t t[4];
    struct thread_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (struct thread_arg){q, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, i < 2 ? thread_producer : thread_consumer,
                                        &a[i]),
                         0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(put_int(q, 0), 0);
    assert_int_equal(put_int(q, 0), 0);
    for (int i = 2; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(a[0].sum, 0);
    assert_int_equal(a[1].sum, 0);
    assert_int_equal(a[2].sum + a[3].sum, 2L * 20000 * 20001 / 2);
    mp_queue_free(q);
}

/* ---- large messages ------------------------------------------------------ */

struct big_arg {
    mp_queue *q;
    size_t size;
};

static int child_put_big(void *arg)
{
    struct big_arg *a = arg;
    uint64_t *buf = malloc(a->size);
    if (buf == NULL)
        return 2;
    for (size_t i = 0; i < a->size / 8; i++)
        buf[i] = i * 0x9e3779b97f4a7c15ull;
    int rc = mp_queue_put(a->q, buf, a->size, MP_FOREVER);
    free(buf);
    return rc == 0 ? 0 : 1;
}

static void big_message(size_t size)
{
    /* Far larger than the ring: it goes through one shared block. */
    mp_queue *q = mp_queue_new(.capacity = 4096);
    struct big_arg a = {q, size};
    pid_t c = mpt_fork(child_put_big, &a);
    /* The producer has exited before anyone reads: the message survives. */
    assert_int_equal(wait_within(c, 120), 0);
    char small[16];
    size_t len = 0;
    assert_int_equal(mp_queue_get(q, small, sizeof small, &len, 0), MP_ETOOSHORT);
    assert_int_equal(len, size);
    uint64_t *p = NULL;
    assert_int_equal(mp_queue_get_alloc(q, (void **)&p, &len, 0), 0);
    assert_int_equal(len, size);
    size_t bad = 0;
    for (size_t i = 0; i < size / 8; i++)
        bad += p[i] != i * 0x9e3779b97f4a7c15ull;
    assert_int_equal(bad, 0);
    free(p);
    assert_int_equal(mp_queue_empty(q), 1);
    mp_queue_free(q);
}

static void test_64_mib_message(void **state)
{
    big_message((size_t)64 << 20);
}

static void test_one_gib_message(void **state)
{
    big_message((size_t)1 << 30);
}

/* ---- SIGKILL in the middle of put and get -------------------------------- */

struct stop_arg {
    mp_queue *q;
    int point;
    int fd;
    size_t len;
};

static int child_stop_in_put(void *arg)
{
    struct stop_arg *a = arg;
    unsigned char *buf = malloc(a->len ? a->len : 1);
    memset(buf, 0xee, a->len);
    mp__ring_stop_at(a->point, a->fd);
    mp_queue_put(a->q, buf, a->len, MP_FOREVER);
    return 99; /* never reached: the hook stops the put */
}

static int child_stop_in_get(void *arg)
{
    struct stop_arg *a = arg;
    void *p;
    size_t len;
    mp__ring_stop_at(a->point, a->fd);
    mp_queue_get_alloc(a->q, &p, &len, 30.0);
    return 99;
}

/* Start fn, wait until it has stopped at its hook, and SIGKILL it there. */
static void stop_and_kill(int (*fn)(void *), mp_queue *q, int point, size_t len)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    struct stop_arg a = {q, point, fds[1], len};
    pid_t c = mpt_fork(fn, &a);
    close(fds[1]);
    struct pollfd pfd = {fds[0], POLLIN, 0};
    assert_int_equal(poll(&pfd, 1, 20000), 1);
    char ch;
    assert_int_equal(read(fds[0], &ch, 1), 1);
    close(fds[0]);
    kill(c, SIGKILL);
    assert_int_equal(mpt_wait_status(c), 1000 + SIGKILL);
}

static void test_kill_producer_mid_put(void **state)
{
    mp_queue *q = mp_queue_new();
    assert_int_equal(put_int(q, 1), 0);
    stop_and_kill(child_stop_in_put, q, MP__RING_STOP_PUT, 64);
    assert_int_equal(put_int(q, 2), 0);
    /* The dead put is dropped whole; nobody waits on it for long. */
    double t0 = mp__now();
    assert_int_equal(get_int(q, 10.0), 1);
    assert_int_equal(get_int(q, 10.0), 2);
    assert_true(mp__now() - t0 < 5.0);
    assert_int_equal(get_int(q, 0), -1000 + MP_EEMPTY);
    assert_int_equal(mp_queue_qsize(q), 0);
    /* The queue keeps working for many laps. */
    for (int i = 0; i < 3000; i++) {
        assert_int_equal(put_int(q, i), 0);
        assert_int_equal(get_int(q, 0), i);
    }
    mp_queue_free(q);
}

static void test_kill_producer_nowait_consumers(void **state)
{
    /* Consumers that only poll with get_nowait still get past a dead
     * producer's claim, and producers that only put_nowait past a dead
     * consumer's. */
    mp_queue *q = mp_queue_new(.maxsize = 2);
    stop_and_kill(child_stop_in_put, q, MP__RING_STOP_PUT, 16);
    assert_int_equal(put_int(q, 7), 0);
    int v = -1, rc = MP_EEMPTY;
    for (int i = 0; i < 1000 && rc == MP_EEMPTY; i++)
        rc = mp_queue_get_nowait(q, &v, sizeof v, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(v, 7);

    assert_int_equal(put_int(q, 8), 0);
    assert_int_equal(put_int(q, 9), 0);
    stop_and_kill(child_stop_in_get, q, MP__RING_STOP_GET, 0);
    assert_int_equal(get_int(q, 0), 9);
    rc = MP_EFULL;
    for (int i = 0; i < 1000 && rc == MP_EFULL; i++)
        rc = mp_queue_put_nowait(q, &(int){10}, sizeof(int));
    assert_int_equal(rc, 0);
    assert_int_equal(get_int(q, 0), 10);
    mp_queue_free(q);
}

static void test_kill_producer_with_waiting_consumer(void **state)
{
    mp_queue *q = mp_queue_new();
    pid_t c = mpt_fork(child_get_42, q); /* blocked in get */
    usleep(50000);
    stop_and_kill(child_stop_in_put, q, MP__RING_STOP_PUT, 20);
    assert_int_equal(put_int(q, 42), 0);
    assert_int_equal(wait_within(c, 20), 0);
    mp_queue_free(q);
}

static void test_kill_producer_large_and_bounded(void **state)
{
    /* A block attached by the dead producer; a bounded ring that wraps
     * onto the dead claim, so producers must take it over. */
    mp_queue *q = mp_queue_new(.maxsize = 2);
    stop_and_kill(child_stop_in_put, q, MP__RING_STOP_PUT_LARGE, 1 << 20);
    assert_int_equal(put_int(q, 1), 0);
    assert_int_equal(mp_queue_put(q, &(int){2}, sizeof(int), 10.0), 0);
    assert_int_equal(get_int(q, 10.0), 1);
    assert_int_equal(get_int(q, 10.0), 2);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(put_int(q, i), 0);
        assert_int_equal(get_int(q, 10.0), i);
    }
    stop_and_kill(child_stop_in_put, q, MP__RING_STOP_PUT, 8);
    assert_int_equal(put_int(q, 5), 0);
    assert_int_equal(mp_queue_put(q, &(int){6}, sizeof(int), 10.0), 0);
    assert_int_equal(get_int(q, 10.0), 5);
    assert_int_equal(get_int(q, 10.0), 6);
    mp_queue_free(q);
}

static void test_kill_consumer_mid_get(void **state)
{
    mp_queue *q = mp_queue_new(.maxsize = 2);
    assert_int_equal(put_int(q, 1), 0);
    assert_int_equal(put_int(q, 2), 0);
    stop_and_kill(child_stop_in_get, q, MP__RING_STOP_GET, 0);
    /* Message 1 died with its consumer; 2 is intact. */
    assert_int_equal(get_int(q, 10.0), 2);
    /* The dead consumer's slot comes round again and is taken over. */
    assert_int_equal(mp_queue_put(q, &(int){3}, sizeof(int), 10.0), 0);
    assert_int_equal(mp_queue_put(q, &(int){4}, sizeof(int), 10.0), 0);
    assert_int_equal(get_int(q, 10.0), 3);
    assert_int_equal(get_int(q, 10.0), 4);
    assert_int_equal(mp_queue_qsize(q), 0);

    /* The same with a message that travels through a block. */
    unsigned char big[5000];
    fill_pattern(big, sizeof big, 3);
    assert_int_equal(mp_queue_put(q, big, sizeof big, 0), 0);
    assert_int_equal(mp_queue_put(q, big, sizeof big, 0), 0);
    stop_and_kill(child_stop_in_get, q, MP__RING_STOP_GET, 0);
    unsigned char out[5000];
    size_t len = 0;
    assert_int_equal(mp_queue_get(q, out, sizeof out, &len, 10.0), 0);
    assert_true(len == sizeof big && check_pattern(out, len, 3));
    for (int i = 0; i < 10; i++) {
        assert_int_equal(mp_queue_put(q, big, sizeof big, 10.0), 0);
        assert_int_equal(mp_queue_get(q, out, sizeof out, &len, 10.0), 0);
        assert_true(len == sizeof big && check_pattern(out, len, 3));
    }
    mp_queue_free(q);
}

static void test_kill_in_overflow(void **state)
{
    mp_queue *q = mp_queue_new(.capacity = 256); /* 2 slots */
    for (int i = 1; i <= 3; i++)                 /* 3 overflows at once: nowait */
        assert_int_equal(mp_queue_put_nowait(q, &i, sizeof i), 0);
    assert_int_equal(mp_queue_qsize(q), 3);
    /* Killed holding the overflow lock, its node linked but the list's
     * tail not yet updated: the next locker repairs the list. */
    stop_and_kill(child_stop_in_put, q, MP__RING_STOP_PUT_OVERFLOW, sizeof(int));
    assert_int_equal(put_int(q, 5), 0);
    assert_int_equal(get_int(q, 10.0), 1);
    assert_int_equal(get_int(q, 10.0), 2);
    assert_int_equal(get_int(q, 10.0), 3);
    int v = get_int(q, 10.0); /* the dead producer's message, linked whole */
    assert_int_equal(v, (int)0xeeeeeeee);
    assert_int_equal(get_int(q, 10.0), 5);
    assert_int_equal(get_int(q, 0), -1000 + MP_EEMPTY);

    /* Killed holding the lock in the middle of unlinking. */
    for (int i = 1; i <= 4; i++)
        assert_int_equal(mp_queue_put_nowait(q, &i, sizeof i), 0);
    assert_int_equal(get_int(q, 0), 1);
    assert_int_equal(get_int(q, 0), 2);
    stop_and_kill(child_stop_in_get, q, MP__RING_STOP_GET_OVERFLOW, 0);
    assert_int_equal(get_int(q, 10.0), 4);
    assert_int_equal(mp_queue_qsize(q), 0);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(put_int(q, i), 0);
        assert_int_equal(get_int(q, 0), i);
    }
    mp_queue_free(q);
}

/* ---- close --------------------------------------------------------------- */

static int child_use_after_parent_close(void *arg)
{
    mp_queue *q = arg;
    /* Forked after the parent closed: open here, as in Python. */
    if (get_int(q, 5.0) != 1)
        return 1;
    return put_int(q, 2) == 0 ? 0 : 2;
}

static void test_close(void **state)
{
    mp_queue *q = mp_queue_new();
    assert_int_equal(mp_queue_join_thread(q), MP_EINVAL); /* not closed */
    assert_int_equal(mp_queue_cancel_join_thread(q), 0);
    assert_int_equal(put_int(q, 1), 0);
    assert_int_equal(mp_queue_close(q), 0);
    assert_int_equal(mp_queue_close(q), 0);
    assert_int_equal(mp_queue_join_thread(q), 0);
    int v = 0;
    void *p;
    assert_int_equal(put_int(q, 3), MP_EINVAL);
    assert_int_equal(mp_queue_put_nowait(q, &v, sizeof v), MP_EINVAL);
    assert_int_equal(mp_queue_get(q, &v, sizeof v, NULL, 0), MP_EINVAL);
    assert_int_equal(mp_queue_get_nowait(q, &v, sizeof v, NULL), MP_EINVAL);
    assert_int_equal(mp_queue_get_alloc(q, &p, NULL, 0), MP_EINVAL);
    assert_int_equal(mp_queue_qsize(q), 1);
    pid_t c = mpt_fork(child_use_after_parent_close, q);
    assert_int_equal(wait_within(c, 20), 0);
    assert_int_equal(mp_queue_qsize(q), 1);
    assert_int_equal(mp_queue_empty(q), 0);
    mp_queue_free(q);

    /* Many queues closed: the process-local record grows. */
    mp_queue *qs[200];
    for (int i = 0; i < 200; i++) {
        qs[i] = mp_queue_new(.capacity = 256);
        assert_int_equal(mp_queue_close(qs[i]), 0);
    }
    mp_queue *open = mp_queue_new();
    assert_int_equal(put_int(open, 5), 0);
    for (int i = 0; i < 200; i++) {
        assert_int_equal(put_int(qs[i], 1), MP_EINVAL);
        mp_queue_free(qs[i]);
    }
    assert_int_equal(get_int(open, 0), 5);
    mp_queue_free(open);
}

/* ---- JoinableQueue ------------------------------------------------------- */

static int child_consume_two_tasks(void *arg)
{
    mp_queue *q = arg;
    for (int i = 0; i < 2; i++)
        if (get_int(q, 10.0) < 0)
            return 1;
    usleep(50000);
    for (int i = 0; i < 2; i++)
        if (mp_queue_task_done(q) != 0)
            return 2;
    return 0;
}

static void test_joinable(void **state)
{
    mp_queue *q = mp_joinable_queue_new();
    assert_non_null(q);
    assert_int_equal(mp_queue_join(q, 0), 0);
    assert_int_equal(mp_queue_join(q, MP_FOREVER), 0);
    assert_int_equal(mp_queue_task_done(q), MP_EINVAL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(put_int(q, i), 0);
    double t0 = mp__now();
    assert_int_equal(mp_queue_join(q, 0.1), MP_ETIMEDOUT);
    assert_true(mp__now() - t0 >= 0.1);
    assert_int_equal(mp_queue_join(q, 0), MP_ETIMEDOUT);
    assert_int_equal(get_int(q, 0), 0);
    assert_int_equal(mp_queue_task_done(q), 0);
    assert_int_equal(mp_queue_task_done(q), MP_EINVAL); /* over-call */
    assert_int_equal(mp_queue_join(q, 0), MP_ETIMEDOUT);
    pid_t c = mpt_fork(child_consume_two_tasks, q);
    t0 = mp__now();
    assert_int_equal(mp_queue_join(q, 20.0), 0);
    assert_true(mp__now() - t0 >= 0.04);
    assert_int_equal(wait_within(c, 20), 0);
    assert_int_equal(mp_queue_task_done(q), MP_EINVAL);
    /* Through the overflow list and after a consumer killed mid-get. */
    mp_queue *o = mp_joinable_queue_new(.capacity = 256);
    for (int i = 0; i < 6; i++)
        assert_int_equal(mp_queue_put_nowait(o, &i, sizeof i), 0);
    stop_and_kill(child_stop_in_get, o, MP__RING_STOP_GET, 0);
    for (int i = 1; i < 6; i++) {
        assert_int_equal(get_int(o, 10.0), i);
        assert_int_equal(mp_queue_join(o, 0), MP_ETIMEDOUT);
        assert_int_equal(mp_queue_task_done(o), 0);
    }
    /* The task that died with its consumer does not hold join up. */
    assert_int_equal(mp_queue_join(o, 10.0), 0);
    mp_queue_free(o);
    mp_queue_free(q);
}

/* ---- SimpleQueue --------------------------------------------------------- */

static int child_simple_echo(void *arg)
{
    mp_simple_queue *s = arg;
    char buf[32];
    size_t len = 0;
    if (mp_simple_queue_get(s, buf, sizeof buf, &len) != 0)
        return 1;
    return mp_simple_queue_put(s, buf, len) == 0 ? 0 : 2;
}

static void test_simple_queue(void **state)
{
    mp_simple_queue *s = mp_simple_queue_new();
    assert_non_null(s);
    assert_int_equal(mp_simple_queue_empty(s), 1);
    assert_int_equal(mp_simple_queue_put(s, "hello", 6), 0);
    assert_int_equal(mp_simple_queue_empty(s), 0);
    pid_t c = mpt_fork(child_simple_echo, s);
    assert_int_equal(wait_within(c, 20), 0);
    char buf[8];
    size_t len = 0;
    assert_int_equal(mp_simple_queue_get(s, buf, 2, &len), MP_ETOOSHORT);
    assert_int_equal(len, 6);
    void *p = NULL;
    assert_int_equal(mp_simple_queue_get_alloc(s, &p, &len), 0);
    assert_int_equal(len, 6);
    assert_string_equal(p, "hello");
    free(p);
    assert_int_equal(mp_simple_queue_put(s, NULL, 0), 0);
    assert_int_equal(mp_simple_queue_get(s, NULL, 0, &len), 0);
    assert_int_equal(len, 0);
    assert_int_equal(mp_simple_queue_put(s, NULL, 3), MP_EINVAL);
    assert_int_equal(mp_simple_queue_get(s, NULL, 3, &len), MP_EINVAL);
    assert_int_equal(mp_simple_queue_get_alloc(s, NULL, &len), MP_EINVAL);
    for (int i = 0; i < 5000; i++) /* never blocks */
        assert_int_equal(mp_simple_queue_put(s, &i, sizeof i), 0);
    for (int i = 0; i < 5000; i++) {
        int v = -1;
        assert_int_equal(mp_simple_queue_get(s, &v, sizeof v, &len), 0);
        assert_int_equal(v, i);
    }
    assert_int_equal(mp_simple_queue_close(s), 0);
    assert_int_equal(mp_simple_queue_close(s), 0);
    assert_int_equal(mp_simple_queue_put(s, "x", 1), MP_EINVAL);
    assert_int_equal(mp_simple_queue_get(s, buf, sizeof buf, &len), MP_EINVAL);
    assert_int_equal(mp_simple_queue_get_alloc(s, &p, &len), MP_EINVAL);
    assert_int_equal(mp_simple_queue_empty(s), MP_EINVAL);
    mp_simple_queue_free(s);
}

static void test_free_with_messages(void **state)
{
    /* Inline, block and overflowing messages are all released. */
    mp_queue *q = mp_queue_new(.capacity = 256);
    unsigned char big[100000];
    fill_pattern(big, sizeof big, 1);
    for (int i = 0; i < 10; i++)
        assert_int_equal(mp_queue_put_nowait(q, big, i % 2 ? sizeof big : 10), 0);
    mp_queue_free(q);
    q = mp_queue_new(.maxsize = 1000000); /* reserved, barely touched */
    assert_int_equal(put_int(q, 1), 0);
    mp_queue_free(q);
}


/* ---- chaos: producers and consumers killed at random --------------------- */

#define QC_PRODUCERS 3
#define QC_CONSUMERS 3
#define QC_INCARNATIONS 512
#define QC_MAXSEQ (1 << 17)
#define QC_MAXLEN 70000

struct qc_msg {
    uint32_t inc, seq, len, sum;
    unsigned char payload[];
};

struct qc_shared {
    mp_queue *q;
    uint64_t seed;
    _Atomic int stop, drain, dups, torn, beyond;
    _Atomic uint32_t acked[QC_INCARNATIONS];
    _Atomic uint8_t seen[QC_INCARNATIONS][QC_MAXSEQ / 8];
};

struct qc_child {
    struct qc_shared *sh;
    int inc;
};

static uint32_t qc_sum(const unsigned char *p, size_t n, uint32_t seq)
{
    uint32_t h = 2166136261u ^ seq;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static int qc_producer(void *arg)
{
    struct qc_child *c = arg;
    struct qc_shared *sh = c->sh;
    uint64_t rng = sh->seed ^ ((uint64_t)c->inc * 0x9e3779b97f4a7c15ull) ^ 1;
    struct qc_msg *m = malloc(sizeof *m + QC_MAXLEN);
    if (m == NULL)
        return 2;
    for (uint32_t seq = 1; seq < QC_MAXSEQ && !atomic_load(&sh->stop); seq++) {
        uint64_t r = mpt_rand(&rng);
        /* Mostly small, some past the inline slot, a few large blocks. */
        uint32_t len = r % 16 == 0 ? (uint32_t)(r >> 8) % QC_MAXLEN : (uint32_t)(r >> 8) % 300;
        fill_pattern(m->payload, len, (unsigned)(seq * 7 + (uint32_t)c->inc));
        *m = (struct qc_msg){(uint32_t)c->inc, seq, len, qc_sum(m->payload, len, seq)};
        int rc = mp_queue_put(sh->q, m, sizeof *m + len, 10.0);
        if (rc != 0) {
            fprintf(stderr, "queue chaos: put failed: %s\n", mp_err_name(rc));
            return 3;
        }
        atomic_store(&sh->acked[c->inc], seq);
    }
    free(m);
    return 0;
}

static int qc_consumer(void *arg)
{
    struct qc_child *c = arg;
    struct qc_shared *sh = c->sh;
    size_t cap = sizeof(struct qc_msg) + QC_MAXLEN;
    struct qc_msg *m = malloc(cap);
    if (m == NULL)
        return 2;
    for (;;) {
        size_t len = 0;
        int rc = mp_queue_get(sh->q, m, cap, &len, 0.05);
        if (rc == MP_EEMPTY) {
            if (atomic_load(&sh->drain))
                break;
            continue;
        }
        if (rc != 0)
            return 4;
        if (len < sizeof *m || len != sizeof *m + m->len || m->inc >= QC_INCARNATIONS ||
            m->seq >= QC_MAXSEQ || m->sum != qc_sum(m->payload, m->len, m->seq) ||
            !check_pattern(m->payload, m->len, m->seq * 7 + m->inc)) {
            atomic_fetch_add(&sh->torn, 1);
            continue;
        }
        uint8_t bit = (uint8_t)(1u << (m->seq % 8));
        if (atomic_fetch_or(&sh->seen[m->inc][m->seq / 8], bit) & bit)
            atomic_fetch_add(&sh->dups, 1);
    }
    free(m);
    return 0;
}

static bool qc_seen(struct qc_shared *sh, int inc, uint32_t seq)
{
    return atomic_load(&sh->seen[inc][seq / 8]) & (1u << (seq % 8));
}

/*
 * Producers and consumers of one bounded queue, SIGKILLed at random points
 * for a few seconds while the others keep working and replacements start.
 * Then: every message whose put returned 0 arrived, except at most one per
 * consumer killed (the one it was taking out: docs/queues.md); of a killed
 * producer's put in progress, the message arrived whole or not at all;
 * nothing is duplicated or torn; nobody hangs.
 */
static void run_queue_chaos(double seconds, size_t maxsize)
{
    uint64_t rng = mpt_seed("queue chaos");
    struct qc_shared *sh = mp_shared_alloc(sizeof *sh);
    assert_non_null(sh);
    memset(sh, 0, sizeof *sh);
    sh->seed = rng;
    sh->q = mp_queue_new(.maxsize = maxsize);
    assert_non_null(sh->q);
    struct qc_child args[QC_INCARNATIONS];
    bool killed[QC_INCARNATIONS] = {0};
    pid_t prod[QC_PRODUCERS], cons[QC_CONSUMERS];
    int prod_inc[QC_PRODUCERS];
    int next_inc = 0, consumer_kills = 0, producer_kills = 0, bad_status = 0;
    for (int i = 0; i < QC_PRODUCERS; i++) {
        args[next_inc] = (struct qc_child){sh, next_inc};
        prod_inc[i] = next_inc;
        prod[i] = mpt_fork(qc_producer, &args[next_inc++]);
    }
    struct qc_child cons_arg = {sh, 0};
    for (int i = 0; i < QC_CONSUMERS; i++)
        cons[i] = mpt_fork(qc_consumer, &cons_arg);
    double end = mp__now() + seconds;
    while (mp__now() < end && next_inc < QC_INCARNATIONS) {
        usleep(5000 + mpt_rand(&rng) % 40000);
        uint64_t r = mpt_rand(&rng);
        if (r % 2 == 0) {
            int i = (int)((r >> 8) % QC_PRODUCERS);
            kill(prod[i], SIGKILL);
            int st = mpt_wait_status(prod[i]);
            if (st != 1000 + SIGKILL && st != 0 && bad_status == 0)
                bad_status = st;
            killed[prod_inc[i]] = st != 0;
            producer_kills++;
            args[next_inc] = (struct qc_child){sh, next_inc};
            prod_inc[i] = next_inc;
            prod[i] = mpt_fork(qc_producer, &args[next_inc++]);
        } else {
            int i = (int)((r >> 8) % QC_CONSUMERS);
            kill(cons[i], SIGKILL);
            int st = mpt_wait_status(cons[i]);
            if (st != 1000 + SIGKILL && bad_status == 0)
                bad_status = 100 + st;
            consumer_kills++;
            cons[i] = mpt_fork(qc_consumer, &cons_arg);
        }
    }
    atomic_store(&sh->stop, 1);
    int prod_st[QC_PRODUCERS], cons_st[QC_CONSUMERS];
    for (int i = 0; i < QC_PRODUCERS; i++)
        prod_st[i] = wait_within(prod[i], 30);
    atomic_store(&sh->drain, 1);
    for (int i = 0; i < QC_CONSUMERS; i++)
        cons_st[i] = wait_within(cons[i], 30);
    /* A child's exit status names its failed check (3: a put failed, 4: a
     * get failed); every child is gone before any assert. */
    if (bad_status != 0)
        printf("[ CHAOS    ] a killed child had exited with %d\n", bad_status);
    assert_int_equal(bad_status, 0);
    for (int i = 0; i < QC_PRODUCERS; i++)
        assert_int_equal(prod_st[i], 0);
    for (int i = 0; i < QC_CONSUMERS; i++)
        assert_int_equal(cons_st[i], 0);
    long acked = 0, lost = 0, extra = 0;
    for (int inc = 0; inc < next_inc; inc++) {
        uint32_t a = atomic_load(&sh->acked[inc]);
        acked += a;
        for (uint32_t seq = 1; seq <= a; seq++)
            lost += !qc_seen(sh, inc, seq);
        /* The put in progress when its producer was killed. */
        if (a + 1 < QC_MAXSEQ && qc_seen(sh, inc, a + 1)) {
            assert_true(killed[inc]);
            extra++;
        }
        for (uint32_t seq = a + 2; seq < QC_MAXSEQ; seq++)
            assert_false(qc_seen(sh, inc, seq));
    }
    printf("[ CHAOS    ] %ld acked, %ld lost, %ld unacked arrived; %d producers and %d "
           "consumers killed\n",
           acked, lost, extra, producer_kills, consumer_kills);
    assert_int_equal(atomic_load(&sh->dups), 0);
    assert_int_equal(atomic_load(&sh->torn), 0);
    assert_true(lost <= consumer_kills);
    assert_true(acked > 0);
    assert_int_equal(mp_queue_qsize(sh->q), 0);
    mp_queue_free(sh->q);
    mp_shared_free(sh);
}

static void test_chaos_kills(void **state)
{
    run_queue_chaos(4.0, 64);
    run_queue_chaos(2.0, 4096); /* the overflow list: more than the ring holds */
}

#ifndef MPT_QUEUES_SLOW
#define MPT_QUEUES_SLOW 0
#endif

int main(void)
{
    const struct CMUnitTest unit[] = {
        cmocka_unit_test_setup_teardown(test_fifo_and_size, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_message_sizes, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_slot_sizes, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_zero_length, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_too_short_keeps_message, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_maxsize_and_timeouts, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_blocking_wakeups, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_busy_fenced_wakeups, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_producer_exit_and_join_before_drain, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_overflow_order_with_slow_consumer, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mpmc_small, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_threads, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_kill_producer_mid_put, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_kill_producer_with_waiting_consumer, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_kill_producer_nowait_consumers, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_kill_producer_large_and_bounded, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_kill_consumer_mid_get, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_kill_in_overflow, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_close, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_joinable, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_simple_queue, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_free_with_messages, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_64_mib_message, mpt_setup, mpt_teardown),
    };
    const struct CMUnitTest slow[] = {
        cmocka_unit_test_setup_teardown(test_mpmc_1e6, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_one_gib_message, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_chaos_kills, mpt_setup, mpt_teardown),
    };
    if (getenv("MPT_FILTER") != NULL)
        cmocka_set_test_filter(getenv("MPT_FILTER"));
    if (MPT_QUEUES_SLOW)
        return cmocka_run_group_tests_name("queues_slow", slow, NULL, NULL);
    return cmocka_run_group_tests_name("queues", unit, NULL, NULL);
}
