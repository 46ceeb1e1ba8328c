/*
 * libmp/context.h: start methods and contexts (Python's context.py, with
 * the module functions of spawn.py and forkserver.py that a program calls).
 *
 *   Python                                   C
 *   ctx = get_context('spawn')               mp_context *ctx = mp_get_context("spawn");
 *   ctx = get_context()                      mp_get_context(NULL)
 *   ctx.Process(target=f, ...)               mp_process_new(.ctx = ctx, .target = f, ...)
 *   ctx.Queue(), ctx.Lock(), ctx.Pool() ...  mp_X_new(.ctx = ctx, ...)
 *   ctx.get_start_method()                   mp_context_get_start_method(ctx)
 *   ctx.get_context(method)                  mp_context_get_context(ctx, method)
 *   ctx.set_start_method(method, force)      mp_context_set_start_method(ctx, method, force)
 *   multiprocessing (the DefaultContext)     ctx NULL in those two calls
 *   set_start_method('spawn')                mp_set_start_method("spawn", false)
 *   set_start_method('spawn', force=True)    mp_set_start_method("spawn", true)
 *   get_start_method(allow_none=False)       mp_get_start_method(false)
 *   get_all_start_methods()                  mp_get_all_start_methods(list, n)
 *   set_executable(path)                     mp_set_executable(path)
 *   set_forkserver_preload(['mod'])          mp_set_forkserver_preload(fn)
 *   forkserver.ensure_running()              mp_forkserver_ensure_running()
 *   RuntimeError('context has already        MP_EINVAL
 *     been set'), ValueError (bad name)
 *
 * The three start methods:
 *
 *   "fork"        the child is a fork(2) of the caller (the default).
 *   "spawn"       the child is a fresh image of the running program, started
 *                 with posix_spawn(3); libmp takes it over once the
 *                 program's constructors have run, before main(), maps the
 *                 shared arena at the same address, and runs the target.
 *                 main() never runs in the child.  A fully static program
 *                 calls mp_spawn_main() at the top of main() for this.
 *   "forkserver"  the child is forked by a small single-threaded server
 *                 process, itself spawned on first use, so a program with
 *                 threads running can start processes safely.
 *
 * Under all three, every libmp object and every block from mp_shared_alloc
 * passed to the child (as the argument bytes or through another shared
 * object) is valid there unchanged.  docs/context.md tells what the child
 * inherits under each method and where libmp departs from Python.
 *
 * The default method: the one given to mp_set_start_method, else the one
 * named by the environment variable MP_START_METHOD ("fork", "spawn" or
 * "forkserver"), else "fork".  An unknown value of MP_START_METHOD is an
 * error reported (MP_EINVAL) by every call that needs the default: a
 * process created or started with .ctx NULL, mp_get_context(NULL),
 * mp_get_start_method(false).  As in Python, the default is fixed the first
 * time it is used; a child starts with its parent's method as its default.
 */
#ifndef LIBMP_CONTEXT_H
#define LIBMP_CONTEXT_H

#include <stdbool.h>

#include "common.h"

MP_BEGIN_DECLS

/*
 * mp_get_context: the context of a start method (Python's get_context()).
 *
 * method  "fork", "spawn", "forkserver", or NULL for the default method
 *         (which fixes the default, as Python does: a later
 *         mp_set_start_method without force fails); or "mpi", the
 *         context of pools whose workers are MPI processes (libmp/mpi.h;
 *         not a start method: a Process refuses it with MP_EINVAL).
 *
 * Returns a context owned by libmp (never freed; one per method, the same
 * pointer in every process of the family under every start method, so it
 * may be stored in shared objects), or NULL with mp_last_error() set:
 * MP_EINVAL for an unknown name, or for NULL when MP_START_METHOD names no
 * method; -ENOTSUP for "mpi" when libmp was built without MPI; the error
 * met creating the shared arena.  Thread-safe.
 */
MP_EXTERN mp_context *mp_get_context(const char *method);

/*
 * mp_context_get_start_method: the name of ctx's method ("fork", "spawn",
 * "forkserver", or "mpi"); NULL if ctx is not a context (NULL included).
 */
MP_EXTERN const char *mp_context_get_start_method(const mp_context *ctx);

/*
 * mp_context_get_context: a context's get_context(method) (Python's
 * BaseContext.get_context and DefaultContext.get_context).
 *
 * ctx     a context from mp_get_context, or NULL for the default context
 *         (the multiprocessing module itself);
 * method  "fork", "spawn", "forkserver", or NULL.
 *
 * With method NULL: ctx itself, or for ctx NULL the default method's
 * context (fixing the default, as mp_get_context(NULL)).  With a name:
 * that method's context, as mp_get_context(method), whatever ctx is.
 * Returns NULL with mp_last_error() set: MP_EINVAL for a ctx libmp did not
 * make or an unknown name, and mp_get_context's errors.  Thread-safe.
 */
MP_EXTERN mp_context *mp_context_get_context(const mp_context *ctx, const char *method);

/*
 * mp_context_set_start_method: a context's set_start_method (Python's
 * DefaultContext.set_start_method and BaseContext.set_start_method).
 *
 * ctx NULL is the default context: the same as
 * mp_set_start_method(method, force).  A context of a method (from
 * mp_get_context) cannot change its method: MP_EINVAL, as Python raises
 * ValueError('cannot set start method of concrete context'); so is a ctx
 * libmp did not make.
 */
MP_EXTERN int mp_context_set_start_method(const mp_context *ctx, const char *method,
                                          bool force);

