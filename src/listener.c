/*
 * listener.c: Listener and Client over AF_UNIX and AF_INET stream sockets,
 * as multiprocessing.connection's SocketListener and SocketClient.
 */
#include "internal/conn.h"
#include "internal/resource_tracker.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define LISTENER_MAGIC MP__MAGIC('l', 's', 't', 'n')
#define MAX_AUTHKEY 4096

struct mp_listener {
    mp__obj hdr;
    int fd;
    pid_t creator;               /* the process that bound the address */
    bool unlink_path;            /* a filesystem AF_UNIX path to remove on close */
    struct mp__tracker *tracker; /* where the path is tracked, or NULL */
    char tracked[sizeof(((struct sockaddr_un *)0)->sun_path) + 1]; /* as tracked */
    bool has_last;
    bool has_authkey;
    socklen_t addr_len;
    socklen_t last_len;
    struct sockaddr_storage addr;
    struct sockaddr_storage last;
    double timeout; /* .timeout: 0 for the process default */
    size_t authkey_len;
    unsigned char authkey[];
};

/* ---- timeouts (Python's socket.setdefaulttimeout) ------------------------- */

/* The process default, as the bits of a double; MP_FOREVER at first. */
static _Atomic uint64_t default_timeout_bits;
static atomic_bool default_timeout_set;

static bool timeout_ok(double t)
{
    return t == MP_FOREVER || t >= 0; /* NaN fails both */
}

int mp_set_default_timeout(double timeout)
{
    if (!timeout_ok(timeout))
        return MP_EINVAL;
    uint64_t bits;
    memcpy(&bits, &timeout, sizeof bits);
    atomic_store(&default_timeout_bits, bits);
    atomic_store(&default_timeout_set, true);
    return 0;
}

double mp_get_default_timeout(void)
{
    if (!atomic_load(&default_timeout_set))
        return MP_FOREVER;
    uint64_t bits = atomic_load(&default_timeout_bits);
    double t;
    memcpy(&t, &bits, sizeof t);
    return t;
}

/* An option's timeout: 0 (not given) takes the process default. */
static double option_timeout(double t)
{
    return t == 0 ? mp_get_default_timeout() : t;
}

/*
 * Run the authkey handshake of c (on fd, which the caller owns) against d:
 * the socket is non-blocking meanwhile, so every wait goes through the
 * connection's deadline-aware wait.
 */
static int handshake(mp_connection *c, int fd, const void *key, size_t len, bool deliver_first,
                     const mp__deadline *d)
{
    int fl = fcntl(fd, F_GETFL);
    bool timed = !d->forever;
    if (timed && (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0))
        return mp__errno();
    mp__conn_set_io_deadline(timed ? d : NULL);
    int r;
    if (deliver_first) {
        r = mp_deliver_challenge(c, key, len);
        if (r == 0)
            r = mp_answer_challenge(c, key, len);
    } else {
        r = mp_answer_challenge(c, key, len);
        if (r == 0)
            r = mp_deliver_challenge(c, key, len);
    }
    mp__conn_set_io_deadline(NULL);
    if (timed && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0 && r == 0)
        r = mp__errno();
    return r;
}

/* ---- addresses ------------------------------------------------------------ */

/* A resolved address: what bind or connect take. */
typedef struct sockaddr_any {
    struct sockaddr_storage ss;
    socklen_t len;
    int family;    /* AF_UNIX or AF_INET */
    bool is_path;  /* AF_UNIX with a filesystem path */
    bool autobind; /* AF_UNIX, no name: the kernel picks one */
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
        mp__tracker_unregister(l->tracker, MP__TRACK_SOCKET, l->tracked);
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
        bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0 || listen(fd, backlog) != 0)
        r = mp__errno();
    if (r != 0) {
        close(fd);
        return r;
    }
    *fdp = fd;
    return 0;
}

/*
 * A socket file must never exist untracked, or a program killed between
 * its bind and its registration leaks it.  So a path listener binds to a
 * temporary name in the path's directory, one only this family can make
 * (mp_ROOTPID_RANDOM, reserved with the resource tracker before the bind);
 * tracks the path with that file's identity; gives the file the path with
 * link(), which fails with EEXIST where bind would fail with EADDRINUSE;
 * and removes the temporary name.  Clients find the socket by its inode,
 * through either name.  A death at any moment leaves only tracked names.
 *
 * The tracker needs absolute paths (its working directory is not ours); a
 * path too long to make absolute is bound directly and stays untracked, as
 * before; one whose temporary name does not fit in sun_path, or a
 * filesystem that refuses the link, is bound directly and tracked after
 * the bind (the window stays open for it).
 */
