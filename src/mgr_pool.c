/*
 * mgr_pool.c: a Pool hosted by the manager (Python's SyncManager.Pool) and
 * the AsyncResult objects its calls hand out.
 *
 * The server makes an mp_pool (pool.h) of its own: the workers are its
 * children.  No Pool method waits in the server: apply_async and map_async
 * submit the work and return an AsyncResult; join runs mp_pool_join in a
 * thread of its own and returns one too; terminate waits only for the
 * workers to be stopped.  The blocking calls of the proxies (apply, map,
 * join, AsyncResult.get) are an asynchronous call and a wait on its
 * AsyncResult.
 *
 * An AsyncResult's state is an arena block with an mp_event: the pool's
 * callbacks (in the server) fill it and set the event.  It is a hosted
 * kind, like Event: processes of the family wait on the event themselves,
 * watching the server, and read the result from the arena; programs
 * connected by socket wait in the server thread of their connection.
 */
#include "internal/managers.h"
#include "internal/pool.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The server's pool, shared by the Pool object and its results (each
 * result keeps it until it is freed). */
struct hpool {
    mp_pool *pool;
    _Atomic long refs;
    int processes;
};

enum { ARES_PENDING = 0, ARES_OK = 1, ARES_FAILED = 2 };

/* An AsyncResult: the fields up to msg are read by family processes. */
struct ares {
    mp_event *done;
    _Atomic uint32_t state;
    int32_t code;
    void *data; /* arena block of size bytes (ARES_OK) */
    size_t size;
    char msg[256];
    /* The server's side. */
    /* The object; a join thread while it runs; the pool's callback from
     * submission until it has run or is known never to run. */
    _Atomic long refs;
    mp_async_result *r;
    struct hpool *hp;
    void *out; /* map_async's output array */
};

static int oom(struct mgr_reply *r)
{
    return mp__reply_error(r, -ENOMEM, "MemoryError", "out of memory");
}

static void hpool_put(struct hpool *h)
{
    if (h != NULL && atomic_fetch_sub(&h->refs, 1) == 1) {
        mp_pool_free(h->pool);
        free(h);
    }
}

static void ares_put(struct ares *a)
{
    if (atomic_fetch_sub(&a->refs, 1) != 1)
        return;
    if (a->data != NULL)
        mp__free(a->data);
    free(a->out);
    mp_event_free(a->done);
    hpool_put(a->hp);
    mp__free(a);
}

static struct ares *ares_new(struct hpool *h)
{
    struct ares *a = mp__alloc(sizeof *a);
    if (a == NULL)
        return NULL;
    a->done = mp_event_new();
    if (a->done == NULL) {
        mp__free(a);
        return NULL;
    }
    atomic_store(&a->refs, 1);
    atomic_fetch_add(&h->refs, 1);
    a->hp = h;
    return a;
}

static void ares_finish(struct ares *a, int code, const char *msg, const void *data, size_t n)
{
    if (code == 0) {
        a->data = mp__alloc(n ? n : 1);
        if (a->data == NULL) {
            code = -ENOMEM;
            msg = "out of memory for the result";
        } else {
            if (n > 0)
                memcpy(a->data, data, n);
            a->size = n;
        }
    }
    a->code = code;
    snprintf(a->msg, sizeof a->msg, "%s", msg ? msg : "");
    atomic_store(&a->state, code == 0 ? ARES_OK : ARES_FAILED);
    mp_event_set(a->done);
}

/* The pool's callbacks, in its callback thread of the server: each ends
 * with the reference taken for it before submission. */
static void on_result(const void *result, size_t size, void *cb_arg)
{
    ares_finish(cb_arg, 0, NULL, result, size);
    ares_put(cb_arg);
}

static void on_error(int code, const char *message, void *cb_arg)
{
    ares_finish(cb_arg, code, message, NULL, 0);
    ares_put(cb_arg);
}

/* ---- AsyncResult ------------------------------------------------------------ */

static int ares_wait_op(void *obj, void *extra, double t)
{
    struct ares *a = obj;
    return mp_event_wait(a->done, t);
}

