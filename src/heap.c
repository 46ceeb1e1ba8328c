/*
 * heap.c: the shared arena every libmp object lives in (Python's heap.py).
 *
 * The arena is a single memfd, ftruncate'd once to a large sparse size and
 * mapped MAP_SHARED at a fixed address before the first child exists.  Every
 * process of the family sees it at the same address, so a pointer into it
 * is valid everywhere.  Nothing is ever created in /dev/shm: the memfd goes
 * away with the last process that has it open or mapped, whatever way they
 * die.
 *
 * Layout: the arena is cut into 64 KiB runs.  A table with one descriptor
 * per run follows the header.  Small blocks (up to 32 KiB) come from
 * per-class free lists and runs carved on demand; large blocks are whole
 * runs, taken first-fit from a list of free extents (coalesced through the
 * run table) or from the never-used top.  Freed extents are hole-punched so
 * their memory goes back to the system.
 *
 * All shared bookkeeping is under one robust process-shared mutex.  The
 * writes inside it are ordered so that a process killed in the middle leaks
 * at most the block it was handling.  Small blocks up to 1 KiB go through
 * per-thread caches that reach the lock only once per batch (see "per-thread
 * caches" below for what a death leaks then).  Freed large blocks of
 * mp_shared_alloc_uninit are kept in slots changed by compare-and-swap,
 * without the lock (see DIRTY_SLOTS).
 */
#include "internal/mp.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RUN_SHIFT 16
#define RUN_SIZE ((size_t)1 << RUN_SHIFT)
#define PAGE 4096u
#define ARENA_MAGIC 0x6c69626d70617265ull /* "libmpare" */

/* RUN_DIRTY: a freed large block kept whole, unzeroed, in arena->dirty. */
enum run_kind { RUN_UNUSED = 0, RUN_SMALL, RUN_LARGE, RUN_LARGE_TAIL, RUN_FREE, RUN_DIRTY };

static const uint32_t class_size[] = {
    16,   32,   48,   64,   128,  192,  256,  384,   512,   768,
    1024, 1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384, 32768,
};
#define NCLASS (sizeof class_size / sizeof class_size[0])
#define SMALL_MAX 32768u

/*
 * Freed large blocks from mp_shared_alloc_uninit are kept unpunched in
 * slots, so that a large message handed off through a queue reuses mapped
 * pages instead of a hole punch and page faults per message, and takes no
 * lock.  DIRTY_NEAR slots hold blocks of up to DIRTY_NEAR_MAX bytes, the
 * rest blocks of up to DIRTY_MAX: at most 64 x 1 MiB + 16 x 4 MiB
 * (128 MiB) resident.  A slot is one word, the first run | len << 32 (0:
 * empty), changed only by compare-and-swap, so a process killed at any
 * point leaves every slot either empty or holding a whole kept block.
 */
#define DIRTY_SLOTS 80
#define DIRTY_NEAR 64
#define DIRTY_NEAR_MAX ((size_t)1 << 20)
#define LARGE_REUSE 1 /* the class field of a RUN_LARGE from ..._uninit */
#define DIRTY_MAX ((size_t)4 << 20)

/* A free small block: its first words while it sits on a free list. */
struct free_block {
    struct free_block *next;
    uintptr_t tag; /* FREE_TAG ^ address: how a double free is seen */
};
#define FREE_TAG ((uintptr_t)0x5a17f4eeb10c5a17ull)

/* A free extent of runs: its header lives in its first page. */
struct free_extent {
    struct free_extent *next;
};

struct size_class {
    struct free_block *free;
    char *carve;
    char *carve_end;
};

struct arena {
    uint64_t magic;
    uint64_t size;
    uint64_t nruns;
    uint64_t first_run; /* first run usable for data */
    int64_t creator;    /* pid of the process that made the arena */
    pthread_mutex_t lock MP__ALIGNED(MP__CACHELINE);
    uint64_t top; /* first run never handed out */
    struct free_extent *extents;
    struct size_class cls[NCLASS];
    /* RUN_DIRTY blocks (first run | len << 32), taken and filled without
     * the lock; a line of their own, away from the lock's. */
    _Atomic uint64_t dirty[DIRTY_SLOTS] MP__ALIGNED(MP__CACHELINE);
    _Atomic uint64_t next_id MP__ALIGNED(MP__CACHELINE);
    _Atomic(void *) roots[MP__ROOT_COUNT];
    mp__busy_state busy MP__ALIGNED(MP__CACHELINE); /* futex.c's mp__cpu_busy */
    uint64_t desc[]; /* one per run: kind | class << 8 | len << 32 */
};

