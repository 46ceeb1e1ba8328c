/*
 * libmp/pool.h: pools of worker processes (multiprocessing.Pool) and of
 * threads (multiprocessing.pool.ThreadPool).
 *
 *   Python                                    C
 *   Pool(processes, initializer, initargs,    p = mp_pool_new(.processes = n,
 *        maxtasksperchild, context=ctx)             .initializer = init, .initarg = &a,
 *                                                   .initarg_size = sizeof a,
 *                                                   .maxtasksperchild = k, .ctx = ctx)
 *   ThreadPool(processes, ...)                mp_thread_pool_new(...same options...)
 *   pool.map(f, xs, chunksize)                mp_pool_map(p, f, xs, sizeof *xs, n,
 *                                                         ys, sizeof *ys, .chunksize = c)
 *   pool.map_async(f, xs, cs, callback,       r = mp_pool_map_async(p, f, xs, sizeof *xs, n,
 *                  error_callback)                      ys, sizeof *ys, .callback = cb,
 *                                                       .error_callback = ecb)
 *   pool.starmap(f, zip(xs, ys))              mp_pool_starmap(p, f, 2, cols, sizes, n,
 *                                                             out, out_size)
 *                                             (or mp_pool_map over an array of structs:
 *                                              a C struct is the tuple)
 *   pool.apply(f, (x,))                       mp_pool_apply(p, g, &x, sizeof x, &res, &len)
 *   pool.apply_async(f, (x,), {}, cb, ecb)    r = mp_pool_apply_async(p, g, &x, sizeof x,
 *                                                   .callback = cb, .error_callback = ecb)
 *   pool.map(f, list_of_bytes)                mp_pool_map_bytes(p, g, in, n, out)
 *   pool.imap(f, it, chunksize)               it = mp_pool_imap(p, f, xs, sizeof *xs, n,
 *                                                  sizeof y, .chunksize = c)
 *                                             (.next_input = gen for a lazy input)
 *   pool.imap_unordered(f, it, chunksize)     mp_pool_imap_unordered(...same...)
 *   next(it) / it.next(timeout)               mp_imap_next(it, timeout, &y, &index)
 *   StopIteration                             MP_EEOF from mp_imap_next
 *   res.get(timeout)                          mp_async_result_get(r, timeout, &out, &len)
 *   res.wait(timeout) / ready() / successful() mp_async_result_wait / _ready / _successful
 *   pool.close() / terminate() / join()       mp_pool_close / _terminate / _join(p, timeout)
 *   with Pool() as p: ...  (exit terminates)  mp_pool_free(p) (terminates if still running)
 *   multiprocessing.TimeoutError              MP_ETIMEDOUT
 *   an exception raised by f                  f returns a negative code, and may call
 *                                             mp_pool_set_error("fmt", ...) for a message;
 *                                             the caller gets the code, and the message
 *                                             from mp_pool_error_message()
 *   a worker killed while running a task      MP_EWORKERLOST for that task (Python hangs)
 *
 * Two ways to pass work, both first-class:
 *
 *   Fixed-size items (mp_pool_fn): the input is an array of n items of
 *   in_size bytes and the output an array of n items of out_size bytes.
 *   Workers read the inputs and write the outputs in shared memory directly,
 *   claiming chunks of the array; nothing is copied per item.  An array that
 *   is not shared memory is copied into the arena once per call (and the
 *   outputs copied back once); memory from mp_shared_alloc is used in place.
 *
 *   Bytes (mp_pool_bytes_fn): each input is a byte string of its own size,
 *   each output is built by the task with mp_pool_out_write and handed to
 *   the caller as malloc'd memory.
 *
 * Task functions run in the workers.  They are passed between processes as
 * (loaded module, offset), so they must be functions of the program or of a
 * shared library it loaded (not pointers computed at run time); any other
 * pointer is refused with MP_EINVAL.  A task returns 0 on success or a
 * negative code on failure; the pool goes on with the other tasks.
 *
 * Callbacks (callback, error_callback) run in the process that created the
 * pool, on a thread of the pool (Python's result-handler thread), one at a
 * time, in the order results complete.  They should return quickly: while
 * one runs, no other callback runs.
 *
 * Every object here (pool, async result, imap iterator) lives in the shared
 * arena like every libmp object, so the pointers stay valid in every
 * process; but, as Python says of its Pool, only the process that created
 * the pool may use the pool and the results it returned (others get
 * MP_EINVAL): a task may use every other libmp object, but not the pool
 * it runs in.  In a task, mp_pool_set_error and mp_pool_out_* are the
 * pool's functions to call.
 *
 * docs/pool.md describes the design and the departures from Python.
 *
 * C++ has no compound literals (before C++20, see common.h): fill a
 * zero-initialised struct and call the _opts function, e.g.
 *     mp_pool_options o = {};
 *     o.processes = 4;
 *     ... = mp_pool_new_opts(&o);
 */
