/*
 * test_cxx.cpp: libmp from a C++ program whose globals have constructors
 * (a std::string, a std::map, std::cout).  A process and a pool of workers
 * run C++ code that reads those globals, under the start method of
 * MP_START_METHOD (fork, spawn or forkserver): a child that ran the target
 * before the program's own constructors would see an empty string (or
 * crash).  Options are passed the two C++ ways: a zero-initialised struct
 * with an _opts function, and (C++20) the mp_X_new(.field = ...) macros.
 */
#include <libmp.h>

#include <cstdarg>
#include <cstddef>
#include <csetjmp>
#include <cstring>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

extern "C" { /* cmocka.h declares its functions without C linkage */
#include <cmocka.h>
}

static const std::string greeting = std::string("hello from a global ") + "std::string";
static const std::map<int, std::string> names = {{1, "one"}, {2, "two"}, {3, "three"}};

namespace {

struct Counter {
    int constructed;
    Counter() : constructed(42) {}
};
Counter counter;

/* The child's exit code says what it saw: 0 when every global was built. */
int child_target(void *arg, size_t size)
{
    if (size != sizeof(int) || *static_cast<int *>(arg) != 7)
        return 3;
    if (greeting != "hello from a global std::string" || names.size() != 3 ||
        counter.constructed != 42)
        return 4;
    std::ostringstream text;
    text << "child " << names.at(2) << ": " << greeting;
    std::cout << text.str() << std::endl;
    return std::cout.good() ? 0 : 5;
}

/* out = in * in + the length of the global string (31). */
int square_task(const void *in, size_t, void *out, size_t, void *)
{
    long x;
    std::memcpy(&x, in, sizeof x);
    long r = x * x + static_cast<long>(greeting.size()) + (names.count(1) ? 0 : 1000);
    std::memcpy(out, &r, sizeof r);
    return 0;
}

int run_process(mp_process *p)
{
    if (p == nullptr || mp_process_start(p) != 0 || mp_process_join(p, MP_FOREVER) != 0) {
        mp_process_free(p);
        return -1;
    }
    int code = -1;
    int r = mp_process_exitcode(p, &code);
    mp_process_free(p);
    return r == 0 ? code : -1;
}

void test_process_opts(void **)
{
    int seven = 7;
    mp_process_options o = {};
    o.target = child_target;
    o.arg = &seven;
    o.arg_size = sizeof seven;
    o.name = "cxx-child";
    assert_int_equal(run_process(mp_process_new_opts(&o)), 0);
}

void test_process_macro(void **)
{
#if __cplusplus >= 202002L
    int seven = 7;
    mp_process *p = mp_process_new(.target = child_target, .arg = &seven,
                                   .arg_size = sizeof seven, .name = "cxx20-child");
    assert_int_equal(run_process(p), 0);
#else
    skip();
#endif
}

void test_pool(void **)
{
    mp_pool_options po = {};
    po.processes = 2;
    mp_pool *pool = mp_pool_new_opts(&po);
    assert_non_null(pool);
    long in[16], out[16];
    for (long i = 0; i < 16; i++)
        in[i] = i;
    mp_pool_call_options co = {};
    co.chunksize = 3;
    assert_int_equal(mp_pool_map_opts(pool, square_task, in, sizeof in[0], 16, out,
                                      sizeof out[0], &co),
                     0);
    for (long i = 0; i < 16; i++)
        assert_int_equal(out[i], i * i + 31);
#if __cplusplus >= 202002L
    assert_int_equal(mp_pool_map(pool, square_task, in, sizeof in[0], 16, out, sizeof out[0],
                                 .chunksize = 5),
                     0);
    assert_int_equal(out[15], 15 * 15 + 31);
#endif
    assert_int_equal(mp_pool_close(pool), 0);
    assert_int_equal(mp_pool_join(pool, MP_FOREVER), 0);
    mp_pool_free(pool);
}

void test_version(void **)
{
    assert_int_equal(mp_version(), MP_VERSION_HEX);
    assert_string_equal(mp_version_string(), MP_VERSION_STRING);
}

} // namespace

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_process_opts),
        cmocka_unit_test(test_process_macro),
        cmocka_unit_test(test_pool),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
