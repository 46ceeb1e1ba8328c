/*
 * forkserver.c: the fork server (Python's forkserver.py).
 *
 * A program that uses the forkserver start method starts, on first use, a
 * server: a fresh image of the program started with spawn (so it holds no
 * thread, lock or fd of the program), which runs the preload hook once and
 * then forks one child per request.  The server is a grandchild of the
 * process that started it (spawn.c forks it off), so nobody has to reap it.
 *
 * Rendezvous: a Unix stream socket in a private directory (random name, mode
 * 0700; the socket 0600), created and bound by the starting process and
 * handed to the server.  Every connection starts with the connection
 * module's authkey challenge, both ways (as CPython 3.14's forkserver
 * does), with a 32-byte random key kept in the server object in the shared
 * arena, so that only the program family can talk to the server.
 *
 * Lifetime: the starting process keeps the write end of an "alive" pipe,
 * registered in its fd table, so that every child it starts (by any method)
 * gets it too; the server holds the read end and leaves (removing its
 * socket and directory) when the last write end is closed, that is when
 * the program and all of its children have ended.
 *
 * A request (popen_forkserver.c) is one connection: the challenges, the
 * header, the table of fds, and the fds themselves (SCM_RIGHTS, in batches).  The server
 * forks; the child puts each fd at the number it had in the requester,
 * closes everything else of the server's, and runs the process bootstrap.
 * The server answers with the pid and a pidfd of the child, keeps the
 * connection, and when it reaps the child writes its exit status (an int32:
 * the code, or -N for signal N) there and closes it.  The requester's
 * sentinel is that connection: readable once the status is there (or at
 * EOF, if the server died).
 */
#include "internal/mp.h"
#include "internal/conn.h"
#include "internal/popen.h"
#include "internal/resource_tracker.h"
#include "internal/spawn.h"
#include "internal/util.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define FORKSERVER_MAGIC MP__MAGIC('f', 's', 'r', 'v')
#define DIR_MAX 96
#define REQUEST_TIMEOUT_S 10

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

struct mp__forkserver {
    mp__obj hdr;
    uint8_t token[MP__FS_TOKEN_LEN];
    char dir[DIR_MAX];
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int alive_w; /* at this number in every process that may use it */
    pid_t pid;   /* the server, once it runs */
};

int mp__forkserver_auth(int fd, const struct mp__forkserver *fs, bool server)
{
    /* A Connection over fd for the challenges only, then detached (the fd
     * stays open, as CPython's _detach()). */
    int err = 0;
    mp_connection *c = mp__connection_wrap(fd, true, true, true, &err);
    if (c == NULL)
        return err;
    int r = server ? mp_deliver_challenge(c, fs->token, sizeof fs->token)
                   : mp_answer_challenge(c, fs->token, sizeof fs->token);
    if (r == 0)
        r = server ? mp_answer_challenge(c, fs->token, sizeof fs->token)
                   : mp_deliver_challenge(c, fs->token, sizeof fs->token);
    mp__fd_unregister(fd);
    mp__obj_free(c);
    /* The Connection reads ahead: the client must not send its request
     * until the server's last read of the handshake is done, or part of it
     * (and the fds it carries) would vanish into that read's buffer.  The
     * server says "go" with one byte. */
    char go = 'g';
    if (r == 0)
        r = server ? mp__write_full(fd, &go, 1) : mp__read_full(fd, &go, 1);
    return r == MP_EEOF ? MP_EAUTH : r;
}

const char *mp__forkserver_dir(const struct mp__forkserver *fs)
{
    return fs->dir;
}

void mp__forkserver_started(struct mp__forkserver *fs, pid_t pid)
{
    __atomic_store_n(&fs->pid, pid, __ATOMIC_RELEASE);
}

pid_t mp__forkserver_pid(const struct mp__forkserver *fs)
{
    return __atomic_load_n(&fs->pid, __ATOMIC_ACQUIRE);
}

/* ======================================================================
 * The server
 * ====================================================================== */

struct waiting {
    pid_t pid;
    int status_fd;   /* the server's end of the child's sentinel */
    uint64_t client; /* the id of the channel that asked for it */
    bool daemon;     /* to be killed when its parent dies */
};

/* A channel, and a pidfd of the process at its other end (-1 if none):
 * the parent of the children it asks for. */
