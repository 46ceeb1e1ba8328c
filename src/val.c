/*
 * val.c: typed values (libmp/val.h): construction, containers, Python's
 * equality, hashing and ordering.
 *
 * An allocated str or bytes value is one malloc block: the node and then
 * the bytes and a NUL.  A list or tuple holds a malloc'd array of item
 * pointers.  A dict is CPython's compact dict in miniature: an array of
 * (key, value) slots in insertion order, where a removed entry leaves a
 * hole (key NULL) until the next compaction, and a separate open-addressing
 * index from hash to slot.
 */
#include "internal/val.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* ---- the byte buffer ---------------------------------------------------- */

bool mp__buf_reserve(mp__buf *b, size_t more)
{
    if (b->oom)
        return false;
    if (b->cap - b->len > more)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len <= more) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void mp__buf_put(mp__buf *b, const void *p, size_t n)
{
    if (n == 0 || !mp__buf_reserve(b, n))
        return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void mp__buf_putc(mp__buf *b, char c)
{
    if (!mp__buf_reserve(b, 1))
        return;
    b->p[b->len++] = c;
}

void mp__buf_puts(mp__buf *b, const char *s)
{
    mp__buf_put(b, s, strlen(s));
}

void mp__buf_printf(mp__buf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        mp__buf_put(b, tmp, (size_t)n);
        return;
    }
    if (!mp__buf_reserve(b, (size_t)n + 1))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void mp__buf_varint(mp__buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        tmp[n++] = byte | (v ? 0x80 : 0);
    } while (v);
    mp__buf_put(b, tmp, n);
}

void mp__buf_free(mp__buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

char *mp__buf_cstr(mp__buf *b)
{
    mp__buf_putc(b, '\0');
    if (b->oom) {
        mp__buf_free(b);
        return NULL;
    }
    char *s = b->p;
    b->p = NULL;
    b->len = b->cap = 0;
    return s;
}

/* ---- UTF-8 -------------------------------------------------------------- */

bool mp__utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
            min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
            min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return false;
        }
        if (n - i <= need)
            return false;
        for (size_t k = 1; k <= need; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += need + 1;
    }
    return true;
}

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

/* ---- freeing ------------------------------------------------------------ */

struct dindex {
    size_t nb;       /* buckets, a power of two */
    size_t used;     /* buckets not empty: live entries and removed marks */
    uint32_t *b;     /* 0 empty, 1 removed, slot + 2 */
    uint64_t *h;     /* hash of each slot */
};

static void dindex_free(struct dindex *ix)
{
    if (ix == NULL)
        return;
    free(ix->b);
    free(ix->h);
    free(ix);
}

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
        dindex_free(v->dict.index_);
        memset(&v->dict, 0, sizeof v->dict);
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

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static uint64_t hash_bytes(const char *p, size_t n, uint64_t seed)
{
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ mix64(w)) * 0x100000001b3ull;
        h = h << 29 | h >> 35;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h ^= mix64(w ^ n);
    return mix64(h);
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
        *out = mix64((uint64_t)v->b);
        return 0;
    case MP_VAL_INT:
        *out = mix64((uint64_t)v->i);
        return 0;
    case MP_VAL_FLOAT:
        if (float_as_int(v->f, &i)) {
            *out = mix64((uint64_t)i);
        } else {
            uint64_t bits;
            memcpy(&bits, &v->f, 8);
            *out = mix64(bits ^ 0x666c6f6174ull);
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
            h = mix64(h * 31 + hi);
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
        return a->s.len == b->s.len && (a->s.len == 0 || memcmp(a->s.ptr, b->s.ptr, a->s.len) == 0);
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
    default:
        return 7;
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
    static const char *const names[] = {"NoneType", "bool", "int", "float", "str",
                                        "bytes", "list", "tuple", "dict"};
    mp_val_type t = v ? v->type : MP_VAL_NONE;
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
    default:
        return MP_EINVAL;
    }
    *out = c;
    return 0;
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

/* ---- dicts ------------------------------------------------------------------ */

static uint64_t index_seed;

/*
 * The seed of dict indexes (so that bucket positions cannot be predicted
 * from outside).  It must never change once a dict has used it: racing
 * threads agree on the first one stored.
 */
static uint64_t seed_get(void)
{
    uint64_t s = __atomic_load_n(&index_seed, __ATOMIC_ACQUIRE);
    if (MP__LIKELY(s != 0))
        return s;
    uint64_t fresh;
    if (getrandom(&fresh, sizeof fresh, GRND_NONBLOCK) != (ssize_t)sizeof fresh)
        fresh = mp__now_ns() ^ (uint64_t)(uintptr_t)&fresh;
    fresh |= 1;
    if (__atomic_compare_exchange_n(&index_seed, &s, fresh, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE))
        return fresh;
    return s;
}

