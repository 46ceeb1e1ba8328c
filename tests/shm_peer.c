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

int main(int argc, char **argv)
{
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
