/*
 * val.c: typed values (libmp/val.h): construction, lists, copying, and
 * Python's equality, hashing and ordering.  Dicts are in val_dict.c.
 *
 * An allocated str or bytes value is one malloc block: the node and then
 * the bytes and a NUL.  A list or tuple holds a malloc'd array of item
 * pointers.
 */
#include "internal/val.h"

#include <libmp/managers.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- construction ------------------------------------------------------- */

const mp_val mp__none = {.type = MP_VAL_NONE};
const mp_val mp__true = {.type = MP_VAL_BOOL, .b = true};
const mp_val mp__false = {.type = MP_VAL_BOOL, .b = false};

mp_val *mp__val_new(mp_val_type type)
{
    mp_val *v = calloc(1, sizeof *v);
    if (v != NULL) {
        v->type = type;
        v->alloc_ = 1;
    }
    return v;
}

mp_val *mp__val_new_bytes(mp_val_type type, const void *p, size_t n)
{
    if (n > SIZE_MAX - sizeof(mp_val) - 1)
        return NULL;
    mp_val *v = malloc(sizeof *v + n + 1);
    if (v == NULL)
        return NULL;
    memset(v, 0, sizeof *v);
    char *bytes = (char *)(v + 1);
    if (n)
        memcpy(bytes, p, n);
    bytes[n] = '\0';
    v->type = type;
    v->alloc_ = 1;
    v->s.ptr = bytes;
    v->s.len = n;
    return v;
}

static mp_val *new_or_fail(mp_val_type type)
{
    mp_val *v = mp__val_new(type);
    return v != NULL ? v : mp__fail_null(-ENOMEM);
}

mp_val *mp_val_none(void)
{
    return new_or_fail(MP_VAL_NONE);
}

mp_val *mp_val_bool(bool b)
{
    mp_val *v = new_or_fail(MP_VAL_BOOL);
    if (v)
        v->b = b;
    return v;
}

mp_val *mp_val_int(int64_t i)
{
    mp_val *v = new_or_fail(MP_VAL_INT);
    if (v)
        v->i = i;
    return v;
}

mp_val *mp_val_float(double f)
{
    mp_val *v = new_or_fail(MP_VAL_FLOAT);
    if (v)
        v->f = f;
    return v;
}

mp_val *mp_val_strn(const char *p, size_t n)
{
    if ((p == NULL && n > 0) || !mp__utf8_valid(p, n))
        return mp__fail_null(MP_EINVAL);
    mp_val *v = mp__val_new_bytes(MP_VAL_STR, p, n);
    return v != NULL ? v : mp__fail_null(-ENOMEM);
}

mp_val *mp_val_str(const char *s)
{
    if (s == NULL)
        return mp__fail_null(MP_EINVAL);
    return mp_val_strn(s, strlen(s));
}

mp_val *mp_val_bytes(const void *p, size_t n)
{
    if (p == NULL && n > 0)
        return mp__fail_null(MP_EINVAL);
    mp_val *v = mp__val_new_bytes(MP_VAL_BYTES, p, n);
    return v != NULL ? v : mp__fail_null(-ENOMEM);
}

mp_val *mp_val_list(void)
{
    return new_or_fail(MP_VAL_LIST);
}

mp_val *mp_val_tuple(void)
{
    return new_or_fail(MP_VAL_TUPLE);
}

mp_val *mp_val_dict(void)
{
    return new_or_fail(MP_VAL_DICT);
}

mp_val *mp_val_range(int64_t start, int64_t stop, int64_t step)
{
    if (step == 0)
        return mp__fail_null(MP_EINVAL);
    mp_val *l = mp_val_list();
    if (l == NULL)
        return NULL;
    for (int64_t x = start; step > 0 ? x < stop : x > stop;) {
        mp_val *item = mp__val_new(MP_VAL_INT);
        if (item == NULL || mp__val_list_push(l, item) != 0) {
            mp_val_free(l);
            return mp__fail_null(-ENOMEM);
        }
        item->i = x;
        if (__builtin_add_overflow(x, step, &x))
            break;
    }
    return l;
}

