/*
 * mgr_set.c: the set kind a manager holds (Python's SyncManager.set() and
 * its SetProxy).  The members are the keys of an mp_val dict whose values
 * are None, so a set keeps its members in insertion order; the operations
 * that make a new set (union, intersection, difference, copy) hand back a
 * list of its members.
 */
#include "internal/mgr_methods.h"

#include <string.h>

static mp_val *set_of(struct mgr_obj *o)
{
    return o->obj;
}

static bool member_ok(const mp_val *k)
{
    if (k->type == MP_VAL_LIST || k->type == MP_VAL_DICT)
        return false;
    return k->type != MP_VAL_TUPLE || mp_val_hashable(k);
}

static int unhashable(struct mgr_reply *r, const mp_val *k)
{
    return mp__reply_error(r, MP_EINVAL, "TypeError", "unhashable type: '%s'",
                           mp_val_type_name(k));
}

/* Add k (taken) to the set d; 0 or -ENOMEM. */
static int set_put(mp_val *d, mp_val *k)
{
    mp_val *none = mp__val_new(MP_VAL_NONE);
    if (none == NULL) {
        mp_val_free(k);
        return -ENOMEM;
    }
    int e = mp__val_dict_put(d, k, none, false);
    if (e == 1) {
        mp_val_free(k);
        mp_val_free(none);
        e = 0;
    }
    return e;
}

/* The members of seq (a list or tuple), checked hashable before any is used. */
static int seq_members(struct mgr_reply *r, const mp_val *seq)
{
    if (seq->type != MP_VAL_LIST && seq->type != MP_VAL_TUPLE)
        return mp__reply_error(r, MP_EINVAL, "TypeError", "'%s' object is not iterable",
                               mp_val_type_name(seq));
    for (size_t i = 0; i < seq->seq.len; i++)
        if (!member_ok(seq->seq.items[i]))
            return unhashable(r, seq->seq.items[i]);
    return 0;
}

/* Move every member of seq into d. */
static int set_absorb(mp_val *d, mp_val *seq, struct mgr_reply *r)
{
    for (size_t i = 0; i < seq->seq.len; i++)
        if (set_put(d, steal(seq, i)) != 0)
            return oom(r);
    return 0;
}

/* Reply with a list of copies of the members of d for which keep says so. */
static int reply_members(struct mgr_reply *r, const mp_val *d, const mp_val *other, int keep)
{
    mp_val *l = mp__val_new(MP_VAL_LIST);
    if (l == NULL)
        return oom(r);
    for (size_t s = 0; s < d->dict.slots_; s++) {
        const mp_val *k = mp__val_dict_slot_key(d, s);
        if (k == NULL)
            continue;
        if (other != NULL && (mp__val_dict_find(other, k) >= 0) != (keep == 1))
            continue;
        mp_val *c = mp_val_copy(k);
        if (c == NULL || mp__val_list_push(l, c) != 0) {
            mp_val_free(l);
            return oom(r);
        }
    }
    mp__reply_val(r, l);
    return 0;
}

static int set_add(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "add", a, 1, 1) != 0)
        return r->code;
    if (!member_ok(arg(a, 0)))
        return unhashable(r, arg(a, 0));
    if (set_put(set_of(o), steal(a, 0)) != 0)
        return oom(r);
    mp__reply_none(r);
    return 0;
}

static int set_drop(struct mgr_obj *o, mp_val *a, struct mgr_reply *r, const char *name,
                    bool must)
{
    if (mp__args(r, name, a, 1, 1) != 0)
        return r->code;
    if (!member_ok(arg(a, 0)))
        return unhashable(r, arg(a, 0));
    long slot = mp__val_dict_find(set_of(o), arg(a, 0));
    if (slot >= 0) {
        mp__val_dict_remove_slot(set_of(o), (size_t)slot, NULL, NULL);
    } else if (must) {
        mp__buf b = {0};
        mp__val_repr_buf(&b, arg(a, 0), false);
        mp__buf_putc(&b, '\0');
        mp__reply_error(r, MP_EINVAL, "KeyError", "%s", b.oom ? "?" : b.p);
        mp__buf_free(&b);
        return r->code;
    }
    mp__reply_none(r);
    return 0;
}

static int set_discard(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    return set_drop(o, a, r, "discard", false);
}

static int set_remove(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    return set_drop(o, a, r, "remove", true);
}

static int set_contains(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "__contains__", a, 1, 1) != 0)
        return r->code;
    if (!member_ok(arg(a, 0)))
        return unhashable(r, arg(a, 0));
    return reply_bool(r, mp__val_dict_find(set_of(o), arg(a, 0)) >= 0);
}

