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
#include "internal/mgr_methods.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
    return mp__reply_error(r, MP_EINVAL, "TypeError", "unhashable type: '%s'",
                           mp_val_type_name(key));
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
    if (mp__args(r, "__getitem__", a, 1, 1) != 0 ||
        dict_lookup(r, dict_of(o), arg(a, 0), &slot))
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
    if (mp__args(r, "__delitem__", a, 1, 1) != 0 ||
        dict_lookup(r, dict_of(o), arg(a, 0), &slot))
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
    if (mp__args(r, "__contains__", a, 1, 1) != 0 ||
        dict_lookup(r, dict_of(o), arg(a, 0), &slot))
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
static int dict_view(struct mgr_obj *o, mp_val *a, struct mgr_reply *r, const char *name,
                     int what)
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
            return mp__reply_error(
                r, MP_EINVAL, "ValueError",
                "dictionary update sequence element #%zu has length %zu; 2 is required", i,
                mp_val_len(pair));
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

static int dict_or(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "__or__", a, 1, 1) != 0)
        return r->code;
    if (arg(a, 0)->type != MP_VAL_DICT)
        return mp__reply_error(r, MP_EINVAL, "TypeError",
                               "unsupported operand type(s) for |: 'dict' and '%s'",
                               mp_val_type_name(arg(a, 0)));
    mp_val *out = mp_val_copy(dict_of(o));
    if (out == NULL)
        return oom(r);
    if (dict_merge(out, a->seq.items[0], r) != 0) {
        mp_val_free(out);
        return r->code;
    }
    mp__reply_val(r, out);
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

static int dict_setdefault(struct mgr_srv *s, struct mgr_obj *o, mp_val *a,
                           struct mgr_reply *r)
{
    long slot = -1;
    if (mp__args(r, "setdefault", a, 1, 2) != 0 ||
        dict_lookup(r, dict_of(o), arg(a, 0), &slot))
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

int mp__mgr_val_repr(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
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
    if (a->seq.len == 1 && arg(a, 0)->type != MP_VAL_NONE &&
        dict_merge(d, a->seq.items[0], r) != 0) {
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
    {"__setitem__", dict_setitem},
    {"__getitem__", dict_getitem},
    {"get", dict_get},
    {"__delitem__", dict_delitem},
    {"__contains__", dict_contains},
    {"__len__", dict_len},
    {"keys", dict_keys},
    {"values", dict_values},
    {"items", dict_items},
    {"update", dict_update},
    {"clear", dict_clear},
    {"pop", dict_pop},
    {"popitem", dict_popitem},
    {"setdefault", dict_setdefault},
    {"copy", dict_copy},
    {"__repr__", mp__mgr_val_repr},
    {"__str__", mp__mgr_val_repr},
    {"__or__", dict_or},
    {"__ior__", dict_update},
    {NULL, NULL},
};

/* ---- Namespace ------------------------------------------------------------------ */

static int attr_name(struct mgr_reply *r, const mp_val *v)
{
    if (v->type != MP_VAL_STR)
        return mp__reply_error(r, MP_EINVAL, "TypeError",
                               "attribute name must be string, not '%s'", mp_val_type_name(v));
    return 0;
}

static int no_attr(struct mgr_reply *r, const mp_val *name)
{
    return mp__reply_error(r, MP_EINVAL, "AttributeError",
                           "'Namespace' object has no attribute '%.*s'",
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
    {"__getattribute__", ns_getattr},
    {"__setattr__", ns_setattr},
    {"__delattr__", ns_delattr},
    {"copy", dict_copy},
    {"__repr__", ns_repr},
    {"__str__", ns_repr},
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
    {"get", value_get},      {"set", value_set}, {"__repr__", value_repr},
    {"__str__", value_repr}, {NULL, NULL},
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
    case 'b':
    case 'B':
        return 8;
    case 'h':
    case 'H':
        return 16;
    case 'i':
    case 'I':
        return 32;
    case 'l':
    case 'L':
    case 'q':
    case 'Q':
        return 64;
    default:
        return 0;
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
        return mp__reply_error(r, MP_EINVAL, "TypeError",
                               "'%s' object cannot be interpreted as an integer",
                               mp_val_type_name(x));
    int bits = tc_bits(tc);
    if (tc_unsigned(tc)) {
        if (v < 0 || (bits < 64 && (uint64_t)v >> bits))
            return mp__reply_error(r, MP_EINVAL, "OverflowError",
                                   v < 0 ? "unsigned %s is less than minimum"
                                         : "unsigned %s is greater than maximum",
                                   bits == 8    ? "byte integer"
                                   : bits == 16 ? "short integer"
                                                : "int");
        ar->u[i] = (uint64_t)v;
    } else {
        int64_t lim = bits == 64 ? INT64_MAX : ((int64_t)1 << (bits - 1)) - 1;
        if (v > lim || v < -lim - 1)
            return mp__reply_error(r, MP_EINVAL, "OverflowError", "signed %s is %s",
                                   bits == 8    ? "char"
                                   : bits == 16 ? "short integer"
                                                : "integer",
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
        return mp__reply_error(r, MP_EINVAL, "IndexError",
                               "array assignment index out of range");
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
        return mp__reply_error(
            r, MP_EINVAL, "ValueError",
            "bad typecode (must be b, B, u, h, H, i, I, l, L, q, Q, f or d)");
    const mp_val *init = arg(a, 1);
    if (init->type != MP_VAL_LIST && init->type != MP_VAL_TUPLE)
        return mp__reply_error(r, MP_EINVAL, "TypeError",
                               "cannot use a %s to initialize an array",
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
    {"__len__", array_len},
    {"__getitem__", array_getitem},
    {"__setitem__", array_setitem},
    {"tolist", array_tolist},
    {"__repr__", array_repr},
    {"__str__", array_repr},
    {NULL, NULL},
};

/* ---- the table of kinds -------------------------------------------------------- */

static const struct mgr_kind value_kinds[] = {
    {MP_PROXY_DICT, "dict", "dict", false, dict_create, val_destroy, dict_methods},
    {MP_PROXY_LIST, "list", "list", false, mp__mgr_list_create, val_destroy,
     mp__mgr_list_methods},
    {MP_PROXY_SET, "set", "set", false, mp__mgr_set_create, val_destroy, mp__mgr_set_methods},
    {MP_PROXY_NAMESPACE, "Namespace", "Namespace", false, ns_create, val_destroy, ns_methods},
    {MP_PROXY_VALUE, "Value", "Value", false, value_create, value_destroy, value_methods},
    {MP_PROXY_ARRAY, "Array", "array", false, array_create, array_destroy, array_methods},
};

const struct mgr_kind *mp__mgr_kind_by_typeid(const char *typeid, size_t len)
{
    for (size_t i = 0; i < sizeof value_kinds / sizeof value_kinds[0]; i++)
        if (strlen(value_kinds[i].typeid) == len &&
            memcmp(value_kinds[i].typeid, typeid, len) == 0)
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
