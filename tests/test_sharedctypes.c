/* test_sharedctypes.c: Value, Array, RawValue, RawArray. */
#include "internal/mp.h"
#include "mptest.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wchar.h>

static void test_typecodes(void **state)
{
    static const struct {
        char tc;
        size_t size;
        double v;
    } t[] = {
        {'c', 1, 'x'},
        {'b', 1, -128},
        {'B', 1, 255},
        {'h', 2, -32768},
        {'H', 2, 65535},
        {'i', 4, INT_MIN},
        {'I', 4, 4294967295.0},
        {'l', 8, -9007199254740992.0},
        {'L', 8, 9007199254740992.0},
        {'q', 8, -1e18},
        {'Q', 8, 1e19},
        {'f', 4, 0.5},
        {'d', 8, 3.1415927},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        assert_int_equal(mp_typecode_size(t[i].tc), t[i].size);
        mp_value *v = mp_value_new(.typecode = t[i].tc, .value = t[i].v);
        assert_non_null(v);
        assert_int_equal(mp_value_typecode(v), t[i].tc);
        double d = -1;
        assert_int_equal(mp_value_get_double(v, &d), 0);
        assert_true(d == t[i].v);
        assert_non_null(mp_value_ptr_as(v, t[i].size));
        assert_null(mp_value_ptr_as(v, t[i].size + 1));
        mp_value_free(v);
    }
    assert_int_equal(mp_typecode_size('u'), sizeof(wchar_t));
    assert_int_equal(mp_typecode_size(MP_STRUCT), 0);
    assert_int_equal(mp_typecode_size(0), 0);
    assert_int_equal(mp_typecode_size('x'), 0);
}

static void test_value_conversions(void **state)
{
    mp_value *v = mp_value_new(.typecode = 'f', .value = 3.14);
    assert_non_null(v);
    assert_true(MP_VALUE(v, float) == 3.14f);
    MP_VALUE(v, float) = MP_VALUE(v, float) * MP_VALUE(v, float);
    float f;
    assert_int_equal(MP_VALUE_GET(v, &f), 0);
    assert_true(fabsf(f - 9.8596f) < 1e-4f);
    mp_value_free(v);

    v = mp_value_new(.typecode = 'i', .value = 7);
    assert_int_equal(MP_VALUE_SET(v, int, 42), 0);
    assert_int_equal(MP_VALUE(v, int), 42);
    assert_int_equal(mp_value_set_double(v, -5), 0);
    assert_int_equal(MP_VALUE(v, int), -5);
    assert_int_equal(mp_value_set_double(v, 2.5), MP_EINVAL);
    assert_int_equal(mp_value_set_double(v, 0x1p31), MP_EINVAL);
    assert_int_equal(mp_value_set_double(v, NAN), MP_EINVAL);
    assert_int_equal(mp_value_set_double(v, INFINITY), MP_EINVAL);
    assert_int_equal(MP_VALUE(v, int), -5);
    long wrong;
    assert_int_equal(MP_VALUE_GET(v, &wrong), MP_EINVAL);
    assert_int_equal(mp_value_get(v, NULL, sizeof(int)), MP_EINVAL);
    assert_int_equal(mp_value_get_double(v, NULL), MP_EINVAL);
    mp_value_free(v);

    /* Exact 64-bit values through .init. */
    long long big = (1LL << 60) + 1;
    v = mp_raw_value_new(.typecode = 'q', .init = &big);
    long long got = 0;
    assert_int_equal(MP_VALUE_GET(v, &got), 0);
    assert_true(got == big);
    mp_value_free(v);
    unsigned long long top = ULLONG_MAX;
    v = mp_value_new(.typecode = 'Q', .init = &top);
    assert_true(MP_VALUE(v, unsigned long long) == ULLONG_MAX);
    mp_value_free(v);

    /* Values that do not fit the type. */
    static const struct {
        char tc;
        double v;
    } bad[] = {
        {'b', 128}, {'b', -129}, {'B', -1},     {'B', 256},    {'h', 40000},
        {'H', -1},  {'i', 0.5},  {'I', -1},     {'I', 0x1p32}, {'l', 0x1p63},
        {'L', -1},  {'q', NAN},  {'Q', 0x1p64}, {'c', 256},    {'i', INFINITY},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_null(mp_value_new(.typecode = bad[i].tc, .value = bad[i].v));
        assert_int_equal(mp_last_error(), MP_EINVAL);
    }
    /* A float takes any double. */
    v = mp_value_new(.typecode = 'f', .value = 1e300);
    assert_true(isinf(MP_VALUE(v, float)));
    mp_value_free(v);
}

