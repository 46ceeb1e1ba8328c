// cxx_globals.cpp: a C++ program whose globals have constructors (a
// std::string, std::cout) runs a Process and a Pool under fork, spawn and
// forkserver.  A spawned child must run its target only after those
// constructors (issue 13): the target reads the string and writes to
// std::cout.  Built against libmp.so and against libmp.a.  Exit 0 when
// every check passes.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

extern "C" {
#include <libmp/context.h>
#include <libmp/errors.h>
#include <libmp/pool.h>
#include <libmp/process.h>
}

static std::string greeting("constructed before main");
static int main_runs; // counted in the parent only

static int target(void *, size_t)
{
    if (greeting != "constructed before main")
        return 11;
    std::cout << "child: " << greeting << std::endl;
    return std::cout.good() ? 7 : 12;
}

static int square(const void *in, size_t, void *out, size_t, void *)
{
    int x = *static_cast<const int *>(in);
    *static_cast<int *>(out) = greeting.size() == 23 ? x * x : -1;
    return 0;
}

static int run(const char *method)
{
    mp_context *ctx = mp_get_context(method);
    if (ctx == nullptr)
        return 1;
    mp_process_options po;
    std::memset(&po, 0, sizeof po);
    po.target = target;
    po.ctx = ctx;
    mp_process *p = mp_process_new_opts(&po);
    int r = p == nullptr ? mp_last_error() : mp_process_start(p);
    if (r != 0) {
        std::cerr << method << ": start: " << mp_err_name(r) << std::endl;
        return 2;
    }
    int code = -1;
    if (mp_process_join(p, 60) != 0 || mp_process_exitcode(p, &code) != 0 || code != 7) {
        std::cerr << method << ": exit code " << code << std::endl;
        return 3;
    }
    mp_process_free(p);

    mp_pool_options o;
    std::memset(&o, 0, sizeof o);
    o.processes = 2;
    o.ctx = ctx;
    mp_pool *pool = mp_pool_new_opts(&o);
    if (pool == nullptr)
        return 4;
    int in[6] = {0, 1, 2, 3, 4, 5}, out[6];
    mp_pool_call_options co;
    std::memset(&co, 0, sizeof co);
    r = mp_pool_map_opts(pool, square, in, sizeof *in, 6, out, sizeof *out, &co);
    mp_pool_free(pool);
    if (r != 0) {
        std::cerr << method << ": map: " << mp_err_name(r) << std::endl;
        return 5;
    }
    for (int i = 0; i < 6; i++)
        if (out[i] != i * i)
            return 6;
    return 0;
}

int main(int argc, char **argv)
{
#ifdef CXX_SPAWN_MAIN
    mp_spawn_main(argc, argv);
#else
    (void)argc;
    (void)argv;
#endif
    main_runs++;
    static const char *const methods[] = {"fork", "spawn", "forkserver"};
    for (const char *m : methods) {
        int r = run(m);
        if (r != 0) {
            std::cerr << "cxx_globals: " << m << " failed (" << r << ")" << std::endl;
            return 10 + r;
        }
    }
    std::cout << "cxx_globals: ok (main ran " << main_runs << " time)" << std::endl;
    return main_runs == 1 ? 0 : 20;
}
