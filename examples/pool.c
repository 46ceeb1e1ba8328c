/*
 * pool: a Pool with an initializer (PyMOTW multiprocessing_pool.py).
 *
 *     def do_calculation(data):
 *         return data * 2
 *     def start_process():
 *         print 'Starting', multiprocessing.current_process().name
 *     pool = multiprocessing.Pool(processes=cpu_count() * 2,
 *                                 initializer=start_process)
 *     pool_outputs = pool.map(do_calculation, inputs)
 *     pool.close(); pool.join()
 */
#include <libmp.h>
#include <stdio.h>

static int do_calculation(const void *in, size_t in_size, void *out, size_t out_size,
                          void *arg)
{
    *(int *)out = *(const int *)in * 2;
    return 0;
}

static int start_process(void *arg, size_t size)
{
    printf("Starting %s\n", mp_process_name(mp_current_process()));
    fflush(stdout);
    return 0;
}

static void print_list(const char *label, const int *v, int n)
{
    printf("%s[", label);
    for (int i = 0; i < n; i++)
        printf(i ? ", %d" : "%d", v[i]);
    printf("]\n");
}

int main(void)
{
    int inputs[10], builtin[10], outputs[10];
    for (int i = 0; i < 10; i++) {
        inputs[i] = i;
        builtin[i] = i * 2;
    }
    print_list("Input   : ", inputs, 10);
    print_list("Built-in: ", builtin, 10);

    mp_pool *pool = mp_pool_new(.processes = mp_cpu_count() * 2, .initializer = start_process);
    if (pool == NULL) {
        fprintf(stderr, "pool: %s\n", mp_strerror(mp_last_error()));
        return 1;
    }
    int r = mp_pool_map(pool, do_calculation, inputs, sizeof *inputs, 10, outputs,
                        sizeof *outputs);
    mp_pool_close(pool);            /* no more tasks */
    mp_pool_join(pool, MP_FOREVER); /* wrap up current tasks */
    mp_pool_free(pool);
    if (r != 0) {
        fprintf(stderr, "pool: %s\n", mp_strerror(r));
        return 1;
    }
    print_list("Pool    : ", outputs, 10);
    return 0;
}