static void test_value_locks(void **state)
{
    /* Default: an RLock of its own. */
    mp_value *v = mp_value_new(.typecode = 'd');
    mp_lock *own = mp_value_get_lock(v);
    assert_non_null(own);
    assert_int_equal(mp_value_acquire(v, MP_FOREVER), 0);
    assert_int_equal(mp_value_acquire(v, 0), 0); /* recursive */
    assert_int_equal(mp_lock_count(own), 2);
    assert_int_equal(MP_VALUE_SET(v, double, 1.5), 0); /* caller holds it */
    assert_int_equal(mp_value_release(v), 0);
    assert_int_equal(mp_value_release(v), 0);
    assert_int_equal(mp_value_release(v), MP_EINVAL);
    mp_value_free(v);
    assert_int_equal(mp_lock_locked(own), MP_EINVAL); /* freed with it */

    /* Python's lock=False, and RawValue. */
    v = mp_value_new(.typecode = 'i', .nolock = true);
    assert_null(mp_value_get_lock(v));
    assert_int_equal(mp_value_acquire(v, 0), MP_EINVAL);
    assert_int_equal(mp_value_release(v), MP_EINVAL);
    assert_int_equal(MP_VALUE_SET(v, int, 3), 0);
    mp_value_free(v);
    v = mp_raw_value_new(.typecode = 'i', .value = 9);
    assert_null(mp_value_get_lock(v));
    assert_int_equal(MP_VALUE(v, int), 9);
    mp_value_free(v);

    /* A given plain Lock, shared by two values; the accessors work inside
     * a section that holds it. */
    mp_lock *l = mp_lock_new();
    mp_value *a = mp_value_new(.typecode = 'i', .lock = l);
    mp_value *b = mp_value_new(.typecode = 'i', .lock = l);
    assert_ptr_equal(mp_value_get_lock(a), l);
    assert_ptr_equal(mp_value_get_lock(b), l);
    assert_int_equal(mp_value_acquire(a, MP_FOREVER), 0);
    assert_int_equal(mp_lock_is_mine(l), 1);
    assert_int_equal(MP_VALUE_SET(a, int, 1), 0);
    assert_int_equal(MP_VALUE_SET(b, int, 2), 0);
    assert_int_equal(mp_value_acquire(b, MP_FOREVER), -EDEADLK);
    assert_int_equal(mp_value_release(b), 0);
    mp_value_free(a);
    mp_value_free(b);
    assert_int_equal(mp_lock_locked(l), 0); /* a given lock survives */

    /* Bad lock options. */
    assert_null(mp_value_new(.typecode = 'i', .lock = l, .nolock = true));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_raw_value_new(.typecode = 'i', .lock = l));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    mp_event *e = mp_event_new();
    assert_null(mp_value_new(.typecode = 'i', .lock = (mp_lock *)e));
    mp_event_free(e);
    /* A value whose given lock was freed. */
    v = mp_value_new(.typecode = 'i', .lock = l);
    mp_lock_free(l);
    assert_null(mp_value_new(.typecode = 'i', .lock = l));
    int x;
    assert_int_equal(MP_VALUE_GET(v, &x), MP_EINVAL);
    assert_int_equal(mp_value_acquire(v, 0), MP_EINVAL);
    mp_value_free(v);
}

