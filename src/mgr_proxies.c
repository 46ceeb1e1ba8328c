/*
 * mgr_proxies.c: the typed proxy functions (managers.h): dict, list,
 * Namespace, Value and Array proxies, and the hosted synchronisation
 * objects and queues.  Each checks what it can before anything is sent and
 * calls the object's method by its Python name through mp__mgr_call.
 */
#include "internal/managers.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* An int result as ssize_t. */
static ssize_t int_result(int e, mp_val *v)
{
    if (e != 0)
        return e;
    int64_t i = 0;
    e = mp_val_as_int(v, &i);
    mp_val_free(v);
    return e != 0 ? -EPROTO : (ssize_t)i;
}

static int bool_result(int e, mp_val *v)
{
    if (e != 0)
        return e;
    int r = mp_val_truth(v) ? 1 : 0;
    mp_val_free(v);
    return r;
}

/* ---- dict ---------------------------------------------------------------------- */

#define D MP_PROXY_DICT

int mp_dict_set(mp_proxy *d, const mp_val *key, const mp_val *value)
{
    if (!mp_val_hashable(key) || value == NULL)
        return MP_EINVAL;
    return mp__mgr_call(d, D, "__setitem__", NULL, ARGS(key, value), NULL);
}

int mp_dict_getitem(mp_proxy *d, const mp_val *key, mp_val **out)
{
    if (!mp_val_hashable(key) || out == NULL)
        return MP_EINVAL;
    return mp__mgr_call(d, D, "__getitem__", NULL, ARGS(key), out);
}

int mp_dict_get(mp_proxy *d, const mp_val *key, const mp_val *dflt, mp_val **out)
{
    if (!mp_val_hashable(key) || out == NULL)
        return MP_EINVAL;
    return mp__mgr_call(d, D, "get", NULL, ARGS(key, dflt ? dflt : MP_NONE), out);
}

int mp_dict_del(mp_proxy *d, const mp_val *key)
{
    if (!mp_val_hashable(key))
        return MP_EINVAL;
    return mp__mgr_call(d, D, "__delitem__", NULL, ARGS(key), NULL);
}

int mp_dict_contains(mp_proxy *d, const mp_val *key)
{
    if (!mp_val_hashable(key))
        return MP_EINVAL;
    mp_val *v;
    int e = mp__mgr_call(d, D, "__contains__", NULL, ARGS(key), &v);
    return bool_result(e, v);
}

ssize_t mp_dict_len(mp_proxy *d)
{
    mp_val *v;
    int e = mp__mgr_call(d, D, "__len__", NULL, NOARGS, &v);
    return int_result(e, v);
}

static int need_out(mp_val **out)
{
    return out == NULL ? MP_EINVAL : 0;
}

int mp_dict_keys(mp_proxy *d, mp_val **out)
{
    return need_out(out) ? MP_EINVAL : mp__mgr_call(d, D, "keys", NULL, NOARGS, out);
}

int mp_dict_values(mp_proxy *d, mp_val **out)
{
    return need_out(out) ? MP_EINVAL : mp__mgr_call(d, D, "values", NULL, NOARGS, out);
}

int mp_dict_items(mp_proxy *d, mp_val **out)
{
    return need_out(out) ? MP_EINVAL : mp__mgr_call(d, D, "items", NULL, NOARGS, out);
}

int mp_dict_copy(mp_proxy *d, mp_val **out)
{
    return need_out(out) ? MP_EINVAL : mp__mgr_call(d, D, "copy", NULL, NOARGS, out);
}

int mp_dict_update(mp_proxy *d, const mp_val *other)
{
    if (other == NULL)
        return MP_EINVAL;
    return mp__mgr_call(d, D, "update", NULL, ARGS(other), NULL);
}

int mp_dict_clear(mp_proxy *d)
{
    return mp__mgr_call(d, D, "clear", NULL, NOARGS, NULL);
}

int mp_dict_pop(mp_proxy *d, const mp_val *key, const mp_val *dflt, mp_val **out)
{
    if (!mp_val_hashable(key) || out == NULL)
        return MP_EINVAL;
    if (dflt != NULL)
        return mp__mgr_call(d, D, "pop", NULL, ARGS(key, dflt), out);
    return mp__mgr_call(d, D, "pop", NULL, ARGS(key), out);
}

