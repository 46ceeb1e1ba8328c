/*
 * libmp/util.h: logging, exit finalizers and after-fork hooks, as
 * multiprocessing.util.
 *
 *   Python                                   C
 *   multiprocessing.SUBDEBUG, logging.DEBUG  MP_LOG_SUBDEBUG, MP_LOG_DEBUG, ...
 *   log_to_stderr(level)                     mp_log_to_stderr(level)
 *   get_logger()                             mp_get_logger()
 *   logger.setLevel(l) / .level              mp_logger_set_level / _get_level
 *   logger.getEffectiveLevel()               mp_logger_effective_level
 *   logger.isEnabledFor(l)                   mp_logger_is_enabled_for
 *   logger.addHandler(h)                     mp_logger_set_handler (one handler)
 *   logger.log(l, msg, *args)                mp_logger_log(lg, l, fmt, ...)
 *   util.debug(msg) / info / sub_warning ... mp_log(MP_LOG_DEBUG, fmt, ...)
 *   logging.getLevelName(l)                  mp_log_level_name(l)
 *   util.Finalize(None, f, (a,), exitpriority=n)  mp_finalize(f, a, n)
 *   atexit.register(f, a) (run in children too)   mp_atexit(f, a)
 *   util.Finalize(obj, f, (a,), exitpriority=n)   mp_finalize_object(obj, f, a, n)
 *   util.Finalize(obj, f, (a,))  (no priority)    mp_finalize_object(obj, f, a,
 *                                                                    MP_NO_EXITPRIORITY)
 *   obj collected (the weakref callback)          mp_X_free(obj), mp_shared_free(obj), or
 *                                                 mp_finalize_object_freed(obj)
 *   finalizer() / .cancel() / .still_active()     mp_finalizer_run / _cancel /
 *                                                 _still_active
 *   util.register_after_fork(obj, f)         mp_register_after_fork(f, obj)
 *
 * The logger is the "multiprocessing" logger of Python: one per process.
 * log_to_stderr writes every record as
 *     [LEVEL/ProcessName] message
 * on standard error, in a single write(2) per record, so lines from several
 * processes never interleave within a line.  The library logs its own life
 * cycle with Python's wording and levels ("child process calling
 * self.run()", "process shutting down", "process exiting with exitcode 0",
 * ...).  The logger's settings (level, stderr handler) are per process and
 * are inherited by children, as in Python.
 */
#ifndef LIBMP_UTIL_H
#define LIBMP_UTIL_H

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>

#include "common.h"

MP_BEGIN_DECLS

/* Python's logging levels, plus the two multiprocessing adds. */
#define MP_LOG_NOTSET 0
#define MP_LOG_SUBDEBUG 5
#define MP_LOG_DEBUG 10
#define MP_LOG_INFO 20
#define MP_LOG_SUBWARNING 25
#define MP_LOG_WARNING 30
#define MP_LOG_ERROR 40
#define MP_LOG_CRITICAL 50

#if defined(__GNUC__)
#define MP__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define MP__PRINTF(f, a)
#endif

typedef struct mp_logger mp_logger;

/*
 * mp_get_logger: the logger used by libmp (Python's get_logger()).
 *
 * Returns a handle owned by libmp (never freed), the same in every process
 * of the family.  It designates the logger of the process that uses it: a
 * handle passed to another process acts on that process's logger, as a
 * Python logger unpickles to the child's own logger.  NULL with
 * mp_last_error() set only if the shared arena cannot be created (-ENOMEM).
 * Thread-safe and fork-safe.
 */
MP_EXTERN mp_logger *mp_get_logger(void);

/*
 * mp_log_to_stderr: turn on logging to standard error (Python's
 * log_to_stderr(level)).
 *
 * level  the new level of the logger, or MP_LOG_NOTSET (0) to leave it
 *        unchanged (Python's level=None).  A negative level leaves it
 *        unchanged too.
 *
 * Records at or above the logger's effective level are then written to fd 2
 * as "[LEVEL/ProcessName] message".  Calling it again does not add a second
 * handler (Python would print each record twice).  Returns the logger, or
 * NULL as mp_get_logger.
 */
MP_EXTERN mp_logger *mp_log_to_stderr(int level);

