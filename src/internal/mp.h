/*
 * internal/mp.h: helpers shared by libmp's sources (mp__ prefix).
 *
 * Nothing here is public.  Every source file includes this header first.
 * The symbols are hidden by the build; tests reach them by linking the
 * static library.
 */
#ifndef LIBMP_INTERNAL_MP_H
#define LIBMP_INTERNAL_MP_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <libmp.h>

#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#ifdef MP_COVERAGE
/* Coverage builds (meson -Db_coverage=true): a process that ends with
 * _exit skips the exit handler that writes gcov's counters, so every _exit
 * in the library writes them first.  Defined after <unistd.h>, whose
 * declaration of _exit it would otherwise rewrite. */
void __gcov_dump(void);
#define _exit(code) (__gcov_dump(), _exit(code))
#endif

#define MP__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MP__LIKELY(x) __builtin_expect(!!(x), 1)
#define MP__CACHELINE 64
#define MP__ALIGNED(n) __attribute__((aligned(n)))

/* ---- errors (errors.c) ------------------------------------------------ */

/* Record code as the thread's mp_last_error() and return NULL. */
void *mp__fail_null(int code);

/* The name of errno value e ("EAGAIN") and of signal sig, without its SIG
 * ("TERM"); NULL for a value without one.  Static text. */
const char *mp__errno_name(int e);
const char *mp__signal_abbrev(int sig);

/* -errno of the last failed system call, never 0. */
static inline int mp__errno(void)
{
    return errno > 0 ? -errno : -EIO;
}

/* ---- options structs (version.c) -------------------------------------- */

/*
 * mp__opts_load: the caller's options *src copied into *dst (cur bytes,
 * zeroed first) by the rule of common.h: src->struct_size bytes are the
 * caller's, 0 stands for base (the 0.1 layout); bytes the library does not
 * know must be zero.  Returns dst, or NULL with *err = 0 for src NULL (the
 * function's own NULL rule applies) or *err = MP_EINVAL for a bad size.
 */
const void *mp__opts_load(void *dst, size_t cur, size_t base, const void *src, int *err);

/* The size of an options struct in libmp 0.1: up to the end of its field
 * last.  When a field is appended, last stays the 0.1 one. */
#define MP__OPTS_V1(type, last) (offsetof(type, last) + sizeof(((type *)0)->last))

/* o = MP__OPTS_LOAD(local, o, last, &err): o then points at local. */
#define MP__OPTS_LOAD(local, src, last, err)                                               \
    ((const __typeof__(local) *)mp__opts_load(&(local), sizeof(local),                     \
                                              MP__OPTS_V1(__typeof__(local), last), (src), \
                                              (err)))

/* ---- time and deadlines (time.c) -------------------------------------- */

/*
 * A deadline is a timeout turned into an absolute CLOCK_MONOTONIC time once,
 * at the start of a blocking call, so that retries after EINTR or spurious
 * wake-ups never stretch the total wait.
 */
typedef struct mp__deadline {
    struct timespec at; /* absolute CLOCK_MONOTONIC time */
    bool forever;       /* MP_FOREVER or INFINITY */
    bool nowait;        /* timeout == 0: try once */
} mp__deadline;

/* Validate timeout (see common.h) and start the clock: 0 or MP_EINVAL. */
int mp__deadline_init(mp__deadline *d, double timeout);

/* True once the deadline has passed (never for a forever deadline). */
bool mp__deadline_expired(const mp__deadline *d);

/*
 * Time left, as a relative timespec in *left: 0 if time is left, MP_ETIMEDOUT
 * if the deadline has passed.  Not to be called on a forever deadline.
 */
int mp__deadline_left(const mp__deadline *d, struct timespec *left);

/* Milliseconds left for poll(2): -1 forever, 0 expired, rounded up. */
int mp__deadline_poll_ms(const mp__deadline *d);

/* CLOCK_MONOTONIC now, in seconds and in nanoseconds. */
double mp__now(void);
uint64_t mp__now_ns(void);

/* ---- futex (futex.c) -------------------------------------------------- */

/*
 * Shared (never FUTEX_PRIVATE: the words live in memory shared between
 * processes) futex wait and wake.
 *
 * mp__futex_wait sleeps while *word == expected, until woken or d expires
 * (d NULL: forever).  Returns 0 on a wake-up or when *word already differed
 * (callers re-check their condition: wake-ups may be spurious), MP_ETIMEDOUT
 * when the deadline passed, and -EINTR when a signal interrupted the sleep
 * (callers that do not give control back on signals simply loop).
 */
int mp__futex_wait(uint32_t *word, uint32_t expected, const mp__deadline *d);

/* mp__futex_wait that tells a wake-up from a word that already differed:
 * 1 when the thread slept and was woken, else as mp__futex_wait. */
int mp__futex_sleep(uint32_t *word, uint32_t expected, const mp__deadline *d);