struct counter_args {
    mp_value *v;
    int iterations;
};

static int increment(void *arg)
{
    struct counter_args *c = arg;
    for (int i = 0; i < c->iterations; i++) {
        if (mp_value_acquire(c->v, MP_FOREVER) != 0)
            return 1;
        long x = MP_VALUE(c->v, long);
        if (i % 64 == 0)
            sched_yield();
        MP_VALUE(c->v, long) = x + 1;
        if (mp_value_release(c->v) != 0)
            return 2;
    }
    return 0;
}

static void test_value_counter_across_processes(void **state)
{
    enum { N = 4, M = 10000 };
    mp_lock *shared_lock = mp_lock_new();
    mp_value *vals[2] = {mp_value_new(.typecode = 'l'),
                         mp_value_new(.typecode = 'l', .lock = shared_lock)};
    for (int k = 0; k < 2; k++) {
        struct counter_args c = {.v = vals[k], .iterations = M};
        pid_t pids[N];
        for (int i = 0; i < N; i++)
            pids[i] = mpt_fork(increment, &c);
        for (int i = 0; i < N; i++)
            assert_int_equal(mpt_wait_status(pids[i]), 0);
        long total;
        assert_int_equal(MP_VALUE_GET(vals[k], &total), 0);
        assert_int_equal(total, (long)N * M);
        mp_value_free(vals[k]);
    }
    mp_lock_free(shared_lock);
}

static int hold_value_lock(void *arg)
{
    mp_value *v = arg;
    if (mp_value_acquire(v, MP_FOREVER) != 0)
        return 1;
    MP_VALUE(v, int) = 77;
    for (;;)
        pause();
}

static void test_value_owner_dead(void **state)
{
    mp_value *v = mp_value_new(.typecode = 'i');
    pid_t pid = mpt_fork(hold_value_lock, v);
    for (int i = 0; i < 2000 && MP_VALUE(v, int) != 77; i++)
        usleep(1000);
    assert_int_equal(MP_VALUE(v, int), 77);
    kill(pid, SIGKILL);
    assert_int_equal(mpt_wait_status(pid), 1000 + SIGKILL);
    int x = 0;
    assert_int_equal(MP_VALUE_GET(v, &x), MP_EOWNERDEAD);
    assert_int_equal(x, 77);
    assert_int_equal(mp_lock_locked(mp_value_get_lock(v)), 0);
    assert_int_equal(MP_VALUE_SET(v, int, 1), 0);
    mp_value_free(v);
}

