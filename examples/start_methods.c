/*
 * start_methods: the three ways to start a process, from "Basics of
 * multiprocessing in Python" (set_start_method and get_context('fork')).
 *
 * The same target runs under each start method: once through the default
 * context, which the program sets to spawn (a second set_start_method then
 * fails, as Python's raises RuntimeError), and once through the context of
 * each method.  The child also prints the method that started it.
 */
#include <libmp.h>
#include <stdio.h>
#include <string.h>

static int test_func(void *arg, size_t size)
{
    printf("%s (%s)\n", (const char *)arg, mp_get_start_method(false));
    return 0;
}

/* ctx.Process(target=test_func, args=(text,)); p.start(); p.join() */
static int run(mp_context *ctx)
{
    static const char text[] = "Test function execution";
    mp_process *p = mp_process_new(.target = test_func, .arg = text, .arg_size = sizeof text,
                                   .ctx = ctx);
    int r = p == NULL ? mp_last_error() : mp_process_start(p);
    if (r == 0)
        r = mp_process_join(p, MP_FOREVER);
    mp_process_free(p);
    if (r != 0)
        fprintf(stderr, "start_methods: %s\n", mp_strerror(r));
    return r;
}

int main(int argc, char **argv)
{
    /* Python's `if __name__ == '__main__':` guard.  A dynamically linked
     * program does without it; this one also runs linked statically
     * (build-musl-static), where spawn needs it (context.h). */
    mp_spawn_main(argc, argv);
    const char *all[3];
    int n = mp_get_all_start_methods(all, 3);
    printf("start methods:");
    for (int i = 0; i < n && i < 3; i++)
        printf(" %s", all[i]);
    printf("\n");

    /* multiprocessing.set_start_method('spawn') */
    if (mp_set_start_method("spawn", false) != 0 || run(NULL) != 0)
        return 1;
    if (mp_set_start_method("fork", false) == MP_EINVAL)
        printf("RuntimeError: context has already been set\n");

    /* ctx = multiprocessing.get_context(method) */
    static const char *const methods[] = {"fork", "spawn", "forkserver"};
    for (int i = 0; i < 3; i++)
        if (run(mp_get_context(methods[i])) != 0)
            return 1;
    return 0;
}