/* Wake at most n waiters (INT32_MAX for all); returns how many woke. */
int mp__futex_wake(uint32_t *word, int n);

/* One pause of a spin-wait loop. */
static inline void mp__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/*
 * Poll *word for up to spin_ns nanoseconds while it equals expected, before
 * a caller commits to a futex sleep: a wake-up served from a spin costs no
 * system call on either side.  Returns true when the word changed.  Returns
 * false at once, without polling, when spin_ns is 0 or the machine is
 * oversubscribed (mp__cpu_busy, which includes a machine with one CPU):
 * there spinning only delays the process that would change the word.
 */
bool mp__spin_while_equal(const uint32_t *word, uint32_t expected, uint64_t spin_ns);

/*
 * True when runnable tasks outnumber the cpus this process may use (a
 * cached answer, refreshed every 10 ms): a waiter then sleeps without
 * polling first.  mp__cpu_busy_at takes the caller's mp__now_ns().
 */
bool mp__cpu_busy(void);
bool mp__cpu_busy_at(uint64_t now);

/* mp__cpu_busy's cached answer, shared by the whole family in the arena's
 * header (NULL before the arena exists: then each process keeps its own). */
typedef struct mp__busy_state {
    _Atomic uint64_t checked_at; /* mp__now_ns() of the last sample */
    _Atomic uint64_t seen_at;    /* the last sample that said busy */
    _Atomic int busy;
} mp__busy_state;
mp__busy_state *mp__heap_busy_state(void);

/* Test hook: mode 1 makes mp__cpu_busy always true in this process (and
 * its forked children), 0 always false, -1 (the default) measures. */
void mp__cpu_busy_force(int mode);

/* ---- robust process-shared mutexes (futex.c) --------------------------- */

/* Initialise a PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_ROBUST mutex. */
int mp__robust_mutex_init(pthread_mutex_t *m);

/*
 * Lock a robust mutex for libmp's own bookkeeping.  If the previous owner
 * died holding it, the mutex is made consistent and 1 is returned so the
 * caller can repair its data; 0 otherwise.  Never fails for a valid mutex.
 */
int mp__robust_lock(pthread_mutex_t *m);
void mp__robust_unlock(pthread_mutex_t *m);

/* Try to lock a robust mutex, taking it over (made consistent) from an
 * owner that died: 0 when the caller holds it now, else EBUSY. */
int mp__robust_trylock(pthread_mutex_t *m);

/* ---- the shared arena (heap.c) ----------------------------------------- */

/*
 * The arena is one memfd, sized once to a large sparse length and mapped
 * MAP_SHARED at the same address in every process of the family.  Memory is
 * committed page by page as it is touched and given back with
 * FALLOC_FL_PUNCH_HOLE when large blocks are freed.  See docs/design.md.
 */

/*
 * Create the arena in this process if the family has none yet.  Must run
 * before the first child is started (mp_process_start calls it), so that
 * every child inherits it.  Thread-safe; 0 or a negative code.
 */
int mp__heap_init(void);

/* Map an arena inherited by a spawned child: fd, address and size. */
int mp__heap_attach(int fd, void *addr, size_t size);

/* The arena's fd, address and size in this process (fd -1: no arena). */
void mp__heap_info(int *fd, void **addr, size_t *size);

/* The pid of the process that made the arena (the root of the family):
 * generated shared-memory names carry it, so that tests and people can tell
 * one family's names from another's.  Makes the arena if there is none. */
pid_t mp__heap_creator(void);

/*
 * Allocate size bytes of zeroed shared memory.  Blocks of 64 bytes or more
 * are 64-byte aligned (no false sharing between objects), smaller ones are
 * aligned to 16.  Returns NULL with errno set (ENOMEM) on failure.  Usable
 * from any process of the family, concurrently.
 */
void *mp__alloc(size_t size);

/* Free a block from mp__alloc; 0, or MP_EINVAL for a pointer that is not a
 * live block of the arena (including a double free that can be seen). */
int mp__free(void *p);
/* Give the calling thread's cached small blocks back to the arena (a
 * process about to end calls it; a thread's exit does it by itself). */
void mp__heap_cache_flush(void);
/* Punch every kept mp_shared_alloc_uninit block and make it free space. */
void mp__heap_trim(void);

/* True when p points into the arena. */
bool mp__in_arena(const void *p);

/* Usable size of a block from mp__alloc, 0 if p is not one. */
size_t mp__alloc_size(const void *p);

/*
 * Family-wide singletons (the shared-memory tracker, the forkserver, ...):
 * a few pointers in the arena header.  mp__heap_root returns the object in
 * slot, making it with make() (an mp__obj_new'd object) on first use if make
 * is not NULL; racing makers agree on one object.  NULL on failure.
 */
