/*
 * libmp/val.h: typed values, the objects a manager holds (managers.h).
 *
 * Python's managers move pickled Python objects.  libmp moves mp_val trees:
 * a small set of Python types, with Python's equality, hashing (1 == 1.0 ==
 * True as dict keys), repr and str, and a compact self-describing binary
 * encoding (docs/managers.md gives the format byte by byte).
 *
 *   Python                           C
 *   None, True, False                MP_NONE, MP_TRUE, MP_FALSE
 *   5, 2.5, 'text', b'raw'           MP_I64(5), MP_FLOAT(2.5), MP_STR("text"),
 *                                    MP_BYTES(p, n)             (literals)
 *                                    mp_val_int(5), mp_val_str("text"), ...
 *                                                               (allocated)
 *   [1, 'a'], (1, 2), {1: 'a'}       MP_LIST(MP_I64(1), MP_STR("a")),
 *                                    MP_TUPLE(...), MP_DICT(k1, v1, k2, v2)
 *   ast.literal_eval(s)              mp_val_parse(s, &v)
 *   repr(v), str(v)                  mp_val_repr(v), mp_val_tostring(v)
 *   v == w, hash(v)                  mp_val_eq(v, w), mp_val_hash(v, &h)
 *   sorted order                     mp_val_cmp(v, w)
 *   copy.deepcopy(v)                 mp_val_copy(v)
 *   len(v)                           mp_val_len(v)
 *   l.append(x), l[i]                mp_val_list_append(l, x), mp_val_item(l, i)
 *   d[k] = x, d.get(k), del d[k]     mp_val_dict_set / mp_val_dict_get / mp_val_dict_del
 *   for k, x in d.items()            mp_val_dict_next(d, &pos, &k, &x)
 *   pickle.dumps / loads             mp_val_encode / mp_val_decode
 *
 * Two kinds of value exist and must not be mixed up:
 *
 * - Literals, made with the MP_ macros below: compound literals that live
 *   in the enclosing block (automatic storage) and borrow their strings and
 *   items.  They are for passing values in: every function of libmp that
 *   takes a const mp_val * copies what it needs before returning.  Never
 *   free a literal, never pass one to a function that modifies its argument.
 * - Allocated values, returned by the mp_val_ constructors, by mp_val_copy,
 *   mp_val_decode, mp_val_parse and by every manager call that hands a
 *   value out.  The caller owns the whole tree and releases it with
 *   mp_val_free.  Such a value is an ordinary process-local (malloc'd)
 *   object: it is NOT in the shared arena, and a pointer to it means
 *   nothing in another process.  Send it as bytes (mp_val_encode) or keep
 *   it in a manager.
 *
 * Departures from Python (docs/managers.md): integers are 64-bit signed
 * (bigger ones are an error, not a bignum); there are no sets, no user
 * classes and no object identity (a list cannot contain itself), except
 * that a value may name an object of a manager (MP_VAL_PROXY, a proxy
 * reference: Python's pickled proxy, see managers.h); sorting
 * mixed types does not fail but follows the total order of mp_val_cmp.
 * Strings are UTF-8 and must be valid UTF-8.
 *
 * Thread-safety: functions that only read a value may run concurrently on
 * it; a value that some thread modifies must not be used by another thread
 * at the same time (like any C data structure).  All functions are
 * fork-safe (values are plain malloc'd memory).
 *
 * The MP_ literal macros are C only (compound literals); C++ builds values
 * with the mp_val_* constructors and frees them with mp_val_free.
 */
#ifndef LIBMP_VAL_H
#define LIBMP_VAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common.h"

MP_BEGIN_DECLS

typedef enum mp_val_type {
    MP_VAL_NONE = 0,
    MP_VAL_BOOL = 1,
    MP_VAL_INT = 2,   /* int64_t */
    MP_VAL_FLOAT = 3, /* double */
    MP_VAL_STR = 4,   /* UTF-8 text (not NUL-terminated in general) */
    MP_VAL_BYTES = 5, /* raw bytes */
    MP_VAL_LIST = 6,
    MP_VAL_TUPLE = 7,
    MP_VAL_DICT = 8, /* insertion-ordered, as Python 3's dict */
    MP_VAL_PROXY = 9 /* a reference to a manager's object (managers.h) */
} mp_val_type;

