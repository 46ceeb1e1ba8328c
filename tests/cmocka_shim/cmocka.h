/*
 * cmocka_shim/cmocka.h: the part of cmocka's API that libmp's unit tests
 * use, for builds where cmocka itself is not available (the musl build:
 * Debian packages cmocka for glibc only).  Not cmocka: a small runner with
 * the same names.  Each test runs setup, the test and teardown; a failed
 * assertion prints where and why and ends the test (longjmp), skip() ends
 * it as skipped; the group's result is the number of failed tests, as
 * cmocka returns it.  No mocking, no allocation checks, no signal catching
 * (a crash ends the program, which fails it all the same).
 */
#ifndef MPT_CMOCKA_SHIM_H
#define MPT_CMOCKA_SHIM_H

#include <fnmatch.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*CMUnitTestFunction)(void **state);
typedef int (*CMFixtureFunction)(void **state);

struct CMUnitTest {
    const char *name;
    CMUnitTestFunction test_func;
    CMFixtureFunction setup_func;
    CMFixtureFunction teardown_func;
    void *initial_state;
};

#define cmocka_unit_test(f)     \
    {                           \
#f, f, NULL, NULL, NULL \
    }
#define cmocka_unit_test_setup_teardown(f, s, t) \
    {                                            \
#f, f, s, t, NULL                        \
    }

struct mpt_shim {
    jmp_buf jump;
    int in_test;
    const char *filter;
};

/* One per test program, shared by every source that includes this header
 * (a test and mptest.c): a weak definition in each, merged by the linker. */
__attribute__((weak)) struct mpt_shim mpt_shim_state;

static inline struct mpt_shim *mpt_shim(void)
{
    return &mpt_shim_state;
}

#define MPT_SHIM_FAILED 1
#define MPT_SHIM_SKIPPED 2

__attribute__((format(printf, 3, 4), noreturn)) static inline void
mpt_shim_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[  ERROR   ] ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n[   LINE   ] --- %s:%d: error: Failure!\n", file, line);
    va_end(ap);
    fflush(stderr);
    if (mpt_shim()->in_test)
        longjmp(mpt_shim()->jump, MPT_SHIM_FAILED);
    abort();
}

/* Every assertion is an expression, as cmocka's are. */
#define MPT_SHIM_CHECK(cond, ...) \
    ((cond) ? (void)0 : mpt_shim_fail(__FILE__, __LINE__, __VA_ARGS__))

static inline void mpt_shim_str(int want_equal, const char *a, const char *b, const char *file,
                                int line)
{
    int equal = a != NULL && b != NULL && strcmp(a, b) == 0;
    if (equal != want_equal)
        mpt_shim_fail(file, line, "\"%s\" %s \"%s\"", a ? a : "(null)",
                      want_equal ? "!=" : "==", b ? b : "(null)");
}