#ifndef LIBMP_POOL_H
#define LIBMP_POOL_H

#include <stdbool.h>

#include "common.h"

MP_BEGIN_DECLS

#ifndef MP__PRINTF
#if defined(__GNUC__)
#define MP__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define MP__PRINTF(f, a)
#endif
#endif

typedef struct mp_pool mp_pool;
typedef struct mp_async_result mp_async_result;
typedef struct mp_imap mp_imap;
typedef struct mp_pool_out mp_pool_out;

/* A byte string: an input or an output of a bytes task. */
typedef struct mp_pool_bytes {
    void *data;
    size_t size;
} mp_pool_bytes;

/*
 * A task over fixed-size items: read in_size bytes at in, write out_size
 * bytes at out (both in shared memory, aligned as the arrays the caller
 * gave), return 0 or a negative code.  arg points to the call's extra
 * argument bytes (.arg; read-only, shared by every task of the call), or is
 * NULL.  The outputs of an item whose task failed are left as the task
 * left them.
 */
typedef int (*mp_pool_fn)(const void *in, size_t in_size, void *out, size_t out_size,
                          void *arg);

/*
 * A task over byte strings: read in_size bytes at in, write the result with
 * mp_pool_out_write / mp_pool_out_reserve on out (an empty result is fine),
 * return 0 or a negative code.  arg as for mp_pool_fn.
 */
typedef int (*mp_pool_bytes_fn)(const void *in, size_t in_size, mp_pool_out *out, void *arg);

/*
 * A task of mp_pool_starmap: args[k] points to the item of column k (its
 * size is the column's), out to out_size bytes.  arg as for mp_pool_fn.
 */
typedef int (*mp_pool_star_fn)(const void *const *args, void *out, size_t out_size, void *arg);

/*
 * The initializer: called once in each worker when it starts, before any
 * task, with the worker's own copy of the initarg bytes (NULL when there are
 * none; malloc'd, so aligned for any type) and their size.  It returns 0,
 * or a negative code: the pool is then broken (see mp_pool_new).
 */
typedef int (*mp_pool_init_fn)(void *arg, size_t arg_size);

/*
 * Callbacks, called in the pool's process (see above).  callback receives
 * the result as get would give it: for apply_async the output bytes (valid
 * during the call only), for map_async the caller's output array (n *
 * out_size bytes), for map_bytes_async the caller's mp_pool_bytes array
 * (size is n * sizeof(mp_pool_bytes)).  error_callback receives the error
 * code of the first failed item and its message ("" if none).
 */
typedef void (*mp_pool_callback_fn)(const void *result, size_t size, void *cb_arg);
typedef void (*mp_pool_error_callback_fn)(int code, const char *message, void *cb_arg);

/*
 * A lazy input for imap (Python's iterable): called in the calling process,
 * from mp_imap_next and the imap constructors, whenever the pool wants more
 * input.  It sets *data and *size to the next item (the bytes are copied
 * before the next call) and returns 1, returns 0 at the end of the input,
 * or a negative code (the input then ends with that error).
 */
typedef int (*mp_pool_next_fn)(void *ctx, const void **data, size_t *size);

/* ---- pools ----------------------------------------------------------------- */

