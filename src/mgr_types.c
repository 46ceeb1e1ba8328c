/*
 * mgr_types.c: the value kinds a manager holds: dict, list, Namespace,
 * Value and Array, with the methods of Python's DictProxy, ListProxy,
 * NamespaceProxy, ValueProxy and ArrayProxy.
 *
 * Every method runs in the server under the server lock.  Arguments arrive
 * as a decoded tuple owned by the dispatcher; methods steal the items they
 * keep (setting the slot to NULL) so nothing is copied twice.  Error types
 * and messages are Python's, so a program prints what the Python original
 * prints.
 */
#include "internal/managers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static mp_val *steal(mp_val *args, size_t i)
{
    mp_val *v = args->seq.items[i];
    args->seq.items[i] = NULL;
    return v;
}

static const mp_val *arg(const mp_val *args, size_t i)
{
    return args->seq.items[i];
}

static int oom(struct mgr_reply *r)
{
    return mp__reply_error(r, -ENOMEM, "MemoryError", "out of memory");
}

static int reply_bool(struct mgr_reply *r, bool b)
{
    mp__reply_borrow(r, b ? &mp__true : &mp__false);
    return 0;
}

static int reply_int(struct mgr_reply *r, int64_t i)
{
    mp_val *v = mp__val_new(MP_VAL_INT);
    if (v == NULL)
        return oom(r);
    v->i = i;
    mp__reply_val(r, v);
    return 0;
}

static int reply_text(struct mgr_reply *r, mp__buf *b)
{
    if (b->oom) {
        mp__buf_free(b);
        return oom(r);
    }
    mp_val *v = mp__val_new_bytes(MP_VAL_STR, b->p ? b->p : "", b->len);
    mp__buf_free(b);
    if (v == NULL)
        return oom(r);
    mp__reply_val(r, v);
    return 0;
}

static int key_error(struct mgr_reply *r, const mp_val *key)
{
    mp__buf b = {0};
    mp__val_repr_buf(&b, key, false);
    mp__buf_putc(&b, '\0');
    mp__reply_error(r, MP_EINVAL, "KeyError", "%s", b.oom ? "?" : b.p);
    mp__buf_free(&b);
    return MP_EINVAL;
}

static int unhashable(struct mgr_reply *r, const mp_val *key)
{
    return mp__reply_error(r, MP_EINVAL, "TypeError", "unhashable type: '%s'", mp_val_type_name(key));
}

/* An int argument (bool accepted, as Python's __index__). */
static int int_arg(struct mgr_reply *r, const mp_val *v, int64_t *out)
{
    if (mp_val_as_int(v, out) == 0)
        return 0;
    return mp__reply_error(r, MP_EINVAL, "TypeError",
                           "'%s' object cannot be interpreted as an integer", mp_val_type_name(v));
}

/* ---- dict ------------------------------------------------------------------ */

static mp_val *dict_of(struct mgr_obj *o)
{
    return o->obj;
}

/* Whether a key can be hashed; cheap for everything but tuples. */
static bool key_ok(const mp_val *k)
{
    if (k->type == MP_VAL_LIST || k->type == MP_VAL_DICT)
        return false;
    return k->type != MP_VAL_TUPLE || mp_val_hashable(k);
}

static int dict_setitem(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "__setitem__", a, 2, 2) != 0)
        return r->code;
    if (!key_ok(arg(a, 0)))
        return unhashable(r, arg(a, 0));
    int e = mp__val_dict_put(dict_of(o), steal(a, 0), steal(a, 1), true);
    if (e != 0)
        return oom(r);
    mp__reply_none(r);
    return 0;
}

static int dict_lookup(struct mgr_reply *r, const mp_val *d, const mp_val *key, long *slot)
{
    if (!key_ok(key))
        return unhashable(r, key);
    *slot = mp__val_dict_find(d, key);
    return 0;
}

static int dict_getitem(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    long slot = -1;
    if (mp__args(r, "__getitem__", a, 1, 1) != 0 || dict_lookup(r, dict_of(o), arg(a, 0), &slot))
        return r->code;
    if (slot < 0)
        return key_error(r, arg(a, 0));
    mp__reply_borrow(r, mp__val_dict_slot_value(dict_of(o), (size_t)slot));
    return 0;
}

static int dict_get(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    long slot = -1;
    if (mp__args(r, "get", a, 1, 2) != 0 || dict_lookup(r, dict_of(o), arg(a, 0), &slot))
        return r->code;
    if (slot >= 0)
        mp__reply_borrow(r, mp__val_dict_slot_value(dict_of(o), (size_t)slot));
    else if (a->seq.len == 2)
        mp__reply_val(r, steal(a, 1));
    else
        mp__reply_none(r);
    return 0;
}

static int dict_delitem(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    long slot = -1;
    if (mp__args(r, "__delitem__", a, 1, 1) != 0 || dict_lookup(r, dict_of(o), arg(a, 0), &slot))
        return r->code;
    if (slot < 0)
        return key_error(r, arg(a, 0));
    mp__val_dict_remove_slot(dict_of(o), (size_t)slot, NULL, NULL);
    mp__reply_none(r);
    return 0;
}

static int dict_contains(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    long slot = -1;
    if (mp__args(r, "__contains__", a, 1, 1) != 0 || dict_lookup(r, dict_of(o), arg(a, 0), &slot))
        return r->code;
    return reply_bool(r, slot >= 0);
}

static int dict_len(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "__len__", a, 0, 0) != 0)
        return r->code;
    return reply_int(r, (int64_t)dict_of(o)->dict.count);
}

