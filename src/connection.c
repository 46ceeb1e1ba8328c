/*
 * connection.c: Pipe and Connection, CPython's framing, and wait().
 *
 * The framing is multiprocessing.connection's: a 4-byte big-endian signed
 * length, or -1 and an 8-byte big-endian length for messages longer than
 * 0x7fffffff bytes, then the bytes.  Listener and Client live in
 * listener.c, the authkey challenge in auth.c.
 */
#include "internal/conn.h"
#include "internal/linux.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* The first allocation of an allocating receive; it then doubles as the
 * bytes arrive, so a lying header cannot make us allocate ahead of data. */
#define RECV_FIRST_CHUNK ((size_t)1 << 20)

/* ---- framing ------------------------------------------------------------ */

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

size_t mp__frame_encode(unsigned char out[MP__HEADER_LARGE], uint64_t n)
{
    if (n <= MP__SMALL_MAX) {
        put_be32(out, (uint32_t)n);
        return MP__HEADER_SMALL;
    }
    put_be32(out, 0xffffffffu);
    put_be32(out + 4, (uint32_t)(n >> 32));
    put_be32(out + 8, (uint32_t)n);
    return MP__HEADER_LARGE;
}

int mp__frame_decode(const unsigned char in[MP__HEADER_SMALL], uint64_t *n)
{
    int32_t v = (int32_t)get_be32(in);
    if (v == -1)
        return 1;
    if (v < 0)
        return -EPROTO;
    *n = (uint64_t)v;
    return 0;
}

uint64_t mp__frame_decode_large(const unsigned char in[8])
{
    return (uint64_t)get_be32(in) << 32 | get_be32(in + 4);
}

/* ---- objects -------------------------------------------------------------- */

static bool held_here(const mp_connection *c)
{
    return mp__fd_owned(c->fd, c);
}

/* 0 if c is a live connection held by this process, MP_EINVAL otherwise. */
static int check_open(const mp_connection *c)
{
    if (mp__obj_check(c, MP__CONN_MAGIC) != 0 || !held_here(c))
        return MP_EINVAL;
    return 0;
}

mp_connection *mp__connection_wrap(int fd, bool readable, bool writable, bool is_socket,
                                   int *err)
{
    mp_connection *c = mp__obj_new(sizeof *c, MP__CONN_MAGIC);
    if (c == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    c->fd = fd;
    c->readable = readable;
    c->writable = writable;
    c->is_socket = is_socket;
    int r = mp__fd_register(fd, c);
    if (r != 0) {
        mp__obj_free(c);
        *err = r;
        return NULL;
    }
    return c;
}

int mp_pipe(bool duplex, mp_connection **c1, mp_connection **c2)
{
    if (c1 != NULL)
        *c1 = NULL;
    if (c2 != NULL)
        *c2 = NULL;
    if (c1 == NULL || c2 == NULL)
        return MP_EINVAL;
    int fds[2];
    int r = duplex ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds)
                   : pipe2(fds, O_CLOEXEC);
    if (r != 0)
        return mp__errno();
    int err = 0;
    mp_connection *a = mp__connection_wrap(fds[0], true, duplex, duplex, &err);
    mp_connection *b = a == NULL ? NULL
                                 : mp__connection_wrap(fds[1], duplex, true, duplex, &err);
    if (b == NULL) {
        if (a != NULL) {
            mp__fd_unregister(fds[0]);
            mp__obj_free(a);
        }
        close(fds[0]);
        close(fds[1]);
        return err;
    }
    *c1 = a;
    *c2 = b;
    return 0;
}

mp_connection *mp_connection_from_fd(int fd, bool readable, bool writable)
{
    if (fd < 0 || (!readable && !writable))
        return mp__fail_null(MP_EINVAL);
    struct stat st;
    if (fstat(fd, &st) != 0)
        return mp__fail_null(mp__errno());
    int err = 0;
    mp_connection *c = mp__connection_wrap(fd, readable, writable, S_ISSOCK(st.st_mode), &err);
    return c != NULL ? c : mp__fail_null(err);
}

int mp_connection_close(mp_connection *c)
{
    if (mp__obj_check(c, MP__CONN_MAGIC) != 0)
        return MP_EINVAL;
    if (held_here(c)) {
        mp__fd_unregister(c->fd);
        close(c->fd);
        if (c->is_socket)
            mp__conn_stash_drop(c);
    }
    return 0;
}

void mp_connection_free(mp_connection *c)
{
    if (mp_connection_close(c) == 0)
        mp__obj_free(c);
}