typedef struct mp_pool_options {
    size_t struct_size; /* sizeof: the macros set it; 0 is the 0.1 layout (common.h) */
    int processes;      /* workers; 0: mp_cpu_count() */
    mp_pool_init_fn initializer; /* may be NULL */
    const void *initarg;         /* bytes copied for the initializer */
    size_t initarg_size;
    size_t maxtasksperchild; /* tasks (chunks) per worker; 0: unlimited */
    mp_context *ctx;         /* start method; NULL: the default context */
} mp_pool_options;

/*
 * mp_pool_new: start a pool of worker processes (Python's Pool()).
 *
 * Takes designated initializers for the fields of mp_pool_options.
 * The workers are daemonic children named "PoolWorker-N" (N as a Process
 * would be numbered); each ignores SIGINT (the pool owns their lifetime)
 * and runs the initializer once.  When an initializer fails (returns a
 * negative code) the pool is broken: every pending and later task fails
 * with that code instead of restarting workers forever (Python loops);
 * so is a pool whose workers crash in the initializer three times in a row
 * (the tasks then fail with MP_EWORKERLOST).
 * A worker that has run maxtasksperchild tasks exits and is replaced; so is
 * a worker that dies (its task then fails with MP_EWORKERLOST).
 *
 * The pool has two threads of its own in the calling process (workers
 * and callbacks); they block every signal, so SIGINT reaches the caller.
 * Worker processes run tasks with the signal mask of the thread that
 * called mp_pool_new (and the program's dispositions, SIGINT ignored);
 * a ThreadPool's tasks run with every signal blocked.
 *
 * With .ctx = mp_get_context("mpi") the workers are MPI processes
 * (libmp/mpi.h, docs/mpi.md): the same API, results copied through MPI
 * messages; .maxtasksperchild is then refused with MP_EINVAL, and spawning
 * workers with MP_ESPAWNMAIN where none could be taken over before main
 * (no start-up hook, and neither mp_mpi_main nor mp_spawn_main called).
 *
 * Returns the pool, owned by the caller (mp_pool_free), or NULL with
 * mp_last_error(): MP_EINVAL for processes < 0, an initializer that is not
 * a function of a loaded module, .initarg NULL with a size, a .ctx libmp did
 * not make, or a call from a daemonic process (which may not have
 * children); -EAGAIN / -ENOMEM when a thread or a worker cannot be started;
 * -EMFILE / -ENFILE when no fd is left.
 * Thread-safe; the pool belongs to the calling process.
 */
#define mp_pool_new(...) mp_pool_new_opts(MP__OPTS(mp_pool_options, __VA_ARGS__))
MP_EXTERN mp_pool *mp_pool_new_opts(const mp_pool_options *opts);

/*
 * mp_thread_pool_new: the same pool with threads of the calling process as
 * workers (Python's ThreadPool).  Same options (.ctx is ignored) and the
 * same API.  The initializer runs once per thread.  A thread cannot be
 * killed: mp_pool_terminate waits for the tasks already running.
 */
#define mp_thread_pool_new(...) mp_thread_pool_new_opts(MP__OPTS(mp_pool_options, __VA_ARGS__))
MP_EXTERN mp_pool *mp_thread_pool_new_opts(const mp_pool_options *opts);

/*
 * mp_pool_close: accept no more tasks (Python's close()); the workers exit
 * once the queued tasks are done.  Results already returned stay valid and
 * imap iterators already made keep going.  Returns 0 (also when already
 * closed), or MP_EINVAL for an invalid pool or a pool terminated.
 */
MP_EXTERN int mp_pool_close(mp_pool *pool);

/*
 * mp_pool_terminate: stop at once (Python's terminate()): tasks not started
 * are dropped, worker processes are killed (SIGKILL) and reaped, and every
 * result not yet complete fails with MP_EWORKERLOST (Python leaves them
 * waiting forever).  Thread workers finish the task they run first.  Waits
 * for the workers to be gone before returning.  Returns 0 (also when
 * already terminated), or MP_EINVAL for an invalid pool.
 */
MP_EXTERN int mp_pool_terminate(mp_pool *pool);

