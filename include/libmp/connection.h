/*
 * libmp/connection.h: connections, as multiprocessing.connection.
 *
 *   Python                                   C
 *   a, b = Pipe()                            mp_pipe(true, &a, &b)
 *   r, w = Pipe(duplex=False)                mp_pipe(false, &r, &w)
 *   Connection(fd, readable, writable)       mp_connection_from_fd(fd, readable, writable)
 *   c.send_bytes(buf, offset, size)          mp_connection_send_bytes(c, buf, len, offset, size)
 *   c.send(obj)                              mp_connection_send(c, buf, len)  (bytes: the
 *                                              caller serialises; there is no pickle)
 *   c.recv_bytes(maxlength)                  mp_connection_recv_bytes(c, &buf, &len, maxlength)
 *   c.recv()                                 mp_connection_recv(c, &buf, &len)
 *   c.recv_bytes_into(buf, offset)           mp_connection_recv_bytes_into(c, buf, buflen,
 *                                                                         offset, &n)
 *   c.poll(timeout)                          mp_connection_poll(c, timeout)
 *   c.fileno()                               mp_connection_fileno(c)
 *   c.close()                                mp_connection_close(c)  (mp_connection_free
 *                                              releases the object)
 *   c.closed / c.readable / c.writable       mp_connection_closed / _readable / _writable
 *   wait(objects, timeout)                   mp_connection_wait(items, n, timeout, ready)
 *   Listener(address, family, backlog,       mp_listener_new(.path = ..., .host = ...,
 *            authkey)                            .port = ..., .backlog = ..., .authkey = ...)
 *   l.accept()                               mp_listener_accept(l, &c)
 *   l.close()                                mp_listener_close(l)
 *   l.address / l.last_accepted              mp_listener_address / mp_listener_last_accepted
 *   Client(address, family, authkey)         mp_client(.path = ..., .authkey = ...)
 *   deliver_challenge / answer_challenge     mp_deliver_challenge / mp_answer_challenge
 *   reduction.send_handle(c, fd, pid)        mp_connection_send_handle(c, fd)
 *   reduction.recv_handle(c)                 mp_connection_recv_handle(c, &fd)
 *   reduction.sendfds(s, fds) / recvfds(s, n) mp_connection_send_fds / _recv_fds
 *   EOFError                                 MP_EEOF
 *   BufferTooShort                           MP_ETOOSHORT
 *   AuthenticationError                      MP_EAUTH
 *   OSError("bad message length")            -EMSGSIZE
 *   OSError("got end of file during message") -EPROTO
 *
 * The wire format is CPython's: every message is a 4-byte big-endian signed
 * length followed by the bytes; a message longer than 0x7fffffff bytes is
 * announced by the length -1 followed by an 8-byte big-endian length.  The
 * authkey challenge is CPython 3.12's (HMAC-SHA256 with "{sha256}"
 * prefixes), and the HMAC-MD5 form of CPython 3.11 and earlier is spoken
 * and accepted too, so a libmp program and a Python program can talk over
 * a Listener and a Client.  docs/connection.md lists the departures from
 * Python.
 *
 * A connection object lives in the shared arena: the pointer is valid in
 * every process of the family.  Its file descriptor belongs to each process
 * separately, as in Python: a child started after the pipe was made has
 * the fd too (fork inherits it, spawn and forkserver pass it at the same
 * number), and closing a connection in one process closes it there only.
 * A connection that the calling process does not hold (closed here, or
 * made after this process was started) is "closed" for it.
 *
 * As in Python, two processes or threads must not use the same end for
 * reading (or for writing) at the same time: their messages would mix.
 *
 * C++ has no compound literals (before C++20, see common.h): fill a
 * zero-initialised struct and call the _opts function, e.g.
 *     mp_listener_options o = {};
 *     o.path = "/tmp/sock";
 *     ... = mp_listener_new_opts(&o);
 */
#ifndef LIBMP_CONNECTION_H
#define LIBMP_CONNECTION_H

#include <stdbool.h>

#include "common.h"

MP_BEGIN_DECLS