static inline size_t bucket_of(uint64_t h, size_t nb)
{
    return (size_t)(mix64(h ^ seed_get()) & (nb - 1));
}

/* Rebuild the index for the slots as they are (after a compaction). */
static int dindex_build(mp_val *d, size_t cap)
{
    struct dindex *ix = d->dict.index_;
    size_t nb = 8;
    while (nb < cap * 2)
        nb *= 2;
    uint32_t *b = calloc(nb, sizeof *b);
    if (b == NULL)
        return -ENOMEM;
    uint64_t *h = ix ? ix->h : NULL;
    uint64_t *nh = realloc(h, cap * sizeof *nh);
    if (nh == NULL) {
        free(b);
        return -ENOMEM;
    }
    if (ix == NULL) {
        ix = calloc(1, sizeof *ix);
        if (ix == NULL) {
            free(b);
            free(nh);
            return -ENOMEM;
        }
        d->dict.index_ = ix;
        /* Slots came from elsewhere (a literal never reaches here). */
        for (size_t s = 0; s < d->dict.slots_; s++)
            hash_rec(d->dict.kv_[2 * s], &nh[s], 0);
    }
    free(ix->b);
    ix->b = b;
    ix->h = nh;
    ix->nb = nb;
    ix->used = d->dict.slots_;
    for (size_t s = 0; s < d->dict.slots_; s++) {
        size_t j = bucket_of(nh[s], nb);
        while (b[j] != 0)
            j = (j + 1) & (nb - 1);
        b[j] = (uint32_t)(s + 2);
    }
    return 0;
}

/* Make room for one more slot: compact away holes, grow when needed. */
static int dict_make_room(mp_val *d)
{
    const struct dindex *cur = d->dict.index_;
    if (cur != NULL && d->dict.slots_ < d->dict.cap_ && cur->used < cur->nb / 4 * 3)
        return 0;
    size_t count = d->dict.count;
    size_t cap = d->dict.cap_ ? d->dict.cap_ : 4;
    while (cap < (count + 1) * 3 / 2 + 1)
        cap *= 2;
    if (cap > UINT32_MAX - 2)
        return -ENOMEM;
    struct dindex *ix = d->dict.index_;
    /* Compact the slots in place, keeping the order. */
    size_t n = 0;
    for (size_t s = 0; s < d->dict.slots_; s++) {
        if (d->dict.kv_[2 * s] == NULL)
            continue;
        d->dict.kv_[2 * n] = d->dict.kv_[2 * s];
        d->dict.kv_[2 * n + 1] = d->dict.kv_[2 * s + 1];
        if (ix)
            ix->h[n] = ix->h[s];
        n++;
    }
    d->dict.slots_ = n;
    if (cap != d->dict.cap_) {
        mp_val **kv = realloc(d->dict.kv_, cap * 2 * sizeof *kv);
        if (kv == NULL)
            return -ENOMEM;
        d->dict.kv_ = kv;
        d->dict.cap_ = cap;
    }
    return dindex_build(d, d->dict.cap_);
}

/* Find a key whose hash is h; -1 if absent.  Works on literals too. */
static long dict_find_h(const mp_val *d, const mp_val *key, uint64_t h)
{
    const struct dindex *ix = d->dict.index_;
    if (ix == NULL) {
        for (size_t s = 0; s < d->dict.slots_; s++) {
            const mp_val *k = d->dict.kv_[2 * s];
            if (k != NULL && mp_val_eq(k, key))
                return (long)s;
        }
        return -1;
    }
    size_t j = bucket_of(h, ix->nb);
    for (;;) {
        uint32_t e = ix->b[j];
        if (e == 0)
            return -1;
        if (e >= 2) {
            size_t s = e - 2;
            if (ix->h[s] == h && mp_val_eq(d->dict.kv_[2 * s], key))
                return (long)s;
        }
        j = (j + 1) & (ix->nb - 1);
    }
}

long mp__val_dict_find(const mp_val *d, const mp_val *key)
{
    uint64_t h;
    if (d == NULL || d->type != MP_VAL_DICT || hash_rec(key, &h, 0) != 0)
        return -1;
    return dict_find_h(d, key, h);
}

