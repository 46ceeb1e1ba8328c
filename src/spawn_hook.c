/*
 * spawn_hook.c: libmp's __libc_start_main (see spawn_boot.c for the why).
 *
 * It calls the C library's own (the next definition, dlsym(RTLD_NEXT))
 * with main replaced by boot_main, which records that the hook ran, takes
 * a spawned child or a spawned MPI worker over, or calls the real main.
 * The definition is weak, of default visibility and unversioned, so that
 * it interposes the executable's reference (versioned
 * __libc_start_main@GLIBC_2.34 or not) whenever libmp comes before libc in
 * the search order.
 *
 * With glibc it is in libmp.a too: a dynamically linked program that links
 * libmp.a has it in its own image; a fully static one gets libc.a's strong
 * definition (glibc's start-up object is always linked), so this one is
 * unused and main calls mp_spawn_main.  musl's static start-up object is
 * linked only for this symbol, so with musl this file goes into libmp.so
 * only (src/meson.build): a weak definition in libmp.a would replace
 * musl's in a fully static program, which could then not start.
 */
#include "internal/mp.h"
#include "internal/spawn.h"

#include <dlfcn.h>
#include <unistd.h>

extern void mp__spawn_child_boot(void) __attribute__((weak));
extern void mp__mpi_child_boot(int argc, char **argv) __attribute__((weak));

typedef int (*main_fn)(int, char **, char **);

static main_fn real_main;

static int boot_main(int argc, char **argv, char **envp)
{
    mp__spawn_boot_set(MP__BOOT_HOOK, argv);
    if (mp__spawn_child_boot)
        mp__spawn_child_boot();
    if (mp__mpi_child_boot)
        mp__mpi_child_boot(argc, argv);
    return real_main(argc, argv, envp);
}

static void *next_start_main(void)
{
    void *f = dlsym(RTLD_NEXT, "__libc_start_main");
    if (f == NULL) {
        static const char msg[] = "libmp: no __libc_start_main after libmp's\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(127);
    }
    return f;
}

#if defined(__GLIBC__)
/* glibc: main, argc, argv, init and fini (NULL since 2.34), the dynamic
 * linker's fini, the stack end. */
typedef int (*start_fn)(main_fn, int, char **, void (*)(void), void (*)(void), void (*)(void),
                        void *);

__attribute__((weak, visibility("default"))) int
__libc_start_main(main_fn main, int argc, char **argv, void (*init)(void), void (*fini)(void),
                  void (*rtld_fini)(void), void *stack_end);

__attribute__((weak, visibility("default"))) int
__libc_start_main(main_fn main, int argc, char **argv, void (*init)(void), void (*fini)(void),
                  void (*rtld_fini)(void), void *stack_end)
{
    start_fn next = (start_fn)(uintptr_t)next_start_main();
    real_main = main;
    return next(boot_main, argc, argv, init, fini, rtld_fini, stack_end);
}
#else
/* musl: main, argc, argv and three unused function pointers. */
typedef int (*start_fn)(main_fn, int, char **, void (*)(void), void (*)(void), void (*)(void));

__attribute__((weak, visibility("default"))) int
__libc_start_main(main_fn main, int argc, char **argv, void (*init)(void), void (*fini)(void),
                  void (*ldso_fini)(void));

__attribute__((weak, visibility("default"))) int
__libc_start_main(main_fn main, int argc, char **argv, void (*init)(void), void (*fini)(void),
                  void (*ldso_fini)(void))
{
    start_fn next = (start_fn)(uintptr_t)next_start_main();
    real_main = main;
    return next(boot_main, argc, argv, init, fini, ldso_fini);
}
#endif
