/*
 * plugin_host.c: a program that knows nothing of libmp (it does not link
 * it) and loads a plugin that uses it:
 *
 *   plugin_host PLUGIN.so MARKFILE
 *   plugin_host PLUGIN.so MARKFILE bad-helper
 *
 * main appends a line to MARKFILE, then runs the plugin under each start
 * method.  A child that ran the host's main again would add a line: the
 * host checks that there is exactly one.  Exit 0 on success.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Under valgrind (which preloads its libraries into what it runs), an exec
 * of a directory starts valgrind itself, which then ends without answering:
 * spawn sees a helper that ended (-ECHILD), not the exec's EACCES. */
static int under_valgrind(void)
{
    const char *pre = getenv("LD_PRELOAD");
    return pre != NULL && strstr(pre, "vgpreload") != NULL;
}

/* LIBMP_SPAWN_HELPER naming a missing file, a file that is not executable,
 * a directory, or a program that is not the helper (it ends without
 * answering): spawn and forkserver starts fail at once with the documented
 * code, and nothing is started. */
static int bad_helper(void *h, const char *markfile)
{
    int (*start)(const char *, const char *, double *) = (int (*)(const char *, const char *,
                                                                  double *))(
        uintptr_t)dlsym(h, "plugin_start_with_helper");
    if (start == NULL)
        return 103;
    static const struct {
        const char *helper;
        int want;
    } cases[] = {{"/nonexistent/libmp-spawn", -ENOENT},
                 {NULL, -EACCES},
                 {"/", -EACCES},
                 {"/bin/true", -ECHILD}};
    static const char *const methods[] = {"spawn", "forkserver"};
    for (int m = 0; m < 2; m++)
        for (int c = 0; c < 4; c++) {
            double took = 0;
            const char *helper = cases[c].helper ? cases[c].helper : markfile;
            int r = start(methods[m], helper, &took);
            if (r == -ECHILD && c == 2 && under_valgrind())
                r = -EACCES;
            if (r != cases[c].want || took > 10) {
                fprintf(stderr, "plugin_host: %s with helper %s: %d in %.1f s, not %d\n",
                        methods[m], helper, r, took, cases[c].want);
                return 110 + 10 * m + c;
            }
        }
    printf("plugin_host: bad helpers refused\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3 && (argc != 4 || strcmp(argv[3], "bad-helper") != 0))
        return 100;
    int fd = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, "main\n", 5) != 5)
        return 101;
    close(fd);
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        fprintf(stderr, "plugin_host: %s\n", dlerror());
        return 102;
    }
    int (*run)(const char *) = (int (*)(const char *))(uintptr_t)dlsym(h, "plugin_run");
    if (argc == 4)
        return bad_helper(h, argv[2]);
    if (run == NULL)
        return 103;
    static const char *const methods[] = {"fork", "spawn", "forkserver"};
    for (int i = 0; i < 3; i++) {
        int r = run(methods[i]);
        if (r != 0) {
            fprintf(stderr, "plugin_host: %s failed (%d)\n", methods[i], r);
            return 10 * (i + 1) + r;
        }
    }
    char buf[64];
    fd = open(argv[2], O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf);
    if (n != 5) {
        fprintf(stderr, "plugin_host: main ran %zd/5 bytes' worth of times\n", n);
        return 104;
    }
    printf("plugin_host: ok\n");
    return 0;
}