int mp_dict_popitem(mp_proxy *d, mp_val **out)
{
    return need_out(out) ? MP_EINVAL : mp__mgr_call(d, D, "popitem", NULL, NOARGS, out);
}

int mp_dict_setdefault(mp_proxy *d, const mp_val *key, const mp_val *dflt, mp_val **out)
{
    if (!mp_val_hashable(key) || out == NULL)
        return MP_EINVAL;
    return mp__mgr_call(d, D, "setdefault", NULL, ARGS(key, dflt ? dflt : MP_NONE), out);
}

/* ---- list ---------------------------------------------------------------------- */

#define L MP_PROXY_LIST

static bool is_seq(const mp_val *v)
{
    return v != NULL && (v->type == MP_VAL_LIST || v->type == MP_VAL_TUPLE);
}

int mp_list_append(mp_proxy *l, const mp_val *x)
{
    return x == NULL ? MP_EINVAL : mp__mgr_call(l, L, "append", NULL, ARGS(x), NULL);
}

int mp_list_extend(mp_proxy *l, const mp_val *seq)
{
    return !is_seq(seq) ? MP_EINVAL : mp__mgr_call(l, L, "extend", NULL, ARGS(seq), NULL);
}

int mp_list_insert(mp_proxy *l, int64_t i, const mp_val *x)
{
    return x == NULL ? MP_EINVAL
                     : mp__mgr_call(l, L, "insert", NULL, ARGS(MP_I64(i), x), NULL);
}

int mp_list_get(mp_proxy *l, int64_t i, mp_val **out)
{
    return need_out(out) ? MP_EINVAL
                         : mp__mgr_call(l, L, "__getitem__", NULL, ARGS(MP_I64(i)), out);
}

int mp_list_set(mp_proxy *l, int64_t i, const mp_val *x)
{
    return x == NULL ? MP_EINVAL
                     : mp__mgr_call(l, L, "__setitem__", NULL, ARGS(MP_I64(i), x), NULL);
}

int mp_list_del(mp_proxy *l, int64_t i)
{
    return mp__mgr_call(l, L, "__delitem__", NULL, ARGS(MP_I64(i)), NULL);
}

int mp_list_pop(mp_proxy *l, int64_t i, mp_val **out)
{
    return need_out(out) ? MP_EINVAL : mp__mgr_call(l, L, "pop", NULL, ARGS(MP_I64(i)), out);
}

int mp_list_remove(mp_proxy *l, const mp_val *x)
{
    return x == NULL ? MP_EINVAL : mp__mgr_call(l, L, "remove", NULL, ARGS(x), NULL);
}

ssize_t mp_list_index(mp_proxy *l, const mp_val *x)
{
    if (x == NULL)
        return MP_EINVAL;
    mp_val *v;
    int e = mp__mgr_call(l, L, "index", NULL, ARGS(x), &v);
    return int_result(e, v);
}

ssize_t mp_list_count(mp_proxy *l, const mp_val *x)
{
    if (x == NULL)
        return MP_EINVAL;
    mp_val *v;
    int e = mp__mgr_call(l, L, "count", NULL, ARGS(x), &v);
    return int_result(e, v);
}

int mp_list_contains(mp_proxy *l, const mp_val *x)
{
    if (x == NULL)
        return MP_EINVAL;
    mp_val *v;
    int e = mp__mgr_call(l, L, "__contains__", NULL, ARGS(x), &v);
    return bool_result(e, v);
}

ssize_t mp_list_len(mp_proxy *l)
{
    mp_val *v;
    int e = mp__mgr_call(l, L, "__len__", NULL, NOARGS, &v);
    return int_result(e, v);
}

int mp_list_reverse(mp_proxy *l)
{
    return mp__mgr_call(l, L, "reverse", NULL, NOARGS, NULL);
}

int mp_list_sort(mp_proxy *l, const char *cmp, bool reverse)
{
    if (cmp != NULL && !mp__mgr_name_ok(cmp))
        return MP_EINVAL;
    return mp__mgr_call(l, L, "sort", NULL,
                        ARGS(cmp ? MP_STR(cmp) : MP_NONE, MP_BOOL(reverse)), NULL);
}