struct client {
    int fd;
    int pidfd;
    uint64_t id;
    pid_t pid; /* from SO_PEERCRED, or 0 */
};

struct server {
    struct mp__forkserver *fs;
    int listen_fd;
    int alive_fd;
    int sig_fd;
    char comm[16]; /* the program's name, given back to the children */
    struct waiting *w;
    size_t nw, capw;
    struct client *clients; /* authenticated channels */
    size_t nclients, capclients;
    uint64_t next_client;
    struct pollfd *poll;
    size_t cappoll;
};

/* Static, so that its buffers stay reachable (for leak checkers) in the
 * children, which leave the server's loop at a fork. */
static struct server server;

/* ---- fds over a Unix socket ----------------------------------------------- */

int mp__send_with_fds(int sock, const void *buf, size_t len, const int *fds, size_t n)
{
    union {
        char buf[CMSG_SPACE(MP__FS_FDS_PER_MSG * sizeof(int))];
        struct cmsghdr align;
    } u;
    char zero = 0;
    struct iovec iov = {len > 0 ? (void *)buf : &zero, len > 0 ? len : 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (n > MP__FS_FDS_PER_MSG)
        return MP_EINVAL;
    if (n > 0) {
        memset(&u, 0, sizeof u);
        m.msg_control = u.buf;
        m.msg_controllen = CMSG_SPACE(n * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(n * sizeof(int));
        memcpy(CMSG_DATA(c), fds, n * sizeof(int));
    }
    ssize_t w;
    do
        w = sendmsg(sock, &m, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w <= 0)
        return w < 0 ? mp__errno() : -EIO;
    /* The fds went with the first byte; the rest is plain data. */
    if (len > 0 && (size_t)w < len)
        return mp__write_full(sock, (const char *)buf + w, len - (size_t)w);
    return 0;
}

int mp__recv_with_fds(int sock, void *buf, size_t len, int *fds, size_t max, size_t *got)
{
    char zero;
    size_t done = 0;
    size_t want = len > 0 ? len : 1;
    while (done < want) {
        union {
            char buf[CMSG_SPACE(MP__FS_FDS_PER_MSG * sizeof(int))];
            struct cmsghdr align;
        } u;
        struct iovec iov = {len > 0 ? (char *)buf + done : &zero, want - done};
        struct msghdr m = {.msg_iov = &iov,
                           .msg_iovlen = 1,
                           .msg_control = u.buf,
                           .msg_controllen = sizeof u.buf};
        ssize_t r = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 ? MP_EEOF : mp__errno();
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                if (*got < max)
                    fds[(*got)++] = fd;
                else
                    close(fd); /* more than announced */
            }
        }
        if (m.msg_flags & MSG_CTRUNC)
            return MP_EINVAL;
        done += (size_t)r;
    }
    return 0;
}

/* Answer a request: the code, and for a started child its pid, the
 * client's end of its sentinel and its pidfd (if any). */
static int tell(int conn, int code, pid_t pid, int sentinel, int pidfd)
{
    struct mp__fs_reply rep = {.code = code, .pid = pid, .has_pidfd = pidfd >= 0};
    int fds[2];
    size_t n = 0;
    if (sentinel >= 0)
        fds[n++] = sentinel;
    if (pidfd >= 0)
        fds[n++] = pidfd;
    return mp__send_with_fds(conn, &rep, sizeof rep, fds, n);
}

/*
 * In the forked child: put the fds at their numbers, keep the arena's fd
 * and the requester's pidfd (moved to the lowest free number; returned, or
 * -1), and close everything else the server had open (its socket, pipe,
 * signalfd, the channels, the children's status sockets).
 */