mp_val *mp__val_new_ref(const char *typeid, size_t tlen, const char *addr, size_t alen,
                        uint64_t oid, uint32_t kind)
{
    if (tlen > 4096 || alen > 4096)
        return NULL;
    mp_val *v = malloc(sizeof *v + tlen + alen + 2);
    if (v == NULL)
        return NULL;
    memset(v, 0, sizeof *v);
    char *text = (char *)(v + 1);
    memcpy(text, typeid, tlen);
    text[tlen] = '\0';
    if (alen)
        memcpy(text + tlen + 1, addr, alen);
    text[tlen + 1 + alen] = '\0';
    v->type = MP_VAL_PROXY;
    v->alloc_ = 1;
    v->ref.type_id = text;
    v->ref.oid = oid;
    v->ref.kind = kind;
    return v;
}

const char *mp_val_proxy_address(const mp_val *v)
{
    if (v == NULL || v->type != MP_VAL_PROXY || v->ref.type_id == NULL)
        return NULL;
    return v->ref.type_id + strlen(v->ref.type_id) + 1;
}

bool mp__ref_ok(const mp_val *v)
{
    if (v->ref.type_id == NULL || v->ref.oid == 0 || v->ref.kind < MP_PROXY_DICT ||
        v->ref.kind > MP_PROXY_ASYNC_RESULT)
        return false;
    size_t tlen = strlen(v->ref.type_id);
    const char *addr = v->ref.type_id + tlen + 1;
    size_t alen = strlen(addr);
    return tlen > 0 && tlen <= MP__REF_TYPEID_MAX && alen <= MP__REF_ADDR_MAX &&
           mp__utf8_valid(v->ref.type_id, tlen) && mp__utf8_valid(addr, alen);
}

const char *mp__proxy_class_name(uint32_t kind)
{
    static const char *const names[] = {[MP_PROXY_DICT] = "DictProxy",
                                        [MP_PROXY_LIST] = "ListProxy",
                                        [MP_PROXY_NAMESPACE] = "NamespaceProxy",
                                        [MP_PROXY_VALUE] = "ValueProxy",
                                        [MP_PROXY_ARRAY] = "ArrayProxy",
                                        [MP_PROXY_LOCK] = "AcquirerProxy",
                                        [MP_PROXY_RLOCK] = "AcquirerProxy",
                                        [MP_PROXY_SEMAPHORE] = "AcquirerProxy",
                                        [MP_PROXY_BOUNDED_SEMAPHORE] = "AcquirerProxy",
                                        [MP_PROXY_CONDITION] = "ConditionProxy",
                                        [MP_PROXY_EVENT] = "EventProxy",
                                        [MP_PROXY_BARRIER] = "BarrierProxy",
                                        [MP_PROXY_QUEUE] = "AutoProxy",
                                        [MP_PROXY_JOINABLE_QUEUE] = "AutoProxy",
                                        [MP_PROXY_CUSTOM] = "AutoProxy",
                                        [MP_PROXY_SET] = "SetProxy",
                                        [MP_PROXY_POOL] = "PoolProxy",
                                        [MP_PROXY_ASYNC_RESULT] = "AutoProxy"};
    if (kind >= sizeof names / sizeof names[0] || names[kind] == NULL)
        return "?";
    return names[kind];
}

/* A reference held by a server keeps its object alive: let it go. */
static void ref_release(mp_val *v)
{
    if (v->ref.bind_ == MP__REF_SERVER)
        mp__mgr_ref_drop(v);
    v->ref.bind_ = MP__REF_FREE;
    v->ref.owner_ = NULL;
}

/* ---- freeing ------------------------------------------------------------ */