static const mp_val *bound(int64_t b, mp_val *tmp)
{
    if (b == MP_SLICE_END)
        return &mp__none;
    tmp->type = MP_VAL_INT;
    tmp->i = b;
    return tmp;
}

int mp_list_slice(mp_proxy *l, int64_t start, int64_t stop, int64_t step, mp_val **out)
{
    if (out == NULL || step == 0)
        return MP_EINVAL;
    mp_val a = {0}, b = {0};
    return mp__mgr_call(l, L, "getslice", NULL,
                        ARGS(bound(start, &a), bound(stop, &b), MP_I64(step)), out);
}

int mp_list_set_slice(mp_proxy *l, int64_t start, int64_t stop, const mp_val *seq)
{
    if (!is_seq(seq))
        return MP_EINVAL;
    mp_val a = {0}, b = {0};
    return mp__mgr_call(l, L, "setslice", NULL, ARGS(bound(start, &a), bound(stop, &b), seq),
                        NULL);
}

int mp_list_del_slice(mp_proxy *l, int64_t start, int64_t stop)
{
    mp_val a = {0}, b = {0};
    return mp__mgr_call(l, L, "delslice", NULL, ARGS(bound(start, &a), bound(stop, &b)), NULL);
}

int mp_list_copy(mp_proxy *l, mp_val **out)
{
    return need_out(out) ? MP_EINVAL : mp__mgr_call(l, L, "copy", NULL, NOARGS, out);
}

int mp_dict_or(mp_proxy *d, const mp_val *other, mp_val **out)
{
    if (other == NULL || other->type != MP_VAL_DICT || need_out(out) != 0)
        return MP_EINVAL;
    return mp__mgr_call(d, D, "__or__", NULL, ARGS(other), out);
}

int mp_dict_ior(mp_proxy *d, const mp_val *other)
{
    if (other == NULL)
        return MP_EINVAL;
    return mp__mgr_call(d, D, "__ior__", NULL, ARGS(other), NULL);
}

int mp_list_add(mp_proxy *l, const mp_val *other, mp_val **out)
{
    if (other == NULL || other->type != MP_VAL_LIST || need_out(out) != 0)
        return MP_EINVAL;
    return mp__mgr_call(l, L, "__add__", NULL, ARGS(other), out);
}

int mp_list_iadd(mp_proxy *l, const mp_val *seq)
{
    return !is_seq(seq) ? MP_EINVAL : mp__mgr_call(l, L, "__iadd__", NULL, ARGS(seq), NULL);
}

int mp_list_mul(mp_proxy *l, int64_t n, mp_val **out)
{
    return need_out(out) ? MP_EINVAL
                         : mp__mgr_call(l, L, "__mul__", NULL, ARGS(MP_I64(n)), out);
}

int mp_list_imul(mp_proxy *l, int64_t n)
{
    return mp__mgr_call(l, L, "__imul__", NULL, ARGS(MP_I64(n)), NULL);
}

int mp_list_reversed(mp_proxy *l, mp_val **out)
{
    return need_out(out) ? MP_EINVAL : mp__mgr_call(l, L, "__reversed__", NULL, NOARGS, out);
}

/* ---- set ------------------------------------------------------------------------ */

#define S MP_PROXY_SET

/* A list or tuple of hashable members. */
static bool members_ok(const mp_val *seq)
{
    if (!is_seq(seq))
        return false;
    for (size_t i = 0; i < seq->seq.len; i++)
        if (!mp_val_hashable(seq->seq.items[i]))
            return false;
    return true;
}

static int set_call1(mp_proxy *s, const char *method, const mp_val *x)
{
    if (!mp_val_hashable(x))
        return MP_EINVAL;
    return mp__mgr_call(s, S, method, NULL, ARGS(x), NULL);
}

static int set_call_seq(mp_proxy *s, const char *method, const mp_val *seq, mp_val **out)
{
    if (!members_ok(seq) || need_out(out) != 0)
        return MP_EINVAL;
    return mp__mgr_call(s, S, method, NULL, ARGS(seq), out);
}

int mp_setproxy_add(mp_proxy *s, const mp_val *x)
{
    return set_call1(s, "add", x);
}