typedef struct mp_connection mp_connection;
typedef struct mp_listener mp_listener;

/* mp_connection_send_bytes: send from offset to the end (Python's size=None). */
#define MP_ALL_BYTES SIZE_MAX

/* mp_connection_recv_bytes: no maximum length (Python's maxlength=None). */
#define MP_NO_MAXLENGTH SIZE_MAX

/*
 * mp_pipe: a pair of connected connections (Python's Pipe(duplex)).
 *
 * duplex  true: both ends can send and receive (a Unix socketpair);
 *         false: *c1 can only receive and *c2 can only send (a pipe).
 * c1, c2  receive the two ends, owned by the caller (mp_connection_free).
 *
 * Returns 0; MP_EINVAL if c1 or c2 is NULL; -EMFILE, -ENFILE or -ENOMEM.
 * On failure *c1 and *c2 are set to NULL when they are not NULL.  The fds
 * are close-on-exec (a spawned libmp child receives them anyway).
 */
MP_EXTERN int mp_pipe(bool duplex, mp_connection **c1, mp_connection **c2);

/*
 * mp_connection_from_fd: wrap an open fd (Python's Connection(handle,
 * readable, writable)), for example a socket or pipe made by other means.
 *
 * fd        a pipe end, socket or other stream fd; owned by the connection on
 *           success (mp_connection_close closes it), untouched on failure.
 * readable  the connection may receive; writable: it may send.
 *
 * Returns the connection, or NULL with mp_last_error(): MP_EINVAL if fd is
 * negative or neither readable nor writable; -EBADF if fd is not open;
 * -ENOMEM.
 */
MP_EXTERN mp_connection *mp_connection_from_fd(int fd, bool readable, bool writable);

/*
 * mp_connection_send_bytes: send size bytes of buf starting at offset as one
 * message (Python's send_bytes(buf, offset, size)).
 *
 * buf     the bytes; may be NULL only when len is 0.  Copied to the kernel
 *         before the call returns.
 * len     the size of buf in bytes.
 * offset  where the message starts in buf (offset <= len).
 * size    its size (offset + size <= len), or MP_ALL_BYTES for len - offset.
 *
 * Blocks until the whole message is written.  Interrupted writes (EINTR) and
 * partial writes are resumed; the message is never cut short.  Writing to a
 * peer that has closed its end returns -EPIPE (or -ECONNRESET on a socket)
 * and never raises SIGPIPE: sockets are written with MSG_NOSIGNAL, pipes
 * with SIGPIPE blocked in the calling thread for the duration of the write
 * (a SIGPIPE this write causes is consumed; one already pending is kept).
 *
 * Returns 0; MP_EINVAL if c is invalid, closed in this process, or
 * receive-only, if buf is NULL with len > 0, or if offset or size are out
 * of the buffer's bounds; -EPIPE, -ECONNRESET or another -errno.
 */
MP_EXTERN int mp_connection_send_bytes(mp_connection *c, const void *buf, size_t len,
                                       size_t offset, size_t size);

/* mp_connection_send: mp_connection_send_bytes(c, buf, len, 0, len). */
MP_EXTERN int mp_connection_send(mp_connection *c, const void *buf, size_t len);