static int child_place_fds(const struct mp__fs_fd *e, int *fds, size_t nfds, int arena_fd,
                           int parent)
{
    int base = arena_fd + 1;
    for (size_t i = 0; i < nfds; i++)
        if (e[i].target >= base)
            base = e[i].target + 1;
    /* Copies above every target first, so that no dup below can overwrite
     * an fd still to be placed; then everything below is closed. */
    int arena_tmp = fcntl(arena_fd, F_DUPFD_CLOEXEC, base);
    int parent_tmp = parent >= 0 ? fcntl(parent, F_DUPFD_CLOEXEC, base) : -1;
    if (arena_tmp < 0 || (parent >= 0 && parent_tmp < 0))
        _exit(127);
    for (size_t i = 0; i < nfds; i++) {
        fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, base);
        if (fds[i] < 0)
            _exit(127);
    }
    mp__close_fds(0, (unsigned)base - 1);
    if (dup3(arena_tmp, arena_fd, O_CLOEXEC) < 0)
        _exit(127);
    for (size_t i = 0; i < nfds; i++) {
        int flags = (e[i].flags & MP__FS_FD_CLOEXEC) ? O_CLOEXEC : 0;
        if (dup3(fds[i], e[i].target, flags) < 0)
            _exit(127);
    }
    /* Once every target is in place: the lowest free number. */
    parent = parent_tmp >= 0 ? fcntl(parent_tmp, F_DUPFD_CLOEXEC, 3) : -1;
    /* Everything from base up goes (the copies, the server's fds), but for
     * the pidfd if it landed there.  Below base, only the targets, the
     * arena's fd and the pidfd are open now. */
    if (parent >= base) {
        mp__close_fds((unsigned)base, (unsigned)parent - 1);
        mp__close_fds((unsigned)parent + 1, ~0u);
    } else {
        mp__close_fds((unsigned)base, ~0u);
    }
    return parent;
}

/*
 * The dispositions a child starts with: the server's reset to the default,
 * but for the signals its requester ignores (as a spawned child keeps
 * them through exec).  Every signal stays blocked: the bootstrap sets the
 * child's mask once it is ready to run the target.
 */
static void child_signals(uint64_t ignored)
{
    for (int sig = 1; sig <= 64 && sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        bool ign = (ignored >> (sig - 1)) & 1;
        if (ign || sig == SIGINT || sig == SIGCHLD)
            signal(sig, ign ? SIG_IGN : SIG_DFL);
    }
}

/*
 * At the server's start, whoever started it (a Pool's thread blocks every
 * signal, a program may ignore some): no signal blocked but SIGCHLD (read
 * through the signalfd), every disposition the default but SIGINT's.
 */
static int server_signals(struct server *sv)
{
    for (int sig = 1; sig <= 64 && sig < NSIG; sig++) {
        struct sigaction sa;
        if (sig != SIGKILL && sig != SIGSTOP && sigaction(sig, NULL, &sa) == 0 &&
            sa.sa_handler == SIG_IGN)
            signal(sig, SIG_DFL);
    }
    /* Ctrl-C in a terminal reaches the whole foreground group: the server
     * leaves the program to decide, as Python's does. */
    signal(SIGINT, SIG_IGN);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_SETMASK, &chld, NULL);
    sv->sig_fd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    return sv->sig_fd < 0 ? mp__errno() : 0;
}

static _Noreturn void serve_child(struct server *s, const struct mp__fs_request *rq,
                                  const struct mp__fs_fd *e, int *fds, size_t nfds, int parent)
{
    int arena_fd;
    mp__heap_info(&arena_fd, NULL, NULL);
    child_signals(rq->sig_ign);
    prctl(PR_SET_NAME, s->comm);
    parent = child_place_fds(e, fds, nfds, arena_fd, parent);
    for (size_t i = 0; i < nfds; i++)
        if (e[i].flags & MP__FS_FD_REGISTER)
            mp__fd_register(e[i].target, (const void *)(uintptr_t)e[i].owner);
    /* The server's buffers for this request are the child's now. */
    free(fds);
    free((void *)e);
    mp__log_state_set(rq->log_level, rq->log_stderr != 0);
    mp__process_set_parent_pidfd(parent);
    mp__process_bootstrap((mp_process *)(uintptr_t)rq->process, true);
}

static int waiting_add(struct server *s, pid_t pid, int status_fd, const struct client *cl,
                       bool daemon)
{
    if (s->nw == s->capw) {
        size_t cap = s->capw ? s->capw * 2 : 16;
        struct waiting *w = realloc(s->w, cap * sizeof *w);
        if (w == NULL)
            return -ENOMEM;
        s->w = w;
        s->capw = cap;
    }
    s->w[s->nw++] = (struct waiting){pid, status_fd, cl->id, daemon};
    return 0;
}