static int ares_wait(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    double t;
    if (mp__args(r, "wait", a, 0, 1) != 0 || mp__mgr_timeout_args(r, a, -1, 0, &t) != 0)
        return r->code;
    int e = mp__mgr_timed(s, o, t, MP_ETIMEDOUT, ares_wait_op, NULL);
    if (e == MP_ETIMEDOUT || e == 0) {
        mp__reply_borrow(r, e == 0 ? &mp__true : &mp__false);
        return 0;
    }
    return mp__reply_error(r, e, e == MP_EEOF ? "EOFError" : "Error", "wait: %s",
                           mp_strerror(e));
}

static int ares_ready(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "ready", a, 0, 0) != 0)
        return r->code;
    struct ares *x = o->obj;
    mp__reply_borrow(r, atomic_load(&x->state) != ARES_PENDING ? &mp__true : &mp__false);
    return 0;
}

static int ares_successful(struct mgr_srv *s, struct mgr_obj *o, mp_val *a,
                           struct mgr_reply *r)
{
    if (mp__args(r, "successful", a, 0, 0) != 0)
        return r->code;
    struct ares *x = o->obj;
    uint32_t st = atomic_load(&x->state);
    if (st == ARES_PENDING)
        return mp__reply_error(r, MP_EINVAL, "ValueError", "the result is not ready");
    mp__reply_borrow(r, st == ARES_OK ? &mp__true : &mp__false);
    return 0;
}

static int ares_get(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    double t;
    if (mp__args(r, "get", a, 0, 1) != 0 || mp__mgr_timeout_args(r, a, -1, 0, &t) != 0)
        return r->code;
    int e = mp__mgr_timed(s, o, t, MP_ETIMEDOUT, ares_wait_op, NULL);
    if (e != 0)
        return mp__reply_error(r, e, e == MP_ETIMEDOUT ? "TimeoutError" : "EOFError",
                               "get: %s", mp_strerror(e));
    struct ares *x = o->obj;
    if (atomic_load(&x->state) == ARES_FAILED)
        return mp__reply_error(r, x->code, "TaskError", "%s",
                               x->msg[0] ? x->msg : mp_strerror(x->code));
    mp_val *v = mp__val_new_bytes(MP_VAL_BYTES, x->data, x->size);
    if (v == NULL)
        return oom(r);
    mp__reply_val(r, v);
    return 0;
}

static void ares_destroy(void *obj)
{
    struct ares *a = obj;
    /* A callback may still run after mp_async_result_free returns (the job
     * finished first) and then drops its own reference; one that never
     * runs leaves it to us.  out goes with the last reference. */
    mp__pjob *j = (mp__pjob *)a->r;
    bool calls_back = false;
    if (j != NULL) {
        mp__pool_job_retain(j);
        mp_async_result_free(a->r);
        calls_back = mp__pool_job_calls_back(j);
        mp__pool_job_release(j);
        a->r = NULL;
        if (!calls_back)
            ares_put(a);
    }
    ares_put(a);
}

static const struct mgr_method ares_methods[] = {
    {"get", ares_get},     {"wait", ares_wait},
    {"ready", ares_ready}, {"successful", ares_successful},
    {NULL, NULL},
};

/* ---- Pool -------------------------------------------------------------------------- */

static int pool_create(struct mgr_srv *s, mp_val *a, void **obj, struct mgr_reply *r)
{
    int64_t n = 0;
    if (mp__args(r, "Pool", a, 0, 1) != 0)
        return r->code;
    if (a->seq.len == 1 && a->seq.items[0]->type != MP_VAL_NONE &&
        (mp_val_as_int(a->seq.items[0], &n) != 0 || n < 0 || n > 4096))
        return mp__reply_error(r, MP_EINVAL, "ValueError",
                               "Number of processes must be at least 1");
    /* Only a serving server starts workers (not a dispatcher run on its
     * own, as the request fuzzer does). */
    mp_manager *m = mp__srv_manager(s);
    if (atomic_load(&m->state) != MGR_RUNNING || m->server_pid != getpid())
        return mp__reply_error(r, MP_EINVAL, "ValueError",
                               "Pool(): the manager is not serving");
    struct hpool *h = calloc(1, sizeof *h);
    if (h == NULL)
        return oom(r);
    /* The server is daemonic (it ends with its starter); its pool's workers
     * are daemonic children of it and end with it. */
    mp__daemon_children_ok = true;
    h->pool = mp_pool_new(.processes = (int)n);
    if (h->pool == NULL) {
        int e = mp_last_error();
        free(h);
        return mp__reply_error(r, e, "OSError", "Pool(): %s", mp_strerror(e));
    }
    h->processes = mp_pool_processes(h->pool);
    atomic_store(&h->refs, 1);
    *obj = h;
    return 0;
}

