/*
 * listener.c: Listener and Client over AF_UNIX and AF_INET stream sockets,
 * as multiprocessing.connection's SocketListener and SocketClient.
 */
#include "internal/conn.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define LISTENER_MAGIC MP__MAGIC('l', 's', 't', 'n')
#define MAX_AUTHKEY 4096

struct mp_listener {
    mp__obj hdr;
    int fd;
    pid_t creator;           /* the process that bound the address */
    bool unlink_path;        /* a filesystem AF_UNIX path to remove on close */
    bool has_last;
    bool has_authkey;
    socklen_t addr_len;
    socklen_t last_len;
    struct sockaddr_storage addr;
    struct sockaddr_storage last;
    size_t authkey_len;
    unsigned char authkey[];
};

/* ---- addresses ------------------------------------------------------------ */

/* A resolved address: what bind or connect take. */
typedef struct sockaddr_any {
    struct sockaddr_storage ss;
    socklen_t len;
    int family;              /* AF_UNIX or AF_INET */
    bool is_path;            /* AF_UNIX with a filesystem path */
    bool autobind;           /* AF_UNIX, no name: the kernel picks one */
} sockaddr_any;

/* The address fields common to both options structs. */
typedef struct addr_opts {
    mp_family family;
    const char *path;
    size_t path_len;
    const char *host;
    int port;
    const mp_address *address;
} addr_opts;

static int unix_address(const char *path, size_t len, sockaddr_any *out)
{
    struct sockaddr_un *un = (struct sockaddr_un *)&out->ss;
    un->sun_family = AF_UNIX;
    out->family = AF_UNIX;
    if (path[0] == '@' || path[0] == '\0') {
        /* A Linux abstract name: sun_path starts with a NUL and the name is
         * exactly the bytes that follow (the length counts, not a NUL). */
        if (len > sizeof un->sun_path)
            return -ENAMETOOLONG;
        un->sun_path[0] = '\0';
        memcpy(un->sun_path + 1, path + 1, len - 1);
        out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
        return 0;
    }
    if (memchr(path, '\0', len) != NULL)
        return MP_EINVAL;
    if (len >= sizeof un->sun_path)
        return -ENAMETOOLONG;
    memcpy(un->sun_path, path, len);
    un->sun_path[len] = '\0';
    out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    out->is_path = true;
    return 0;
}

static int inet_address(const char *host, int port, sockaddr_any *out)
{
    if (port < 0 || port > 65535)
        return MP_EINVAL;
    struct sockaddr_in *in = (struct sockaddr_in *)&out->ss;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    out->family = AF_INET;
    out->len = sizeof *in;
    if (host[0] == '\0') {
        in->sin_addr.s_addr = htonl(INADDR_ANY);
        return 0;
    }
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1)
        return 0;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL)
        return -EADDRNOTAVAIL;
    in->sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
    freeaddrinfo(res);
    return 0;
}

/*
 * Turn the options into a socket address.  for_listener: no address at all
 * means a fresh one (Python's arbitrary_address); a Client must be told.
 */
static int resolve(const addr_opts *o, bool for_listener, sockaddr_any *out)
{
    memset(out, 0, sizeof *out);
    if (o->family != MP_AF_DEFAULT && o->family != MP_AF_UNIX && o->family != MP_AF_INET)
        return MP_EINVAL;
    int given = (o->address != NULL) + (o->path != NULL) + (o->host != NULL);
    if (given > 1)
        return MP_EINVAL;
    mp_family fam = o->family;
    const char *path = o->path, *host = o->host;
    size_t plen = o->path_len;
    int port = o->port;
    if (o->address != NULL) {
        const mp_address *a = o->address;
        if (a->family == MP_AF_UNIX) {
            if (a->path_len >= sizeof a->path)
                return MP_EINVAL;
            path = a->path;
            plen = a->path_len;
        } else if (a->family == MP_AF_INET) {
            if (memchr(a->host, '\0', sizeof a->host) == NULL)
                return MP_EINVAL;
            host = a->host;
            port = a->port;
        } else {
            return MP_EINVAL;
        }
    }
    if (path != NULL && plen == 0)
        plen = strlen(path);
    if (path != NULL && plen == 0)
        path = NULL; /* Python: an empty address means "choose one" */
    if ((path != NULL && fam == MP_AF_INET) || (host != NULL && fam == MP_AF_UNIX))
        return MP_EINVAL;
    if (path != NULL)
        return unix_address(path, plen, out);
    if (host != NULL)
        return inet_address(host, port, out);
    if (!for_listener)
        return MP_EINVAL;
    if (fam == MP_AF_INET)
        return inet_address("127.0.0.1", 0, out);
    struct sockaddr_un *un = (struct sockaddr_un *)&out->ss;
    un->sun_family = AF_UNIX;
    out->family = AF_UNIX;
    out->len = sizeof(sa_family_t);
    out->autobind = true;
    return 0;
}

