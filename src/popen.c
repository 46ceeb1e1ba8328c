/*
 * popen.c: the table of start methods and the choice of one for a process.
 *
 * context.c maps an mp_context to its method (mp__popen_method_for).
 */
#include "internal/mp.h"
#include "internal/popen.h"

static const mp__popen_ops *const methods[MP__START_COUNT] = {
    [MP__START_FORK] = &mp__popen_fork_ops,
    [MP__START_SPAWN] = &mp__popen_spawn_ops,
    [MP__START_FORKSERVER] = &mp__popen_forkserver_ops,
};

const mp__popen_ops *mp__popen_ops_get(int method)
{
    if (method <= MP__START_NONE || method >= MP__START_COUNT)
        return NULL;
    return methods[method];
}