static struct arena *A;

uintptr_t mp__arena_lo, mp__arena_len;
static int arena_fd = -1;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_error;

#if defined(__SANITIZE_THREAD__)
#define MP__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MP__TSAN 1
#endif
#endif

#ifdef MP__TSAN
/* ThreadSanitizer keeps its shadow and metadata in most of the address
 * space and kills a program that maps outside its application ranges; the
 * low range (below 0x008000000000, 512 GiB) is one, so a TSan build puts
 * the arena there.  A TSan build and a normal build never share an arena. */
static const uintptr_t arena_addrs[] = {
    0x001000000000ull,
    0x002000000000ull,
    0x004000000000ull,
};
#else
/* Fixed addresses tried in turn; far from where the kernel puts PIE images,
 * the heap, shared libraries and stacks, and outside ASan's shadow. */
static const uintptr_t arena_addrs[] = {
    0x3f0000000000ull,
    0x2f0000000000ull,
    0x1f0000000000ull,
};
#endif

static inline uint64_t desc_make(enum run_kind k, unsigned cls, uint64_t len)
{
    return (uint64_t)k | (uint64_t)cls << 8 | len << 32;
}
static inline enum run_kind desc_kind(uint64_t d)
{
    return (enum run_kind)(d & 0xff);
}
static inline unsigned desc_class(uint64_t d)
{
    return (unsigned)(d >> 8 & 0xff);
}
static inline uint64_t desc_len(uint64_t d)
{
    return d >> 32;
}

/* Descriptors of large blocks change without the lock (the kept blocks
 * below), so every access is atomic; relaxed costs a plain move. */
static inline uint64_t desc_get(uint64_t run)
{
    return __atomic_load_n(&A->desc[run], __ATOMIC_RELAXED);
}
static inline void desc_set(uint64_t run, uint64_t d)
{
    __atomic_store_n(&A->desc[run], d, __ATOMIC_RELAXED);
}

static inline char *run_addr(uint64_t run)
{
    return (char *)A + (run << RUN_SHIFT);
}
/* Publish where objects may live, for mp__obj_check (internal/mp.h). */
static void set_arena(struct arena *a)
{
    uintptr_t lo = (uintptr_t)a + ((uintptr_t)a->first_run << RUN_SHIFT);
    mp__arena_len = (uintptr_t)a + a->size - lo;
    mp__arena_lo = lo;
    __atomic_store_n(&A, a, __ATOMIC_RELEASE);
}

mp__busy_state *mp__heap_busy_state(void)
{
    struct arena *a = __atomic_load_n(&A, __ATOMIC_ACQUIRE);
    return a != NULL ? &a->busy : NULL;
}

static inline uint64_t run_of(const void *p)
{
    return (uint64_t)((const char *)p - (const char *)A) >> RUN_SHIFT;
}

static size_t arena_size_wanted(void)
{
    const char *env = getenv("MP_ARENA_SIZE");
    size_t gib = MP_DEFAULT_ARENA_GIB;
    if (env != NULL && *env != '\0') {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);
        if (*end == '\0' && v >= 1 && v <= 4096)
            gib = (size_t)v;
    }
    return gib << 30;
}

