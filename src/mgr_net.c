/*
 * mgr_net.c: the manager's socket transport, on the connection module.
 *
 * Server: a Listener on the manager's address, an acceptor thread, and one
 * thread per client connection (as Python's server has).  The authkey
 * challenge runs in the connection's thread, not in the acceptor, so a
 * client that connects and then says nothing holds up nobody but itself.
 * Each message is one request; each reply one message.
 *
 * Client: each thread of each process has its own connection to a
 * connected manager, opened on its first call (Python keeps one per
 * thread too), closed when the thread exits or the manager is forgotten.
 */
#include "internal/managers.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- server ----------------------------------------------------------------- */

struct net_conn {
    struct mgr_net *net;
    mp_connection *c;
    pthread_t th;
    _Atomic bool done;
    struct net_conn *next;
};

struct mgr_net {
    mp_manager *m;
    struct mgr_srv *s;
    mp_listener *l;
    int stopfd;
    pthread_t acceptor;
    pthread_mutex_t lock;
    struct net_conn *conns;
};

static int authenticate(struct mgr_net *net, mp_connection *c)
{
    mp_manager *m = net->m;
    if (!m->has_authkey)
        return 0;
    int r = mp_deliver_challenge(c, m->authkey, m->authkey_len);
    if (r == 0)
        r = mp_answer_challenge(c, m->authkey, m->authkey_len);
    return r;
}

static void *conn_main(void *arg)
{
    struct net_conn *nc = arg;
    struct mgr_net *net = nc->net;
    mp__buf out = {0};
    if (authenticate(net, nc->c) == 0) {
        for (;;) {
            void *req;
            size_t len;
            if (mp_connection_recv_bytes(nc->c, &req, &len, MGR_MSG_MAX) != 0)
                break;
            int r = mp__srv_handle(net->s, req, len, &out, true);
            free(req);
            if (r < 0)
                break;
            if (mp_connection_send_bytes(nc->c, out.p, out.len, 0, out.len) != 0)
                break;
            if (r == 1) {
                mp__chan_kick(net->m); /* the dispatcher sees the stop and returns */
                break;
            }
        }
    }
    mp__buf_free(&out);
    atomic_store(&nc->done, true);
    return NULL;
}

/* Join and free the connection threads that have finished. */
static void reap_conns(struct mgr_net *net)
{
    pthread_mutex_lock(&net->lock);
    struct net_conn **pp = &net->conns;
    while (*pp != NULL) {
        struct net_conn *nc = *pp;
        if (!atomic_load(&nc->done)) {
            pp = &nc->next;
            continue;
        }
        *pp = nc->next;
        pthread_join(nc->th, NULL);
        mp_connection_free(nc->c);
        free(nc);
    }
    pthread_mutex_unlock(&net->lock);
}

/*
 * Stop every connection thread: shut their sockets down (a thread waiting
 * for a request, or sending, returns at once; one in a hosted wait sees the
 * server stopping within a slice), until all have ended.  A thread still in
 * a registered method after 5 s is given up on.
 */
static bool end_conns(struct mgr_net *net)
{
    pthread_mutex_lock(&net->lock);
    for (struct net_conn *nc = net->conns; nc != NULL; nc = nc->next) {
        int fd = mp_connection_fileno(nc->c);
        if (fd >= 0)
            shutdown(fd, SHUT_RDWR);
    }
    pthread_mutex_unlock(&net->lock);
    for (int i = 0; i < 500; i++) {
        reap_conns(net);
        pthread_mutex_lock(&net->lock);
        bool empty = net->conns == NULL;
        pthread_mutex_unlock(&net->lock);
        if (empty)
            return true;
        usleep(10000);
    }
    return false;
}

