/*
 * pool_full: the Pool tour of the multiprocessing documentation.
 *
 *     pool = Pool(processes=4)              # start 4 worker processes
 *     print pool.map(f, range(10))          # prints "[0, 1, 4,..., 81]"
 *     for i in pool.imap_unordered(f, range(10)):
 *         print i                           # the same numbers in any order
 *     res = pool.apply_async(f, (20,))      # runs in *only* one process
 *     print res.get(timeout=1)              # prints "400"
 *     res = pool.apply_async(os.getpid, ()) # runs in *only* one process
 *     print res.get(timeout=1)              # prints the PID of that process
 *     multiple_results = [pool.apply_async(os.getpid, ()) for i in range(4)]
 *     print [res.get(timeout=1) for res in multiple_results]
 *     res = pool.apply_async(time.sleep, (10,))   # make a worker sleep 10 s
 *     try:
 *         print res.get(timeout=1)
 *     except TimeoutError:
 *         print "We lacked patience and got a multiprocessing.TimeoutError"
 *
 * At the end the pool is freed, which terminates the sleeping worker, so
 * the program ends about a second in, not ten.
 */
#include <libmp.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static int f(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    int x = *(const int *)in;
    *(int *)out = x * x;
    return 0;
}

static int f_bytes(const void *in, size_t in_size, mp_pool_out *out, void *arg)
{
    int x = *(const int *)in, y = x * x;
    return mp_pool_out_write(out, &y, sizeof y);
}

static int getpid_bytes(const void *in, size_t in_size, mp_pool_out *out, void *arg)
{
    int pid = (int)getpid();
    return mp_pool_out_write(out, &pid, sizeof pid);
}

static int sleep_bytes(const void *in, size_t in_size, mp_pool_out *out, void *arg)
{
    struct timespec ts = {*(const int *)in, 0};
    while (nanosleep(&ts, &ts) != 0)
        ;
    return 0;
}

static int fail(const char *what, int code)
{
    fprintf(stderr, "pool_full: %s: %s\n", what, mp_strerror(code));
    return 1;
}

/* apply_async(fn, (arg,)).get(timeout): the int result, or the error. */
static int apply_get(mp_pool *pool, mp_pool_bytes_fn fn, int arg, double timeout, int *y)
{
    mp_async_result *res = mp_pool_apply_async(pool, fn, &arg, sizeof arg);
    if (res == NULL)
        return mp_last_error();
    int r = mp_async_result_get_into(res, timeout, y, sizeof *y, NULL);
    mp_async_result_free(res);
    return r;
}

int main(void)
{
    mp_pool *pool = mp_pool_new(.processes = 4);
    if (pool == NULL)
        return fail("Pool", mp_last_error());

    int in[10], out[10];
    for (int i = 0; i < 10; i++)
        in[i] = i;
    int r = mp_pool_map(pool, f, in, sizeof *in, 10, out, sizeof *out);
    if (r != 0)
        return fail("map", r);
    printf("[");
    for (int i = 0; i < 10; i++)
        printf(i ? ", %d" : "%d", out[i]);
    printf("]\n");

    mp_imap *it = mp_pool_imap_unordered(pool, f, in, sizeof *in, 10, sizeof(int));
    int y;
    while ((r = mp_imap_next(it, MP_FOREVER, &y, NULL)) == 0)
        printf("%d\n", y);
    mp_imap_free(it);
    if (r != MP_EEOF)
        return fail("imap_unordered", r);

    if ((r = apply_get(pool, f_bytes, 20, 1, &y)) != 0)
        return fail("apply_async(f)", r);
    printf("%d\n", y);

    if ((r = apply_get(pool, getpid_bytes, 0, 1, &y)) != 0)
        return fail("apply_async(getpid)", r);
    printf("%d\n", y);

    mp_async_result *multiple_results[4];
    for (int i = 0; i < 4; i++)
        multiple_results[i] = mp_pool_apply_async(pool, getpid_bytes, NULL, 0);
    printf("[");
    for (int i = 0; i < 4; i++) {
        int pid = 0;
        r = mp_async_result_get_into(multiple_results[i], 1, &pid, sizeof pid, NULL);
        mp_async_result_free(multiple_results[i]);
        if (r != 0)
            return fail("apply_async(getpid)", r);
        printf(i ? ", %d" : "%d", pid);
    }
    printf("]\n");

    r = apply_get(pool, sleep_bytes, 10, 1, &y);
    if (r == MP_ETIMEDOUT)
        printf("We lacked patience and got a multiprocessing.TimeoutError\n");
    else
        return fail("apply_async(sleep)", r);

    mp_pool_free(pool);
    return 0;
}