/*
 * mp_pool_join: wait for the workers to exit and for the pending callbacks
 * to run (Python's join()), after mp_pool_close or mp_pool_terminate.
 * After close, the imap iterators still open are run to the end of their
 * input first (Python's task thread feeds every input before join
 * returns): their results are kept until taken, so memory is no longer
 * bounded by the window for them.
 *
 * timeout  seconds (MP_FOREVER, 0, or positive; see common.h).
 *
 * Returns 0 when everything is done, MP_ETIMEDOUT, -EINTR when a signal
 * handler interrupted the wait (see mp_pool_map), or MP_EINVAL for an
 * invalid pool, a bad timeout, or a pool that is still running (Python's
 * ValueError).  A call from a callback (on the pool's own thread) returns
 * MP_EINVAL.
 */
MP_EXTERN int mp_pool_join(mp_pool *pool, double timeout);

/*
 * mp_pool_free: release the pool.  A pool not yet joined is terminated
 * first (as leaving Python's "with Pool()" block does), so no process or
 * thread is left behind.  Results and iterators it returned stay valid
 * (complete, or failed with MP_EWORKERLOST) until freed.  NULL is a no-op,
 * and so is a call from another process or from a callback.
 */
MP_EXTERN void mp_pool_free(mp_pool *pool);

/*
 * mp_pool_processes: the number of workers (Python's pool._processes), or
 * MP_EINVAL for an invalid pool.
 */
MP_EXTERN int mp_pool_processes(const mp_pool *pool);

/*
 * mp_pool_chunksize: the chunk size map uses for n items when none is
 * given (Python's rule): n / (4 * processes), plus 1 if there is a
 * remainder; 0 for n == 0.  Returns 0 for an invalid pool as well.
 */
MP_EXTERN size_t mp_pool_chunksize(const mp_pool *pool, size_t n);

/* ---- options of the calls --------------------------------------------------- */

typedef struct mp_pool_call_options {
    size_t struct_size; /* sizeof: the macros set it; 0 is the 0.1 layout (common.h) */
    size_t chunksize;   /* items per task; 0: map's rule, or 1 for imap */
    const void *arg;    /* extra bytes passed to every task (copied) */
    size_t arg_size;
    int *status;                              /* map: receives each item's code (n ints) */
    mp_pool_callback_fn callback;             /* async calls only */
    mp_pool_error_callback_fn error_callback; /* async calls only */
    void *cb_arg;                             /* passed to the callbacks */
    mp_pool_next_fn next_input;               /* imap: a lazy input (then in is NULL) */
    void *next_ctx;
    size_t window; /* imap: chunks in flight; 0: 16 per worker, >= 64 */
} mp_pool_call_options;

/*
 * The call macros take their last positional argument and the options in
 * one variadic list (ISO C11 wants at least one argument there) and split
 * them: MP__POOL_LAST gives the argument, MP__POOL_OPTS the options.
 */
#define MP__POOL_LAST(...) MP__POOL_LAST_(__VA_ARGS__, 0)
#define MP__POOL_LAST_(last, ...) last
#define MP__POOL_REST_(last, ...) __VA_ARGS__
#define MP__POOL_OPTS(...) MP__OPTS(mp_pool_call_options, MP__POOL_REST_(__VA_ARGS__, ))

/* ---- map over fixed-size items ------------------------------------------------ */

/*
 * mp_pool_map: out[i] = f(in[i]) for i < n, in parallel (Python's map()).
 *
 * in, in_size   n items of in_size bytes (in may be NULL when n is 0);
 * out, out_size n items of out_size bytes, written by the workers (out may
 *               be NULL when out_size is 0: a map for side effects).
 * Options: .chunksize (0: Python's rule, mp_pool_chunksize), .arg/.arg_size,
 * .status (n ints: 0 or the item's code).  Callbacks are refused.
 *
 * When in or out is memory from mp_shared_alloc it is used in place;
 * otherwise it is copied into the arena once (and out copied back once).
 * All items are run even when some fail.
 *
 * Returns 0 when every item succeeded; otherwise the code of the failed
 * item with the lowest index (its message in mp_pool_error_message()):
 * the task's own code, or MP_EWORKERLOST for the items of a task whose
 * worker died (the worker is replaced and the other tasks complete).
 * Also: MP_EINVAL for bad arguments (an invalid or closed pool, NULL arrays
 * with n > 0, in_size 0, callbacks, f not a function of a loaded module),
 * -ENOMEM, MP_EWORKERLOST when the pool was terminated meanwhile, and
 * -EINTR when a signal handler installed without SA_RESTART (as Python
 * installs its SIGINT handler) interrupted the wait: tasks not started are
 * then dropped, and tasks already running finish in the background (when
 * out is shared memory used in place, they may still write to it).
 */
