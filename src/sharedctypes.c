/*
 * sharedctypes.c: Value, Array, RawValue and RawArray (Python's
 * multiprocessing/sharedctypes.py).
 *
 * A Value is an Array of one item.  Both are one arena block: a header,
 * then the items, 8-byte aligned; mp_value and mp_array stay incomplete
 * types, pointers to a struct ctype.  The lock, when there is one, is an
 * mp_lock object of its own (made here, or given by the caller).
 */
#include "internal/mp.h"
#include "internal/sync.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <wchar.h>

#define VALUE_MAGIC MP__MAGIC('v', 'a', 'l', 'u')
#define ARRAY_MAGIC MP__MAGIC('a', 'r', 'r', 'y')

struct ctype {
    mp__obj hdr;
    mp_lock *lock; /* NULL: no lock */
    uint64_t len;  /* items */
    char *items;   /* data, or a raw object's items (synchronized) */
    uint32_t itemsize;
    char typecode; /* MP_STRUCT: opaque items of itemsize bytes */
    bool own_lock;
    _Alignas(64) uint64_t data[]; /* the items */
};

size_t mp_typecode_size(char typecode)
{
    switch (typecode) {
    case 'c':
        return sizeof(char);
    case 'b':
        return sizeof(signed char);
    case 'B':
        return sizeof(unsigned char);
    case 'h':
        return sizeof(short);
    case 'H':
        return sizeof(unsigned short);
    case 'i':
        return sizeof(int);
    case 'I':
        return sizeof(unsigned int);
    case 'l':
        return sizeof(long);
    case 'L':
        return sizeof(unsigned long);
    case 'q':
        return sizeof(long long);
    case 'Q':
        return sizeof(unsigned long long);
    case 'f':
        return sizeof(float);
    case 'd':
        return sizeof(double);
    case 'u':
        return sizeof(wchar_t);
    default:
        return 0;
    }
}

/* The item size of a typecode, or of a struct of itemsize bytes; 0: bad. */
static size_t item_size(char typecode, size_t itemsize)
{
    if (typecode == MP_STRUCT)
        return itemsize > 0 && itemsize <= UINT32_MAX ? itemsize : 0;
    return itemsize == 0 || itemsize == mp_typecode_size(typecode) ? mp_typecode_size(typecode)
                                                                   : 0;
}

/* ---- conversions to and from double ------------------------------------- */

/* x as an integer of [lo, hi], or false when it is not one. */
static bool whole_in(double x, double lo, double hi_excl)
{
    return x == trunc(x) && x >= lo && x < hi_excl;
}

/* Store x at p as typecode; MP_EINVAL when it does not fit. */
static int store_double(char tc, void *p, double x)
{
    /* Upper bounds are exclusive powers of two, exact in a double. */
    switch (tc) {
    case 'c':
        if (!whole_in(x, -128, 256))
            return MP_EINVAL;
        *(char *)p = (char)(int)x;
        return 0;
    case 'b':
        if (!whole_in(x, SCHAR_MIN, 0x1p7))
            return MP_EINVAL;
        *(signed char *)p = (signed char)x;
        return 0;
    case 'B':
        if (!whole_in(x, 0, 0x1p8))
            return MP_EINVAL;
        *(unsigned char *)p = (unsigned char)x;
        return 0;
    case 'h':
        if (!whole_in(x, SHRT_MIN, 0x1p15))
            return MP_EINVAL;
        *(short *)p = (short)x;
        return 0;
    case 'H':
        if (!whole_in(x, 0, 0x1p16))
            return MP_EINVAL;
        *(unsigned short *)p = (unsigned short)x;
        return 0;
    case 'i':
        if (!whole_in(x, INT_MIN, 0x1p31))
            return MP_EINVAL;
        *(int *)p = (int)x;
        return 0;
    case 'I':
        if (!whole_in(x, 0, 0x1p32))
            return MP_EINVAL;
        *(unsigned int *)p = (unsigned int)x;
        return 0;
    case 'l':
        if (!whole_in(x, -0x1p63, 0x1p63))
            return MP_EINVAL;
        *(long *)p = (long)x;
        return 0;
    case 'L':
        if (!whole_in(x, 0, 0x1p64))
            return MP_EINVAL;
        *(unsigned long *)p = (unsigned long)x;
        return 0;
    case 'q':
        if (!whole_in(x, -0x1p63, 0x1p63))
            return MP_EINVAL;
        *(long long *)p = (long long)x;
        return 0;
    case 'Q':
        if (!whole_in(x, 0, 0x1p64))
            return MP_EINVAL;
        *(unsigned long long *)p = (unsigned long long)x;
        return 0;
    case 'f':
        *(float *)p = (float)x;
        return 0;
    case 'd':
        *(double *)p = x;
        return 0;
    case 'u':
        /* A Unicode code point, as Python's 'u' holds one character. */
        if (!whole_in(x, 0, 0x110000))
            return MP_EINVAL;
        *(wchar_t *)p = (wchar_t)x;
        return 0;
    default:
        return MP_EINVAL;
    }
}