/* keys (0), values (1) or items (2) as a list. */
static int dict_view(struct mgr_obj *o, mp_val *a, struct mgr_reply *r, const char *name, int what)
{
    if (mp__args(r, name, a, 0, 0) != 0)
        return r->code;
    const mp_val *d = dict_of(o);
    mp_val *l = mp__val_new(MP_VAL_LIST);
    if (l == NULL)
        return oom(r);
    size_t pos = 0;
    const mp_val *k, *v;
    while (mp_val_dict_next(d, &pos, &k, &v)) {
        mp_val *item;
        if (what == 2) {
            item = mp__val_new(MP_VAL_TUPLE);
            mp_val *kc = mp_val_copy(k), *vc = mp_val_copy(v);
            if (item == NULL || kc == NULL || vc == NULL || mp__val_list_push(item, kc) != 0 ||
                mp__val_list_push(item, vc) != 0) {
                if (item == NULL || kc == NULL || vc == NULL) {
                    mp_val_free(kc);
                    mp_val_free(vc);
                }
                mp_val_free(item);
                mp_val_free(l);
                return oom(r);
            }
        } else {
            item = mp_val_copy(what == 0 ? k : v);
        }
        if (item == NULL || mp__val_list_push(l, item) != 0) {
            mp_val_free(l);
            return oom(r);
        }
    }
    mp__reply_val(r, l);
    return 0;
}

static int dict_keys(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    return dict_view(o, a, r, "keys", 0);
}

static int dict_values(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    return dict_view(o, a, r, "values", 1);
}

static int dict_items(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    return dict_view(o, a, r, "items", 2);
}

/* Put every pair of other (a dict, or a sequence of 2-item sequences). */
static int dict_merge(mp_val *d, mp_val *other, struct mgr_reply *r)
{
    if (other->type == MP_VAL_DICT) {
        for (size_t s = 0; s < other->dict.slots_; s++) {
            mp_val *k = mp__val_dict_slot_key(other, s);
            if (k == NULL)
                continue;
            mp_val *v;
            mp__val_dict_remove_slot(other, s, &k, &v);
            if (mp__val_dict_put(d, k, v, true) != 0)
                return oom(r);
        }
        return 0;
    }
    if (other->type != MP_VAL_LIST && other->type != MP_VAL_TUPLE)
        return mp__reply_error(r, MP_EINVAL, "TypeError", "'%s' object is not iterable",
                               mp_val_type_name(other));
    for (size_t i = 0; i < other->seq.len; i++) {
        mp_val *pair = other->seq.items[i];
        if ((pair->type != MP_VAL_LIST && pair->type != MP_VAL_TUPLE) || pair->seq.len != 2)
            return mp__reply_error(r, MP_EINVAL, "ValueError",
                                   "dictionary update sequence element #%zu has length %zu; 2 is required",
                                   i, mp_val_len(pair));
        if (!mp_val_hashable(pair->seq.items[0]))
            return unhashable(r, pair->seq.items[0]);
    }
    for (size_t i = 0; i < other->seq.len; i++) {
        mp_val *pair = other->seq.items[i];
        if (mp__val_dict_put(d, steal(pair, 0), steal(pair, 1), true) != 0)
            return oom(r);
    }
    return 0;
}

static int dict_update(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "update", a, 0, 1) != 0)
        return r->code;
    if (a->seq.len == 1 && dict_merge(dict_of(o), a->seq.items[0], r) != 0)
        return r->code;
    mp__reply_none(r);
    return 0;
}

static int dict_clear(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "clear", a, 0, 0) != 0)
        return r->code;
    mp__val_dict_clear(dict_of(o));
    mp__reply_none(r);
    return 0;
}

static int dict_pop(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    long slot = -1;
    if (mp__args(r, "pop", a, 1, 2) != 0 || dict_lookup(r, dict_of(o), arg(a, 0), &slot))
        return r->code;
    if (slot < 0) {
        if (a->seq.len == 2) {
            mp__reply_val(r, steal(a, 1));
            return 0;
        }
        return key_error(r, arg(a, 0));
    }
    mp_val *v;
    mp__val_dict_remove_slot(dict_of(o), (size_t)slot, NULL, &v);
    mp__reply_val(r, v);
    return 0;
}

static int dict_popitem(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "popitem", a, 0, 0) != 0)
        return r->code;
    mp_val *d = dict_of(o);
    if (d->dict.count == 0)
        return mp__reply_error(r, MP_EINVAL, "KeyError", "'popitem(): dictionary is empty'");
    size_t slot = d->dict.slots_ - 1; /* trailing holes are never kept */
    mp_val *t = mp__val_new(MP_VAL_TUPLE);
    mp_val **items = malloc(2 * sizeof *items);
    if (t == NULL || items == NULL) {
        free(t);
        free(items);
        return oom(r);
    }
    t->seq.items = items;
    t->seq.cap_ = 2;
    t->seq.len = 2;
    mp__val_dict_remove_slot(d, slot, &items[0], &items[1]);
    mp__reply_val(r, t);
    return 0;
}

static int dict_setdefault(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    long slot = -1;
    if (mp__args(r, "setdefault", a, 1, 2) != 0 || dict_lookup(r, dict_of(o), arg(a, 0), &slot))
        return r->code;
    mp_val *d = dict_of(o);
    if (slot < 0) {
        mp_val *v = a->seq.len == 2 ? steal(a, 1) : mp__val_new(MP_VAL_NONE);
        if (v == NULL || mp__val_dict_put(d, steal(a, 0), v, true) != 0)
            return oom(r);
        slot = (long)d->dict.slots_ - 1;
    }
    mp__reply_borrow(r, mp__val_dict_slot_value(d, (size_t)slot));
    return 0;
}

static int dict_copy(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "copy", a, 0, 0) != 0)
        return r->code;
    mp__reply_borrow(r, dict_of(o)); /* encoded under the lock: a copy */
    return 0;
}

static int val_repr(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "__repr__", a, 0, 0) != 0)
        return r->code;
    mp__buf b = {0};
    mp__val_repr_buf(&b, o->obj, false);
    return reply_text(r, &b);
}

static int dict_create(struct mgr_srv *s, mp_val *a, void **obj, struct mgr_reply *r)
{
    if (mp__args(r, "dict", a, 0, 1) != 0)
        return r->code;
    mp_val *d = mp__val_new(MP_VAL_DICT);
    if (d == NULL)
        return oom(r);
    if (a->seq.len == 1 && arg(a, 0)->type != MP_VAL_NONE && dict_merge(d, a->seq.items[0], r) != 0) {
        mp_val_free(d);
        return r->code;
    }
    *obj = d;
    return 0;
}

