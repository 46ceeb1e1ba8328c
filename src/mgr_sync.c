/*
 * mgr_sync.c: the synchronisation objects and queues a manager hosts:
 * Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event, Barrier,
 * Queue and JoinableQueue (Python's SyncManager types).
 *
 * The server creates a libmp object (synchronize.h, queues.h) in the arena
 * and holds it.  Processes of the family use that object directly through
 * the proxy (the reply that creates the proxy carries its address), so a
 * blocking call blocks the caller and never the server, and the lock's
 * holder is the calling thread, as with a lock of one's own.  Programs that
 * connect over a socket call the methods below in the server, in the
 * thread that serves their connection (one per connection, as Python's
 * server has), so again only that client waits.
 *
 * The same method functions run in both places: in the server with s set,
 * and in a family process with s NULL (and o->watch the manager).  Every
 * wait watches the end of the object's life, in slices: in the server a
 * shutdown (100 ms), in a family process the server's death or shutdown
 * (MGR_CLIENT_SLICE_MS), and returns MP_EEOF when it comes.  Slicing is
 * invisible: a timed-out acquire or get changes nothing, and Condition.wait
 * and Barrier.wait are cut inside synchronize.c, where a slice that ends
 * only puts the waiter back to sleep.
 */
#include "internal/managers.h"
#include "internal/sync.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int oom(struct mgr_reply *r)
{
    return mp__reply_error(r, -ENOMEM, "MemoryError", "out of memory");
}

static int ok_none(struct mgr_reply *r)
{
    mp__reply_none(r);
    return 0;
}

static int ok_int(struct mgr_reply *r, int64_t i)
{
    mp_val *v = mp__val_new(MP_VAL_INT);
    if (v == NULL)
        return oom(r);
    v->i = i;
    mp__reply_val(r, v);
    return 0;
}

static int ok_bool(struct mgr_reply *r, bool b)
{
    mp__reply_borrow(r, b ? &mp__true : &mp__false);
    return 0;
}

/* A libmp code from an operation, as a reply: the codes of a normal outcome
 * pass through to the caller (MP_ETIMEDOUT, MP_EEMPTY, ...). */
static int fail(struct mgr_reply *r, int code, const char *what)
{
    const char *type = code == MP_ETIMEDOUT ? "TimeoutError"
                       : code == MP_EEMPTY  ? "Empty"
                       : code == MP_EFULL   ? "Full"
                       : code == MP_EBROKEN ? "BrokenBarrierError"
                       : code == MP_EEOF    ? "EOFError"
                       : code == -ENOMEM    ? "MemoryError"
                                            : "ValueError";
    return mp__reply_error(r, code, type, "%s: %s", what, mp_strerror(code));
}

/* ---- arguments ------------------------------------------------------------- */

/* Python rejects a negative timeout; MP_FOREVER (-1) is accepted as None. */
int mp__mgr_timeout_args(struct mgr_reply *r, const mp_val *a, int ib, int it, double *t)
{
    *t = MP_FOREVER;
    size_t n = a->seq.len;
    if (it >= 0 && (size_t)it < n && a->seq.items[it]->type != MP_VAL_NONE) {
        if (mp_val_as_float(a->seq.items[it], t) != 0)
            return mp__reply_error(r, MP_EINVAL, "TypeError",
                                   "timeout must be a number or None");
        mp__deadline d;
        if (mp__deadline_init(&d, *t) != 0)
            return mp__reply_error(r, MP_EINVAL, "ValueError",
                                   "'timeout' must be a non-negative number");
    }
    if (ib >= 0 && (size_t)ib < n && !mp_val_truth(a->seq.items[ib]))
        *t = 0;
    return 0;
}

static int int_arg(struct mgr_reply *r, const mp_val *a, size_t i, int64_t dflt, int64_t *out)
{
    *out = dflt;
    if (i >= a->seq.len || a->seq.items[i]->type == MP_VAL_NONE)
        return 0;
    if (a->seq.items[i]->type == MP_VAL_FLOAT || mp_val_as_int(a->seq.items[i], out) != 0)
        return mp__reply_error(r, MP_EINVAL, "TypeError", "an integer is required");
    return 0;
}

