/*
 * val_codec.c: the binary encoding of values (docs/managers.md, "The
 * encoding").
 *
 * Every value is a tag byte and a payload; integers are zigzag LEB128
 * varints, floats 8 little-endian bytes, str and bytes a varint length and
 * the bytes, containers a varint count and their items.  The decoder takes
 * untrusted bytes: it checks every length against what is left before it
 * reads or allocates, so memory use is bounded by a constant times the
 * input, and nesting is bounded by MP_VAL_MAX_DEPTH.
 */
#include "internal/val.h"

#include <libmp/managers.h>

#include <stdlib.h>
#include <string.h>

static inline uint64_t zigzag(int64_t i)
{
    return ((uint64_t)i << 1) ^ (uint64_t)(i >> 63);
}

static inline int64_t unzigzag(uint64_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static int enc_rec(mp__buf *b, const mp_val *v, int depth)
{
    if (v == NULL || depth > MP_VAL_MAX_DEPTH)
        return MP_EINVAL;
    switch (v->type) {
    case MP_VAL_NONE:
        mp__buf_putc(b, MP__TAG_NONE);
        return 0;
    case MP_VAL_BOOL:
        mp__buf_putc(b, v->b ? MP__TAG_TRUE : MP__TAG_FALSE);
        return 0;
    case MP_VAL_INT:
        mp__buf_putc(b, MP__TAG_INT);
        mp__buf_varint(b, zigzag(v->i));
        return 0;
    case MP_VAL_FLOAT: {
        uint64_t bits;
        memcpy(&bits, &v->f, 8);
        uint8_t le[8];
        for (int k = 0; k < 8; k++)
            le[k] = (uint8_t)(bits >> (8 * k));
        mp__buf_putc(b, MP__TAG_FLOAT);
        mp__buf_put(b, le, 8);
        return 0;
    }
    case MP_VAL_STR:
    case MP_VAL_BYTES:
        if (v->s.ptr == NULL && v->s.len > 0)
            return MP_EINVAL;
        if (v->type == MP_VAL_STR && !mp__utf8_valid(v->s.ptr, v->s.len))
            return MP_EINVAL;
        mp__buf_putc(b, v->type == MP_VAL_STR ? MP__TAG_STR : MP__TAG_BYTES);
        mp__buf_varint(b, v->s.len);
        mp__buf_put(b, v->s.ptr, v->s.len);
        return 0;
    case MP_VAL_LIST:
    case MP_VAL_TUPLE:
        if (v->seq.items == NULL && v->seq.len > 0)
            return MP_EINVAL;
        mp__buf_putc(b, v->type == MP_VAL_LIST ? MP__TAG_LIST : MP__TAG_TUPLE);
        mp__buf_varint(b, v->seq.len);
        for (size_t i = 0; i < v->seq.len; i++) {
            int r = enc_rec(b, v->seq.items[i], depth + 1);
            if (r != 0)
                return r;
        }
        return 0;
    case MP_VAL_DICT:
        if (v->dict.kv_ == NULL && v->dict.slots_ > 0)
            return MP_EINVAL;
        mp__buf_putc(b, MP__TAG_DICT);
        mp__buf_varint(b, v->dict.count);
        for (size_t s = 0; s < v->dict.slots_; s++) {
            const mp_val *k = v->dict.kv_[2 * s];
            if (k == NULL)
                continue;
            if (!mp_val_hashable(k))
                return MP_EINVAL;
            int r = enc_rec(b, k, depth + 1);
            if (r == 0)
                r = enc_rec(b, v->dict.kv_[2 * s + 1], depth + 1);
            if (r != 0)
                return r;
        }
        return 0;
    case MP_VAL_PROXY: {
        if (!mp__ref_ok(v))
            return MP_EINVAL;
        const char *addr = mp_val_proxy_address(v);
        mp__buf_putc(b, MP__TAG_PROXY);
        mp__buf_varint(b, v->ref.oid);
        mp__buf_varint(b, v->ref.kind);
        size_t tlen = strlen(v->ref.type_id), alen = strlen(addr);
        mp__buf_varint(b, tlen);
        mp__buf_put(b, v->ref.type_id, tlen);
        mp__buf_varint(b, alen);
        mp__buf_put(b, addr, alen);
        b->nrefs++;
        return 0;
    }
    default:
        return MP_EINVAL;
    }
}

int mp__val_encode_buf(mp__buf *b, const mp_val *v)
{
    return mp__val_encode_buf_at(b, v, 0);
}

int mp__val_encode_buf_at(mp__buf *b, const mp_val *v, int depth)
{
    size_t mark = b->len;
    int r = enc_rec(b, v, depth);
    if (r == 0 && b->oom)
        r = -ENOMEM;
    if (r != 0 && !b->oom)
        b->len = mark;
    return r;
}

int mp_val_encode(const mp_val *v, void **buf, size_t *len)
{
    if (buf == NULL || len == NULL)
        return MP_EINVAL;
    *buf = NULL;
    *len = 0;
    mp__buf b = {0};
    int r = mp__val_encode_buf(&b, v);
    if (r != 0) {
        mp__buf_free(&b);
        return r;
    }
    if (b.p == NULL) {
        /* Never happens (a value is at least its tag), but keep *buf valid. */
        b.p = malloc(1);
        if (b.p == NULL)
            return -ENOMEM;
    }
    *buf = b.p;
    *len = b.len;
    return 0;
}

/* ---- decoding ----------------------------------------------------------- */

int mp__rd_varint(mp__rd *r, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (r->pos >= r->len)
            return MP_EINVAL;
        uint8_t byte = r->p[r->pos++];
        uint64_t bits = byte & 0x7f;
        if (shift == 63 && bits > 1)
            return MP_EINVAL; /* overflows 64 bits */
        x |= bits << shift;
        if (!(byte & 0x80)) {
            if (byte == 0 && shift > 0)
                return MP_EINVAL; /* non-canonical: a redundant zero group */
            *v = x;
            return 0;
        }
    }
    return MP_EINVAL;
}