static void *acceptor_main(void *arg)
{
    struct mgr_net *net = arg;
    int lfd = mp_listener_fileno(net->l);
    for (;;) {
        struct pollfd pf[2] = {{.fd = lfd, .events = POLLIN},
                               {.fd = net->stopfd, .events = POLLIN}};
        int n = poll(pf, 2, 1000);
        if (n < 0 && errno != EINTR)
            break;
        if (pf[1].revents)
            break;
        reap_conns(net);
        if (n <= 0 || !(pf[0].revents & POLLIN))
            continue;
        mp_connection *c;
        if (mp_listener_accept(net->l, &c) != 0)
            continue;
        struct net_conn *nc = calloc(1, sizeof *nc);
        if (nc == NULL) {
            mp_connection_free(c);
            continue;
        }
        nc->net = net;
        nc->c = c;
        pthread_mutex_lock(&net->lock);
        if (pthread_create(&nc->th, NULL, conn_main, nc) != 0) {
            pthread_mutex_unlock(&net->lock);
            mp_connection_free(c);
            free(nc);
            continue;
        }
        nc->next = net->conns;
        net->conns = nc;
        pthread_mutex_unlock(&net->lock);
    }
    return NULL;
}

static int listen_on(mp_manager *m, mp_listener **out)
{
    mp_listener *l;
    if (m->family == 1)
        l = mp_listener_new(.path = m->path, .path_len = m->path_len, .backlog = 16);
    else
        l = mp_listener_new(.host = m->host, .port = m->port, .backlog = 16);
    if (l == NULL)
        return mp_last_error();
    /* Record the address as bound (the port the system chose for 0). */
    mp_address a;
    if (mp_listener_address(l, &a) == 0) {
        if (a.family == MP_AF_INET) {
            snprintf(m->host, sizeof m->host, "%s", a.host);
            m->port = a.port;
        }
    }
    *out = l;
    return 0;
}

int mp__mgr_net_start(mp_manager *m, struct mgr_srv *s, struct mgr_net **out)
{
    *out = NULL;
    if (m->family == 0)
        return 0;
    struct mgr_net *net = calloc(1, sizeof *net);
    if (net == NULL)
        return -ENOMEM;
    net->m = m;
    net->s = s;
    net->stopfd = eventfd(0, EFD_CLOEXEC);
    if (net->stopfd < 0) {
        int r = mp__errno();
        free(net);
        return r;
    }
    int r = listen_on(m, &net->l);
    if (r == 0) {
        pthread_mutex_init(&net->lock, NULL);
        r = -pthread_create(&net->acceptor, NULL, acceptor_main, net);
        if (r != 0) {
            pthread_mutex_destroy(&net->lock);
            mp_listener_free(net->l);
        }
    }
    if (r != 0) {
        close(net->stopfd);
        free(net);
        return r;
    }
    *out = net;
    return 0;
}

bool mp__mgr_net_stop(struct mgr_net *net)
{
    if (net == NULL)
        return true;
    uint64_t one = 1;
    ssize_t w = write(net->stopfd, &one, sizeof one);
    (void)w;
    pthread_join(net->acceptor, NULL);
    mp_listener_free(net->l);
    if (!end_conns(net))
        return false; /* net is left for the threads that still run */
    pthread_mutex_destroy(&net->lock);
    close(net->stopfd);
    free(net);
    return true;
}

/* ---- client ------------------------------------------------------------------- */

#define TL_CONNS 4

struct tl_conn {
    mp_manager *m;
    uint64_t mgr_id;
    pid_t pid;
    mp_connection *c;
};

static __thread struct tl_conn tl_conns[TL_CONNS];

static mp_connection *dial(mp_manager *m)
{
    const void *key = m->has_authkey ? m->authkey : NULL;
    size_t keylen = m->has_authkey ? m->authkey_len : 0;
    if (m->family == 1)
        return mp_client(.path = m->path, .path_len = m->path_len, .authkey = key,
                         .authkey_len = keylen);
    return mp_client(.host = m->host, .port = m->port, .authkey = key, .authkey_len = keylen);
}

/* Drop a slot: close the connection here; free it if this process made it. */
static void slot_drop(struct tl_conn *sl)
{
    if (sl->c != NULL) {
        if (sl->pid == getpid())
            mp_connection_free(sl->c);
        else
            mp_connection_close(sl->c); /* a fork child's copy of the parent's */
    }
    memset(sl, 0, sizeof *sl);
}

