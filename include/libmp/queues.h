/*
 * libmp/queues.h: Queue, JoinableQueue and SimpleQueue (Python's queues.py).
 *
 *   Python                                  C
 *   q = Queue(maxsize)                      q = mp_queue_new(.maxsize = n)
 *   q = JoinableQueue(maxsize)              q = mp_joinable_queue_new(.maxsize = n)
 *   q.put(obj, block, timeout)              mp_queue_put(q, buf, len, timeout)
 *   q.put_nowait(obj)                       mp_queue_put_nowait(q, buf, len)
 *   obj = q.get(block, timeout)             mp_queue_get(q, buf, size, &len, timeout)
 *                                           mp_queue_get_alloc(q, &buf, &len, timeout)
 *   obj = q.get_nowait()                    mp_queue_get_nowait(q, buf, size, &len)
 *   q.qsize() / q.empty() / q.full()        mp_queue_qsize / _empty / _full
 *   q.close()                               mp_queue_close(q)
 *   q.join_thread()                         mp_queue_join_thread(q)  (no thread)
 *   q.cancel_join_thread()                  mp_queue_cancel_join_thread(q)  (no-op)
 *   q.task_done() / q.join()                mp_queue_task_done(q) / mp_queue_join(q, timeout)
 *   queue.Empty / queue.Full                MP_EEMPTY / MP_EFULL
 *   s = SimpleQueue()                       s = mp_simple_queue_new()
 *   s.put(obj) / s.get() / s.empty()        mp_simple_queue_put / _get / _empty
 *   s.close()                               mp_simple_queue_close(s)
 *   None as a poison pill                   a zero-length message
 *
 * Messages are bytes (const void *buf, size_t len); serialising objects is
 * the caller's business, as pickling is Python's.  Any length from 0 bytes
 * to whatever the shared arena holds (at least 1 GiB with the default
 * arena) is accepted whatever the ring size.
 *
 * A queue lives in libmp's shared arena: the pointer is valid in every
 * process of the family under every start method, and any number of
 * processes (and threads) may put and get at the same time.  There is no
 * feeder thread: when put returns 0 the message is in shared memory, so it
 * survives the producer exiting or being killed right after, and a producer
 * may be joined before the queue is drained (Python's "joining processes
 * that use queues" trap does not exist here).  A process killed in the
 * middle of a put or get leaves the queue usable by everyone else: the
 * message it was putting is dropped whole, the one it was getting is lost
 * with it, and nobody hangs or sees a torn message.  docs/queues.md
 * explains the ring and its departures from Python.
 *
 * C++ has no compound literals (before C++20, see common.h): fill a
 * zero-initialised struct and call the _opts function, e.g.
 *     mp_queue_options o = {};
 *     o.maxsize = 8;
 *     ... = mp_queue_new_opts(&o);
 */
#ifndef LIBMP_QUEUES_H
#define LIBMP_QUEUES_H

#include <stdbool.h>

#include "common.h"

MP_BEGIN_DECLS

typedef struct mp_queue mp_queue;
typedef struct mp_simple_queue mp_simple_queue;

typedef struct mp_queue_options {
    size_t struct_size; /* sizeof: the macros set it; 0 is the 0.1 layout (common.h) */
    long maxsize;       /* most messages held at once; <= 0: unbounded */
    size_t capacity;    /* bytes an unbounded queue's ring holds;
                           0: 128 KiB (see mp_queue_new) */
    size_t slot_size;   /* bytes per ring slot; 0: 128 (see mp_queue_new) */
    mp_context *ctx;    /* start-method context; unused, any value accepted */
} mp_queue_options;