static void *map_at(int fd, uintptr_t addr, size_t size)
{
    void *p = mmap((void *)addr, size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_NORESERVE | (addr ? MAP_FIXED_NOREPLACE : 0), fd, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (addr != 0 && (uintptr_t)p != addr) {
        /* Old kernels (and valgrind) ignore MAP_FIXED_NOREPLACE and treat
         * it as a hint: placed elsewhere, because the address is taken. */
        munmap(p, size);
        errno = EEXIST;
        return NULL;
    }
    return p;
}

static void arena_format(struct arena *a, size_t size)
{
    a->size = size;
    a->nruns = size >> RUN_SHIFT;
    size_t meta = sizeof *a + a->nruns * sizeof(uint64_t);
    a->first_run = (meta + RUN_SIZE - 1) >> RUN_SHIFT;
    a->top = a->first_run;
    atomic_store(&a->next_id, 1);
    a->creator = getpid();
    mp__robust_mutex_init(&a->lock);
    a->magic = ARENA_MAGIC;
}

static void heap_create(void)
{
    if (A != NULL)
        return; /* attached (mp__heap_attach): there is one already */
    size_t size = arena_size_wanted();
    int fd = memfd_create("libmp-arena", MFD_CLOEXEC);
    if (fd < 0) {
        init_error = mp__errno();
        return;
    }
    /* Keep the arena's fd out of the low numbers a program expects to own. */
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 100);
    if (high >= 0) {
        close(fd);
        fd = high;
    }
    if (ftruncate(fd, (off_t)size) != 0) {
        init_error = mp__errno();
        close(fd);
        return;
    }
    void *p = NULL;
    for (size_t i = 0; i < sizeof arena_addrs / sizeof arena_addrs[0] && !p; i++)
        p = map_at(fd, arena_addrs[i], size);
    if (p == NULL)
        p = map_at(fd, 0, size);
    if (p == NULL) {
        init_error = mp__errno();
        close(fd);
        return;
    }
    arena_format(p, size);
    arena_fd = fd;
    set_arena(p);
}

int mp__heap_init(void)
{
    if (MP__LIKELY(A != NULL))
        return 0;
    pthread_once(&init_once, heap_create);
    return A != NULL ? 0 : (init_error ? init_error : -ENOMEM);
}

int mp__heap_attach(int fd, void *addr, size_t size)
{
    if (A != NULL)
        return (void *)A == addr ? 0 : MP_EINVAL;
    void *p = map_at(fd, (uintptr_t)addr, size);
    if (p == NULL)
        return errno == EEXIST ? -EADDRINUSE : mp__errno();
    if (((struct arena *)p)->magic != ARENA_MAGIC) {
        munmap(p, size);
        return MP_EINVAL;
    }
    arena_fd = fd;
    set_arena(p);
    pthread_once(&init_once, heap_create); /* mark done: never create one */
    return 0;
}

void mp__heap_info(int *fd, void **addr, size_t *size)
{
    if (fd)
        *fd = A ? arena_fd : -1;
    if (addr)
        *addr = A;
    if (size)
        *size = A ? A->size : 0;
}

pid_t mp__heap_creator(void)
{
    return mp__heap_init() == 0 ? (pid_t)A->creator : getpid();
}

bool mp__in_arena(const void *p)
{
    return (uintptr_t)p - mp__arena_lo < mp__arena_len;
}


uint64_t mp__heap_next_id(void)
{
    return atomic_fetch_add(&A->next_id, 1);
}

void *mp__heap_root(enum mp__root slot, void *(*make)(void))
{
    if (mp__heap_init() != 0)
        return NULL;
    void *p = atomic_load_explicit(&A->roots[slot], memory_order_acquire);
    if (p != NULL || make == NULL)
        return p;
    /* Several processes may race to make the root: one wins, the others
     * free what they made and use the winner's. */
    void *fresh = make();
    if (fresh == NULL)
        return NULL;
    void *expected = NULL;
    if (atomic_compare_exchange_strong(&A->roots[slot], &expected, fresh))
        return fresh;
    mp__obj_free(fresh);
    return expected;
}

/* ---- large extents (whole runs) ----------------------------------------- */

/*
 * The free extents are a singly linked list, so that every change is one
 * store and a process killed under the lock leaves it whole.  An extent's
 * descriptors are set before it is linked and cleared after it is
 * unlinked: a death in between leaves a free extent off the list (leaked
 * until a neighbour's free merges it: unlinking it then finds nothing).
 */
static void extent_unlink(struct free_extent *e)
{
    for (struct free_extent **pp = &A->extents; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            return;
        }
    }
}

/*
 * Record [run, run+len) as free, merged with free neighbours.  Invariant: a
 * free extent is zero but for the link in its first bytes, and only its
 * first and last descriptors are set; the top is all zero.
 */