#define mp_pool_map(pool, f, in, in_size, n, out, /* out_size, options */...)  \
    mp_pool_map_opts(pool, f, in, in_size, n, out, MP__POOL_LAST(__VA_ARGS__), \
                     MP__POOL_OPTS(__VA_ARGS__))
MP_EXTERN int mp_pool_map_opts(mp_pool *pool, mp_pool_fn f, const void *in, size_t in_size,
                               size_t n, void *out, size_t out_size,
                               const mp_pool_call_options *o);

/*
 * mp_pool_map_async: the same without waiting (Python's map_async()).
 *
 * Inputs that are not shared memory are copied before the call returns.
 * Outputs (and .status) are written into out by the time the result is
 * ready (get, wait, ready, or just before the callback), so out must stay
 * valid until then, or until the result is freed.  .callback receives out
 * (n * out_size bytes) when every item succeeded, .error_callback the first
 * error otherwise.
 *
 * Returns the result, owned by the caller (mp_async_result_free), or NULL
 * with mp_last_error() set as mp_pool_map's errors.
 */
#define mp_pool_map_async(pool, f, in, in_size, n, out, /* out_size, options */...)  \
    mp_pool_map_async_opts(pool, f, in, in_size, n, out, MP__POOL_LAST(__VA_ARGS__), \
                           MP__POOL_OPTS(__VA_ARGS__))
MP_EXTERN mp_async_result *mp_pool_map_async_opts(mp_pool *pool, mp_pool_fn f, const void *in,
                                                  size_t in_size, size_t n, void *out,
                                                  size_t out_size,
                                                  const mp_pool_call_options *o);

/*
 * mp_pool_starmap: out[i] = f(cols[0][i], ..., cols[ncols-1][i]) (Python's
 * starmap over zip(*cols)).  ncols columns (1 to 16) of n items each, item k
 * of column j being sizes[j] bytes.  Everything else as mp_pool_map.
 * mp_pool_starmap_async is to it what mp_pool_map_async is to mp_pool_map.
 */
#define mp_pool_starmap(pool, f, ncols, cols, sizes, n, out, /* out_size, options */...)  \
    mp_pool_starmap_opts(pool, f, ncols, cols, sizes, n, out, MP__POOL_LAST(__VA_ARGS__), \
                         MP__POOL_OPTS(__VA_ARGS__))
MP_EXTERN int mp_pool_starmap_opts(mp_pool *pool, mp_pool_star_fn f, size_t ncols,
                                   const void *const *cols, const size_t *sizes, size_t n,
                                   void *out, size_t out_size, const mp_pool_call_options *o);
#define mp_pool_starmap_async(pool, f, ncols, cols, sizes, n, out,  \
                              /* out_size, options */...)           \
    mp_pool_starmap_async_opts(pool, f, ncols, cols, sizes, n, out, \
                               MP__POOL_LAST(__VA_ARGS__), MP__POOL_OPTS(__VA_ARGS__))
MP_EXTERN mp_async_result *mp_pool_starmap_async_opts(mp_pool *pool, mp_pool_star_fn f,
                                                      size_t ncols, const void *const *cols,
                                                      const size_t *sizes, size_t n, void *out,
                                                      size_t out_size,
                                                      const mp_pool_call_options *o);

/* ---- bytes: apply and map ----------------------------------------------------- */