typedef struct mp_val mp_val;

/*
 * A value.  The scalar fields (b, i, f, s) may be read directly after
 * checking type; containers are read with the functions below (a dict's
 * fields are internal).  Values are built with the constructors or the
 * MP_ literal macros, never by filling the struct by hand.
 */
/* The parts of a value (named outside it: C++ allows no types declared
 * inside an anonymous union). */
struct mp__val_str {
    const char *ptr; /* MP_VAL_STR, MP_VAL_BYTES: len bytes; an */
    size_t len;      /* allocated value also has a NUL after them */
};
struct mp__val_seq {
    mp_val **items; /* MP_VAL_LIST, MP_VAL_TUPLE: len items */
    size_t len;
    size_t cap_;
};
struct mp__val_dict {
    mp_val **kv_;  /* internal: key, value, key, value, ... */
    size_t slots_; /* internal: pairs in kv_, removed ones too */
    size_t count;  /* number of entries */
    size_t cap_;
    void *index_;
};
/* Python's Token: what a pickled proxy carries (mp_val_proxy, managers.h). */
struct mp__val_ref {
    const char *type_id; /* the object's typeid, NUL-terminated; the server's
                         * address follows its NUL (mp_val_proxy_address) */
    uint64_t oid;        /* the object's id in its manager */
    uint32_t kind;       /* mp_proxy_kind */
    uint32_t bind_;      /* internal */
    void *owner_;        /* internal */
    uint64_t owner_id_;  /* internal */
};

struct mp_val {
    mp_val_type type;
    uint32_t alloc_; /* internal: nonzero for allocated values */
    union {
        bool b;                   /* MP_VAL_BOOL */
        int64_t i;                /* MP_VAL_INT */
        double f;                 /* MP_VAL_FLOAT */
        struct mp__val_str s;     /* MP_VAL_STR, MP_VAL_BYTES */
        struct mp__val_seq seq;   /* MP_VAL_LIST, MP_VAL_TUPLE */
        struct mp__val_dict dict; /* MP_VAL_DICT */
        struct mp__val_ref ref;   /* MP_VAL_PROXY */
    };
};

/* ---- literals ---------------------------------------------------------- */

/* Number of const mp_val * arguments of a variadic macro (at least one). */
#define MP__NARGS(...) (sizeof((const mp_val *[]){__VA_ARGS__}) / sizeof(const mp_val *))

#define MP_NONE (&(const mp_val){.type = MP_VAL_NONE})
#define MP_TRUE (&(const mp_val){.type = MP_VAL_BOOL, .b = true})
#define MP_FALSE (&(const mp_val){.type = MP_VAL_BOOL, .b = false})
#define MP_BOOL(x) (&(const mp_val){.type = MP_VAL_BOOL, .b = (x) ? true : false})
/* A 64-bit int (not MP_INT: GMP owns that name for its integer type). */
#define MP_I64(x) (&(const mp_val){.type = MP_VAL_INT, .i = (int64_t)(x)})
#define MP_FLOAT(x) (&(const mp_val){.type = MP_VAL_FLOAT, .f = (double)(x)})
/* A NUL-terminated C string, taken as UTF-8. */
#define MP_STR(cstr) (&(const mp_val){.type = MP_VAL_STR, .s = {(cstr), strlen(cstr)}})
#define MP_STRN(p, n) (&(const mp_val){.type = MP_VAL_STR, .s = {(const char *)(p), (n)}})
#define MP_BYTES(p, n) (&(const mp_val){.type = MP_VAL_BYTES, .s = {(const char *)(p), (n)}})
/* Containers of one or more const mp_val * items (MP_EMPTY_* for none). */
#define MP_LIST(...)                                                     \
    (&(const mp_val){.type = MP_VAL_LIST,                                \
                     .seq = {(mp_val **)(const mp_val *[]){__VA_ARGS__}, \
                             MP__NARGS(__VA_ARGS__), 0}})
#define MP_TUPLE(...)                                                    \
    (&(const mp_val){.type = MP_VAL_TUPLE,                               \
                     .seq = {(mp_val **)(const mp_val *[]){__VA_ARGS__}, \
                             MP__NARGS(__VA_ARGS__), 0}})