int mp_connection_fileno(const mp_connection *c)
{
    int r = check_open(c);
    return r != 0 ? r : c->fd;
}

int mp_connection_closed(const mp_connection *c)
{
    if (mp__obj_check(c, MP__CONN_MAGIC) != 0)
        return MP_EINVAL;
    return !held_here(c);
}

int mp_connection_readable(const mp_connection *c)
{
    if (mp__obj_check(c, MP__CONN_MAGIC) != 0)
        return MP_EINVAL;
    return c->readable;
}

int mp_connection_writable(const mp_connection *c)
{
    if (mp__obj_check(c, MP__CONN_MAGIC) != 0)
        return MP_EINVAL;
    return c->writable;
}

/* ---- low-level I/O --------------------------------------------------------- */

static __thread const mp__deadline *io_deadline;

void mp__conn_set_io_deadline(const mp__deadline *d)
{
    io_deadline = d;
}

/* Wait until fd is ready for events (after EAGAIN on an fd the user made
 * non-blocking), against the thread's I/O deadline if one is set. */
static int wait_fd(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    for (;;) {
        const mp__deadline *d = io_deadline;
        int n = poll(&p, 1, d != NULL ? mp__deadline_poll_ms(d) : -1);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return mp__errno();
        if (n == 0 && d != NULL && mp__deadline_expired(d))
            return MP_ETIMEDOUT;
    }
}

/*
 * pwritev2's RWF_NOSIGNAL (Linux 6.14): a write to a pipe whose reader is
 * gone fails with EPIPE without raising SIGPIPE, as MSG_NOSIGNAL does for
 * sockets.  Older kernels reject the flag with EOPNOTSUPP before writing
 * anything, and then the signal mask is used instead.
 */
#ifndef RWF_NOSIGNAL
#define RWF_NOSIGNAL 0x00000100
#endif
_Atomic int mp__conn_rwf_nosignal = 1; /* 0 once the kernel refused it */

/* Write every byte of iov[0..cnt), resuming after EINTR and partial writes.
 * nosignal: write a pipe with RWF_NOSIGNAL. */
static int write_all(const mp_connection *c, struct iovec *iov, int cnt, bool nosignal)
{
    while (cnt > 0) {
        ssize_t n;
        if (c->is_socket) {
            struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
            n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        } else if (nosignal) {
            n = mp__pwritev2_cur(c->fd, iov, cnt, RWF_NOSIGNAL);
        } else {
            n = writev(c->fd, iov, cnt);
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                int r = wait_fd(c->fd, POLLOUT);
                if (r != 0)
                    return r;
                continue;
            }
            return mp__errno();
        }
        size_t done = (size_t)n;
        while (cnt > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return 0;
}

/*
 * Writes to a pipe whose reader is gone raise SIGPIPE, and pipes have no
 * MSG_NOSIGNAL.  SIGPIPE is blocked in this thread around the write; a
 * SIGPIPE that the write raised is taken back with sigtimedwait (the kernel
 * sends it to the writing thread).  If the caller already had SIGPIPE
 * blocked and one was pending before the write, the two merge into one and
 * the pending one is left for the caller.
 */
static int write_all_nosigpipe(const mp_connection *c, struct iovec *iov, int cnt)
{
    if (atomic_load_explicit(&mp__conn_rwf_nosignal, memory_order_relaxed)) {
        int r = write_all(c, iov, cnt, true);
        if (r != -EOPNOTSUPP && r != -ENOSYS) /* ENOSYS: no pwritev2 (4.6) */
            return r;
        atomic_store_explicit(&mp__conn_rwf_nosignal, 0, memory_order_relaxed);
    }
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    bool was_blocked = sigismember(&old, SIGPIPE);
    bool was_pending = false;
    if (was_blocked) {
        sigset_t pending;
        sigpending(&pending);
        was_pending = sigismember(&pending, SIGPIPE);
    }
    int r = write_all(c, iov, cnt, false);
    if (r == -EPIPE && !was_pending) {
        const struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    if (!was_blocked)
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r;
}

/*
 * One read of a socket: a recvmsg with room for fds, which are kept for
 * recv_fds (reduction.c) rather than lost when the read-ahead reaches a
 * byte that carries them.
 */
static ssize_t recv_keep_fds(const mp_connection *c, void *p, size_t n)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(MP_SCM_MAX_FD * sizeof(int))];
    } u;
    struct iovec iov = {p, n};
    struct msghdr m = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = u.buf,
                       .msg_controllen = sizeof u.buf};
    ssize_t r = recvmsg(c->fd, &m, MSG_CMSG_CLOEXEC);
    if (r < 0 || m.msg_controllen == 0)
        return r;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h != NULL; h = CMSG_NXTHDR(&m, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
            continue;
        int fds[MP_SCM_MAX_FD];
        size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        if (k > MP_SCM_MAX_FD)
            k = MP_SCM_MAX_FD;
        memcpy(fds, CMSG_DATA(h), k * sizeof(int));
        mp__conn_stash_fds(c, fds, k);
    }
    return r;
}

