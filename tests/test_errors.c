/* test_errors.c: every error code has a name and a description. */
#include "internal/mp.h"
#include "mptest.h"

#include <signal.h>
#include <string.h>

static const struct {
    int code;
    const char *name;
} codes[] = {
    {MP_EEMPTY, "MP_EEMPTY"},         {MP_EFULL, "MP_EFULL"},
    {MP_ETIMEDOUT, "MP_ETIMEDOUT"},   {MP_EEOF, "MP_EEOF"},
    {MP_ETOOSHORT, "MP_ETOOSHORT"},   {MP_EAUTH, "MP_EAUTH"},
    {MP_EBROKEN, "MP_EBROKEN"},       {MP_EINVAL, "MP_EINVAL"},
    {MP_EREMOTE, "MP_EREMOTE"},       {MP_EWORKERLOST, "MP_EWORKERLOST"},
    {MP_EOWNERDEAD, "MP_EOWNERDEAD"}, {MP_ESPAWNMAIN, "MP_ESPAWNMAIN"},
};

static void test_every_code_named(void **state)
{
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        assert_true(codes[i].code < -4000);
        assert_string_equal(mp_err_name(codes[i].code), codes[i].name);
        const char *s = mp_strerror(codes[i].code);
        assert_non_null(s);
        assert_string_not_equal(s, "unknown error");
        /* Every code has its own description. */
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(s, mp_strerror(codes[j].code));
    }
}

static void test_errno_codes(void **state)
{
    assert_string_equal(mp_err_name(-ENOMEM), "ENOMEM");
    assert_string_equal(mp_err_name(-EINTR), "EINTR");
    assert_string_equal(mp_strerror(-ENOENT), strerror(ENOENT));
    assert_string_equal(mp_err_name(0), "OK");
    assert_string_equal(mp_strerror(0), "success");
}

static void test_unknown_codes(void **state)
{
    assert_string_equal(mp_err_name(-4999), "UNKNOWN");
    assert_string_equal(mp_strerror(-4999), "unknown error");
    assert_string_equal(mp_err_name(12345), "UNKNOWN");
    assert_string_equal(mp_strerror(-3999), "unknown error");
    assert_string_equal(mp_err_name(MP__ERRNO_LAST), "UNKNOWN");
}

/* The errno and signal name tables (written for C libraries without
 * strerrorname_np and sigabbrev_np) agree with glibc's functions. */
static void test_name_tables(void **state)
{
    assert_string_equal(mp__errno_name(EAGAIN), "EAGAIN");
    assert_string_equal(mp__errno_name(EHWPOISON), "EHWPOISON");
    assert_null(mp__errno_name(0));
    assert_null(mp__errno_name(4095));
    assert_string_equal(mp__signal_abbrev(SIGTERM), "TERM");
    assert_null(mp__signal_abbrev(0));
    assert_null(mp__signal_abbrev(SIGRTMIN));
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 32)
    for (int e = 1; e < 200; e++) {
        const char *want = strerrorname_np(e), *got = mp__errno_name(e);
        if (want == NULL)
            assert_null(got);
        else
            assert_string_equal(got, want);
    }
    for (int s = 1; s < 65; s++) {
        const char *want = sigabbrev_np(s), *got = mp__signal_abbrev(s);
        if (want == NULL)
            assert_null(got);
        else
            assert_string_equal(got, want);
    }
#endif
}

static void test_last_error(void **state)
{
    assert_null(mp__fail_null(MP_EINVAL));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp__fail_null(-ENOMEM));
    assert_int_equal(mp_last_error(), -ENOMEM);
    assert_int_equal(errno, ENOMEM);
}