/*
 * mp_connection_recv_bytes: receive one message into a new buffer (Python's
 * recv_bytes(maxlength)).  Blocks until a whole message has arrived.
 *
 * buf        receives the message, a malloc'd buffer owned by the caller
 *            (free it with free); never NULL on success, even for an empty
 *            message.  Set to NULL on failure.
 * len        receives its length.  On -EMSGSIZE it receives the length of
 *            the message that did not fit.
 * maxlength  the longest message accepted, or MP_NO_MAXLENGTH.
 *
 * A message longer than maxlength is not read: -EMSGSIZE is returned and the
 * message stays at the head of the connection, so a later call with a larger
 * maxlength (or mp_connection_recv_bytes_into) gets it.  (Python instead
 * makes the connection unreadable; see docs/connection.md.)  Without a
 * maxlength there is no limit but SSIZE_MAX, as in Python; memory is never
 * allocated ahead of the bytes that have actually arrived (at most twice
 * what has arrived, and at least 1 MiB), so a peer that announces a huge
 * message and sends less costs nothing.  If the memory for a message that
 * does arrive runs out, the rest of it is read and dropped and -ENOMEM is
 * returned, so the next message is intact.
 *
 * Returns 0; MP_EEOF when the peer has closed its end and no message is
 * left (Python's EOFError); -EMSGSIZE as above; -EPROTO if the peer closed
 * in the middle of a message or sent a length header that is not valid (a
 * negative length other than -1): the stream cannot be trusted after that,
 * so the connection stops being readable (later receives return MP_EINVAL);
 * MP_EINVAL if c is invalid, closed in this process or send-only, or buf or
 * len is NULL; -ENOMEM; another -errno (-ECONNRESET) from the system.
 */
MP_EXTERN int mp_connection_recv_bytes(mp_connection *c, void **buf, size_t *len,
                                       size_t maxlength);

/* mp_connection_recv: mp_connection_recv_bytes(c, buf, len, MP_NO_MAXLENGTH). */
MP_EXTERN int mp_connection_recv(mp_connection *c, void **buf, size_t *len);

/*
 * mp_connection_recv_bytes_into: receive one message into the caller's buffer
 * at offset (Python's recv_bytes_into(buf, offset)).  Blocks until a whole
 * message has arrived.
 *
 * buf      where to write; may be NULL only when buflen is 0 (then only an
 *          empty message fits).
 * buflen   the size of buf in bytes.
 * offset   where the message is written (offset <= buflen).
 * nread    receives the message length (may be NULL).
 *
 * Returns 0 with the message in buf[offset .. offset + *nread); MP_ETOOSHORT
 * when the message is longer than buflen - offset (Python's BufferTooShort):
 * *nread receives the size needed, nothing is written to buf, and the
 * message stays at the head of the connection for a retry with a larger
 * buffer (Python hands the bytes over in the exception instead); MP_EEOF,
 * -EPROTO and other codes as for mp_connection_recv_bytes; MP_EINVAL for an
 * invalid, closed or send-only c, buf NULL with buflen > 0, or offset >
 * buflen.
 */
MP_EXTERN int mp_connection_recv_bytes_into(mp_connection *c, void *buf, size_t buflen,
                                            size_t offset, size_t *nread);

/*
 * mp_connection_poll: whether there is anything to receive (Python's
 * poll(timeout)); waits up to timeout seconds for it.  The default of
 * Python, poll(), is mp_connection_poll(c, 0).
 *
 * Returns 1 when a message (or the end of the stream: the next receive then
 * returns MP_EEOF) can be received without blocking for long, 0 when nothing
 * arrived in time, MP_EINVAL for an invalid, closed or send-only c or a bad
 * timeout, -EBADF if the fd was closed behind the connection's back.  A signal interrupting the wait is retried against the same
 * deadline.
 */
MP_EXTERN int mp_connection_poll(mp_connection *c, double timeout);

/*
 * mp_connection_fileno: the fd (Python's fileno()), owned by the connection.
 * Returns MP_EINVAL if c is invalid or closed in this process.  Use it with
 * poll(2) or epoll as Python code uses it with selectors, with one rule: a
 * receive reads ahead (up to 4 KiB) into the connection, so after each
 * receive check mp_connection_poll(c, 0) before sleeping on the fd again
 * (mp_connection_poll and mp_connection_wait know about the buffer).
 * Reading or writing the fd directly bypasses the framing.
 */
MP_EXTERN int mp_connection_fileno(const mp_connection *c);

/*
 * mp_connection_close: close the connection in the calling process only
 * (Python's close()).  Other processes that hold it keep their fd.  Closing
 * a closed connection is a no-op.  Returns 0, or MP_EINVAL if c is invalid.
 */
MP_EXTERN int mp_connection_close(mp_connection *c);

/*
 * mp_connection_free: close the connection in the calling process and
 * release the object.  Other processes must be done with it (they may have
 * closed it or not).  NULL is a no-op.
 */