/* One read(2) into p, resumed after EINTR: bytes read, 0 at end of stream,
 * or a negative code. */
static ssize_t read_some(const mp_connection *c, void *p, size_t n)
{
    int fd = c->fd;
    for (;;) {
        ssize_t r = c->is_socket ? recv_keep_fds(c, p, n) : read(fd, p, n);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int w = wait_fd(fd, POLLIN);
            if (w != 0)
                return w;
            continue;
        }
        return mp__errno();
    }
}

static size_t rx_avail(const mp_connection *c)
{
    return c->rx_end - c->rx_start;
}

/*
 * Read what the stream has (at least one byte, blocking) into the read-ahead
 * buffer.  Returns the bytes added, 0 at end of stream, or a negative code.
 */
static ssize_t rx_fill(mp_connection *c)
{
    if (c->rx_start == c->rx_end) {
        c->rx_start = c->rx_end = 0;
    } else if (c->rx_end == sizeof c->rx) {
        memmove(c->rx, c->rx + c->rx_start, rx_avail(c));
        c->rx_end -= c->rx_start;
        c->rx_start = 0;
    }
    ssize_t r = read_some(c, c->rx + c->rx_end, sizeof c->rx - c->rx_end);
    if (r > 0)
        c->rx_end += (uint32_t)r;
    return r;
}

/*
 * Read exactly n bytes of the stream into dst: first what was read ahead,
 * then large remainders straight from the fd (never past them), small ones
 * through the read-ahead buffer (one read(2) usually brings a whole small
 * message, header and body).  Returns 0 when all arrived, 1 at end of stream
 * with *got < n bytes copied, or a negative code.
 */
static int rx_read(mp_connection *c, void *dst, size_t n, size_t *got)
{
    char *d = dst;
    size_t have = 0;
    for (;;) {
        size_t take = rx_avail(c) < n - have ? rx_avail(c) : n - have;
        memcpy(d + have, c->rx + c->rx_start, take);
        c->rx_start += (uint32_t)take;
        have += take;
        if (have == n)
            break;
        ssize_t r;
        if (n - have >= sizeof c->rx / 2) {
            r = read_some(c, d + have, n - have);
            if (r > 0)
                have += (size_t)r;
            if (have == n)
                break;
        } else {
            r = rx_fill(c);
        }
        if (r == 0) {
            *got = have;
            return 1;
        }
        if (r < 0)
            return (int)r;
    }
    *got = have;
    return 0;
}

int mp__conn_read_raw(mp_connection *c, void *buf, size_t n)
{
    size_t got = 0;
    int r = rx_read(c, buf, n, &got);
    if (r == 1)
        return got == 0 ? MP_EEOF : -EPROTO;
    return r;
}

int mp__conn_sendmsg(mp_connection *c, struct msghdr *m)
{
    for (;;) {
        ssize_t n = sendmsg(c->fd, m, MSG_NOSIGNAL);
        if (n >= 0)
            return 0; /* one byte: whole or nothing */
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int r = wait_fd(c->fd, POLLOUT);
            if (r != 0)
                return r;
            continue;
        }
        return mp__errno();
    }
}

/* The stream cannot be trusted any more: stop reading it. */
static int broken_stream(mp_connection *c, int code)
{
    c->readable = false;
    c->pending = false;
    return code;
}

/*
 * Read a message's length header (or take the pending one).  Returns 0 with
 * the length in *len, MP_EEOF at a clean end of stream, -EPROTO for a
 * truncated or invalid header.
 */
static int read_header(mp_connection *c, uint64_t *len)
{
    if (c->pending) {
        *len = c->pending_len;
        return 0;
    }
    unsigned char h[MP__HEADER_LARGE];
    size_t got = 0;
    int r = rx_read(c, h, MP__HEADER_SMALL, &got);
    if (r == 1)
        return got == 0 ? MP_EEOF : broken_stream(c, -EPROTO);
    if (r < 0)
        return r;
    r = mp__frame_decode(h, len);
    if (r < 0)
        return broken_stream(c, r);
    if (r == 1) {
        r = rx_read(c, h + MP__HEADER_SMALL, 8, &got);
        if (r == 1)
            return broken_stream(c, -EPROTO);
        if (r < 0)
            return r;
        *len = mp__frame_decode_large(h + MP__HEADER_SMALL);
    }
    return 0;
}