/*
 * mp_pool_apply: run f(in) in a worker and wait (Python's apply()).
 *
 * in, in_size   the argument bytes (copied; in may be NULL when in_size is 0);
 * out, out_size receive the result: *out is malloc'd (free it; a 1-byte
 *               buffer for an empty result) and *out_size its length.  out may
 *               be NULL to drop the result.  Untouched on failure.
 * Options: .arg/.arg_size.
 *
 * Returns 0, f's negative code (message in mp_pool_error_message()),
 * MP_EWORKERLOST if the worker died, -EINTR as mp_pool_map, MP_EINVAL
 * (invalid or closed pool, bad arguments), -ENOMEM.
 */
#define mp_pool_apply(pool, f, in, in_size, out, /* out_size, options */...)  \
    mp_pool_apply_opts(pool, f, in, in_size, out, MP__POOL_LAST(__VA_ARGS__), \
                       MP__POOL_OPTS(__VA_ARGS__))
MP_EXTERN int mp_pool_apply_opts(mp_pool *pool, mp_pool_bytes_fn f, const void *in,
                                 size_t in_size, void **out, size_t *out_size,
                                 const mp_pool_call_options *o);

/*
 * mp_pool_apply_async: the same without waiting (Python's apply_async()).
 * The argument bytes are copied before it returns.  Options: .arg,
 * .callback (receives the result bytes), .error_callback, .cb_arg.
 * Returns the result (mp_async_result_get gives the bytes), owned by the
 * caller, or NULL with mp_last_error() set as mp_pool_apply's errors.
 * No system call is made when the workers are busy.
 */
#define mp_pool_apply_async(pool, f, in, /* in_size, options */...)   \
    mp_pool_apply_async_opts(pool, f, in, MP__POOL_LAST(__VA_ARGS__), \
                             MP__POOL_OPTS(__VA_ARGS__))
MP_EXTERN mp_async_result *mp_pool_apply_async_opts(mp_pool *pool, mp_pool_bytes_fn f,
                                                    const void *in, size_t in_size,
                                                    const mp_pool_call_options *o);

/*
 * mp_pool_map_bytes: out[i] = f(in[i]) over n byte strings (Python's map()
 * over a list of bytes objects).  The inputs are copied; each out[i].data
 * is malloc'd for the caller (free each, also those of failed items, which
 * get an empty 1-byte buffer).  Options: .chunksize, .arg, .status.
 * Returns as mp_pool_map.  On failure other than an item's code, out is
 * untouched.
 */
#define mp_pool_map_bytes(pool, f, in, n, /* out, options */...)       \
    mp_pool_map_bytes_opts(pool, f, in, n, MP__POOL_LAST(__VA_ARGS__), \
                           MP__POOL_OPTS(__VA_ARGS__))
MP_EXTERN int mp_pool_map_bytes_opts(mp_pool *pool, mp_pool_bytes_fn f,
                                     const mp_pool_bytes *in, size_t n, mp_pool_bytes *out,
                                     const mp_pool_call_options *o);

/*
 * mp_pool_map_bytes_async: the same without waiting.  out (n entries) must
 * stay valid until the result is ready or freed; it is filled when the
 * result becomes ready.
 */
#define mp_pool_map_bytes_async(pool, f, in, n, /* out, options */...)       \
    mp_pool_map_bytes_async_opts(pool, f, in, n, MP__POOL_LAST(__VA_ARGS__), \
                                 MP__POOL_OPTS(__VA_ARGS__))
MP_EXTERN mp_async_result *mp_pool_map_bytes_async_opts(mp_pool *pool, mp_pool_bytes_fn f,
                                                        const mp_pool_bytes *in, size_t n,
                                                        mp_pool_bytes *out,
                                                        const mp_pool_call_options *o);

/* ---- async results ------------------------------------------------------------ */

/*
 * mp_async_result_get: wait for the result (Python's get(timeout)).
 *
 * For apply_async, *out receives a malloc'd copy of the result bytes (free
 * it) and *size its length; either may be NULL.  For the map calls the
 * outputs are in the arrays given to the call, and out and size may be
 * NULL (*size, if given, is set to the number of items).  get may be called
 * again; each call copies anew.
 *
 * Returns 0; the task's code (first failed item for a map; message in
 * mp_pool_error_message()); MP_EWORKERLOST; MP_ETIMEDOUT if not ready by
 * the timeout; -EINTR as mp_pool_map (the task goes on); MP_EINVAL for an
 * invalid result, a bad timeout or a call from another process; -ENOMEM.
 */
