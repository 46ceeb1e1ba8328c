/*
 * mp-cleanup-stale: remove the shared memory segments and socket files of
 * libmp program families that are entirely dead (mp_cleanup_stale()).
 * Prints how many families it cleaned; exit status 0, or 1 on an error.
 */
#include <libmp.h>
#include <stdio.h>

int main(void)
{
    int n = mp_cleanup_stale();
    if (n < 0) {
        fprintf(stderr, "mp-cleanup-stale: %s\n", mp_strerror(n));
        return 1;
    }
    printf("%d dead famil%s cleaned\n", n, n == 1 ? "y" : "ies");
    return 0;
}