static double load_double(char tc, const void *p)
{
    switch (tc) {
    case 'c':
        return *(const char *)p;
    case 'b':
        return *(const signed char *)p;
    case 'B':
        return *(const unsigned char *)p;
    case 'h':
        return *(const short *)p;
    case 'H':
        return *(const unsigned short *)p;
    case 'i':
        return *(const int *)p;
    case 'I':
        return *(const unsigned int *)p;
    case 'l':
        return (double)*(const long *)p;
    case 'L':
        return (double)*(const unsigned long *)p;
    case 'q':
        return (double)*(const long long *)p;
    case 'Q':
        return (double)*(const unsigned long long *)p;
    case 'f':
        return *(const float *)p;
    case 'u':
        return *(const wchar_t *)p;
    default:
        return *(const double *)p;
    }
}

/* The long and unsigned long typecodes assume LP64, as the header says. */
_Static_assert(sizeof(long) == 8, "libmp's 'l' and 'L' typecodes assume LP64");

/* ---- creation ----------------------------------------------------------- */

struct make {
    char typecode;
    size_t itemsize; /* MP_STRUCT's size; 0 or the typecode's otherwise */
    size_t len;
    const void *init; /* len items, or NULL */
    mp_lock *lock;
    bool nolock;
    bool raw;
    uint32_t magic;
};

static struct ctype *ctype_make(const struct make *m)
{
    size_t itemsize = item_size(m->typecode, m->itemsize);
    if (itemsize == 0)
        return mp__fail_null(MP_EINVAL);
    if (m->len > (SIZE_MAX - sizeof(struct ctype)) / itemsize)
        return mp__fail_null(MP_EINVAL);
    if (m->raw ? m->lock != NULL : (m->lock != NULL && m->nolock))
        return mp__fail_null(MP_EINVAL);
    if (m->lock != NULL && mp_lock_locked(m->lock) < 0)
        return mp__fail_null(MP_EINVAL);
    struct ctype *c = mp__obj_create(sizeof *c + m->len * itemsize, 0);
    if (c == NULL)
        return NULL;
    c->len = m->len;
    c->itemsize = (uint32_t)itemsize;
    c->typecode = m->typecode;
    c->items = (char *)c->data;
    if (m->init != NULL && m->len > 0)
        memcpy(c->items, m->init, m->len * itemsize);
    c->lock = m->lock;
    if (c->lock == NULL && !m->raw && !m->nolock) {
        c->lock = mp_rlock_new();
        if (c->lock == NULL) {
            mp__obj_free(c);
            return mp__fail_null(-ENOMEM);
        }
        c->own_lock = true;
    }
    __atomic_store_n(&c->hdr.magic, m->magic, __ATOMIC_RELEASE);
    return c;
}