static void pool_destroy(void *obj)
{
    struct hpool *h = obj;
    /* Python's Pool.__del__ after the last proxy: stop the workers (the
     * results still held fail and let the pool go with the last of them). */
    mp_pool_terminate(h->pool);
    hpool_put(h);
}

/* The function argument: the fnref's two halves, as ints. */
typedef void (*any_fn)(void);

static any_fn fn_arg(struct mgr_reply *r, const mp_val *args)
{
    int64_t mod, off;
    if (mp_val_as_int(args->seq.items[0], &mod) != 0 ||
        mp_val_as_int(args->seq.items[1], &off) != 0) {
        mp__reply_error(r, MP_EINVAL, "TypeError", "function reference expected");
        return NULL;
    }
    mp__fnref ref = {(uint64_t)mod, (uint64_t)off};
    void (*f)(void) = mp__fnref_resolve(&ref);
    if (f == NULL)
        mp__reply_error(r, MP_EINVAL, "AttributeError",
                        "the function is in no module loaded by the manager");
    return f;
}

/* A new AsyncResult object and the reply that hands out its proxy. */
static int ares_publish(struct mgr_srv *s, struct ares *a, struct mgr_reply *r)
{
    int e = mp__srv_register(s, MP_PROXY_ASYNC_RESULT, a, r);
    if (e != 0)
        ares_destroy(a);
    return e;
}

static int pool_apply_async(struct mgr_srv *s, struct mgr_obj *o, mp_val *a,
                            struct mgr_reply *r)
{
    if (mp__args(r, "apply_async", a, 3, 3) != 0)
        return r->code;
    mp_pool_bytes_fn f = (mp_pool_bytes_fn)fn_arg(r, a);
    const char *in;
    size_t n;
    if (f == NULL)
        return r->code;
    if (mp_val_as_str(a->seq.items[2], &in, &n) != 0 || a->seq.items[2]->type != MP_VAL_BYTES)
        return mp__reply_error(r, MP_EINVAL, "TypeError", "bytes expected");
    struct hpool *h = o->obj;
    struct ares *x = ares_new(h);
    if (x == NULL)
        return oom(r);
    atomic_fetch_add(&x->refs, 1); /* the callback's */
    x->r = mp_pool_apply_async(h->pool, f, in, n, .callback = on_result,
                               .error_callback = on_error, .cb_arg = x);
    if (x->r == NULL) {
        int e = mp_last_error();
        atomic_fetch_sub(&x->refs, 1);
        ares_destroy(x);
        return mp__reply_error(r, e, "ValueError", "apply_async: %s", mp_strerror(e));
    }
    return ares_publish(s, x, r);
}

static int pool_map_async(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    int64_t in_size, out_size, chunk;
    const char *in;
    size_t len;
    if (mp__args(r, "map_async", a, 6, 6) != 0)
        return r->code;
    mp_pool_fn f = (mp_pool_fn)fn_arg(r, a);
    if (f == NULL)
        return r->code;
    if (mp_val_as_str(a->seq.items[2], &in, &len) != 0 ||
        a->seq.items[2]->type != MP_VAL_BYTES ||
        mp_val_as_int(a->seq.items[3], &in_size) != 0 ||
        mp_val_as_int(a->seq.items[4], &out_size) != 0 ||
        mp_val_as_int(a->seq.items[5], &chunk) != 0 || in_size <= 0 || out_size < 0 ||
        chunk < 0 || len % (uint64_t)in_size != 0)
        return mp__reply_error(r, MP_EINVAL, "TypeError",
                               "map_async(f, bytes, in_size, out_size, chunksize)");
    size_t n = len / (size_t)in_size;
    if (out_size > 0 && n > ((size_t)1 << 40) / (size_t)out_size)
        return oom(r);
    struct hpool *h = o->obj;
    struct ares *x = ares_new(h);
    if (x == NULL)
        return oom(r);
    if (n > 0 && out_size > 0 && (x->out = malloc(n * (size_t)out_size)) == NULL) {
        ares_destroy(x);
        return oom(r);
    }
    atomic_fetch_add(&x->refs, 1); /* the callback's */
    x->r = mp_pool_map_async(h->pool, f, n ? in : NULL, (size_t)in_size, n, x->out,
                             (size_t)out_size, .chunksize = (size_t)chunk,
                             .callback = on_result, .error_callback = on_error, .cb_arg = x);
    if (x->r == NULL) {
        int e = mp_last_error();
        atomic_fetch_sub(&x->refs, 1);
        ares_destroy(x);
        return mp__reply_error(r, e, "ValueError", "map_async: %s", mp_strerror(e));
    }
    /* An empty map may be complete without a callback. */
    if (n == 0 && atomic_load(&x->state) == ARES_PENDING && mp_async_result_ready(x->r) == 1) {
        ares_finish(x, 0, NULL, "", 0);
        ares_put(x); /* the callback's: it was not called and will not be */
    }
    return ares_publish(s, x, r);
}