/*
 * mp_set_start_method: set the default start method (Python's
 * set_start_method(method, force)).
 *
 * method  "fork", "spawn" or "forkserver"; NULL with force clears the
 *         choice (the next use picks MP_START_METHOD or "fork" again);
 *         NULL without force fixes the default as it would be picked.
 * force   replace a default that is already fixed.
 *
 * Returns 0; MP_EINVAL for an unknown name, or when the default is already
 * fixed (by an earlier call, or by a use of the default) and force is false
 * (Python's RuntimeError 'context has already been set').  The setting is
 * per process: children start with their parent's method as default.
 * Thread-safe.
 */
MP_EXTERN int mp_set_start_method(const char *method, bool force);

/*
 * mp_get_start_method: the name of the default start method (Python's
 * get_start_method(allow_none)).
 *
 * allow_none  if true and the default is not fixed yet, return NULL
 *             without fixing it.
 *
 * Returns "fork", "spawn" or "forkserver" (a static string), or NULL: when
 * allow_none and nothing is fixed yet, or with mp_last_error() set to
 * MP_EINVAL when MP_START_METHOD names no method.  Without allow_none the
 * default is fixed, as in Python.
 */
MP_EXTERN const char *mp_get_start_method(bool allow_none);

/*
 * mp_get_all_start_methods: the start methods this platform supports, the
 * platform's default first (Python 3.14's get_all_start_methods()): the
 * method MP_START_METHOD names, else "fork", then the others in the order
 * fork, spawn, forkserver.  As in Python, mp_set_start_method does not
 * change the order.  With MP_START_METHOD unset this is Python 3.12 and
 * 3.13's list on Linux: fork, spawn, forkserver.
 *
 * list  receives up to n static strings (may be NULL when n is 0).
 *
 * Returns the number of methods (3 on Linux; may exceed n, only n are
 * stored), or MP_EINVAL for list NULL with n > 0.  Does not fix the
 * default.  An unknown MP_START_METHOD leaves "fork" first.
 */
MP_EXTERN int mp_get_all_start_methods(const char **list, size_t n);

/*
 * mp_set_executable: the program that spawn and forkserver start (Python's
 * set_executable()).  By default it is /proc/self/exe, the running program
 * itself.
 *
 * path  an executable file that is the same program (the same build: its
 *       GNU build-id, when it has one, must match the running program's),
 *       for instance a copy of it or a path to it that the child should
 *       see in argv[0]'s place; NULL restores the default.  The string is
 *       copied.
 *
 * Returns 0; MP_EINVAL for a path of PATH_MAX bytes or more or an empty
 * one; -errno from access(path, X_OK) (-ENOENT, -EACCES).  A program that
 * is not the same build is refused when a child is started (-ENOEXEC from
 * mp_process_start).  Per process; a running forkserver is not affected.
 */
MP_EXTERN int mp_set_executable(const char *path);

/*
 * mp_spawn_main: call it first thing in main, unconditionally:
 *
 *   int main(int argc, char **argv) { mp_spawn_main(argc, argv); ... }
 *
 * In a child that libmp's spawn or forkserver start method started, it
 * takes the process over (maps the shared arena, runs the target, or
 * becomes the forkserver) and never returns; everywhere else it records
 * that this program has a start-up hook and returns 0.  A spawned child
 * is recognised by an authenticated hand-over (a socket from its parent, a
 * random token), never by an environment variable alone.
 *
 * A dynamically linked program does not need it: libmp takes a spawned
 * child over on its own once every constructor of the program has run,
 * just before main (docs/context.md, "How spawn works").  It is needed in
 * a fully static program (cc -static ... libmp.a), where nothing runs
 * between the constructors and main; without it mp_process_start under
 * spawn and forkserver returns MP_ESPAWNMAIN.  Calling it in any other
 * program is harmless.
 *
 * argc, argv  main's; argv is kept (not copied) as the argument vector of
 *             the children this program spawns (Python's sys.argv).
 *
 * Returns 0 (or does not return).  Call it before any thread starts.
 */
MP_EXTERN int mp_spawn_main(int argc, char **argv);

/*
 * mp_set_forkserver_preload: a function the forkserver runs once when it
 * starts, before it forks any child (the C form of Python's
 * set_forkserver_preload(module_names): whatever it loads or initialises
 * is inherited by every child the server forks).
 *
 * fn  a function of the program or of a library it links (not of a
 *     library loaded with dlopen, which the server does not have); NULL
 *     removes it.  It must not leave threads running: the server forks.
 *
 * Returns 0, or MP_EINVAL when fn is in no loaded module.  Takes effect
 * for a server started after the call (as in Python); per process.
 */
MP_EXTERN int mp_set_forkserver_preload(void (*fn)(void));

/*
 * mp_forkserver_ensure_running: start the caller's forkserver now if it
 * has none (Python's forkserver.ensure_running()), rather than at the first
 * start of a forkserver process.  The server lives until every process
 * that can use it (the one that started it, its children, their children)
 * has ended.
 *
 * Also connects the caller to it (each process that starts forkserver
 * children keeps one authenticated connection).
 *
 * Returns 0, or the error met starting or reaching the server (-errno;
 * -EADDRINUSE, -ENOEXEC as for a spawned process; MP_EAUTH).  The caller
 * then holds two more file descriptors (the server's "alive" pipe and the
 * connection), kept until it exits; a forked child holds the first only.
 */
MP_EXTERN int mp_forkserver_ensure_running(void);

MP_END_DECLS

#endif /* LIBMP_CONTEXT_H */