int mp_setproxy_discard(mp_proxy *s, const mp_val *x)
{
    return set_call1(s, "discard", x);
}

int mp_setproxy_remove(mp_proxy *s, const mp_val *x)
{
    return set_call1(s, "remove", x);
}

int mp_setproxy_contains(mp_proxy *s, const mp_val *x)
{
    if (!mp_val_hashable(x))
        return MP_EINVAL;
    mp_val *v = NULL;
    int e = mp__mgr_call(s, S, "__contains__", NULL, ARGS(x), &v);
    return bool_result(e, v);
}

ssize_t mp_setproxy_len(mp_proxy *s)
{
    mp_val *v = NULL;
    int e = mp__mgr_call(s, S, "__len__", NULL, NOARGS, &v);
    return int_result(e, v);
}

int mp_setproxy_pop(mp_proxy *s, mp_val **out)
{
    return need_out(out) ? MP_EINVAL : mp__mgr_call(s, S, "pop", NULL, NOARGS, out);
}

int mp_setproxy_clear(mp_proxy *s)
{
    return mp__mgr_call(s, S, "clear", NULL, NOARGS, NULL);
}

int mp_setproxy_update(mp_proxy *s, const mp_val *seq)
{
    return !members_ok(seq) ? MP_EINVAL : mp__mgr_call(s, S, "update", NULL, ARGS(seq), NULL);
}

int mp_setproxy_union(mp_proxy *s, const mp_val *seq, mp_val **out)
{
    return set_call_seq(s, "union", seq, out);
}

int mp_setproxy_intersection(mp_proxy *s, const mp_val *seq, mp_val **out)
{
    return set_call_seq(s, "intersection", seq, out);
}

int mp_setproxy_difference(mp_proxy *s, const mp_val *seq, mp_val **out)
{
    return set_call_seq(s, "difference", seq, out);
}

int mp_setproxy_members(mp_proxy *s, mp_val **out)
{
    return need_out(out) ? MP_EINVAL : mp__mgr_call(s, S, "copy", NULL, NOARGS, out);
}

/* ---- iteration -------------------------------------------------------------------- */

struct mp_proxy_iter {
    mp_val *snap; /* a list */
    size_t pos;
};

mp_proxy_iter *mp_proxy_iter_new(mp_proxy *p)
{
    mp_val *snap = NULL;
    int e;
    switch (mp_proxy_kind_of(p)) {
    case MP_PROXY_DICT:
        e = mp_dict_keys(p, &snap);
        break;
    case MP_PROXY_LIST:
        e = mp_list_copy(p, &snap);
        break;
    case MP_PROXY_SET:
        e = mp_setproxy_members(p, &snap);
        break;
    default:
        return mp__fail_null(MP_EINVAL);
    }
    if (e == 0 && (snap == NULL || snap->type != MP_VAL_LIST))
        e = -EPROTO;
    mp_proxy_iter *it = e == 0 ? malloc(sizeof *it) : NULL;
    if (it == NULL) {
        mp_val_free(snap);
        return mp__fail_null(e != 0 ? e : -ENOMEM);
    }
    it->snap = snap;
    it->pos = 0;
    return it;
}

int mp_proxy_iter_next(mp_proxy_iter *it, const mp_val **item)
{
    if (it == NULL || item == NULL)
        return MP_EINVAL;
    if (it->pos >= it->snap->seq.len) {
        *item = NULL;
        return 0;
    }
    *item = it->snap->seq.items[it->pos++];
    return 1;
}

void mp_proxy_iter_free(mp_proxy_iter *it)
{
    if (it == NULL)
        return;
    mp_val_free(it->snap);
    free(it);
}

/* ---- Namespace ------------------------------------------------------------------ */

#define NS MP_PROXY_NAMESPACE

static bool attr_ok(const char *name)
{
    if (name == NULL || name[0] == '\0' || name[0] == '_' ||
        (name[0] >= '0' && name[0] <= '9') || strlen(name) > 255)
        return false;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
              (*c >= '0' && *c <= '9') || *c == '_' || *c >= 0x80))
            return false;
    return mp__utf8_valid(name, strlen(name));
}