static int conn_get(mp_manager *m, mp_connection **out)
{
    pid_t pid = getpid();
    struct tl_conn *free_slot = NULL;
    for (int i = 0; i < TL_CONNS; i++) {
        struct tl_conn *sl = &tl_conns[i];
        if (sl->c != NULL && sl->m == m && sl->mgr_id == m->hdr.id && sl->pid == pid) {
            *out = sl->c;
            return 0;
        }
        if (sl->c != NULL && sl->pid != pid)
            slot_drop(sl);
        if (free_slot == NULL && sl->c == NULL)
            free_slot = sl;
    }
    if (free_slot == NULL) {
        free_slot = &tl_conns[0];
        slot_drop(free_slot);
    }
    mp_connection *c = dial(m);
    if (c == NULL)
        return mp_last_error();
    *free_slot = (struct tl_conn){.m = m, .mgr_id = m->hdr.id, .pid = pid, .c = c};
    *out = c;
    return 0;
}

static void conn_drop(mp_manager *m)
{
    for (int i = 0; i < TL_CONNS; i++)
        if (tl_conns[i].m == m)
            slot_drop(&tl_conns[i]);
}

/*
 * The server of a connected manager is gone (it closed the connection, or
 * no longer listens): the manager is stopped for good, so that every later
 * call through it or its proxies returns MP_EEOF, in every thread and
 * process, rather than trying the address again.
 */
static int server_lost(mp_manager *m)
{
    uint32_t st = MGR_CONNECTED;
    if (atomic_compare_exchange_strong(&m->state, &st, MGR_STOPPED))
        atomic_store(&m->dead_seen, 1);
    return MP_EEOF;
}

int mp__mgr_conn_call(mp_manager *m, const void *req, size_t len, mp__buf *rep)
{
    mp_connection *c = NULL;
    int r = conn_get(m, &c);
    if (r != 0) {
        bool connected = atomic_load(&m->state) == MGR_CONNECTED;
        return connected && (r == -ECONNREFUSED || r == -ENOENT) ? server_lost(m) : r;
    }
    r = mp_connection_send_bytes(c, req, len, 0, len);
    void *buf = NULL;
    size_t n = 0;
    if (r == 0)
        r = mp_connection_recv_bytes(c, &buf, &n, MGR_MSG_MAX);
    if (r != 0) {
        /* The stream cannot be trusted any more; the next call reconnects. */
        conn_drop(m);
        if (r == -EPIPE || r == -ECONNRESET || r == -EPROTO)
            r = MP_EEOF;
        if (r == MP_EEOF && atomic_load(&m->state) == MGR_CONNECTED)
            r = server_lost(m);
        return r;
    }
    free(rep->p);
    rep->p = buf;
    rep->len = n;
    rep->cap = n;
    rep->oom = false;
    return 0;
}

int mp__mgr_conn_open(mp_manager *m)
{
    struct tl_state_probe {
        mp__buf req, rep;
    } t = {{0}, {0}};
    mp__buf_putc(&t.req, MGR_OP_PING);
    int r = t.req.oom ? -ENOMEM : mp__mgr_conn_call(m, t.req.p, t.req.len, &t.rep);
    if (r == 0 && (t.rep.len == 0 || t.rep.p[0] != MGR_ST_OK))
        r = -EPROTO;
    mp__buf_free(&t.req);
    mp__buf_free(&t.rep);
    return r;
}

void mp__mgr_conn_forget(mp_manager *m)
{
    conn_drop(m);
}

void mp__mgr_conn_thread_exit(void)
{
    for (int i = 0; i < TL_CONNS; i++)
        if (tl_conns[i].c != NULL)
            slot_drop(&tl_conns[i]);
}

int mp_manager_connect(mp_manager *m)
{
    if (mp__obj_check(m, MP__MAGIC_MANAGER) != 0 || m->family == 0)
        return MP_EINVAL;
    uint32_t st = MGR_NEW;
    if (!atomic_compare_exchange_strong(&m->state, &st, MGR_STARTING))
        return MP_EINVAL;
    int r = mp__mgr_conn_open(m);
    atomic_store(&m->state, r == 0 ? MGR_CONNECTED : MGR_NEW);
    return r;
}