/* Describe a socket address for the caller. */
static void describe(const struct sockaddr_storage *ss, socklen_t len, mp_address *a)
{
    memset(a, 0, sizeof *a);
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        a->family = MP_AF_INET;
        inet_ntop(AF_INET, &in->sin_addr, a->host, sizeof a->host);
        a->port = ntohs(in->sin_port);
        return;
    }
    const struct sockaddr_un *un = (const struct sockaddr_un *)ss;
    size_t off = offsetof(struct sockaddr_un, sun_path);
    size_t n = len > off ? len - off : 0;
    a->family = MP_AF_UNIX;
    if (n == 0)
        return;
    if (un->sun_path[0] == '\0') {
        a->path[0] = '@';
        memcpy(a->path + 1, un->sun_path + 1, n - 1);
        a->path_len = n;
    } else {
        a->path_len = strnlen(un->sun_path, n);
        memcpy(a->path, un->sun_path, a->path_len);
    }
    a->path[a->path_len] = '\0';
}

/* ---- removing socket files at exit ------------------------------------------ */

/*
 * Python removes a Listener's socket file at exit (util.Finalize).  The
 * listeners that this process bound to a path are remembered here, a
 * process-local table with no lock (so a fork can never leave it locked);
 * the atexit handler unlinks the paths of those still open.  Past
 * EXIT_TABLE listeners at once, the extra ones are only removed by close.
 */
#define EXIT_TABLE 64
static _Atomic(mp_listener *) at_exit_table[EXIT_TABLE];
static pthread_once_t at_exit_once = PTHREAD_ONCE_INIT;

static void unlink_if_mine(mp_listener *l)
{
    if (l->unlink_path && l->creator == getpid()) {
        l->unlink_path = false;
        unlink(((struct sockaddr_un *)&l->addr)->sun_path);
    }
}

static void at_exit_unlink(void)
{
    for (int i = 0; i < EXIT_TABLE; i++) {
        mp_listener *l = atomic_exchange(&at_exit_table[i], NULL);
        if (l != NULL && mp__obj_check(l, LISTENER_MAGIC) == 0)
            unlink_if_mine(l);
    }
}

static void at_exit_install(void)
{
    atexit(at_exit_unlink);
}

static void remember(mp_listener *l)
{
    pthread_once(&at_exit_once, at_exit_install);
    for (int i = 0; i < EXIT_TABLE; i++) {
        mp_listener *expected = NULL;
        if (atomic_compare_exchange_strong(&at_exit_table[i], &expected, l))
            return;
    }
}

static void forget(mp_listener *l)
{
    for (int i = 0; i < EXIT_TABLE; i++) {
        mp_listener *expected = l;
        if (atomic_compare_exchange_strong(&at_exit_table[i], &expected, NULL))
            return;
    }
}

/* ---- Listener --------------------------------------------------------------- */

static int check_listener(const mp_listener *l)
{
    return mp__obj_check(l, LISTENER_MAGIC);
}

static bool listener_open(const mp_listener *l)
{
    return mp__fd_owned(l->fd, l);
}

static int bind_listen(const sockaddr_any *a, int backlog, int *fdp)
{
    int fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return mp__errno();
    int one = 1;
    int r = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0 ||
        listen(fd, backlog) != 0)
        r = mp__errno();
    if (r != 0) {
        close(fd);
        return r;
    }
    *fdp = fd;
    return 0;
}

mp_listener *mp_listener_new_opts(const mp_listener_options *o)
{
    mp_listener_options opts_local;
    int opts_err;
    o = MP__OPTS_LOAD(opts_local, o, authkey_len, &opts_err);
    if (opts_err != 0)
        return mp__fail_null(opts_err);
    if (o == NULL || o->backlog < 0 || (o->authkey == NULL && o->authkey_len > 0) ||
        o->authkey_len > MAX_AUTHKEY)
        return mp__fail_null(MP_EINVAL);
    addr_opts ao = {o->family, o->path, o->path_len, o->host, o->port, o->address};
    sockaddr_any a;
    int r = resolve(&ao, true, &a);
    if (r != 0)
        return mp__fail_null(r);
    size_t keylen = o->authkey != NULL ? o->authkey_len : 0;
    mp_listener *l = mp__obj_new(sizeof *l + keylen, LISTENER_MAGIC);
    if (l == NULL)
        return mp__fail_null(-ENOMEM);
    r = bind_listen(&a, o->backlog > 0 ? o->backlog : 1, &l->fd);
    if (r != 0) {
        mp__obj_free(l);
        return mp__fail_null(r);
    }
    l->addr_len = sizeof l->addr;
    if (getsockname(l->fd, (struct sockaddr *)&l->addr, &l->addr_len) != 0) {
        memcpy(&l->addr, &a.ss, a.len);
        l->addr_len = a.len;
    }
    l->creator = getpid();
    l->has_authkey = o->authkey != NULL;
    l->authkey_len = keylen;
    if (keylen > 0)
        memcpy(l->authkey, o->authkey, keylen);
    r = mp__fd_register(l->fd, l);
    if (r != 0) {
        close(l->fd);
        if (a.is_path)
            unlink(((struct sockaddr_un *)&a.ss)->sun_path);
        mp__obj_free(l);
        return mp__fail_null(r);
    }
    if (a.is_path) {
        l->unlink_path = true;
        remember(l);
    }
    return l;
}