MP_EXTERN int mp_async_result_get(mp_async_result *r, double timeout, void **out,
                                  size_t *size);

/*
 * mp_async_result_get_into: like get, for apply_async, into the caller's
 * buffer: copies the result into buf (size bytes) and sets *len (may be
 * NULL) to its length.  MP_ETOOSHORT (with *len set to the length needed)
 * when it does not fit.  For the map calls it is get.
 */
MP_EXTERN int mp_async_result_get_into(mp_async_result *r, double timeout, void *buf,
                                       size_t size, size_t *len);

/*
 * mp_async_result_wait: wait until ready (Python's wait(timeout)).  Returns
 * 0 when ready, MP_ETIMEDOUT, -EINTR, or MP_EINVAL as get.
 *
 * mp_async_result_ready: 1 when the result is ready (callbacks done),
 * 0 if not, MP_EINVAL for an invalid result.
 *
 * mp_async_result_successful: 1 when ready and successful, 0 when ready
 * and failed, MP_EINVAL when not ready (Python's ValueError) or invalid.
 */
MP_EXTERN int mp_async_result_wait(mp_async_result *r, double timeout);
MP_EXTERN int mp_async_result_ready(mp_async_result *r);
MP_EXTERN int mp_async_result_successful(mp_async_result *r);

/*
 * mp_async_result_free: release the result.  A result not yet complete is
 * abandoned: its tasks not started are dropped, those running finish in
 * the background, and its callbacks are not called (one already running
 * finishes).  Its output arrays are not written after this call returns,
 * except shared memory used in place, which tasks already running may
 * still write.  NULL is a no-op; so is a call from another process.
 */
MP_EXTERN void mp_async_result_free(mp_async_result *r);

/* ---- imap ------------------------------------------------------------------ */

/*
 * mp_pool_imap: results one by one, in the order of the inputs (Python's
 * imap()), over fixed-size items.
 *
 * in, in_size, n  the input array (in may be NULL when n is 0: an empty
 *                 input, as for mp_pool_map; the first mp_imap_next
 *                 returns MP_EEOF); or in NULL, n 0 and .next_input a
 *                 lazy input whose items must be in_size bytes each;
 * out_size        the size of each result (mp_imap_next copies it out).
 * Options: .chunksize (default 1), .arg, .next_input/.next_ctx, .window.
 *
 * The input is read lazily: at most .window chunks are in flight (copied
 * to shared memory or waiting to be returned), so memory stays bounded
 * for a long input; the input is consumed as mp_imap_next is called.
 *
 * Returns the iterator, owned by the caller (mp_imap_free), or NULL with
 * mp_last_error() set: MP_EINVAL as mp_pool_map, or both in and
 * .next_input; -ENOMEM.
 *
 * mp_pool_imap_unordered: the same, results in the order they complete
 * (Python's imap_unordered()); mp_imap_next's index says which input each
 * result belongs to.
 */
#define mp_pool_imap(pool, f, in, in_size, n, /* out_size, options */...)         \
    mp_pool_imap_opts(pool, f, in, in_size, n, MP__POOL_LAST(__VA_ARGS__), false, \
                      MP__POOL_OPTS(__VA_ARGS__))
#define mp_pool_imap_unordered(pool, f, in, in_size, n, /* out_size, options */...) \
    mp_pool_imap_opts(pool, f, in, in_size, n, MP__POOL_LAST(__VA_ARGS__), true,    \
                      MP__POOL_OPTS(__VA_ARGS__))
MP_EXTERN mp_imap *mp_pool_imap_opts(mp_pool *pool, mp_pool_fn f, const void *in,
                                     size_t in_size, size_t n, size_t out_size, bool unordered,
                                     const mp_pool_call_options *o);

