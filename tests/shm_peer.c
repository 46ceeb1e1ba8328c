/*
 * shm_peer.c: an unrelated program for test_shared_memory.
 *
 *   shm_peer attach NAME       attach by name, check the bytes "ping" at the
 *                              start, write "pong" after them, exit 0
 *   shm_peer die NAME          create NAME (tracked), then SIGKILL itself
 *   shm_peer die-notrack NAME  create NAME untracked, then SIGKILL itself
 *   shm_peer smm-die FILE      a SharedMemoryManager hands out a segment and
 *                              a ShareableList; their names go to FILE, one
 *                              a line; then SIGKILL itself
 */
#include <libmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
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