/*
 * mp_queue_new: create a Queue (Python's multiprocessing.Queue).
 *
 * Takes designated initializers for the fields of mp_queue_options:
 *     mp_queue *q = mp_queue_new(.maxsize = 10);
 *
 *   maxsize    as in Python: at most this many messages are held; put
 *              blocks (or fails with MP_EFULL) beyond.  <= 0 means
 *              unbounded: put never waits for room.  A bounded queue's ring
 *              has exactly maxsize slots; their memory is reserved at once
 *              and committed as it is first used.
 *   capacity   bytes an unbounded queue holds in its ring (default
 *              128 KiB, rounded down to a power-of-two number of slots, at
 *              least 2); the bytes of messages longer than a slot count
 *              against it too.  A put that finds it full waits for a
 *              consumer to make room, but at most 100 ms: if no consumer
 *              takes anything meanwhile, the message and the ones after it
 *              overflow, in order, to a list in the arena.  So a put on an
 *              unbounded queue never blocks for long, whatever the
 *              consumers do.  Ignored for a bounded queue.
 *   slot_size  size of one ring slot: a multiple of 64 between 64 and
 *              1 MiB (rounded up to a multiple of 64; default 128).
 *              Messages of up to slot_size - 16 bytes are copied into the
 *              ring itself; longer ones into one shared block that the
 *              consumer copies out and recycles.
 *
 * Returns the queue, owned by the caller (mp_queue_free), or NULL with
 * mp_last_error() set: MP_EINVAL for a slot_size out of range, -ENOMEM
 * when the arena cannot hold the ring (a huge maxsize or capacity), or the
 * error met creating the arena.  Fork-safe; may be called before or after
 * children start.
 */
#define mp_queue_new(...) mp_queue_new_opts(MP__OPTS(mp_queue_options, __VA_ARGS__))
MP_EXTERN mp_queue *mp_queue_new_opts(const mp_queue_options *opts);

/*
 * mp_joinable_queue_new: create a JoinableQueue (Python's
 * multiprocessing.JoinableQueue): a Queue that also counts unfinished tasks
 * for mp_queue_task_done and mp_queue_join.  Same options, returns and
 * errors as mp_queue_new.  The result is an mp_queue: every mp_queue_*
 * function applies to it, as JoinableQueue is a subclass of Queue.
 */
#define mp_joinable_queue_new(...) \
    mp_joinable_queue_new_opts(MP__OPTS(mp_queue_options, __VA_ARGS__))
MP_EXTERN mp_queue *mp_joinable_queue_new_opts(const mp_queue_options *opts);

/*
 * mp_queue_put: append a message (Python's put(obj, block, timeout)).
 *
 * buf, len  the message, copied before the call returns; buf may be NULL
 *           when len is 0 (a zero-length message, the C poison pill).
 * timeout   seconds to wait for room in a full bounded queue: MP_FOREVER,
 *           0 (do not wait, like put_nowait) or positive (common.h).
 *
 * Returns 0 once the message is in the queue: it is delivered even if the
 * caller exits or is killed right after.  A put on an unbounded queue does
 * not fail for lack of room and waits at most about 100 ms (see
 * capacity); timeout 0 never waits.  MP_EFULL when a bounded queue is
 * still full at the timeout (Python's queue.Full); MP_EINVAL for q NULL,
 * freed or not a queue, buf NULL with len > 0, a bad timeout, or a queue
 * closed by this process (mp_queue_close); -ENOMEM when the arena cannot
 * hold a message that needs a shared block (longer than slot_size - 16) or
 * an overflowing one.  An unbounded queue never returns MP_EFULL.  Signals
 * do not interrupt the wait (it resumes against the same deadline).
 * Thread-safe and usable from every process of the family at once.
 */
MP_EXTERN int mp_queue_put(mp_queue *q, const void *buf, size_t len, double timeout);

/* mp_queue_put_nowait: mp_queue_put with timeout 0 (Python's put_nowait). */
MP_EXTERN int mp_queue_put_nowait(mp_queue *q, const void *buf, size_t len);

