/*
 * popen_forkserver.c: the forkserver start method (Python's
 * popen_forkserver.py and forkserver.connect_to_new_process).
 *
 * Each process that starts forkserver children keeps one channel to its
 * server: a connection authenticated once (forkserver.c has the protocol),
 * used by one request at a time (a mutex; it is held around fork, and a
 * forked child drops its parent's channel).  A request names the process
 * object (it is in the arena, with its target and argument bytes) and
 * carries every fd the child must have at the same number: the fds of the
 * fd table and the caller's stdin, stdout and stderr (Python's forkserver
 * children keep the server's; libmp gives them the requester's, as fork and
 * spawn do).  (The server gives each child a pidfd of the process at the
 * other end of the channel, for its mp_parent_process().)
 * The server answers with the pid, the child's sentinel and a pidfd of the
 * child.
 *
 * The sentinel is the child's pidfd, readable once the child has ended;
 * the exit code then comes from a status socket the server writes to when
 * it has reaped the child (EOF if the server died: 255, as in Python), so
 * that join returns once the child is gone, reaped, as with fork.  Without
 * pidfds the status socket itself is the sentinel.  Signals go through the
 * pidfd (kill(2) by pid on kernels without pidfds).
 */
#include "internal/mp.h"
#include "internal/popen.h"
#include "internal/ring.h"
#include "internal/spawn.h"
#include "internal/util.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

/* ---- the channel ------------------------------------------------------------- */

static pthread_mutex_t chan_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t chan_once = PTHREAD_ONCE_INIT;
static int chan_fd = -1;
static struct mp__forkserver *chan_fs;

static void chan_atfork_prepare(void)
{
    pthread_mutex_lock(&chan_lock);
}

static void chan_atfork_parent(void)
{
    pthread_mutex_unlock(&chan_lock);
}

/* A forked child must not talk on its parent's channel: requests and
 * answers of two processes would mix. */
static void chan_atfork_child(void)
{
    if (chan_fd >= 0)
        close(chan_fd);
    chan_fd = -1;
    chan_fs = NULL;
    pthread_mutex_unlock(&chan_lock);
}

static void chan_register(void)
{
    /* chan_lock is held while start_lock is taken: see internal/spawn.h. */
    mp__forkserver_atfork_register();
    pthread_atfork(chan_atfork_prepare, chan_atfork_parent, chan_atfork_child);
}

static void chan_drop(void)
{
    if (chan_fd >= 0)
        close(chan_fd);
    chan_fd = -1;
    chan_fs = NULL;
}

/*
 * Whether a failed connect or handshake says the server is gone.  A killed
 * server refuses connections once its socket is closed, but while its last
 * thread is still exiting the kernel queues a connection and then resets it.
 */
static bool server_gone(int r)
{
    return r == -ECONNREFUSED || r == -ENOENT || r == -ECONNRESET || r == -EPIPE ||
           r == MP_EAUTH;
}

/* Connect to fs and pass the handshake: the fd, or a negative code. */
static int chan_connect(struct mp__forkserver *fs)
{
    int sock = mp__forkserver_connect(fs);
    if (sock < 0)
        return sock;
    int r = mp__forkserver_auth(sock, fs, false);
    if (r != 0) {
        close(sock);
        return r;
    }
    return sock;
}

/* Open the channel to the caller's server (chan_lock held), starting
 * another one if it is gone. */
static int chan_open(void)
{
    struct mp__forkserver *fs = chan_fs;
    chan_drop();
    int r = mp__forkserver_get(&fs, false);
    int sock = r == 0 ? chan_connect(fs) : r;
    if (r == 0 && server_gone(sock)) {
        r = mp__forkserver_get(&fs, true);
        sock = r == 0 ? chan_connect(fs) : r;
    }
    if (sock < 0)
        return sock;
    chan_fd = sock;
    chan_fs = fs;
    return 0;
}

int mp_forkserver_ensure_running(void)
{
    pthread_once(&chan_once, chan_register);
    pthread_mutex_lock(&chan_lock);
    int r = chan_fd >= 0 ? 0 : chan_open();
    pthread_mutex_unlock(&chan_lock);
    return r;
}

/* ---- one request ---------------------------------------------------------------- */

/* The signals this process ignores, which its forkserver children ignore
 * too (a spawned child keeps them through exec). */
static uint64_t ignored_signals(void)
{
    uint64_t bits = 0;
    for (int sig = 1; sig <= 64 && sig < NSIG; sig++) {
        struct sigaction sa;
        if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
            bits |= UINT64_C(1) << (sig - 1);
    }
    return bits;
}