MP_EXTERN void mp_connection_free(mp_connection *c);

/*
 * mp_connection_closed: 1 if c is closed in the calling process, 0 if open
 * here.  mp_connection_readable / mp_connection_writable: 1 or 0 (Python's
 * readable / writable; a connection stops being readable after -EPROTO).
 * All three return MP_EINVAL for an invalid object.
 */
MP_EXTERN int mp_connection_closed(const mp_connection *c);
MP_EXTERN int mp_connection_readable(const mp_connection *c);
MP_EXTERN int mp_connection_writable(const mp_connection *c);

/* ---- wait ------------------------------------------------------------- */

typedef enum mp_waitable_kind {
    MP_WAIT_CONNECTION = 1, /* .conn: ready when there is something to receive */
    MP_WAIT_FD = 2          /* .fd: ready when readable (a process sentinel
                               from mp_process_sentinel, a socket, a pipe) */
} mp_waitable_kind;

/* One object for mp_connection_wait. */
typedef struct mp_waitable {
    mp_waitable_kind kind;
    union {
        mp_connection *conn;
        int fd;
    };
} mp_waitable;

#define MP_WAITABLE_CONN(c) ((mp_waitable){.kind = MP_WAIT_CONNECTION, .conn = (c)})
#define MP_WAITABLE_FD(f) ((mp_waitable){.kind = MP_WAIT_FD, .fd = (f)})

/*
 * mp_connection_wait: wait until at least one of the objects is ready
 * (Python's multiprocessing.connection.wait(object_list, timeout)).
 *
 * objects  n items: connections (ready when mp_connection_poll would say 1),
 *          plain fds and process sentinels (ready when readable: a sentinel
 *          is readable once the process has ended).  May be NULL if n is 0.
 * timeout  seconds (MP_FOREVER, 0, or positive).
 * ready    if not NULL, n flags: ready[i] is set to whether objects[i] is
 *          ready.
 *
 * Returns the number of ready objects (0 when the timeout passed: Python
 * returns an empty list); MP_EINVAL for a bad timeout, objects NULL with n >
 * 0, an unknown kind, an invalid, closed or send-only connection, or a
 * negative fd; -EBADF for an fd that is not open; -ENOMEM for very long
 * lists.  A signal interrupting the wait is retried against the same
 * deadline.
 */
MP_EXTERN int mp_connection_wait(const mp_waitable *objects, size_t n, double timeout,
                                 bool *ready);

/* ---- Listener and Client ---------------------------------------------- */

typedef enum mp_family {
    MP_AF_DEFAULT = 0, /* from the address given; no address: AF_UNIX */
    MP_AF_UNIX = 1,
    MP_AF_INET = 2
} mp_family;

/*
 * An address, as Listener.address and last_accepted report it.
 *
 * AF_UNIX: path holds the socket's path, NUL-terminated; path_len is its
 *   length.  A Linux abstract name (Python's '\0name') is spelled with a
 *   leading '@' instead of the NUL: "@name" (it may contain NULs; path_len
 *   counts them).  An unnamed socket (the peer of an accepted connection,
 *   as a rule) has path "" (Python's '').
 * AF_INET: host is the numeric IPv4 address ("127.0.0.1"), port the port.
 */
typedef struct mp_address {
    mp_family family;
    char path[112];
    size_t path_len;
    char host[48];
    int port;
} mp_address;

/*
 * Where to listen or connect.  Give one of .address, .path or .host:
 *   .path      an AF_UNIX address: a filesystem path, or a Linux abstract
 *              name written "@name" or "\0name" (a leading NUL needs
 *              .path_len).  A file name that really starts with '@' is
 *              written "./@name".
 *   .path_len  bytes of .path; 0 means strlen(.path).
 *   .host      an AF_INET address: a host name or numeric IPv4 address
 *              ("" is every interface), with .port (0..65535; 0 lets the
 *              Listener choose a free port, which mp_listener_address
 *              reports).
 *   .address   an mp_address, for example one a Listener reported.
 * A Listener given none of them binds a fresh address of .family: a Linux
 * abstract name chosen by the kernel (AF_UNIX, the default) or a free port
 * of 127.0.0.1 (AF_INET).
 *   .authkey, .authkey_len  when .authkey is not NULL, every connection is
 *              authenticated with the challenge (both directions) before it
 *              is handed over; the key is copied.  NULL: no challenge (an
 *              empty key given as a non-NULL pointer is a key).
 */