/*
 * mp_queue_get: take the oldest message into a caller buffer (Python's
 * get(block, timeout)).
 *
 * buf, size  where the message is copied and how many bytes fit there;
 *            buf may be NULL when size is 0.
 * len        receives the message length (may be NULL if the caller does
 *            not need it).  On MP_ETOOSHORT it receives the size needed.
 * timeout    seconds to wait for a message: MP_FOREVER, 0 (get_nowait) or
 *            positive.
 *
 * Returns 0 with the message copied; MP_ETOOSHORT when the oldest message
 * is longer than size (the message stays in the queue for a retry with a
 * bigger buffer, *len says how big); MP_EEMPTY when no message came before
 * the timeout (Python's queue.Empty, also for a timed-out blocking get);
 * MP_EINVAL for q NULL, freed or not a queue, buf NULL with size > 0, a bad
 * timeout, or a queue closed by this process.  Messages are taken in the
 * order their puts completed; each producer's messages keep their order.
 * Thread-safe and usable from every process of the family at once.
 */
MP_EXTERN int mp_queue_get(mp_queue *q, void *buf, size_t size, size_t *len, double timeout);

/* mp_queue_get_nowait: mp_queue_get with timeout 0 (Python's get_nowait). */
MP_EXTERN int mp_queue_get_nowait(mp_queue *q, void *buf, size_t size, size_t *len);

/*
 * mp_queue_get_alloc: take the oldest message into a new buffer.
 *
 * buf   receives a malloc'd buffer holding the message (never NULL on
 *       success, even for a zero-length message); the caller frees it with
 *       free().  Untouched on failure.
 * len   receives the message length (may be NULL).
 *
 * Returns 0, MP_EEMPTY, MP_EINVAL (q invalid or closed by this process, buf
 * NULL, bad timeout) as mp_queue_get, or -ENOMEM when malloc fails (the
 * message then stays in the queue).
 */
MP_EXTERN int mp_queue_get_alloc(mp_queue *q, void **buf, size_t *len, double timeout);

/*
 * mp_queue_qsize: the number of messages in the queue (Python's qsize(),
 * which works here on every platform).  Exact when no put or get is in
 * progress; a snapshot otherwise (a put in progress may already count).
 * Returns the count, or MP_EINVAL for an invalid queue.
 *
 * mp_queue_empty: 1 if qsize is 0, 0 if not, MP_EINVAL.
 * mp_queue_full: 1 if a bounded queue holds maxsize messages, 0 if not
 * (always 0 for an unbounded queue), MP_EINVAL.
 *
 * These three keep working after mp_queue_close.
 */
MP_EXTERN long mp_queue_qsize(const mp_queue *q);
MP_EXTERN int mp_queue_empty(const mp_queue *q);
MP_EXTERN int mp_queue_full(const mp_queue *q);

/*
 * mp_queue_close: say that this process will no longer use the queue
 * (Python's close()).  As in Python the effect is local to the calling
 * process: afterwards put and get in this process return MP_EINVAL, while
 * other processes (including children forked later, as Python's children
 * reset the flag after fork) keep using the queue; messages already put
 * stay deliverable.  There is nothing to flush: a put that returned 0 is
 * already in the queue.  Closing twice is harmless.  Returns 0, MP_EINVAL
 * for an invalid queue, -ENOMEM if the process-local record cannot grow.
 * The queue's memory is released by mp_queue_free, not by close.
 */
MP_EXTERN int mp_queue_close(mp_queue *q);

/*
 * mp_queue_join_thread: Python's join_thread() waits for the feeder thread
 * to flush.  libmp has no feeder thread, so it returns 0 at once; like
 * Python, it requires a prior mp_queue_close in this process and returns
 * MP_EINVAL otherwise (and for an invalid queue).
 *
 * mp_queue_cancel_join_thread: a no-op kept for Python code ported as is;
 * returns 0, or MP_EINVAL for an invalid queue.
 */
MP_EXTERN int mp_queue_join_thread(mp_queue *q);
MP_EXTERN int mp_queue_cancel_join_thread(mp_queue *q);

/*
 * mp_queue_task_done: a consumer says that a message it got is fully
 * processed (Python's JoinableQueue.task_done()).
 *
 * Returns 0; MP_EINVAL when called more times than messages were taken
 * from the queue (Python's "task_done() called too many times"), for a
 * queue that is not joinable, or an invalid one.
 */
