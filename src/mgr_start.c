/*
 * mgr_start.c: the server as a child process (mp_manager_start), and its
 * end (shutdown at exit, reaping).
 *
 * The child is an ordinary libmp process (so every start method works: the
 * target is found again by module + offset, the manager pointer is valid in
 * the arena).  It is daemonic, ignores SIGINT as Python's server does (a
 * Ctrl-C in the terminal must not kill it before its owner shuts it down),
 * and stops by itself when its owner dies.  A finalizer of priority 0 in
 * the owner shuts it down cleanly at exit, as Python's BaseManager does.
 */
#include "internal/managers.h"
#include "internal/popen.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Run the manager's initializer with a private copy of its bytes; 0, or the
 * code that makes mp_manager_start fail. */
static int run_initializer(mp_manager *m)
{
    if (m->init.module == 0 && m->init.offset == 0)
        return 0;
    mp_manager_init_fn fn = (mp_manager_init_fn)mp__fnref_resolve(&m->init);
    if (fn == NULL)
        return MP_EINVAL;
    void *copy = NULL;
    if (m->initarg_size > 0) {
        copy = malloc(m->initarg_size);
        if (copy == NULL)
            return -ENOMEM;
        memcpy(copy, m->initarg, m->initarg_size);
    }
    int r = fn(copy, m->initarg_size);
    free(copy);
    return r < 0 ? r : 0;
}

static int server_main(void *arg, size_t size)
{
    if (size != sizeof(mp_manager *))
        return 2;
    mp_manager *m;
    memcpy(&m, arg, sizeof m);
    signal(SIGINT, SIG_IGN);
    int r = run_initializer(m);
    if (r != 0) {
        m->start_error = r;
        atomic_store(&m->state, MGR_FAILED);
        mp__futex_wake((uint32_t *)&m->state, INT32_MAX);
        return 1;
    }
    return mp__mgr_serve(m, m->owner_pid) == 0 ? 0 : 1;
}

static void finalize_manager(void *arg)
{
    mp_manager *m = arg;
    if (mp__obj_check(m, MP__MAGIC_MANAGER) == 0 && m->proc != NULL &&
        m->owner_pid == getpid())
        mp_manager_shutdown(m);
}

static void name_server(mp_process *p)
{
    /* Python names the server after its class and the process counter:
     * "SyncManager-1" where a Process would be "Process-1". */
    const char *dflt = mp_process_name(p);
    const char *ident = strncmp(dflt, "Process-", 8) == 0 ? dflt + 8 : dflt;
    char name[64];
    snprintf(name, sizeof name, "SyncManager-%s", ident);
    mp_process_set_name(p, name);
}

int mp_manager_start(mp_manager *m)
{
    if (mp__obj_check(m, MP__MAGIC_MANAGER) != 0)
        return MP_EINVAL;
    uint32_t st = MGR_NEW;
    if (!atomic_compare_exchange_strong(&m->state, &st, MGR_STARTING))
        return MP_EINVAL;
    m->owner_pid = getpid();
    mp_process *p = mp_process_new(.target = server_main, .arg = &m, .arg_size = sizeof m,
                                   .daemon = true, .ctx = m->ctx);
    int r = p != NULL ? 0 : mp_last_error();
    if (r == 0) {
        name_server(p);
        /* It stops by itself, cleaning up, when its owner dies. */
        mp__process_watches_parent(p);
        m->proc = p;
        r = mp_process_start(p);
    }
    if (r == 0) {
        /* Wait until it serves, watching that it does not die first. */
        for (;;) {
            r = mp__mgr_wait_started(m, 0.05);
            if (r != MP_ETIMEDOUT)
                break;
            if (mp_process_is_alive(p) != 1) {
                r = mp__mgr_wait_started(m, 0);
                if (r == MP_ETIMEDOUT)
                    r = -ECHILD;
                break;
            }
        }
    }
    if (r != 0) {
        if (p != NULL && mp_process_pid(p) > 0) {
            mp_process_kill(p);
            mp_process_join(p, MP_FOREVER);
        }
        mp_process_free(p);
        m->proc = NULL;
        if (m->start_error == 0)
            m->start_error = r;
        atomic_store(&m->state, MGR_FAILED);
        return r;
    }
    m->finalizer = mp_finalize(finalize_manager, m, 0);
    return 0;
}

void mp__mgr_reap_server(mp_manager *m)
{
    mp_process *p = m->proc;
    if (p == NULL || m->owner_pid != getpid())
        return;
    if (mp_process_join(p, 1.0) == MP_ETIMEDOUT) {
        mp_process_terminate(p);
        if (mp_process_join(p, 0.5) == MP_ETIMEDOUT) {
            mp_process_kill(p);
            mp_process_join(p, MP_FOREVER);
        }
    }
    int code;
    if (mp_process_exitcode(p, &code) == 0) {
        m->exitcode = code;
        atomic_store(&m->exit_known, 1);
    }
    m->proc = NULL;
    mp_process_free(p);
    if (m->finalizer > 0) {
        mp_finalizer_cancel(m->finalizer);
        m->finalizer = 0;
    }
    uint32_t st = atomic_load(&m->state);
    if (st == MGR_RUNNING || st == MGR_STARTING) {
        atomic_store(&m->state, MGR_STOPPED);
        mp__futex_wake((uint32_t *)&m->state, INT32_MAX);
        mp__chan_wake_all(m);
    }
}