/* Check a request against what the server can do: 0 or a code. */
static int request_check(const struct mp__fs_request *rq, const struct mp__fs_fd *e,
                         size_t nfds, int arena_fd)
{
    if (mp__process_check_target((const mp_process *)(uintptr_t)rq->process) != 0)
        return MP_EINVAL;
    int prev = -1;
    for (size_t i = 0; i < nfds; i++) {
        if (e[i].target <= prev || e[i].target == arena_fd)
            return MP_EINVAL; /* negative, unsorted, repeated, or the arena's */
        prev = e[i].target;
    }
    return 0;
}

/* Fork the child of a checked request; its pid, or -errno. */
static pid_t fork_child(struct server *s, const struct mp__fs_request *rq,
                        const struct mp__fs_fd *e, int *fds, size_t nfds, int parent)
{
    /* Every signal blocked across the fork: one sent to the child before it
     * has restored the default dispositions (the server ignores SIGINT)
     * stays pending instead of being lost, until the bootstrap gives the
     * child its own mask. */
    sigset_t all, server_mask;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &server_mask);
    pid_t pid = fork();
    if (pid == 0)
        serve_child(s, rq, e, fds, nfds, parent);
    int r = pid < 0 ? mp__errno() : pid;
    sigprocmask(SIG_SETMASK, &server_mask, NULL);
    return r;
}

/*
 * One request on a client's channel.  Returns 0 to keep the channel, or a
 * negative code to drop it (EOF, or a stream that cannot be trusted).  A
 * request that is well formed but cannot be served is answered with its
 * error and the channel is kept.
 */
static int serve_request(struct server *s, const struct client *cl)
{
    int conn = cl->fd;
    struct mp__fs_request rq;
    int *fds = malloc(MP__FS_FDS_PER_MSG * sizeof *fds);
    size_t got = 0;
    if (fds == NULL)
        return -ENOMEM;
    int r = mp__recv_with_fds(conn, &rq, sizeof rq, fds, MP__FS_FDS_PER_MSG, &got);
    if (r == 0 && (rq.magic != MP__FS_MAGIC || rq.version != MP__FS_VERSION || rq.nfds < 0 ||
                   rq.nfds > MP__FS_MAX_FDS || got > (size_t)rq.nfds))
        r = -EPROTO;
    size_t nfds = r == 0 ? (size_t)rq.nfds : 0;
    struct mp__fs_fd *e = NULL;
    if (r == 0 && nfds > MP__FS_FDS_PER_MSG) {
        int *more = realloc(fds, nfds * sizeof *fds);
        if (more == NULL)
            r = -ENOMEM;
        else
            fds = more;
    }
    if (r == 0) {
        e = malloc((nfds ? nfds : 1) * sizeof *e);
        r = e == NULL ? -ENOMEM : 0;
    }
    if (r == 0 && nfds > 0)
        r = mp__read_full(conn, e, nfds * sizeof *e);
    while (r == 0 && got < nfds)
        r = mp__recv_with_fds(conn, NULL, 0, fds, nfds, &got);
    if (r != 0) {
        for (size_t i = 0; i < got; i++)
            close(fds[i]);
        free(fds);
        free(e);
        return r;
    }

    int arena_fd;
    mp__heap_info(&arena_fd, NULL, NULL);
    r = request_check(&rq, e, nfds, arena_fd);
    int sp[2] = {-1, -1};
    if (r == 0 && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0)
        r = mp__errno();
    pid_t pid = -1;
    if (r == 0) {
        pid = fork_child(s, &rq, e, fds, nfds, cl->pidfd);
        if (pid < 0)
            r = pid;
    }
    for (size_t i = 0; i < got; i++)
        close(fds[i]);
    free(fds);
    free(e);
    if (r != 0) {
        if (sp[0] >= 0) {
            close(sp[0]);
            close(sp[1]);
        }
        return tell(conn, r, 0, -1, -1) == 0 ? 0 : -EPIPE;
    }
    /* The child is ours until we reap it, so this pidfd names it. */
    int pidfd = mp__sentinel_pidfd_ok() ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
    r = tell(conn, 0, pid, sp[1], pidfd);
    close(sp[1]);
    if (pidfd >= 0)
        close(pidfd);
    bool daemon = mp__process_dies_with_parent((const mp_process *)(uintptr_t)rq.process);
    if (waiting_add(s, pid, sp[0], cl, daemon) != 0)
        close(sp[0]); /* the requester reads EOF: exit code 255 */
    return r == 0 ? 0 : -EPIPE;
}