/*
 * mp_logger_set_level / mp_logger_get_level: the logger's own level
 * (Python's setLevel and .level).  MP_LOG_NOTSET means "not set": the
 * effective level is then WARNING, as Python's root logger gives it.
 * Any level >= 0 is accepted (custom levels as in Python).
 *
 * set_level returns 0, or MP_EINVAL for an invalid handle or a negative
 * level; get_level returns the level, or MP_EINVAL for an invalid handle.
 */
MP_EXTERN int mp_logger_set_level(mp_logger *lg, int level);
MP_EXTERN int mp_logger_get_level(const mp_logger *lg);

/*
 * mp_logger_effective_level: the level records are compared with
 * (Python's getEffectiveLevel()): the level, or WARNING when it is NOTSET.
 * MP_EINVAL for an invalid handle.
 *
 * mp_logger_is_enabled_for: 1 if a record at level would be emitted, 0 if
 * not, MP_EINVAL for an invalid handle.
 */
MP_EXTERN int mp_logger_effective_level(const mp_logger *lg);
MP_EXTERN int mp_logger_is_enabled_for(const mp_logger *lg, int level);

/*
 * A log handler (Python's logger.addHandler): called in the logging process
 * with the record's level, the name of the current process and the
 * formatted message (no trailing newline).  It may be called from any
 * thread, and from a forked child, so it should not take locks that a fork
 * can leave held.
 */
typedef void (*mp_log_handler_fn)(int level, const char *process_name, const char *message,
                                  void *ctx);

/*
 * mp_logger_set_handler: install fn as the logger's handler, in addition to
 * the stderr handler of mp_log_to_stderr; NULL removes it.  The handler and
 * ctx are pointers of the calling process: they are inherited by forked
 * children, but a spawned child starts without one.  Set it before other
 * threads log.  Returns 0, or MP_EINVAL for an invalid handle.
 */
MP_EXTERN int mp_logger_set_handler(mp_logger *lg, mp_log_handler_fn fn, void *ctx);

/*
 * mp_logger_log: log a printf-style message at level (Python's
 * logger.log(level, msg, *args)).  mp_log is the same on the libmp logger,
 * as multiprocessing.util's debug(), info(), sub_warning() ... helpers.
 *
 * A record below the effective level is dropped.  Otherwise it goes to the
 * stderr handler (if mp_log_to_stderr was called) and to the handler (if
 * one is set); with neither, records of WARNING and above are written to
 * standard error as the bare message (Python's "last resort" handler).
 * A message longer than 64 KiB is cut and ends with "...".
 *
 * Returns 0 (also when the record is dropped), or MP_EINVAL for an invalid
 * handle, a negative level or a NULL format.  Thread-safe, and safe in a
 * forked child of a multithreaded parent: it takes no lock and writes with
 * write(2).
 */
MP_EXTERN int mp_logger_log(mp_logger *lg, int level, const char *fmt, ...) MP__PRINTF(3, 4);
MP_EXTERN int mp_log(int level, const char *fmt, ...) MP__PRINTF(2, 3);
MP_EXTERN int mp_vlog(int level, const char *fmt, va_list ap) MP__PRINTF(2, 0);

/*
 * mp_log_level_name: the name Python prints for a level ("DEBUG",
 * "SUBWARNING", ...), or "Level N" for any other level, written into buf
 * (size bytes) when needed.  Returns a string that is either static or buf.
 */
MP_EXTERN const char *mp_log_level_name(int level, char *buf, size_t size);

/*
 * Finalizers (Python's util.Finalize with an exit priority).
 *
 * mp_finalize registers fn(arg) to run when the process exits normally:
 * those with priority >= 0 run first, before daemonic children are
 * terminated and the other children joined; the rest (negative priorities)
 * run after.  Within a group, higher priorities run first, and among equal
 * priorities the last registered runs first.  Each runs at most once.
 *
 * A finalizer belongs to the process that registered it: a child starts
 * with none (Python clears the registry in a new process).  fn and arg are
 * pointers of that process.
 *
 * Returns a finalizer id (> 0), MP_EINVAL for fn NULL or priority
 * MP_NO_EXITPRIORITY, or -ENOMEM.  Thread-safe.  Finalizers may register
 * or cancel finalizers.
 */
MP_EXTERN int mp_finalize(void (*fn)(void *arg), void *arg, int priority);