int mp_namespace_set(mp_proxy *ns, const char *name, const mp_val *value)
{
    if (!attr_ok(name) || value == NULL)
        return MP_EINVAL;
    return mp__mgr_call(ns, NS, "__setattr__", NULL, ARGS(MP_STR(name), value), NULL);
}

int mp_namespace_get(mp_proxy *ns, const char *name, mp_val **out)
{
    if (!attr_ok(name) || out == NULL)
        return MP_EINVAL;
    return mp__mgr_call(ns, NS, "__getattribute__", NULL, ARGS(MP_STR(name)), out);
}

int mp_namespace_del(mp_proxy *ns, const char *name)
{
    if (!attr_ok(name))
        return MP_EINVAL;
    return mp__mgr_call(ns, NS, "__delattr__", NULL, ARGS(MP_STR(name)), NULL);
}

int mp_namespace_copy(mp_proxy *ns, mp_val **out)
{
    return need_out(out) ? MP_EINVAL : mp__mgr_call(ns, NS, "copy", NULL, NOARGS, out);
}

/* ---- Value and Array --------------------------------------------------------------- */

int mp_valueproxy_get(mp_proxy *v, mp_val **out)
{
    return need_out(out) ? MP_EINVAL
                         : mp__mgr_call(v, MP_PROXY_VALUE, "get", NULL, NOARGS, out);
}

int mp_valueproxy_set(mp_proxy *v, const mp_val *x)
{
    return x == NULL ? MP_EINVAL : mp__mgr_call(v, MP_PROXY_VALUE, "set", NULL, ARGS(x), NULL);
}

ssize_t mp_arrayproxy_len(mp_proxy *a)
{
    mp_val *v;
    int e = mp__mgr_call(a, MP_PROXY_ARRAY, "__len__", NULL, NOARGS, &v);
    return int_result(e, v);
}

int mp_arrayproxy_get(mp_proxy *a, int64_t i, mp_val **out)
{
    return need_out(out)
               ? MP_EINVAL
               : mp__mgr_call(a, MP_PROXY_ARRAY, "__getitem__", NULL, ARGS(MP_I64(i)), out);
}

int mp_arrayproxy_set(mp_proxy *a, int64_t i, const mp_val *x)
{
    return x == NULL ? MP_EINVAL
                     : mp__mgr_call(a, MP_PROXY_ARRAY, "__setitem__", NULL, ARGS(MP_I64(i), x),
                                    NULL);
}

int mp_arrayproxy_tolist(mp_proxy *a, mp_val **out)
{
    return need_out(out) ? MP_EINVAL
                         : mp__mgr_call(a, MP_PROXY_ARRAY, "tolist", NULL, NOARGS, out);
}

/* ---- hosted synchronisation objects and queues ---------------------------------------- */

mp_proxy *mp_manager_lock(mp_manager *m)
{
    return mp__mgr_create(m, "Lock", NULL, NOARGS);
}

mp_proxy *mp_manager_rlock(mp_manager *m)
{
    return mp__mgr_create(m, "RLock", NULL, NOARGS);
}

mp_proxy *mp_manager_semaphore(mp_manager *m, int value)
{
    return mp__mgr_create(m, "Semaphore", NULL, ARGS(MP_I64(value)));
}

mp_proxy *mp_manager_bounded_semaphore(mp_manager *m, int value)
{
    return mp__mgr_create(m, "BoundedSemaphore", NULL, ARGS(MP_I64(value)));
}

mp_proxy *mp_manager_condition(mp_manager *m)
{
    return mp__mgr_create(m, "Condition", NULL, NOARGS);
}

mp_proxy *mp_manager_event(mp_manager *m)
{
    return mp__mgr_create(m, "Event", NULL, NOARGS);
}

/* A timeout as an argument: None for MP_FOREVER.  tmp holds a float. */
static const mp_val *timeout_val(double t, mp_val *tmp)
{
    if (t == MP_FOREVER || isinf(t))
        return &mp__none;
    tmp->type = MP_VAL_FLOAT;
    tmp->f = t;
    return tmp;
}

static int check_timeout(double t)
{
    mp__deadline d;
    return mp__deadline_init(&d, t);
}