static int client_add(struct server *s, int fd, int pidfd, pid_t pid)
{
    if (s->nclients == s->capclients) {
        size_t cap = s->capclients ? s->capclients * 2 : 16;
        struct client *c = realloc(s->clients, cap * sizeof *c);
        if (c == NULL)
            return -ENOMEM;
        s->clients = c;
        s->capclients = cap;
    }
    s->clients[s->nclients++] = (struct client){fd, pidfd, ++s->next_client, pid};
    return 0;
}

/*
 * A pidfd of the process at the other end of conn, for its children's
 * mp_parent_process().  The pid comes from SO_PEERCRED; it names the
 * client for sure if the connection is still up once the pidfd is open
 * (had the client died and its pid been reused, its end would be closed).
 */
static int peer_pidfd(int conn, pid_t *pid)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    *pid = 0;
    if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.pid <= 0)
        return -1;
    *pid = cred.pid;
    if (!mp__sentinel_pidfd_ok())
        return -1;
    int fd = (int)syscall(SYS_pidfd_open, cred.pid, 0);
    if (fd < 0)
        return -1;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    struct pollfd p = {.fd = conn, .events = POLLRDHUP};
    if (poll(&p, 1, 0) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A new connection: authenticated, it becomes a channel. */
static void accept_client(struct server *s)
{
    int conn = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0)
        return;
    /* A client that stalls mid-message cannot hold the server forever. */
    struct timeval tv = {REQUEST_TIMEOUT_S, 0};
    setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (mp__forkserver_auth(conn, s->fs, true) != 0) {
        close(conn); /* not one of ours */
        return;
    }
    pid_t pid;
    int pidfd = peer_pidfd(conn, &pid);
    if (client_add(s, conn, pidfd, pid) != 0) {
        close(conn);
        if (pidfd >= 0)
            close(pidfd);
    }
}

/*
 * A channel closed: if the process at its other end died (rather than
 * dropped the channel), kill the daemonic children it asked for, as the
 * kernel's parent-death signal does for fork and spawn.  Its files close
 * a moment before it is seen dead, hence the short wait.
 */
static void client_gone(struct server *s, const struct client *cl)
{
    bool any = false;
    for (size_t i = 0; i < s->nw && !any; i++)
        any = s->w[i].client == cl->id && s->w[i].daemon;
    if (!any)
        return;
    bool dead;
    if (cl->pidfd >= 0) {
        struct pollfd p = {.fd = cl->pidfd, .events = POLLIN};
        dead = poll(&p, 1, 100) > 0;
    } else {
        mp__deadline d;
        mp__deadline_init(&d, 0.1);
        while (!(dead = cl->pid > 0 && kill(cl->pid, 0) != 0 && errno == ESRCH) &&
               !mp__deadline_expired(&d))
            poll(NULL, 0, 5);
    }
    for (size_t i = 0; dead && i < s->nw; i++)
        if (s->w[i].client == cl->id && s->w[i].daemon)
            kill(s->w[i].pid, SIGKILL); /* not reaped yet: the pid is its */
}

/* Reap every ended child and report its status to its requester. */
static void reap_children(struct server *s)
{
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid <= 0)
            return;
        int32_t code = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
        for (size_t i = 0; i < s->nw; i++) {
            if (s->w[i].pid != pid)
                continue;
            mp__write_full(s->w[i].status_fd, &code, sizeof code);
            close(s->w[i].status_fd);
            s->w[i] = s->w[--s->nw];
            break;
        }
    }
}