typedef struct mp_listener_options {
    size_t struct_size; /* sizeof: the macros set it; 0 is the 0.1 layout (common.h) */
    mp_family family;
    const char *path;
    size_t path_len;
    const char *host;
    int port;
    const mp_address *address;
    int backlog; /* listen(2) backlog; 0: 1, Python's default */
    const void *authkey;
    size_t authkey_len;
    /* Bound on each mp_listener_accept, the wait for a client and the
     * authkey challenge together (Python's socket timeout): seconds, or
     * MP_FOREVER; 0 (not given): mp_get_default_timeout() at each accept. */
    double timeout;
} mp_listener_options;

/*
 * mp_listener_new: a bound, listening socket (Python's Listener).
 *
 * Takes designated initializers for mp_listener_options (see above):
 *     mp_listener_new(.path = "/tmp/sock", .authkey = "key", .authkey_len = 3)
 * SO_REUSEADDR is set, as Python does.  A filesystem path must not exist
 * yet; the socket file is removed by mp_listener_close (or at exit) in the
 * process that created the listener.
 *
 * Returns the listener, owned by the caller (mp_listener_free), or NULL with
 * mp_last_error(): MP_EINVAL for conflicting or malformed options (two
 * addresses, a family that contradicts the address, a port outside
 * 0..65535, a negative backlog, an authkey longer than 4096 bytes);
 * -ENAMETOOLONG for a path longer than
 * AF_UNIX allows (107 bytes, 108 for an abstract name); -EADDRNOTAVAIL for a
 * host name that does not resolve to an IPv4 address; -EADDRINUSE and other
 * -errno from socket, bind and listen; -ENOMEM.
 */
#define mp_listener_new(...) mp_listener_new_opts(MP__OPTS(mp_listener_options, __VA_ARGS__))
MP_EXTERN mp_listener *mp_listener_new_opts(const mp_listener_options *opts);

/*
 * mp_listener_accept: wait for a client and return its connection (Python's
 * accept()).  With an authkey, the challenge is run both ways first.
 *
 * conn  receives a duplex connection owned by the caller; NULL on failure.
 *
 * Returns 0; MP_EAUTH when the client failed the challenge or rejected ours
 * (the connection is closed; nothing has been received from it); MP_EEOF if
 * the client hung up during the challenge; MP_ETIMEDOUT when the
 * listener's .timeout (or the process default, mp_set_default_timeout)
 * ran out, waiting for a client or for a client that says nothing during
 * the challenge (the connection is then closed); MP_EINVAL for an invalid
 * or closed listener or conn NULL; -errno from accept(2).  With neither
 * timeout set it blocks, as in Python.
 */
MP_EXTERN int mp_listener_accept(mp_listener *l, mp_connection **conn);

/*
 * mp_listener_accept_timeout: mp_listener_accept with a timeout of its own
 * (seconds: MP_FOREVER, 0 to take only a client already waiting, or
 * positive), which bounds the wait for a client and the challenge
 * together.  Returns as mp_listener_accept; MP_EINVAL also for a bad
 * timeout.
 */
MP_EXTERN int mp_listener_accept_timeout(mp_listener *l, double timeout, mp_connection **conn);

/*
 * mp_set_default_timeout / mp_get_default_timeout: the timeout of the
 * calling process's Listeners and Clients that set none (Python's
 * socket.setdefaulttimeout / getdefaulttimeout): MP_FOREVER (the initial
 * value: block, as Python's None) or positive seconds; 0 too, which makes
 * an accept take only a client already waiting and a connect that cannot
 * complete at once fail.  It bounds accept, connect and the authkey
 * challenge of mp_listener_accept and mp_client, and so the connections
 * managers open.  Per process, not inherited by spawned children (as
 * Python's); a forked child keeps it.  set returns 0 or MP_EINVAL for NaN
 * or another negative value.  Thread-safe.
 */