/* ---- waiting in slices --------------------------------------------------------- */

/*
 * Every wait watches whoever can end the object's life: in the server, a
 * shutdown (slices of 100 ms); in a process of the family, the server
 * itself (slices of MGR_CLIENT_SLICE_MS, so that its death or shutdown is
 * noticed within about that long, as managers.h promises).  A wait that
 * the watch ends returns MP_EEOF.
 */
static bool srv_gone(void *s)
{
    return mp__srv_stopping(s);
}

static bool mgr_gone(void *m)
{
    return mp__mgr_server_gone(m);
}

/* The watch for a wait on o, in *w; NULL when nothing is watched. */
static const mp__watch *watch_of(struct mgr_srv *s, const struct mgr_obj *o, mp__watch *w)
{
    if (s != NULL)
        *w = (mp__watch){srv_gone, s, 100 * 1000000L};
    else if (o->watch != NULL)
        *w = (mp__watch){mgr_gone, o->watch, MGR_CLIENT_SLICE_MS * 1000000L};
    else
        return NULL;
    return w;
}

typedef int (*timed_fn)(void *obj, void *extra, double timeout);

/* op with timeout, cut into slices with the watch looked at in between:
 * invisible for these operations (a timed-out acquire or get changes
 * nothing).  The first try does not wait, so that an operation that need
 * not wait costs what it costs without a manager. */
static int timed(struct mgr_srv *s, const struct mgr_obj *o, double timeout, int timeout_code,
                 timed_fn op, void *extra)
{
    mp__watch wb;
    const mp__watch *w = watch_of(s, o, &wb);
    if (w == NULL)
        return op(o->obj, extra, timeout);
    int r = op(o->obj, extra, 0);
    if (r != timeout_code || timeout == 0)
        return r;
    mp__deadline d;
    mp__deadline_init(&d, timeout);
    double slice = (double)w->slice_ns / 1e9;
    for (;;) {
        if (w->gone(w->arg))
            return MP_EEOF;
        double t = slice;
        if (!d.forever) {
            struct timespec left;
            if (mp__deadline_left(&d, &left) != 0)
                return timeout_code;
            double l = (double)left.tv_sec + (double)left.tv_nsec / 1e9;
            if (l < t)
                t = l;
        }
        r = op(o->obj, extra, t);
        if (r != timeout_code)
            return r;
    }
}

int mp__mgr_timed(struct mgr_srv *s, const struct mgr_obj *o, double timeout, int timeout_code,
                  int (*op)(void *obj, void *extra, double timeout), void *extra)
{
    return timed(s, o, timeout, timeout_code, op, extra);
}

/* ---- Lock and RLock --------------------------------------------------------------- */

static int lock_acquire_op(void *obj, void *extra, double t)
{
    return mp_lock_acquire(obj, t);
}

static int lock_acquire(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    double t;
    if (mp__args(r, "acquire", a, 0, 2) != 0 || mp__mgr_timeout_args(r, a, 0, 1, &t) != 0)
        return r->code;
    int e = timed(s, o, t, MP_ETIMEDOUT, lock_acquire_op, NULL);
    if (e == MP_EOWNERDEAD)
        return mp__reply_error(r, e, "OwnerDead", "the previous holder died holding the lock");
    return e != 0 ? fail(r, e, "acquire") : ok_bool(r, true);
}

static int lock_release(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "release", a, 0, 0) != 0)
        return r->code;
    int e = mp_lock_release(o->obj);
    if (e != 0)
        return mp__reply_error(r, e, "RuntimeError", "cannot release un-acquired lock");
    return ok_none(r);
}

static int lock_locked(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "locked", a, 0, 0) != 0)
        return r->code;
    int e = mp_lock_locked(o->obj);
    return e < 0 ? fail(r, e, "locked") : ok_bool(r, e == 1);
}