void mp__val_clear(mp_val *v)
{
    switch (v->type) {
    case MP_VAL_LIST:
    case MP_VAL_TUPLE:
        for (size_t i = 0; i < v->seq.len; i++)
            mp_val_free(v->seq.items[i]);
        free(v->seq.items);
        v->seq.items = NULL;
        v->seq.len = v->seq.cap_ = 0;
        break;
    case MP_VAL_DICT:
        for (size_t i = 0; i < v->dict.slots_; i++) {
            mp_val_free(v->dict.kv_[2 * i]);
            mp_val_free(v->dict.kv_[2 * i + 1]);
        }
        free(v->dict.kv_);
        mp__val_dindex_free(v->dict.index_);
        memset(&v->dict, 0, sizeof v->dict);
        break;
    case MP_VAL_PROXY:
        ref_release(v);
        break;
    default:
        break;
    }
}

/*
 * Freeing is iterative over the outermost container only: the depth of a
 * value is bounded (MP_VAL_MAX_DEPTH for everything libmp builds), so the
 * recursion through mp__val_clear is bounded too.
 */
void mp_val_free(mp_val *v)
{
    if (v == NULL)
        return;
    mp__val_clear(v);
    free(v);
}

/* ---- hashing -------------------------------------------------------------- */

static uint64_t hash_bytes(const char *p, size_t n, uint64_t seed)
{
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ mp__mix64(w)) * 0x100000001b3ull;
        h = h << 29 | h >> 35;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h ^= mp__mix64(w ^ n);
    return mp__mix64(h);
}

/* True when f is integral and fits an int64 (then *out is that integer). */
static bool float_as_int(double f, int64_t *out)
{
    if (!(f >= -9223372036854775808.0 && f < 9223372036854775808.0))
        return false;
    if (f != trunc(f))
        return false;
    *out = (int64_t)f;
    return true;
}

static int hash_rec(const mp_val *v, uint64_t *out, int depth)
{
    if (v == NULL || depth > MP_VAL_MAX_DEPTH)
        return MP_EINVAL;
    int64_t i;
    switch (v->type) {
    case MP_VAL_NONE:
        *out = 0x6e6f6e65ull;
        return 0;
    case MP_VAL_BOOL:
        *out = mp__mix64((uint64_t)v->b);
        return 0;
    case MP_VAL_INT:
        *out = mp__mix64((uint64_t)v->i);
        return 0;
    case MP_VAL_FLOAT:
        if (float_as_int(v->f, &i)) {
            *out = mp__mix64((uint64_t)i);
        } else {
            uint64_t bits;
            memcpy(&bits, &v->f, 8);
            *out = mp__mix64(bits ^ 0x666c6f6174ull);
        }
        return 0;
    case MP_VAL_STR:
        *out = hash_bytes(v->s.ptr, v->s.len, 0x737472ull);
        return 0;
    case MP_VAL_BYTES:
        *out = hash_bytes(v->s.ptr, v->s.len, 0x6279746573ull);
        return 0;
    case MP_VAL_TUPLE: {
        uint64_t h = 0x7475706c65ull ^ v->seq.len;
        for (size_t k = 0; k < v->seq.len; k++) {
            uint64_t hi;
            int r = hash_rec(v->seq.items[k], &hi, depth + 1);
            if (r != 0)
                return r;
            h = mp__mix64(h * 31 + hi);
        }
        *out = h;
        return 0;
    }
    default:
        return MP_EINVAL;
    }
}

int mp_val_hash(const mp_val *v, uint64_t *out)
{
    if (out == NULL)
        return MP_EINVAL;
    return hash_rec(v, out, 0);
}

bool mp_val_hashable(const mp_val *v)
{
    uint64_t h;
    return hash_rec(v, &h, 0) == 0;
}

/* ---- equality ------------------------------------------------------------ */

static bool is_number(const mp_val *v)
{
    return v->type == MP_VAL_BOOL || v->type == MP_VAL_INT || v->type == MP_VAL_FLOAT;
}

/* Exact comparison of numbers of any kind: -1, 0, 1, or 2 when unordered
 * (a NaN is involved). */
