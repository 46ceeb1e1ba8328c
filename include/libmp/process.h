/*
 * libmp/process.h: processes, as multiprocessing.Process.
 *
 *   Python                                   C
 *   p = Process(target=f, args=(a,),         p = mp_process_new(.target = f,
 *               name='w', daemon=True)             .arg = &a, .arg_size = sizeof a,
 *                                                  .name = "w", .daemon = true);
 *   class W(Process): def run(self): ...     mp_process_new(.run = w_run, ...)
 *   p.start()                                mp_process_start(p)
 *   p.join(timeout)                          mp_process_join(p, timeout)
 *   p.is_alive()                             mp_process_is_alive(p)
 *   p.terminate() / kill() / interrupt()     mp_process_terminate / _kill / _interrupt
 *   p.close()                                mp_process_close(p)
 *   p.pid, p.name, p.daemon, p.ident         mp_process_pid / _name / _daemon
 *   p.exitcode                               mp_process_exitcode(p, &code)
 *   p.sentinel                               mp_process_sentinel(p)
 *   repr(p)                                  mp_process_repr(p, buf, size)
 *   current_process(), parent_process()      mp_current_process(), mp_parent_process()
 *   p.authkey / p.authkey = key              mp_process_authkey(p, buf, size) /
 *                                            mp_process_set_authkey(p, key, len)
 *   active_children()                        mp_active_children(list, n)
 *   cpu_count()                              mp_cpu_count()
 *
 * A process object lives in the shared arena, like every libmp object, so
 * the pointer is valid in every process of the family; but as in Python,
 * only the process that created a process object may start it, and only
 * that process may then join, poll, signal or close it (anyone else gets
 * MP_EINVAL).  Other processes may read its name, daemon flag, pid and,
 * once its creator has seen it end, its exit code.
 *
 * When any process (the main one or a child) exits normally, by returning
 * from main, calling exit(), or returning from its target, libmp does what
 * Python's atexit handler does: runs the finalizers (util.h), terminates
 * its daemonic children, and joins all its other children.
 *
 * C++ has no compound literals (before C++20, see common.h): fill a
 * zero-initialised struct and call the _opts function, e.g.
 *     mp_process_options o = {};
 *     o.target = worker;
 *     ... = mp_process_new_opts(&o);
 */
#ifndef LIBMP_PROCESS_H
#define LIBMP_PROCESS_H

#include <stdbool.h>

#include "common.h"

MP_BEGIN_DECLS

typedef struct mp_process mp_process;

/*
 * The target of a process: called in the child with a pointer to the child's
 * own copy of the argument bytes (NULL when there are none; the copy is
 * malloc'd, so suitably aligned for any type) and their size.  Changes to
 * the copy stay in the child, as with Python's pickled arguments.  Its
 * return value is the child's exit code (Python's sys.exit(n)); as with
 * _exit(2), only its low 8 bits reach the parent.  Returning is the
 * normal way out; a target that calls exit() instead also runs every
 * atexit handler the child inherited from its parent.
 */
typedef int (*mp_target_fn)(void *arg, size_t arg_size);

/*
 * The C form of subclassing Process and overriding run(): called in the
 * child with the process object itself, from which the argument bytes
 * (mp_process_arg) and the name are read.  Its return value is the exit code.
 */
typedef int (*mp_run_fn)(mp_process *self);

typedef struct mp_process_options {
    size_t struct_size;  /* sizeof: the macros set it; 0 is the 0.1 layout (common.h) */
    mp_target_fn target; /* the function to run (or .run) */
    mp_run_fn run;       /* instead of .target: run(self) */
    const void *arg;     /* bytes copied to the child (may be NULL) */
    size_t arg_size;     /* their size */
    const char *name;    /* NULL: "Process-N" as Python names it */
    bool daemon;         /* terminated when the parent exits */
    mp_context *ctx;     /* start method; NULL: the default context */
} mp_process_options;

