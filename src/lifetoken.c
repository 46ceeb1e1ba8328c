/*
 * lifetoken.c: per-thread life tokens, the owner identity of Lock and RLock
 * (see internal/lifetoken.h and docs/synchronize.md).
 *
 * The table of slots is a family-wide root object in the arena, grown by
 * chunks of CHUNK slots.  A slot is free when its mutex is unlocked (never
 * used, or released by a thread that exited normally) or marked
 * FUTEX_OWNER_DIED by the kernel (its thread died): a claimer takes it with
 * pthread_mutex_trylock, so the mutex itself says who owns the slot.
 */
#include "internal/mp.h"
#include "internal/lifetoken.h"

#include <limits.h>
#include "internal/linux.h"
#include <stddef.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#define GEN_BITS 16
#define GEN_MASK ((1u << GEN_BITS) - 1)
#define CHUNK 256
#define MAX_CHUNKS 128 /* (CHUNK * MAX_CHUNKS) << GEN_BITS stays below bit 31 */
#define TOKEN_MAGIC MP__MAGIC('t', 'o', 'k', 'n')

_Static_assert((uint64_t)CHUNK *MAX_CHUNKS << GEN_BITS <= MP__TOKEN_WAITERS,
               "a token must leave the waiters bit free");
/*
 * The life word is the C library's futex word inside the robust mutex: the
 * word the kernel marks FUTEX_OWNER_DIED.  glibc's is the first field;
 * musl's is its second int.  life_layout_ok checks the guess at run time,
 * so another C library gets an error from the first lock, not a lock that
 * never notices a death.
 */
#if defined(__GLIBC__)
_Static_assert(offsetof(pthread_mutex_t, __data.__lock) == 0, "glibc's mutex layout");
#define LIFE_WORD_OFFSET 0
#else
#define LIFE_WORD_OFFSET sizeof(int)
#endif

struct slot {
    pthread_mutex_t life; /* robust, process-shared; held by the owner */
    _Atomic uint32_t gen; /* 1..GEN_MASK once claimed; bumped on every claim
                             and every release */
} MP__ALIGNED(MP__CACHELINE);

struct chunk {
    struct slot slots[CHUNK];
};

struct table {
    mp__obj hdr;
    _Atomic uint32_t hint; /* where the next claim starts looking */
    _Atomic(struct chunk *) chunks[MAX_CHUNKS];
};

__thread uint32_t mp__token_cache;
_Atomic bool mp__token_no_waitv;
uint32_t mp__token_limit = (uint32_t)CHUNK * MAX_CHUNKS;

/* The table's address is the same in every process of the family. */
static struct table *table_cache;
static pthread_key_t exit_key;
static pthread_once_t setup_once = PTHREAD_ONCE_INIT;
static bool layout_ok;

static struct table *table_get(void);

static inline _Atomic uint32_t *life_word(struct slot *s)
{
    return (_Atomic uint32_t *)(void *)((char *)&s->life + LIFE_WORD_OFFSET);
}

_Atomic uint32_t *mp__robust_word(pthread_mutex_t *m)
{
    return (_Atomic uint32_t *)(void *)((char *)m + LIFE_WORD_OFFSET);
}

static inline uint32_t next_gen(uint32_t g)
{
    return g % GEN_MASK + 1;
}

static struct slot *slot_at(uint32_t index)
{
    struct table *t = table_cache != NULL ? table_cache : table_get();
    if (t == NULL || index >= (uint32_t)CHUNK * MAX_CHUNKS)
        return NULL;
    struct chunk *c = atomic_load_explicit(&t->chunks[index / CHUNK], memory_order_acquire);
    return c != NULL ? &c->slots[index % CHUNK] : NULL;
}

static struct slot *slot_of(uint32_t token)
{
    return slot_at((token & ~MP__TOKEN_WAITERS) >> GEN_BITS);
}

/*
 * Give the slot up: first the generation moves on, so the token is dead
 * for whoever looks from now on; then the waiters bit is cleared, so a
 * waiter that set it and then saw the old generation finds its futex word
 * changed; then the ones asleep are woken.
 */
static void slot_retire(struct slot *s, bool unlock)
{
    atomic_store(&s->gen, next_gen(atomic_load(&s->gen)));
    uint32_t old = atomic_fetch_and(life_word(s), ~(uint32_t)FUTEX_WAITERS);
    if (unlock)
        pthread_mutex_unlock(&s->life);
    if (old & FUTEX_WAITERS)
        mp__futex_wake((uint32_t *)life_word(s), INT32_MAX);
}