mp_proxy *mp_manager_barrier(mp_manager *m, int parties, double timeout)
{
    mp_val tmp = {0};
    if (check_timeout(timeout) != 0)
        return mp__fail_null(MP_EINVAL);
    return mp__mgr_create(m, "Barrier", NULL,
                          ARGS(MP_I64(parties), &mp__none,
                               timeout == 0 ? &mp__none : timeout_val(timeout, &tmp)));
}

mp_proxy *mp_manager_queue(mp_manager *m, long maxsize)
{
    return mp__mgr_create(m, "Queue", NULL, ARGS(MP_I64(maxsize)));
}

mp_proxy *mp_manager_joinable_queue(mp_manager *m, long maxsize)
{
    return mp__mgr_create(m, "JoinableQueue", NULL, ARGS(MP_I64(maxsize)));
}

void *mp_proxy_native(const mp_proxy *p)
{
    /* An AsyncResult's shared state is libmp's own, not an object of the API. */
    if (mp__mgr_check_proxy(p, 0) != 0 || p->kind == MP_PROXY_ASYNC_RESULT)
        return NULL;
    return p->native;
}

static bool kind_in(const mp_proxy *p, uint32_t a, uint32_t b, uint32_t c, uint32_t d,
                    uint32_t e)
{
    if (mp__mgr_check_proxy(p, 0) != 0)
        return false;
    return p->kind == a || p->kind == b || p->kind == c || p->kind == d || p->kind == e;
}

#define LOCKISH(p)                                                                            \
    kind_in(p, MP_PROXY_LOCK, MP_PROXY_RLOCK, MP_PROXY_SEMAPHORE, MP_PROXY_BOUNDED_SEMAPHORE, \
            MP_PROXY_CONDITION)
#define IS(p, k) kind_in(p, k, k, k, k, k)
#define QUEUEISH(p) kind_in(p, MP_PROXY_QUEUE, MP_PROXY_JOINABLE_QUEUE, 0, 0, 0)

/* A call whose result is dropped and whose codes are returned as they are. */
static int simple(mp_proxy *p, const char *method, const mp_val *const *argv, size_t n)
{
    return mp__mgr_call(p, 0, method, NULL, argv, n, NULL);
}

int mp_proxy_acquire(mp_proxy *p, double timeout)
{
    mp_val tmp = {0};
    if (!LOCKISH(p) || check_timeout(timeout) != 0)
        return MP_EINVAL;
    return simple(p, "acquire", ARGS(&mp__true, timeout_val(timeout, &tmp)));
}

int mp_proxy_release(mp_proxy *p)
{
    if (!LOCKISH(p))
        return MP_EINVAL;
    int e = simple(p, "release", NOARGS);
    /* Releasing what one does not hold is the caller's mistake. */
    return e == MP_EREMOTE && mp_remote_error_code() == MP_EINVAL ? MP_EINVAL : e;
}

static int int_call(mp_proxy *p, const char *method)
{
    mp_val *v;
    int e = mp__mgr_call(p, 0, method, NULL, NOARGS, &v);
    return (int)int_result(e, v);
}

static int bool_call(mp_proxy *p, const char *method)
{
    mp_val *v;
    int e = mp__mgr_call(p, 0, method, NULL, NOARGS, &v);
    return bool_result(e, v);
}

int mp_proxy_get_value(mp_proxy *p)
{
    if (!kind_in(p, MP_PROXY_SEMAPHORE, MP_PROXY_BOUNDED_SEMAPHORE, 0, 0, 0))
        return MP_EINVAL;
    return int_call(p, "get_value");
}

int mp_proxy_wait(mp_proxy *p, double timeout)
{
    mp_val tmp = {0};
    if (!kind_in(p, MP_PROXY_CONDITION, MP_PROXY_EVENT, MP_PROXY_BARRIER, 0, 0) ||
        check_timeout(timeout) != 0)
        return MP_EINVAL;
    mp_val *v;
    int e = mp__mgr_call(p, 0, "wait", NULL, ARGS(timeout_val(timeout, &tmp)), &v);
    if (e != 0)
        return e == MP_EREMOTE && mp_remote_error_code() == MP_EINVAL ? MP_EINVAL : e;
    int r;
    if (p->kind == MP_PROXY_BARRIER) {
        r = (int)int_result(0, v);
    } else {
        r = mp_val_truth(v) ? 0 : MP_ETIMEDOUT;
        mp_val_free(v);
    }
    return r;
}

