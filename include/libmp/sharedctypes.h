/*
 * libmp/sharedctypes.h: typed values and arrays in shared memory, as
 * multiprocessing.Value, Array, RawValue and RawArray.
 *
 *   Python                                   C
 *   v = Value('d', 0.0)                      mp_value *v = mp_value_new(.typecode = 'd', .value = 0.0);
 *   v = Value('i', 7, lock=False)            mp_value_new(.typecode = 'i', .value = 7, .nolock = true)
 *   v = Value('i', lock=l)                   mp_value_new(.typecode = 'i', .lock = l)
 *   v = RawValue('q', 2**60)                 mp_raw_value_new(.typecode = 'q', .init = &(long long){1LL << 60})
 *   x = v.value                              MP_VALUE_GET(v, &x)        (locked copy)
 *   v.value = x                              MP_VALUE_SET(v, double, x) (locked copy)
 *   v.value (any type, as a float)           mp_value_get_double(v, &d) / mp_value_set_double(v, d)
 *   with v.get_lock(): v.value += 1          mp_value_acquire(v, MP_FOREVER);
 *                                            MP_VALUE(v, int) += 1;
 *                                            mp_value_release(v);
 *   v.get_lock() / v.get_obj()               mp_value_get_lock(v) / mp_value_ptr(v)
 *   a = Array('i', range(5))                 mp_array *a = mp_array_new(.typecode = 'i', .size = 5,
 *                                                                       .init = (int[]){0, 1, 2, 3, 4});
 *   a = Array('d', 10)                       mp_array_new(.typecode = 'd', .size = 10)   (zeros)
 *   a = RawArray('b', 100)                   mp_raw_array_new(.typecode = 'b', .size = 100)
 *   len(a)                                   mp_array_len(a)
 *   x = a[i] / a[i] = x                      MP_ARRAY_GET(a, i, &x) / MP_ARRAY_SET(a, i, int, x)
 *   a[i] (as a float)                        mp_array_get_double(a, i, &d) / mp_array_set_double(a, i, d)
 *   a[s:s+n] / a[s:s+n] = seq                mp_array_read(a, s, n, buf, sizeof buf[0]) / mp_array_write
 *   with a.get_lock(): a[i] = -a[i]          mp_array_acquire(a, MP_FOREVER);
 *                                            MP_ARRAY(a, int)[i] = -MP_ARRAY(a, int)[i];
 *                                            mp_array_release(a);
 *   class Point(Structure): ...              struct point { double x, y; };
 *   Value(Point, (1, 2))                     mp_value_new(.typecode = MP_STRUCT,
 *                                                         .itemsize = sizeof(struct point),
 *                                                         .init = &(struct point){1, 2})
 *   Array(Point, 10)                         mp_array_new(.typecode = MP_STRUCT,
 *                                                         .itemsize = sizeof(struct point),
 *                                                         .size = 10)
 *   Value('u', 'x'), Array('u', 'text')      .typecode = 'u' (wchar_t)
 *   sharedctypes.copy(obj)                   mp_value_copy(v) / mp_array_copy(a)
 *   sharedctypes.synchronized(obj, lock)     mp_value_synchronized(raw, lock) /
 *                                            mp_array_synchronized(raw, lock)
 *
 * Typecodes, as Python's array module (sizes as on LP64 Linux):
 *   'c' char   'b' signed char   'B' unsigned char   'h' short   'H' unsigned short
 *   'i' int    'I' unsigned int  'l' long            'L' unsigned long
 *   'q' long long   'Q' unsigned long long   'f' float   'd' double
 *   'u' wchar_t (a Unicode code point, 4 bytes on Linux)
 *   MP_STRUCT: a C struct (Python's ctypes Structure) of .itemsize bytes,
 *   copied as opaque bytes; the *_double accessors refuse it.
 *
 * Locks: by default a Value or Array has an RLock of its own (Python's
 * lock=True); .lock = l shares a Lock or RLock given by the caller (it must
 * outlive the object); .nolock = true (Python's lock=False) and the Raw
 * constructors make an object without a lock.  The checked accessors
 * (get/set/read/write) hold the lock for the copy, unless the calling
 * thread holds it already, so they may be used inside an acquire/release
 * section even with a non-recursive Lock.  The MP_VALUE and MP_ARRAY
 * macros are plain memory access: no lock, and no check beyond the size.
 *
 * Every object lives in the shared arena: the pointer, and the memory from
 * mp_value_ptr / mp_array_ptr, are valid unchanged in every process of the
 * family, under every start method.
 *
 * C++ has no compound literals (before C++20, see common.h): fill a
 * zero-initialised struct and call the _opts function, e.g.
 *     mp_value_options o = {};
 *     o.typecode = 'i';
 *     ... = mp_value_new_opts(&o);
 */