/*
 * mp_pool_imap_bytes / mp_pool_imap_bytes_unordered: the same over byte
 * strings (in: n entries, NULL with n 0 for an empty input, or NULL with
 * .next_input), results taken with mp_imap_next_bytes.
 */
#define mp_pool_imap_bytes(pool, f, in, /* n, options */...)                \
    mp_pool_imap_bytes_opts(pool, f, in, MP__POOL_LAST(__VA_ARGS__), false, \
                            MP__POOL_OPTS(__VA_ARGS__))
#define mp_pool_imap_bytes_unordered(pool, f, in, /* n, options */...)     \
    mp_pool_imap_bytes_opts(pool, f, in, MP__POOL_LAST(__VA_ARGS__), true, \
                            MP__POOL_OPTS(__VA_ARGS__))
MP_EXTERN mp_imap *mp_pool_imap_bytes_opts(mp_pool *pool, mp_pool_bytes_fn f,
                                           const mp_pool_bytes *in, size_t n, bool unordered,
                                           const mp_pool_call_options *o);

/*
 * mp_imap_next: the next result (Python's next(it) / it.next(timeout)) of
 * an iterator over fixed-size items.
 *
 * out    receives out_size bytes (may be NULL to drop them);
 * index  receives the position of the item in the input (may be NULL).
 *
 * Returns 0 with a result; the item's own code when its task failed
 * (message in mp_pool_error_message(); iteration goes on with the next
 * item, as in Python); MP_EEOF when every result was returned (Python's
 * StopIteration; again on later calls); the lazy input's negative code
 * once, where the input failed; MP_ETIMEDOUT; -EINTR as mp_pool_map;
 * MP_EINVAL for an invalid iterator, a bytes iterator, a bad timeout or a
 * call from another process.
 */
MP_EXTERN int mp_imap_next(mp_imap *it, double timeout, void *out, size_t *index);

/*
 * mp_imap_next_bytes: the same for a bytes iterator: *data receives a
 * malloc'd copy of the result (free it) and *size its length; data may be
 * NULL to drop it.  A fixed-size iterator is accepted too (the result is
 * its out_size bytes).
 */
MP_EXTERN int mp_imap_next_bytes(mp_imap *it, double timeout, void **data, size_t *size,
                                 size_t *index);

/*
 * mp_imap_free: release the iterator; results not taken are dropped and
 * tasks not started are not run.  NULL is a no-op, and so is a call from
 * another process.
 */
MP_EXTERN void mp_imap_free(mp_imap *it);

/* ---- in the task ------------------------------------------------------------ */

/*
 * mp_pool_set_error: a message for the failure of the running task
 * (Python's exception text), printf-style, of any length (a message that
 * cannot be stored for lack of memory keeps its first 252 bytes and ends
 * in "...").  It reaches the caller only if the task then returns a
 * negative code.  Called outside a task it does nothing.
 */
MP_EXTERN void mp_pool_set_error(const char *fmt, ...) MP__PRINTF(1, 2);

/*
 * mp_pool_out_write: append n bytes at buf to the result of the running
 * bytes task.  mp_pool_out_reserve: append n bytes and return where to
 * write them (valid until the next call on out).  Return 0 / the pointer,
 * or -ENOMEM / NULL; MP_EINVAL / NULL for a NULL out or buf NULL with
 * n > 0.
 */
MP_EXTERN int mp_pool_out_write(mp_pool_out *out, const void *buf, size_t n);
MP_EXTERN void *mp_pool_out_reserve(mp_pool_out *out, size_t n);

/* ---- in the caller ------------------------------------------------------------- */

/*
 * mp_pool_error_message: the message of the task failure that the calling
 * thread's last map, apply, get or next returned: the text the task gave
 * mp_pool_set_error, a description of the lost worker (pid and signal or
 * exit code), of a cancelled task, or "" when the task gave none.  Those
 * calls set it to "" when they succeed.  The string belongs to the thread
 * and changes with its next such call.
 */
MP_EXTERN const char *mp_pool_error_message(void);

MP_END_DECLS

#endif /* LIBMP_POOL_H */
