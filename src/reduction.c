/*
 * reduction.c: passing file descriptors over a Connection (Python's
 * multiprocessing.reduction: sendfds, recvfds, send_handle, recv_handle).
 *
 * The wire form is Python's on Linux: one byte, the number of fds modulo
 * 256, carried with the fds as SCM_RIGHTS ancillary data, outside the
 * message framing; no acknowledgement.
 *
 * A receiving connection reads ahead into its buffer, and a read that
 * reaches the byte that carries fds takes them with it (the kernel stops
 * the read there).  So every read of a socket connection is a recvmsg with
 * room for fds, and fds that arrive are kept here, per process and per
 * connection, in arrival order, until recv_fds takes them or the
 * connection is closed in this process.
 */
#include "internal/conn.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The fds received and not yet taken, oldest first. */
struct stash {
    const mp_connection *conn;
    uint64_t batch; /* the fds of one read belong together */
    int fd;
};
static struct stash *stash;
static size_t nstash, capstash;
static uint64_t nbatch;
static pthread_mutex_t stash_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t stash_once = PTHREAD_ONCE_INIT;

static void stash_atfork_prepare(void)
{
    pthread_mutex_lock(&stash_lock);
}

static void stash_atfork_parent(void)
{
    pthread_mutex_unlock(&stash_lock);
}

/* The forking thread holds the lock in the child too: unlocked, not
 * initialised again while held (undefined; TSan reports a double lock). */
static void stash_atfork_child(void)
{
    pthread_mutex_unlock(&stash_lock);
}

static void stash_init(void)
{
    pthread_atfork(stash_atfork_prepare, stash_atfork_parent, stash_atfork_child);
}

void mp__conn_stash_fds(const mp_connection *c, const int *fds, size_t n)
{
    pthread_once(&stash_once, stash_init);
    pthread_mutex_lock(&stash_lock);
    uint64_t b = ++nbatch;
    for (size_t i = 0; i < n; i++) {
        if (nstash == capstash) {
            size_t cap = capstash ? capstash * 2 : 16;
            struct stash *s = realloc(stash, cap * sizeof *s);
            if (s == NULL) {
                /* Out of memory: the fd is lost, as the kernel drops fds
                 * that do not fit; recv_fds then reports -EPROTO. */
                close(fds[i]);
                continue;
            }
            stash = s;
            capstash = cap;
        }
        stash[nstash++] = (struct stash){c, b, fds[i]};
    }
    pthread_mutex_unlock(&stash_lock);
}

/* Take the oldest batch of c's fds (at most n); returns how many. */
static size_t stash_take(const mp_connection *c, int *out, size_t n)
{
    pthread_once(&stash_once, stash_init);
    pthread_mutex_lock(&stash_lock);
    size_t got = 0, keep = 0;
    uint64_t b = 0;
    for (size_t i = 0; i < nstash; i++) {
        if (stash[i].conn == c && b == 0)
            b = stash[i].batch;
        if (stash[i].conn == c && stash[i].batch == b && got < n)
            out[got++] = stash[i].fd;
        else
            stash[keep++] = stash[i];
    }
    nstash = keep;
    pthread_mutex_unlock(&stash_lock);
    return got;
}

void mp__conn_stash_drop(const mp_connection *c)
{
    int fd;
    while (stash_take(c, &fd, 1) == 1)
        close(fd);
}

/* The connection's socket, if it is an AF_UNIX one: 0, or a negative code. */
static int unix_socket_of(mp_connection *c, bool sending, int *fd)
{
    int f = mp_connection_fileno(c);
    if (f < 0)
        return f;
    if (sending ? mp_connection_writable(c) != 1 : mp_connection_readable(c) != 1)
        return MP_EINVAL;
    int domain = 0;
    socklen_t len = sizeof domain;
    if (getsockopt(f, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0)
        return errno == ENOTSOCK ? -ENOTSOCK : mp__errno();
    if (domain != AF_UNIX)
        return -EOPNOTSUPP;
    *fd = f;
    return 0;
}

int mp_connection_send_fds(mp_connection *c, const int *fds, size_t n)
{
    if (fds == NULL || n == 0 || n > MP_SCM_MAX_FD)
        return MP_EINVAL;
    int sock;
    int r = unix_socket_of(c, true, &sock);
    if (r != 0)
        return r;
    for (size_t i = 0; i < n; i++)
        if (fds[i] < 0 || fcntl(fds[i], F_GETFD) < 0)
            return -EBADF;
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(MP_SCM_MAX_FD * sizeof(int))];
    } u;
    memset(&u, 0, sizeof u);
    unsigned char count = (unsigned char)(n % 256);
    struct iovec iov = {&count, 1};
    struct msghdr m = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = u.buf,
                       .msg_controllen = CMSG_SPACE(n * sizeof(int))};
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(n * sizeof(int));
    memcpy(CMSG_DATA(h), fds, n * sizeof(int));
    return mp__conn_sendmsg(c, &m);
}

int mp_connection_recv_fds(mp_connection *c, int *fds, size_t n)
{
    if (fds == NULL || n == 0 || n > MP_SCM_MAX_FD)
        return MP_EINVAL;
    int sock;
    int r = unix_socket_of(c, false, &sock);
    if (r != 0)
        return r;
    unsigned char count;
    r = mp__conn_read_raw(c, &count, 1);
    if (r != 0)
        return r;
    int got[MP_SCM_MAX_FD];
    size_t k = stash_take(c, got, MP_SCM_MAX_FD);
    if (k == 0 || k % 256 != count || k > n) {
        /* Python's RuntimeError('Invalid data received'). */
        for (size_t i = 0; i < k; i++)
            close(got[i]);
        return k > n && k % 256 == count ? -EMSGSIZE : -EPROTO;
    }
    memcpy(fds, got, k * sizeof(int));
    return (int)k;
}

int mp_connection_send_handle(mp_connection *c, int fd)
{
    return mp_connection_send_fds(c, &fd, 1);
}

int mp_connection_recv_handle(mp_connection *c, int *fd)
{
    if (fd == NULL)
        return MP_EINVAL;
    *fd = -1;
    int r = mp_connection_recv_fds(c, fd, 1);
    return r < 0 ? r : 0;
}
