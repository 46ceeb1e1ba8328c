/*
 * pool_map_basic: Pool(5).map(f, [1, 2, 3]) (the multiprocessing
 * documentation's first example).
 *
 *     def f(x):
 *         return x*x
 *     p = Pool(5)
 *     print(p.map(f, [1, 2, 3]))
 *
 * With --mpi the five workers are MPI processes (docs/mpi.md): the one-line
 * change is .ctx = mp_get_context("mpi").  "./pool_map_basic --mpi" or
 * "mpiexec -n 1 ./pool_map_basic --mpi" spawns them; "mpiexec -n 6
 * ./pool_map_basic --mpi" uses ranks 1..5.
 */
#include <libmp.h>
#include <stdio.h>
#include <string.h>

static int f(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    int x = *(const int *)in;
    *(int *)out = x * x;
    return 0;
}

int main(int argc, char **argv)
{
    mp_context *ctx = NULL;
    if (argc > 1 && strcmp(argv[1], "--mpi") == 0) {
        int r = mp_mpi_main(&argc, &argv); /* ranks 1..N-1 serve and end here */
        ctx = mp_get_context("mpi");
        if (r != 0 || ctx == NULL) {
            fprintf(stderr, "pool_map_basic: no MPI: %s\n",
                    mp_strerror(r != 0 ? r : mp_last_error()));
            return 1;
        }
    }
    mp_pool *p = mp_pool_new(.processes = 5, .ctx = ctx);
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