/*
 * mp_process_new: create a process object (not started yet).
 *
 * Takes designated initializers for the fields of mp_process_options:
 *     mp_process_new(.target = f, .arg = &x, .arg_size = sizeof x)
 * Exactly one of .target and .run must be given.  The argument bytes and the
 * name are copied (the bytes into the shared arena).  Names longer than 255
 * bytes are refused.  Without a name the process is called "Process-N",
 * N counting the process objects created by the calling process from 1;
 * in a child named "Process-2" they are "Process-2:1", "Process-2:2", ...
 * (Python's _identity).
 *
 * Returns the object, owned by the caller (mp_process_free), or NULL with
 * mp_last_error() set: MP_EINVAL for no target, both target and run, a
 * target that is not a function of a loaded module (spawn and forkserver
 * cannot reach it), .arg NULL with .arg_size > 0, a name that is too long,
 * or a .ctx libmp did not make; -ENAMETOOLONG when the default name
 * would exceed 63 bytes of identity (processes nested about 30 deep);
 * -ENOMEM.  Fork-safe: the object may be created before or after a fork.
 */
#define mp_process_new(...) mp_process_new_opts(MP__OPTS(mp_process_options, __VA_ARGS__))
MP_EXTERN mp_process *mp_process_new_opts(const mp_process_options *opts);

/*
 * mp_process_start: start the process (Python's start()).
 *
 * The start method is .ctx's (context.h), or the default method for .ctx
 * NULL (which this fixes, as Python's start() does).
 *
 * Returns 0; MP_EINVAL if p is NULL or freed, already started, closed,
 * created by another process (Python: "can only start a process object
 * created by current process"), or if the calling process is daemonic
 * (Python: "daemonic processes are not allowed to have children"), or for
 * .ctx NULL when MP_START_METHOD names no method; -errno if the fork or
 * spawn failed.  Under spawn and forkserver also (docs/context.md):
 * MP_EINVAL when the target is not in the child's image (a function of a
 * library loaded with dlopen); -EADDRINUSE when the arena's address is
 * taken in the spawned image; -ENOEXEC when mp_set_executable names another
 * build or a program that never answers (60 s); -ECHILD when the spawned
 * program ended before answering; MP_EAUTH when a new forkserver, started
 * after the old one failed the handshake, fails it too; -EMFILE / -ENFILE
 * when no fd is left for the child's
 * sentinel (or the forkserver's answer).  After any error no child of p
 * is left running (one that had started is killed and reaped, or had
 * already ended) and p can be started again.  The child runs its target with the
 * signal mask of the calling thread (taken here), whatever the start
 * method; a daemonic child dies with this process however it ends
 * (docs/process.md says when).  Standard output and error (the stdio
 * streams) are flushed before the child is created, as Python does.  Finished children are reaped first
 * (Python's _cleanup()).  Thread-safe: of two threads starting the same
 * object, one gets MP_EINVAL.  Threads running in the caller are safe with
 * spawn and forkserver; with fork the child holds only the calling thread.
 */
MP_EXTERN int mp_process_start(mp_process *p);

/*
 * mp_process_join: wait for the process to end (Python's join(timeout)).
 *
 * timeout  seconds (MP_FOREVER, 0, or positive; see common.h).
 *
 * Returns 0 when the process has ended (its exit code is then known),
 * MP_ETIMEDOUT when it is still running at the timeout (Python returns None
 * in both cases and the caller checks exitcode; C says which), MP_EINVAL
 * for NULL, a process not started, a process that is not a child of the
 * caller, the caller itself, a bad timeout, or a closed process.  Joining an
 * ended process again returns 0 at once.  A signal interrupting the wait is
 * retried against the same deadline.  In a child, joining
 * mp_parent_process() waits for the parent to end, as Python allows.
 */
MP_EXTERN int mp_process_join(mp_process *p, double timeout);

/*
 * mp_process_is_alive: 1 while the process runs, 0 before start and after it
 * ended (it is reaped here if it has ended, as Python does), or MP_EINVAL
 * (invalid or closed object, or a process the caller did not create).
 * The caller's own object (mp_current_process) is always alive, and
 * mp_parent_process() answers whether the parent still runs.
 */
MP_EXTERN int mp_process_is_alive(mp_process *p);