/* The table of fds and the fds themselves for p's child. */
static int request_fds(struct mp__fs_fd **out, int **fds_out, size_t *n_out)
{
    static const int stdio[] = {0, 1, 2};
    struct mp__fs_fd *e = NULL;
    size_t n = 0;
    int r = mp__fds_to_pass(true, stdio, 3, &e, &n);
    if (r != 0)
        return r;
    int *fds = malloc((n ? n : 1) * sizeof *fds);
    if (fds == NULL) {
        free(e);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        fds[i] = e[i].target;
    *out = e;
    *fds_out = fds;
    *n_out = n;
    return 0;
}

/*
 * The answer's error when the fds ran out: -EMFILE or -ENFILE as a new fd
 * would get now (-EMFILE if one is free again).
 */
static int no_fd_error(int sock)
{
    int fd = fcntl(sock, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return errno == EMFILE || errno == ENFILE ? -errno : -EMFILE;
    close(fd);
    return -EMFILE;
}

bool mp__fs_no_fd_check;

/*
 * Whether the two fds of an answer (sentinel, pidfd) can be received:
 * 0, or -EMFILE / -ENFILE before anything is asked of the server.
 */
static int reply_fds_free(int sock)
{
    int a = fcntl(sock, F_DUPFD_CLOEXEC, 0);
    int b = a >= 0 ? fcntl(sock, F_DUPFD_CLOEXEC, 0) : -1;
    int r = b >= 0 ? 0 : -errno;
    if (a >= 0)
        close(a);
    if (b >= 0)
        close(b);
    return r;
}

/*
 * Read the answer: 0 with the reply and up to 2 fds, *cut set when the
 * kernel could not give us every fd that came with it (none left here),
 * or -EPIPE when the channel broke.
 */
static int recv_reply(int sock, struct mp__fs_reply *rep, int fds[2], size_t *got, bool *cut)
{
    union {
        char buf[CMSG_SPACE(2 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {rep, sizeof *rep};
    struct msghdr m = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = u.buf,
                       .msg_controllen = sizeof u.buf};
    ssize_t n;
    do
        n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC | MSG_WAITALL);
    while (n < 0 && errno == EINTR);
    *got = 0;
    *cut = n > 0 && (m.msg_flags & MSG_CTRUNC) != 0;
    for (struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&m) : NULL; c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (*got < 2)
                fds[(*got)++] = fd;
            else
                close(fd);
        }
    }
    /* The fds came with the first byte; the rest of a short read (a
     * signal cut MSG_WAITALL short) is plain data. */
    if (n > 0 && (size_t)n < sizeof *rep &&
        mp__read_full(sock, (char *)rep + n, sizeof *rep - (size_t)n) != 0)
        n = -1;
    if (n <= 0) {
        for (size_t i = 0; i < *got; i++)
            close(fds[i]);
        *got = 0;
        return -EPIPE;
    }
    return 0;
}

/*
 * Send the request on the channel and read the answer.  Returns 0 with the
 * reply (and, for a started child, its sentinel and pidfd), a negative code
 * the server answered (the channel is fine), or -EPIPE when the channel
 * broke (the server died, or the stream went wrong).
 */
static int exchange(mp_process *p, struct mp__fs_reply *rep, int *sentinel, int *pidfd)
{
    struct mp__fs_fd *e;
    int *fds;
    size_t n;
    int r = mp__fs_no_fd_check ? 0 : reply_fds_free(chan_fd);
    if (r == 0)
        r = request_fds(&e, &fds, &n);
    if (r != 0)
        return r;
    struct mp__fs_request rq = {
        .magic = MP__FS_MAGIC,
        .version = MP__FS_VERSION,
        .process = (uint64_t)(uintptr_t)p,
        .nfds = (int32_t)n,
        .requester = getpid(),
        .sig_ign = ignored_signals(),
    };
    int level;
    bool to_stderr;
    mp__log_state_get(&level, &to_stderr);
    rq.log_level = level;
    rq.log_stderr = to_stderr;
    /* The header and the table in one message with the first fds, then
     * the other fds. */
    size_t first = n < MP__FS_FDS_PER_MSG ? n : MP__FS_FDS_PER_MSG;
    char *msg = malloc(sizeof rq + n * sizeof *e);
    if (msg == NULL) {
        free(fds);
        free(e);
        return -ENOMEM;
    }
    memcpy(msg, &rq, sizeof rq);
    if (n > 0)
        memcpy(msg + sizeof rq, e, n * sizeof *e);
    r = mp__send_with_fds(chan_fd, msg, sizeof rq + n * sizeof *e, fds, first);
    free(msg);
    for (size_t done = first; r == 0 && done < n;) {
        size_t k = n - done < MP__FS_FDS_PER_MSG ? n - done : MP__FS_FDS_PER_MSG;
        r = mp__send_with_fds(chan_fd, NULL, 0, fds + done, k);
        done += k;
    }
    free(fds);
    free(e);
    if (r != 0)
        return -EPIPE;

    int got_fds[2];
    size_t got = 0;
    bool cut;
    r = recv_reply(chan_fd, rep, got_fds, &got, &cut);
    if (r == 0 && cut) {
        /* Another thread took the fds reply_fds_free saw: the child
         * started, but we cannot watch it, so it must not run. */
        for (size_t i = 0; i < got; i++)
            close(got_fds[i]);
        if (rep->code == 0 && rep->pid > 0)
            kill(rep->pid, SIGKILL);
        return no_fd_error(chan_fd);
    }
    if (r == 0 && rep->code == 0 && (rep->pid <= 0 || got != 1u + (rep->has_pidfd != 0)))
        r = -EPROTO;
    if (r != 0 || rep->code != 0) {
        for (size_t i = 0; i < got; i++)
            close(got_fds[i]);
        if (r != 0)
            return -EPIPE;
        return rep->code < 0 ? rep->code : MP_EINVAL;
    }
    *sentinel = got_fds[0];
    *pidfd = got > 1 ? got_fds[1] : -1;
    return 0;
}

static int fs_launch(mp_process *p, mp__popen *po)
{
    pthread_once(&chan_once, chan_register);
    pthread_mutex_lock(&chan_lock);
    struct mp__fs_reply rep;
    int sentinel = -1, pidfd = -1;
    int r = chan_fd >= 0 ? 0 : chan_open();
    if (r == 0)
        r = exchange(p, &rep, &sentinel, &pidfd);
    if (r == -EPIPE) {
        /* The channel broke (the server died?): once more on a fresh
         * channel, with a new server if the old one refuses it. */
        r = chan_open();
        if (r == 0)
            r = exchange(p, &rep, &sentinel, &pidfd);
        if (r == -EPIPE)
            chan_drop();
    }
    pthread_mutex_unlock(&chan_lock);
    if (r != 0)
        return r;
    po->method = MP__START_FORKSERVER;
    po->pid = rep.pid;
    if (pidfd >= 0) {
        po->kind = MP__SENTINEL_PIDFD;
        po->sentinel = pidfd;
        po->aux = sentinel; /* the status socket */
    } else {
        po->kind = MP__SENTINEL_NONE;
        po->sentinel = sentinel;
        po->aux = -1;
    }
    return 0;
}

/* aux, without pidfds, once the server died before the child: the child
 * is watched by pid, every ORPHAN_SLICE_MS. */
#define AUX_SERVER_GONE (-2)
#define ORPHAN_SLICE_MS 10

static void pause_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* Read the status the server wrote; another thread may be doing it. */
static void read_status(mp__popen *po)
{
    uint32_t idle = 0;
    if (!__atomic_compare_exchange_n(&po->busy, &idle, 1, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        pause_ms(1);
        return;
    }
    if (!__atomic_load_n(&po->ended, __ATOMIC_ACQUIRE)) {
        bool pidfd = po->kind == MP__SENTINEL_PIDFD;
        int status = pidfd ? po->aux : po->sentinel;
        int32_t code;
        ssize_t n;
        do
            n = recv(status, &code, sizeof code, MSG_WAITALL);
        while (n < 0 && errno == EINTR);
        /* EOF without a status: the server died (Python reports 255). */
        po->exitcode = n == (ssize_t)sizeof code ? code : 255;
        /* A socket sentinel stays readable from now on, as a pidfd does,
         * even before the server's close arrives. */
        if (!pidfd)
            shutdown(status, SHUT_RD);
        /* Without a pidfd the server's end says nothing of the child's:
         * it is watched by pid from now on (fs_wait). */
        if (n != (ssize_t)sizeof code && !pidfd && !mp__pid_dead(po->pid))
            __atomic_store_n(&po->aux, AUX_SERVER_GONE, __ATOMIC_RELEASE);
        else
            __atomic_store_n(&po->ended, 1, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&po->busy, 0, __ATOMIC_RELEASE);
}

static int fs_wait(mp__popen *po, const mp__deadline *d, int *exitcode)
{
    for (;;) {
        if (__atomic_load_n(&po->ended, __ATOMIC_ACQUIRE)) {
            *exitcode = po->exitcode;
            return 0;
        }
        int ms = d->nowait ? 0 : mp__deadline_poll_ms(d);
        if (__atomic_load_n(&po->aux, __ATOMIC_ACQUIRE) == AUX_SERVER_GONE) {
            /* The server died before the child: wait for the child's end
             * by its pid (gone, or a zombie of whoever adopted it). */
            if (mp__pid_dead(po->pid)) {
                __atomic_store_n(&po->ended, 1, __ATOMIC_RELEASE);
                continue;
            }
            if (ms == 0 || (ms > 0 && mp__deadline_expired(d)))
                return MP_ETIMEDOUT;
            pause_ms(ms < 0 || ms > ORPHAN_SLICE_MS ? ORPHAN_SLICE_MS : ms);
            continue;
        }
        struct pollfd pfd = {.fd = po->sentinel, .events = POLLIN};
        int n = poll(&pfd, 1, ms);
        if (n < 0 && errno != EINTR)
            return mp__errno();
        if (n > 0) {
            read_status(po);
            continue;
        }
        if (n == 0 && (d->nowait || mp__deadline_expired(d)))
            return MP_ETIMEDOUT;
    }
}

const mp__popen_ops mp__popen_forkserver_ops = {
    .name = "forkserver",
    .launch = fs_launch,
    .wait = fs_wait,
    .send_signal = mp__child_send_signal,
    .close = mp__child_close,
};