/* A thread that exits normally gives its slot back (pthread key destructor;
 * a thread that dies leaves its mutex to the kernel instead). */
static void on_thread_exit(void *value)
{
    (void)value;
    uint32_t t = mp__token_cache;
    mp__token_cache = 0;
    struct slot *s = t != 0 ? slot_of(t) : NULL;
    if (s != NULL)
        slot_retire(s, true);
}

/* A forked child's only thread holds no slot: the parent's thread does. */
static void forget_token(void)
{
    mp__token_cache = 0;
    pthread_setspecific(exit_key, NULL);
}

/* True when a locked robust mutex holds the owner's thread id at
 * LIFE_WORD_OFFSET and an unlocked one holds 0. */
static bool life_layout_ok(void)
{
    struct slot probe;
    if (mp__robust_mutex_init(&probe.life) != 0)
        return false;
    _Atomic uint32_t *w = life_word(&probe);
    bool ok = pthread_mutex_lock(&probe.life) == 0;
    ok = ok && (atomic_load(w) & FUTEX_TID_MASK) == (uint32_t)syscall(SYS_gettid);
    if (ok)
        pthread_mutex_unlock(&probe.life);
    ok = ok && atomic_load(w) == 0;
    pthread_mutex_destroy(&probe.life);
    return ok;
}

static void setup(void)
{
    layout_ok = life_layout_ok();
    pthread_key_create(&exit_key, on_thread_exit);
    pthread_atfork(NULL, NULL, forget_token);
}

static void *table_make(void)
{
    return mp__obj_new(sizeof(struct table), TOKEN_MAGIC);
}

static struct table *table_get(void)
{
    if (table_cache == NULL)
        table_cache = mp__heap_root(MP__ROOT_LIFE_TOKENS, table_make);
    return table_cache;
}

/* Chunk i, made if missing; racing makers agree on one.  NULL: no memory. */
static struct chunk *chunk_get(struct table *t, int i)
{
    struct chunk *c = atomic_load_explicit(&t->chunks[i], memory_order_acquire);
    if (c != NULL)
        return c;
    struct chunk *fresh = mp__alloc(sizeof *fresh);
    if (fresh == NULL)
        return NULL;
    for (int k = 0; k < CHUNK; k++) {
        if (mp__robust_mutex_init(&fresh->slots[k].life) != 0) {
            mp__free(fresh);
            return NULL;
        }
    }
    if (atomic_compare_exchange_strong(&t->chunks[i], &c, fresh))
        return fresh;
    mp__free(fresh);
    return c;
}

/* Take slot index if it is free: its new token, or 0. */
static uint32_t slot_try(uint32_t index)
{
    struct slot *s = slot_at(index);
    if (mp__robust_trylock(&s->life) != 0)
        return 0;
    /*
     * Ours now.  Move the generation on before anything else, exactly as a
     * release does (slot_retire): waiters of the previous owner that have
     * not seen its death yet are woken and find its token dead.
     */
    slot_retire(s, false);
    return index << GEN_BITS | atomic_load(&s->gen);
}

int mp__token_claim(uint32_t *out)
{
    pthread_once(&setup_once, setup);
    if (!layout_ok)
        return -ENOTSUP;
    struct table *t = table_get();
    if (t == NULL)
        return -ENOMEM;
    uint32_t token = 0;
    uint32_t limit = mp__token_limit < (uint32_t)CHUNK * MAX_CHUNKS
                         ? mp__token_limit
                         : (uint32_t)CHUNK * MAX_CHUNKS;
    int n = 0;
    while (n < MAX_CHUNKS && atomic_load(&t->chunks[n]) != NULL)
        n++;
    /* Every existing slot once, from the hint on; then new chunks. */
    uint32_t total = (uint32_t)n * CHUNK < limit ? (uint32_t)n * CHUNK : limit;
    uint32_t start = total ? atomic_load(&t->hint) % total : 0;
    for (uint32_t k = 0; k < total && token == 0; k++)
        token = slot_try((start + k) % total);
    for (int i = n; (uint32_t)i * CHUNK < limit && token == 0; i++) {
        if (chunk_get(t, i) == NULL)
            return -ENOMEM;
        for (uint32_t k = 0; k < CHUNK && i * CHUNK + k < limit && token == 0; k++)
            token = slot_try((uint32_t)i * CHUNK + k);
    }
    if (token == 0)
        return -EAGAIN;
    atomic_store(&t->hint, (token >> GEN_BITS) + 1);
    mp__token_cache = token;
    pthread_setspecific(exit_key, (void *)1);
    *out = token;
    return 0;
}

