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
 *   ShareableList([1, 2.5, 'a', b'b', True, None]) mp_shareable_list_new(MP_LIST(MP_I64(1),
 *                                                     MP_FLOAT(2.5), MP_STR("a"), ...), NULL)
 *   ShareableList(name='x')                        mp_shareable_list_attach("x")
 *   sl[i], sl[i] = v, len(sl)                      mp_shareable_list_get / _set / _len
 *   sl.index(v), sl.count(v)                       mp_shareable_list_index / _count
 *   sl.shm                                         mp_shareable_list_shm(sl)
 *   with SharedMemoryManager() as smm:             mp_shm_manager *m = mp_shm_manager_new();
 *       smm.SharedMemory(size)                     mp_shm_manager_shared_memory(m, size)
 *       smm.ShareableList(seq)                     mp_shm_manager_shareable_list(m, seq)
 *   (leaving the with block: shutdown)             mp_shm_manager_shutdown(m) / _free(m)
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
#include "val.h"

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
 * a generated name ("mp_", the family root's pid in hex, "_" and 12 hex
 * digits) when .name is NULL; the
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

/*
 * mp_cleanup_stale: remove what libmp families that are entirely dead left
 * behind: the tracked shared memory segments and the socket files (a
 * Listener's path, a forkserver's rendezvous) listed in their registries
 * under /dev/shm/libmp-UID, then the registries.  A family is dead when no
 * process holds its registry open (its members and its resource tracker all
 * do, with a shared flock), so a live family is never touched, whatever its
 * root's state; a name is removed only while it is still the file that was
 * recorded.  Normally the resource tracker cleans up when a family ends
 * (also after kill -9 of the process group); this call is for what survives
 * a kill of every process (a cgroup kill, an OOM kill of the tracker).
 * Every new resource tracker runs it once, in the background; the program
 * mp-cleanup-stale runs it from the shell.
 *
 * Returns the number of dead families cleaned (0 when none), -EPERM if the
 * registry directory is not the caller's own and private, or another
 * -errno.  Thread-safe and fork-safe; concurrent callers share the work.
 */
MP_EXTERN int mp_cleanup_stale(void);
/* ==== ShareableList ====================================================== */

typedef struct mp_shareable_list mp_shareable_list;

/*
 * mp_shareable_list_new: a fixed-length list of values in one new shared
 * memory segment (Python's ShareableList(sequence, name=name)), laid out
 * exactly as Python lays it out, so that a Python program can attach to
 * it with ShareableList(name=...) and the reverse.
 *
 * seq   a list or tuple (mp_val, val.h) of None, bool, int, float, str and
 *       bytes items (copied).  A str or bytes item gets room for its
 *       length in bytes rounded up to the next multiple of 8 beyond it
 *       (Python counts a str's characters: the same for ASCII).
 * name  the segment's name, or NULL for a generated one.
 *
 * The segment is created as mp_shared_memory_new(.create = true) does
 * (tracked).  Returns the list, owned by the caller (mp_shareable_list_free
 * closes it; mp_shareable_list_unlink removes the name), or NULL with
 * mp_last_error(): MP_EINVAL for seq not a list or tuple or holding
 * another type (Python's KeyError/TypeError); the errors of
 * mp_shared_memory_new (-EEXIST, ...).
 *
 * mp_shareable_list_attach: attach to an existing list by name (Python's
 * ShareableList(name=...)).  NULL with MP_EINVAL for name NULL, -ENOENT,
 * or -EPROTO when the segment does not hold a valid list (offsets outside
 * it).  Both are fork-safe; the object lives in the arena (pass it to
 * children under every start method).  Like Python's, the list has no
 * lock: concurrent writers of one item must synchronise.
 */
MP_EXTERN mp_shareable_list *mp_shareable_list_new(const mp_val *seq, const char *name);
MP_EXTERN mp_shareable_list *mp_shareable_list_attach(const char *name);

/* mp_shareable_list_len: the number of items, or MP_EINVAL. */
MP_EXTERN ssize_t mp_shareable_list_len(const mp_shareable_list *l);