int mp_proxy_notify(mp_proxy *p, int n)
{
    if (!IS(p, MP_PROXY_CONDITION) || n < 0)
        return MP_EINVAL;
    int e = simple(p, "notify", ARGS(MP_I64(n)));
    return e == MP_EREMOTE && mp_remote_error_code() == MP_EINVAL ? MP_EINVAL : e;
}

int mp_proxy_notify_all(mp_proxy *p)
{
    if (!IS(p, MP_PROXY_CONDITION))
        return MP_EINVAL;
    int e = simple(p, "notify_all", NOARGS);
    return e == MP_EREMOTE && mp_remote_error_code() == MP_EINVAL ? MP_EINVAL : e;
}

int mp_proxy_set(mp_proxy *p)
{
    return IS(p, MP_PROXY_EVENT) ? simple(p, "set", NOARGS) : MP_EINVAL;
}

int mp_proxy_clear(mp_proxy *p)
{
    return IS(p, MP_PROXY_EVENT) ? simple(p, "clear", NOARGS) : MP_EINVAL;
}

int mp_proxy_is_set(mp_proxy *p)
{
    return IS(p, MP_PROXY_EVENT) ? bool_call(p, "is_set") : MP_EINVAL;
}

int mp_proxy_reset(mp_proxy *p)
{
    return IS(p, MP_PROXY_BARRIER) ? simple(p, "reset", NOARGS) : MP_EINVAL;
}

int mp_proxy_abort(mp_proxy *p)
{
    return IS(p, MP_PROXY_BARRIER) ? simple(p, "abort", NOARGS) : MP_EINVAL;
}

int mp_proxy_parties(mp_proxy *p)
{
    return IS(p, MP_PROXY_BARRIER) ? int_call(p, "parties") : MP_EINVAL;
}

int mp_proxy_n_waiting(mp_proxy *p)
{
    return IS(p, MP_PROXY_BARRIER) ? int_call(p, "n_waiting") : MP_EINVAL;
}

int mp_proxy_broken(mp_proxy *p)
{
    return IS(p, MP_PROXY_BARRIER) ? bool_call(p, "broken") : MP_EINVAL;
}

int mp_proxy_put(mp_proxy *q, const mp_val *v, double timeout)
{
    mp_val tmp = {0};
    if (!QUEUEISH(q) || v == NULL || check_timeout(timeout) != 0)
        return MP_EINVAL;
    return simple(q, "put", ARGS(v, &mp__true, timeout_val(timeout, &tmp)));
}

int mp_proxy_get(mp_proxy *q, double timeout, mp_val **out)
{
    mp_val tmp = {0};
    if (out != NULL)
        *out = NULL;
    if (!QUEUEISH(q) || out == NULL || check_timeout(timeout) != 0)
        return MP_EINVAL;
    return mp__mgr_call(q, 0, "get", NULL, ARGS(&mp__true, timeout_val(timeout, &tmp)), out);
}

long mp_proxy_qsize(mp_proxy *q)
{
    if (!QUEUEISH(q))
        return MP_EINVAL;
    mp_val *v;
    int e = mp__mgr_call(q, 0, "qsize", NULL, NOARGS, &v);
    return (long)int_result(e, v);
}

int mp_proxy_empty(mp_proxy *q)
{
    return QUEUEISH(q) ? bool_call(q, "empty") : MP_EINVAL;
}

int mp_proxy_full(mp_proxy *q)
{
    return QUEUEISH(q) ? bool_call(q, "full") : MP_EINVAL;
}

int mp_proxy_task_done(mp_proxy *q)
{
    if (!IS(q, MP_PROXY_JOINABLE_QUEUE))
        return MP_EINVAL;
    int e = simple(q, "task_done", NOARGS);
    return e == MP_EREMOTE && mp_remote_error_code() == MP_EINVAL ? MP_EINVAL : e;
}

int mp_proxy_join(mp_proxy *q, double timeout)
{
    mp_val tmp = {0};
    if (!IS(q, MP_PROXY_JOINABLE_QUEUE) || check_timeout(timeout) != 0)
        return MP_EINVAL;
    return simple(q, "join", ARGS(timeout_val(timeout, &tmp)));
}