static void extent_insert(uint64_t run, uint64_t len)
{
    if (run > A->first_run && desc_kind(desc_get(run - 1)) == RUN_FREE) {
        uint64_t plen = desc_len(desc_get(run - 1));
        uint64_t prun = run - plen;
        extent_unlink((struct free_extent *)run_addr(prun));
        desc_set(run - 1, 0);
        desc_set(prun, 0);
        run = prun;
        len += plen;
    }
    uint64_t next = run + len;
    if (next < A->top && desc_kind(desc_get(next)) == RUN_FREE) {
        uint64_t nlen = desc_len(desc_get(next));
        struct free_extent *ne = (struct free_extent *)run_addr(next);
        extent_unlink(ne);
        desc_set(next, 0);
        desc_set(next + nlen - 1, 0);
        memset(ne, 0, sizeof *ne);
        len += nlen;
    }
    struct free_extent *e = (struct free_extent *)run_addr(run);
    if (run + len == A->top) {
        /* Merging with the top keeps the free list short. */
        memset(e, 0, sizeof *e);
        A->top = run;
        return;
    }
    desc_set(run, desc_make(RUN_FREE, 0, len));
    desc_set(run + len - 1, desc_make(RUN_FREE, 0, len));
    e->next = A->extents;
    A->extents = e;
}

/* Take len runs; returns the first run or 0 when the arena is full. */
static uint64_t extent_take(uint64_t len)
{
    for (struct free_extent **pp = &A->extents; *pp != NULL; pp = &(*pp)->next) {
        struct free_extent *e = *pp;
        uint64_t run = run_of(e);
        uint64_t have = desc_len(desc_get(run));
        if (have < len)
            continue;
        *pp = e->next;
        desc_set(run + have - 1, 0);
        desc_set(run, 0);
        if (have > len)
            extent_insert(run + len, have - len);
        /* A free extent is all zero but for its first page (the link). */
        memset(e, 0, sizeof *e);
        return run;
    }
    if (A->top + len > A->nruns)
        return 0;
    uint64_t run = A->top;
    A->top += len;
    return run;
}

static void dirty_release_all(void);

static void *large_alloc_as(size_t size, unsigned how)
{
    uint64_t len = (size + RUN_SIZE - 1) >> RUN_SHIFT;
    uint64_t run = extent_take(len);
    if (run == 0) {
        /* Full: the kept blocks go back before giving up. */
        dirty_release_all();
        run = extent_take(len);
    }
    if (run == 0)
        return NULL;
    for (uint64_t i = 1; i < len; i++)
        desc_set(run + i, desc_make(RUN_LARGE_TAIL, 0, 0));
    desc_set(run, desc_make(RUN_LARGE, how, len));
    return run_addr(run);
}

static void *large_alloc(size_t size)
{
    return large_alloc_as(size, 0);
}

static void punch(void *p, size_t len)
{
    off_t off = (off_t)((char *)p - (char *)A);
#ifdef FALLOC_FL_PUNCH_HOLE
    if (fallocate(arena_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, (off_t)len) == 0)
        return;
#endif
    /* No hole punching: at least keep the zero invariant. */
    memset(p, 0, len);
}

/* Punch len runs from run and make them a free extent (under the lock). */
static void runs_release(uint64_t run, uint64_t len)
{
    for (uint64_t k = 0; k < len; k++)
        desc_set(run + k, 0);
    punch(run_addr(run), len << RUN_SHIFT);
    extent_insert(run, len);
}

/* Empty every slot and punch what they held (the caller holds the lock). */
static void dirty_release_all(void)
{
    for (unsigned i = 0; i < DIRTY_SLOTS; i++) {
        uint64_t v = atomic_exchange_explicit(&A->dirty[i], 0, memory_order_acquire);
        if (v != 0) /* a death from here on leaks the block, no worse */
            runs_release(v & UINT32_MAX, v >> 32);
    }
}

void mp__heap_trim(void)
{
    if (mp__heap_init() != 0)
        return;
    mp__robust_lock(&A->lock);
    dirty_release_all();
    mp__robust_unlock(&A->lock);
}

/*
 * Where each thread starts looking: past the slot it last filled or
 * emptied, so that a producer taking and a consumer keeping go round the
 * slots one behind the other instead of both fighting over the first.
 */
static __thread unsigned dirty_hint_put, dirty_hint_take;