static void val_destroy(void *obj)
{
    mp_val_free(obj);
}

static const struct mgr_method dict_methods[] = {
    {"__setitem__", dict_setitem}, {"__getitem__", dict_getitem}, {"get", dict_get},
    {"__delitem__", dict_delitem}, {"__contains__", dict_contains}, {"__len__", dict_len},
    {"keys", dict_keys},           {"values", dict_values},       {"items", dict_items},
    {"update", dict_update},       {"clear", dict_clear},         {"pop", dict_pop},
    {"popitem", dict_popitem},     {"setdefault", dict_setdefault}, {"copy", dict_copy},
    {"__repr__", val_repr},        {"__str__", val_repr},         {NULL, NULL},
};

/* ---- list ------------------------------------------------------------------ */

static mp_val *list_of(struct mgr_obj *o)
{
    return o->obj;
}

static int seq_arg(struct mgr_reply *r, const mp_val *v)
{
    if (v->type == MP_VAL_LIST || v->type == MP_VAL_TUPLE)
        return 0;
    return mp__reply_error(r, MP_EINVAL, "TypeError", "'%s' object is not iterable",
                           mp_val_type_name(v));
}

/* Move every item of seq to the end of l. */
static int list_absorb(mp_val *l, mp_val *seq, struct mgr_reply *r)
{
    for (size_t i = 0; i < seq->seq.len; i++)
        if (mp__val_list_push(l, steal(seq, i)) != 0)
            return oom(r);
    return 0;
}

static int list_append(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "append", a, 1, 1) != 0)
        return r->code;
    if (mp__val_list_push(list_of(o), steal(a, 0)) != 0)
        return oom(r);
    mp__reply_none(r);
    return 0;
}

static int list_extend(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "extend", a, 1, 1) != 0 || seq_arg(r, arg(a, 0)) != 0 ||
        list_absorb(list_of(o), a->seq.items[0], r) != 0)
        return r->code;
    mp__reply_none(r);
    return 0;
}

static int list_insert(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    int64_t i;
    if (mp__args(r, "insert", a, 2, 2) != 0 || int_arg(r, arg(a, 0), &i) != 0)
        return r->code;
    int64_t n = (int64_t)list_of(o)->seq.len;
    if (i < 0)
        i = i + n < 0 ? 0 : i + n;
    if (i > n)
        i = n;
    if (mp__val_list_insert_take(list_of(o), (size_t)i, steal(a, 1)) != 0)
        return oom(r);
    mp__reply_none(r);
    return 0;
}

/* Python's index rule for an item: the position, or -1 (IndexError). */
static long list_index(const mp_val *l, int64_t i)
{
    int64_t n = (int64_t)l->seq.len;
    if (i < 0)
        i += n;
    return i < 0 || i >= n ? -1 : (long)i;
}

static int list_getitem(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    int64_t i;
    if (mp__args(r, "__getitem__", a, 1, 1) != 0 || int_arg(r, arg(a, 0), &i) != 0)
        return r->code;
    long k = list_index(list_of(o), i);
    if (k < 0)
        return mp__reply_error(r, MP_EINVAL, "IndexError", "list index out of range");
    mp__reply_borrow(r, list_of(o)->seq.items[k]);
    return 0;
}

static int list_setitem(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    int64_t i;
    if (mp__args(r, "__setitem__", a, 2, 2) != 0 || int_arg(r, arg(a, 0), &i) != 0)
        return r->code;
    long k = list_index(list_of(o), i);
    if (k < 0)
        return mp__reply_error(r, MP_EINVAL, "IndexError", "list assignment index out of range");
    mp_val_free(list_of(o)->seq.items[k]);
    list_of(o)->seq.items[k] = steal(a, 1);
    mp__reply_none(r);
    return 0;
}

static int list_delitem(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    int64_t i;
    if (mp__args(r, "__delitem__", a, 1, 1) != 0 || int_arg(r, arg(a, 0), &i) != 0)
        return r->code;
    long k = list_index(list_of(o), i);
    if (k < 0)
        return mp__reply_error(r, MP_EINVAL, "IndexError", "list assignment index out of range");
    mp_val_free(mp__val_list_remove(list_of(o), (size_t)k));
    mp__reply_none(r);
    return 0;
}

static int list_pop(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    int64_t i = -1;
    if (mp__args(r, "pop", a, 0, 1) != 0 || (a->seq.len == 1 && int_arg(r, arg(a, 0), &i) != 0))
        return r->code;
    if (list_of(o)->seq.len == 0)
        return mp__reply_error(r, MP_EINVAL, "IndexError", "pop from empty list");
    long k = list_index(list_of(o), i);
    if (k < 0)
        return mp__reply_error(r, MP_EINVAL, "IndexError", "pop index out of range");
    mp__reply_val(r, mp__val_list_remove(list_of(o), (size_t)k));
    return 0;
}

static long find_value(const mp_val *l, const mp_val *x, size_t from, size_t to)
{
    for (size_t i = from; i < to && i < l->seq.len; i++)
        if (mp_val_eq(l->seq.items[i], x))
            return (long)i;
    return -1;
}

static int list_remove(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "remove", a, 1, 1) != 0)
        return r->code;
    long k = find_value(list_of(o), arg(a, 0), 0, SIZE_MAX);
    if (k < 0)
        return mp__reply_error(r, MP_EINVAL, "ValueError", "list.remove(x): x not in list");
    mp_val_free(mp__val_list_remove(list_of(o), (size_t)k));
    mp__reply_none(r);
    return 0;
}

/* Python's slice index clamping for start/stop arguments of index(). */
static size_t clamp_bound(int64_t i, size_t len)
{
    if (i < 0) {
        i += (int64_t)len;
        if (i < 0)
            i = 0;
    }
    return (uint64_t)i > len ? len : (size_t)i;
}

