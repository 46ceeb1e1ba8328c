/*
 * popen_forkserver.c: the forkserver start method (Python's
 * popen_forkserver.py and forkserver.connect_to_new_process).
 *
 * Starting a process is one connection to the caller's server (forkserver.c
 * has the protocol): the request names the process object (it is in the
 * arena, with its target and argument bytes) and carries every fd the
 * child must have at the same number: the fds of the fd table, the
 * caller's stdin, stdout and stderr (Python's forkserver children keep the
 * server's; libmp gives them the requester's, as fork and spawn do), and a
 * pidfd of the caller for the child's mp_parent_process().  The server
 * answers with the pid and a pidfd of the child.
 *
 * The connection is the sentinel: the server writes the exit status there
 * when it reaps the child.  Signals go through the pidfd (kill(2) by pid on
 * kernels without pidfds).
 */
#include "internal/mp.h"
#include "internal/popen.h"
#include "internal/spawn.h"
#include "internal/util.h"

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

/* The fds themselves, in batches of one byte each with SCM_RIGHTS. */
static int send_fds(int sock, const int *fds, size_t n)
{
    for (size_t done = 0; done < n;) {
        size_t k = n - done < MP__FS_FDS_PER_MSG ? n - done : MP__FS_FDS_PER_MSG;
        union {
            char buf[CMSG_SPACE(MP__FS_FDS_PER_MSG * sizeof(int))];
            struct cmsghdr align;
        } u;
        memset(&u, 0, sizeof u);
        char byte = 0;
        struct iovec iov = {&byte, 1};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1,
                           .msg_control = u.buf, .msg_controllen = CMSG_SPACE(k * sizeof(int))};
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(k * sizeof(int));
        memcpy(CMSG_DATA(c), fds + done, k * sizeof(int));
        ssize_t w = sendmsg(sock, &m, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w != 1)
            return w < 0 ? mp__errno() : -EIO;
        done += k;
    }
    return 0;
}

/* The server's answer, with the child's pidfd if it sent one. */
static int recv_reply(int sock, struct mp__fs_reply *rep, int *pidfd)
{
    *pidfd = -1;
    for (;;) {
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } u;
        struct iovec iov = {rep, sizeof *rep};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1,
                           .msg_control = u.buf, .msg_controllen = sizeof u.buf};
        ssize_t n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC | MSG_WAITALL);
        if (n < 0 && errno == EINTR)
            continue;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); n > 0 && c; c = CMSG_NXTHDR(&m, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
                c->cmsg_len >= CMSG_LEN(sizeof(int)))
                memcpy(pidfd, CMSG_DATA(c), sizeof(int));
        if (n == (ssize_t)sizeof *rep)
            return 0;
        if (*pidfd >= 0)
            close(*pidfd);
        *pidfd = -1;
        /* EOF before an answer: the server refused the token, or died. */
        return n < 0 ? mp__errno() : MP_EAUTH;
    }
}

/* Send the request for p on sock; 0 or a negative code. */
static int send_request(int sock, mp_process *p)
{
    static const int stdio[] = {0, 1, 2};
    struct mp__fs_fd *e = NULL;
    size_t n = 0;
    int r = mp__fds_to_pass(true, stdio, 3, &e, &n);
    if (r != 0)
        return r;
    int self = mp__sentinel_pidfd_ok() ? (int)syscall(SYS_pidfd_open, getpid(), 0) : -1;
    struct mp__fs_fd *all = realloc(e, (n + 1) * sizeof *e);
    int *fds = malloc((n + 1) * sizeof *fds);
    if (all == NULL || fds == NULL) {
        free(all != NULL ? all : e);
        free(fds);
        if (self >= 0)
            close(self);
        return -ENOMEM;
    }
    e = all;
    for (size_t i = 0; i < n; i++)
        fds[i] = e[i].target;
    if (self >= 0) {
        e[n] = (struct mp__fs_fd){.target = -1, .flags = MP__FS_FD_PARENT, .owner = 0};
        fds[n++] = self;
    }

    struct mp__fs_request rq = {
        .magic = MP__FS_MAGIC,
        .version = MP__FS_VERSION,
        .process = (uint64_t)(uintptr_t)p,
        .nfds = (int32_t)n,
        .requester = getpid(),
    };
    int level;
    bool to_stderr;
    mp__log_state_get(&level, &to_stderr);
    rq.log_level = level;
    rq.log_stderr = to_stderr;
    r = mp__write_full(sock, &rq, sizeof rq);
    if (r == 0 && n > 0)
        r = mp__write_full(sock, e, n * sizeof *e);
    if (r == 0)
        r = send_fds(sock, fds, n);
    if (self >= 0)
        close(self);
    free(fds);
    free(e);
    return r;
}

static int fs_launch(mp_process *p, mp__popen *po)
{
    struct mp__forkserver *fs = NULL;
    int r = mp__forkserver_get(&fs, false);
    if (r != 0)
        return r;
    int sock = mp__forkserver_connect(fs);
    if (sock == -ECONNREFUSED || sock == -ENOENT) {
        /* The server is gone (killed): start another one. */
        r = mp__forkserver_get(&fs, true);
        if (r != 0)
            return r;
        sock = mp__forkserver_connect(fs);
    }
    if (sock < 0)
        return sock;
    r = mp__forkserver_auth(sock, fs, false);
    if (r == 0)
        r = send_request(sock, p);
    struct mp__fs_reply rep;
    int pidfd = -1;
    if (r == 0)
        r = recv_reply(sock, &rep, &pidfd);
    if (r == 0 && rep.code != 0)
        r = rep.code < 0 ? rep.code : MP_EINVAL;
    if (r == 0 && rep.pid <= 0)
        r = -EPROTO;
    if (r != 0) {
        if (pidfd >= 0)
            close(pidfd);
        close(sock);
        return r == -EPIPE || r == -ECONNRESET ? MP_EAUTH : r;
    }
    po->method = MP__START_FORKSERVER;
    po->kind = MP__SENTINEL_NONE;
    po->pid = rep.pid;
    po->sentinel = sock;
    po->aux = pidfd;
    return 0;
}

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
        int32_t code;
        ssize_t n;
        do
            n = recv(po->sentinel, &code, sizeof code, MSG_WAITALL);
        while (n < 0 && errno == EINTR);
        /* EOF without a status: the server died (Python reports 255). */
        po->exitcode = n == (ssize_t)sizeof code ? code : 255;
        /* The sentinel stays readable from now on, as a pidfd does, even
         * before the server's close arrives. */
        shutdown(po->sentinel, SHUT_RD);
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

static int fs_send_signal(mp__popen *po, int sig)
{
    if (__atomic_load_n(&po->ended, __ATOMIC_ACQUIRE))
        return 0;
    int r;
    if (po->aux >= 0)
        r = (int)syscall(SYS_pidfd_send_signal, po->aux, sig, NULL, 0);
    else
        r = kill(po->pid, sig);
    if (r == 0 || errno == ESRCH)
        return 0;
    return mp__errno();
}

const mp__popen_ops mp__popen_forkserver_ops = {
    .name = "forkserver",
    .launch = fs_launch,
    .wait = fs_wait,
    .send_signal = fs_send_signal,
    .close = mp__child_close,
};
