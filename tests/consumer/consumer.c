/* consumer.c: a program outside the tree, built against an installed libmp. */
#include <libmp.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    int *shared = mp_shared_alloc(sizeof *shared);
    if (shared == NULL)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        *shared = 42;
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    if (*shared != 42)
        return 3;
    mp_shared_free(shared);
    printf("consumer ok: %s %s\n", MP_VERSION_STRING, mp_err_name(MP_EEMPTY));
    return 0;
}
