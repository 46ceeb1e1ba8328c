/*
 * pool_map_basic: Pool(5).map(f, [1, 2, 3]) (the multiprocessing
 * documentation's first example).
 *
 *     def f(x):
 *         return x*x
 *     p = Pool(5)
 *     print(p.map(f, [1, 2, 3]))
 */
#include <libmp.h>
#include <stdio.h>

static int f(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    int x = *(const int *)in;
    *(int *)out = x * x;
    return 0;
}

int main(void)
{
    mp_pool *p = mp_pool_new(.processes = 5);
    if (p == NULL) {
        fprintf(stderr, "pool_map_basic: %s\n", mp_strerror(mp_last_error()));
        return 1;
    }
    int in[3] = {1, 2, 3}, out[3];
    int r = mp_pool_map(p, f, in, sizeof *in, 3, out, sizeof *out);
    if (r != 0) {
        fprintf(stderr, "pool_map_basic: %s\n", mp_strerror(r));
        return 1;
    }
    printf("[%d, %d, %d]\n", out[0], out[1], out[2]);
    mp_pool_free(p); /* as the end of the program frees Python's pool */
    return 0;
}