static int num_cmp(const mp_val *a, const mp_val *b)
{
    bool af = a->type == MP_VAL_FLOAT, bf = b->type == MP_VAL_FLOAT;
    if (af && bf) {
        if (isnan(a->f) || isnan(b->f))
            return 2;
        return (a->f > b->f) - (a->f < b->f);
    }
    if (!af && !bf) {
        int64_t x = a->type == MP_VAL_BOOL ? a->b : a->i;
        int64_t y = b->type == MP_VAL_BOOL ? b->b : b->i;
        return (x > y) - (x < y);
    }
    /* One int, one float: compare exactly, without rounding the int. */
    int sign = 1;
    const mp_val *iv = a, *fv = b;
    if (af) {
        iv = b;
        fv = a;
        sign = -1;
    }
    int64_t i = iv->type == MP_VAL_BOOL ? iv->b : iv->i;
    double f = fv->f;
    if (isnan(f))
        return 2;
    int c;
    if (f >= 9223372036854775808.0) {
        c = -1;
    } else if (f < -9223372036854775808.0) {
        c = 1;
    } else {
        int64_t t = (int64_t)f; /* truncated toward zero */
        if (i != t)
            c = i < t ? -1 : 1;
        else
            c = f > (double)t ? -1 : f < (double)t ? 1 : 0;
        /* (double)t is exact: t came from a double. */
    }
    return sign * c;
}

static bool eq_rec(const mp_val *a, const mp_val *b, int depth);

static bool dict_eq(const mp_val *a, const mp_val *b, int depth)
{
    if (a->dict.count != b->dict.count)
        return false;
    for (size_t s = 0; s < a->dict.slots_; s++) {
        const mp_val *k = a->dict.kv_[2 * s];
        if (k == NULL)
            continue;
        long j = mp__val_dict_find(b, k);
        if (j < 0 || !eq_rec(a->dict.kv_[2 * s + 1], b->dict.kv_[2 * j + 1], depth + 1))
            return false;
    }
    return true;
}

/* Two proxy references name the same object: id, kind, type id and
 * address (the address follows the type id's NUL in the same block). */
static bool ref_eq(const mp_val *a, const mp_val *b)
{
    const char *ta = a->ref.type_id, *tb = b->ref.type_id;
    if (a->ref.oid != b->ref.oid || a->ref.kind != b->ref.kind)
        return false;
    if (ta == NULL || tb == NULL)
        return ta == tb;
    return strcmp(ta, tb) == 0 && strcmp(ta + strlen(ta) + 1, tb + strlen(tb) + 1) == 0;
}

static bool eq_rec(const mp_val *a, const mp_val *b, int depth)
{
    if (a == NULL || b == NULL)
        return a == b;
    if (depth > MP_VAL_MAX_DEPTH)
        return false;
    if (is_number(a) && is_number(b))
        return num_cmp(a, b) == 0;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case MP_VAL_NONE:
        return true;
    case MP_VAL_STR:
    case MP_VAL_BYTES:
        return a->s.len == b->s.len &&
               (a->s.len == 0 || memcmp(a->s.ptr, b->s.ptr, a->s.len) == 0);
    case MP_VAL_LIST:
    case MP_VAL_TUPLE:
        if (a->seq.len != b->seq.len)
            return false;
        for (size_t i = 0; i < a->seq.len; i++)
            if (!eq_rec(a->seq.items[i], b->seq.items[i], depth + 1))
                return false;
        return true;
    case MP_VAL_DICT:
        return dict_eq(a, b, depth);
    case MP_VAL_PROXY:
        return ref_eq(a, b);
    default:
        return false;
    }
}

bool mp_val_eq(const mp_val *a, const mp_val *b)
{
    return eq_rec(a, b, 0);
}

/* ---- ordering -------------------------------------------------------------- */