#define assert_true(c) MPT_SHIM_CHECK((c), "%s is not true", #c)
#define assert_false(c) MPT_SHIM_CHECK(!(c), "%s is not false", #c)
#define assert_null(p) MPT_SHIM_CHECK((p) == NULL, "%s is not NULL", #p)
#define assert_non_null(p) MPT_SHIM_CHECK((p) != NULL, "%s is NULL", #p)
#define assert_int_equal(a, b)                                                           \
    MPT_SHIM_CHECK((intmax_t)(a) == (intmax_t)(b), "%jd != %jd (%s, %s)", (intmax_t)(a), \
                   (intmax_t)(b), #a, #b)
#define assert_int_not_equal(a, b)                                                       \
    MPT_SHIM_CHECK((intmax_t)(a) != (intmax_t)(b), "%jd == %jd (%s, %s)", (intmax_t)(a), \
                   (intmax_t)(b), #a, #b)
#define assert_ptr_equal(a, b)                                                \
    MPT_SHIM_CHECK((uintptr_t)(a) == (uintptr_t)(b), "%#jx != %#jx (%s, %s)", \
                   (uintmax_t)(uintptr_t)(a), (uintmax_t)(uintptr_t)(b), #a, #b)
#define assert_ptr_not_equal(a, b)                                            \
    MPT_SHIM_CHECK((uintptr_t)(a) != (uintptr_t)(b), "%#jx == %#jx (%s, %s)", \
                   (uintmax_t)(uintptr_t)(a), (uintmax_t)(uintptr_t)(b), #a, #b)
#define assert_string_equal(a, b) mpt_shim_str(1, (a), (b), __FILE__, __LINE__)
#define assert_string_not_equal(a, b) mpt_shim_str(0, (a), (b), __FILE__, __LINE__)
#define assert_memory_equal(a, b, n)                                                          \
    MPT_SHIM_CHECK(memcmp((a), (b), (n)) == 0, "%s and %s differ in their %zu bytes", #a, #b, \
                   (size_t)(n))
#define assert_memory_not_equal(a, b, n)                                                     \
    MPT_SHIM_CHECK(memcmp((a), (b), (n)) != 0, "%s and %s are equal in their %zu bytes", #a, \
                   #b, (size_t)(n))
#define fail_msg(...) mpt_shim_fail(__FILE__, __LINE__, __VA_ARGS__)
#define fail() mpt_shim_fail(__FILE__, __LINE__, "fail()")
#define skip()                                           \
    do {                                                 \
        if (mpt_shim()->in_test)                         \
            longjmp(mpt_shim()->jump, MPT_SHIM_SKIPPED); \
        exit(0);                                         \
    } while (0)
#define print_message(...) printf(__VA_ARGS__)
#define print_error(...) fprintf(stderr, __VA_ARGS__)

static inline void cmocka_set_test_filter(const char *pattern)
{
    mpt_shim()->filter = pattern;
}

/* Run one fixture or test: 0, MPT_SHIM_FAILED or MPT_SHIM_SKIPPED. */
static inline int mpt_shim_step(CMUnitTestFunction test, CMFixtureFunction fixture,
                                void **state)
{
    struct mpt_shim *s = mpt_shim();
    int r = setjmp(s->jump);
    if (r != 0) {
        s->in_test = 0;
        return r;
    }
    s->in_test = 1;
    if (test != NULL)
        test(state);
    else if (fixture(state) != 0)
        r = MPT_SHIM_FAILED;
    s->in_test = 0;
    return r;
}

static inline int mpt_shim_run(const char *group, const struct CMUnitTest *tests, size_t n,
                               CMFixtureFunction group_setup, CMFixtureFunction group_teardown)
{
    void *group_state = NULL;
    size_t failed = 0, passed = 0, run = 0;
    printf("[==========] %s: running tests (cmocka shim)\n", group);
    if (group_setup != NULL && mpt_shim_step(NULL, group_setup, &group_state) != 0) {
        printf("[  FAILED  ] GROUP SETUP\n");
        return (int)n;
    }
    for (size_t i = 0; i < n; i++) {
        const struct CMUnitTest *t = &tests[i];
        if (mpt_shim()->filter != NULL && fnmatch(mpt_shim()->filter, t->name, 0) != 0)
            continue;
        void *state = t->initial_state != NULL ? t->initial_state : group_state;
        printf("[ RUN      ] %s\n", t->name);
        fflush(stdout);
        run++;
        int r = 0;
        if (t->setup_func != NULL)
            r = mpt_shim_step(NULL, t->setup_func, &state);
        if (r != 0) /* as cmocka: no test and no teardown after a failed setup */
            r = MPT_SHIM_FAILED;
        else {
            r = mpt_shim_step(t->test_func, NULL, &state);
            if (t->teardown_func != NULL && mpt_shim_step(NULL, t->teardown_func, &state) != 0)
                r = MPT_SHIM_FAILED;
        }
        printf("%s %s\n",
               r == 0                  ? "[       OK ]"
               : r == MPT_SHIM_SKIPPED ? "[  SKIPPED ]"
                                       : "[  FAILED  ]",
               t->name);
        fflush(stdout);
        failed += r == MPT_SHIM_FAILED;
        passed += r == 0;
    }
    if (group_teardown != NULL && mpt_shim_step(NULL, group_teardown, &group_state) != 0)
        failed++;
    printf("[==========] %zu test(s) run.\n[  PASSED  ] %zu test(s).\n", run, passed);
    if (failed)
        printf("[  FAILED  ] %zu test(s).\n", failed);
    return (int)failed;
}

#define cmocka_run_group_tests_name(name, tests, gs, gt) \
    mpt_shim_run(name, tests, sizeof(tests) / sizeof((tests)[0]), gs, gt)
#define cmocka_run_group_tests(tests, gs, gt) \
    cmocka_run_group_tests_name(#tests, tests, gs, gt)

#endif /* MPT_CMOCKA_SHIM_H */
