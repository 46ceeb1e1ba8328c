/*
 * internal/popen.h: start methods (Python's popen_fork.py,
 * popen_spawn_posix.py, popen_forkserver.py) behind one small interface.
 *
 * process.c owns the Process object and its state machine; a start method
 * only creates the child, tells whether and how it ended, signals it, and
 * releases what it holds.  Every start method hands its child to
 * mp__process_bootstrap(), which runs the target and exits.
 *
 * The per-child state of a start method (struct mp__popen) is kept inside the
 * shared Process object so that it needs no allocation, but it is meaningful
 * only in the process that started the child: process.c calls these
 * operations only there.
 */
#ifndef LIBMP_INTERNAL_POPEN_H
#define LIBMP_INTERNAL_POPEN_H

#include "internal/mp.h"

enum mp__start_method {
    MP__START_NONE = 0,
    MP__START_FORK = 1,
    MP__START_SPAWN = 2,
    MP__START_FORKSERVER = 3,
    MP__START_COUNT
};

/* What the sentinel fd is. */
enum mp__sentinel_kind {
    MP__SENTINEL_NONE = 0,
    MP__SENTINEL_PIDFD = 1, /* pidfd_open(2): readable once the child ended */
    MP__SENTINEL_PIPE = 2,  /* read end of a pipe the child holds open */
};

typedef struct mp__popen {
    uint8_t method; /* enum mp__start_method */
    uint8_t kind;   /* enum mp__sentinel_kind */
    int sentinel;   /* fd readable when the child has ended, or -1 */
    int aux;        /* a second fd a start method may need, or -1 */
    pid_t pid;      /* the child */
    int exitcode;   /* valid once ended is set */
    uint32_t ended; /* set (release) once the exit status is known */
    uint32_t busy;  /* forkserver: a thread is reading the status */
} mp__popen;

typedef struct mp__popen_ops {
    const char *name; /* "fork", "spawn", "forkserver" */

    /*
     * Create the child that runs p, fill *po (method, sentinel, pid) and
     * return 0, or a negative code with nothing left behind (no child, no
     * fd).  The child calls mp__process_bootstrap(p), which never returns.
     * Standard streams are already flushed; the arena exists.
     */
    int (*launch)(mp_process *p, mp__popen *po);

    /*
     * Wait until the child ends or d expires (d->nowait: do not block):
     * 0 with *exitcode set (the exit status, or -N for signal N) once it
     * has ended and is reaped; MP_ETIMEDOUT while it runs.  Retries EINTR
     * against d.  Safe to call from several threads at once: each caller
     * that returns 0 sees the same exit code.
     */
    int (*wait)(mp__popen *po, const mp__deadline *d, int *exitcode);

    /* Send signal sig: 0, or -errno (an ended child is not an error). */
    int (*send_signal)(mp__popen *po, int sig);

    /* Release the fds of *po (the child must have ended or be abandoned). */
    void (*close)(mp__popen *po);
} mp__popen_ops;

/* The operations of a start method, or NULL if it is not built in. */
const mp__popen_ops *mp__popen_ops_get(int method);

/*
 * The start method of a Process created with context ctx (NULL: the
 * default context, which this fixes, as Python's Process._Popen consults
 * and fixes the default context at start()).  Returns the method (> 0) or
 * MP_EINVAL for a context libmp does not know, or for NULL when
 * MP_START_METHOD names no method.  In context.c.
 */
int mp__popen_method_for(const mp_context *ctx);

/* ---- the fork start method (popen_fork.c) ------------------------------- */

extern const mp__popen_ops mp__popen_fork_ops;

/* ---- spawn (popen_spawn.c) and forkserver (popen_forkserver.c) ----------- */

extern const mp__popen_ops mp__popen_spawn_ops;
extern const mp__popen_ops mp__popen_forkserver_ops;

/*
 * Helpers for start methods whose children are children of the caller
 * (fork and spawn).
 *
 * mp__sentinel_pidfd_ok: whether pidfd_open(2) works here (checked once).
 * mp__child_wait: the wait operation for a direct child, by pidfd or pid.
 * mp__child_send_signal: by pidfd_send_signal(2) or kill(2); ESRCH is 0.
 * mp__child_close: close the sentinel and aux fds.
 */