static void test_array_basic(void **state)
{
    int init[] = {0, 1, 2, 3, 4};
    mp_array *a = mp_array_new(.typecode = 'i', .size = 5, .init = init);
    assert_non_null(a);
    assert_int_equal(mp_array_len(a), 5);
    assert_int_equal(mp_array_typecode(a), 'i');
    assert_non_null(mp_array_get_lock(a));
    for (int i = 0; i < 5; i++) {
        int x;
        assert_int_equal(MP_ARRAY_GET(a, (size_t)i, &x), 0);
        assert_int_equal(x, i);
        assert_int_equal(MP_ARRAY_SET(a, (size_t)i, int, x *x *x), 0);
    }
    int out[5];
    assert_int_equal(mp_array_read(a, 0, 5, out, sizeof out[0]), 0);
    int cubes[] = {0, 1, 8, 27, 64};
    assert_memory_equal(out, cubes, sizeof cubes);
    assert_int_equal(mp_array_write(a, 3, 2, (int[]){-3, -4}, sizeof(int)), 0);
    assert_int_equal(MP_ARRAY(a, int)[3], -3);
    assert_int_equal(MP_ARRAY(a, int)[4], -4);
    double d;
    assert_int_equal(mp_array_get_double(a, 2, &d), 0);
    assert_true(d == 8);
    assert_int_equal(mp_array_set_double(a, 2, 9), 0);
    assert_int_equal(MP_ARRAY(a, int)[2], 9);

    /* Bounds and sizes. */
    int x;
    assert_int_equal(MP_ARRAY_GET(a, 5, &x), MP_EINVAL);
    assert_int_equal(MP_ARRAY_SET(a, 5, int, 1), MP_EINVAL);
    assert_int_equal(mp_array_read(a, 4, 2, out, sizeof out[0]), MP_EINVAL);
    assert_int_equal(mp_array_read(a, 6, 0, out, sizeof out[0]), MP_EINVAL);
    assert_int_equal(mp_array_read(a, 5, 0, NULL, sizeof out[0]), 0);
    assert_int_equal(mp_array_read(a, 0, SIZE_MAX, out, sizeof out[0]), MP_EINVAL);
    assert_int_equal(mp_array_read(a, 0, 1, NULL, sizeof out[0]), MP_EINVAL);
    assert_int_equal(mp_array_write(a, 0, 1, out, sizeof(double)), MP_EINVAL);
    assert_int_equal(mp_array_get_double(a, 5, &d), MP_EINVAL);
    assert_int_equal(mp_array_set_double(a, 0, 0.5), MP_EINVAL);
    assert_null(MP_ARRAY(a, double));
    mp_array_free(a);

    /* Zero-filled, empty, raw. */
    a = mp_array_new(.typecode = 'd', .size = 1000);
    for (int i = 0; i < 1000; i++)
        assert_true(MP_ARRAY(a, double)[i] == 0);
    mp_array_free(a);
    a = mp_array_new(.typecode = 'b', .size = 0);
    assert_non_null(a);
    assert_int_equal(mp_array_len(a), 0);
    mp_array_free(a);
    a = mp_raw_array_new(.typecode = 'c', .size = 6, .init = "hello");
    assert_null(mp_array_get_lock(a));
    assert_int_equal(mp_array_acquire(a, 0), MP_EINVAL);
    assert_string_equal(MP_ARRAY(a, char), "hello");
    mp_array_free(a);

    /* A large array is whole pages of the arena. */
    a = mp_array_new(.typecode = 'q', .size = 1 << 20);
    assert_non_null(a);
    MP_ARRAY(a, long long)[(1 << 20) - 1] = 5;
    mp_array_free(a);
}

static void test_array_bad_options(void **state)
{
    assert_null(mp_array_new(.typecode = 'x', .size = 3));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_array_new(.size = 3));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_array_new(.typecode = 'd', .size = SIZE_MAX));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_array_new(.typecode = 'd', .size = SIZE_MAX / 8));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_array_new(.typecode = 'd', .size = (size_t)1 << 50));
    assert_int_equal(mp_last_error(), -ENOMEM);
    mp_lock *l = mp_lock_new();
    assert_null(mp_array_new(.typecode = 'i', .size = 1, .lock = l, .nolock = true));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_raw_array_new(.typecode = 'i', .size = 1, .lock = l));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    mp_array *a = mp_array_new(.typecode = 'i', .size = 2, .lock = l);
    assert_ptr_equal(mp_array_get_lock(a), l);
    assert_int_equal(mp_array_acquire(a, 0), 0);
    assert_int_equal(mp_lock_is_mine(l), 1);
    assert_int_equal(mp_array_release(a), 0);
    mp_array_free(a);
    mp_lock_free(l);
    assert_null(mp_value_new());
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_value_new(.typecode = 'z'));
    assert_int_equal(mp_last_error(), MP_EINVAL);
}

static int negate(void *arg)
{
    mp_array *a = arg;
    if (mp_array_acquire(a, MP_FOREVER) != 0)
        return 1;
    for (ssize_t i = 0; i < mp_array_len(a); i++)
        MP_ARRAY(a, int)[i] = -MP_ARRAY(a, int)[i];
    return mp_array_release(a) == 0 ? 0 : 2;
}