/* close or terminate: no arguments, None or ValueError. */
static int pool_stop(struct mgr_obj *o, mp_val *a, struct mgr_reply *r, const char *name,
                     int (*stop)(mp_pool *))
{
    if (mp__args(r, name, a, 0, 0) != 0)
        return r->code;
    struct hpool *h = o->obj;
    int e = stop(h->pool);
    if (e != 0)
        return mp__reply_error(r, e, "ValueError", "%s: %s", name, mp_strerror(e));
    mp__reply_none(r);
    return 0;
}

static int pool_close(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    return pool_stop(o, a, r, "close", mp_pool_close);
}

static int pool_terminate(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    return pool_stop(o, a, r, "terminate", mp_pool_terminate);
}

static void *join_thread(void *arg)
{
    struct ares *a = arg;
    int e = mp_pool_join(a->hp->pool, MP_FOREVER);
    ares_finish(a, e, e != 0 ? mp_strerror(e) : NULL, "", 0);
    ares_put(a);
    return NULL;
}

/* join: Python's Pool.join(), as an AsyncResult that completes when the
 * workers have ended (the proxy waits on it). */
static int pool_join(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "join", a, 0, 0) != 0)
        return r->code;
    struct hpool *h = o->obj;
    /* Python: join() before close() or terminate() is a ValueError. */
    int e = mp_pool_join(h->pool, 0);
    if (e == MP_EINVAL)
        return mp__reply_error(r, MP_EINVAL, "ValueError", "Pool is still running");
    struct ares *x = ares_new(h);
    if (x == NULL)
        return oom(r);
    if (e != MP_ETIMEDOUT) {
        ares_finish(x, e, e != 0 ? mp_strerror(e) : NULL, "", 0);
        return ares_publish(s, x, r);
    }
    atomic_fetch_add(&x->refs, 1);
    pthread_attr_t at;
    pthread_t th;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    e = -pthread_create(&th, &at, join_thread, x);
    pthread_attr_destroy(&at);
    if (e != 0) {
        atomic_fetch_sub(&x->refs, 1);
        ares_destroy(x);
        return mp__reply_error(r, e, "OSError", "join: %s", mp_strerror(e));
    }
    return ares_publish(s, x, r);
}

static int pool_repr(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    struct hpool *h = o->obj;
    char text[64];
    int n = snprintf(text, sizeof text, "<Pool processes=%d>", h->processes);
    mp_val *v = mp__val_new_bytes(MP_VAL_STR, text, (size_t)n);
    if (v == NULL)
        return oom(r);
    mp__reply_val(r, v);
    return 0;
}

static const struct mgr_method pool_methods[] = {
    {"apply_async", pool_apply_async},
    {"map_async", pool_map_async},
    {"close", pool_close},
    {"terminate", pool_terminate},
    {"join", pool_join},
    {"__repr__", pool_repr},
    {"__str__", pool_repr},
    {NULL, NULL},
};

static const struct mgr_kind pool_kinds[] = {
    {MP_PROXY_POOL, "Pool", "Pool", false, pool_create, pool_destroy, pool_methods},
    /* Created by the Pool's methods only. */
    {MP_PROXY_ASYNC_RESULT, "AsyncResult", "AsyncResult", true, NULL, ares_destroy,
     ares_methods},
};