static int lock_create(struct mgr_srv *s, mp_val *a, void **obj, struct mgr_reply *r)
{
    if (mp__args(r, "Lock", a, 0, 0) != 0)
        return r->code;
    *obj = mp_lock_new();
    return *obj != NULL ? 0 : oom(r);
}

static int rlock_create(struct mgr_srv *s, mp_val *a, void **obj, struct mgr_reply *r)
{
    if (mp__args(r, "RLock", a, 0, 0) != 0)
        return r->code;
    *obj = mp_rlock_new();
    return *obj != NULL ? 0 : oom(r);
}

static void lock_destroy(void *obj)
{
    mp_lock_free(obj);
}

static const struct mgr_method lock_methods[] = {
    {"acquire", lock_acquire},
    {"release", lock_release},
    {"locked", lock_locked},
    {NULL, NULL},
};

/* ---- Semaphore and BoundedSemaphore ------------------------------------------------ */

static int sem_acquire_op(void *obj, void *extra, double t)
{
    return mp_semaphore_acquire(obj, t);
}

static int sem_acquire(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    double t;
    if (mp__args(r, "acquire", a, 0, 2) != 0 || mp__mgr_timeout_args(r, a, 0, 1, &t) != 0)
        return r->code;
    int e = timed(s, o, t, MP_ETIMEDOUT, sem_acquire_op, NULL);
    return e != 0 ? fail(r, e, "acquire") : ok_bool(r, true);
}

static int sem_release(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "release", a, 0, 0) != 0)
        return r->code;
    int e = mp_semaphore_release(o->obj);
    if (e == MP_EINVAL)
        return mp__reply_error(r, e, "ValueError", "Semaphore released too many times");
    return e != 0 ? fail(r, e, "release") : ok_none(r);
}

static int sem_get_value(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "get_value", a, 0, 0) != 0)
        return r->code;
    int e = mp_semaphore_get_value(o->obj);
    return e < 0 ? fail(r, e, "get_value") : ok_int(r, e);
}

static int sem_make(mp_val *a, void **obj, struct mgr_reply *r, bool bounded)
{
    int64_t value;
    if (mp__args(r, bounded ? "BoundedSemaphore" : "Semaphore", a, 0, 1) != 0 ||
        int_arg(r, a, 0, 1, &value) != 0)
        return r->code;
    if (value < 0 || value > INT32_MAX)
        return mp__reply_error(r, MP_EINVAL, "ValueError",
                               "semaphore initial value must be >= 0");
    *obj = bounded ? mp_bounded_semaphore_new(.value = (int)value)
                   : mp_semaphore_new(.value = (int)value);
    return *obj != NULL ? 0 : oom(r);
}

static int sem_create(struct mgr_srv *s, mp_val *a, void **obj, struct mgr_reply *r)
{
    return sem_make(a, obj, r, false);
}

static int bsem_create(struct mgr_srv *s, mp_val *a, void **obj, struct mgr_reply *r)
{
    return sem_make(a, obj, r, true);
}

static void sem_destroy(void *obj)
{
    mp_semaphore_free(obj);
}

static const struct mgr_method sem_methods[] = {
    {"acquire", sem_acquire},
    {"release", sem_release},
    {"get_value", sem_get_value},
    {NULL, NULL},
};

/* ---- Condition ---------------------------------------------------------------------- */

static int cond_acquire_op(void *obj, void *extra, double t)
{
    return mp_condition_acquire(obj, t);
}

static int cond_acquire(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    double t;
    if (mp__args(r, "acquire", a, 0, 2) != 0 || mp__mgr_timeout_args(r, a, 0, 1, &t) != 0)
        return r->code;
    int e = timed(s, o, t, MP_ETIMEDOUT, cond_acquire_op, NULL);
    return e != 0 ? fail(r, e, "acquire") : ok_bool(r, true);
}

static int cond_release(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "release", a, 0, 0) != 0)
        return r->code;
    int e = mp_condition_release(o->obj);
    if (e != 0)
        return mp__reply_error(r, e, "RuntimeError", "cannot release un-acquired lock");
    return ok_none(r);
}