/* Leave the message whose header was read for the next receive. */
static void keep_pending(mp_connection *c, uint64_t len)
{
    c->pending_len = len;
    c->pending = true;
}

/* Read and drop n bytes of a message body. */
static int drain(mp_connection *c, uint64_t n)
{
    char sink[16384];
    while (n > 0) {
        size_t chunk = n < sizeof sink ? (size_t)n : sizeof sink;
        size_t got;
        int r = rx_read(c, sink, chunk, &got);
        if (r == 1)
            return -EPROTO;
        if (r < 0)
            return r;
        n -= chunk;
    }
    return 0;
}

/* ---- send and receive --------------------------------------------------------- */

int mp_connection_send_bytes(mp_connection *c, const void *buf, size_t len, size_t offset,
                             size_t size)
{
    int r = check_open(c);
    if (r != 0)
        return r;
    if (!c->writable || (buf == NULL && len > 0) || offset > len)
        return MP_EINVAL;
    if (size == MP_ALL_BYTES)
        size = len - offset;
    else if (size > len - offset)
        return MP_EINVAL;
    /* Small messages go out in one piece from a stack copy: one system
     * call, and (up to PIPE_BUF) never interleaved with another writer's. */
    unsigned char small[4096];
    struct iovec iov[2];
    int cnt;
    size_t hlen = mp__frame_encode(small, size);
    if (size <= sizeof small - hlen) {
        if (size > 0)
            memcpy(small + hlen, (const char *)buf + offset, size);
        iov[0] = (struct iovec){.iov_base = small, .iov_len = hlen + size};
        cnt = 1;
    } else {
        iov[0] = (struct iovec){.iov_base = small, .iov_len = hlen};
        iov[1] = (struct iovec){.iov_base = (char *)buf + offset, .iov_len = size};
        cnt = 2;
    }
    return c->is_socket ? write_all(c, iov, cnt, false) : write_all_nosigpipe(c, iov, cnt);
}

int mp_connection_send(mp_connection *c, const void *buf, size_t len)
{
    return mp_connection_send_bytes(c, buf, len, 0, len);
}

/* Check a receiving call's connection: open here and readable. */
static int check_readable(const mp_connection *c)
{
    int r = check_open(c);
    if (r != 0)
        return r;
    return c->readable ? 0 : MP_EINVAL;
}

/*
 * Receive a body of n bytes into a buffer that grows as the bytes arrive.
 * On success *out is the malloc'd buffer.
 */
static int recv_body_alloc(mp_connection *c, uint64_t n, void **out)
{
    size_t cap = n < RECV_FIRST_CHUNK ? (size_t)n : RECV_FIRST_CHUNK;
    char *p = malloc(cap > 0 ? cap : 1);
    if (p == NULL)
        return drain(c, n) == 0 ? -ENOMEM : broken_stream(c, -ENOMEM);
    size_t have = 0;
    while (have < n) {
        if (have == cap) {
            size_t grow = cap > (size_t)n / 2 ? (size_t)n : cap * 2;
            char *q = realloc(p, grow);
            if (q == NULL) {
                free(p);
                return drain(c, n - have) == 0 ? -ENOMEM : broken_stream(c, -ENOMEM);
            }
            p = q;
            cap = grow;
        }
        size_t got;
        int r = rx_read(c, p + have, cap - have, &got);
        if (r != 0) {
            free(p);
            return r == 1 ? broken_stream(c, -EPROTO) : broken_stream(c, r);
        }
        have = cap;
    }
    *out = p;
    return 0;
}
int mp_connection_recv_bytes(mp_connection *c, void **buf, size_t *len, size_t maxlength)
{
    if (buf != NULL)
        *buf = NULL;
    int r = check_readable(c);
    if (r != 0)
        return r;
    if (buf == NULL || len == NULL)
        return MP_EINVAL;
    uint64_t n;
    r = read_header(c, &n);
    if (r != 0)
        return r;
    if (n > maxlength || n > (uint64_t)SSIZE_MAX) {
        keep_pending(c, n);
        *len = n > SIZE_MAX ? SIZE_MAX : (size_t)n;
        return -EMSGSIZE;
    }
    c->pending = false;
    r = recv_body_alloc(c, n, buf);
    if (r == 0)
        *len = (size_t)n;
    return r;
}

