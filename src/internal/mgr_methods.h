/*
 * internal/mgr_methods.h: small helpers for the methods of the builtin
 * kinds (mgr_types.c, mgr_list.c).  Arguments arrive as a decoded tuple
 * owned by the dispatcher; a method steals the items it keeps.
 */
#ifndef LIBMP_INTERNAL_MGR_METHODS_H
#define LIBMP_INTERNAL_MGR_METHODS_H

#include "internal/managers.h"

#include <stdlib.h>

static inline mp_val *steal(mp_val *args, size_t i)
{
    mp_val *v = args->seq.items[i];
    args->seq.items[i] = NULL;
    return v;
}

static inline const mp_val *arg(const mp_val *args, size_t i)
{
    return args->seq.items[i];
}

static inline int oom(struct mgr_reply *r)
{
    return mp__reply_error(r, -ENOMEM, "MemoryError", "out of memory");
}

static inline int reply_bool(struct mgr_reply *r, bool b)
{
    mp__reply_borrow(r, b ? &mp__true : &mp__false);
    return 0;
}

static inline int reply_int(struct mgr_reply *r, int64_t i)
{
    mp_val *v = mp__val_new(MP_VAL_INT);
    if (v == NULL)
        return oom(r);
    v->i = i;
    mp__reply_val(r, v);
    return 0;
}

static inline int reply_text(struct mgr_reply *r, mp__buf *b)
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

/* An int argument (bool accepted, as Python's __index__). */
static inline int int_arg(struct mgr_reply *r, const mp_val *v, int64_t *out)
{
    if (mp_val_as_int(v, out) == 0)
        return 0;
    return mp__reply_error(r, MP_EINVAL, "TypeError",
                           "'%s' object cannot be interpreted as an integer",
                           mp_val_type_name(v));
}

/* __repr__ and __str__ of the value kinds: repr of the held mp_val. */
int mp__mgr_val_repr(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r);

/* The list kind (mgr_list.c). */
extern const struct mgr_method mp__mgr_list_methods[];
int mp__mgr_list_create(struct mgr_srv *s, mp_val *a, void **obj, struct mgr_reply *r);

/* The set kind (mgr_set.c). */
extern const struct mgr_method mp__mgr_set_methods[];
int mp__mgr_set_create(struct mgr_srv *s, mp_val *a, void **obj, struct mgr_reply *r);

#endif /* LIBMP_INTERNAL_MGR_METHODS_H */