static mp_value *value_make(const mp_value_options *o, bool raw)
{
    mp_value_options opts_local;
    int opts_err;
    o = MP__OPTS_LOAD(opts_local, o, ctx, &opts_err);
    if (opts_err != 0)
        return mp__fail_null(opts_err);
    if (o == NULL)
        return mp__fail_null(MP_EINVAL);
    uint64_t first = 0; /* one item of any type, built from .value */
    const void *init = o->init;
    if (init == NULL && o->typecode == MP_STRUCT) {
        if (o->value != 0) /* a struct is not a number: zeros or .init */
            return mp__fail_null(MP_EINVAL);
    } else if (init == NULL) {
        if (mp_typecode_size(o->typecode) == 0 ||
            store_double(o->typecode, &first, o->value) != 0)
            return mp__fail_null(MP_EINVAL);
        init = &first;
    }
    struct make m = {.typecode = o->typecode,
                     .itemsize = o->itemsize,
                     .len = 1,
                     .init = init,
                     .lock = o->lock,
                     .nolock = o->nolock,
                     .raw = raw,
                     .magic = VALUE_MAGIC};
    return (mp_value *)ctype_make(&m);
}

mp_value *mp_value_new_opts(const mp_value_options *opts)
{
    return value_make(opts, false);
}

mp_value *mp_raw_value_new_opts(const mp_value_options *opts)
{
    return value_make(opts, true);
}

static mp_array *array_make(const mp_array_options *o, bool raw)
{
    mp_array_options opts_local;
    int opts_err;
    o = MP__OPTS_LOAD(opts_local, o, ctx, &opts_err);
    if (opts_err != 0)
        return mp__fail_null(opts_err);
    if (o == NULL)
        return mp__fail_null(MP_EINVAL);
    struct make m = {.typecode = o->typecode,
                     .itemsize = o->itemsize,
                     .len = o->size,
                     .init = o->init,
                     .lock = o->lock,
                     .nolock = o->nolock,
                     .raw = raw,
                     .magic = ARRAY_MAGIC};
    return (mp_array *)ctype_make(&m);
}

mp_array *mp_array_new_opts(const mp_array_options *opts)
{
    return array_make(opts, false);
}

mp_array *mp_raw_array_new_opts(const mp_array_options *opts)
{
    return array_make(opts, true);
}

/* ---- shared implementation ---------------------------------------------- */

static struct ctype *ctype_get(const void *p, uint32_t magic)
{
    return mp__obj_check(p, magic) == 0 ? (struct ctype *)p : NULL;
}

/*
 * Take the lock for one access, unless there is none or the calling thread
 * holds it already.  Returns 0 or MP_EOWNERDEAD with *taken telling whether
 * to release, or a negative error.
 */
static int access_begin(struct ctype *c, bool *taken)
{
    *taken = false;
    if (c->lock == NULL)
        return 0;
    int mine = mp__lock_is_mine(c->lock);
    if (mine < 0)
        return mine; /* the given lock was freed */
    if (mine)
        return 0;
    int r = mp__lock_acquire(c->lock, MP_FOREVER);
    if (r != 0 && r != MP_EOWNERDEAD)
        return r;
    *taken = true;
    return r;
}

static void access_end(struct ctype *c, bool taken)
{
    if (taken)
        mp__lock_release(c->lock);
}

/* Copy count items from or to the array under the lock. */
static int ctype_copy(struct ctype *c, size_t start, size_t count, void *buf, size_t size,
                      bool out)
{
    if (size != c->itemsize || (buf == NULL && count > 0) || start > c->len ||
        count > c->len - start)
        return MP_EINVAL;
    if (count == 0)
        return 0;
    bool taken;
    int r = access_begin(c, &taken);
    if (r < 0 && r != MP_EOWNERDEAD)
        return r;
    char *items = c->items + start * c->itemsize;
    if (out)
        memcpy(buf, items, count * c->itemsize);
    else
        memcpy(items, buf, count * c->itemsize);
    access_end(c, taken);
    return r;
}

