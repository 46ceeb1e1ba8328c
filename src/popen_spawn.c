/*
 * popen_spawn.c: the spawn start method (Python's popen_spawn_posix.py).
 *
 * The child is a fresh image of the program (spawn.c starts it and takes it
 * over before main).  It is a direct child of the caller, so the sentinel,
 * wait and signals are those of the fork start method: a pidfd where the
 * kernel has one, otherwise a pipe whose write end the child keeps.
 */
#include "internal/mp.h"
#include "internal/popen.h"
#include "internal/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

static int spawn_launch(mp_process *p, mp__popen *po)
{
    int pfd[2] = {-1, -1};
    bool pidfd = mp__sentinel_pidfd_ok();
    if (!pidfd && pipe2(pfd, O_CLOEXEC) != 0)
        return mp__errno();
    mp__spawn_req req = {
        .kind = MP__SPAWN_PROCESS,
        .object = p,
        .method = MP__START_SPAWN,
        .pass_registered = true,
        .sentinel_w = pfd[1],
        .listen_fd = -1,
        .alive_fd = -1,
    };
    pid_t pid;
    int r = mp__spawn_start(&req, &pid);
    if (pfd[1] >= 0)
        close(pfd[1]);
    if (r != 0) {
        if (pfd[0] >= 0)
            close(pfd[0]);
        return r;
    }
    po->method = MP__START_SPAWN;
    po->pid = pid;
    if (!pidfd) {
        po->sentinel = pfd[0];
        po->kind = MP__SENTINEL_PIPE;
        return 0;
    }
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0 && errno == ESRCH)
        return mp__sentinel_reaped(po);
    if (fd < 0) {
        r = mp__errno();
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return r;
    }
    po->sentinel = fd;
    po->kind = MP__SENTINEL_PIDFD;
    return 0;
}

const mp__popen_ops mp__popen_spawn_ops = {
    .name = "spawn",
    .launch = spawn_launch,
    .wait = mp__child_wait,
    .send_signal = mp__child_send_signal,
    .close = mp__child_close,
};
