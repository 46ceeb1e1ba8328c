/*
 * popen_fork.c: the fork start method (Python's popen_fork.py), and the
 * sentinel, wait and signal helpers for any child that is a direct child
 * of the caller.
 *
 * Sentinel: a pidfd (pidfd_open(2), Linux 5.3) where the kernel has one; it
 * becomes readable when the child ends and is immune to pid reuse.  Without
 * it, a pipe whose write end only the child holds: it reads EOF when the
 * child ends.  A process that forks outside libmp (system(3), a raw fork)
 * can keep such a write end open after the child ended, so waits on a pipe
 * sentinel also look at the child's status every 100 ms.
 */
#include "internal/mp.h"
#include "internal/popen.h"
#include "internal/util.h"
#include "internal/linux.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#define IDTYPE_PIDFD ((idtype_t)3) /* P_PIDFD, Linux 5.4 */
#define PIPE_SLICE_MS 100

bool mp__sentinel_force_pipe;

static int sys_pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* 0: not known yet, 1: works, 2: does not. */
static atomic_int pidfd_state;
static atomic_int waitid_pidfd_state;

void mp__sentinel_pidfd_forget(void)
{
    atomic_store(&pidfd_state, 0);
}

bool mp__sentinel_pidfd_ok(void)
{
    if (mp__sentinel_force_pipe)
        return false;
    int s = atomic_load_explicit(&pidfd_state, memory_order_relaxed);
    if (s == 0) {
        bool off = mp__feature_disabled(MP__FEAT_PIDFD);
        int fd = off ? -1 : sys_pidfd_open(getpid());
        /* No fd to spare says nothing of the kernel: no verdict yet (the
         * caller's pipe fails the same way, before anything starts). */
        if (!off && fd < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOMEM))
            return false;
        s = fd >= 0 ? 1 : 2;
        if (fd >= 0)
            close(fd);
        atomic_store_explicit(&pidfd_state, s, memory_order_relaxed);
    }
    if (s != 1)
        mp__fallback_taken(MP__FEAT_PIDFD); /* a pipe, or a pid, instead */
    return s == 1;
}

/* ---- the child's own pipe sentinel ------------------------------------------ */

static int own_sentinel = -1;

void mp__child_set_own_sentinel(int fd)
{
    if (own_sentinel >= 0 && own_sentinel != fd)
        close(own_sentinel);
    own_sentinel = fd;
}

/* ---- creating the sentinel around fork ------------------------------------ */

/* Before the fork: a pipe if there will be no pidfd, else {-1, -1}. */
static int sentinel_prepare(int pfd[2])
{
    pfd[0] = pfd[1] = -1;
    if (mp__sentinel_pidfd_ok())
        return 0;
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return mp__errno();
    return 0;
}

/* The child could not be given a sentinel: it must not run unwatched. */
static void abandon_child(pid_t pid)
{
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

int mp__sentinel_reaped(mp__popen *po)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return mp__errno();
    close(pfd[1]);
    po->sentinel = pfd[0];
    po->kind = MP__SENTINEL_PIPE;
    __atomic_store_n(&po->exitcode, 255, __ATOMIC_RELAXED);
    __atomic_store_n(&po->ended, 1, __ATOMIC_RELEASE);
    return 0;
}

/* In the parent after the fork. */
static int sentinel_finish(mp__popen *po, pid_t pid, int pfd[2])
{
    po->pid = pid;
    if (pfd[0] < 0) {
        int fd = sys_pidfd_open(pid);
        if (fd < 0 && errno == ESRCH)
            return mp__sentinel_reaped(po);
        if (fd < 0) {
            int r = mp__errno();
            abandon_child(pid);
            return r;
        }
        po->sentinel = fd;
        po->kind = MP__SENTINEL_PIDFD;
        return 0;
    }
    close(pfd[1]);
    po->sentinel = pfd[0];
    po->kind = MP__SENTINEL_PIPE;
    return 0;
}

/* ---- launch ----------------------------------------------------------------- */

static int fork_launch(mp_process *p, mp__popen *po)
{
    int pfd[2];
    int r = sentinel_prepare(pfd);
    if (r != 0)
        return r;
    pid_t pid = fork();
    if (pid < 0) {
        r = mp__errno();
        if (pfd[0] >= 0) {
            close(pfd[0]);
            close(pfd[1]);
        }
        return r;
    }
    if (pid == 0) {
        if (pfd[0] >= 0)
            close(pfd[0]);
        mp__child_set_own_sentinel(pfd[1]);
        mp__process_bootstrap(p, true);
    }
    po->method = MP__START_FORK;
    return sentinel_finish(po, pid, pfd);
}

/* ---- status ----------------------------------------------------------------- */

