/*
 * mpi_ctor_peer.c: a program linked with libmp.so for test_mpi, whose
 * constructor sets a value that its pool's tasks read.
 *
 *   mpi_ctor_peer --run ctor WORKERS
 *
 * makes an MPI pool of WORKERS workers (0: every other rank of world mode)
 * and maps a task that returns the value over 16 items; exits 0 when every
 * worker saw the value set.  libmp.so's own constructors run before the
 * program's, so a worker taken over in one of them (not after the
 * program's constructors, as libmp's start-up hook does) would see 0.
 */
#include <libmp.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int32_t ctor_value;

__attribute__((constructor)) static void set_ctor_value(void)
{
    ctor_value = 4242;
}

static int ctor_seen(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    memcpy(out, &ctor_value, sizeof ctor_value);
    return 0;
}

int main(int argc, char **argv)
{
    int r = mp_mpi_main(&argc, &argv);
    if (r != 0) {
        fprintf(stderr, "mpi_ctor_peer: mp_mpi_main: %s\n", mp_err_name(r));
        return 3;
    }
    int workers = argc > 3 ? atoi(argv[3]) : 2;
    mp_pool *p = mp_pool_new(.ctx = mp_get_context("mpi"), .processes = workers);
    if (p == NULL) {
        fprintf(stderr, "mpi_ctor_peer: mp_pool_new: %s\n", mp_err_name(mp_last_error()));
        return 4;
    }
    int32_t in[16] = {0}, out[16] = {0};
    r = mp_pool_map(p, ctor_seen, in, sizeof *in, 16, out, sizeof *out, .chunksize = 1);
    int bad = 0;
    for (int i = 0; i < 16; i++)
        bad += out[i] != 4242;
    mp_pool_close(p);
    mp_pool_join(p, MP_FOREVER);
    mp_pool_free(p);
    if (r != 0 || bad != 0) {
        fprintf(stderr,
                "mpi_ctor_peer: map %s, %d of 16 items without the constructor's value\n",
                mp_err_name(r), bad);
        return 5;
    }
    return 0;
}
