/*
 * libmp_spawn.c: the libmp-spawn helper.
 *
 * When libmp was loaded with dlopen (a plugin), the program's main knows
 * nothing of libmp, so a copy of the program could not be taken over
 * before main runs.  Such a process spawns this program instead:
 *
 *   libmp-spawn <path of libmp.so>    (with LIBMP_SPAWN_FD set)
 *
 * It loads that very libmp.so and calls its hand-over entry point, which
 * authenticates the parent, maps the arena, loads the modules the target
 * is in and runs it (spawn.c).  It does not link libmp itself.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "libmp-spawn: started by libmp's spawn, not by hand\n");
        return 127;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
    if (lib == NULL) {
        fprintf(stderr, "libmp-spawn: %s\n", dlerror());
        return 127;
    }
    int (*entry)(int, char **) = (int (*)(int, char **))(
        uintptr_t)dlsym(lib, "mp__spawn_helper_main");
    if (entry == NULL) {
        fprintf(stderr, "libmp-spawn: %s is not libmp\n", argv[1]);
        return 127;
    }
    return entry(argc, argv);
}