bool mp__token_dead(uint32_t token)
{
    struct slot *s = slot_of(token);
    if (s == NULL)
        return true;
    /*
     * The generation first: a claimer takes the mutex (clearing
     * OWNER_DIED) before it moves the generation on, so reading in the
     * other order could see neither sign of the death.
     */
    if (atomic_load(&s->gen) != (token & GEN_MASK))
        return true;
    uint32_t v = atomic_load(life_word(s));
    return (v & FUTEX_OWNER_DIED) || (v & FUTEX_TID_MASK) == 0;
}

/* FUTEX_WAITV on both words: 1 (woken), 0 (a word differed, or a signal),
 * MP_ETIMEDOUT, or -ENOSYS. */
static int wait_both(uint32_t *word, uint32_t expected, _Atomic uint32_t *life,
                     uint32_t life_val, const mp__deadline *d)
{
    struct futex_waitv w[2] = {
        {.val = expected, .uaddr = (uintptr_t)word, .flags = FUTEX_32},
        {.val = life_val, .uaddr = (uintptr_t)life, .flags = FUTEX_32},
    };
    long r = syscall(SYS_futex_waitv, w, 2, 0, d->forever ? NULL : &d->at, CLOCK_MONOTONIC);
    if (r == 1 && (atomic_load(life) & FUTEX_OWNER_DIED)) {
        /* The kernel wakes one waiter of a dead thread's mutex: pass it on. */
        mp__futex_wake((uint32_t *)life, INT32_MAX);
    }
    if (r >= 0)
        return 1;
    switch (errno) {
    case ETIMEDOUT:
        return MP_ETIMEDOUT;
    case ENOSYS:
        return -ENOSYS;
    default: /* EAGAIN: a word changed; EINTR */
        return 0;
    }
}

/* Without FUTEX_WAITV: sleep on the word for one slice at most. */
static int wait_slice(uint32_t *word, uint32_t expected, const mp__deadline *d)
{
    mp__deadline slice = {.forever = false, .nowait = false};
    clock_gettime(CLOCK_MONOTONIC, &slice.at);
    slice.at.tv_nsec += MP__TOKEN_SLICE_NS;
    if (slice.at.tv_nsec >= 1000000000L) {
        slice.at.tv_sec++;
        slice.at.tv_nsec -= 1000000000L;
    }
    bool last = !d->forever &&
                (d->at.tv_sec < slice.at.tv_sec ||
                 (d->at.tv_sec == slice.at.tv_sec && d->at.tv_nsec <= slice.at.tv_nsec));
    int r = mp__futex_sleep(word, expected, last ? d : &slice);
    if (r == MP_ETIMEDOUT)
        return last ? MP_ETIMEDOUT : 0;
    return r == 1;
}

int mp__token_wait(uint32_t *word, uint32_t expected, uint32_t holder, const mp__deadline *d)
{
    struct slot *s = slot_of(holder);
    if (s == NULL)
        return 0;
    static _Atomic bool kernel_lacks_waitv;
    bool off = mp__feature_disabled(MP__FEAT_FUTEX_WAITV);
    if (!atomic_load_explicit(&mp__token_no_waitv, memory_order_relaxed) && !off) {
        /*
         * Ask the kernel (at the holder's death) or slot_retire (at its
         * exit, or when a claimer takes the slot over) to wake us, then
         * look at the generation once more: either that look sees the
         * change, or the waiters bit was there for slot_retire to find,
         * and the word no longer holds life_val when it wakes us.
         */
        _Atomic uint32_t *life = life_word(s);
        uint32_t v = atomic_load(life);
        for (;;) {
            if ((v & FUTEX_OWNER_DIED) || (v & FUTEX_TID_MASK) == 0)
                return 0;
            if ((v & FUTEX_WAITERS) ||
                atomic_compare_exchange_weak(life, &v, v | FUTEX_WAITERS))
                break;
        }
        v |= FUTEX_WAITERS;
        if (atomic_load(&s->gen) != (holder & GEN_MASK))
            return 0;
        int r = wait_both(word, expected, life, v, d);
        if (r != -ENOSYS)
            return r;
        atomic_store(&mp__token_no_waitv, true);
        atomic_store(&kernel_lacks_waitv, true);
    }
    /* Counted when the kernel or MP_DISABLE says so (not the test hook). */
    if (off || atomic_load_explicit(&kernel_lacks_waitv, memory_order_relaxed))
        mp__fallback_taken(MP__FEAT_FUTEX_WAITV);
    return wait_slice(word, expected, d);
}