static void drain(int fd)
{
    char buf[512];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

_Noreturn void mp__forkserver_main(struct mp__forkserver *fs, int listen_fd, int alive_fd,
                                   const mp__fnref *preload)
{
    struct server *sv = &server;
    *sv = (struct server){.fs = fs, .listen_fd = listen_fd, .alive_fd = alive_fd};
    prctl(PR_GET_NAME, sv->comm);
    prctl(PR_SET_NAME, "mp-forkserver");
    if (server_signals(sv) != 0)
        _exit(1);

    void (*fn)(void) = mp__fnref_resolve(preload);
    if (fn != NULL)
        fn();
    mp__flush_std_streams();

    for (;;) {
        size_t np = 3 + sv->nclients;
        if (np > sv->cappoll) {
            struct pollfd *q = realloc(sv->poll, np * 2 * sizeof *q);
            if (q == NULL)
                break;
            sv->poll = q;
            sv->cappoll = np * 2;
        }
        struct pollfd *p = sv->poll;
        p[0] = (struct pollfd){.fd = sv->alive_fd, .events = POLLIN};
        p[1] = (struct pollfd){.fd = sv->sig_fd, .events = POLLIN};
        p[2] = (struct pollfd){.fd = sv->listen_fd, .events = POLLIN};
        for (size_t i = 0; i < sv->nclients; i++)
            p[3 + i] = (struct pollfd){.fd = sv->clients[i].fd, .events = POLLIN};
        int n = poll(p, (nfds_t)np, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[0].revents)
            break; /* every holder of the alive pipe has gone */
        if (p[1].revents) {
            drain(sv->sig_fd);
            reap_children(sv);
        }
        /* Channels from the end, so that dropping one (moving the last
         * into its place) leaves the ones still to visit in place. */
        for (size_t i = np - 3; i-- > 0;) {
            if (!p[3 + i].revents)
                continue;
            if (serve_request(sv, &sv->clients[i]) != 0) {
                client_gone(sv, &sv->clients[i]);
                close(sv->clients[i].fd);
                if (sv->clients[i].pidfd >= 0)
                    close(sv->clients[i].pidfd);
                sv->clients[i] = sv->clients[--sv->nclients];
            }
        }
        if (p[2].revents & POLLIN)
            accept_client(sv);
    }
    unlink(fs->path);
    rmdir(fs->dir);
    _exit(0);
}

/* ======================================================================
 * Starting a server, and finding the caller's
 * ====================================================================== */

static struct mp__forkserver *mine;
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_prepare(void)
{
    pthread_mutex_lock(&start_lock);
}

static void atfork_release(void)
{
    pthread_mutex_unlock(&start_lock);
}

static void register_atfork(void)
{
    /* start_lock is held while the settings lock is taken (spawning the
     * server): the settings' handler must be registered first, so that
     * fork takes the two in the same order (see internal/spawn.h). */
    mp__settings_atfork_register();
    pthread_atfork(atfork_prepare, atfork_release, atfork_release);
}

void mp__forkserver_atfork_register(void)
{
    pthread_once(&atfork_once, register_atfork);
}

static void find_inherited(int fd, const void *owner, void *ctx)
{
    if (mp__obj_check(owner, FORKSERVER_MAGIC) == 0 &&
        ((const struct mp__forkserver *)owner)->alive_w == fd)
        *(const void **)ctx = owner;
}

/* The server this process may use: its own, or one it was handed. */
static struct mp__forkserver *current(void)
{
    if (mine != NULL && mp__fd_owned(mine->alive_w, mine))
        return mine;
    const void *found = NULL;
    mp__fd_foreach(find_inherited, &found);
    mine = (struct mp__forkserver *)found;
    return mine;
}

/*
 * The directory for the socket: $TMPDIR if its path is short enough, with a
 * random name.  Both names are reserved with the resource tracker before
 * they are made (only this family can make a name inside the directory),
 * so that a kill at any moment, of the program's process group included,
 * leaves neither behind.
 */
static int make_dir(struct mp__forkserver *fs, struct mp__tracker **t)
{
    const char *tmp = getenv("TMPDIR");
    /* room for "/libmp-fs-" + 12 digits and "/sock" in sun_path */
    if (tmp == NULL || *tmp == '\0' || strlen(tmp) > 60)
        tmp = "/tmp";
    for (int tries = 0;; tries++) {
        uint64_t rnd;
        if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
            return mp__errno();
        snprintf(fs->dir, sizeof fs->dir, "%s/libmp-fs-%012llx", tmp,
                 (unsigned long long)(rnd & 0xffffffffffffull));
        int r = mp__tracker_reserve(MP__TRACK_DIR, fs->dir, t);
        if (r != 0)
            return r;
        if (mkdir(fs->dir, 0700) == 0)
            break;
        r = mp__errno();
        mp__tracker_unregister(*t, MP__TRACK_DIR, fs->dir);
        if (r != -EEXIST || tries >= 16)
            return r;
    }
    snprintf(fs->path, sizeof fs->path, "%s/sock", fs->dir);
    int r = mp__tracker_confirm(*t, MP__TRACK_DIR, fs->dir, -1);
    if (r == 0)
        r = mp__tracker_reserve(MP__TRACK_SOCKET, fs->path, t);
    if (r != 0) {
        rmdir(fs->dir);
        mp__tracker_unregister(*t, MP__TRACK_DIR, fs->dir);
    }
    return r;
}

static int make_listener(struct mp__forkserver *fs, struct mp__tracker *t)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return mp__errno();
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strcpy(a.sun_path, fs->path);
    /* The directory is 0700, so nobody else can reach the socket in the
     * moment before its chmod. */
    int r = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || chmod(fs->path, 0600) != 0 ||
        listen(fd, SOMAXCONN) != 0)
        r = mp__errno();
    if (r == 0)
        r = mp__tracker_confirm(t, MP__TRACK_SOCKET, fs->path, -1);
    if (r != 0) {
        close(fd);
        return r;
    }
    return fd;
}