static int tmp_names(const char *path, const char *abs, char *tmp, size_t tmpn, char *tmpabs,
                     size_t tmpabsn)
{
    uint64_t rnd;
    if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return mp__errno();
    char base[48];
    snprintf(base, sizeof base, ".mp_%x_%012llx", (unsigned)mp__heap_creator(),
             (unsigned long long)(rnd & 0xffffffffffffull));
    const char *slash = strrchr(path, '/'), *aslash = strrchr(abs, '/');
    int dn = slash != NULL ? (int)(slash - path + 1) : 0;
    int adn = (int)(aslash - abs + 1);
    if (snprintf(tmp, tmpn, "%.*s%s", dn, path, base) >= (int)tmpn ||
        snprintf(tmpabs, tmpabsn, "%.*s%s", adn, abs, base) >= (int)tmpabsn)
        return -ENAMETOOLONG;
    return 0;
}

static int bind_at(const char *path, int backlog, int *fdp)
{
    sockaddr_any t = {.family = AF_UNIX};
    int r = unix_address(path, strlen(path), &t);
    return r != 0 ? r : bind_listen(&t, backlog, fdp);
}

/* Bind at tmp and link it to path (see above); 1 if the link is refused
 * for another reason than a taken path (then nothing is left). */
static int bind_linked(mp_listener *l, const char *path, const char *tmp, const char *tmpabs,
                       int backlog)
{
    struct mp__tracker *t = NULL;
    int r = mp__tracker_reserve(MP__TRACK_SOCKET, tmpabs, &t);
    if (r != 0)
        return r;
    struct stat st;
    r = bind_at(tmp, backlog, &l->fd);
    if (r == 0 && lstat(tmp, &st) != 0)
        r = mp__errno();
    if (r == 0)
        r = mp__tracker_register_stat(MP__TRACK_SOCKET, l->tracked, &st, &l->tracker);
    if (r == 0 && link(tmp, path) != 0) {
        r = errno == EEXIST                                            ? -EADDRINUSE
            : errno == EPERM || errno == EOPNOTSUPP || errno == EMLINK ? 1
                                                                       : mp__errno();
        mp__tracker_unregister(l->tracker, MP__TRACK_SOCKET, l->tracked);
        l->tracker = NULL;
    }
    unlink(tmp);
    mp__tracker_unregister(t, MP__TRACK_SOCKET, tmpabs);
    if (r != 0 && l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
    return r;
}

static int bind_path(mp_listener *l, const sockaddr_any *a, int backlog)
{
    const char *path = ((const struct sockaddr_un *)&a->ss)->sun_path;
    char cwd[sizeof l->tracked];
    l->fd = -1;
    if (path[0] == '/') {
        snprintf(l->tracked, sizeof l->tracked, "%s", path);
    } else if (getcwd(cwd, sizeof cwd) == NULL ||
               snprintf(l->tracked, sizeof l->tracked, "%s/%s", cwd, path) >=
                   (int)sizeof l->tracked) {
        return bind_listen(a, backlog, &l->fd);
    }
    char tmp[sizeof(((struct sockaddr_un *)0)->sun_path)], tmpabs[sizeof l->tracked + 48];
    int r = tmp_names(path, l->tracked, tmp, sizeof tmp, tmpabs, sizeof tmpabs);
    if (r == 0)
        r = bind_linked(l, path, tmp, tmpabs, backlog);
    if (r != -ENAMETOOLONG && r != 1)
        return r;
    r = bind_listen(a, backlog, &l->fd);
    if (r == 0)
        r = mp__tracker_register(MP__TRACK_SOCKET, l->tracked, -1, &l->tracker);
    if (r != 0 && l->fd >= 0) {
        close(l->fd);
        unlink(path);
    }
    return r;
}

mp_listener *mp_listener_new_opts(const mp_listener_options *o)
{
    mp_listener_options opts_local;
    int opts_err;
    o = MP__OPTS_LOAD(opts_local, o, authkey_len, &opts_err);
    if (opts_err != 0)
        return mp__fail_null(opts_err);
    if (o == NULL || o->backlog < 0 || (o->authkey == NULL && o->authkey_len > 0) ||
        o->authkey_len > MAX_AUTHKEY || !timeout_ok(o->timeout))
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
    int backlog = o->backlog > 0 ? o->backlog : 1;
    r = a.is_path ? bind_path(l, &a, backlog) : bind_listen(&a, backlog, &l->fd);
    if (r != 0) {
        mp__obj_free(l);
        return mp__fail_null(r);
    }
    l->addr_len = sizeof l->addr;
    /* A path listener is bound at another name (bind_path): its address is
     * the path asked for. */
    if (a.is_path || getsockname(l->fd, (struct sockaddr *)&l->addr, &l->addr_len) != 0) {
        memcpy(&l->addr, &a.ss, a.len);
        l->addr_len = a.len;
    }
    l->creator = getpid();
    l->timeout = o->timeout;
    l->has_authkey = o->authkey != NULL;
    l->authkey_len = keylen;
    if (keylen > 0)
        memcpy(l->authkey, o->authkey, keylen);
    r = mp__fd_register(l->fd, l);
    if (r != 0) {
        close(l->fd);
        if (a.is_path) {
            unlink(((struct sockaddr_un *)&a.ss)->sun_path);
            mp__tracker_unregister(l->tracker, MP__TRACK_SOCKET, l->tracked);
        }
        mp__obj_free(l);
        return mp__fail_null(r);
    }
    if (a.is_path) {
        l->unlink_path = true;
        remember(l);
    }
    return l;
}

/* accept4 against d: the new fd, or a negative code. */
static int accept_before(mp_listener *l, const mp__deadline *d, struct sockaddr_storage *peer,
                         socklen_t *plen)
{
    for (;;) {
        if (!d->forever) {
            struct pollfd p = {.fd = l->fd, .events = POLLIN};
            int n = poll(&p, 1, mp__deadline_poll_ms(d));
            if (n < 0 && errno != EINTR)
                return mp__errno();
            if (n <= 0) {
                if (mp__deadline_expired(d))
                    return MP_ETIMEDOUT;
                continue;
            }
        }
        *plen = sizeof *peer;
        /* Non-blocking when timed: another acceptor may take the client
         * between poll and accept. */
        int fd = accept4(l->fd, (struct sockaddr *)peer, plen,
                         SOCK_CLOEXEC | (d->forever ? 0 : SOCK_NONBLOCK));
        if (fd >= 0)
            return fd;
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if ((errno == EAGAIN || errno == EWOULDBLOCK) && !d->forever) {
            if (mp__deadline_expired(d))
                return MP_ETIMEDOUT;
            continue;
        }
        return mp__errno();
    }
}

int mp_listener_accept(mp_listener *l, mp_connection **conn)
{
    if (conn != NULL)
        *conn = NULL;
    if (check_listener(l) != 0)
        return MP_EINVAL;
    return mp_listener_accept_timeout(l, option_timeout(l->timeout), conn);
}

int mp_listener_accept_timeout(mp_listener *l, double timeout, mp_connection **conn)
{
    if (conn != NULL)
        *conn = NULL;
    mp__deadline d;
    if (check_listener(l) != 0 || conn == NULL || !listener_open(l) ||
        mp__deadline_init(&d, timeout) != 0)
        return MP_EINVAL;
    struct sockaddr_storage peer;
    socklen_t plen;
    int fd = accept_before(l, &d, &peer, &plen);
    if (fd < 0)
        return fd;
    if (!d.forever) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
            int r = mp__errno();
            close(fd);
            return r;
        }
    }
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
        r = handshake(c, fd, l->authkey, l->authkey_len, true, &d);
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
static int connect_fd(int fd, const sockaddr_any *a, const mp__deadline *d)
{
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0)
        return 0;
    /* A timed connect runs on a non-blocking socket: EINPROGRESS, or
     * EAGAIN for an AF_UNIX listener whose backlog is full. */
    if (errno == EAGAIN && !d->forever) {
        for (;;) {
            if (mp__deadline_expired(d))
                return MP_ETIMEDOUT;
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
            if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0)
                return 0;
            if (errno != EAGAIN)
                break;
        }
    }
    if (errno != EINTR && errno != EINPROGRESS)
        return mp__errno();
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    for (;;) {
        int n = poll(&p, 1, mp__deadline_poll_ms(d));
        if (n > 0)
            break;
        if (n < 0 && errno != EINTR)
            return mp__errno();
        if (n == 0 && mp__deadline_expired(d))
            return MP_ETIMEDOUT;
    }
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
    mp__deadline d;
    if (o == NULL || (o->authkey == NULL && o->authkey_len > 0) || !timeout_ok(o->timeout) ||
        mp__deadline_init(&d, option_timeout(o->timeout)) != 0)
        return mp__fail_null(MP_EINVAL);
    addr_opts ao = {o->family, o->path, o->path_len, o->host, o->port, o->address};
    sockaddr_any a;
    int r = resolve(&ao, false, &a);
    if (r != 0)
        return mp__fail_null(r);
    int fd = socket(a.family, SOCK_STREAM | SOCK_CLOEXEC | (d.forever ? 0 : SOCK_NONBLOCK), 0);
    if (fd < 0)
        return mp__fail_null(mp__errno());
    r = connect_fd(fd, &a, &d);
    if (r == 0 && !d.forever) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0)
            r = mp__errno();
    }
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
        r = handshake(c, fd, o->authkey, o->authkey_len, false, &d);
        if (r != 0) {
            mp_connection_free(c);
            return mp__fail_null(r);
        }
    }
    return c;
}