/*
 * mp_process_terminate / mp_process_kill / mp_process_interrupt: send
 * SIGTERM, SIGKILL or SIGINT (Python 3.14's interrupt()).
 *
 * Returns 0 (also when the process has already ended and is not reaped, as
 * Python ignores that case), MP_EINVAL for NULL, not started, closed, or not
 * a child of the caller; -errno from kill(2) otherwise.
 */
MP_EXTERN int mp_process_terminate(mp_process *p);
MP_EXTERN int mp_process_kill(mp_process *p);
MP_EXTERN int mp_process_interrupt(mp_process *p);

/*
 * mp_process_exitcode: the exit code (Python's exitcode).
 *
 * code  receives the target's return value, or -N if the process was ended
 *       by signal N (a crash in the target reports its signal, for example
 *       -11 for SIGSEGV).
 *
 * Returns 0 and sets *code when the process has ended; MP_ETIMEDOUT when it
 * has not ended yet or was never started (Python's None; *code untouched);
 * MP_EINVAL for NULL arguments, a freed or closed object.  Does not block;
 * in the creator it reaps the process if it has ended.  In another process
 * it reports the code once the creator has seen the process end.  If the
 * child was reaped behind libmp's back (SIGCHLD set to SIG_IGN, a
 * waitpid(-1) elsewhere), the code is 255.
 */
MP_EXTERN int mp_process_exitcode(mp_process *p, int *code);

/*
 * mp_process_close: release the process's OS resources (Python's close()):
 * its sentinel fd.  Returns 0 (also when already closed, or never
 * started); MP_EINVAL if the process is still running (Python's
 * ValueError), p is invalid, p is the current or parent process, or the
 * caller did not create p.  Afterwards every operation but
 * mp_process_name, mp_process_daemon, mp_process_repr and mp_process_free
 * returns MP_EINVAL.
 */
MP_EXTERN int mp_process_close(mp_process *p);

/*
 * mp_process_free: release the object.  A started child that is still
 * running is not killed: it is left running, and libmp keeps what it needs
 * to reap it (the sentinel, the memory) until it ends; it is reaped by the
 * next mp_process_start, mp_active_children, or at exit (where it is
 * joined, or terminated first if daemonic), as Python keeps a dropped
 * Process in its list of children.  In the child itself the object stays
 * readable through mp_current_process.  NULL is a no-op, and so is freeing
 * the current or parent process object, or a running child from a process
 * other than its creator.  Afterwards the pointer is invalid; calls with it
 * return MP_EINVAL as long as the memory has not been reused.
 */
MP_EXTERN void mp_process_free(mp_process *p);

/*
 * Accessors.  mp_process_pid returns the pid (0 before start; for the
 * caller's own object, getpid(); MP_EINVAL for an invalid or closed
 * object); mp_process_name the name (a string owned by the object, valid
 * until mp_process_free; "" for an invalid object);
 * mp_process_daemon 1 or 0 (MP_EINVAL for an invalid object).
 *
 * mp_process_set_daemon changes the flag before start, in the creator only
 * (MP_EINVAL after start, as Python asserts).  mp_process_set_name renames
 * a process before start (creator only), or renames the caller's own
 * process at any time (Python's current_process().name = ...); the name is
 * shared, so the parent sees the new name too.  Both return 0 or MP_EINVAL
 * (also for a NULL or over-long name).
 *
 * mp_process_sentinel returns an fd, owned by the object, that becomes
 * readable when the process ends (a pidfd where the kernel has one, else
 * the read end of a pipe the child holds), for use with poll(2); it is
 * valid only in the creator (MP_EINVAL elsewhere, before start and after
 * close).  For mp_parent_process() it is the parent's pidfd (MP_EINVAL if
 * the kernel has none).
 *
 * mp_process_arg gives the argument bytes (in the child: the child's private
 * copy; elsewhere the shared copy, which must not be written) and their
 * size (size may be NULL); NULL and size 0 if there are none or p is
 * invalid.
 */
MP_EXTERN pid_t mp_process_pid(const mp_process *p);
MP_EXTERN const char *mp_process_name(const mp_process *p);
MP_EXTERN int mp_process_daemon(const mp_process *p);
MP_EXTERN int mp_process_set_name(mp_process *p, const char *name);
MP_EXTERN int mp_process_set_daemon(mp_process *p, bool daemon);
MP_EXTERN int mp_process_sentinel(const mp_process *p);
MP_EXTERN void *mp_process_arg(const mp_process *p, size_t *size);

