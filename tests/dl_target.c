/* dl_target.c: a library test_context loads with dlopen, whose function a
 * spawned child (a fresh image) does not have. */
#include <stddef.h>

int mpt_dl_target(void *arg, size_t size);

int mpt_dl_target(void *arg, size_t size)
{
    (void)arg;
    (void)size;
    return 9;
}