static int list_index_of(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "index", a, 1, 3) != 0)
        return r->code;
    size_t len = list_of(o)->seq.len, from = 0, to = len;
    int64_t b;
    if (a->seq.len >= 2) {
        if (int_arg(r, arg(a, 1), &b) != 0)
            return r->code;
        from = clamp_bound(b, len);
    }
    if (a->seq.len == 3) {
        if (int_arg(r, arg(a, 2), &b) != 0)
            return r->code;
        to = clamp_bound(b, len);
    }
    long k = find_value(list_of(o), arg(a, 0), from, to);
    if (k < 0) {
        mp__buf t = {0};
        mp__val_repr_buf(&t, arg(a, 0), false);
        mp__buf_putc(&t, '\0');
        mp__reply_error(r, MP_EINVAL, "ValueError", "%s is not in list", t.oom ? "?" : t.p);
        mp__buf_free(&t);
        return MP_EINVAL;
    }
    return reply_int(r, k);
}

static int list_count(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "count", a, 1, 1) != 0)
        return r->code;
    int64_t n = 0;
    for (size_t i = 0; i < list_of(o)->seq.len; i++)
        n += mp_val_eq(list_of(o)->seq.items[i], arg(a, 0));
    return reply_int(r, n);
}

static int list_contains(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "__contains__", a, 1, 1) != 0)
        return r->code;
    return reply_bool(r, find_value(list_of(o), arg(a, 0), 0, SIZE_MAX) >= 0);
}

static int list_len(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "__len__", a, 0, 0) != 0)
        return r->code;
    return reply_int(r, (int64_t)list_of(o)->seq.len);
}

static int list_reverse(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "reverse", a, 0, 0) != 0)
        return r->code;
    mp_val **it = list_of(o)->seq.items;
    size_t n = list_of(o)->seq.len;
    for (size_t i = 0; i < n / 2; i++) {
        mp_val *t = it[i];
        it[i] = it[n - 1 - i];
        it[n - 1 - i] = t;
    }
    mp__reply_none(r);
    return 0;
}

/* ---- sorting ------------------------------------------------------------------ */

struct sort_item {
    mp_val *v;
    char *key; /* the encoding, for the "bytes" order */
    size_t keylen;
};

typedef int (*val_cmp_fn)(const mp_val *, const mp_val *);

struct sorter {
    val_cmp_fn cmp;
    bool by_bytes;
    bool reverse;
};

static int cmp_len(const mp_val *x, const mp_val *y)
{
    size_t a = mp_val_len(x), b = mp_val_len(y);
    return (a > b) - (a < b);
}

static int cmp_casefold(const mp_val *x, const mp_val *y)
{
    if (x->type != MP_VAL_STR || y->type != MP_VAL_STR)
        return mp_val_cmp(x, y);
    size_t n = x->s.len < y->s.len ? x->s.len : y->s.len;
    for (size_t i = 0; i < n; i++) {
        unsigned char a = (unsigned char)x->s.ptr[i], b = (unsigned char)y->s.ptr[i];
        if (a >= 'A' && a <= 'Z')
            a = (unsigned char)(a + 32);
        if (b >= 'A' && b <= 'Z')
            b = (unsigned char)(b + 32);
        if (a != b)
            return a < b ? -1 : 1;
    }
    return (x->s.len > y->s.len) - (x->s.len < y->s.len);
}

static int sort_cmp(const struct sorter *st, const struct sort_item *a, const struct sort_item *b)
{
    int c;
    if (st->by_bytes) {
        size_t n = a->keylen < b->keylen ? a->keylen : b->keylen;
        c = memcmp(a->key, b->key, n);
        if (c == 0)
            c = (a->keylen > b->keylen) - (a->keylen < b->keylen);
    } else {
        c = st->cmp(a->v, b->v);
    }
    return st->reverse ? -c : c;
}

/* A stable merge sort (reverse by negating the order keeps equal items in
 * their original order, which is what Python's reverse=True does). */
static void merge_sort(const struct sorter *st, struct sort_item *x, struct sort_item *tmp, size_t n)
{
    if (n < 2)
        return;
    if (n <= 8) {
        for (size_t i = 1; i < n; i++) {
            struct sort_item t = x[i];
            size_t j = i;
            while (j > 0 && sort_cmp(st, &x[j - 1], &t) > 0) {
                x[j] = x[j - 1];
                j--;
            }
            x[j] = t;
        }
        return;
    }
    size_t h = n / 2;
    merge_sort(st, x, tmp, h);
    merge_sort(st, x + h, tmp, n - h);
    if (sort_cmp(st, &x[h - 1], &x[h]) <= 0)
        return;
    memcpy(tmp, x, h * sizeof *x);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        x[k++] = sort_cmp(st, &x[j], &tmp[i]) < 0 ? x[j++] : tmp[i++];
    while (i < h)
        x[k++] = tmp[i++];
}

static int list_sort(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "sort", a, 0, 2) != 0)
        return r->code;
    struct sorter st = {.cmp = mp_val_cmp};
    if (a->seq.len >= 1 && arg(a, 0)->type != MP_VAL_NONE) {
        const mp_val *name = arg(a, 0);
        if (name->type != MP_VAL_STR)
            return mp__reply_error(r, MP_EINVAL, "TypeError", "sort key must be a comparator name");
        const char *n = name->s.ptr;
        if (strcmp(n, "default") == 0)
            st.cmp = mp_val_cmp;
        else if (strcmp(n, "bytes") == 0)
            st.by_bytes = true;
        else if (strcmp(n, "len") == 0)
            st.cmp = cmp_len;
        else if (strcmp(n, "casefold") == 0)
            st.cmp = cmp_casefold;
        else if ((st.cmp = mp__mgr_comparator(s, n)) == NULL)
            return mp__reply_error(r, MP_EINVAL, "KeyError", "no comparator named '%s'", n);
    }
    if (a->seq.len == 2)
        st.reverse = mp_val_truth(arg(a, 1));
    mp_val *l = list_of(o);
    size_t n = l->seq.len;
    struct sort_item *x = calloc(n ? n : 1, sizeof *x);
    struct sort_item *tmp = calloc(n / 2 + 1, sizeof *tmp);
    bool failed = x == NULL || tmp == NULL;
    for (size_t i = 0; i < n && !failed; i++) {
        x[i].v = l->seq.items[i];
        if (st.by_bytes) {
            void *key;
            failed = mp_val_encode(x[i].v, &key, &x[i].keylen) != 0;
            x[i].key = key;
        }
    }
    if (!failed) {
        merge_sort(&st, x, tmp, n);
        for (size_t i = 0; i < n; i++)
            l->seq.items[i] = x[i].v;
    }
    for (size_t i = 0; x != NULL && i < n; i++)
        free(x[i].key);
    free(x);
    free(tmp);
    if (failed)
        return oom(r);
    mp__reply_none(r);
    return 0;
}