#ifndef LIBMP_SHAREDCTYPES_H
#define LIBMP_SHAREDCTYPES_H

#include <stdbool.h>

#include "common.h"
#include "synchronize.h"

MP_BEGIN_DECLS

/* The typecode of items that are a caller-described struct (.itemsize). */
#define MP_STRUCT 'T'

/*
 * mp_typecode_size: the size in bytes of one item of typecode (see the
 * table above), or 0 when typecode is not one of "cbBhHiIlLqQfdu"
 * (MP_STRUCT has no size of its own: 0).
 */
MP_EXTERN size_t mp_typecode_size(char typecode);

/* ==== Value ============================================================== */

typedef struct mp_value mp_value;

typedef struct mp_value_options {
    size_t struct_size; /* sizeof: the macros set it; 0 is the 0.1 layout (common.h) */
    char typecode;      /* required: one of "cbBhHiIlLqQfdu", or MP_STRUCT */
    double value;       /* initial value, converted to the type (default 0) */
    const void *init;   /* instead of .value: the initial value as one item
                          of the C type (for 64-bit integers beyond 2^53) */
    mp_lock *lock;      /* a Lock or RLock to use; NULL: an RLock of its own */
    bool nolock;        /* Python's lock=False: no lock at all */
    mp_context *ctx;    /* accepted for symmetry with Python; unused */
    size_t itemsize;    /* MP_STRUCT: the struct's size (sizeof); otherwise
                          0 or the typecode's size */
} mp_value_options;

/*
 * mp_value_new: a shared value (Python's Value(typecode, value, lock)).
 * mp_raw_value_new: one without a lock (Python's RawValue(typecode, value));
 * .lock must then be left out.
 *
 * .value is converted to the type: for an integer typecode it must be a
 * whole number in the type's range ('c' takes -128 .. 255), for 'f' any
 * double is rounded to float.  .init, when not NULL, is copied instead
 * (itemsize bytes).  An MP_STRUCT value is .init's bytes, or zeros (its
 * .value must be left 0); items are aligned to 64 bytes at the start, so
 * any struct is aligned as C wants (sizeof includes its padding).
 *
 * Returns the value, owned by the caller (mp_value_free), or NULL with
 * mp_last_error() set: MP_EINVAL for a bad typecode, a .value that does not
 * fit, both .lock and .nolock, a .lock that is not a live lock, a .lock
 * given to mp_raw_value_new; -ENOMEM.
 */
#define mp_value_new(...) mp_value_new_opts(MP__OPTS(mp_value_options, __VA_ARGS__))
#define mp_raw_value_new(...) mp_raw_value_new_opts(MP__OPTS(mp_value_options, __VA_ARGS__))
MP_EXTERN mp_value *mp_value_new_opts(const mp_value_options *opts);
MP_EXTERN mp_value *mp_raw_value_new_opts(const mp_value_options *opts);

/*
 * mp_value_ptr: the value's memory (Python's get_obj()): itemsize bytes in
 * the arena, valid in every process of the family until mp_value_free.
 * NULL for an invalid v.  Access through it takes no lock.
 *
 * mp_value_ptr_as: the same, but NULL unless size is the typecode's item
 * size; what MP_VALUE uses.
 */
MP_EXTERN void *mp_value_ptr(const mp_value *v);
MP_EXTERN void *mp_value_ptr_as(const mp_value *v, size_t size);

/*
 * MP_VALUE(v, T): the value as an lvalue of C type T, without locking:
 *     MP_VALUE(v, double) *= 2;
 * T must be the typecode's C type.  A T of the wrong size, or an invalid v,
 * dereferences NULL (a crash at the faulty line rather than a silent
 * overrun); a T of the right size but the wrong kind (float for 'i')
 * reinterprets the bits.  Use the checked functions below when in doubt.
 */
#define MP_VALUE(v, T) (*(T *)mp_value_ptr_as((v), sizeof(T)))

/*
 * mp_value_get / mp_value_set: copy the value out of / into the object,
 * holding its lock (if it has one and the caller does not hold it yet).
 *
 * size  must be the typecode's item size (sizeof of its C type).
 *
 * Returns 0; MP_EOWNERDEAD when the lock's previous holder died (the copy
 * was made; see mp_lock_acquire); MP_EINVAL for an invalid v, a NULL
 * buffer, or a wrong size; -EDEADLK as mp_lock_acquire.
 */
