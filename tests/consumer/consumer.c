/* consumer.c: a program outside the tree, built against an installed libmp. */
#include <libmp.h>
#include <stdio.h>
#include <string.h>

static int child(void *arg, size_t size)
{
    (void)size;
    int *shared = *(int **)arg;
    *shared = 42;
    return 7;
}

int main(int argc, char **argv)
{
#ifndef CONSUMER_NO_SPAWN_MAIN
    /* A fully static program has no start-up hook: this takes its spawned
     * children over (harmless in the shared build). */
    mp_spawn_main(argc, argv);
#else
    (void)argc;
    (void)argv;
#endif
    int *shared = mp_shared_alloc(sizeof *shared);
    if (shared == NULL)
        return 1;
    mp_process *p = mp_process_new(.target = child, .arg = &shared, .arg_size = sizeof shared);
    if (p == NULL)
        return 2;
    int r = mp_process_start(p);
#ifdef CONSUMER_NO_SPAWN_MAIN
    /* Static, without mp_spawn_main: spawn and forkserver refuse clearly. */
    if (strcmp(mp_get_start_method(false), "fork") != 0) {
        mp_process_free(p);
        mp_shared_free(shared);
        printf("consumer refused: %s\n", mp_err_name(r));
        return r == MP_ESPAWNMAIN ? 0 : 4;
    }
#endif
    if (r != 0 || mp_process_join(p, MP_FOREVER) != 0)
        return 2;
    int code = -1;
    mp_process_exitcode(p, &code);
    mp_process_free(p);
    if (code != 7 || *shared != 42)
        return 3;
    mp_shared_free(shared);
    if (mp_version() < MP_VERSION_HEX)
        return 4; /* a library older than the headers */
    printf("consumer ok: %s (library %s) %s\n", MP_VERSION_STRING, mp_version_string(),
           mp_err_name(MP_EEMPTY));
    return 0;
}