MP_EXTERN int mp_set_default_timeout(double timeout);
MP_EXTERN double mp_get_default_timeout(void);

/*
 * mp_listener_close: close the listening socket in the calling process
 * (Python's close()); the socket file of a filesystem path is removed if this
 * process created the listener.  Closing twice is a no-op.  Returns 0 or
 * MP_EINVAL for an invalid object.
 */
MP_EXTERN int mp_listener_close(mp_listener *l);

/* mp_listener_free: close (as above) and release the object; NULL is a no-op. */
MP_EXTERN void mp_listener_free(mp_listener *l);

/*
 * mp_listener_address: the bound address (Python's address), with the port
 * the kernel chose for port 0 and the abstract name it chose for a listener
 * made without an address.  Returns 0, or MP_EINVAL for an invalid listener
 * or addr NULL.  Works after close too.
 */
MP_EXTERN int mp_listener_address(const mp_listener *l, mp_address *addr);

/*
 * mp_listener_last_accepted: the peer address of the last accepted
 * connection (Python's last_accepted).  Returns 0; -ENOTCONN when nothing
 * has been accepted yet (Python's None); MP_EINVAL for an invalid listener or
 * addr NULL.
 */
MP_EXTERN int mp_listener_last_accepted(const mp_listener *l, mp_address *addr);

/* mp_listener_fileno: the listening socket's fd, or MP_EINVAL if invalid or
 * closed in this process.  It is readable when a client is waiting. */
MP_EXTERN int mp_listener_fileno(const mp_listener *l);

/* Options of mp_client: the fields of mp_listener_options but backlog. */
typedef struct mp_client_options {
    size_t struct_size; /* sizeof: the macros set it; 0 is the 0.1 layout (common.h) */
    mp_family family;
    const char *path;
    size_t path_len;
    const char *host;
    int port;
    const mp_address *address;
    const void *authkey;
    size_t authkey_len;
    /* Bound on connect and the authkey challenge together: seconds, or
     * MP_FOREVER; 0 (not given): mp_get_default_timeout(). */
    double timeout;
} mp_client_options;

/*
 * mp_client: connect to a Listener (Python's Client(address, family,
 * authkey)) and return the duplex connection.
 *
 *     mp_connection *c = mp_client(.path = "/tmp/sock", .authkey = "key",
 *                                  .authkey_len = 3);
 *
 * One of .address, .path or .host (with .port) must be given.  With an
 * authkey, the challenge is answered and then delivered, as Python does.
 *
 * Returns the connection, owned by the caller (mp_connection_free), or NULL
 * with mp_last_error(): MP_EAUTH if the challenge failed either way (no data
 * has passed); MP_EEOF if the listener hung up during the challenge;
 * MP_EINVAL for no address or conflicting options; -ENAMETOOLONG,
 * -EADDRNOTAVAIL as for mp_listener_new; -ECONNREFUSED, -ENOENT and other
 * -errno from connect(2); MP_ETIMEDOUT when .timeout (or the process
 * default) ran out while connecting (a full backlog, an unreachable host)
 * or during the challenge (a listener that says nothing); -ENOMEM.  With
 * neither timeout set it blocks while connecting, as in Python.
 */
#define mp_client(...) mp_client_opts(MP__OPTS(mp_client_options, __VA_ARGS__))
MP_EXTERN mp_connection *mp_client_opts(const mp_client_options *opts);

/* ---- passing file descriptors (Python's multiprocessing.reduction) ---- */

/* The most fds one mp_connection_send_fds may carry (the kernel's SCM_MAX_FD). */
#define MP_SCM_MAX_FD 253

