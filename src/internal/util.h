/*
 * internal/util.h: logging, exit handling and after-fork hooks shared by
 * libmp's sources (util.c), and the hooks util.c needs from process.c.
 */
#ifndef LIBMP_INTERNAL_UTIL_H
#define LIBMP_INTERNAL_UTIL_H

#include "internal/mp.h"

/* ---- logging (util.c) -------------------------------------------------- */

/* True when a record at level would be emitted: the cheap test to make
 * before building a message. */
bool mp__log_enabled(int level);

/* Log one of the library's own messages (never fails). */
void mp__log(int level, const char *fmt, ...) MP__PRINTF(2, 3);

#define mp__subdebug(...) mp__log(MP_LOG_SUBDEBUG, __VA_ARGS__)
#define mp__debug(...) mp__log(MP_LOG_DEBUG, __VA_ARGS__)
#define mp__info(...) mp__log(MP_LOG_INFO, __VA_ARGS__)
#define mp__sub_warning(...) mp__log(MP_LOG_SUBWARNING, __VA_ARGS__)
#define mp__warn(...) mp__log(MP_LOG_WARNING, __VA_ARGS__)

/*
 * The per-process logging settings, for a start method that must recreate
 * them in a fresh image (Python sends log_to_stderr and the level to a
 * spawned child).
 */
void mp__log_state_get(int *level, bool *to_stderr);
void mp__log_state_set(int level, bool to_stderr);

/* ---- exit and new processes (util.c) ------------------------------------ */

/*
 * Register the exit handler once per process family member (Python
 * registers _exit_function with atexit when util is imported).  Called by
 * every entry point that creates state the exit handler must clean up.
 */
void mp__util_init(void);

/*
 * Python's util._exit_function: log "process shutting down", run the
 * finalizers with priority >= 0, terminate daemonic children and join the
 * others, run the remaining finalizers.  Runs at most once per process;
 * later calls return at once.
 */
void mp__exit_function(void);

/* True once mp__exit_function has started in this process. */
bool mp__util_exiting(void);

/*
 * In a new child, before anything else: forget the parent's finalizers,
 * reset the exit flag, re-initialise process-local locks.
 */
void mp__util_child_reset(void);

/* Run the callbacks of mp_register_after_fork (in a forked child). */
void mp__run_after_forkers(void);

/* Flush stdout and stderr (Python's _flush_std_streams), ignoring errors. */
void mp__flush_std_streams(void);

/* Read the small file at path (a /proc file) into buf, NUL-terminated:
 * its length (at most size - 1), or -errno if it cannot be opened or read. */
ssize_t mp__read_text(const char *path, char *buf, size_t size);

/* Run (and unregister) the mp_atexit handlers, the last registered first. */
void mp__run_atexit(void);

/* The bootstrap logged the child's exit code: the exit handler need not. */
void mp__util_exit_logged(void);

/* Run finalizers with priority >= minpriority (all when all is true). */
void mp__run_finalizers(int minpriority, bool all);

/* ---- hooks implemented by process.c ------------------------------------ */

/* The name of the calling process, for log records; never NULL. */
const char *mp__process_current_name(void);

/* True in a child bootstrapped by libmp (not in the main process). */
bool mp__process_is_child(void);

/* ---- authkey.c: the calling process's authkey ----------------------------- */

/* The length of the key the main program draws (Python's os.urandom(32)). */
#define MP__AUTHKEY_DEFAULT_LEN 32

/* Copy the calling process's authkey to out; returns its length. */
size_t mp__authkey_get(unsigned char out[MP_AUTHKEY_MAX]);

/* Replace the calling process's authkey (n <= MP_AUTHKEY_MAX). */
void mp__authkey_set(const void *key, size_t n);

/* The children part of _exit_function: terminate daemons, join the rest. */
void mp__process_exit_children(void);

#endif /* LIBMP_INTERNAL_UTIL_H */