static int ctype_get_double(struct ctype *c, size_t index, double *out)
{
    if (out == NULL || index >= c->len || c->typecode == MP_STRUCT)
        return MP_EINVAL;
    bool taken;
    int r = access_begin(c, &taken);
    if (r < 0 && r != MP_EOWNERDEAD)
        return r;
    *out = load_double(c->typecode, c->items + index * c->itemsize);
    access_end(c, taken);
    return r;
}

static int ctype_set_double(struct ctype *c, size_t index, double x)
{
    uint64_t item;
    if (index >= c->len || store_double(c->typecode, &item, x) != 0)
        return MP_EINVAL;
    return ctype_copy(c, index, 1, &item, c->itemsize, false);
}

static int ctype_acquire(struct ctype *c, double timeout)
{
    if (c == NULL || c->lock == NULL)
        return MP_EINVAL;
    return mp__lock_acquire(c->lock, timeout);
}

static int ctype_release(struct ctype *c)
{
    if (c == NULL || c->lock == NULL)
        return MP_EINVAL;
    return mp__lock_release(c->lock);
}

static void *ctype_ptr_as(struct ctype *c, size_t size)
{
    return c != NULL && size == c->itemsize ? c->items : NULL;
}

static void ctype_free(struct ctype *c)
{
    if (c == NULL)
        return;
    if (c->own_lock)
        mp_lock_free(c->lock);
    mp__obj_free(c);
}

/* copy(): a raw object of the same type holding a copy of c's items,
 * copied under c's lock. */
static struct ctype *ctype_copy_new(struct ctype *c, uint32_t magic)
{
    if (c == NULL)
        return mp__fail_null(MP_EINVAL);
    struct make m = {.typecode = c->typecode,
                     .itemsize = c->itemsize,
                     .len = c->len,
                     .raw = true,
                     .magic = magic};
    struct ctype *n = ctype_make(&m);
    if (n == NULL)
        return NULL;
    int r = ctype_copy(c, 0, c->len, n->items, c->itemsize, true);
    if (r != 0 && r != MP_EOWNERDEAD) {
        ctype_free(n);
        return mp__fail_null(r);
    }
    return n;
}

/* synchronized(): a new object over raw's items, with a lock. */
static struct ctype *ctype_synchronized(struct ctype *raw, mp_lock *lock, uint32_t magic)
{
    if (raw == NULL || raw->lock != NULL) /* 'object already synchronized' */
        return mp__fail_null(MP_EINVAL);
    if (lock != NULL && mp_lock_locked(lock) < 0)
        return mp__fail_null(MP_EINVAL);
    struct ctype *c = mp__obj_create(sizeof *c, 0);
    if (c == NULL)
        return NULL;
    c->len = raw->len;
    c->itemsize = raw->itemsize;
    c->typecode = raw->typecode;
    c->items = raw->items;
    c->lock = lock;
    if (lock == NULL) {
        c->lock = mp_rlock_new();
        if (c->lock == NULL) {
            mp__obj_free(c);
            return mp__fail_null(-ENOMEM);
        }
        c->own_lock = true;
    }
    __atomic_store_n(&c->hdr.magic, magic, __ATOMIC_RELEASE);
    return c;
}

/* ---- Value -------------------------------------------------------------- */

#define V(v) ctype_get((v), VALUE_MAGIC)

void *mp_value_ptr(const mp_value *v)
{
    struct ctype *c = V(v);
    return c ? c->items : NULL;
}

void *mp_value_ptr_as(const mp_value *v, size_t size)
{
    return ctype_ptr_as(V(v), size);
}

int mp_value_get(mp_value *v, void *out, size_t size)
{
    struct ctype *c = V(v);
    return c ? ctype_copy(c, 0, 1, out, size, true) : MP_EINVAL;
}

int mp_value_set(mp_value *v, const void *in, size_t size)
{
    struct ctype *c = V(v);
    return c ? ctype_copy(c, 0, 1, (void *)in, size, false) : MP_EINVAL;
}

int mp_value_get_double(mp_value *v, double *out)
{
    struct ctype *c = V(v);
    return c ? ctype_get_double(c, 0, out) : MP_EINVAL;
}