MP_EXTERN int mp_queue_task_done(mp_queue *q);

/*
 * mp_queue_join: wait until every message put in the queue has been taken
 * and marked done with mp_queue_task_done (Python's JoinableQueue.join(),
 * with a timeout added).
 *
 * Returns 0 when no task is unfinished, MP_ETIMEDOUT when some still are at
 * the timeout, MP_EINVAL for a bad timeout or a queue that is not joinable.
 * A task whose consumer died after taking it is never done (as in Python):
 * join with MP_FOREVER then waits forever.  A message whose producer or
 * consumer was killed in the middle of put or get does not count.
 */
MP_EXTERN int mp_queue_join(mp_queue *q, double timeout);

/*
 * mp_queue_free: release the queue and every message still in it.  NULL is
 * a no-op.  One process frees it, once no process uses it any more (as with
 * free); afterwards calls with the pointer return MP_EINVAL as long as the
 * memory has not been reused.
 */
MP_EXTERN void mp_queue_free(mp_queue *q);

/* ---- SimpleQueue --------------------------------------------------------- */

typedef struct mp_simple_queue_options {
    size_t struct_size; /* sizeof: the macros set it; 0 is the 0.1 layout (common.h) */
    size_t capacity;    /* ring bytes, as for mp_queue_new (default 128 KiB) */
    size_t slot_size;   /* as for mp_queue_new (default 128) */
    mp_context *ctx;    /* start-method context; unused, any value accepted */
} mp_simple_queue_options;

/*
 * mp_simple_queue_new: create a SimpleQueue (Python's
 * multiprocessing.SimpleQueue): an unbounded queue with only put, get,
 * empty and close.  It shares the Queue's ring, so it is just as fast and
 * as robust.  Returns the queue (mp_simple_queue_free) or NULL with
 * mp_last_error() set as mp_queue_new.
 */
#define mp_simple_queue_new(...) \
    mp_simple_queue_new_opts(MP__OPTS(mp_simple_queue_options, __VA_ARGS__))
MP_EXTERN mp_simple_queue *mp_simple_queue_new_opts(const mp_simple_queue_options *opts);

/*
 * mp_simple_queue_put: append a message.  Never fails for lack of room and
 * waits at most about 100 ms for a stalled consumer (see capacity at
 * mp_queue_new).  Returns 0, MP_EINVAL (q invalid or closed by this
 * process, buf NULL with len > 0) or -ENOMEM, as mp_queue_put.
 */
MP_EXTERN int mp_simple_queue_put(mp_simple_queue *q, const void *buf, size_t len);

/*
 * mp_simple_queue_get: wait for a message and copy it into buf (Python's
 * get(), which has no timeout).  Returns 0, MP_ETOOSHORT (message kept,
 * *len = size needed) or MP_EINVAL as mp_queue_get.
 *
 * mp_simple_queue_get_alloc: the same into a malloc'd buffer the caller
 * frees; -ENOMEM when malloc fails (message kept).
 */
MP_EXTERN int mp_simple_queue_get(mp_simple_queue *q, void *buf, size_t size, size_t *len);
MP_EXTERN int mp_simple_queue_get_alloc(mp_simple_queue *q, void **buf, size_t *len);

/*
 * mp_simple_queue_empty: 1 if empty, 0 if not; MP_EINVAL for an invalid
 * queue or one closed by this process (Python's empty() fails on a closed
 * SimpleQueue).
 */
MP_EXTERN int mp_simple_queue_empty(mp_simple_queue *q);

/*
 * mp_simple_queue_close: this process will no longer use the queue
 * (Python's close()): put, get and empty then return MP_EINVAL here; other
 * processes are not affected.  Returns 0 or MP_EINVAL (invalid queue).
 */
MP_EXTERN int mp_simple_queue_close(mp_simple_queue *q);

/* mp_simple_queue_free: as mp_queue_free. */
MP_EXTERN void mp_simple_queue_free(mp_simple_queue *q);

MP_END_DECLS

#endif /* LIBMP_QUEUES_H */
