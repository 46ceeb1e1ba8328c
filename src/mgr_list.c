/*
 * mgr_list.c: the list kind a manager holds, with the methods of Python's
 * ListProxy: item access with negative indexes, slices as Python computes
 * them, sort with a named order (stable, reverse keeping equal items in
 * order), and Python's error messages.
 */
#include "internal/mgr_methods.h"

#include <string.h>

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
        return mp__reply_error(r, MP_EINVAL, "IndexError",
                               "list assignment index out of range");
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
        return mp__reply_error(r, MP_EINVAL, "IndexError",
                               "list assignment index out of range");
    mp_val_free(mp__val_list_remove(list_of(o), (size_t)k));
    mp__reply_none(r);
    return 0;
}

static int list_pop(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    int64_t i = -1;
    if (mp__args(r, "pop", a, 0, 1) != 0 ||
        (a->seq.len == 1 && int_arg(r, arg(a, 0), &i) != 0))
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

static int sort_cmp(const struct sorter *st, const struct sort_item *a,
                    const struct sort_item *b)
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
static void merge_sort(const struct sorter *st, struct sort_item *x, struct sort_item *tmp,
                       size_t n)
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
            return mp__reply_error(r, MP_EINVAL, "TypeError",
                                   "sort key must be a comparator name");
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
    if ((has_start && int_arg(r, vstart, start) != 0) ||
        (has_stop && int_arg(r, vstop, stop) != 0))
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
static int simple_slice(struct mgr_reply *r, const mp_val *a, size_t len, size_t *from,
                        size_t *to)
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
        memmove(&l->seq.items[from + add], &l->seq.items[to],
                (l->seq.len - to) * sizeof(mp_val *));
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
    if (mp__args(r, "delslice", a, 2, 2) != 0 ||
        simple_slice(r, a, l->seq.len, &from, &to) != 0)
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

/* A copy of l repeated times times (0 or less: empty), or NULL (oom). */
static mp_val *list_repeat(const mp_val *l, int64_t times)
{
    mp_val *out = mp__val_new(MP_VAL_LIST);
    size_t n = l->seq.len;
    if (out == NULL || times <= 0 || n == 0)
        return out;
    if ((uint64_t)times > (1ull << 32) / n) {
        mp_val_free(out);
        return NULL;
    }
    for (int64_t t = 0; t < times; t++)
        for (size_t i = 0; i < n; i++) {
            mp_val *c = mp_val_copy(l->seq.items[i]);
            if (c == NULL || mp__val_list_push(out, c) != 0) {
                mp_val_free(out);
                return NULL;
            }
        }
    return out;
}

static int list_add(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "__add__", a, 1, 1) != 0)
        return r->code;
    if (arg(a, 0)->type != MP_VAL_LIST)
        return mp__reply_error(r, MP_EINVAL, "TypeError",
                               "can only concatenate list (not \"%s\") to list",
                               mp_val_type_name(arg(a, 0)));
    mp_val *out = list_repeat(list_of(o), 1);
    if (out == NULL)
        return oom(r);
    if (list_absorb(out, a->seq.items[0], r) != 0) {
        mp_val_free(out);
        return r->code;
    }
    mp__reply_val(r, out);
    return 0;
}

static int list_mul(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    int64_t times;
    if (mp__args(r, "__mul__", a, 1, 1) != 0 || int_arg(r, arg(a, 0), &times) != 0)
        return r->code;
    mp_val *out = list_repeat(list_of(o), times);
    if (out == NULL)
        return oom(r);
    mp__reply_val(r, out);
    return 0;
}

static int list_reversed(struct mgr_srv *s, struct mgr_obj *o, mp_val *a, struct mgr_reply *r)
{
    if (mp__args(r, "__reversed__", a, 0, 0) != 0)
        return r->code;
    mp_val *out = list_repeat(list_of(o), 1);
    if (out == NULL)
        return oom(r);
    for (size_t i = 0, n = out->seq.len; i < n / 2; i++) {
        mp_val *t = out->seq.items[i];
        out->seq.items[i] = out->seq.items[n - 1 - i];
        out->seq.items[n - 1 - i] = t;
    }
    mp__reply_val(r, out);
    return 0;
}

int mp__mgr_list_create(struct mgr_srv *s, mp_val *a, void **obj, struct mgr_reply *r)
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

const struct mgr_method mp__mgr_list_methods[] = {
    {"append", list_append},
    {"extend", list_extend},
    {"__iadd__", list_extend},
    {"insert", list_insert},
    {"__getitem__", list_getitem},
    {"__setitem__", list_setitem},
    {"__delitem__", list_delitem},
    {"pop", list_pop},
    {"remove", list_remove},
    {"index", list_index_of},
    {"count", list_count},
    {"__contains__", list_contains},
    {"__len__", list_len},
    {"reverse", list_reverse},
    {"sort", list_sort},
    {"getslice", list_getslice},
    {"setslice", list_setslice},
    {"delslice", list_delslice},
    {"copy", list_copy},
    {"__imul__", list_imul},
    {"__repr__", mp__mgr_val_repr},
    {"__str__", mp__mgr_val_repr},
    {"__add__", list_add},
    {"__mul__", list_mul},
    {"__rmul__", list_mul},
    {"__reversed__", list_reversed},
    {NULL, NULL},
};
