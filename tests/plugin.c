/*
 * plugin.c: a plugin linked to libmp.so, which plugin_host (a program that
 * knows nothing of libmp) loads with dlopen.  It starts a Process and a
 * Pool under a given start method; under spawn and forkserver their
 * children are started through the libmp-spawn helper and load this
 * module on demand, without ever running the host's main.
 */
#include <libmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int plugin_run(const char *method);
int plugin_start_with_helper(const char *method, const char *helper, double *took);

static int initialized; /* set by the pool's initializer, in each worker */

static int target(void *arg, size_t size)
{
    int v;
    if (size != sizeof v)
        return 101;
    memcpy(&v, arg, sizeof v);
    return v + 1;
}

static int init(void *arg, size_t size)
{
    initialized = 1;
    return 0;
}

static int square(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    int x = *(const int *)in;
    *(int *)out = initialized ? x * x : -1;
    return 0;
}

int plugin_run(const char *method)
{
    mp_context *ctx = mp_get_context(method);
    if (ctx == NULL)
        return 1;
    int v = 41;
    mp_process *p = mp_process_new(.target = target, .arg = &v, .arg_size = sizeof v,
                                   .ctx = ctx);
    int code = -1;
    int r = p == NULL ? mp_last_error() : mp_process_start(p);
    if (r != 0) {
        fprintf(stderr, "plugin: %s: process start: %s\n", method, mp_err_name(r));
        return 2;
    }
    if (mp_process_join(p, 60) != 0 || mp_process_exitcode(p, &code) != 0 || code != 42) {
        fprintf(stderr, "plugin: %s: process code %d\n", method, code);
        return 3;
    }
    mp_process_free(p);

    mp_pool *pool = mp_pool_new(.processes = 2, .initializer = init, .ctx = ctx);
    if (pool == NULL) {
        fprintf(stderr, "plugin: %s: pool: %s\n", method, mp_err_name(mp_last_error()));
        return 4;
    }
    int in[8], out[8];
    for (int i = 0; i < 8; i++)
        in[i] = i;
    r = mp_pool_map(pool, square, in, sizeof *in, 8, out, sizeof *out);
    mp_pool_free(pool);
    if (r != 0) {
        fprintf(stderr, "plugin: %s: map: %s\n", method, mp_err_name(r));
        return 5;
    }
    for (int i = 0; i < 8; i++)
        if (out[i] != i * i) {
            fprintf(stderr, "plugin: %s: out[%d] = %d\n", method, i, out[i]);
            return 6;
        }
    return 0;
}

/* Start a Process under method with LIBMP_SPAWN_HELPER set to helper: what
 * mp_process_start returned (its child, if one started, joined), and in
 * *took how long it took. */
int plugin_start_with_helper(const char *method, const char *helper, double *took)
{
    mp_context *ctx = mp_get_context(method);
    if (ctx == NULL)
        return 1;
    setenv("LIBMP_SPAWN_HELPER", helper, 1);
    int v = 1;
    mp_process *p = mp_process_new(.target = target, .arg = &v, .arg_size = sizeof v,
                                   .ctx = ctx);
    if (p == NULL)
        return 2;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int r = mp_process_start(p);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    unsetenv("LIBMP_SPAWN_HELPER");
    if (r == 0)
        mp_process_join(p, 60);
    mp_process_free(p);
    return r;
}
