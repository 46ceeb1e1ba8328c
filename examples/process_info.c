/*
 * process_info: f('bob') in a child, and info() about each process
 * (the Process class section of the Python documentation).
 *
 * Python prints the module's __name__; the C counterpart is the name of
 * the program the function belongs to, the same in parent and child.
 */
#include <errno.h>
#include <libmp.h>
#include <stdio.h>
#include <unistd.h>

static void info(const char *title)
{
    printf("%s\n", title);
    printf("module name: %s\n", program_invocation_short_name);
    printf("parent process: %d\n", (int)getppid());
    printf("process id: %d\n", (int)getpid());
}

static int f(void *arg, size_t size)
{
    info("function f");
    printf("hello %s\n", (const char *)arg);
    return 0;
}

int main(void)
{
    info("main line");
    mp_process *p = mp_process_new(.target = f, .arg = "bob", .arg_size = sizeof "bob");
    if (p == NULL || mp_process_start(p) != 0)
        return 1;
    mp_process_join(p, MP_FOREVER);
    mp_process_free(p);
    return 0;
}
