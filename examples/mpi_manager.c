/*
 * mpi_manager: shared state for MPI workers through a Manager over TCP.
 *
 * MPI workers share no memory with the program (docs/mpi.md): a libmp
 * object passed to them is meaningless there.  State that every worker
 * must see lives in a manager's server, reached over TCP; the tasks get its
 * address and authkey as their argument, as a Python program would pass
 * them to tasks on other machines:
 *
 *     manager = BaseManager(address=('127.0.0.1', 0), authkey=b'...')
 *     manager.register('get_squares', callable=lambda: squares, proxytype=DictProxy)
 *     manager.start()
 *     with MPIPoolExecutor(3) as ex:
 *         list(ex.map(task, range(1, 21), [manager.address] * 20))
 *
 * Each task connects (once per worker) and stores x: x*x in the shared
 * dict; the program then reads the dict through its own proxy.
 *
 * Usage: mpi_manager (spawns 3 MPI workers), or mpiexec -n 4 mpi_manager.
 */
#include <libmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AUTHKEY "mpi-manager-key"

struct where {
    char host[64];
    int port;
};

/* In the server: the one dict every client shares. */
static mp_val *squares;

static void *get_squares(const mp_val *args)
{
    if (squares == NULL)
        squares = mp_val_dict();
    return squares;
}

static mp_manager *manager_at(const char *host, int port)
{
    return mp_manager_new(.host = host, .port = port, .authkey = AUTHKEY,
                          .authkey_len = strlen(AUTHKEY));
}

/* In an MPI worker: one connection per worker, made by its first task. */
static mp_proxy *worker_dict(const struct where *w)
{
    static mp_manager *m;
    static mp_proxy *d;
    if (d != NULL)
        return d;
    m = manager_at(w->host, w->port);
    if (m == NULL || mp_manager_connect(m) != 0)
        return NULL;
    d = mp_manager_create(m, "get_squares", NULL);
    return d;
}

static int task(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    int64_t x = *(const int64_t *)in;
    mp_proxy *d = worker_dict(arg);
    if (d == NULL) {
        mp_pool_set_error("cannot reach the manager");
        return MP_EREMOTE;
    }
    int r = mp_dict_set(d, MP_I64(x), MP_I64(x * x));
    *(int32_t *)out = (int32_t)getpid();
    return r;
}

int main(int argc, char **argv)
{
    int r = mp_mpi_main(&argc, &argv); /* world mode: ranks 1..N-1 end here */
    if (r != 0) {
        fprintf(stderr, "mpi_manager: no MPI: %s\n", mp_strerror(r));
        return 1;
    }
    mp_manager *m = manager_at("127.0.0.1", 0);
    if (m == NULL ||
        mp_manager_register(m, .type_name = "get_squares", .create = get_squares,
                            .kind = MP_PROXY_DICT) != 0 ||
        mp_manager_start(m) != 0) {
        fprintf(stderr, "mpi_manager: manager: %s\n", mp_strerror(mp_last_error()));
        return 1;
    }
    struct where w = {"", 0};
    mp_manager_address(m, NULL, 0, w.host, sizeof w.host, &w.port);

    mp_pool *p = mp_pool_new(.ctx = mp_get_context("mpi"), .processes = 3);
    if (p == NULL) {
        fprintf(stderr, "mpi_manager: pool: %s\n", mp_strerror(mp_last_error()));
        mp_manager_free(m);
        return 1;
    }
    int64_t xs[20];
    int32_t pids[20];
    for (int i = 0; i < 20; i++)
        xs[i] = i + 1;
    r = mp_pool_map(p, task, xs, sizeof *xs, 20, pids, sizeof *pids, .arg = &w,
                    .arg_size = sizeof w, .chunksize = 2);
    mp_pool_close(p);
    mp_pool_join(p, MP_FOREVER);
    mp_pool_free(p);
    if (r != 0) {
        fprintf(stderr, "mpi_manager: map: %s (%s)\n", mp_strerror(r),
                mp_pool_error_message());
        mp_manager_free(m);
        return 1;
    }

    mp_proxy *d = mp_manager_create(m, "get_squares", NULL);
    int64_t sum = 0;
    ssize_t n = d != NULL ? mp_dict_len(d) : -1;
    for (int i = 1; i <= 20; i++) {
        mp_val *v = NULL;
        int64_t x = 0;
        if (mp_dict_getitem(d, MP_I64(i), &v) == 0 && mp_val_as_int(v, &x) == 0)
            sum += x;
        mp_val_free(v);
    }
    int others = 0;
    for (int i = 0; i < 20; i++)
        others += pids[i] != (int32_t)getpid();
    printf("tasks run outside this process: %d of 20\n", others);
    printf("squares: %zd entries, sum %lld\n", n, (long long)sum);
    mp_proxy_free(d);
    mp_manager_shutdown(m);
    mp_manager_free(m);
    return 0;
}