static void test_array_across_processes(void **state)
{
    int init[10];
    for (int i = 0; i < 10; i++)
        init[i] = i;
    mp_array *a = mp_array_new(.typecode = 'i', .size = 10, .init = init);
    pid_t pid = mpt_fork(negate, a);
    assert_int_equal(mpt_wait_status(pid), 0);
    int out[10];
    assert_int_equal(mp_array_read(a, 0, 10, out, sizeof out[0]), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(out[i], -i);
    mp_array_free(a);
}

static void test_bad_and_freed(void **state)
{
    int x = 0;
    double d;
    assert_null(mp_value_ptr(NULL));
    assert_null(mp_value_ptr_as(NULL, 4));
    assert_int_equal(mp_value_get(NULL, &x, sizeof x), MP_EINVAL);
    assert_int_equal(mp_value_set(NULL, &x, sizeof x), MP_EINVAL);
    assert_int_equal(mp_value_get_double(NULL, &d), MP_EINVAL);
    assert_int_equal(mp_value_set_double(NULL, 1), MP_EINVAL);
    assert_int_equal(mp_value_typecode(NULL), 0);
    assert_null(mp_value_get_lock(NULL));
    assert_int_equal(mp_value_acquire(NULL, 0), MP_EINVAL);
    assert_int_equal(mp_value_release(NULL), MP_EINVAL);
    mp_value_free(NULL);
    assert_null(mp_array_ptr(NULL));
    assert_null(mp_array_ptr_as(NULL, 4));
    assert_int_equal(mp_array_len(NULL), MP_EINVAL);
    assert_int_equal(mp_array_typecode(NULL), 0);
    assert_int_equal(mp_array_get(NULL, 0, &x, sizeof x), MP_EINVAL);
    assert_int_equal(mp_array_set(NULL, 0, &x, sizeof x), MP_EINVAL);
    assert_int_equal(mp_array_read(NULL, 0, 1, &x, sizeof x), MP_EINVAL);
    assert_int_equal(mp_array_write(NULL, 0, 1, &x, sizeof x), MP_EINVAL);
    assert_int_equal(mp_array_get_double(NULL, 0, &d), MP_EINVAL);
    assert_int_equal(mp_array_set_double(NULL, 0, 1), MP_EINVAL);
    assert_null(mp_array_get_lock(NULL));
    assert_int_equal(mp_array_acquire(NULL, 0), MP_EINVAL);
    assert_int_equal(mp_array_release(NULL), MP_EINVAL);
    mp_array_free(NULL);

    /* A value is not an array and the other way round. */
    mp_value *v = mp_value_new(.typecode = 'i');
    mp_array *a = mp_array_new(.typecode = 'i', .size = 1);
    assert_int_equal(mp_array_len((mp_array *)v), MP_EINVAL);
    assert_int_equal(mp_value_get((mp_value *)a, &x, sizeof x), MP_EINVAL);
    mp_value_free(v);
    mp_array_free(a);
    assert_int_equal(mp_value_get(v, &x, sizeof x), MP_EINVAL);
    assert_int_equal(mp_value_acquire(v, 0), MP_EINVAL);
    assert_null(mp_value_ptr(v));
    assert_int_equal(mp_array_len(a), MP_EINVAL);
    assert_null(mp_array_ptr(a));
    mp_value_free(v); /* double free ignored */
    mp_array_free(a);
}

/* ---- structs, 'u', copy, synchronized --------------------------------------- */

struct point {
    double x, y;
    int tag;
};

static int setup_methods(void **state)
{
    assert_int_equal(mp__heap_init(), 0);
    /* The forkserver's fds are opened before the leak count. */
    assert_int_equal(mp_forkserver_ensure_running(), 0);
    mpt_leak_begin();
    return 0;
}

struct shared_objs {
    mp_value *pt;   /* a Point, with a lock */
    mp_array *pts;  /* 4 Points, with a lock */
    mp_array *text; /* 'u' */
    mp_array *sync; /* synchronized over a raw array */
};

/* In a child: move every point, append to the text, add to sync. */
static int struct_child(void *arg, size_t n)
{
    const struct shared_objs *o = arg;
    struct point p;
    if (MP_VALUE_GET(o->pt, &p) != 0 || p.x != 1.5 || p.tag != 7)
        return 1;
    p.x += 10;
    p.tag = 8;
    if (mp_value_set(o->pt, &p, sizeof p) != 0)
        return 2;
    if (mp_array_acquire(o->pts, MP_FOREVER) != 0)
        return 3;
    for (size_t i = 0; i < 4; i++)
        MP_ARRAY(o->pts, struct point)[i].y += 100;
    mp_array_release(o->pts);
    wchar_t w[3] = {L'\u00e9', L'\U0001F600', 0};
    if (mp_array_write(o->text, 2, 3, w, sizeof w[0]) != 0)
        return 4;
    for (size_t i = 0; i < 3; i++) {
        int v;
        if (mp_array_acquire(o->sync, MP_FOREVER) != 0)
            return 5;
        MP_ARRAY_GET(o->sync, i, &v);
        MP_ARRAY_SET(o->sync, i, int, v + 1);
        mp_array_release(o->sync);
    }
    return 0;
}

static void test_struct_and_wchar(void **state)
{
    /* Errors first. */
    assert_null(mp_value_new(.typecode = MP_STRUCT));
    assert_int_equal(mp_last_error(), MP_EINVAL); /* no .itemsize */
    assert_null(mp_value_new(.typecode = MP_STRUCT, .itemsize = 8, .value = 2));
    assert_null(mp_value_new(.typecode = 'i', .itemsize = 8));
    assert_null(mp_value_new(.typecode = 'u', .value = 0x110000));
    assert_null(mp_value_new(.typecode = 'u', .value = -1));
    mp_value *ok = mp_value_new(.typecode = 'i', .itemsize = sizeof(int), .value = 3);
    assert_non_null(ok);
    mp_value_free(ok);

    const char *methods[] = {"fork", "spawn", "forkserver"};
    for (int m = 0; m < 3; m++) {
        struct shared_objs o;
        /* Padding included (compared below with assert_memory_equal): a
         * compound literal's is uninitialised, which valgrind reports. */
        struct point init;
        memset(&init, 0, sizeof init);
        init.x = 1.5;
        init.y = 2.5;
        init.tag = 7;
        o.pt = mp_value_new(.typecode = MP_STRUCT, .itemsize = sizeof(struct point),
                            .init = &init);
        assert_non_null(o.pt);
        assert_int_equal(mp_value_typecode(o.pt), MP_STRUCT);
        assert_int_equal(mp_value_itemsize(o.pt), sizeof(struct point));
        double d;
        assert_int_equal(mp_value_get_double(o.pt, &d), MP_EINVAL);
        assert_int_equal(mp_value_set_double(o.pt, 1), MP_EINVAL);
        assert_null(mp_value_ptr_as(o.pt, sizeof(double)));
        assert_non_null(mp_value_ptr_as(o.pt, sizeof(struct point)));
        assert_true(((uintptr_t)mp_value_ptr(o.pt) & 63) == 0);
        o.pts = mp_array_new(.typecode = MP_STRUCT, .itemsize = sizeof(struct point),
                             .size = 4);
        assert_non_null(o.pts);
        assert_int_equal(mp_array_len(o.pts), 4);
        assert_int_equal(MP_ARRAY(o.pts, struct point)[3].y, 0);
        for (int i = 0; i < 4; i++)
            MP_ARRAY(o.pts, struct point)[i].y = i;
        o.text = mp_array_new(.typecode = 'u', .size = 6, .init = L"ab....");
        assert_non_null(o.text);
        assert_int_equal(mp_array_itemsize(o.text), sizeof(wchar_t));
        assert_int_equal(mp_array_set_double(o.text, 5, 0x263A), 0);
        mp_array *raw = mp_raw_array_new(.typecode = 'i', .size = 3, .init = (int[]){1, 2, 3});
        o.sync = mp_array_synchronized(raw, NULL);
        assert_non_null(o.sync);
        assert_non_null(mp_array_get_lock(o.sync));
        assert_ptr_equal(mp_array_ptr(o.sync), mp_array_ptr(raw));

        mp_process *p = mp_process_new(.target = struct_child, .arg = &o, .arg_size = sizeof o,
                                       .ctx = mp_get_context(methods[m]));
        assert_non_null(p);
        assert_int_equal(mp_process_start(p), 0);
        mpt_join_ok(p, 60);

        struct point pt;
        assert_int_equal(MP_VALUE_GET(o.pt, &pt), 0);
        assert_true(pt.x == 11.5 && pt.y == 2.5 && pt.tag == 8);
        for (int i = 0; i < 4; i++)
            assert_true(MP_ARRAY(o.pts, struct point)[i].y == 100 + i);
        wchar_t w[6];
        assert_int_equal(mp_array_read(o.text, 0, 6, w, sizeof w[0]), 0);
        assert_true(w[0] == L'a' && w[2] == 0xe9 && w[3] == 0x1F600 && w[4] == 0 &&
                    w[5] == 0x263A);
        assert_int_equal(mp_array_get_double(o.text, 3, &d), 0);
        assert_true(d == 0x1F600);
        /* The raw array sees what went through the synchronized one. */
        assert_int_equal(MP_ARRAY(raw, int)[0], 2);
        assert_int_equal(MP_ARRAY(raw, int)[2], 4);

        /* copy(): raw, same type, its own memory. */
        mp_value *c = mp_value_copy(o.pt);
        assert_non_null(c);
        assert_null(mp_value_get_lock(c));
        assert_int_equal(mp_value_typecode(c), MP_STRUCT);
        assert_ptr_not_equal(mp_value_ptr(c), mp_value_ptr(o.pt));
        assert_memory_equal(mp_value_ptr(c), &pt, sizeof pt);
        MP_VALUE(c, struct point).tag = 99;
        assert_int_equal(MP_VALUE(o.pt, struct point).tag, 8);
        mp_array *ca = mp_array_copy(o.text);
        assert_non_null(ca);
        assert_int_equal(mp_array_len(ca), 6);
        assert_memory_equal(mp_array_ptr(ca), w, sizeof w);
        /* synchronized twice, or with a bad lock, is refused. */
        assert_null(mp_array_synchronized(o.sync, NULL));
        assert_int_equal(mp_last_error(), MP_EINVAL);
        assert_null(mp_array_synchronized(o.pts, NULL));
        int not_a_lock[16] = {0};
        assert_null(mp_array_synchronized(ca, (mp_lock *)not_a_lock));
        mp_lock *lk = mp_lock_new();
        mp_value *sv = mp_value_synchronized(c, lk);
        assert_non_null(sv);
        assert_ptr_equal(mp_value_get_lock(sv), lk);
        assert_int_equal(MP_VALUE_GET(sv, &pt), 0);
        assert_int_equal(pt.tag, 99);
        mp_value_free(sv);
        mp_lock_free(lk);
        assert_int_equal(MP_VALUE(c, struct point).tag, 99); /* raw memory kept */
        assert_null(mp_value_copy(NULL));
        mp_value_free(c);
        mp_array_free(ca);
        mp_array_free(o.sync);
        mp_array_free(raw);
        mp_array_free(o.text);
        mp_array_free(o.pts);
        mp_value_free(o.pt);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_typecodes, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_value_conversions, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_value_locks, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_value_counter_across_processes, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_value_owner_dead, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_array_basic, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_array_bad_options, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_array_across_processes, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_bad_and_freed, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_struct_and_wchar, setup_methods, mpt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