int mp_listener_accept(mp_listener *l, mp_connection **conn)
{
    if (conn != NULL)
        *conn = NULL;
    if (check_listener(l) != 0 || conn == NULL || !listener_open(l))
        return MP_EINVAL;
    struct sockaddr_storage peer;
    socklen_t plen;
    int fd;
    do {
        plen = sizeof peer;
        fd = accept4(l->fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
    } while (fd < 0 && (errno == EINTR || errno == ECONNABORTED));
    if (fd < 0)
        return mp__errno();
    memcpy(&l->last, &peer, plen <= sizeof peer ? plen : sizeof peer);
    l->last_len = plen;
    l->has_last = true;
    int r = 0;
    mp_connection *c = mp__connection_wrap(fd, true, true, true, &r);
    if (c == NULL) {
        close(fd);
        return r;
    }
    if (l->has_authkey) {
        r = mp_deliver_challenge(c, l->authkey, l->authkey_len);
        if (r == 0)
            r = mp_answer_challenge(c, l->authkey, l->authkey_len);
        if (r != 0) {
            mp_connection_free(c);
            return r;
        }
    }
    *conn = c;
    return 0;
}

int mp_listener_close(mp_listener *l)
{
    if (check_listener(l) != 0)
        return MP_EINVAL;
    if (listener_open(l)) {
        mp__fd_unregister(l->fd);
        close(l->fd);
    }
    if (l->unlink_path && l->creator == getpid()) {
        forget(l);
        unlink_if_mine(l);
    }
    return 0;
}

void mp_listener_free(mp_listener *l)
{
    if (mp_listener_close(l) == 0)
        mp__obj_free(l);
}

int mp_listener_address(const mp_listener *l, mp_address *addr)
{
    if (check_listener(l) != 0 || addr == NULL)
        return MP_EINVAL;
    describe(&l->addr, l->addr_len, addr);
    return 0;
}

int mp_listener_last_accepted(const mp_listener *l, mp_address *addr)
{
    if (check_listener(l) != 0 || addr == NULL)
        return MP_EINVAL;
    if (!l->has_last)
        return -ENOTCONN;
    describe(&l->last, l->last_len, addr);
    return 0;
}

int mp_listener_fileno(const mp_listener *l)
{
    if (check_listener(l) != 0 || !listener_open(l))
        return MP_EINVAL;
    return l->fd;
}

/* ---- Client ------------------------------------------------------------------ */

/*
 * connect(2), resumed after EINTR: the connection then goes on in the
 * background, so wait for it and read its outcome instead of connecting again.
 */
static int connect_fd(int fd, const sockaddr_any *a)
{
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0)
        return 0;
    if (errno != EINTR && errno != EINPROGRESS)
        return mp__errno();
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    while (poll(&p, 1, -1) < 0)
        if (errno != EINTR)
            return mp__errno();
    int err = 0;
    socklen_t elen = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
        return mp__errno();
    return -err;
}

mp_connection *mp_client_opts(const mp_client_options *o)
{
    mp_client_options opts_local;
    int opts_err;
    o = MP__OPTS_LOAD(opts_local, o, authkey_len, &opts_err);
    if (opts_err != 0)
        return mp__fail_null(opts_err);
    if (o == NULL || (o->authkey == NULL && o->authkey_len > 0))
        return mp__fail_null(MP_EINVAL);
    addr_opts ao = {o->family, o->path, o->path_len, o->host, o->port, o->address};
    sockaddr_any a;
    int r = resolve(&ao, false, &a);
    if (r != 0)
        return mp__fail_null(r);
    int fd = socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return mp__fail_null(mp__errno());
    r = connect_fd(fd, &a);
    if (r != 0) {
        close(fd);
        return mp__fail_null(r);
    }
    mp_connection *c = mp__connection_wrap(fd, true, true, true, &r);
    if (c == NULL) {
        close(fd);
        return mp__fail_null(r);
    }
    if (o->authkey != NULL) {
        r = mp_answer_challenge(c, o->authkey, o->authkey_len);
        if (r == 0)
            r = mp_deliver_challenge(c, o->authkey, o->authkey_len);
        if (r != 0) {
            mp_connection_free(c);
            return mp__fail_null(r);
        }
    }
    return c;
}