/* The longest authkey a process carries. */
#define MP_AUTHKEY_MAX 256

/*
 * mp_process_authkey: copy p's authentication key (Python's p.authkey).
 * The main program's key is 32 random bytes drawn when libmp is loaded;
 * a child's is the key of the process that created its object, as it was
 * at mp_process_new (or as mp_process_set_authkey changed it before
 * start).  For mp_current_process() it is the caller's key, for
 * mp_parent_process() the key the caller inherited.  It is the default
 * authkey of managers (mp_manager_new), as in Python; Listeners and
 * Clients, as in Python, have none unless given one.
 *
 * buf, size  receive the key; buf NULL with size 0 asks only its length.
 *
 * Returns the key's length (0 to MP_AUTHKEY_MAX), MP_ETOOSHORT when size
 * is less (nothing copied), or MP_EINVAL for an invalid p or buf NULL
 * with size > 0.  Thread-safe.
 *
 * mp_process_set_authkey: set p's key (Python's p.authkey = key; the
 * bytes are copied).  For mp_current_process() it changes the caller's
 * key at any time, in the caller only (its children created later get the
 * new one); for a process not started yet, by its creator, the key that
 * child will have.  Returns 0, or MP_EINVAL for an invalid p, key NULL
 * with len > 0, len > MP_AUTHKEY_MAX, or another process object (started,
 * someone else's, the parent's).
 */
MP_EXTERN int mp_process_authkey(const mp_process *p, void *buf, size_t size);
MP_EXTERN int mp_process_set_authkey(mp_process *p, const void *key, size_t len);

/*
 * mp_process_repr: Python's repr(p), in the form Python 2 to 3.6 printed:
 * "<Process(Process-1, initial)>", "started", "stopped", "stopped[SIGTERM]"
 * (ended by a signal), "stopped[1]" (non-zero exit code), "closed", with
 * " daemon" appended for a daemonic process.  Like Python 2 it does not
 * poll: a process is "started" until a join, is_alive or exitcode saw it
 * end.  Writes at most size bytes with a terminating NUL, as snprintf.
 *
 * Returns the length of the full text (as snprintf: compare with size to
 * detect truncation), or MP_EINVAL for an invalid object or buf NULL with
 * size > 0.
 */
MP_EXTERN int mp_process_repr(const mp_process *p, char *buf, size_t size);

/*
 * mp_current_process: the process object of the caller (Python's
 * current_process()).  In the main program it is named "MainProcess"; in a
 * child it is the object the parent started.  Owned by libmp (freeing it
 * does nothing).  NULL only if the shared arena cannot be created.
 */
MP_EXTERN mp_process *mp_current_process(void);

/*
 * mp_parent_process: the parent's process object (Python's
 * parent_process()), or NULL in the main process.  Owned by libmp and
 * local to the calling child (each child has its own); its pid and name
 * may be read, mp_process_is_alive answers whether the parent still runs,
 * mp_process_join waits for it to end and mp_process_sentinel gives its
 * pidfd.  The rest (start, signals, close) returns MP_EINVAL.
 */
MP_EXTERN mp_process *mp_parent_process(void);

/*
 * mp_active_children: the children of the caller that are still running
 * (Python's active_children()); finished children are reaped first.
 * Children whose object the caller freed are reaped too but not listed.
 *
 * list  receives up to n pointers (may be NULL when n is 0).
 *
 * Returns the number of running children (which may exceed n: only n are
 * stored), or MP_EINVAL for list NULL with n > 0.
 */
MP_EXTERN int mp_active_children(mp_process **list, size_t n);

/*
 * mp_cpu_count: the number of CPUs online in the system (Python's
 * cpu_count(), sysconf(_SC_NPROCESSORS_ONLN)), at least 1.
 */
MP_EXTERN int mp_cpu_count(void);

MP_END_DECLS

#endif /* LIBMP_PROCESS_H */