static int rank(const mp_val *v)
{
    switch (v->type) {
    case MP_VAL_NONE:
        return 0;
    case MP_VAL_BOOL:
    case MP_VAL_INT:
    case MP_VAL_FLOAT:
        return 1;
    case MP_VAL_STR:
        return 2;
    case MP_VAL_BYTES:
        return 3;
    case MP_VAL_TUPLE:
        return 4;
    case MP_VAL_LIST:
        return 5;
    case MP_VAL_DICT:
        return 6;
    case MP_VAL_PROXY:
        return 7;
    default:
        return 8;
    }
}

static int cmp_rec(const mp_val *a, const mp_val *b, int depth)
{
    if (a == NULL || b == NULL)
        return (a != NULL) - (b != NULL);
    if (depth > MP_VAL_MAX_DEPTH)
        return 0;
    int ra = rank(a), rb = rank(b);
    if (ra != rb)
        return ra < rb ? -1 : 1;
    switch (ra) {
    case 1: {
        int c = num_cmp(a, b);
        if (c != 2)
            return c;
        /* NaN sorts after every number and equal to itself. */
        bool an = a->type == MP_VAL_FLOAT && isnan(a->f);
        bool bn = b->type == MP_VAL_FLOAT && isnan(b->f);
        return an - bn;
    }
    case 2:
    case 3: {
        size_t n = a->s.len < b->s.len ? a->s.len : b->s.len;
        int c = n ? memcmp(a->s.ptr, b->s.ptr, n) : 0;
        if (c != 0)
            return c < 0 ? -1 : 1;
        return (a->s.len > b->s.len) - (a->s.len < b->s.len);
    }
    case 4:
    case 5: {
        size_t n = a->seq.len < b->seq.len ? a->seq.len : b->seq.len;
        for (size_t i = 0; i < n; i++) {
            int c = cmp_rec(a->seq.items[i], b->seq.items[i], depth + 1);
            if (c != 0)
                return c;
        }
        return (a->seq.len > b->seq.len) - (a->seq.len < b->seq.len);
    }
    case 6: {
        if (a->dict.count != b->dict.count)
            return a->dict.count < b->dict.count ? -1 : 1;
        size_t i = 0, j = 0;
        for (;;) {
            while (i < a->dict.slots_ && a->dict.kv_[2 * i] == NULL)
                i++;
            while (j < b->dict.slots_ && b->dict.kv_[2 * j] == NULL)
                j++;
            if (i >= a->dict.slots_ || j >= b->dict.slots_)
                return 0;
            int c = cmp_rec(a->dict.kv_[2 * i], b->dict.kv_[2 * j], depth + 1);
            if (c == 0)
                c = cmp_rec(a->dict.kv_[2 * i + 1], b->dict.kv_[2 * j + 1], depth + 1);
            if (c != 0)
                return c;
            i++;
            j++;
        }
    }
    case 7: {
        int c = strcmp(mp_val_proxy_address(a), mp_val_proxy_address(b));
        if (c == 0)
            c = strcmp(a->ref.type_id, b->ref.type_id);
        if (c == 0)
            return (a->ref.oid > b->ref.oid) - (a->ref.oid < b->ref.oid);
        return c < 0 ? -1 : 1;
    }
    default:
        return 0;
    }
}

int mp_val_cmp(const mp_val *a, const mp_val *b)
{
    return cmp_rec(a, b, 0);
}

/* ---- reading ---------------------------------------------------------------- */

mp_val_type mp_val_typeof(const mp_val *v)
{
    return v ? v->type : MP_VAL_NONE;
}