static void dirty_range(uint64_t len, unsigned *lo, unsigned *n)
{
    bool near = len << RUN_SHIFT <= DIRTY_NEAR_MAX;
    *lo = near ? 0 : DIRTY_NEAR;
    *n = near ? DIRTY_NEAR : DIRTY_SLOTS - DIRTY_NEAR;
}

/* A kept block of exactly len runs, made live again, without the lock. */
static void *dirty_take(uint64_t len)
{
    unsigned lo, n, h = dirty_hint_take;
    dirty_range(len, &lo, &n);
    for (unsigned i = 0; i < n; i++) {
        unsigned k = (h + i) % n;
        uint64_t v = atomic_load_explicit(&A->dirty[lo + k], memory_order_relaxed);
        /* The length is in the slot word: if the block went and another
         * came back to the same run meanwhile, the exchange fails unless
         * it has the same length, and then it is as good. */
        if (v == 0 || v >> 32 != len ||
            !atomic_compare_exchange_strong_explicit(&A->dirty[lo + k], &v, 0,
                                                     memory_order_acquire,
                                                     memory_order_relaxed))
            continue;
        dirty_hint_take = (k + 1) % n;
        uint64_t run = v & UINT32_MAX;
        /* A death between the exchange and here leaks this block. */
        desc_set(run, desc_make(RUN_LARGE, LARGE_REUSE, len));
        return run_addr(run);
    }
    return NULL;
}

/*
 * Free a block of mp_shared_alloc_uninit (descriptor d): keep it in a slot
 * without the lock, or, when every slot is full, punch it under the lock.
 */