static int cond_wait(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    double t;
    if (mp__args(r, "wait", a, 0, 1) != 0 || mp__mgr_timeout_args(r, a, -1, 0, &t) != 0)
        return r->code;
    mp__watch wb;
    int e = mp__condition_wait_watched(o->obj, t, watch_of(s, o, &wb));
    if (e == MP_EINVAL)
        return mp__reply_error(r, e, "RuntimeError", "cannot wait on un-acquired lock");
    return e != 0 ? fail(r, e, "wait") : ok_bool(r, true);
}

static int cond_notify(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    int64_t n;
    if (mp__args(r, "notify", a, 0, 1) != 0 || int_arg(r, a, 0, 1, &n) != 0)
        return r->code;
    int e = mp_condition_notify(o->obj, n < 0 ? -1 : n > INT32_MAX ? INT32_MAX : (int)n);
    if (e == MP_EINVAL)
        return mp__reply_error(r, e, "RuntimeError", "cannot notify on un-acquired lock");
    return e < 0 ? fail(r, e, "notify") : ok_none(r);
}

static int cond_notify_all(struct mgr_srv *s, struct mgr_obj *o, mp_val *a,
                           struct mgr_reply *r)
{
    if (mp__args(r, "notify_all", a, 0, 0) != 0)
        return r->code;
    int e = mp_condition_notify_all(o->obj);
    if (e == MP_EINVAL)
        return mp__reply_error(r, e, "RuntimeError", "cannot notify on un-acquired lock");
    return e < 0 ? fail(r, e, "notify_all") : ok_none(r);
}

static int cond_create(struct mgr_srv *s, mp_val *a, void **obj, struct mgr_reply *r)
{
    if (mp__args(r, "Condition", a, 0, 1) != 0)
        return r->code;
    if (a->seq.len == 1 && a->seq.items[0]->type != MP_VAL_NONE)
        return mp__reply_error(r, MP_EINVAL, "TypeError",
                               "a managed Condition makes its own RLock (no lock argument)");
    *obj = mp_condition_new();
    return *obj != NULL ? 0 : oom(r);
}

static void cond_destroy(void *obj)
{
    mp_condition_free(obj);
}

static const struct mgr_method cond_methods[] = {
    {"acquire", cond_acquire}, {"release", cond_release},       {"wait", cond_wait},
    {"notify", cond_notify},   {"notify_all", cond_notify_all}, {NULL, NULL},
};

/* ---- Event ----------------------------------------------------------------------------- */

static int event_wait_op(void *obj, void *extra, double t)
{
    return mp_event_wait(obj, t);
}

static int event_is_set(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "is_set", a, 0, 0) != 0)
        return r->code;
    int e = mp_event_is_set(o->obj);
    return e < 0 ? fail(r, e, "is_set") : ok_bool(r, e == 1);
}

static int event_set(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "set", a, 0, 0) != 0)
        return r->code;
    int e = mp_event_set(o->obj);
    return e != 0 ? fail(r, e, "set") : ok_none(r);
}

static int event_clear(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "clear", a, 0, 0) != 0)
        return r->code;
    int e = mp_event_clear(o->obj);
    return e != 0 ? fail(r, e, "clear") : ok_none(r);
}

static int event_wait(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    double t;
    if (mp__args(r, "wait", a, 0, 1) != 0 || mp__mgr_timeout_args(r, a, -1, 0, &t) != 0)
        return r->code;
    int e = timed(s, o, t, MP_ETIMEDOUT, event_wait_op, NULL);
    /* Python's Event.wait returns False on a timeout; that is no error. */
    if (e == MP_ETIMEDOUT)
        return ok_bool(r, false);
    return e != 0 ? fail(r, e, "wait") : ok_bool(r, true);
}

static int event_create(struct mgr_srv *s, mp_val *a, void **obj, struct mgr_reply *r)
{
    if (mp__args(r, "Event", a, 0, 0) != 0)
        return r->code;
    *obj = mp_event_new();
    return *obj != NULL ? 0 : oom(r);
}