MP_EXTERN int mp_value_get(mp_value *v, void *out, size_t size);
MP_EXTERN int mp_value_set(mp_value *v, const void *in, size_t size);

/* MP_VALUE_GET(v, &x): mp_value_get with the size of x.
 * MP_VALUE_SET(v, T, x): mp_value_set of x converted to T. */
#define MP_VALUE_GET(v, out) mp_value_get((v), (out), sizeof *(out))
#define MP_VALUE_SET(v, T, x) mp_value_set((v), &(T){(x)}, sizeof(T))

/*
 * mp_value_get_double / mp_value_set_double: the value as a double, for
 * every typecode (Python's .value seen as a number), under the lock as
 * mp_value_get.  64-bit integers beyond 2^53 lose precision when read.
 * Setting converts as .value at creation: MP_EINVAL when x is not a whole
 * number in range for an integer typecode; otherwise as mp_value_get.
 */
MP_EXTERN int mp_value_get_double(mp_value *v, double *out);
MP_EXTERN int mp_value_set_double(mp_value *v, double x);

/* mp_value_typecode: the typecode, or 0 for an invalid v. */
MP_EXTERN char mp_value_typecode(const mp_value *v);

/* mp_value_get_lock: the lock (Python's get_lock()), NULL when the value
 * has none or v is invalid.  Owned by the value if it made it. */
MP_EXTERN mp_lock *mp_value_get_lock(const mp_value *v);

/* mp_value_acquire / mp_value_release: the value's lock, as
 * mp_lock_acquire / mp_lock_release; MP_EINVAL when it has none. */
MP_EXTERN int mp_value_acquire(mp_value *v, double timeout);
MP_EXTERN int mp_value_release(mp_value *v);

/* mp_value_free: release the value and its own lock (not a lock given with
 * .lock); NULL is a no-op.  A value made by mp_value_synchronized does not
 * free the raw value's memory. */
MP_EXTERN void mp_value_free(mp_value *v);

/* mp_value_itemsize / mp_array_itemsize: the size of one item (the
 * struct's for MP_STRUCT), or 0 for an invalid object. */
MP_EXTERN size_t mp_value_itemsize(const mp_value *v);

/*
 * mp_value_copy: a new raw value (no lock) of the same type holding a
 * copy of v's value, taken under v's lock (Python's sharedctypes.copy).
 * Returns it, owned by the caller (mp_value_free), or NULL with
 * mp_last_error(): MP_EINVAL for an invalid v, -ENOMEM, -EDEADLK.
 *
 * mp_value_synchronized: a value with a lock over the memory of raw, a
 * value made without one (Python's sharedctypes.synchronized(obj, lock)):
 * the two see the same memory; lock is used if given (it must outlive
 * the result), else the result has an RLock of its own.  raw must outlive
 * the result, which mp_value_free releases without touching raw.  Returns
 * it, or NULL with mp_last_error(): MP_EINVAL for an invalid raw, one
 * that has a lock already (Python's 'object already synchronized'), or a
 * lock that is not a live lock; -ENOMEM.
 */
MP_EXTERN mp_value *mp_value_copy(mp_value *v);
MP_EXTERN mp_value *mp_value_synchronized(mp_value *raw, mp_lock *lock);

/* ==== Array ============================================================== */

typedef struct mp_array mp_array;

typedef struct mp_array_options {
    size_t struct_size; /* sizeof: the macros set it; 0 is the 0.1 layout (common.h) */
    char typecode;      /* required: one of "cbBhHiIlLqQfdu", or MP_STRUCT */
    size_t size;        /* number of items (0 is allowed) */
    const void *init;   /* NULL: zeros; else .size items of the C type */
    mp_lock *lock;      /* a Lock or RLock to use; NULL: an RLock of its own */
    bool nolock;        /* Python's lock=False: no lock at all */
    mp_context *ctx;    /* accepted for symmetry with Python; unused */
    size_t itemsize;    /* MP_STRUCT: the struct's size; else 0 or the
                          typecode's size */
} mp_array_options;

/*
 * mp_array_new: a shared array (Python's Array(typecode,
 * size_or_initializer, lock)).  mp_raw_array_new: one without a lock
 * (Python's RawArray); .lock must then be left out.
 *
 * Python's initializer sequence is .size items read from .init.
 *
 * Returns the array, owned by the caller (mp_array_free), or NULL with
 * mp_last_error() set: MP_EINVAL for a bad typecode, a size whose byte
 * count overflows, both .lock and .nolock, a .lock that is not a live
 * lock, a .lock given to mp_raw_array_new; -ENOMEM when the arena cannot
 * hold it.
 */