/*
 * mp_shareable_list_get: item i (negative counts from the end) as a new
 * mp_val in *out, owned by the caller (mp_val_free).  str and bytes items
 * lose their trailing NUL bytes, as in Python.  Returns 0; MP_EINVAL for
 * an invalid l, out NULL or i out of range (Python's IndexError); -EPROTO
 * for an item whose format or code is not one Python writes; -ENOMEM.
 *
 * mp_shareable_list_set: store v as item i (Python's sl[i] = v).  Any
 * storable type may replace any other; a str or bytes must fit in the
 * item's room (else MP_EINVAL, Python's ValueError 'exceeds available
 * storage').  Returns 0 or MP_EINVAL (also for an unstorable v).
 */
MP_EXTERN int mp_shareable_list_get(mp_shareable_list *l, int64_t i, mp_val **out);
MP_EXTERN int mp_shareable_list_set(mp_shareable_list *l, int64_t i, const mp_val *v);

/*
 * mp_shareable_list_index: the first position of an item equal to v
 * (mp_val_eq) in *index (may be NULL): 0, or -ENOENT (Python's
 * ValueError).  mp_shareable_list_count: how many items equal v.  Both
 * return MP_EINVAL for an invalid l or v NULL.
 */
MP_EXTERN int mp_shareable_list_index(mp_shareable_list *l, const mp_val *v, int64_t *index);
MP_EXTERN ssize_t mp_shareable_list_count(mp_shareable_list *l, const mp_val *v);

/* mp_shareable_list_name: the segment's name ("" if invalid);
 * mp_shareable_list_shm: its mp_shared_memory (Python's sl.shm), owned by
 * the list (NULL if invalid). */
MP_EXTERN const char *mp_shareable_list_name(const mp_shareable_list *l);
MP_EXTERN mp_shared_memory *mp_shareable_list_shm(const mp_shareable_list *l);

/* mp_shareable_list_unlink: remove the segment's name (sl.shm.unlink()):
 * 0, -ENOENT, MP_EINVAL.  mp_shareable_list_free: close it in this process
 * and release the object (no unlink); NULL is a no-op. */
MP_EXTERN int mp_shareable_list_unlink(mp_shareable_list *l);
MP_EXTERN void mp_shareable_list_free(mp_shareable_list *l);

/* ==== SharedMemoryManager ================================================ */

typedef struct mp_shm_manager mp_shm_manager;

/*
 * mp_shm_manager_new: a SharedMemoryManager, started (Python's
 * SharedMemoryManager() then start()).  It remembers every segment it
 * hands out (in the shared arena: any process of the family may use it)
 * and unlinks them all at mp_shm_manager_shutdown.  If the program is
 * killed before that, its segments are tracked segments: the tracker
 * unlinks them when the last process of the family has ended (see the
 * top of this header).  Returns the manager, owned by the caller
 * (mp_shm_manager_free), or NULL with mp_last_error() (-ENOMEM).
 *
 * mp_shm_manager_shared_memory / mp_shm_manager_shareable_list: a new
 * segment of size bytes / a new list of seq, under a generated name
 * (Python's smm.SharedMemory(size), smm.ShareableList(seq)); the object
 * is the caller's (free it), the segment the manager's.  NULL with
 * MP_EINVAL after shutdown, or the errors of mp_shared_memory_new and
 * mp_shareable_list_new.
 *
 * mp_shm_manager_shutdown: unlink every segment handed out (Python's
 * shutdown(), leaving the with block); later calls hand out nothing.
 * Returns 0 (again on later calls) or MP_EINVAL.  Mappings that exist stay
 * valid until closed.  mp_shm_manager_free: shutdown, then release the
 * manager; NULL is a no-op.
 */
MP_EXTERN mp_shm_manager *mp_shm_manager_new(void);
MP_EXTERN mp_shared_memory *mp_shm_manager_shared_memory(mp_shm_manager *m, size_t size);
MP_EXTERN mp_shareable_list *mp_shm_manager_shareable_list(mp_shm_manager *m,
                                                           const mp_val *seq);
MP_EXTERN int mp_shm_manager_shutdown(mp_shm_manager *m);
MP_EXTERN void mp_shm_manager_free(mp_shm_manager *m);

MP_END_DECLS

#endif /* LIBMP_SHARED_MEMORY_H */
