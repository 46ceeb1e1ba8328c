/*
 * forkserver.c: the fork server (Python's forkserver.py).
 *
 * A program that uses the forkserver start method starts, on first use, a
 * server: a fresh image of the program started with spawn (so it holds no
 * thread, lock or fd of the program), which runs the preload hook once and
 * then forks one child per request.  The server is a grandchild of the
 * process that started it (spawn.c forks it off), so nobody has to reap it.
 *
 * Rendezvous: a Unix stream socket in a private directory (mkdtemp, mode
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
    int conn;
};

struct server {
    struct mp__forkserver *fs;
    int listen_fd;
    int alive_fd;
    int sig_fd;
    sigset_t old_mask;
    char comm[16]; /* the program's name, given back to the children */
    struct waiting *w;
    size_t nw, capw;
};

static int tell(int conn, int code, pid_t pid, int pidfd)
{
    struct mp__fs_reply rep = {.code = code, .pid = pid, .has_pidfd = pidfd >= 0};
    struct iovec iov = {&rep, sizeof rep};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (pidfd >= 0) {
        memset(&u, 0, sizeof u);
        m.msg_control = u.buf;
        m.msg_controllen = sizeof u.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pidfd, sizeof(int));
    }
    ssize_t n;
    do
        n = sendmsg(conn, &m, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof rep ? 0 : -EPIPE;
}

/* Receive nfds fds in batches; fds[] gets them (-1 where none came). */
static int recv_fds(int conn, int *fds, size_t nfds)
{
    size_t got = 0;
    while (got < nfds) {
        char byte;
        struct iovec iov = {&byte, 1};
        union {
            char buf[CMSG_SPACE(MP__FS_FDS_PER_MSG * sizeof(int))];
            struct cmsghdr align;
        } u;
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1,
                           .msg_control = u.buf, .msg_controllen = sizeof u.buf};
        ssize_t n = recvmsg(conn, &m, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n == 0 ? MP_EEOF : mp__errno();
        size_t batch = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                if (got < nfds)
                    fds[got++] = fd;
                else
                    close(fd);
                batch++;
            }
        }
        if (batch == 0 || (m.msg_flags & MSG_CTRUNC))
            return MP_EINVAL;
    }
    return 0;
}

/*
 * In the forked child: put the fds at their numbers, close everything else
 * the server had open (its socket, pipe, signalfd, other children's
 * connections), keeping the arena's fd.  Returns the parent's pidfd (at
 * some free number) or -1.
 */
static int child_place_fds(const struct mp__fs_fd *e, int *fds, size_t nfds, int arena_fd)
{
    int base = arena_fd + 1;
    for (size_t i = 0; i < nfds; i++)
        if (e[i].target >= base)
            base = e[i].target + 1;
    /* Copies above every target first, so that no dup below can overwrite
     * an fd still to be placed; then everything below is closed. */
    int arena_tmp = fcntl(arena_fd, F_DUPFD_CLOEXEC, base);
    if (arena_tmp < 0)
        _exit(127);
    for (size_t i = 0; i < nfds; i++) {
        fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, base);
        if (fds[i] < 0)
            _exit(127);
    }
    mp__close_fds(0, (unsigned)base - 1);
    if (dup3(arena_tmp, arena_fd, O_CLOEXEC) < 0)
        _exit(127);
    int parent_tmp = -1;
    for (size_t i = 0; i < nfds; i++) {
        if (e[i].flags & MP__FS_FD_PARENT) {
            parent_tmp = fds[i];
            continue;
        }
        int flags = (e[i].flags & MP__FS_FD_CLOEXEC) ? O_CLOEXEC : 0;
        if (dup3(fds[i], e[i].target, flags) < 0)
            _exit(127);
    }
    /* Once every target is in place: the lowest free number. */
    int parent = parent_tmp >= 0 ? fcntl(parent_tmp, F_DUPFD_CLOEXEC, 3) : -1;
    /* Everything from base up goes (the copies, the server's fds), but for
     * the parent's pidfd if it landed there.  The fds below base that are
     * open now are exactly the targets and the arena's. */
    if (parent >= base) {
        mp__close_fds((unsigned)base, (unsigned)parent - 1);
        mp__close_fds((unsigned)parent + 1, ~0u);
    } else {
        mp__close_fds((unsigned)base, ~0u);
    }
    return parent;
}