/* ---- slices -------------------------------------------------------------------- */

/* Python's PySlice_AdjustIndices: bounds for a slice of len items; returns
 * the slice length.  None bounds arrive as MP_VAL_NONE. */
static int slice_bounds(struct mgr_reply *r, const mp_val *vstart, const mp_val *vstop,
                        int64_t step, size_t len, int64_t *start, int64_t *stop, size_t *count)
{
    int64_t n = (int64_t)len;
    bool has_start = vstart != NULL && vstart->type != MP_VAL_NONE;
    bool has_stop = vstop != NULL && vstop->type != MP_VAL_NONE;
    if ((has_start && int_arg(r, vstart, start) != 0) || (has_stop && int_arg(r, vstop, stop) != 0))
        return r->code;
    if (!has_start)
        *start = step < 0 ? n - 1 : 0;
    else if (*start < 0)
        *start = *start + n < 0 ? (step < 0 ? -1 : 0) : *start + n;
    else if (*start >= n)
        *start = step < 0 ? n - 1 : n;
    if (!has_stop)
        *stop = step < 0 ? -1 : n;
    else if (*stop < 0)
        *stop = *stop + n < 0 ? (step < 0 ? -1 : 0) : *stop + n;
    else if (*stop >= n)
        *stop = step < 0 ? n - 1 : n;
    if (step < 0)
        *count = *stop < *start ? (size_t)((*start - *stop - 1) / -step + 1) : 0;
    else
        *count = *start < *stop ? (size_t)((*stop - *start - 1) / step + 1) : 0;
    return 0;
}

static int list_getslice(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "getslice", a, 2, 3) != 0)
        return r->code;
    int64_t step = 1, start, stop;
    if (a->seq.len == 3 && arg(a, 2)->type != MP_VAL_NONE && int_arg(r, arg(a, 2), &step) != 0)
        return r->code;
    if (step == 0)
        return mp__reply_error(r, MP_EINVAL, "ValueError", "slice step cannot be zero");
    size_t count;
    mp_val *l = list_of(o);
    if (slice_bounds(r, arg(a, 0), arg(a, 1), step, l->seq.len, &start, &stop, &count) != 0)
        return r->code;
    mp_val *out = mp__val_new(MP_VAL_LIST);
    if (out == NULL)
        return oom(r);
    for (size_t k = 0; k < count; k++) {
        mp_val *c = mp_val_copy(l->seq.items[start + (int64_t)k * step]);
        if (c == NULL || mp__val_list_push(out, c) != 0) {
            mp_val_free(out);
            return oom(r);
        }
    }
    mp__reply_val(r, out);
    return 0;
}

/* The [start, stop) range of a step-1 slice. */
static int simple_slice(struct mgr_reply *r, const mp_val *a, size_t len, size_t *from, size_t *to)
{
    int64_t start, stop;
    size_t count;
    if (slice_bounds(r, arg(a, 0), arg(a, 1), 1, len, &start, &stop, &count) != 0)
        return r->code;
    *from = (size_t)start;
    *to = (size_t)start + count;
    return 0;
}

static int list_setslice(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    size_t from = 0, to = 0;
    mp_val *l = list_of(o);
    if (mp__args(r, "setslice", a, 3, 3) != 0 || seq_arg(r, arg(a, 2)) != 0 ||
        simple_slice(r, a, l->seq.len, &from, &to) != 0)
        return r->code;
    mp_val *seq = a->seq.items[2];
    size_t add = seq->seq.len, del = to - from;
    if (add > del) {
        /* Grow first so nothing fails half-way. */
        for (size_t i = 0; i < add - del; i++) {
            mp_val *none = mp__val_new(MP_VAL_NONE);
            if (none == NULL || mp__val_list_push(l, none) != 0) {
                while (i-- > 0)
                    mp_val_free(mp__val_list_remove(l, l->seq.len - 1));
                return oom(r);
            }
        }
        for (size_t i = 0; i < add - del; i++)
            mp_val_free(l->seq.items[l->seq.len - 1 - i]);
        memmove(&l->seq.items[from + add], &l->seq.items[to],
                (l->seq.len - (add - del) - to) * sizeof(mp_val *));
    } else {
        for (size_t i = from + add; i < to; i++)
            mp_val_free(l->seq.items[i]);
        memmove(&l->seq.items[from + add], &l->seq.items[to], (l->seq.len - to) * sizeof(mp_val *));
        l->seq.len -= del - add;
    }
    for (size_t i = 0; i < add; i++) {
        if (i < del)
            mp_val_free(l->seq.items[from + i]);
        l->seq.items[from + i] = steal(seq, i);
    }
    mp__reply_none(r);
    return 0;
}

static int list_delslice(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    size_t from = 0, to = 0;
    mp_val *l = list_of(o);
    if (mp__args(r, "delslice", a, 2, 2) != 0 || simple_slice(r, a, l->seq.len, &from, &to) != 0)
        return r->code;
    for (size_t i = from; i < to; i++)
        mp_val_free(l->seq.items[i]);
    memmove(&l->seq.items[from], &l->seq.items[to], (l->seq.len - to) * sizeof(mp_val *));
    l->seq.len -= to - from;
    mp__reply_none(r);
    return 0;
}