static int dirty_free(uint64_t run, uint64_t d)
{
    uint64_t len = desc_len(d);
    /* Of two frees of the same block, only one turns it RUN_DIRTY. */
    if (!__atomic_compare_exchange_n(&A->desc[run], &d, desc_make(RUN_DIRTY, 0, len), false,
                                     __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return MP_EINVAL;
    /* A death from here until a slot holds it leaks the block. */
    if (len << RUN_SHIFT <= DIRTY_MAX) {
        unsigned lo, n, h = dirty_hint_put;
        dirty_range(len, &lo, &n);
        for (unsigned i = 0; i < n; i++) {
            unsigned k = (h + i) % n;
            uint64_t empty = 0;
            if (atomic_load_explicit(&A->dirty[lo + k], memory_order_relaxed) == 0 &&
                atomic_compare_exchange_strong_explicit(&A->dirty[lo + k], &empty,
                                                        run | len << 32, memory_order_release,
                                                        memory_order_relaxed)) {
                dirty_hint_put = (k + 1) % n;
                return 0;
            }
        }
    }
    mp__robust_lock(&A->lock);
    runs_release(run, len);
    mp__robust_unlock(&A->lock);
    return 0;
}

static int reuse_free(void *p, uint64_t d)
{
    if ((uintptr_t)((char *)p - (char *)A) & (RUN_SIZE - 1))
        return MP_EINVAL;
    return dirty_free(run_of(p), d);
}

static int large_free(void *p)
{
    uint64_t run = run_of(p);
    uint64_t d = desc_get(run);
    if ((uintptr_t)((char *)p - (char *)A) & (RUN_SIZE - 1) || desc_kind(d) != RUN_LARGE)
        return MP_EINVAL;
    runs_release(run, desc_len(d));
    return 0;
}

/* ---- small blocks ------------------------------------------------------- */

/* The class of each size up to 1 KiB, by the size in 16-byte steps rounded up. */
static const uint8_t class_by_16[1024 / 16 + 1] = {
    0, 0, 1, 2, 3, 4,  4,  4,  4,  5,  5,  5,  5,  6,  6,  6,  6,  7,  7,  7,  7,  7,
    7, 7, 7, 8, 8, 8,  8,  8,  8,  8,  8,  9,  9,  9,  9,  9,  9,  9,  9,  9,  9,  9,
    9, 9, 9, 9, 9, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
};

static unsigned class_of(size_t size)
{
    if (size <= 1024)
        return class_by_16[(size + 15) >> 4];
    unsigned i = 0;
    while (class_size[i] < size)
        i++;
    return i;
}

static void *small_alloc(unsigned c)
{
    struct size_class *sc = &A->cls[c];
    struct free_block *b = sc->free;
    if (b != NULL) {
        sc->free = b->next;
        memset(b, 0, class_size[c]);
        return b;
    }
    if (sc->carve == NULL || sc->carve + class_size[c] > sc->carve_end) {
        uint64_t run = extent_take(1);
        if (run == 0)
            return NULL;
        desc_set(run, desc_make(RUN_SMALL, c, 1));
        sc->carve = run_addr(run);
        sc->carve_end = sc->carve + RUN_SIZE;
    }
    void *p = sc->carve;
    sc->carve += class_size[c];
    return p; /* carved memory has never been used: it is zero */
}

static int small_free(void *p, uint64_t d)
{
    unsigned c = desc_class(d);
    if (c >= NCLASS)
        return MP_EINVAL;
    size_t off = (size_t)((char *)p - run_addr(run_of(p)));
    if (off % class_size[c] != 0)
        return MP_EINVAL;
    struct free_block *b = p;
    if (b->tag == (FREE_TAG ^ (uintptr_t)p))
        return MP_EINVAL;
    b->tag = FREE_TAG ^ (uintptr_t)p;
    /* next overlays an object's magic, which mp__obj_check may read at any
     * time through a stale handle: written atomically (TSan). */
    __atomic_store_n(&b->next, A->cls[c].free, __ATOMIC_RELAXED);
    A->cls[c].free = b;
    return 0;
}

/* ---- per-thread caches of small blocks ---------------------------------- */

/*
 * Each thread keeps a few free blocks of each small class (up to 1 KiB) in
 * its own memory, so that the common mp__alloc and mp__free take no shared
 * lock.  The cache is filled from, and emptied into, the class's shared
 * free list in batches of half its capacity under the arena's lock.  The
 * blocks in a cache are marked free (their tag), as on the shared list, so
 * a double free is seen either way.
 *
 * What a cache costs when its thread dies without exiting normally (a
 * process killed, or one that leaves with _exit outside libmp): the blocks
 * it held, at most CACHE_BYTES per class, 44 KiB in all (docs/heap.md).
 * The shared lists themselves are only changed under the robust lock, one
 * consistent step at a time, so such a death never corrupts them.  A thread
 * that exits normally, and a libmp child process that ends, gives its
 * blocks back.  A forked child starts with an empty cache: the copy it
 * inherited belongs to the parent's thread.
 */
#define CACHE_CLASSES 11 /* classes 16 ... 1024 bytes */
#define MP__NOINLINE __attribute__((noinline))
#define CACHE_BYTES 4096u
#define CACHE_MAX 64u

struct tcache {
    bool registered; /* the thread-exit destructor knows this thread */
    uint16_t n[CACHE_CLASSES];
    struct free_block *head[CACHE_CLASSES];
};

static __thread struct tcache tc;
static pthread_key_t tc_key;
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;
static bool tc_key_ok;

/*
 * ceil(2^32 / class size): off * recip >> 32 is off / size, exact for every
 * offset inside a run (off < 2^16, size <= 1024), without a division.
 */
static const uint32_t class_recip[CACHE_CLASSES] = {
    268435456u, 134217728u, 89478486u, 67108864u, 33554432u, 22369622u,
    16777216u,  11184811u,  8388608u,  5592406u,  4194304u,
};

/* How many blocks a cache holds: CACHE_BYTES of them, at most CACHE_MAX. */
static const uint8_t class_cap[CACHE_CLASSES] = {64, 64, 64, 64, 32, 21, 16, 10, 8, 5, 4};

static inline unsigned cache_cap(unsigned c)
{
    return class_cap[c];
}

/* Give back all but keep blocks of class c; the caller holds no lock. */
static void cache_drain(struct tcache *t, unsigned c, unsigned keep)
{
    if (t->n[c] <= keep)
        return;
    /* Detach the blocks to return first: a death from here on leaks them. */
    struct free_block *first = t->head[c], *last = first;
    for (unsigned i = 1; i < t->n[c] - keep; i++)
        last = last->next;
    t->head[c] = last->next;
    t->n[c] = (uint16_t)keep;
    mp__robust_lock(&A->lock);
    while (first != NULL && first != t->head[c]) {
        struct free_block *b = first;
        first = b->next;
        b->next = A->cls[c].free;
        A->cls[c].free = b;
    }
    mp__robust_unlock(&A->lock);
}

void mp__heap_cache_flush(void)
{
    if (A == NULL)
        return;
    for (unsigned c = 0; c < CACHE_CLASSES; c++)
        cache_drain(&tc, c, 0);
}

static void cache_thread_exit(void *arg)
{
    (void)arg;
    mp__heap_cache_flush();
}

static void cache_forget(void)
{
    memset(&tc, 0, sizeof tc);
    if (tc_key_ok)
        pthread_setspecific(tc_key, NULL);
}

static void cache_setup(void)
{
    tc_key_ok = pthread_key_create(&tc_key, cache_thread_exit) == 0;
    pthread_atfork(NULL, NULL, cache_forget);
}

static void cache_register(struct tcache *t)
{
    pthread_once(&tc_once, cache_setup);
    t->registered = true;
    if (tc_key_ok)
        pthread_setspecific(tc_key, t);
}

/* Take a batch of class c into the cache (the caller holds the lock). */
static void cache_refill_locked(struct tcache *t, unsigned c)
{
    unsigned want = cache_cap(c) / 2;
    for (unsigned i = 0; i < want; i++) {
        struct free_block *b = small_alloc(c);
        if (b == NULL)
            break;
        b->tag = FREE_TAG ^ (uintptr_t)b;
        b->next = t->head[c];
        t->head[c] = b;
        t->n[c]++;
    }
}

/* The cache of class c is empty: fill it, then take a block (or NULL). */
static MP__NOINLINE void *cache_alloc_slow(unsigned c)
{
    struct tcache *t = &tc;
    if (!t->registered)
        cache_register(t);
    mp__robust_lock(&A->lock);
    cache_refill_locked(t, c);
    mp__robust_unlock(&A->lock);
    struct free_block *b = t->head[c];
    if (b == NULL)
        return NULL;
    t->head[c] = b->next;
    t->n[c]--;
    memset(b, 0, class_size[c]);
    return b;
}

/* The cache of class c is over its capacity: give half back. */
static MP__NOINLINE void cache_overflow(unsigned c)
{
    struct tcache *t = &tc;
    if (!t->registered)
        cache_register(t);
    cache_drain(t, c, cache_cap(c) / 2);
}

/* ---- public entry points ------------------------------------------------ */

static MP__NOINLINE void *alloc_slow(size_t size)
{
    if (mp__heap_init() != 0) {
        errno = ENOMEM;
        return NULL;
    }
    if (size == 0)
        size = 1;
    if (size > A->size) {
        errno = ENOMEM;
        return NULL;
    }
    void *p;
    unsigned c = size <= SMALL_MAX ? class_of(size) : NCLASS;
    if (c < CACHE_CLASSES) {
        p = cache_alloc_slow(c);
    } else {
        mp__robust_lock(&A->lock);
        p = c < NCLASS ? small_alloc(c) : large_alloc(size);
        mp__robust_unlock(&A->lock);
    }
    if (p == NULL)
        errno = ENOMEM;
    return p;
}

void *mp__alloc(size_t size)
{
    /* The common case: a block from this thread's cache, no lock. */
    if (MP__LIKELY(size - 1 < 1024 && A != NULL)) {
        unsigned c = class_by_16[(size + 15) >> 4];
        struct tcache *t = &tc;
        struct free_block *b = t->head[c];
        if (MP__LIKELY(b != NULL)) {
            t->head[c] = b->next;
            t->n[c]--;
            memset(b, 0, class_size[c]);
            return b;
        }
    }
    return alloc_slow(size);
}

static MP__NOINLINE int free_slow(void *p)
{
    if (p == NULL)
        return 0;
    if (!mp__in_arena(p))
        return MP_EINVAL;
    uint64_t d = desc_get(run_of(p));
    if (desc_kind(d) == RUN_LARGE && desc_class(d) == LARGE_REUSE)
        return reuse_free(p, d);
    mp__robust_lock(&A->lock);
    d = desc_get(run_of(p));
    int r;
    switch (desc_kind(d)) {
    case RUN_SMALL:
        r = small_free(p, d);
        break;
    case RUN_LARGE:
        if (desc_class(d) == LARGE_REUSE) {
            /* Kept and taken again since the look above: not under the lock. */
            mp__robust_unlock(&A->lock);
            return reuse_free(p, d);
        }
        r = large_free(p);
        break;
    default:
        r = MP_EINVAL;
        break;
    }
    mp__robust_unlock(&A->lock);
    return r;
}

int mp__free(void *p)
{
    if (MP__UNLIKELY(!mp__in_arena(p)))
        return p == NULL ? 0 : MP_EINVAL;
    /* A run, once a small class's, stays with it: no lock needed to look. */
    uint64_t d = desc_get(run_of(p));
    unsigned c = desc_class(d);
    if (MP__UNLIKELY(desc_kind(d) != RUN_SMALL || c >= CACHE_CLASSES))
        return free_slow(p);
    /* small_free's checks: the start of a block, not already free. */
    uint32_t off = (uint32_t)(((uintptr_t)p - (uintptr_t)A) & (RUN_SIZE - 1));
    uint32_t q = (uint32_t)(((uint64_t)off * class_recip[c]) >> 32);
    struct free_block *b = p;
    if (MP__UNLIKELY(q * class_size[c] != off || b->tag == (FREE_TAG ^ (uintptr_t)p)))
        return MP_EINVAL;
    struct tcache *t = &tc;
    b->tag = FREE_TAG ^ (uintptr_t)p;
    b->next = t->head[c];
    t->head[c] = b;
    if (MP__UNLIKELY(++t->n[c] > cache_cap(c)))
        cache_overflow(c);
    return 0;
}

size_t mp__alloc_size(const void *p)
{
    if (!mp__in_arena(p))
        return 0;
    uint64_t d = desc_get(run_of(p));
    if (desc_kind(d) == RUN_SMALL)
        return class_size[desc_class(d)];
    if (desc_kind(d) == RUN_LARGE)
        return desc_len(d) << RUN_SHIFT;
    return 0;
}

/* ---- objects ------------------------------------------------------------ */

void *mp__obj_new(size_t size, uint32_t magic)
{
    mp__obj *o = mp__alloc(size < sizeof *o ? sizeof *o : size);
    if (o == NULL)
        return NULL;
    o->id = mp__heap_next_id();
    __atomic_store_n(&o->magic, magic, __ATOMIC_RELEASE);
    return o;
}

void *mp__obj_create(size_t size, uint32_t magic)
{
    int r = mp__heap_init();
    if (r != 0)
        return mp__fail_null(r);
    void *o = mp__obj_new(size, magic);
    return o != NULL ? o : mp__fail_null(-ENOMEM);
}

void mp__obj_free(void *p)
{
    if (p == NULL || !mp__in_arena(p))
        return;
    if (MP__UNLIKELY(atomic_load_explicit(&mp__obj_finalizers, memory_order_relaxed) > 0))
        mp_finalize_object_freed(p);
    mp__obj *o = p;
    __atomic_store_n(&o->magic, MP__MAGIC_DEAD, __ATOMIC_RELEASE);
    mp__free(p);
}

/* ---- public API (heap.h) ------------------------------------------------ */

void *mp_shared_alloc(size_t size)
{
    int r = mp__heap_init();
    if (r != 0)
        return mp__fail_null(r);
    void *p = mp__alloc(size);
    return p != NULL ? p : mp__fail_null(-ENOMEM);
}

void *mp_shared_alloc_uninit(size_t size)
{
    int r = mp__heap_init();
    if (r != 0)
        return mp__fail_null(r);
    if (size > SMALL_MAX && size <= DIRTY_MAX) {
        uint64_t len = (size + RUN_SIZE - 1) >> RUN_SHIFT;
        void *p = dirty_take(len);
        if (p != NULL)
            return p;
        mp__robust_lock(&A->lock);
        p = large_alloc_as(size, LARGE_REUSE);
        mp__robust_unlock(&A->lock);
        return p != NULL ? p : mp__fail_null(-ENOMEM);
    }
    return mp_shared_alloc(size);
}

int mp_shared_free(void *ptr)
{
    if (MP__UNLIKELY(atomic_load_explicit(&mp__obj_finalizers, memory_order_relaxed) > 0) &&
        ptr != NULL && mp__in_arena(ptr))
        mp_finalize_object_freed(ptr);
    return mp__free(ptr);
}

size_t mp_shared_size(const void *ptr)
{
    return mp__alloc_size(ptr);
}