int mp_value_set_double(mp_value *v, double x)
{
    struct ctype *c = V(v);
    return c ? ctype_set_double(c, 0, x) : MP_EINVAL;
}

char mp_value_typecode(const mp_value *v)
{
    struct ctype *c = V(v);
    return c ? c->typecode : 0;
}

mp_lock *mp_value_get_lock(const mp_value *v)
{
    struct ctype *c = V(v);
    return c ? c->lock : NULL;
}

int mp_value_acquire(mp_value *v, double timeout)
{
    return ctype_acquire(V(v), timeout);
}

int mp_value_release(mp_value *v)
{
    return ctype_release(V(v));
}

void mp_value_free(mp_value *v)
{
    ctype_free(V(v));
}

size_t mp_value_itemsize(const mp_value *v)
{
    struct ctype *c = V(v);
    return c ? c->itemsize : 0;
}

mp_value *mp_value_copy(mp_value *v)
{
    return (mp_value *)ctype_copy_new(V(v), VALUE_MAGIC);
}

mp_value *mp_value_synchronized(mp_value *raw, mp_lock *lock)
{
    return (mp_value *)ctype_synchronized(V(raw), lock, VALUE_MAGIC);
}

/* ---- Array -------------------------------------------------------------- */

#define A(a) ctype_get((a), ARRAY_MAGIC)

void *mp_array_ptr(const mp_array *a)
{
    struct ctype *c = A(a);
    return c ? c->items : NULL;
}

void *mp_array_ptr_as(const mp_array *a, size_t size)
{
    return ctype_ptr_as(A(a), size);
}

ssize_t mp_array_len(const mp_array *a)
{
    struct ctype *c = A(a);
    return c ? (ssize_t)c->len : MP_EINVAL;
}

char mp_array_typecode(const mp_array *a)
{
    struct ctype *c = A(a);
    return c ? c->typecode : 0;
}

int mp_array_get(mp_array *a, size_t index, void *out, size_t size)
{
    struct ctype *c = A(a);
    return c ? ctype_copy(c, index, 1, out, size, true) : MP_EINVAL;
}

int mp_array_set(mp_array *a, size_t index, const void *in, size_t size)
{
    struct ctype *c = A(a);
    return c ? ctype_copy(c, index, 1, (void *)in, size, false) : MP_EINVAL;
}

int mp_array_read(mp_array *a, size_t start, size_t count, void *buf, size_t size)
{
    struct ctype *c = A(a);
    return c ? ctype_copy(c, start, count, buf, size, true) : MP_EINVAL;
}

int mp_array_write(mp_array *a, size_t start, size_t count, const void *buf, size_t size)
{
    struct ctype *c = A(a);
    return c ? ctype_copy(c, start, count, (void *)buf, size, false) : MP_EINVAL;
}

int mp_array_get_double(mp_array *a, size_t index, double *out)
{
    struct ctype *c = A(a);
    return c ? ctype_get_double(c, index, out) : MP_EINVAL;
}

int mp_array_set_double(mp_array *a, size_t index, double x)
{
    struct ctype *c = A(a);
    return c ? ctype_set_double(c, index, x) : MP_EINVAL;
}

mp_lock *mp_array_get_lock(const mp_array *a)
{
    struct ctype *c = A(a);
    return c ? c->lock : NULL;
}

int mp_array_acquire(mp_array *a, double timeout)
{
    return ctype_acquire(A(a), timeout);
}

int mp_array_release(mp_array *a)
{
    return ctype_release(A(a));
}

void mp_array_free(mp_array *a)
{
    ctype_free(A(a));
}

size_t mp_array_itemsize(const mp_array *a)
{
    struct ctype *c = A(a);
    return c ? c->itemsize : 0;
}

mp_array *mp_array_copy(mp_array *a)
{
    return (mp_array *)ctype_copy_new(A(a), ARRAY_MAGIC);
}

mp_array *mp_array_synchronized(mp_array *raw, mp_lock *lock)
{
    return (mp_array *)ctype_synchronized(A(raw), lock, ARRAY_MAGIC);
}
