/*
 * pool_features: map, imap_unordered, apply_async with get(timeout), and a
 * TimeoutError (coderzcolumn, "Basics of multiprocessing in Python").
 *
 *     with Pool(processes=5) as pool:
 *         print(pool.map(cube, range(1,5)))
 *         print(pool.imap_unordered(cube, range(1,6)))
 *         print(list(pool.imap_unordered(cube, range(1,6))))
 *         res = pool.apply_async(cube, (10,))
 *         print(res.get(timeout=1))
 *         results = [pool.apply_async(os.getpid, ()) for i in range(8)]
 *         print([res.get(timeout=1) for res in results])
 *         try:
 *             result = pool.apply_async(display_title, ('Title Testing',))
 *             print(result.get(timeout=1))
 *         except multiprocessing.TimeoutError:
 *             print('Timed out. Not able toget result in time.')
 *
 * display_title takes longer than the timeout (it sleeps 2 s); leaving the
 * "with" block terminates the pool, as mp_pool_free does.
 */
#include <libmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int cube(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    int x = *(const int *)in;
    *(int *)out = x * x * x;
    return 0;
}

/* The same for apply_async, which passes bytes. */
static int cube_bytes(const void *in, size_t in_size, mp_pool_out *out, void *arg)
{
    int x = *(const int *)in, y = x * x * x;
    return mp_pool_out_write(out, &y, sizeof y);
}

static int getpid_bytes(const void *in, size_t in_size, mp_pool_out *out, void *arg)
{
    int pid = (int)getpid();
    return mp_pool_out_write(out, &pid, sizeof pid);
}

static int display_title(const void *in, size_t in_size, mp_pool_out *out, void *arg)
{
    struct timespec ts = {2, 0};
    nanosleep(&ts, NULL);
    printf("%.*s\n", (int)in_size, (const char *)in);
    return 0;
}

static void print_list(const int *v, size_t n)
{
    printf("[");
    for (size_t i = 0; i < n; i++)
        printf(i ? ", %d" : "%d", v[i]);
    printf("]\n");
}

static int fail(const char *what, int code)
{
    fprintf(stderr, "pool_features: %s: %s\n", what, mp_strerror(code));
    return 1;
}

int main(void)
{
    mp_pool *pool = mp_pool_new(.processes = 5);
    if (pool == NULL)
        return fail("Pool", mp_last_error());

    int in[5] = {1, 2, 3, 4, 5}, out[5];
    int r = mp_pool_map(pool, cube, in, sizeof *in, 4, out, sizeof *out);
    if (r != 0)
        return fail("map", r);
    print_list(out, 4);

    mp_imap *it = mp_pool_imap_unordered(pool, cube, in, sizeof *in, 5, sizeof(int));
    printf("<IMapUnorderedIterator object at %p>\n", (void *)it);
    mp_imap_free(it);

    it = mp_pool_imap_unordered(pool, cube, in, sizeof *in, 5, sizeof(int));
    size_t n = 0;
    while ((r = mp_imap_next(it, MP_FOREVER, &out[n], NULL)) == 0)
        n++;
    mp_imap_free(it);
    if (r != MP_EEOF)
        return fail("imap_unordered", r);
    print_list(out, n);

    int ten = 10, y;
    mp_async_result *res = mp_pool_apply_async(pool, cube_bytes, &ten, sizeof ten);
    r = mp_async_result_get_into(res, 1, &y, sizeof y, NULL);
    mp_async_result_free(res);
    if (r != 0)
        return fail("apply_async", r);
    printf("%d\n", y);

    mp_async_result *results[8];
    int pids[8];
    for (int i = 0; i < 8; i++)
        results[i] = mp_pool_apply_async(pool, getpid_bytes, NULL, 0);
    for (int i = 0; i < 8; i++) {
        r = mp_async_result_get_into(results[i], 1, &pids[i], sizeof pids[i], NULL);
        mp_async_result_free(results[i]);
        if (r != 0)
            return fail("apply_async(getpid)", r);
    }
    print_list(pids, 8);

    const char *title = "Title Testing";
    res = mp_pool_apply_async(pool, display_title, title, strlen(title));
    r = mp_async_result_get(res, 1, NULL, NULL);
    if (r == MP_ETIMEDOUT)
        printf("Timed out. Not able toget result in time.\n");
    else if (r == 0)
        printf("None\n");
    mp_async_result_free(res);

    mp_pool_free(pool); /* the end of the "with" block: terminate() */
    return 0;
}