static void event_destroy(void *obj)
{
    mp_event_free(obj);
}

static const struct mgr_method event_methods[] = {
    {"is_set", event_is_set}, {"set", event_set}, {"clear", event_clear},
    {"wait", event_wait},     {NULL, NULL},
};

/* ---- Barrier -------------------------------------------------------------------------- */

static int barrier_wait(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    double t;
    if (mp__args(r, "wait", a, 0, 1) != 0 || mp__mgr_timeout_args(r, a, -1, 0, &t) != 0)
        return r->code;
    mp__watch wb;
    int e = mp__barrier_wait_watched(o->obj, t, watch_of(s, o, &wb));
    return e < 0 ? fail(r, e, "wait") : ok_int(r, e);
}

static int barrier_reset(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "reset", a, 0, 0) != 0)
        return r->code;
    int e = mp_barrier_reset(o->obj);
    return e != 0 ? fail(r, e, "reset") : ok_none(r);
}

static int barrier_abort(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "abort", a, 0, 0) != 0)
        return r->code;
    int e = mp_barrier_abort(o->obj);
    return e != 0 ? fail(r, e, "abort") : ok_none(r);
}

static int barrier_parties(struct mgr_srv *s, struct mgr_obj *o, mp_val *a,
                           struct mgr_reply *r)
{
    if (mp__args(r, "parties", a, 0, 0) != 0)
        return r->code;
    int e = mp_barrier_parties(o->obj);
    return e < 0 ? fail(r, e, "parties") : ok_int(r, e);
}

static int barrier_n_waiting(struct mgr_srv *s, struct mgr_obj *o, mp_val *a,
                             struct mgr_reply *r)
{
    if (mp__args(r, "n_waiting", a, 0, 0) != 0)
        return r->code;
    int e = mp_barrier_n_waiting(o->obj);
    return e < 0 ? fail(r, e, "n_waiting") : ok_int(r, e);
}

static int barrier_broken(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "broken", a, 0, 0) != 0)
        return r->code;
    int e = mp_barrier_broken(o->obj);
    return e < 0 ? fail(r, e, "broken") : ok_bool(r, e == 1);
}

static int barrier_create(struct mgr_srv *s, mp_val *a, void **obj, struct mgr_reply *r)
{
    int64_t parties;
    double t = 0;
    if (mp__args(r, "Barrier", a, 1, 3) != 0 || int_arg(r, a, 0, 0, &parties) != 0)
        return r->code;
    if (a->seq.len >= 2 && a->seq.items[1]->type != MP_VAL_NONE)
        return mp__reply_error(r, MP_EINVAL, "TypeError",
                               "a managed Barrier takes no action (functions cannot be sent)");
    if (a->seq.len == 3 && mp__mgr_timeout_args(r, a, -1, 2, &t) != 0)
        return r->code;
    if (parties < 1 || parties > INT32_MAX)
        return mp__reply_error(r, MP_EINVAL, "ValueError", "parties must be > 0");
    *obj = mp_barrier_new(.parties = (int)parties, .timeout = t);
    return *obj != NULL ? 0 : oom(r);
}

static void barrier_destroy(void *obj)
{
    mp_barrier_free(obj);
}

static const struct mgr_method barrier_methods[] = {
    {"wait", barrier_wait},
    {"reset", barrier_reset},
    {"abort", barrier_abort},
    {"parties", barrier_parties},
    {"n_waiting", barrier_n_waiting},
    {"broken", barrier_broken},
    {NULL, NULL},
};

/* ---- Queue and JoinableQueue ---------------------------------------------------------- */

struct put_job {
    const void *p;
    size_t n;
};

static int queue_put_op(void *obj, void *extra, double t)
{
    struct put_job *j = extra;
    return mp_queue_put(obj, j->p, j->n, t);
}

struct get_job {
    void *buf;
    size_t len;
};

