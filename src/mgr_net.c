/*
 * mgr_net.c: the socket transport of the manager: a Listener with the
 * authkey challenge on the server side, one connection per client thread on
 * the client side.
 *
 * UNFINISHED: this waits for the connection module (Listener, Client and
 * the authkey challenge); until it lands a manager with an address cannot
 * start (-ENOSYS) and mp_manager_connect returns -ENOSYS.
 */
#include "internal/managers.h"

int mp__mgr_net_start(mp_manager *m, struct mgr_srv *s, struct mgr_net **net)
{
    (void)s;
    *net = NULL;
    return m->family != 0 ? -ENOSYS : 0;
}

void mp__mgr_net_stop(struct mgr_net *net)
{
    (void)net;
}

int mp__mgr_conn_open(mp_manager *m)
{
    (void)m;
    return -ENOSYS;
}

int mp__mgr_conn_call(mp_manager *m, const void *req, size_t len, mp__buf *rep)
{
    (void)m;
    (void)req;
    (void)len;
    (void)rep;
    return -ENOSYS;
}

void mp__mgr_conn_forget(mp_manager *m)
{
    (void)m;
}

void mp__mgr_conn_thread_exit(void)
{
}

int mp_manager_connect(mp_manager *m)
{
    if (mp__obj_check(m, MP__MAGIC_MANAGER) != 0 || m->family == 0)
        return MP_EINVAL;
    return mp__mgr_conn_open(m);
}