static int list_copy(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "copy", a, 0, 0) != 0)
        return r->code;
    mp__reply_borrow(r, list_of(o));
    return 0;
}

static int list_imul(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    int64_t times;
    if (mp__args(r, "__imul__", a, 1, 1) != 0 || int_arg(r, arg(a, 0), &times) != 0)
        return r->code;
    mp_val *l = list_of(o);
    size_t n = l->seq.len;
    if (times <= 0) {
        mp__val_clear(l);
    } else {
        if (n > 0 && (uint64_t)times > (1ull << 32) / n)
            return oom(r);
        for (int64_t t = 1; t < times; t++)
            for (size_t i = 0; i < n; i++) {
                mp_val *c = mp_val_copy(l->seq.items[i]);
                if (c == NULL || mp__val_list_push(l, c) != 0)
                    return oom(r);
            }
    }
    mp__reply_none(r);
    return 0;
}

static int list_create(struct mgr_srv *s, mp_val *a, void **obj, struct mgr_reply *r)
{
    if (mp__args(r, "list", a, 0, 1) != 0)
        return r->code;
    mp_val *l = mp__val_new(MP_VAL_LIST);
    if (l == NULL)
        return oom(r);
    if (a->seq.len == 1 && arg(a, 0)->type != MP_VAL_NONE &&
        (seq_arg(r, arg(a, 0)) != 0 || list_absorb(l, a->seq.items[0], r) != 0)) {
        mp_val_free(l);
        return r->code;
    }
    *obj = l;
    return 0;
}

static const struct mgr_method list_methods[] = {
    {"append", list_append},     {"extend", list_extend},     {"__iadd__", list_extend},
    {"insert", list_insert},     {"__getitem__", list_getitem}, {"__setitem__", list_setitem},
    {"__delitem__", list_delitem}, {"pop", list_pop},         {"remove", list_remove},
    {"index", list_index_of},    {"count", list_count},       {"__contains__", list_contains},
    {"__len__", list_len},       {"reverse", list_reverse},   {"sort", list_sort},
    {"getslice", list_getslice}, {"setslice", list_setslice}, {"delslice", list_delslice},
    {"copy", list_copy},         {"__imul__", list_imul},     {"__repr__", val_repr},
    {"__str__", val_repr},       {NULL, NULL},
};

/* ---- Namespace ------------------------------------------------------------------ */

static int attr_name(struct mgr_reply *r, const mp_val *v)
{
    if (v->type != MP_VAL_STR)
        return mp__reply_error(r, MP_EINVAL, "TypeError", "attribute name must be string, not '%s'",
                               mp_val_type_name(v));
    return 0;
}

static int no_attr(struct mgr_reply *r, const mp_val *name)
{
    return mp__reply_error(r, MP_EINVAL, "AttributeError", "'Namespace' object has no attribute '%.*s'",
                           (int)(name->s.len > 200 ? 200 : name->s.len), name->s.ptr);
}

static int ns_getattr(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "__getattribute__", a, 1, 1) != 0 || attr_name(r, arg(a, 0)) != 0)
        return r->code;
    long slot = mp__val_dict_find(o->obj, arg(a, 0));
    if (slot < 0)
        return no_attr(r, arg(a, 0));
    mp__reply_borrow(r, mp__val_dict_slot_value(o->obj, (size_t)slot));
    return 0;
}

static int ns_setattr(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "__setattr__", a, 2, 2) != 0 || attr_name(r, arg(a, 0)) != 0)
        return r->code;
    if (mp__val_dict_put(o->obj, steal(a, 0), steal(a, 1), true) != 0)
        return oom(r);
    mp__reply_none(r);
    return 0;
}

static int ns_delattr(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "__delattr__", a, 1, 1) != 0 || attr_name(r, arg(a, 0)) != 0)
        return r->code;
    long slot = mp__val_dict_find(o->obj, arg(a, 0));
    if (slot < 0)
        return no_attr(r, arg(a, 0));
    mp__val_dict_remove_slot(o->obj, (size_t)slot, NULL, NULL);
    mp__reply_none(r);
    return 0;
}

static int str_cmp(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Python's Namespace.__repr__: name=repr(value) pairs, sorted. */
static int ns_repr(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "__repr__", a, 0, 0) != 0)
        return r->code;
    const mp_val *d = o->obj;
    size_t n = d->dict.count, i = 0, pos = 0;
    char **items = calloc(n ? n : 1, sizeof *items);
    if (items == NULL)
        return oom(r);
    const mp_val *k, *v;
    bool failed = false;
    while (mp_val_dict_next(d, &pos, &k, &v)) {
        mp__buf t = {0};
        mp__buf_put(&t, k->s.ptr, k->s.len);
        mp__buf_putc(&t, '=');
        mp__val_repr_buf(&t, v, false);
        items[i] = mp__buf_cstr(&t);
        failed |= items[i++] == NULL;
    }
    mp__buf b = {0};
    if (!failed) {
        qsort(items, n, sizeof *items, str_cmp);
        mp__buf_puts(&b, "Namespace(");
        for (i = 0; i < n; i++) {
            if (i)
                mp__buf_puts(&b, ", ");
            mp__buf_puts(&b, items[i]);
        }
        mp__buf_putc(&b, ')');
    }
    for (i = 0; i < n; i++)
        free(items[i]);
    free(items);
    if (failed) {
        mp__buf_free(&b);
        return oom(r);
    }
    return reply_text(r, &b);
}

