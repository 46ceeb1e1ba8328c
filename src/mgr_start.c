/*
 * mgr_start.c: starting the server in a child process (mp_manager_start).
 *
 * UNFINISHED: this waits for the process module (mp_process_new and
 * friends); until it lands mp_manager_start returns -ENOSYS and a server
 * can only run through mp_manager_serve_forever.
 */
#include "internal/managers.h"

int mp_manager_start(mp_manager *m)
{
    if (mp__obj_check(m, MP__MAGIC_MANAGER) != 0)
        return MP_EINVAL;
    return -ENOSYS;
}

void mp__mgr_reap_server(mp_manager *m)
{
    (void)m;
}
