/*
 * libmp/shared_memory.h: named shared memory, as
 * multiprocessing.shared_memory.SharedMemory.
 *
 *   Python                                         C
 *   SharedMemory(create=True, size=n)              mp_shared_memory_new(.create = true, .size = n)
 *   SharedMemory(name='x', create=True, size=n)    mp_shared_memory_new(.name = "x", .create = true, .size = n)
 *   SharedMemory(name='x')                         mp_shared_memory_new(.name = "x")
 *   SharedMemory(..., track=False)  (3.13)         mp_shared_memory_new(..., .notrack = true)
 *   shm.buf, shm.size, shm.name                    mp_shared_memory_buf / _size / _name
 *   shm.close()                                    mp_shared_memory_close(shm)
 *   shm.unlink()                                   mp_shared_memory_unlink(shm)
 *
 * A segment is a POSIX shared memory object (/dev/shm/NAME), created with
 * mode 0600, O_EXCL, O_CLOEXEC and O_NOFOLLOW, and reachable by name from
 * any program, libmp or not (Python's SharedMemory(name=...) included).
 * For memory shared only inside the program family, mp_shared_alloc
 * (heap.h) is simpler and leaves no name behind.
 *
 * The mp_shared_memory object lives in the shared arena, so the pointer can
 * be passed to children under every start method; each process maps the
 * segment the first time it asks for mp_shared_memory_buf (a fork child
 * inherits the parent's mapping).
 *
 * Tracking: a segment this program creates is tracked unless .notrack is
 * set.  A small tracker process, started on the first tracked creation,
 * unlinks every tracked segment still linked when the last process of the
 * family has ended, however it ended (SIGKILL included), and says so on
 * standard error, as Python's resource_tracker does.  Only creation is
 * tracked: attaching to a segment never registers it, so a program that
 * attaches to someone else's segment never unlinks it (Python before 3.13
 * did, which destroyed segments other programs still used).
 *
 * C++ has no compound literals (before C++20, see common.h): fill a
 * zero-initialised struct and call the _opts function, e.g.
 *     mp_shared_memory_options o = {};
 *     o.create = true; o.size = 4096;
 *     ... = mp_shared_memory_new_opts(&o);
 */
#ifndef LIBMP_SHARED_MEMORY_H
#define LIBMP_SHARED_MEMORY_H

#include <stdbool.h>

#include "common.h"

MP_BEGIN_DECLS

typedef struct mp_shared_memory mp_shared_memory;

/* The longest name accepted, without the leading '/'. */
#define MP_SHM_NAME_MAX 255

typedef struct mp_shared_memory_options {
    size_t struct_size; /* sizeof: the macros set it; 0 is the 0.1 layout (common.h) */
    const char *name;   /* with or without a leading '/'; NULL: generated */
    bool create;        /* create a new segment (fails if the name exists) */
    size_t size;        /* bytes, for create (must be > 0); ignored on attach */
    bool notrack;       /* do not unlink it when the program ends */
    mp_context *ctx;    /* unused: kept for symmetry with other constructors */
} mp_shared_memory_options;

/*
 * mp_shared_memory_new: create or attach to a named segment.
 *
 * With .create, a new segment of .size bytes is made under .name, or under
 * a generated name ("mp_" and 16 hex digits) when .name is NULL; the
 * segment is zero-filled.  Without .create, the existing segment .name is
 * attached and its size is the segment's own.
 *
 * Returns the object (owned by the caller: mp_shared_memory_free), or NULL
 * with mp_last_error(): MP_EINVAL for a name that is empty, "." or "..",
 * contains '/' past the first character, or is longer than
 * MP_SHM_NAME_MAX, for .create with .size 0, or for no name without
 * .create; -EEXIST when creating a name that exists; -ENOENT when attaching
 * to a name that does not; other -errno from shm_open, ftruncate or mmap.
 * Fork-safe.
 */
#define mp_shared_memory_new(...) \
    mp_shared_memory_new_opts(MP__OPTS(mp_shared_memory_options, __VA_ARGS__))
MP_EXTERN mp_shared_memory *mp_shared_memory_new_opts(const mp_shared_memory_options *opts);

/*
 * mp_shared_memory_buf: the segment's memory in the calling process
 * (Python's buf), mapping it on first use in this process.
 *
 * Returns the address, valid until mp_shared_memory_close or
 * mp_shared_memory_free in this process; NULL with mp_last_error() set:
 * MP_EINVAL for an invalid or closed object, -ENOENT when this process has
 * not mapped it yet and the segment has been unlinked meanwhile, other
 * -errno from shm_open or mmap.  Thread-safe.
 */
MP_EXTERN void *mp_shared_memory_buf(mp_shared_memory *shm);

/* mp_shared_memory_size: the segment's size in bytes; 0 if shm is invalid. */
MP_EXTERN size_t mp_shared_memory_size(const mp_shared_memory *shm);

/*
 * mp_shared_memory_name: the name, without the leading '/', as Python
 * reports it.  Owned by the object; "" if shm is invalid.
 */
MP_EXTERN const char *mp_shared_memory_name(const mp_shared_memory *shm);

/*
 * mp_shared_memory_close: unmap the segment in the calling process only
 * (Python's close()).  Other processes keep their mappings; the segment
 * stays linked.  Calling it again, or in a process that never mapped it, is
 * harmless.  Returns 0, or MP_EINVAL for an invalid object.
 */
MP_EXTERN int mp_shared_memory_close(mp_shared_memory *shm);

/*
 * mp_shared_memory_unlink: remove the name (Python's unlink()); mappings
 * that exist stay valid until closed, and the memory goes away with the
 * last of them.  Call it once, from any process.  Returns 0; -ENOENT if the
 * name was already removed; MP_EINVAL for an invalid object.  The segment
 * is no longer tracked afterwards.
 */
MP_EXTERN int mp_shared_memory_unlink(mp_shared_memory *shm);

/*
 * mp_shared_memory_free: close the segment in this process and release the
 * object.  It does not unlink: a tracked segment that nobody unlinks is
 * unlinked when the program family ends.  NULL is a no-op.
 */
MP_EXTERN void mp_shared_memory_free(mp_shared_memory *shm);

MP_END_DECLS

#endif /* LIBMP_SHARED_MEMORY_H */