static int child_waitid(const mp__popen *po, siginfo_t *si, int flags)
{
    for (;;) {
        memset(si, 0, sizeof *si);
        int r;
        if (po->kind == MP__SENTINEL_PIDFD &&
            atomic_load_explicit(&waitid_pidfd_state, memory_order_relaxed) != 2) {
            r = waitid(IDTYPE_PIDFD, (id_t)po->sentinel, si, flags);
            if (r < 0 && errno == EINVAL) {
                /* A kernel with pidfd_open but without P_PIDFD (5.3). */
                atomic_store_explicit(&waitid_pidfd_state, 2, memory_order_relaxed);
                continue;
            }
        } else {
            r = waitid(P_PID, (id_t)po->pid, si, flags);
        }
        if (r == 0 || errno != EINTR)
            return r == 0 ? 0 : mp__errno();
    }
}

/*
 * Has the child ended?  0 with *exitcode once it has (and it is reaped),
 * MP_ETIMEDOUT while it runs.  The status is read first without reaping
 * (WNOWAIT) and published in *po before the reap, so that another thread
 * whose waitid fails with ECHILD because of that reap finds the code.
 */
static int child_poll(mp__popen *po, int *exitcode)
{
    if (__atomic_load_n(&po->ended, __ATOMIC_ACQUIRE)) {
        *exitcode = __atomic_load_n(&po->exitcode, __ATOMIC_RELAXED);
        return 0;
    }
    siginfo_t si;
    int r = child_waitid(po, &si, WEXITED | WNOHANG | WNOWAIT);
    /* ECHILD: reaped already.  ESRCH: the same, seen through a pidfd by
     * kernels that report a reaped pidfd so. */
    if (r == -ECHILD || r == -ESRCH) {
        if (__atomic_load_n(&po->ended, __ATOMIC_ACQUIRE)) {
            *exitcode = __atomic_load_n(&po->exitcode, __ATOMIC_RELAXED);
            return 0;
        }
        /* Reaped behind libmp's back (SIGCHLD ignored, waitpid(-1)). */
        __atomic_store_n(&po->exitcode, 255, __ATOMIC_RELAXED);
        __atomic_store_n(&po->ended, 1, __ATOMIC_RELEASE);
        *exitcode = 255;
        return 0;
    }
    if (r != 0)
        return r;
    if (si.si_pid == 0)
        return MP_ETIMEDOUT;
    int code = si.si_code == CLD_EXITED ? si.si_status : -si.si_status;
    /* Threads that join the same child may all get here (WNOWAIT): each
     * stores the same code, atomically (TSan). */
    __atomic_store_n(&po->exitcode, code, __ATOMIC_RELAXED);
    __atomic_store_n(&po->ended, 1, __ATOMIC_RELEASE);
    child_waitid(po, &si, WEXITED | WNOHANG);
    *exitcode = code;
    return 0;
}

int mp__child_wait(mp__popen *po, const mp__deadline *d, int *exitcode)
{
    bool eof = false;
    for (;;) {
        int r = child_poll(po, exitcode);
        if (r != MP_ETIMEDOUT)
            return r;
        if (d->nowait || mp__deadline_expired(d))
            return MP_ETIMEDOUT;
        int ms = mp__deadline_poll_ms(d);
        if (po->kind != MP__SENTINEL_PIDFD && (ms < 0 || ms > PIPE_SLICE_MS))
            ms = PIPE_SLICE_MS;
        if (eof && (ms < 0 || ms > 1))
            ms = 1; /* the pipe is closed: the child is in its last steps */
        struct pollfd pfd = {.fd = eof ? -1 : po->sentinel, .events = POLLIN};
        int n = poll(&pfd, 1, ms);
        if (n < 0 && errno != EINTR)
            return mp__errno();
        if (n > 0 && po->kind == MP__SENTINEL_PIPE)
            eof = true;
    }
}

int mp__child_send_signal(mp__popen *po, int sig)
{
    if (__atomic_load_n(&po->ended, __ATOMIC_ACQUIRE))
        return 0;
    int r = -1;
    if (po->kind == MP__SENTINEL_PIDFD)
        r = (int)syscall(SYS_pidfd_send_signal, po->sentinel, sig, NULL, 0);
    /* Without pidfds, or with a pidfd but not the call (valgrind before
     * 3.20 refuses it; the forkserver's pidfds come from a server that
     * runs outside valgrind): by pid. */
    if (po->kind != MP__SENTINEL_PIDFD || (r != 0 && errno == ENOSYS))
        r = kill(po->pid, sig);
    if (r == 0 || errno == ESRCH)
        return 0;
    return mp__errno();
}

void mp__child_close(mp__popen *po)
{
    if (po->sentinel >= 0)
        close(po->sentinel);
    if (po->aux >= 0)
        close(po->aux);
    po->sentinel = -1;
    po->aux = -1;
}

const mp__popen_ops mp__popen_fork_ops = {
    .name = "fork",
    .launch = fork_launch,
    .wait = mp__child_wait,
    .send_signal = mp__child_send_signal,
    .close = mp__child_close,
};