static int ns_create(struct mgr_srv *s, mp_val *a, void **obj, struct mgr_reply *r)
{
    if (mp__args(r, "Namespace", a, 0, 1) != 0)
        return r->code;
    mp_val *d = mp__val_new(MP_VAL_DICT);
    if (d == NULL)
        return oom(r);
    if (a->seq.len == 1 && arg(a, 0)->type != MP_VAL_NONE) {
        const mp_val *init = arg(a, 0);
        size_t pos = 0;
        const mp_val *k;
        bool bad = init->type != MP_VAL_DICT;
        while (!bad && mp_val_dict_next(init, &pos, &k, NULL))
            bad = k->type != MP_VAL_STR;
        if (bad) {
            mp_val_free(d);
            return mp__reply_error(r, MP_EINVAL, "TypeError", "keywords must be strings");
        }
        if (dict_merge(d, a->seq.items[0], r) != 0) {
            mp_val_free(d);
            return r->code;
        }
    }
    *obj = d;
    return 0;
}

static const struct mgr_method ns_methods[] = {
    {"__getattribute__", ns_getattr}, {"__setattr__", ns_setattr}, {"__delattr__", ns_delattr},
    {"copy", dict_copy},              {"__repr__", ns_repr},        {"__str__", ns_repr},
    {NULL, NULL},
};

/* ---- Value ------------------------------------------------------------------- */

struct mvalue {
    char typecode[8];
    mp_val *value;
};

static int value_get(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "get", a, 0, 0) != 0)
        return r->code;
    mp__reply_borrow(r, ((struct mvalue *)o->obj)->value);
    return 0;
}

static int value_set(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "set", a, 1, 1) != 0)
        return r->code;
    struct mvalue *v = o->obj;
    mp_val_free(v->value);
    v->value = steal(a, 0);
    mp__reply_none(r);
    return 0;
}

static int value_repr(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "__repr__", a, 0, 0) != 0)
        return r->code;
    struct mvalue *v = o->obj;
    mp__buf b = {0};
    mp__buf_puts(&b, "Value(");
    mp__val_repr_buf(&b, MP_STR(v->typecode), false);
    mp__buf_puts(&b, ", ");
    mp__val_repr_buf(&b, v->value, false);
    mp__buf_putc(&b, ')');
    return reply_text(r, &b);
}

static int typecode_arg(struct mgr_reply *r, const mp_val *v, char *out, size_t outlen)
{
    if (v->type != MP_VAL_STR || v->s.len == 0 || v->s.len >= outlen)
        return mp__reply_error(r, MP_EINVAL, "TypeError", "typecode must be a short str");
    memcpy(out, v->s.ptr, v->s.len);
    out[v->s.len] = '\0';
    return 0;
}

static int value_create(struct mgr_srv *s, mp_val *a, void **obj, struct mgr_reply *r)
{
    if (mp__args(r, "Value", a, 2, 2) != 0)
        return r->code;
    struct mvalue *v = calloc(1, sizeof *v);
    if (v == NULL)
        return oom(r);
    if (typecode_arg(r, arg(a, 0), v->typecode, sizeof v->typecode) != 0) {
        free(v);
        return r->code;
    }
    v->value = steal(a, 1);
    *obj = v;
    return 0;
}

static void value_destroy(void *obj)
{
    struct mvalue *v = obj;
    mp_val_free(v->value);
    free(v);
}

static const struct mgr_method value_methods[] = {
    {"get", value_get},       {"set", value_set}, {"__repr__", value_repr},
    {"__str__", value_repr},  {NULL, NULL},
};

/* ---- Array (Python's array.array) -------------------------------------------- */

struct marray {
    char typecode;
    size_t len;
    union {
        int64_t *i;
        uint64_t *u;
        double *f;
    };
};

static bool tc_float(char tc)
{
    return tc == 'f' || tc == 'd';
}

static bool tc_unsigned(char tc)
{
    return tc == 'B' || tc == 'H' || tc == 'I' || tc == 'L' || tc == 'Q';
}

/* Bits of an integer typecode (LP64: l and L are 64-bit), 0 if unknown. */
static int tc_bits(char tc)
{
    switch (tc) {
    case 'b': case 'B': return 8;
    case 'h': case 'H': return 16;
    case 'i': case 'I': return 32;
    case 'l': case 'L': case 'q': case 'Q': return 64;
    default: return 0;
    }
}

/* Store x into element i, checking type and range as array.array does. */
static int array_store(struct marray *ar, size_t i, const mp_val *x, struct mgr_reply *r)
{
    char tc = ar->typecode;
    if (tc_float(tc)) {
        double f;
        if (mp_val_as_float(x, &f) != 0)
            return mp__reply_error(r, MP_EINVAL, "TypeError", "must be real number, not %s",
                                   mp_val_type_name(x));
        ar->f[i] = tc == 'f' ? (double)(float)f : f;
        return 0;
    }
    int64_t v;
    if (x->type == MP_VAL_FLOAT || mp_val_as_int(x, &v) != 0)
        return mp__reply_error(r, MP_EINVAL, "TypeError", "'%s' object cannot be interpreted as an integer",
                               mp_val_type_name(x));
    int bits = tc_bits(tc);
    if (tc_unsigned(tc)) {
        if (v < 0 || (bits < 64 && (uint64_t)v >> bits))
            return mp__reply_error(r, MP_EINVAL, "OverflowError",
                                   v < 0 ? "unsigned %s is less than minimum" : "unsigned %s is greater than maximum",
                                   bits == 8 ? "byte integer" : bits == 16 ? "short integer" : "int");
        ar->u[i] = (uint64_t)v;
    } else {
        int64_t lim = bits == 64 ? INT64_MAX : ((int64_t)1 << (bits - 1)) - 1;
        if (v > lim || v < -lim - 1)
            return mp__reply_error(r, MP_EINVAL, "OverflowError", "signed %s is %s",
                                   bits == 8 ? "char" : bits == 16 ? "short integer" : "integer",
                                   v > lim ? "greater than maximum" : "less than minimum");
        ar->i[i] = v;
    }
    return 0;
}

static mp_val *array_load(const struct marray *ar, size_t i)
{
    char tc = ar->typecode;
    mp_val *v = mp__val_new(tc_float(tc) ? MP_VAL_FLOAT : MP_VAL_INT);
    if (v == NULL)
        return NULL;
    if (tc_float(tc))
        v->f = ar->f[i];
    else if (tc_unsigned(tc))
        v->i = (int64_t)ar->u[i]; /* 'L' and 'Q' above INT64_MAX wrap: ints are 64-bit */
    else
        v->i = ar->i[i];
    return v;
}

