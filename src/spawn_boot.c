/*
 * spawn_boot.c: how a spawned child is taken over after the program's
 * constructors, and how the parent knows that its children will be.
 *
 * A spawned child must run its target only once every constructor of the
 * program has run (C++ globals, other libraries'), and never main.  Between
 * the two there is one moment that every dynamically linked program goes
 * through: the C library's __libc_start_main runs the constructors of the
 * executable and then calls main.  libmp defines __libc_start_main itself
 * (spawn_hook.c), which calls the C library's with main wrapped; the
 * wrapper takes a spawned child over (spawn.c), or a worker that an MPI
 * pool started with MPI_Comm_spawn (context_mpi.c), or calls the real main.
 *
 * A fully static program keeps the C library's __libc_start_main; such a
 * program calls mp_spawn_main at the top of main.
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
extern void mp__mpi_child_boot(int argc, char **argv) __attribute__((weak));

int mp_spawn_main(int argc, char **argv)
{
    if (mp__spawn_boot_how() == MP__BOOT_NONE)
        mp__spawn_boot_set(MP__BOOT_CALL, argv);
    if (mp__spawn_child_boot)
        mp__spawn_child_boot();
    if (mp__mpi_child_boot)
        mp__mpi_child_boot(argc, argv);
    return 0;
}
