/*
 * spawn_boot.c: how a spawned child is taken over after the program's
 * constructors, and how the parent knows that its children will be.
 *
 * A spawned child must run its target only once every constructor of the
 * program has run (C++ globals, other libraries'), and never main.  Between
 * the two there is one moment that every dynamically linked program goes
 * through: the C library's __libc_start_main runs the constructors of the
 * executable and then calls main.  libmp defines __libc_start_main itself
 * (weak, default visibility, no symbol version): the executable's
 * reference, versioned or not, binds to it when libmp comes before libc in
 * the program's search order (it does whenever the program links libmp,
 * shared or static).  It calls the C library's own with main replaced by
 * boot_main, which takes a spawned child over (spawn.c) and otherwise
 * calls the real main.
 *
 * A fully static program keeps the C library's __libc_start_main (libmp's
 * is weak: the linker takes libc.a's strong one, which it pulls in
 * anyway); such a program calls mp_spawn_main at the top of main.
 *
 * Either way the process records how it started (mp__spawn_boot_how).  Its
 * spawned children are the same program and start the same way, so the
 * parent knows before it spawns whether the child will be taken over: if
 * neither ran (libmp loaded with dlopen by a plugin, or a static program
 * without mp_spawn_main) spawn starts the libmp-spawn helper instead, or
 * refuses with MP_ESPAWNMAIN (spawn.c).
 */
#include "internal/mp.h"
#include "internal/spawn.h"

#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>

static int boot_how = MP__BOOT_NONE;
static char **boot_argv;

int mp__spawn_boot_how(void)
{
    return __atomic_load_n(&boot_how, __ATOMIC_ACQUIRE);
}

char **mp__saved_argv(void)
{
    return boot_argv;
}

void mp__spawn_boot_set(int how, char **argv)
{
    if (argv != NULL)
        boot_argv = argv;
    __atomic_store_n(&boot_how, how, __ATOMIC_RELEASE);
}

/* spawn.c, if the program links it (a program that never starts a process
 * has no spawned children either). */
extern void mp__spawn_child_boot(void) __attribute__((weak));

int mp_spawn_main(int argc, char **argv)
{
    if (mp__spawn_boot_how() == MP__BOOT_NONE)
        mp__spawn_boot_set(MP__BOOT_CALL, argv);
    if (mp__spawn_child_boot)
        mp__spawn_child_boot();
    return 0;
}

typedef int (*main_fn)(int, char **, char **);

static main_fn real_main;

static int boot_main(int argc, char **argv, char **envp)
{
    mp__spawn_boot_set(MP__BOOT_HOOK, argv);
    if (mp__spawn_child_boot)
        mp__spawn_child_boot();
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
typedef int (*start_fn)(main_fn, int, char **, void (*)(void), void (*)(void),
                        void (*)(void), void *);

__attribute__((weak, visibility("default"))) int
__libc_start_main(main_fn main, int argc, char **argv, void (*init)(void),
                  void (*fini)(void), void (*rtld_fini)(void), void *stack_end);

__attribute__((weak, visibility("default"))) int
__libc_start_main(main_fn main, int argc, char **argv, void (*init)(void),
                  void (*fini)(void), void (*rtld_fini)(void), void *stack_end)
{
    start_fn next = (start_fn)(uintptr_t)next_start_main();
    real_main = main;
    return next(boot_main, argc, argv, init, fini, rtld_fini, stack_end);
}
#else
/* musl: main, argc, argv and three unused function pointers. */
typedef int (*start_fn)(main_fn, int, char **, void (*)(void), void (*)(void),
                        void (*)(void));

__attribute__((weak, visibility("default"))) int
__libc_start_main(main_fn main, int argc, char **argv, void (*init)(void),
                  void (*fini)(void), void (*ldso_fini)(void));

__attribute__((weak, visibility("default"))) int
__libc_start_main(main_fn main, int argc, char **argv, void (*init)(void),
                  void (*fini)(void), void (*ldso_fini)(void))
{
    start_fn next = (start_fn)(uintptr_t)next_start_main();
    real_main = main;
    return next(boot_main, argc, argv, init, fini, ldso_fini);
}
#endif