const char *mp_val_type_name(const mp_val *v)
{
    static const char *const names[] = {"NoneType", "bool", "int",   "float", "str",
                                        "bytes",    "list", "tuple", "dict"};
    mp_val_type t = v ? v->type : MP_VAL_NONE;
    if (t == MP_VAL_PROXY)
        return mp__proxy_class_name(v->ref.kind);
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

int mp_val_as_bool(const mp_val *v, bool *out)
{
    if (v == NULL || out == NULL || v->type != MP_VAL_BOOL)
        return MP_EINVAL;
    *out = v->b;
    return 0;
}

int mp_val_as_int(const mp_val *v, int64_t *out)
{
    if (v == NULL || out == NULL)
        return MP_EINVAL;
    if (v->type == MP_VAL_INT)
        *out = v->i;
    else if (v->type == MP_VAL_BOOL)
        *out = v->b;
    else
        return MP_EINVAL;
    return 0;
}

int mp_val_as_float(const mp_val *v, double *out)
{
    if (v == NULL || out == NULL)
        return MP_EINVAL;
    if (v->type == MP_VAL_FLOAT)
        *out = v->f;
    else if (v->type == MP_VAL_INT)
        *out = (double)v->i;
    else if (v->type == MP_VAL_BOOL)
        *out = v->b;
    else
        return MP_EINVAL;
    return 0;
}

int mp_val_as_str(const mp_val *v, const char **out, size_t *len)
{
    if (v == NULL || out == NULL || (v->type != MP_VAL_STR && v->type != MP_VAL_BYTES))
        return MP_EINVAL;
    *out = v->s.ptr;
    if (len)
        *len = v->s.len;
    return 0;
}

bool mp_val_truth(const mp_val *v)
{
    if (v == NULL)
        return false;
    switch (v->type) {
    case MP_VAL_NONE:
        return false;
    case MP_VAL_BOOL:
        return v->b;
    case MP_VAL_INT:
        return v->i != 0;
    case MP_VAL_FLOAT:
        return v->f != 0.0;
    case MP_VAL_PROXY:
        return true;
    default:
        return mp_val_len(v) != 0;
    }
}

size_t mp_val_len(const mp_val *v)
{
    if (v == NULL)
        return 0;
    switch (v->type) {
    case MP_VAL_STR:
    case MP_VAL_BYTES:
        return v->s.len;
    case MP_VAL_LIST:
    case MP_VAL_TUPLE:
        return v->seq.len;
    case MP_VAL_DICT:
        return v->dict.count;
    default:
        return 0;
    }
}

/* Python's index rule: negative counts from the end; -1 when out of range. */
static long norm_index(int64_t i, size_t len)
{
    if (i < 0)
        i += (int64_t)len;
    if (i < 0 || (uint64_t)i >= len)
        return -1;
    return (long)i;
}

const mp_val *mp_val_item(const mp_val *v, int64_t i)
{
    if (v == NULL || (v->type != MP_VAL_LIST && v->type != MP_VAL_TUPLE))
        return NULL;
    long k = norm_index(i, v->seq.len);
    return k < 0 ? NULL : v->seq.items[k];
}

/* ---- checking and copying ---------------------------------------------------- */

static int check_rec(const mp_val *v, int depth)
{
    if (v == NULL || depth > MP_VAL_MAX_DEPTH)
        return MP_EINVAL;
    switch (v->type) {
    case MP_VAL_NONE:
    case MP_VAL_BOOL:
    case MP_VAL_INT:
    case MP_VAL_FLOAT:
        return 0;
    case MP_VAL_STR:
        if (v->s.ptr == NULL && v->s.len > 0)
            return MP_EINVAL;
        return mp__utf8_valid(v->s.ptr, v->s.len) ? 0 : MP_EINVAL;
    case MP_VAL_BYTES:
        return v->s.ptr == NULL && v->s.len > 0 ? MP_EINVAL : 0;
    case MP_VAL_LIST:
    case MP_VAL_TUPLE:
        if (v->seq.items == NULL && v->seq.len > 0)
            return MP_EINVAL;
        for (size_t i = 0; i < v->seq.len; i++) {
            int r = check_rec(v->seq.items[i], depth + 1);
            if (r != 0)
                return r;
        }
        return 0;
    case MP_VAL_DICT:
        if (v->dict.kv_ == NULL && v->dict.slots_ > 0)
            return MP_EINVAL;
        for (size_t i = 0; i < v->dict.slots_; i++) {
            const mp_val *k = v->dict.kv_[2 * i];
            if (k == NULL)
                continue;
            if (!mp_val_hashable(k) || check_rec(k, depth + 1) != 0 ||
                check_rec(v->dict.kv_[2 * i + 1], depth + 1) != 0)
                return MP_EINVAL;
        }
        return 0;
    case MP_VAL_PROXY:
        return mp__ref_ok(v) ? 0 : MP_EINVAL;
    default:
        return MP_EINVAL;
    }
}

int mp__val_check(const mp_val *v)
{
    return check_rec(v, 0);
}

static int copy_rec(const mp_val *v, mp_val **out, int depth)
{
    *out = NULL;
    if (v == NULL || depth > MP_VAL_MAX_DEPTH)
        return MP_EINVAL;
    mp_val *c;
    switch (v->type) {
    case MP_VAL_NONE:
    case MP_VAL_BOOL:
    case MP_VAL_INT:
    case MP_VAL_FLOAT:
        c = mp__val_new(v->type);
        if (c == NULL)
            return -ENOMEM;
        c->i = 0;
        if (v->type == MP_VAL_BOOL)
            c->b = v->b;
        else if (v->type == MP_VAL_INT)
            c->i = v->i;
        else if (v->type == MP_VAL_FLOAT)
            c->f = v->f;
        break;
    case MP_VAL_STR:
    case MP_VAL_BYTES:
        if (v->s.ptr == NULL && v->s.len > 0)
            return MP_EINVAL;
        if (v->type == MP_VAL_STR && !mp__utf8_valid(v->s.ptr, v->s.len))
            return MP_EINVAL;
        c = mp__val_new_bytes(v->type, v->s.ptr, v->s.len);
        if (c == NULL)
            return -ENOMEM;
        break;
    case MP_VAL_LIST:
    case MP_VAL_TUPLE:
        if (v->seq.items == NULL && v->seq.len > 0)
            return MP_EINVAL;
        c = mp__val_new(v->type);
        if (c == NULL)
            return -ENOMEM;
        if (v->seq.len > 0) {
            c->seq.items = malloc(v->seq.len * sizeof *c->seq.items);
            if (c->seq.items == NULL) {
                free(c);
                return -ENOMEM;
            }
            c->seq.cap_ = v->seq.len;
        }
        for (size_t i = 0; i < v->seq.len; i++) {
            int r = copy_rec(v->seq.items[i], &c->seq.items[i], depth + 1);
            if (r != 0) {
                mp_val_free(c);
                return r;
            }
            c->seq.len++;
        }
        break;
    case MP_VAL_DICT:
        if (v->dict.kv_ == NULL && v->dict.slots_ > 0)
            return MP_EINVAL;
        c = mp__val_new(MP_VAL_DICT);
        if (c == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < v->dict.slots_; i++) {
            if (v->dict.kv_[2 * i] == NULL)
                continue;
            mp_val *k, *x;
            int r = copy_rec(v->dict.kv_[2 * i], &k, depth + 1);
            if (r == 0) {
                r = copy_rec(v->dict.kv_[2 * i + 1], &x, depth + 1);
                if (r != 0)
                    mp_val_free(k);
                else
                    r = mp__val_dict_put(c, k, x, true);
            }
            if (r != 0) {
                mp_val_free(c);
                return r;
            }
        }
        break;
    case MP_VAL_PROXY: {
        if (!mp__ref_ok(v))
            return MP_EINVAL;
        const char *addr = mp_val_proxy_address(v);
        c = mp__val_new_ref(v->ref.type_id, strlen(v->ref.type_id), addr, strlen(addr),
                            v->ref.oid, v->ref.kind);
        if (c == NULL)
            return -ENOMEM;
        c->ref.owner_ = v->ref.owner_;
        c->ref.owner_id_ = v->ref.owner_id_;
        c->ref.bind_ = v->ref.bind_;
        /* A server's copy holds the object as the original does. */
        if (c->ref.bind_ == MP__REF_SERVER)
            mp__mgr_ref_keep(c);
        break;
    }
    default:
        return MP_EINVAL;
    }
    *out = c;
    return 0;
}

int mp__val_copy_depth(const mp_val *v, mp_val **out, int depth)
{
    return copy_rec(v, out, depth);
}

mp_val *mp_val_copy(const mp_val *v)
{
    mp_val *c;
    int r = copy_rec(v, &c, 0);
    return r == 0 ? c : mp__fail_null(r);
}

/* ---- lists ----------------------------------------------------------------- */

static int seq_grow(mp_val *l, size_t need)
{
    if (need <= l->seq.cap_)
        return 0;
    size_t cap = l->seq.cap_ ? l->seq.cap_ : 4;
    while (cap < need) {
        if (cap > SIZE_MAX / 2 / sizeof(mp_val *))
            return -ENOMEM;
        cap *= 2;
    }
    mp_val **items = realloc(l->seq.items, cap * sizeof *items);
    if (items == NULL)
        return -ENOMEM;
    l->seq.items = items;
    l->seq.cap_ = cap;
    return 0;
}

int mp__val_list_push(mp_val *l, mp_val *item)
{
    if (seq_grow(l, l->seq.len + 1) != 0) {
        mp_val_free(item);
        return -ENOMEM;
    }
    l->seq.items[l->seq.len++] = item;
    return 0;
}

int mp__val_list_insert_take(mp_val *l, size_t i, mp_val *item)
{
    if (seq_grow(l, l->seq.len + 1) != 0) {
        mp_val_free(item);
        return -ENOMEM;
    }
    memmove(&l->seq.items[i + 1], &l->seq.items[i], (l->seq.len - i) * sizeof(mp_val *));
    l->seq.items[i] = item;
    l->seq.len++;
    return 0;
}

mp_val *mp__val_list_remove(mp_val *l, size_t i)
{
    mp_val *item = l->seq.items[i];
    memmove(&l->seq.items[i], &l->seq.items[i + 1], (l->seq.len - i - 1) * sizeof(mp_val *));
    l->seq.len--;
    return item;
}

static bool is_owned_seq(const mp_val *l)
{
    return l != NULL && l->alloc_ && (l->type == MP_VAL_LIST || l->type == MP_VAL_TUPLE);
}

int mp_val_list_append(mp_val *l, const mp_val *item)
{
    if (!is_owned_seq(l))
        return MP_EINVAL;
    mp_val *c;
    int r = copy_rec(item, &c, 1);
    return r != 0 ? r : mp__val_list_push(l, c);
}

int mp_val_list_insert(mp_val *l, int64_t i, const mp_val *item)
{
    if (!is_owned_seq(l))
        return MP_EINVAL;
    int64_t n = (int64_t)l->seq.len;
    if (i < 0)
        i = i + n < 0 ? 0 : i + n;
    if (i > n)
        i = n;
    mp_val *c;
    int r = copy_rec(item, &c, 1);
    return r != 0 ? r : mp__val_list_insert_take(l, (size_t)i, c);
}

int mp_val_list_set(mp_val *l, int64_t i, const mp_val *item)
{
    if (!is_owned_seq(l))
        return MP_EINVAL;
    long k = norm_index(i, l->seq.len);
    if (k < 0)
        return MP_EINVAL;
    mp_val *c;
    int r = copy_rec(item, &c, 1);
    if (r != 0)
        return r;
    mp_val_free(l->seq.items[k]);
    l->seq.items[k] = c;
    return 0;
}

int mp_val_list_del(mp_val *l, int64_t i)
{
    if (!is_owned_seq(l))
        return MP_EINVAL;
    long k = norm_index(i, l->seq.len);
    if (k < 0)
        return MP_EINVAL;
    mp_val_free(mp__val_list_remove(l, (size_t)k));
    return 0;
}