static int queue_get_op(void *obj, void *extra, double t)
{
    struct get_job *j = extra;
    return mp_queue_get_alloc(obj, &j->buf, &j->len, t);
}

static int do_put(struct mgr_srv *s, struct mgr_obj *o, const mp_val *v, double t,
                  struct mgr_reply *r)
{
    mp__buf b = {0};
    int e = mp__val_encode_buf(&b, v);
    if (e != 0) {
        mp__buf_free(&b);
        return e == -ENOMEM ? oom(r)
                            : mp__reply_error(r, e, "ValueError", "value cannot be encoded");
    }
    struct put_job j = {b.p, b.len};
    e = timed(s, o, t, MP_EFULL, queue_put_op, &j);
    mp__buf_free(&b);
    return e != 0 ? fail(r, e, "put") : ok_none(r);
}

static int do_get(struct mgr_srv *s, struct mgr_obj *o, double t, struct mgr_reply *r)
{
    struct get_job j = {NULL, 0};
    int e = timed(s, o, t, MP_EEMPTY, queue_get_op, &j);
    if (e != 0)
        return fail(r, e, "get");
    mp_val *v;
    /* A message put by other means than a proxy is handed over as bytes. */
    if (mp_val_decode(j.buf, j.len, &v, NULL) != 0)
        v = mp__val_new_bytes(MP_VAL_BYTES, j.buf, j.len);
    free(j.buf);
    if (v == NULL)
        return oom(r);
    mp__reply_val(r, v);
    return 0;
}

static int queue_put(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    double t;
    if (mp__args(r, "put", a, 1, 3) != 0 || mp__mgr_timeout_args(r, a, 1, 2, &t) != 0)
        return r->code;
    return do_put(s, o, a->seq.items[0], t, r);
}

static int queue_put_nowait(struct mgr_srv *s, struct mgr_obj *o, mp_val *a,
                            struct mgr_reply *r)
{
    if (mp__args(r, "put_nowait", a, 1, 1) != 0)
        return r->code;
    return do_put(s, o, a->seq.items[0], 0, r);
}

static int queue_get(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    double t;
    if (mp__args(r, "get", a, 0, 2) != 0 || mp__mgr_timeout_args(r, a, 0, 1, &t) != 0)
        return r->code;
    return do_get(s, o, t, r);
}

static int queue_get_nowait(struct mgr_srv *s, struct mgr_obj *o, mp_val *a,
                            struct mgr_reply *r)
{
    if (mp__args(r, "get_nowait", a, 0, 0) != 0)
        return r->code;
    return do_get(s, o, 0, r);
}

static int queue_qsize(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "qsize", a, 0, 0) != 0)
        return r->code;
    long n = mp_queue_qsize(o->obj);
    return n < 0 ? fail(r, (int)n, "qsize") : ok_int(r, n);
}

static int queue_empty(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "empty", a, 0, 0) != 0)
        return r->code;
    int e = mp_queue_empty(o->obj);
    return e < 0 ? fail(r, e, "empty") : ok_bool(r, e == 1);
}

static int queue_full(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "full", a, 0, 0) != 0)
        return r->code;
    int e = mp_queue_full(o->obj);
    return e < 0 ? fail(r, e, "full") : ok_bool(r, e == 1);
}

static int queue_task_done(struct mgr_srv *s, struct mgr_obj *o, mp_val *a,
                           struct mgr_reply *r)
{
    if (mp__args(r, "task_done", a, 0, 0) != 0)
        return r->code;
    int e = mp_queue_task_done(o->obj);
    if (e == MP_EINVAL)
        return mp__reply_error(r, e, "ValueError", "task_done() called too many times");
    return e != 0 ? fail(r, e, "task_done") : ok_none(r);
}

static int queue_join_op(void *obj, void *extra, double t)
{
    return mp_queue_join(obj, t);
}

static int queue_join(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    double t;
    if (mp__args(r, "join", a, 0, 1) != 0 || mp__mgr_timeout_args(r, a, -1, 0, &t) != 0)
        return r->code;
    int e = timed(s, o, t, MP_ETIMEDOUT, queue_join_op, NULL);
    return e != 0 ? fail(r, e, "join") : ok_none(r);
}