/*
 * mp_connection_send_fds: send n open file descriptors over c, an AF_UNIX
 * socket connection (a duplex mp_pipe, or a Listener/Client over an
 * AF_UNIX address), to the process at the other end: a process of the
 * family or an unrelated program (Python's reduction.sendfds).  The
 * receiver gets its own descriptors of the same open files (SCM_RIGHTS);
 * the caller keeps and still owns fds.  On the wire this is Python's form
 * (one byte, n modulo 256, carrying the fds), outside the message framing,
 * so a Python process can receive them with recv_handle/recvfds and the
 * reverse.
 *
 * Returns 0; -EBADF if one of fds is not open; -ENOTSOCK when c is not a
 * socket (a one-way mp_pipe, a pipe fd) and -EOPNOTSUPP when it is not an
 * AF_UNIX one (AF_INET): such connections cannot carry fds; MP_EINVAL for
 * an invalid, closed or receive-only c, fds NULL, n 0 or above
 * MP_SCM_MAX_FD; -EPIPE, -ECONNRESET and other -errno of sendmsg(2).
 * Blocks while the socket is full, as sends do.
 */
MP_EXTERN int mp_connection_send_fds(mp_connection *c, const int *fds, size_t n);

/*
 * mp_connection_recv_fds: receive the fds of one mp_connection_send_fds
 * (Python's reduction.recvfds): blocks until they come.
 *
 * fds  receives them, owned by the caller (close them), close-on-exec;
 * n    its room: the most fds expected.
 *
 * Returns the number received (1..n); MP_EEOF if the peer hung up;
 * -EMSGSIZE when more than n came (all are closed); -EPROTO when the next
 * thing on the stream is not a set of fds (Python's RuntimeError 'Invalid
 * data received'); the errors of mp_connection_send_fds about c; MP_EINVAL
 * for a send-only c, fds NULL, n 0 or above MP_SCM_MAX_FD.  Messages and
 * fds must be received in the order they were sent.  Fds received by a
 * read but never taken are closed when c is closed in this process.
 */
MP_EXTERN int mp_connection_recv_fds(mp_connection *c, int *fds, size_t n);

/*
 * mp_connection_send_handle / mp_connection_recv_handle: one fd (Python's
 * reduction.send_handle(conn, handle, destination_pid) and
 * recv_handle(conn); Linux needs no destination pid).  recv_handle stores
 * the new fd in *fd (-1 on failure).  Return 0 or the codes above
 * (MP_EINVAL also for fd NULL).
 */
MP_EXTERN int mp_connection_send_handle(mp_connection *c, int fd);
MP_EXTERN int mp_connection_recv_handle(mp_connection *c, int *fd);

/*
 * mp_deliver_challenge / mp_answer_challenge: the two halves of the authkey
 * handshake over any connection (Python's deliver_challenge and
 * answer_challenge).  A Listener delivers then answers; a Client answers then
 * delivers.
 *
 * mp_deliver_challenge sends 40 random bytes prefixed with "{sha256}" and
 * accepts an HMAC-SHA256 answer ("{sha256}" prefix), an HMAC-SHA384 one
 * ("{sha384}") or the bare 16-byte HMAC-MD5 answer of CPython <= 3.11.
 * mp_answer_challenge answers a 20-byte challenge (CPython <= 3.11) with a
 * bare HMAC-MD5, and a "{digest}"-prefixed one with that digest when it is
 * md5, sha256 or sha384 (CPython's sha3_256 and sha3_384 are refused with
 * MP_EAUTH).
 *
 * authkey  the key (may be NULL only if len is 0); not stored.
 *
 * Returns 0; MP_EAUTH when the peer's answer is wrong (delivering side; the
 * failure message has been sent to the peer) or the peer rejected ours or
 * sent something that is not a challenge or answer (answering side); MP_EEOF
 * if the peer hung up; MP_EINVAL for an invalid connection or authkey NULL
 * with len > 0; other codes from send and receive.
 */
MP_EXTERN int mp_deliver_challenge(mp_connection *c, const void *authkey, size_t len);
MP_EXTERN int mp_answer_challenge(mp_connection *c, const void *authkey, size_t len);

MP_END_DECLS

#endif /* LIBMP_CONNECTION_H */