/* MP_DICT(key1, value1, key2, value2, ...): the keys must be distinct. */
#define MP_DICT(...)                                                                     \
    (&(const mp_val){.type = MP_VAL_DICT,                                                \
                     .dict = {(mp_val **)(const mp_val *[]){__VA_ARGS__},                \
                              MP__NARGS(__VA_ARGS__) / 2, MP__NARGS(__VA_ARGS__) / 2, 0, \
                              NULL}})
#define MP_EMPTY_LIST (&(const mp_val){.type = MP_VAL_LIST})
#define MP_EMPTY_TUPLE (&(const mp_val){.type = MP_VAL_TUPLE})
#define MP_EMPTY_DICT (&(const mp_val){.type = MP_VAL_DICT})

/* ---- allocated values ------------------------------------------------- */

/*
 * Constructors.  Each returns a new value owned by the caller (mp_val_free),
 * or NULL with mp_last_error() set to -ENOMEM.  mp_val_str copies a
 * NUL-terminated string, mp_val_strn / mp_val_bytes copy n bytes (p may be
 * NULL when n is 0); text that is not valid UTF-8 is refused with
 * MP_EINVAL.  mp_val_list / mp_val_tuple / mp_val_dict make empty
 * containers (a tuple is filled with mp_val_list_append like a list).
 */
MP_EXTERN mp_val *mp_val_none(void);
MP_EXTERN mp_val *mp_val_bool(bool b);
MP_EXTERN mp_val *mp_val_int(int64_t i);
MP_EXTERN mp_val *mp_val_float(double f);
MP_EXTERN mp_val *mp_val_str(const char *s);
MP_EXTERN mp_val *mp_val_strn(const char *p, size_t n);
MP_EXTERN mp_val *mp_val_bytes(const void *p, size_t n);
MP_EXTERN mp_val *mp_val_list(void);
MP_EXTERN mp_val *mp_val_tuple(void);
MP_EXTERN mp_val *mp_val_dict(void);

/* mp_val_range: the list [start, start + step, ...) up to stop, as
 * list(range(start, stop, step)); step 0 is MP_EINVAL (NULL). */
MP_EXTERN mp_val *mp_val_range(int64_t start, int64_t stop, int64_t step);

/*
 * mp_val_free: release an allocated value and everything in it.  NULL is a
 * no-op.  Never call it on a literal or on an item borrowed from a container
 * (mp_val_item, mp_val_dict_get, ...).
 */
MP_EXTERN void mp_val_free(mp_val *v);

/*
 * mp_val_copy: a deep copy of v (a literal or an allocated value), owned by
 * the caller.  A dict copy is indexed and keeps the insertion order.
 * Returns NULL with mp_last_error(): MP_EINVAL if v is NULL, malformed (an
 * unknown type, nesting deeper than MP_VAL_MAX_DEPTH, a dict literal with an
 * unhashable key) or holds invalid UTF-8; -ENOMEM.
 */
MP_EXTERN mp_val *mp_val_copy(const mp_val *v);

/* Containers may nest at most this deep (mp_val_copy, the encoding, the
 * parser); deeper values are refused with MP_EINVAL. */
#define MP_VAL_MAX_DEPTH 64

/* ---- reading ------------------------------------------------------------ */

/* The type of v; MP_VAL_NONE for NULL. */
MP_EXTERN mp_val_type mp_val_typeof(const mp_val *v);

/* Python's type name: "NoneType", "bool", "int", "float", "str", "bytes",
 * "list", "tuple", "dict"; "?" for an unknown type.  Static string. */
MP_EXTERN const char *mp_val_type_name(const mp_val *v);

/*
 * Scalar accessors: 0 and *out set, or MP_EINVAL when v is NULL, out is
 * NULL or v has another type.  mp_val_as_int accepts a bool (as 0 or 1);
 * mp_val_as_float accepts an int or bool (converted).  mp_val_as_str gives
 * the bytes of a str or a bytes value and their length (len may be NULL);
 * the pointer is owned by v.
 */
MP_EXTERN int mp_val_as_bool(const mp_val *v, bool *out);
MP_EXTERN int mp_val_as_int(const mp_val *v, int64_t *out);
MP_EXTERN int mp_val_as_float(const mp_val *v, double *out);
MP_EXTERN int mp_val_as_str(const mp_val *v, const char **out, size_t *len);