bool mp__sentinel_pidfd_ok(void);
int mp__child_wait(mp__popen *po, const mp__deadline *d, int *exitcode);
int mp__child_send_signal(mp__popen *po, int sig);
void mp__child_close(mp__popen *po);

/*
 * mp__sentinel_reaped: pidfd_open found no such process, so the child has
 * already ended and was reaped behind libmp's back (SIGCHLD ignored, a
 * waitpid(-1) elsewhere) before its parent could open the pidfd.  Gives
 * *po a sentinel that is readable at once (a pipe with no writer) and the
 * exit code of any child reaped so, 255.  0, or -errno.
 */
int mp__sentinel_reaped(mp__popen *po);

/* Tests set this to force the pipe sentinel where pidfds work. */
extern bool mp__sentinel_force_pipe;

/* For tests: forget whether pidfds work (the next start probes again). */
void mp__sentinel_pidfd_forget(void);

/*
 * In the child after fork, the write end of the pipe that serves as the
 * parent's sentinel for this process (-1 with a pidfd).  A child started
 * from this one closes it first, so that the parent's sentinel does not
 * wait for grandchildren.
 */
void mp__child_set_own_sentinel(int fd);

/* ---- from process.c, for every start method ------------------------------ */

/*
 * Run p in the calling process, which is a new child: become p (current
 * process, empty child list, fresh finalizers and name counter), log
 * "child process calling self.run()", copy the argument bytes to private
 * memory, run the target, flush stdout and stderr, run the exit function
 * (finalizers, daemonic children terminated, the others joined), log
 * "process exiting with exitcode N" and _exit(N).  Never returns.
 *
 * The parent's descriptors of its other children (registered in the fd
 * table with a Process object as owner) are closed.  after_fork: true
 * under fork, where the callbacks of mp_register_after_fork run; false in
 * a fresh image (spawn, forkserver).
 */
_Noreturn void mp__process_bootstrap(mp_process *p, bool after_fork);

/* The argument bytes kept in the arena (for a start method to inspect). */
const void *mp__process_arg_shared(const mp_process *p, size_t *size);

/*
 * 0 if p is a live process object whose target (or run function) resolves
 * in the calling process, MP_EINVAL otherwise.  A spawned child and the
 * forkserver check it before they take the process on, so that a target in
 * a library the parent loaded with dlopen makes mp_process_start fail
 * rather than the child.
 */
int mp__process_check_target(const mp_process *p);

/*
 * True when owner (an entry of the fd table) is a Process object: its fds
 * (sentinels) mean something only in the process that holds them and are
 * never passed to a spawned or forkserver child.
 */
bool mp__process_fd_owner(const void *owner);

/*
 * In a child that is not a direct child of its parent process (forkserver),
 * before mp__process_bootstrap: fd is a pidfd of the parent (or -1 if the
 * kernel has none), which mp_parent_process() adopts; the child does not
 * judge its parent by getppid().  Used by the next bootstrap only.
 */
void mp__process_set_parent_pidfd(int fd);

/*
 * Signal masks as 64 bits (bit n-1 for signal n).  mp__sigmask_capture:
 * the calling thread's mask.  mp__sigmask_apply: make it the calling
 * thread's mask.  Every child runs its target with the mask of the thread
 * that called mp_process_start (taken there), unless its creator set
 * another with mp__process_set_sigmask before the start (a Pool gives its
 * workers the mask of the thread that made the pool): 0, or MP_EINVAL if p
 * is not the caller's unstarted process.
 */
uint64_t mp__sigmask_capture(void);
void mp__sigmask_apply(uint64_t bits);
int mp__process_set_sigmask(mp_process *p, uint64_t bits);

/*
 * A daemonic child is killed (SIGKILL) when its parent ends, however it
 * ends: under fork and spawn by the parent-death signal, if the main
 * thread started it; under forkserver by the server.
 * mp__process_watches_parent exempts p (before its start: 0, or MP_EINVAL
 * as above): it watches its parent itself and cleans up (a manager's
 * server).  mp__process_dies_with_parent, for the forkserver: whether p is
 * daemonic and not exempt.
 */
int mp__process_watches_parent(mp_process *p);
bool mp__process_dies_with_parent(const mp_process *p);

#endif /* LIBMP_INTERNAL_POPEN_H */