enum mp__root {
    MP__ROOT_SHM_TRACKER,
    MP__ROOT_FORKSERVER,
    MP__ROOT_MANAGER,
    MP__ROOT_LOGGER,
    MP__ROOT_LIFE_TOKENS, /* lifetoken.c: the owners of Locks */
    MP__ROOT_CONTEXT,
    MP__ROOT_MODULES, /* fnref.c: paths of the shared objects functions are in */
    MP__ROOT_COUNT = 16
};
void *mp__heap_root(enum mp__root slot, void *(*make)(void));

/* A fresh id, unique in the family. */
uint64_t mp__heap_next_id(void);

/* ---- shared objects ----------------------------------------------------- */

/*
 * Every public object lives in the arena and starts with this header.  The
 * magic names the type; freeing an object overwrites it, so a later call
 * with the stale pointer fails with MP_EINVAL instead of touching garbage
 * (as long as the block was not reused for an object of the same type).
 */
typedef struct mp__obj {
    uint32_t magic;
    uint32_t flags;
    uint64_t id; /* unique in the family, never reused */
} mp__obj;

#define MP__MAGIC(a, b, c, d) \
    ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#define MP__MAGIC_DEAD MP__MAGIC('d', 'e', 'a', 'd')

/* Allocate a zeroed object of size bytes whose header says magic. */
void *mp__obj_new(size_t size, uint32_t magic);

/* mp__heap_init, then mp__obj_new: the object, or NULL with the calling
 * thread's last error set (the arena's error, or -ENOMEM). */
void *mp__obj_create(size_t size, uint32_t magic);

/* Where objects may be: [mp__arena_lo, mp__arena_lo + mp__arena_len), set
 * once when this process maps the arena (0 and 0 before: nothing is). */
extern uintptr_t mp__arena_lo, mp__arena_len;

/*
 * 0 if p is a live object of type magic, MP_EINVAL otherwise (NULL too).
 * Inline, as it runs on every call of every object: two bounds loads that
 * never change, the alignment, and the magic (which is on the object's first
 * cache line: keep what other processes write often off that line).
 */
static inline int mp__obj_check(const void *p, uint32_t magic)
{
    uintptr_t off = (uintptr_t)p - mp__arena_lo;
    if (MP__UNLIKELY(off >= mp__arena_len || (off & 15)))
        return MP_EINVAL;
    const mp__obj *o = p;
    return __atomic_load_n(&o->magic, __ATOMIC_ACQUIRE) == magic ? 0 : MP_EINVAL;
}

/* Mark the object dead and give its memory back. */
void mp__obj_free(void *p);

/* How many finalizers of this process are tied to an object (util.c):
 * while 0, freeing an object or a shared block looks for none. */
extern _Atomic size_t mp__obj_finalizers;

/* Set by a manager's server that hosts a Pool: this daemonic process may
 * start children (process.c). */
extern bool mp__daemon_children_ok;

/* ---- function pointers across start methods (fnref.c) ----------------- */

/*
 * A function pointer in a form that is valid in every process of the family:
 * the loaded object (hash of its path) and the offset in it.  Store this in
 * shared objects instead of a raw pointer whenever another process may call
 * the function (barrier actions, pool functions, process targets).
 */
typedef struct mp__fnref {
    uint64_t module; /* 0 with offset 0: no function */
    uint64_t offset;
} mp__fnref;

/* Encode fn (NULL allowed: the empty reference); MP_EINVAL if fn is in no
 * loaded module. */
int mp__fnref_make(mp__fnref *ref, void (*fn)(void));

/* The function in this process, or NULL (empty reference, or the module is
 * not loaded here). */
void (*mp__fnref_resolve(const mp__fnref *ref))(void);

/* True when ref names a function of the main program. */
bool mp__fnref_in_main(const mp__fnref *ref);

/*
 * The path of the shared object that contains addr, as the dynamic linker
 * names it, copied into buf (cap bytes): 0, or MP_EINVAL when addr is in
 * the main program or in nothing loaded (-ENAMETOOLONG if it does not fit).
 */
int mp__module_path(const void *addr, char *buf, size_t cap);

/*
 * In a child of the libmp-spawn helper: the main program is the helper, so
 * references to the main program resolve to nothing, and a module that is
 * not loaded yet is loaded (dlopen) from the path its creator recorded.
 */
void mp__fnref_helper_mode(void);

/* ---- descriptors to hand to spawned children (handles.c) --------------- */

/*
 * Each process keeps a table from fd number to the shared object that owns
 * it.  A Connection, Listener or other fd-holding object registers its fds
 * here; spawn and forkserver pass every registered fd to the child at the
 * same number, so the number stored in the shared object stays right there.
 * Under fork the table is inherited with the fds.
 */
int mp__fd_register(int fd, const void *owner);
void mp__fd_unregister(int fd);

/* True when fd is open in this process on behalf of owner. */
bool mp__fd_owned(int fd, const void *owner);

/* Call fn for every registered fd (used by the start methods). */
void mp__fd_foreach(void (*fn)(int fd, const void *owner, void *ctx), void *ctx);

#endif /* LIBMP_INTERNAL_MP_H */
