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

int main(void)
{
    int *shared = mp_shared_alloc(sizeof *shared);
    if (shared == NULL)
        return 1;
    mp_process *p = mp_process_new(.target = child, .arg = &shared, .arg_size = sizeof shared);
    if (p == NULL || mp_process_start(p) != 0 || mp_process_join(p, MP_FOREVER) != 0)
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