/* Python's truth value (bool(v)): false for None, False, 0, 0.0 and empty
 * str, bytes and containers; true otherwise (and false for NULL). */
MP_EXTERN bool mp_val_truth(const mp_val *v);

/* len(v) for str (in bytes), bytes, list, tuple and dict; 0 otherwise. */
MP_EXTERN size_t mp_val_len(const mp_val *v);

/*
 * mp_val_item: item i of a list or tuple, borrowed (owned by v, valid until
 * v is modified or freed).  Negative i counts from the end, as in Python.
 * NULL when v is not a list or tuple or i is out of range.
 */
MP_EXTERN const mp_val *mp_val_item(const mp_val *v, int64_t i);

/* ---- Python semantics --------------------------------------------------- */

/*
 * mp_val_eq: Python's ==.  Numbers compare by value across bool, int and
 * float (1 == 1.0 == True); str and bytes are never equal to each other;
 * lists equal lists and tuples equal tuples item by item; dicts are equal
 * when they hold the same keys with equal values, in any order.  NaN is not
 * equal to itself.  NULL equals only NULL.
 */
MP_EXTERN bool mp_val_eq(const mp_val *a, const mp_val *b);

/*
 * mp_val_hash: a hash consistent with mp_val_eq (equal values, equal hashes;
 * 1, 1.0 and True hash alike).  Returns 0 with *out set, or MP_EINVAL when
 * v is NULL or unhashable (a list or dict, or a tuple holding one: Python's
 * "unhashable type").  The hash is the same in every process and run.
 */
MP_EXTERN int mp_val_hash(const mp_val *v, uint64_t *out);

/* True when v may be a dict key (mp_val_hash would succeed). */
MP_EXTERN bool mp_val_hashable(const mp_val *v);

/*
 * mp_val_cmp: a total order for sorting, <0, 0 or >0.  Within a kind it is
 * Python's: numbers by value (NaN after every other number), str by code
 * point, bytes bytewise, lists and tuples lexicographically.  Across kinds,
 * where Python raises TypeError, the order is None < numbers < str < bytes
 * < tuple < list < dict.  Dicts compare by size, then entry by entry in
 * insertion order.  NULL sorts first.
 */
MP_EXTERN int mp_val_cmp(const mp_val *a, const mp_val *b);

/*
 * mp_val_repr: Python's repr(v) as a new NUL-terminated string, owned by the
 * caller (free).  "None", "True", "42", "0.25", "1e+16", "'text'",
 * "b'\x00'", "[1, 'a']", "(1,)", "{0.25: None, 1: '1'}".  Floats print as
 * the shortest text that reads back to the same double, as Python does.
 * mp_val_tostring: Python's str(v): the same, except that a str value is its
 * text without quotes.  Both return NULL with mp_last_error() set on
 * -ENOMEM or MP_EINVAL (v NULL or malformed).
 */
MP_EXTERN char *mp_val_repr(const mp_val *v);
MP_EXTERN char *mp_val_tostring(const mp_val *v);

/* mp_val_fprint: write str(v) to f (print(v)); 0, MP_EINVAL, -ENOMEM or
 * -errno of the write. */
MP_EXTERN int mp_val_fprint(FILE *f, const mp_val *v);

/*
 * mp_val_parse: read a Python literal (ast.literal_eval) such as
 * "{'a': [1, 2.5, None], 'b': (True, b'\\x00')}".  Understands None, True,
 * False, decimal, hex (0x), octal (0o) and binary (0b) integers with
 * underscores, floats (inf and nan as the names inf and nan), str and bytes
 * in single or double quotes with Python's escapes (\n \t \\ \' \" \xNN
 * \uNNNN \UNNNNNNNN and octal), lists, tuples and dicts, and whitespace.
 *
 * out  receives the value, owned by the caller.
 *
 * Returns 0; MP_EINVAL for NULL arguments, a syntax error, an integer out of
 * int64 range, an unhashable or repeated dict key, or nesting deeper than
 * MP_VAL_MAX_DEPTH; -ENOMEM.
 */
MP_EXTERN int mp_val_parse(const char *text, mp_val **out);

/*
 * mp_val_proxy_address: the address of the manager that holds the object
 * a proxy reference (MP_VAL_PROXY, made by mp_val_proxy of managers.h)
 * names, as Python's Token.address: the AF_UNIX path, "host:port", or ""
 * for a manager that serves its family only.  Owned by v; NULL when v is
 * not a proxy reference.
 */
