/*
 * popen.c: the table of start methods and the choice of one for a process.
 *
 * Only fork is built in so far.  The spawn and forkserver start methods add
 * their rows to the table; context.c will map an mp_context to its method.
 */
#include "internal/mp.h"
#include "internal/popen.h"

static const mp__popen_ops *const methods[MP__START_COUNT] = {
    [MP__START_FORK] = &mp__popen_fork_ops,
};

const mp__popen_ops *mp__popen_ops_get(int method)
{
    if (method <= MP__START_NONE || method >= MP__START_COUNT)
        return NULL;
    return methods[method];
}

int mp__popen_method_for(const mp_context *ctx)
{
    /* No context object exists before context.c lands: any pointer is
     * one libmp did not make. */
    if (ctx != NULL)
        return MP_EINVAL;
    return MP__START_FORK;
}