static int set_len(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "__len__", a, 0, 0) != 0)
        return r->code;
    return reply_int(r, (int64_t)set_of(o)->dict.count);
}

static int set_pop(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "pop", a, 0, 0) != 0)
        return r->code;
    mp_val *d = set_of(o);
    if (d->dict.count == 0)
        return mp__reply_error(r, MP_EINVAL, "KeyError", "'pop from an empty set'");
    mp_val *k;
    mp__val_dict_remove_slot(d, d->dict.slots_ - 1, &k, NULL); /* no trailing holes */
    mp__reply_val(r, k);
    return 0;
}

static int set_clear(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "clear", a, 0, 0) != 0)
        return r->code;
    mp__val_dict_clear(set_of(o));
    mp__reply_none(r);
    return 0;
}

static int set_update(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "update", a, 1, 1) != 0 || seq_members(r, arg(a, 0)) != 0 ||
        set_absorb(set_of(o), a->seq.items[0], r) != 0)
        return r->code;
    mp__reply_none(r);
    return 0;
}

static int set_copy(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "copy", a, 0, 0) != 0)
        return r->code;
    return reply_members(r, set_of(o), NULL, 0);
}

static int set_union(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "union", a, 1, 1) != 0 || seq_members(r, arg(a, 0)) != 0)
        return r->code;
    mp_val *u = mp_val_copy(set_of(o));
    if (u == NULL)
        return oom(r);
    int e = set_absorb(u, a->seq.items[0], r);
    if (e == 0)
        e = reply_members(r, u, NULL, 0);
    mp_val_free(u);
    return e;
}

/* intersection (keep 1) and difference (keep 0) with a sequence. */
static int set_filter(struct mgr_obj *o, mp_val *a, struct mgr_reply *r, const char *name,
                      int keep)
{
    if (mp__args(r, name, a, 1, 1) != 0 || seq_members(r, arg(a, 0)) != 0)
        return r->code;
    mp_val *other = mp__val_new(MP_VAL_DICT);
    if (other == NULL)
        return oom(r);
    int e = set_absorb(other, a->seq.items[0], r);
    if (e == 0)
        e = reply_members(r, set_of(o), other, keep);
    mp_val_free(other);
    return e;
}

static int set_intersection(struct mgr_srv *s, struct mgr_obj *o, mp_val *a,
                            struct mgr_reply *r)
{
    return set_filter(o, a, r, "intersection", 1);
}

static int set_difference(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    return set_filter(o, a, r, "difference", 0);
}

static int set_repr(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "__repr__", a, 0, 0) != 0)
        return r->code;
    const mp_val *d = set_of(o);
    mp__buf b = {0};
    if (d->dict.count == 0) {
        mp__buf_put(&b, "set()", 5);
        return reply_text(r, &b);
    }
    mp__buf_putc(&b, '{');
    bool first = true;
    for (size_t i = 0; i < d->dict.slots_; i++) {
        const mp_val *k = mp__val_dict_slot_key(d, i);
        if (k == NULL)
            continue;
        if (!first)
            mp__buf_put(&b, ", ", 2);
        first = false;
        mp__val_repr_buf(&b, k, false);
    }
    mp__buf_putc(&b, '}');
    return reply_text(r, &b);
}

int mp__mgr_set_create(struct mgr_srv *s, mp_val *a, void **obj, struct mgr_reply *r)
{
    if (mp__args(r, "set", a, 0, 1) != 0)
        return r->code;
    bool init = a->seq.len == 1 && arg(a, 0)->type != MP_VAL_NONE;
    if (init && seq_members(r, arg(a, 0)) != 0)
        return r->code;
    mp_val *d = mp__val_new(MP_VAL_DICT);
    if (d == NULL)
        return oom(r);
    if (init && set_absorb(d, a->seq.items[0], r) != 0) {
        mp_val_free(d);
        return r->code;
    }
    *obj = d;
    return 0;
}

const struct mgr_method mp__mgr_set_methods[] = {
    {"add", set_add},
    {"discard", set_discard},
    {"remove", set_remove},
    {"__contains__", set_contains},
    {"__len__", set_len},
    {"pop", set_pop},
    {"clear", set_clear},
    {"update", set_update},
    {"__ior__", set_update},
    {"copy", set_copy},
    {"union", set_union},
    {"intersection", set_intersection},
    {"difference", set_difference},
    {"__repr__", set_repr},
    {"__str__", set_repr},
    {NULL, NULL},
};
