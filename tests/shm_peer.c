/*
 * shm_peer.c: an unrelated program for test_shared_memory.
 *
 *   shm_peer attach NAME       attach by name, check the bytes "ping" at the
 *                              start, write "pong" after them, exit 0
 *   shm_peer die NAME          create NAME (tracked), then SIGKILL itself
 *   shm_peer die-notrack NAME  create NAME untracked, then SIGKILL itself
 *   shm_peer family NAME PATH  create NAME (tracked) and a Listener at PATH,
 *                              start a libmp child that sleeps, print its
 *                              pid, and sleep until killed
 *   shm_peer busy PATH         a busy family: three segments with generated
 *                              names, a Listener at PATH, queue producers
 *                              and consumers, a pool mapping in a loop;
 *                              prints "ready" and works until killed
 *   shm_peer smm-die FILE      a SharedMemoryManager hands out a segment and
 *                              a ShareableList; their names go to FILE, one
 *                              a line; then SIGKILL itself
 */
#include <libmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int sleeper(void *arg, size_t size)
{
    (void)arg;
    (void)size;
    for (;;)
        pause();
    return 0;
}

static int family(const char *name, const char *path)
{
    mp_shared_memory *s = mp_shared_memory_new(.name = name, .create = true, .size = 4096);
    mp_listener *l = mp_listener_new(.path = path);
    if (s == NULL || l == NULL)
        return 7;
    mp_process *p = mp_process_new(.target = sleeper);
    if (p == NULL || mp_process_start(p) != 0)
        return 8;
    printf("%d\n", (int)mp_process_pid(p));
    fflush(stdout);
    for (;;)
        pause();
}

static int producer(void *arg, size_t size)
{
    mp_queue *q = *(mp_queue **)arg;
    for (int i = 0;; i++)
        if (mp_queue_put(q, &i, sizeof i, MP_FOREVER) != 0)
            return 1;
    (void)size;
    return 0;
}

static int consumer(void *arg, size_t size)
{
    mp_queue *q = *(mp_queue **)arg;
    for (;;) {
        int v;
        if (mp_queue_get(q, &v, sizeof v, NULL, MP_FOREVER) != 0)
            return 1;
    }
    (void)size;
    return 0;
}

static int square(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    int v = *(const int *)in;
    *(int *)out = v * v;
    return 0;
}

static int busy(const char *path)
{
    for (int i = 0; i < 3; i++) {
        mp_shared_memory *s = mp_shared_memory_new(.create = true, .size = 65536);
        if (s == NULL)
            return 7;
        memset(mp_shared_memory_buf(s), i, 65536);
    }
    if (mp_listener_new(.path = path) == NULL)
        return 8;
    mp_queue *q = mp_queue_new(.maxsize = 100);
    if (q == NULL)
        return 9;
    for (int i = 0; i < 4; i++) {
        mp_process *p = mp_process_new(.target = i % 2 ? consumer : producer, .arg = &q,
                                       .arg_size = sizeof q);
        if (p == NULL || mp_process_start(p) != 0)
            return 10;
    }
    mp_pool *pool = mp_pool_new(.processes = 2);
    int *in = mp_shared_alloc(1000 * sizeof *in), *out = mp_shared_alloc(1000 * sizeof *out);
    if (pool == NULL || in == NULL || out == NULL)
        return 11;
    for (int i = 0; i < 1000; i++)
        in[i] = i;
    printf("ready\n");
    fflush(stdout);
    for (;;)
        if (mp_pool_map(pool, square, in, sizeof *in, 1000, out, sizeof *out) != 0)
            return 12;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "busy") == 0)
        return busy(argv[2]);
    if (argc == 4 && strcmp(argv[1], "family") == 0)
        return family(argv[2], argv[3]);
    if (argc != 3)
        return 2;
    if (strcmp(argv[1], "attach") == 0) {
        mp_shared_memory *s = mp_shared_memory_new(.name = argv[2]);
        if (s == NULL)
            return 3;
        char *buf = mp_shared_memory_buf(s);
        if (buf == NULL || mp_shared_memory_size(s) < 8 || memcmp(buf, "ping", 4) != 0)
            return 4;
        memcpy(buf + 4, "pong", 4);
        mp_shared_memory_free(s);
        return 0;
    }
    if (strcmp(argv[1], "smm-die") == 0) {
        mp_shm_manager *m = mp_shm_manager_new();
        mp_shared_memory *s = mp_shm_manager_shared_memory(m, 4096);
        mp_shareable_list *l = mp_shm_manager_shareable_list(m, MP_LIST(MP_I64(1), MP_STR("x")));
        FILE *f = fopen(argv[2], "w");
        if (m == NULL || s == NULL || l == NULL || f == NULL)
            return 7;
        fprintf(f, "%s\n%s\n", mp_shared_memory_name(s), mp_shareable_list_name(l));
        fclose(f);
        raise(SIGKILL);
        return 6;
    }
    bool notrack = strcmp(argv[1], "die-notrack") == 0;
    if (!notrack && strcmp(argv[1], "die") != 0)
        return 2;
    mp_shared_memory *s = mp_shared_memory_new(.name = argv[2], .create = true,
                                               .size = 4096, .notrack = notrack);
    if (s == NULL)
        return 5;
    raise(SIGKILL);
    return 6;
}