static _Noreturn void serve_child(struct server *s, const struct mp__fs_request *rq,
                                  const struct mp__fs_fd *e, int *fds, size_t nfds)
{
    int arena_fd;
    mp__heap_info(&arena_fd, NULL, NULL);
    signal(SIGINT, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    sigprocmask(SIG_SETMASK, &s->old_mask, NULL);
    prctl(PR_SET_NAME, s->comm);
    int parent = child_place_fds(e, fds, nfds, arena_fd);
    for (size_t i = 0; i < nfds; i++)
        if ((e[i].flags & MP__FS_FD_REGISTER) && !(e[i].flags & MP__FS_FD_PARENT))
            mp__fd_register(e[i].target, (const void *)(uintptr_t)e[i].owner);
    mp__log_state_set(rq->log_level, rq->log_stderr != 0);
    mp__process_set_parent_pidfd(parent);
    mp__process_bootstrap((mp_process *)(uintptr_t)rq->process, true);
}

static int waiting_add(struct server *s, pid_t pid, int conn)
{
    if (s->nw == s->capw) {
        size_t cap = s->capw ? s->capw * 2 : 16;
        struct waiting *w = realloc(s->w, cap * sizeof *w);
        if (w == NULL)
            return -ENOMEM;
        s->w = w;
        s->capw = cap;
    }
    s->w[s->nw++] = (struct waiting){pid, conn};
    return 0;
}

/* Check a request against what the server can do: 0 or a code. */
static int request_check(const struct mp__fs_request *rq, const struct mp__fs_fd *e,
                         size_t nfds, int arena_fd)
{
    if (mp__process_check_target((const mp_process *)(uintptr_t)rq->process) != 0)
        return MP_EINVAL;
    int prev = -1;
    size_t parents = 0;
    for (size_t i = 0; i < nfds; i++) {
        if (e[i].flags & MP__FS_FD_PARENT) {
            parents++;
            continue;
        }
        if (e[i].target <= prev || e[i].target == arena_fd)
            return MP_EINVAL; /* negative, unsorted, repeated, or the arena's */
        prev = e[i].target;
    }
    return parents <= 1 ? 0 : MP_EINVAL;
}

/* One request on conn.  Returns with conn closed or kept in s->w. */
static void serve_request(struct server *s, int conn)
{
    struct timeval tv = {REQUEST_TIMEOUT_S, 0};
    setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct mp__fs_request rq;
    if (mp__forkserver_auth(conn, s->fs, true) != 0 ||
        mp__read_full(conn, &rq, sizeof rq) != 0 || rq.magic != MP__FS_MAGIC) {
        close(conn); /* not one of ours: no answer */
        return;
    }
    if (rq.version != MP__FS_VERSION || rq.nfds < 0 || rq.nfds > MP__FS_MAX_FDS) {
        tell(conn, MP_EINVAL, 0, -1);
        close(conn);
        return;
    }
    size_t nfds = (size_t)rq.nfds;
    struct mp__fs_fd *e = malloc((nfds ? nfds : 1) * sizeof *e);
    int *fds = malloc((nfds ? nfds : 1) * sizeof *fds);
    int r = e != NULL && fds != NULL ? 0 : -ENOMEM;
    for (size_t i = 0; fds != NULL && i < nfds; i++)
        fds[i] = -1;
    if (r == 0 && nfds > 0)
        r = mp__read_full(conn, e, nfds * sizeof *e);
    if (r == 0)
        r = recv_fds(conn, fds, nfds);
    int arena_fd;
    mp__heap_info(&arena_fd, NULL, NULL);
    if (r == 0)
        r = request_check(&rq, e, nfds, arena_fd);
    pid_t pid = -1;
    if (r == 0) {
        /* Every signal blocked across the fork: one sent to the child
         * before it has restored the default dispositions (the server
         * ignores SIGINT) stays pending instead of being lost. */
        sigset_t all, server_mask;
        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, &server_mask);
        pid = fork();
        if (pid == 0)
            serve_child(s, &rq, e, fds, nfds);
        if (pid < 0)
            r = mp__errno();
        sigprocmask(SIG_SETMASK, &server_mask, NULL);
    }
    for (size_t i = 0; fds != NULL && i < nfds; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    free(e);
    if (r != 0) {
        tell(conn, r, 0, -1);
        close(conn);
        return;
    }
    /* The child is ours until we reap it, so this pidfd names it. */
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    tell(conn, 0, pid, pidfd);
    if (pidfd >= 0)
        close(pidfd);
    if (waiting_add(s, pid, conn) != 0)
        close(conn); /* the requester sees EOF: exit code 255 */
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
            mp__write_full(s->w[i].conn, &code, sizeof code);
            close(s->w[i].conn);
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

_Noreturn void mp__forkserver_main(struct mp__forkserver *fs, int listen_fd,
                                   int alive_fd, const mp__fnref *preload)
{
    struct server s = {.fs = fs, .listen_fd = listen_fd, .alive_fd = alive_fd};
    prctl(PR_GET_NAME, s.comm);
    prctl(PR_SET_NAME, "mp-forkserver");
    /* Ctrl-C in a terminal reaches the whole foreground group: the server
     * leaves the program to decide, as Python's does. */
    signal(SIGINT, SIG_IGN);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &s.old_mask);
    sigdelset(&s.old_mask, SIGCHLD);
    s.sig_fd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (s.sig_fd < 0)
        _exit(1);

    void (*fn)(void) = mp__fnref_resolve(preload);
    if (fn != NULL)
        fn();
    mp__flush_std_streams();

    for (;;) {
        struct pollfd p[3] = {
            {.fd = s.alive_fd, .events = POLLIN},
            {.fd = s.sig_fd, .events = POLLIN},
            {.fd = s.listen_fd, .events = POLLIN},
        };
        int n = poll(p, 3, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[0].revents)
            break; /* every holder of the alive pipe has gone */
        if (p[1].revents) {
            drain(s.sig_fd);
            reap_children(&s);
        }
        if (p[2].revents & POLLIN) {
            int conn = accept4(s.listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (conn >= 0)
                serve_request(&s, conn);
        }
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
    pthread_atfork(atfork_prepare, atfork_release, atfork_release);
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

/* The directory for the socket: $TMPDIR if its path is short enough. */
static int make_dir(struct mp__forkserver *fs)
{
    const char *tmp = getenv("TMPDIR");
    /* room for "/libmp-fs-XXXXXX" and "/sock" in sun_path */
    if (tmp == NULL || *tmp == '\0' || strlen(tmp) > 60)
        tmp = "/tmp";
    snprintf(fs->dir, sizeof fs->dir, "%s/libmp-fs-XXXXXX", tmp);
    if (mkdtemp(fs->dir) == NULL)
        return mp__errno();
    snprintf(fs->path, sizeof fs->path, "%s/sock", fs->dir);
    return 0;
}

static int make_listener(struct mp__forkserver *fs)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return mp__errno();
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strcpy(a.sun_path, fs->path);
    /* The directory is 0700, so nobody else can reach the socket in the
     * moment before its chmod. */
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || chmod(fs->path, 0600) != 0 ||
        listen(fd, SOMAXCONN) != 0) {
        int r = mp__errno();
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
    if (getrandom(fs->token, sizeof fs->token, 0) != (ssize_t)sizeof fs->token)
        r = mp__errno();
    if (r == 0)
        r = make_dir(fs);
    if (r == 0) {
        lfd = make_listener(fs);
        if (lfd < 0) {
            r = lfd;
            rmdir(fs->dir);
        }
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
        } else {
            unlink(fs->path);
            rmdir(fs->dir);
        }
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
    pthread_once(&atfork_once, register_atfork);
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

int mp_forkserver_ensure_running(void)
{
    struct mp__forkserver *fs = NULL;
    return mp__forkserver_get(&fs, false);
}