int mp__val_dict_put(mp_val *d, mp_val *key, mp_val *value, bool replace)
{
    uint64_t h;
    if (hash_rec(key, &h, 0) != 0) {
        mp_val_free(key);
        mp_val_free(value);
        return MP_EINVAL;
    }
    long s = dict_find_h(d, key, h);
    if (s >= 0) {
        if (!replace)
            return 1;
        mp_val_free(key);
        mp_val_free(d->dict.kv_[2 * s + 1]);
        d->dict.kv_[2 * s + 1] = value;
        return 0;
    }
    if (dict_make_room(d) != 0) {
        mp_val_free(key);
        mp_val_free(value);
        return -ENOMEM;
    }
    struct dindex *ix = d->dict.index_;
    size_t slot = d->dict.slots_++;
    d->dict.kv_[2 * slot] = key;
    d->dict.kv_[2 * slot + 1] = value;
    ix->h[slot] = h;
    size_t j = bucket_of(h, ix->nb);
    while (ix->b[j] >= 2)
        j = (j + 1) & (ix->nb - 1);
    if (ix->b[j] == 0)
        ix->used++;
    ix->b[j] = (uint32_t)(slot + 2);
    d->dict.count++;
    return 0;
}

mp_val *mp__val_dict_slot_value(const mp_val *d, size_t slot)
{
    return d->dict.kv_[2 * slot + 1];
}

mp_val *mp__val_dict_slot_key(const mp_val *d, size_t slot)
{
    return d->dict.kv_[2 * slot];
}

void mp__val_dict_slot_set(mp_val *d, size_t slot, mp_val *value)
{
    mp_val_free(d->dict.kv_[2 * slot + 1]);
    d->dict.kv_[2 * slot + 1] = value;
}

void mp__val_dict_remove_slot(mp_val *d, size_t slot, mp_val **key, mp_val **value)
{
    struct dindex *ix = d->dict.index_;
    if (ix != NULL) {
        size_t j = bucket_of(ix->h[slot], ix->nb);
        while (ix->b[j] != slot + 2)
            j = (j + 1) & (ix->nb - 1);
        ix->b[j] = 1; /* removed: keeps the probe chains intact */
    }
    mp_val *k = d->dict.kv_[2 * slot], *v = d->dict.kv_[2 * slot + 1];
    d->dict.kv_[2 * slot] = NULL;
    d->dict.kv_[2 * slot + 1] = NULL;
    d->dict.count--;
    if (key)
        *key = k;
    else
        mp_val_free(k);
    if (value)
        *value = v;
    else
        mp_val_free(v);
    /* Trailing holes are dropped, so their slot numbers are reused: safe,
     * because a removed bucket never names a slot. */
    while (d->dict.slots_ > 0 && d->dict.kv_[2 * (d->dict.slots_ - 1)] == NULL)
        d->dict.slots_--;
}

void mp__val_dict_clear(mp_val *d)
{
    mp__val_clear(d);
}

static bool is_owned_dict(const mp_val *d)
{
    return d != NULL && d->alloc_ && d->type == MP_VAL_DICT;
}

int mp_val_dict_set(mp_val *d, const mp_val *key, const mp_val *value)
{
    if (!is_owned_dict(d) || !mp_val_hashable(key))
        return MP_EINVAL;
    mp_val *k, *v;
    int r = copy_rec(key, &k, 1);
    if (r != 0)
        return r;
    r = copy_rec(value, &v, 1);
    if (r != 0) {
        mp_val_free(k);
        return r;
    }
    return mp__val_dict_put(d, k, v, true);
}

const mp_val *mp_val_dict_get(const mp_val *d, const mp_val *key)
{
    long s = mp__val_dict_find(d, key);
    return s < 0 ? NULL : d->dict.kv_[2 * s + 1];
}

int mp_val_dict_del(mp_val *d, const mp_val *key)
{
    if (!is_owned_dict(d) || !mp_val_hashable(key))
        return MP_EINVAL;
    long s = mp__val_dict_find(d, key);
    if (s < 0)
        return -ENOENT;
    mp__val_dict_remove_slot(d, (size_t)s, NULL, NULL);
    return 0;
}

bool mp_val_dict_next(const mp_val *d, size_t *pos, const mp_val **key, const mp_val **value)
{
    if (d == NULL || d->type != MP_VAL_DICT || pos == NULL)
        return false;
    while (*pos < d->dict.slots_) {
        size_t s = (*pos)++;
        if (d->dict.kv_[2 * s] == NULL)
            continue;
        if (key)
            *key = d->dict.kv_[2 * s];
        if (value)
            *value = d->dict.kv_[2 * s + 1];
        return true;
    }
    return false;
}