/* Start a server; the caller holds start_lock. */
static int start_server(struct mp__forkserver **out)
{
    struct mp__forkserver *fs = mp__obj_new(sizeof *fs, FORKSERVER_MAGIC);
    if (fs == NULL)
        return -ENOMEM;
    int alive[2] = {-1, -1};
    int lfd = -1;
    int r = 0;
    /* The server removes both names when it ends; the tracker does if the
     * server is killed (a kill of the program's process group). */
    struct mp__tracker *t = NULL;
    if (getrandom(fs->token, sizeof fs->token, 0) != (ssize_t)sizeof fs->token)
        r = mp__errno();
    if (r == 0)
        r = make_dir(fs, &t);
    bool named = r == 0;
    if (r == 0) {
        lfd = make_listener(fs, t);
        if (lfd < 0)
            r = lfd;
    }
    if (r == 0 && pipe2(alive, O_CLOEXEC) != 0) {
        r = mp__errno();
        alive[0] = alive[1] = -1;
    }
    if (r == 0) {
        fs->alive_w = alive[1];
        mp__spawn_req req = {
            .kind = MP__SPAWN_FORKSERVER,
            .object = fs,
            .method = MP__START_FORKSERVER,
            .pass_registered = false,
            .sentinel_w = -1,
            .listen_fd = lfd,
            .alive_fd = alive[0],
        };
        pid_t pid;
        r = mp__spawn_start(&req, &pid);
        if (r == 0) {
            /* The intermediate process exits once the server is forked. */
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        }
    }
    if (r != 0 && named) {
        unlink(fs->path);
        rmdir(fs->dir);
        mp__tracker_unregister(t, MP__TRACK_SOCKET, fs->path);
        mp__tracker_unregister(t, MP__TRACK_DIR, fs->dir);
    }
    if (lfd >= 0)
        close(lfd);
    if (alive[0] >= 0)
        close(alive[0]);
    if (r == 0)
        r = mp__fd_register(alive[1], fs);
    if (r != 0) {
        if (alive[1] >= 0)
            close(alive[1]);
        mp__obj_free(fs);
        return r;
    }
    *out = fs;
    return 0;
}

int mp__forkserver_get(struct mp__forkserver **fs, bool restart)
{
    mp__forkserver_atfork_register();
    pthread_mutex_lock(&start_lock);
    struct mp__forkserver *cur = current();
    int r = 0;
    if (cur != NULL && restart && cur == *fs) {
        /* It refused a connection: it is gone.  Forget it here (other
         * processes that hold it find out on their own). */
        mp__fd_unregister(cur->alive_w);
        close(cur->alive_w);
        mine = NULL;
        cur = NULL;
    }
    if (cur == NULL) {
        r = start_server(&cur);
        if (r == 0)
            mine = cur;
    }
    pthread_mutex_unlock(&start_lock);
    if (r == 0)
        *fs = cur;
    return r;
}

int mp__forkserver_connect(struct mp__forkserver *fs)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return mp__errno();
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strcpy(a.sun_path, fs->path);
    int r;
    do
        r = connect(fd, (struct sockaddr *)&a, sizeof a);
    while (r != 0 && errno == EINTR);
    if (r != 0) {
        r = mp__errno();
        close(fd);
        return r;
    }
    return fd;
}