int mp__rd_bytes(mp__rd *r, const char **p, size_t *n)
{
    uint64_t len;
    int e = mp__rd_varint(r, &len);
    if (e != 0)
        return e;
    if (len > r->len - r->pos)
        return MP_EINVAL;
    *p = (const char *)r->p + r->pos;
    *n = (size_t)len;
    r->pos += (size_t)len;
    return 0;
}

/* Text of a proxy reference: valid UTF-8 without a NUL, at most max bytes. */
static bool ref_text_ok(const char *p, size_t n, size_t max)
{
    return n <= max && memchr(p, '\0', n) == NULL && mp__utf8_valid(p, n);
}

static int dec_ref(mp__rd *r, mp_val **out)
{
    uint64_t oid, kind;
    const char *tid, *addr;
    size_t tlen, alen;
    int e;
    if ((e = mp__rd_varint(r, &oid)) != 0 || (e = mp__rd_varint(r, &kind)) != 0 ||
        (e = mp__rd_bytes(r, &tid, &tlen)) != 0 || (e = mp__rd_bytes(r, &addr, &alen)) != 0)
        return e;
    if (oid == 0 || kind < MP_PROXY_DICT || kind > MP_PROXY_ASYNC_RESULT || tlen == 0 ||
        !ref_text_ok(tid, tlen, MP__REF_TYPEID_MAX) ||
        !ref_text_ok(addr, alen, MP__REF_ADDR_MAX))
        return MP_EINVAL;
    *out = mp__val_new_ref(tid, tlen, addr, alen, oid, (uint32_t)kind);
    if (*out == NULL)
        return -ENOMEM;
    r->nrefs++;
    return 0;
}

