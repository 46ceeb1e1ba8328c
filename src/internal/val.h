/*
 * internal/val.h: helpers behind libmp/val.h, shared with the manager.
 *
 * The functions named _take take ownership of the values given to them
 * (allocated values only), so the server can store decoded arguments
 * without copying them again.
 */
#ifndef LIBMP_INTERNAL_VAL_H
#define LIBMP_INTERNAL_VAL_H

#include "internal/mp.h"

/* ---- a growable byte buffer ------------------------------------------- */

/* Appends never fail loudly: the first failed allocation sets oom and later
 * appends are dropped, so a whole encoding is checked once at the end. */
typedef struct mp__buf {
    char *p;
    size_t len;
    size_t cap;
    bool oom;
    uint32_t nrefs; /* proxy references encoded (val_codec.c counts them) */
} mp__buf;

bool mp__buf_reserve(mp__buf *b, size_t more);
void mp__buf_put(mp__buf *b, const void *p, size_t n);
void mp__buf_putc(mp__buf *b, char c);
void mp__buf_puts(mp__buf *b, const char *s);
void mp__buf_printf(mp__buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mp__buf_varint(mp__buf *b, uint64_t v);
void mp__buf_free(mp__buf *b);
/* NUL-terminate and hand the bytes over (NULL when oom). */
char *mp__buf_cstr(mp__buf *b);

/* ---- value internals (val.c) ----------------------------------------- */

/* Static None, True and False, for replies that outlive a block. */
extern const mp_val mp__none, mp__true, mp__false;

mp_val *mp__val_new(mp_val_type type);
mp_val *mp__val_new_bytes(mp_val_type type, const void *p, size_t n);

/*
 * Proxy references (MP_VAL_PROXY).  mp__val_new_ref makes an unbound one
 * (NULL on -ENOMEM).  bind_ says who the reference belongs to: nobody
 * (decoded from bytes), a client (owner_ is the mp_manager it came
 * through, owner_id_ its id), or a server (owner_ is the struct mgr_srv,
 * and the reference counts as one reference to the object: a copy takes
 * one more, freeing the value drops it; mgr_server.c).
 */
enum { MP__REF_FREE = 0, MP__REF_CLIENT = 1, MP__REF_SERVER = 2 };
#define MP__REF_TYPEID_MAX 47 /* MGR_NAME_MAX - 1 */
#define MP__REF_ADDR_MAX 255
mp_val *mp__val_new_ref(const char *typeid, size_t tlen, const char *addr, size_t alen,
                        uint64_t oid, uint32_t kind);
/* A well-formed reference: a known kind, a non-zero id, a typeid and an
 * address of acceptable length. */
bool mp__ref_ok(const mp_val *v);
void mp__mgr_ref_drop(mp_val *v);
void mp__mgr_ref_keep(mp_val *v);
/* Python's class of the proxy that a reference of kind rebuilds. */
const char *mp__proxy_class_name(uint32_t kind);

/* Strict UTF-8 check: no overlong forms, no surrogates, nothing past U+10FFFF. */
bool mp__utf8_valid(const char *p, size_t n);

/* Checks a literal or allocated value: known types, valid UTF-8, no NULL
 * items, hashable distinct-looking dict keys, depth.  0 or MP_EINVAL. */
int mp__val_check(const mp_val *v);

/* Append item to an allocated list or tuple, taking ownership (freed on
 * failure too).  0 or -ENOMEM. */
int mp__val_list_push(mp_val *l, mp_val *item);

/* Insert at position i (0..len), taking ownership; 0 or -ENOMEM. */
int mp__val_list_insert_take(mp_val *l, size_t i, mp_val *item);

/* Remove item i (0..len-1) and return it to the caller. */
mp_val *mp__val_list_remove(mp_val *l, size_t i);

/*
 * Set d[key] = value taking ownership of both (freed on failure too).  An
 * existing entry keeps its key (the new key is freed) and gets the new
 * value.  0, MP_EINVAL (unhashable key) or -ENOMEM.  When replace is false
 * and the key exists, returns 1 and frees nothing: the caller keeps key and
 * value.
 */
int mp__val_dict_put(mp_val *d, mp_val *key, mp_val *value, bool replace);

/* Find key in d: the slot index or -1 (also for an unhashable key). */
long mp__val_dict_find(const mp_val *d, const mp_val *key);

/* The value in a live slot, and the key (for iteration by slot). */
mp_val *mp__val_dict_slot_value(const mp_val *d, size_t slot);
mp_val *mp__val_dict_slot_key(const mp_val *d, size_t slot);
/* Replace the value in a live slot, taking ownership; the old one is freed. */
void mp__val_dict_slot_set(mp_val *d, size_t slot, mp_val *value);

/* Remove the entry in a live slot, handing key and value to the caller (each
 * pointer may be NULL: then that part is freed). */
void mp__val_dict_remove_slot(mp_val *d, size_t slot, mp_val **key, mp_val **value);

/* Remove every entry. */
void mp__val_dict_clear(mp_val *d);

/* Release what a container holds and make it empty (the node stays). */
void mp__val_clear(mp_val *v);

/* A 64-bit mixer (splitmix64's finaliser), for hashes. */
static inline uint64_t mp__mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* Deep copy of v, which sits at nesting depth depth (val.c). */
int mp__val_copy_depth(const mp_val *v, mp_val **out, int depth);

/* Free a dict's index (val_dict.c). */
void mp__val_dindex_free(void *ix);

/* Append repr(v) (or str(v) when as_str) to b; 0 or MP_EINVAL. */
int mp__val_repr_buf(mp__buf *b, const mp_val *v, bool as_str);

/* Append the shortest repr of a double, as Python prints it. */
void mp__float_repr(mp__buf *b, double f);

/* ---- encoding (val_codec.c) ------------------------------------------- */

enum mp__val_tag {
    MP__TAG_NONE = 0x00,
    MP__TAG_FALSE = 0x01,
    MP__TAG_TRUE = 0x02,
    MP__TAG_INT = 0x03,
    MP__TAG_FLOAT = 0x04,
    MP__TAG_STR = 0x05,
    MP__TAG_BYTES = 0x06,
    MP__TAG_LIST = 0x07,
    MP__TAG_TUPLE = 0x08,
    MP__TAG_DICT = 0x09,
    MP__TAG_PROXY = 0x0a,
};

/* Append the encoding of v to b; 0, MP_EINVAL (malformed v) or -ENOMEM. */
int mp__val_encode_buf(mp__buf *b, const mp_val *v);
/* The same for v nested at depth depth of a value being encoded (a value
 * deeper than MP_VAL_MAX_DEPTH in all is MP_EINVAL). */
int mp__val_encode_buf_at(mp__buf *b, const mp_val *v, int depth);

/* Decoding cursor over untrusted bytes. */
typedef struct mp__rd {
    const uint8_t *p;
    size_t len;
    size_t pos;
    size_t nrefs; /* proxy references decoded */
} mp__rd;

/* Read a canonical LEB128 varint; 0 or MP_EINVAL. */
int mp__rd_varint(mp__rd *r, uint64_t *v);
/* Read a varint length followed by that many bytes (borrowed); 0 or MP_EINVAL. */
int mp__rd_bytes(mp__rd *r, const char **p, size_t *n);
/* Decode one value at the cursor; 0, MP_EINVAL or -ENOMEM. */
int mp__rd_val(mp__rd *r, mp_val **out);

#endif /* LIBMP_INTERNAL_VAL_H */
