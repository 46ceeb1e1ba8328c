/*
 * val_dict.c: the dict of libmp/val.h, CPython's compact dict in miniature:
 * an array of (key, value) slots in insertion order, where a removed entry
 * leaves a hole (key NULL) until the next compaction, and a separate
 * open-addressing index from hash to slot.
 */
#include "internal/val.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct dindex {
    size_t nb;   /* buckets, a power of two */
    size_t used; /* buckets not empty: live entries and removed marks */
    uint32_t *b; /* 0 empty, 1 removed, slot + 2 */
    uint64_t *h; /* hash of each slot */
};

void mp__val_dindex_free(void *p)
{
    struct dindex *ix = p;
    if (ix == NULL)
        return;
    free(ix->b);
    free(ix->h);
    free(ix);
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
    return (size_t)(mp__mix64(h ^ seed_get()) & (nb - 1));
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
            mp_val_hash(d->dict.kv_[2 * s], &nh[s]);
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
    if (d == NULL || d->type != MP_VAL_DICT || mp_val_hash(key, &h) != 0)
        return -1;
    return dict_find_h(d, key, h);
}

int mp__val_dict_put(mp_val *d, mp_val *key, mp_val *value, bool replace)
{
    uint64_t h;
    if (mp_val_hash(key, &h) != 0) {
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
    int r = mp__val_copy_depth(key, &k, 1);
    if (r != 0)
        return r;
    r = mp__val_copy_depth(value, &v, 1);
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