int mp_connection_recv(mp_connection *c, void **buf, size_t *len)
{
    return mp_connection_recv_bytes(c, buf, len, MP_NO_MAXLENGTH);
}

int mp_connection_recv_bytes_into(mp_connection *c, void *buf, size_t buflen, size_t offset,
                                  size_t *nread)
{
    int r = check_readable(c);
    if (r != 0)
        return r;
    if ((buf == NULL && buflen > 0) || offset > buflen)
        return MP_EINVAL;
    uint64_t n;
    r = read_header(c, &n);
    if (r != 0)
        return r;
    if (n > buflen - offset) {
        keep_pending(c, n);
        if (nread != NULL)
            *nread = n > SIZE_MAX ? SIZE_MAX : (size_t)n;
        return MP_ETOOSHORT;
    }
    c->pending = false;
    size_t got;
    r = rx_read(c, (char *)buf + offset, (size_t)n, &got);
    if (r != 0)
        return r == 1 ? broken_stream(c, -EPROTO) : broken_stream(c, r);
    if (nread != NULL)
        *nread = (size_t)n;
    return 0;
}

/* ---- poll and wait ------------------------------------------------------------ */

/*
 * poll(2) fds until one is ready or d expires, resuming after EINTR against
 * the same deadline.  Returns the number ready (0 at the deadline).
 */
static int poll_deadline(struct pollfd *fds, size_t n, const mp__deadline *d)
{
    for (;;) {
        int r = poll(fds, n, mp__deadline_poll_ms(d));
        if (r >= 0)
            return r;
        if (errno != EINTR)
            return mp__errno();
        if (!d->forever && mp__deadline_expired(d))
            return 0;
    }
}

int mp_connection_poll(mp_connection *c, double timeout)
{
    int r = check_readable(c);
    if (r != 0)
        return r;
    mp__deadline d;
    if (mp__deadline_init(&d, timeout) != 0)
        return MP_EINVAL;
    if (c->pending || rx_avail(c) > 0)
        return 1;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    r = poll_deadline(&p, 1, &d);
    if (r < 0)
        return r;
    if (r > 0 && (p.revents & POLLNVAL))
        return -EBADF;
    return r > 0;
}

/* Fill one pollfd for a waitable; *now is set when it is ready already. */
static int wait_prepare(const mp_waitable *w, struct pollfd *p, bool *now)
{
    *now = false;
    p->events = POLLIN;
    p->revents = 0;
    switch (w->kind) {
    case MP_WAIT_CONNECTION: {
        int r = check_readable(w->conn);
        if (r != 0)
            return r;
        p->fd = w->conn->fd;
        *now = w->conn->pending || rx_avail(w->conn) > 0;
        return 0;
    }
    case MP_WAIT_FD:
        if (w->fd < 0)
            return MP_EINVAL;
        p->fd = w->fd;
        return 0;
    default:
        return MP_EINVAL;
    }
}

int mp_connection_wait(const mp_waitable *objects, size_t n, double timeout, bool *ready)
{
    mp__deadline d;
    if (mp__deadline_init(&d, timeout) != 0 || (objects == NULL && n > 0) ||
        n > (size_t)INT32_MAX)
        return MP_EINVAL;
    struct pollfd fds_small[32];
    bool now_small[32];
    struct pollfd *fds = fds_small;
    bool *now = now_small;
    if (n > 32) {
        fds = malloc(n * (sizeof *fds + sizeof *now));
        if (fds == NULL)
            return -ENOMEM;
        now = (bool *)(fds + n);
    }
    int r = 0;
    bool any_now = false;
    for (size_t i = 0; i < n && r == 0; i++) {
        r = wait_prepare(&objects[i], &fds[i], &now[i]);
        any_now |= now[i];
    }
    /* A connection with a pending message is ready already: then only look
     * at the others without waiting. */
    if (r == 0 && any_now)
        mp__deadline_init(&d, 0);
    if (r == 0)
        r = poll_deadline(fds, n, &d);
    int count = 0;
    for (size_t i = 0; r >= 0 && i < n; i++) {
        if (fds[i].revents & POLLNVAL) {
            r = -EBADF;
            break;
        }
        bool is_ready = now[i] || fds[i].revents != 0;
        if (ready != NULL)
            ready[i] = is_ready;
        count += is_ready;
    }
    if (fds != fds_small)
        free(fds);
    return r < 0 ? r : count;
}