MP_EXTERN const char *mp_val_proxy_address(const mp_val *v);

/* ---- modifying allocated containers ----------------------------------- */

/*
 * List and tuple.  mp_val_list_append copies item to the end;
 * mp_val_list_insert copies it before index i (Python's insert: negative
 * counts from the end, out of range clamps); mp_val_list_set replaces item
 * i (negative counts from the end); mp_val_list_del removes item i.
 *
 * Return 0; MP_EINVAL if l is not an allocated list or tuple, item is NULL
 * or malformed, or i is out of range (set and del: Python's IndexError);
 * -ENOMEM.  On failure l is unchanged.
 */
MP_EXTERN int mp_val_list_append(mp_val *l, const mp_val *item);
MP_EXTERN int mp_val_list_insert(mp_val *l, int64_t i, const mp_val *item);
MP_EXTERN int mp_val_list_set(mp_val *l, int64_t i, const mp_val *item);
MP_EXTERN int mp_val_list_del(mp_val *l, int64_t i);

/*
 * Dict.  mp_val_dict_set copies key and value in (an existing key keeps its
 * place and its original key object, as in Python); mp_val_dict_get returns
 * the value of key, borrowed from d (valid until d is modified or freed), or
 * NULL when the key is missing, unhashable or d is not a dict;
 * mp_val_dict_del removes key.
 *
 * mp_val_dict_set returns 0; MP_EINVAL if d is not an allocated dict, key
 * is NULL or unhashable, or value is NULL or malformed; -ENOMEM.
 * mp_val_dict_del returns 0; MP_EINVAL as above; -ENOENT when the key is
 * missing (Python's KeyError).
 */
MP_EXTERN int mp_val_dict_set(mp_val *d, const mp_val *key, const mp_val *value);
MP_EXTERN const mp_val *mp_val_dict_get(const mp_val *d, const mp_val *key);
MP_EXTERN int mp_val_dict_del(mp_val *d, const mp_val *key);

/*
 * mp_val_dict_next: iterate over a dict in insertion order.
 *
 *     size_t pos = 0; const mp_val *k, *x;
 *     while (mp_val_dict_next(d, &pos, &k, &x)) ...
 *
 * pos starts at 0 and is advanced by the call; key and value (either may be
 * NULL) receive borrowed pointers.  Returns true while an entry was
 * produced; false at the end or when d is not a dict.  d must not be
 * modified during the iteration.
 */
MP_EXTERN bool mp_val_dict_next(const mp_val *d, size_t *pos, const mp_val **key,
                                const mp_val **value);

/* ---- the binary encoding ------------------------------------------------ */

/*
 * mp_val_encode: encode v (literal or allocated) into a new buffer.
 *
 * buf, len  receive the malloc'd bytes (owned by the caller: free) and their
 *           number.
 *
 * Returns 0; MP_EINVAL if an argument is NULL, v is malformed (unknown
 * type, invalid UTF-8, unhashable dict key, nesting deeper than
 * MP_VAL_MAX_DEPTH); -ENOMEM.
 */
MP_EXTERN int mp_val_encode(const mp_val *v, void **buf, size_t *len);

/*
 * mp_val_decode: decode one value from buf.
 *
 * buf, len  the bytes (buf may be NULL only if len is 0).
 * out       receives the value, owned by the caller; NULL on failure.
 * used      if not NULL, receives how many bytes the value took and bytes
 *           may follow it; if NULL, the value must fill buf exactly.
 *
 * Never reads outside buf and never allocates more than a small constant
 * times len, whatever the input claims.  Returns 0; MP_EINVAL for
 * malformed input: truncation, an unknown tag, a non-canonical or
 * overflowing integer, invalid UTF-8, a count larger than the bytes left,
 * nesting deeper than MP_VAL_MAX_DEPTH, an unhashable or repeated dict key,
 * trailing bytes when used is NULL; MP_EINVAL for NULL arguments too;
 * -ENOMEM.
 */
MP_EXTERN int mp_val_decode(const void *buf, size_t len, mp_val **out, size_t *used);

MP_END_DECLS

#endif /* LIBMP_VAL_H */