const struct mgr_kind *mp__mgr_pool_kind_by_typeid(const char *typeid, size_t len)
{
    for (size_t i = 0; i < sizeof pool_kinds / sizeof pool_kinds[0]; i++)
        if (strlen(pool_kinds[i].typeid) == len &&
            memcmp(pool_kinds[i].typeid, typeid, len) == 0)
            return &pool_kinds[i];
    return NULL;
}

const struct mgr_kind *mp__mgr_pool_kind_by_kind(uint32_t kind)
{
    for (size_t i = 0; i < sizeof pool_kinds / sizeof pool_kinds[0]; i++)
        if (pool_kinds[i].kind == kind)
            return &pool_kinds[i];
    return NULL;
}

/* ---- the proxies' side --------------------------------------------------------- */

mp_proxy *mp_manager_pool(mp_manager *m, int processes)
{
    if (processes < 0)
        return mp__fail_null(MP_EINVAL);
    return mp__mgr_create(m, "Pool", NULL, ARGS(MP_I64(processes)));
}

/* The function as the two ints of its reference; MP_EINVAL for a function in
 * no loaded module, or for a manager in another program (a function is sent
 * as module + offset, meaningful only to the same program). */
static int fn_ref(mp_proxy *pool, void (*f)(void), mp__fnref *ref)
{
    int e = mp__mgr_check_proxy(pool, MP_PROXY_POOL);
    if (e != 0)
        return e;
    if (f == NULL || atomic_load(&pool->m->state) == MGR_CONNECTED)
        return MP_EINVAL;
    return mp__fnref_make(ref, f);
}

mp_proxy *mp_poolproxy_apply_async(mp_proxy *pool, mp_pool_bytes_fn f, const void *in,
                                   size_t in_size)
{
    mp__fnref ref;
    int e = fn_ref(pool, (void (*)(void))f, &ref);
    if (e == 0 && in == NULL && in_size > 0)
        e = MP_EINVAL;
    if (e != 0)
        return mp__fail_null(e);
    return mp__mgr_call_proxy(pool, MP_PROXY_POOL, "apply_async",
                              ARGS(MP_I64(ref.module), MP_I64(ref.offset),
                                   MP_BYTES(in_size ? in : "", in_size)));
}

mp_proxy *mp_poolproxy_map_async(mp_proxy *pool, mp_pool_fn f, const void *in, size_t in_size,
                                 size_t n, size_t out_size, size_t chunksize)
{
    mp__fnref ref;
    int e = fn_ref(pool, (void (*)(void))f, &ref);
    if (e == 0 && (in_size == 0 || (in == NULL && n > 0) || n > SIZE_MAX / in_size ||
                   in_size > INT64_MAX || out_size > INT64_MAX || chunksize > INT64_MAX))
        e = MP_EINVAL;
    if (e != 0)
        return mp__fail_null(e);
    return mp__mgr_call_proxy(pool, MP_PROXY_POOL, "map_async",
                              ARGS(MP_I64(ref.module), MP_I64(ref.offset),
                                   MP_BYTES(n ? in : "", n * in_size), MP_I64(in_size),
                                   MP_I64(out_size), MP_I64(chunksize)));
}

int mp_asyncproxy_get(mp_proxy *r, double timeout, void **out, size_t *size)
{
    if (out != NULL)
        *out = NULL;
    if (size != NULL)
        *size = 0;
    if (timeout < 0 && timeout != MP_FOREVER)
        return MP_EINVAL;
    mp_val *v = NULL;
    int e = mp__mgr_call(r, MP_PROXY_ASYNC_RESULT, "get", NULL,
                         ARGS(timeout == MP_FOREVER ? MP_NONE : MP_FLOAT(timeout)), &v);
    /* A task's own code reaches the caller, as Python re-raises its error. */
    if (e == MP_EREMOTE && strcmp(mp_remote_error_type(), "TaskError") == 0)
        e = mp_remote_error_code();
    if (e != 0)
        return e;
    if (v == NULL || v->type != MP_VAL_BYTES) {
        mp_val_free(v);
        return -EPROTO;
    }
    if (out != NULL) {
        *out = malloc(v->s.len ? v->s.len : 1);
        if (*out == NULL) {
            mp_val_free(v);
            return -ENOMEM;
        }
        memcpy(*out, v->s.ptr, v->s.len);
    }
    if (size != NULL)
        *size = v->s.len;
    mp_val_free(v);
    return 0;
}