static int array_len(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "__len__", a, 0, 0) != 0)
        return r->code;
    return reply_int(r, (int64_t)((struct marray *)o->obj)->len);
}

static int array_getitem(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    struct marray *ar = o->obj;
    int64_t i;
    if (mp__args(r, "__getitem__", a, 1, 1) != 0 || int_arg(r, arg(a, 0), &i) != 0)
        return r->code;
    if (i < 0)
        i += (int64_t)ar->len;
    if (i < 0 || (uint64_t)i >= ar->len)
        return mp__reply_error(r, MP_EINVAL, "IndexError", "array index out of range");
    mp_val *v = array_load(ar, (size_t)i);
    if (v == NULL)
        return oom(r);
    mp__reply_val(r, v);
    return 0;
}

static int array_setitem(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    struct marray *ar = o->obj;
    int64_t i;
    if (mp__args(r, "__setitem__", a, 2, 2) != 0 || int_arg(r, arg(a, 0), &i) != 0)
        return r->code;
    if (i < 0)
        i += (int64_t)ar->len;
    if (i < 0 || (uint64_t)i >= ar->len)
        return mp__reply_error(r, MP_EINVAL, "IndexError", "array assignment index out of range");
    if (array_store(ar, (size_t)i, arg(a, 1), r) != 0)
        return r->code;
    mp__reply_none(r);
    return 0;
}

static mp_val *array_list(const struct marray *ar)
{
    mp_val *l = mp__val_new(MP_VAL_LIST);
    for (size_t i = 0; l != NULL && i < ar->len; i++) {
        mp_val *v = array_load(ar, i);
        if (v == NULL || mp__val_list_push(l, v) != 0) {
            mp_val_free(l);
            return NULL;
        }
    }
    return l;
}

static int array_tolist(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "tolist", a, 0, 0) != 0)
        return r->code;
    mp_val *l = array_list(o->obj);
    if (l == NULL)
        return oom(r);
    mp__reply_val(r, l);
    return 0;
}

static int array_repr(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "__repr__", a, 0, 0) != 0)
        return r->code;
    struct marray *ar = o->obj;
    mp_val *l = array_list(ar);
    if (l == NULL)
        return oom(r);
    mp__buf b = {0};
    mp__buf_printf(&b, "array('%c'", ar->typecode);
    if (ar->len > 0) {
        mp__buf_puts(&b, ", ");
        mp__val_repr_buf(&b, l, false);
    }
    mp__buf_putc(&b, ')');
    mp_val_free(l);
    return reply_text(r, &b);
}

static void array_destroy(void *obj)
{
    struct marray *ar = obj;
    free(ar->i);
    free(ar);
}

static int array_create(struct mgr_srv *s, mp_val *a, void **obj, struct mgr_reply *r)
{
    char tc[8];
    if (mp__args(r, "Array", a, 2, 3) != 0 || typecode_arg(r, arg(a, 0), tc, sizeof tc) != 0)
        return r->code;
    if (tc[1] != '\0' || (!tc_float(tc[0]) && tc_bits(tc[0]) == 0))
        return mp__reply_error(r, MP_EINVAL, "ValueError",
                               "bad typecode (must be b, B, u, h, H, i, I, l, L, q, Q, f or d)");
    const mp_val *init = arg(a, 1);
    if (init->type != MP_VAL_LIST && init->type != MP_VAL_TUPLE)
        return mp__reply_error(r, MP_EINVAL, "TypeError", "cannot use a %s to initialize an array",
                               mp_val_type_name(init));
    struct marray *ar = calloc(1, sizeof *ar);
    if (ar == NULL)
        return oom(r);
    ar->typecode = tc[0];
    ar->len = init->seq.len;
    ar->i = calloc(ar->len ? ar->len : 1, 8);
    if (ar->i == NULL) {
        free(ar);
        return oom(r);
    }
    for (size_t i = 0; i < ar->len; i++)
        if (array_store(ar, i, init->seq.items[i], r) != 0) {
            array_destroy(ar);
            return r->code;
        }
    *obj = ar;
    return 0;
}

static const struct mgr_method array_methods[] = {
    {"__len__", array_len},   {"__getitem__", array_getitem}, {"__setitem__", array_setitem},
    {"tolist", array_tolist}, {"__repr__", array_repr},       {"__str__", array_repr},
    {NULL, NULL},
};

/* ---- the table of kinds -------------------------------------------------------- */

static const struct mgr_kind value_kinds[] = {
    {MP_PROXY_DICT, "dict", "dict", false, dict_create, val_destroy, dict_methods},
    {MP_PROXY_LIST, "list", "list", false, list_create, val_destroy, list_methods},
    {MP_PROXY_NAMESPACE, "Namespace", "Namespace", false, ns_create, val_destroy, ns_methods},
    {MP_PROXY_VALUE, "Value", "Value", false, value_create, value_destroy, value_methods},
    {MP_PROXY_ARRAY, "Array", "array", false, array_create, array_destroy, array_methods},
};

const struct mgr_kind *mp__mgr_kind_by_typeid(const char *typeid, size_t len)
{
    for (size_t i = 0; i < sizeof value_kinds / sizeof value_kinds[0]; i++)
        if (strlen(value_kinds[i].typeid) == len && memcmp(value_kinds[i].typeid, typeid, len) == 0)
            return &value_kinds[i];
    return mp__mgr_sync_kind_by_typeid(typeid, len);
}

const struct mgr_kind *mp__mgr_kind_by_kind(uint32_t kind)
{
    for (size_t i = 0; i < sizeof value_kinds / sizeof value_kinds[0]; i++)
        if (value_kinds[i].kind == kind)
            return &value_kinds[i];
    return mp__mgr_sync_kind_by_kind(kind);
}