#define mp_array_new(...) mp_array_new_opts(MP__OPTS(mp_array_options, __VA_ARGS__))
#define mp_raw_array_new(...) mp_raw_array_new_opts(MP__OPTS(mp_array_options, __VA_ARGS__))
MP_EXTERN mp_array *mp_array_new_opts(const mp_array_options *opts);
MP_EXTERN mp_array *mp_raw_array_new_opts(const mp_array_options *opts);

/*
 * mp_array_ptr: the items' memory (Python's get_obj()), len * itemsize
 * bytes in the arena, valid in every process until mp_array_free; NULL for
 * an invalid a.  mp_array_ptr_as: the same, NULL unless size is the item
 * size.  Access through them takes no lock.
 */
MP_EXTERN void *mp_array_ptr(const mp_array *a);
MP_EXTERN void *mp_array_ptr_as(const mp_array *a, size_t size);

/*
 * MP_ARRAY(a, T): the items as a T * (no lock, no bounds check):
 *     MP_ARRAY(a, int)[i] += 1;
 * As MP_VALUE: a wrong-sized T or an invalid a gives a NULL pointer.
 */
#define MP_ARRAY(a, T) ((T *)mp_array_ptr_as((a), sizeof(T)))

/* mp_array_len: the number of items (Python's len(a)), or MP_EINVAL. */
MP_EXTERN ssize_t mp_array_len(const mp_array *a);

/* mp_array_typecode: the typecode, or 0 for an invalid a. */
MP_EXTERN char mp_array_typecode(const mp_array *a);

/*
 * mp_array_get / mp_array_set: copy item index out / in under the lock (as
 * mp_value_get).  size must be the item size.
 *
 * Returns 0, MP_EOWNERDEAD (copy made), MP_EINVAL for an invalid a, a NULL
 * buffer, a wrong size or index >= len (Python's IndexError), -EDEADLK.
 */
MP_EXTERN int mp_array_get(mp_array *a, size_t index, void *out, size_t size);
MP_EXTERN int mp_array_set(mp_array *a, size_t index, const void *in, size_t size);

/* MP_ARRAY_GET(a, i, &x) and MP_ARRAY_SET(a, i, T, x), as for values. */
#define MP_ARRAY_GET(a, i, out) mp_array_get((a), (i), (out), sizeof *(out))
#define MP_ARRAY_SET(a, i, T, x) mp_array_set((a), (i), &(T){(x)}, sizeof(T))

/*
 * mp_array_read / mp_array_write: copy count items starting at start out
 * of / into the array in one locked step (Python's a[start:start+count]
 * and slice assignment, which cannot change the length).
 *
 * size  the item size, as a check that buf has the right type.
 *
 * Returns 0, MP_EOWNERDEAD, MP_EINVAL for an invalid a, a NULL buf with
 * count > 0, a wrong size, or a range past the end; -EDEADLK.
 */
MP_EXTERN int mp_array_read(mp_array *a, size_t start, size_t count, void *buf, size_t size);
MP_EXTERN int mp_array_write(mp_array *a, size_t start, size_t count, const void *buf,
                             size_t size);

/* mp_array_get_double / mp_array_set_double: item index as a double, as
 * mp_value_get_double / mp_value_set_double; MP_EINVAL past the end. */
MP_EXTERN int mp_array_get_double(mp_array *a, size_t index, double *out);
MP_EXTERN int mp_array_set_double(mp_array *a, size_t index, double x);

/* mp_array_get_lock, mp_array_acquire, mp_array_release, mp_array_free: as
 * for values. */
MP_EXTERN mp_lock *mp_array_get_lock(const mp_array *a);
MP_EXTERN int mp_array_acquire(mp_array *a, double timeout);
MP_EXTERN int mp_array_release(mp_array *a);
MP_EXTERN void mp_array_free(mp_array *a);

/* mp_array_itemsize, mp_array_copy, mp_array_synchronized: as for values. */
MP_EXTERN size_t mp_array_itemsize(const mp_array *a);
MP_EXTERN mp_array *mp_array_copy(mp_array *a);
MP_EXTERN mp_array *mp_array_synchronized(mp_array *raw, mp_lock *lock);

MP_END_DECLS

#endif /* LIBMP_SHAREDCTYPES_H */