static int queue_make(mp_val *a, void **obj, struct mgr_reply *r, bool joinable)
{
    int64_t maxsize;
    if (mp__args(r, joinable ? "JoinableQueue" : "Queue", a, 0, 1) != 0 ||
        int_arg(r, a, 0, 0, &maxsize) != 0)
        return r->code;
    if (maxsize > INT32_MAX)
        return mp__reply_error(r, MP_EINVAL, "ValueError", "maxsize too large");
    *obj = joinable ? mp_joinable_queue_new(.maxsize = (long)maxsize)
                    : mp_queue_new(.maxsize = (long)maxsize);
    return *obj != NULL ? 0 : oom(r);
}

static int queue_create(struct mgr_srv *s, mp_val *a, void **obj, struct mgr_reply *r)
{
    return queue_make(a, obj, r, false);
}

static int jqueue_create(struct mgr_srv *s, mp_val *a, void **obj, struct mgr_reply *r)
{
    return queue_make(a, obj, r, true);
}

static void queue_destroy(void *obj)
{
    mp_queue_free(obj);
}

#define QUEUE_METHODS                                                                     \
    {"put", queue_put}, {"put_nowait", queue_put_nowait}, {"get", queue_get},             \
        {"get_nowait", queue_get_nowait}, {"qsize", queue_qsize}, {"empty", queue_empty}, \
    {                                                                                     \
        "full", queue_full                                                                \
    }

static const struct mgr_method queue_methods[] = {QUEUE_METHODS, {NULL, NULL}};
static const struct mgr_method jqueue_methods[] = {
    QUEUE_METHODS,
    {"task_done", queue_task_done},
    {"join", queue_join},
    {NULL, NULL},
};

/* ---- the table --------------------------------------------------------------------------- */

static const struct mgr_kind sync_kinds[] = {
    {MP_PROXY_LOCK, "Lock", "Lock", true, lock_create, lock_destroy, lock_methods},
    {MP_PROXY_RLOCK, "RLock", "RLock", true, rlock_create, lock_destroy, lock_methods},
    {MP_PROXY_SEMAPHORE, "Semaphore", "Semaphore", true, sem_create, sem_destroy, sem_methods},
    {MP_PROXY_BOUNDED_SEMAPHORE, "BoundedSemaphore", "BoundedSemaphore", true, bsem_create,
     sem_destroy, sem_methods},
    {MP_PROXY_CONDITION, "Condition", "Condition", true, cond_create, cond_destroy,
     cond_methods},
    {MP_PROXY_EVENT, "Event", "Event", true, event_create, event_destroy, event_methods},
    {MP_PROXY_BARRIER, "Barrier", "Barrier", true, barrier_create, barrier_destroy,
     barrier_methods},
    {MP_PROXY_QUEUE, "Queue", "Queue", true, queue_create, queue_destroy, queue_methods},
    {MP_PROXY_JOINABLE_QUEUE, "JoinableQueue", "JoinableQueue", true, jqueue_create,
     queue_destroy, jqueue_methods},
};

const struct mgr_kind *mp__mgr_sync_kind_by_typeid(const char *typeid, size_t len)
{
    for (size_t i = 0; i < sizeof sync_kinds / sizeof sync_kinds[0]; i++)
        if (strlen(sync_kinds[i].typeid) == len &&
            memcmp(sync_kinds[i].typeid, typeid, len) == 0)
            return &sync_kinds[i];
    return mp__mgr_pool_kind_by_typeid(typeid, len);
}

const struct mgr_kind *mp__mgr_sync_kind_by_kind(uint32_t kind)
{
    for (size_t i = 0; i < sizeof sync_kinds / sizeof sync_kinds[0]; i++)
        if (sync_kinds[i].kind == kind)
            return &sync_kinds[i];
    return mp__mgr_pool_kind_by_kind(kind);
}