static int dec_rec(mp__rd *r, mp_val **out, int depth)
{
    *out = NULL;
    if (depth > MP_VAL_MAX_DEPTH || r->pos >= r->len)
        return MP_EINVAL;
    uint8_t tag = r->p[r->pos++];
    mp_val *v = NULL;
    uint64_t u;
    int e;
    const char *s;
    size_t n;
    switch (tag) {
    case MP__TAG_NONE:
        v = mp__val_new(MP_VAL_NONE);
        break;
    case MP__TAG_FALSE:
    case MP__TAG_TRUE:
        v = mp__val_new(MP_VAL_BOOL);
        if (v)
            v->b = tag == MP__TAG_TRUE;
        break;
    case MP__TAG_INT:
        if ((e = mp__rd_varint(r, &u)) != 0)
            return e;
        v = mp__val_new(MP_VAL_INT);
        if (v)
            v->i = unzigzag(u);
        break;
    case MP__TAG_FLOAT: {
        if (r->len - r->pos < 8)
            return MP_EINVAL;
        uint64_t bits = 0;
        for (int k = 0; k < 8; k++)
            bits |= (uint64_t)r->p[r->pos + (size_t)k] << (8 * k);
        r->pos += 8;
        v = mp__val_new(MP_VAL_FLOAT);
        if (v)
            memcpy(&v->f, &bits, 8);
        break;
    }
    case MP__TAG_STR:
    case MP__TAG_BYTES:
        if ((e = mp__rd_bytes(r, &s, &n)) != 0)
            return e;
        if (tag == MP__TAG_STR && !mp__utf8_valid(s, n))
            return MP_EINVAL;
        v = mp__val_new_bytes(tag == MP__TAG_STR ? MP_VAL_STR : MP_VAL_BYTES, s, n);
        break;
    case MP__TAG_LIST:
    case MP__TAG_TUPLE: {
        if ((e = mp__rd_varint(r, &u)) != 0)
            return e;
        /* Every item takes at least one byte: a count larger than what is
         * left is a lie, refused before anything is allocated. */
        if (u > r->len - r->pos)
            return MP_EINVAL;
        v = mp__val_new(tag == MP__TAG_LIST ? MP_VAL_LIST : MP_VAL_TUPLE);
        if (v == NULL)
            return -ENOMEM;
        if (u > 0) {
            v->seq.items = malloc((size_t)u * sizeof *v->seq.items);
            if (v->seq.items == NULL) {
                free(v);
                return -ENOMEM;
            }
            v->seq.cap_ = (size_t)u;
        }
        for (uint64_t i = 0; i < u; i++) {
            if ((e = dec_rec(r, &v->seq.items[i], depth + 1)) != 0) {
                mp_val_free(v);
                return e;
            }
            v->seq.len++;
        }
        break;
    }
    case MP__TAG_DICT:
        if ((e = mp__rd_varint(r, &u)) != 0)
            return e;
        if (u > (r->len - r->pos) / 2)
            return MP_EINVAL;
        v = mp__val_new(MP_VAL_DICT);
        if (v == NULL)
            return -ENOMEM;
        for (uint64_t i = 0; i < u; i++) {
            mp_val *k, *x;
            if ((e = dec_rec(r, &k, depth + 1)) != 0) {
                mp_val_free(v);
                return e;
            }
            if ((e = dec_rec(r, &x, depth + 1)) != 0) {
                mp_val_free(k);
                mp_val_free(v);
                return e;
            }
            e = mp__val_dict_put(v, k, x, false);
            if (e != 0) {
                if (e == 1) { /* a repeated key */
                    mp_val_free(k);
                    mp_val_free(x);
                }
                mp_val_free(v);
                return e == -ENOMEM ? -ENOMEM : MP_EINVAL;
            }
        }
        break;
    case MP__TAG_PROXY:
        return dec_ref(r, out);
    default:
        return MP_EINVAL;
    }
    if (v == NULL)
        return -ENOMEM;
    *out = v;
    return 0;
}

int mp__rd_val(mp__rd *r, mp_val **out)
{
    return dec_rec(r, out, 0);
}

int mp_val_decode(const void *buf, size_t len, mp_val **out, size_t *used)
{
    if (out == NULL)
        return MP_EINVAL;
    *out = NULL;
    if (buf == NULL && len > 0)
        return MP_EINVAL;
    mp__rd r = {.p = buf, .len = len, .pos = 0};
    mp_val *v;
    int e = dec_rec(&r, &v, 0);
    if (e != 0)
        return e;
    if (used != NULL) {
        *used = r.pos;
    } else if (r.pos != len) {
        mp_val_free(v);
        return MP_EINVAL;
    }
    *out = v;
    return 0;
}
