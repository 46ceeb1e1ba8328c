/*
 * process_ids: the parent's and the child's process ids (getppid and
 * getpid in the child), from "Basics of multiprocessing in Python".
 *
 * The main program also prints its own pid, so that the output shows that
 * the child's parent is the main program.
 */
#include <libmp.h>
#include <stdio.h>
#include <unistd.h>

static int test_func(void *arg, size_t size)
{
    printf("%s\n", (const char *)arg);
    printf("Process ID of parent process which created this sub process : %d\n",
           (int)getppid());
    printf("Process ID of sub-process which got created : %d\n", (int)getpid());
    return 0;
}

int main(void)
{
    static const char arg1[] = "Test first process creation";
    printf("Process ID of main process : %d\n", (int)getpid());
    mp_process *p = mp_process_new(.target = test_func, .arg = arg1, .arg_size = sizeof arg1);
    if (p == NULL || mp_process_start(p) != 0)
        return 1;
    mp_process_join(p, MP_FOREVER);
    mp_process_free(p);
    return 0;
}