static void test_deadline(void **state)
{
    mp__deadline d;
    assert_int_equal(mp__deadline_init(&d, -0.5), MP_EINVAL);
    assert_int_equal(mp__deadline_init(&d, -2.0), MP_EINVAL);
    assert_int_equal(mp__deadline_init(&d, 0.0 / 0.0), MP_EINVAL);
    assert_int_equal(mp__deadline_init(&d, MP_FOREVER), 0);
    assert_true(d.forever);
    assert_int_equal(mp__deadline_poll_ms(&d), -1);
    assert_int_equal(mp__deadline_init(&d, 1.0 / 0.0), 0);
    assert_true(d.forever);
    assert_int_equal(mp__deadline_init(&d, 0), 0);
    assert_true(d.nowait);
    assert_true(mp__deadline_expired(&d));
    assert_int_equal(mp__deadline_init(&d, 10.0), 0);
    assert_false(mp__deadline_expired(&d));
    int ms = mp__deadline_poll_ms(&d);
    assert_true(ms > 9000 && ms <= 10000);
}

static int some_function(int x)
{
    return x + 1;
}

static void test_fnref(void **state)
{
    mp__fnref ref;
    assert_int_equal(mp__fnref_make(&ref, (void (*)(void))some_function), 0);
    int (*f)(int) = (int (*)(int))mp__fnref_resolve(&ref);
    assert_ptr_equal(f, some_function);
    assert_int_equal(f(1), 2);
    /* A function in a shared library (the C library). */
    assert_int_equal(mp__fnref_make(&ref, (void (*)(void))strlen), 0);
    assert_ptr_equal(mp__fnref_resolve(&ref), (void (*)(void))strlen);
    /* Data is in no executable segment; NULL is the empty reference. */
    static int data;
    assert_int_equal(mp__fnref_make(&ref, (void (*)(void))(uintptr_t)&data), MP_EINVAL);
    assert_int_equal(mp__fnref_make(&ref, NULL), 0);
    assert_null(mp__fnref_resolve(&ref));
}

static void test_version(void **state)
{
    (void)state;
    assert_int_equal(mp_version(), MP_VERSION_HEX);
    assert_int_equal(mp_version() >> 16, MP_VERSION_MAJOR);
    assert_string_equal(mp_version_string(), MP_VERSION_STRING);
}

/* A caller compiled against a newer header: its struct has one more field. */
typedef struct {
    mp_barrier_options old;
    uint64_t newer_field;
} newer_barrier_options;

static void test_options_size(void **state)
{
    (void)state;
    const size_t base = MP__OPTS_V1(mp_barrier_options, ctx);
    mp_barrier_options o = {.parties = 2};
    mp_barrier *b;
    /* 0 (a zero-initialised struct): the 0.1 layout. */
    assert_non_null(b = mp_barrier_new_opts(&o));
    mp_barrier_free(b);
    /* An older caller: only the fields its size covers are read. */
    o.struct_size = base;
    assert_non_null(b = mp_barrier_new_opts(&o));
    mp_barrier_free(b);
    /* A newer caller: unknown fields left zero are fine, set ones are not. */
    newer_barrier_options n = {.old = {.parties = 2}};
    n.old.struct_size = sizeof n;
    assert_non_null(b = mp_barrier_new_opts(&n.old));
    mp_barrier_free(b);
    n.newer_field = 1;
    assert_null(mp_barrier_new_opts(&n.old));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    /* Sizes no release ever had. */
    o.struct_size = base - 1;
    assert_null(mp_barrier_new_opts(&o));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    o.struct_size = (size_t)1 << 40;
    assert_null(mp_barrier_new_opts(&o));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    /* Functions returning a code, and those that accept NULL options. */
    mp_lock_options lo = {.struct_size = 3};
    assert_null(mp_lock_new_opts(&lo));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    mp_lock *l = mp_lock_new_opts(NULL);
    assert_non_null(l);
    mp_lock_free(l);
    /* The macros fill the size in. */
    assert_non_null(l = mp_lock_new());
    mp_lock_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_named),
        cmocka_unit_test(test_errno_codes),
        cmocka_unit_test(test_unknown_codes),
        cmocka_unit_test(test_name_tables),
        cmocka_unit_test(test_last_error),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_fnref),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_options_size),
    };
    return cmocka_run_group_tests_name(MP_TEST_NAME, tests, NULL, NULL);
}