static int bool_call(mp_proxy *r, const char *method, const mp_val *arg)
{
    mp_val *v = NULL;
    int e = arg ? mp__mgr_call(r, MP_PROXY_ASYNC_RESULT, method, NULL, ARGS(arg), &v)
                : mp__mgr_call(r, MP_PROXY_ASYNC_RESULT, method, NULL, NOARGS, &v);
    if (e != 0)
        return e;
    bool b = false;
    e = mp_val_as_bool(v, &b) == 0 ? (b ? 1 : 0) : -EPROTO;
    mp_val_free(v);
    return e;
}

int mp_asyncproxy_wait(mp_proxy *r, double timeout)
{
    if (timeout < 0 && timeout != MP_FOREVER)
        return MP_EINVAL;
    int e = bool_call(r, "wait", timeout == MP_FOREVER ? MP_NONE : MP_FLOAT(timeout));
    return e == 1 ? 0 : e == 0 ? MP_ETIMEDOUT : e;
}

int mp_asyncproxy_ready(mp_proxy *r)
{
    return bool_call(r, "ready", NULL);
}

int mp_asyncproxy_successful(mp_proxy *r)
{
    int e = bool_call(r, "successful", NULL);
    return e == MP_EREMOTE && strcmp(mp_remote_error_type(), "ValueError") == 0 ? MP_EINVAL
                                                                                : e;
}

int mp_poolproxy_apply(mp_proxy *pool, mp_pool_bytes_fn f, const void *in, size_t in_size,
                       void **out, size_t *out_size)
{
    mp_proxy *r = mp_poolproxy_apply_async(pool, f, in, in_size);
    if (r == NULL)
        return mp_last_error();
    void *res = NULL;
    size_t n = 0;
    int e = mp_asyncproxy_get(r, MP_FOREVER, &res, &n);
    mp_proxy_free(r);
    if (e != 0)
        return e;
    if (out != NULL)
        *out = res;
    else
        free(res);
    if (out_size != NULL)
        *out_size = n;
    return 0;
}

int mp_poolproxy_map(mp_proxy *pool, mp_pool_fn f, const void *in, size_t in_size, size_t n,
                     void *out, size_t out_size)
{
    if (out == NULL && out_size > 0 && n > 0)
        return MP_EINVAL;
    mp_proxy *r = mp_poolproxy_map_async(pool, f, in, in_size, n, out_size, 0);
    if (r == NULL)
        return mp_last_error();
    void *res = NULL;
    size_t len = 0;
    int e = mp_asyncproxy_get(r, MP_FOREVER, &res, &len);
    mp_proxy_free(r);
    if (e == 0 && len != n * out_size)
        e = -EPROTO;
    if (e == 0 && len > 0)
        memcpy(out, res, len);
    free(res);
    return e;
}

int mp_poolproxy_close(mp_proxy *pool)
{
    return mp__mgr_call(pool, MP_PROXY_POOL, "close", NULL, NOARGS, NULL);
}

int mp_poolproxy_terminate(mp_proxy *pool)
{
    return mp__mgr_call(pool, MP_PROXY_POOL, "terminate", NULL, NOARGS, NULL);
}

int mp_poolproxy_join(mp_proxy *pool, double timeout)
{
    if (timeout < 0 && timeout != MP_FOREVER)
        return MP_EINVAL;
    mp_proxy *r = mp__mgr_call_proxy(pool, MP_PROXY_POOL, "join", NOARGS);
    if (r == NULL) {
        int e = mp_last_error();
        return e == MP_EREMOTE && strcmp(mp_remote_error_type(), "ValueError") == 0 ? MP_EINVAL
                                                                                    : e;
    }
    int e = mp_asyncproxy_wait(r, timeout);
    if (e == 0)
        e = mp_asyncproxy_get(r, 0, NULL, NULL);
    mp_proxy_free(r);
    return e;
}