/* The exit priority of a finalizer that exit never runs (Python's None). */
#define MP_NO_EXITPRIORITY INT_MIN

/*
 * mp_finalize_object: a finalizer tied to the lifetime of obj (Python's
 * Finalize(obj, callback, args, exitpriority=...)).  fn(arg) runs once,
 * at whichever comes first: obj is freed in this process, or (if priority
 * is not MP_NO_EXITPRIORITY) the process exits normally, in the order
 * mp_finalize describes.  With MP_NO_EXITPRIORITY it runs only when obj
 * is freed (Python's exitpriority=None).
 *
 * obj is freed when this process frees it with the mp_X_free of a libmp
 * object or mp_shared_free of a block of mp_shared_alloc; any other
 * pointer (a malloc'd struct, for instance) is freed, for this purpose,
 * when the program calls mp_finalize_object_freed(obj).  fn runs before
 * the memory is released, but must treat obj as gone (Python's weak
 * reference is dead by then); it must not free obj again.  The id works
 * with mp_finalizer_run / _cancel / _still_active as for mp_finalize.
 *
 * Returns the id (> 0); MP_EINVAL for fn NULL, or obj NULL with
 * MP_NO_EXITPRIORITY (Python's TypeError "Without object, exitpriority
 * cannot be None"); -ENOMEM.  mp_finalize(fn, arg, n) is
 * mp_finalize_object(NULL, fn, arg, n).  Process-local and thread-safe,
 * as mp_finalize.
 */
MP_EXTERN int mp_finalize_object(const void *obj, void (*fn)(void *arg), void *arg,
                                 int priority);

/*
 * mp_finalize_object_freed: obj dies now: run, most recent first, every
 * finalizer of this process tied to obj, and unregister them.  Called by
 * libmp when it frees its objects and shared blocks; call it for other
 * pointers.  Returns how many ran (0 for NULL or none).
 */
MP_EXTERN int mp_finalize_object_freed(const void *obj);

/*
 * mp_finalizer_run: run finalizer id now, unless it already ran or was
 * cancelled, and unregister it (Python's finalizer()).  Returns 0, or
 * MP_EINVAL if id is not a registered finalizer of this process.
 *
 * mp_finalizer_cancel: unregister without running (Python's cancel()).
 * Returns 0, or MP_EINVAL as above.
 *
 * mp_finalizer_still_active: 1 while id is registered, 0 otherwise.
 */
MP_EXTERN int mp_finalizer_run(int id);
MP_EXTERN int mp_finalizer_cancel(int id);
MP_EXTERN int mp_finalizer_still_active(int id);

/*
 * mp_atexit: call fn(arg) when the calling process ends normally (Python's
 * atexit.register, with Python 3.12's rule for children, gh-83856): in
 * the main program at exit() or the return from main, before the exit
 * function above (as Python's handlers run before util._exit_function);
 * in a child started by libmp, under every start method, after its
 * target returned (or called exit) and the exit function ran.  The last
 * registered runs first; each runs once.  A child starts with none: the
 * parent's mp_atexit handlers never run in it (Python clears its atexit
 * registry in a child).  Not run after _exit, a signal or a crash.
 *
 * Plain C atexit() handlers: a child started by spawn or forkserver ends
 * with exit(), so those it registered (and those its program's
 * constructors registered in its fresh image) run; a fork child ends with
 * _exit(), since it would otherwise run its parent's inherited handlers:
 * there, use mp_atexit.  docs/process.md has the table.
 *
 * Returns 0, MP_EINVAL for fn NULL, or -ENOMEM.  Thread-safe; a handler
 * may register handlers (they run next).
 */
MP_EXTERN int mp_atexit(void (*fn)(void *arg), void *arg);

/*
 * mp_register_after_fork: call fn(arg) in every child this process starts
 * with the fork start method, early in the child, before the target runs
 * (Python's util.register_after_fork).  Callbacks run in the order they
 * were registered and stay registered in the child.  A spawned child starts
 * from a fresh image and runs none.  Returns 0, MP_EINVAL for fn NULL, or
 * -ENOMEM.  Thread-safe.
 */
MP_EXTERN int mp_register_after_fork(void (*fn)(void *arg), void *arg);

MP_END_DECLS

#endif /* LIBMP_UTIL_H */
