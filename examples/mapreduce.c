/*
 * mapreduce.c: SimpleMapReduce over a libmp Pool (see mapreduce.h).
 *
 * Encodings (bytes between the processes):
 *   a map output    pairs, each [u64 key_len][u64 value][key bytes]
 *   a reduce input  [u64 key_len][u64 nvalues][key bytes][nvalues u64]
 *   a reduce output one pair, as a map output
 */
#include "mapreduce.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct simple_mapreduce {
    mp_pool *pool;
    mp_pool_bytes_fn map_func, reduce_func;
};

simple_mapreduce *simple_mapreduce_new(mp_pool_bytes_fn map_func, mp_pool_bytes_fn reduce_func,
                                       int num_workers)
{
    return simple_mapreduce_new_ctx(map_func, reduce_func, num_workers, NULL);
}

simple_mapreduce *simple_mapreduce_new_ctx(mp_pool_bytes_fn map_func,
                                           mp_pool_bytes_fn reduce_func, int num_workers,
                                           mp_context *ctx)
{
    simple_mapreduce *mr = calloc(1, sizeof *mr);
    if (mr == NULL)
        return NULL;
    mr->map_func = map_func;
    mr->reduce_func = reduce_func;
    mr->pool = mp_pool_new(.processes = num_workers, .ctx = ctx);
    if (mr->pool == NULL) {
        free(mr);
        return NULL;
    }
    return mr;
}

void simple_mapreduce_free(simple_mapreduce *mr)
{
    if (mr == NULL)
        return;
    mp_pool_close(mr->pool);
    mp_pool_join(mr->pool, MP_FOREVER);
    mp_pool_free(mr->pool);
    free(mr);
}

void mr_pairs_free(mr_pair *pairs, size_t n)
{
    for (size_t i = 0; pairs != NULL && i < n; i++)
        free(pairs[i].key);
    free(pairs);
}

int mr_emit(mp_pool_out *out, const void *key, size_t key_len, uint64_t value)
{
    uint64_t head[2] = {key_len, value};
    int r = mp_pool_out_write(out, head, sizeof head);
    return r != 0 ? r : mp_pool_out_write(out, key, key_len);
}

void mr_reduce_input(const void *in, size_t in_size, const char **key, size_t *key_len,
                     const unsigned char **values, size_t *nvalues)
{
    uint64_t head[2];
    memcpy(head, in, sizeof head);
    *key_len = head[0];
    *nvalues = head[1];
    *key = (const char *)in + sizeof head;
    *values = (const unsigned char *)in + sizeof head + head[0];
}

uint64_t mr_value(const unsigned char *values, size_t i)
{
    uint64_t v;
    memcpy(&v, values + i * sizeof v, sizeof v);
    return v;
}

/* ---- partition: key -> the values emitted for it ---------------------------- */

struct group {
    const char *key; /* into a map output */
    size_t key_len;
    uint64_t *values;
    size_t n, cap;
};

struct table {
    struct group *groups;
    size_t ngroups, capgroups;
    size_t *slots; /* open addressing: index + 1 into groups, 0 empty */
    size_t nslots;
};

static size_t hash(const char *k, size_t n)
{
    size_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 1099511628211ull;
    return h;
}

static int table_grow(struct table *t)
{
    size_t nslots = t->nslots ? t->nslots * 2 : 1024;
    size_t *slots = calloc(nslots, sizeof *slots);
    if (slots == NULL)
        return -ENOMEM;
    for (size_t g = 0; g < t->ngroups; g++) {
        size_t i = hash(t->groups[g].key, t->groups[g].key_len) & (nslots - 1);
        while (slots[i] != 0)
            i = (i + 1) & (nslots - 1);
        slots[i] = g + 1;
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = nslots;
    return 0;
}

static int table_add(struct table *t, const char *key, size_t key_len, uint64_t value)
{
    if ((t->ngroups + 1) * 2 > t->nslots && table_grow(t) != 0)
        return -ENOMEM;
    size_t i = hash(key, key_len) & (t->nslots - 1);
    for (; t->slots[i] != 0; i = (i + 1) & (t->nslots - 1)) {
        struct group *g = &t->groups[t->slots[i] - 1];
        if (g->key_len == key_len && memcmp(g->key, key, key_len) == 0)
            break;
    }
    if (t->slots[i] == 0) {
        if (t->ngroups == t->capgroups) {
            size_t cap = t->capgroups ? t->capgroups * 2 : 256;
            struct group *gs = realloc(t->groups, cap * sizeof *gs);
            if (gs == NULL)
                return -ENOMEM;
            t->groups = gs;
            t->capgroups = cap;
        }
        t->groups[t->ngroups] = (struct group){.key = key, .key_len = key_len};
        t->slots[i] = ++t->ngroups;
    }
    struct group *g = &t->groups[t->slots[i] - 1];
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 4;
        uint64_t *v = realloc(g->values, cap * sizeof *v);
        if (v == NULL)
            return -ENOMEM;
        g->values = v;
        g->cap = cap;
    }
    g->values[g->n++] = value;
    return 0;
}

static void table_free(struct table *t)
{
    for (size_t g = 0; g < t->ngroups; g++)
        free(t->groups[g].values);
    free(t->groups);
    free(t->slots);
}

/* Organize the mapped values by their key (Python's partition()). */
static int partition(struct table *t, const mp_pool_bytes *mapped, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *p = mapped[i].data, *end = p + mapped[i].size;
        while (p + 16 <= end) {
            uint64_t head[2];
            memcpy(head, p, sizeof head);
            if (head[0] > (size_t)(end - p - 16))
                return MP_EINVAL;
            int r = table_add(t, p + 16, head[0], head[1]);
            if (r != 0)
                return r;
            p += 16 + head[0];
        }
    }
    return 0;
}

/* A reduce input per key. */
static int encode_groups(const struct table *t, mp_pool_bytes *items)
{
    for (size_t g = 0; g < t->ngroups; g++) {
        const struct group *gr = &t->groups[g];
        size_t size = 16 + gr->key_len + gr->n * sizeof(uint64_t);
        char *p = malloc(size);
        if (p == NULL)
            return -ENOMEM;
        uint64_t head[2] = {gr->key_len, gr->n};
        memcpy(p, head, sizeof head);
        memcpy(p + 16, gr->key, gr->key_len);
        memcpy(p + 16 + gr->key_len, gr->values, gr->n * sizeof(uint64_t));
        items[g].data = p;
        items[g].size = size;
    }
    return 0;
}

static void free_bytes(mp_pool_bytes *b, size_t n)
{
    for (size_t i = 0; b != NULL && i < n; i++)
        free(b[i].data);
    free(b);
}

int simple_mapreduce_run(simple_mapreduce *mr, const mp_pool_bytes *inputs, size_t n,
                         size_t chunksize, mr_pair **results, size_t *nresults)
{
    *results = NULL;
    *nresults = 0;
    mp_pool_bytes *mapped = calloc(n ? n : 1, sizeof *mapped);
    if (mapped == NULL)
        return -ENOMEM;
    int r = mp_pool_map_bytes(mr->pool, mr->map_func, inputs, n, mapped,
                              .chunksize = chunksize);
    struct table t = {0};
    if (r == 0)
        r = partition(&t, mapped, n);
    mp_pool_bytes *items = NULL, *reduced = NULL;
    if (r == 0) {
        items = calloc(t.ngroups ? t.ngroups : 1, sizeof *items);
        reduced = calloc(t.ngroups ? t.ngroups : 1, sizeof *reduced);
        r = items && reduced ? encode_groups(&t, items) : -ENOMEM;
    }
    if (r == 0)
        r = mp_pool_map_bytes(mr->pool, mr->reduce_func, items, t.ngroups, reduced);
    mr_pair *pairs = NULL;
    if (r == 0) {
        pairs = calloc(t.ngroups ? t.ngroups : 1, sizeof *pairs);
        if (pairs == NULL)
            r = -ENOMEM;
    }
    for (size_t g = 0; r == 0 && g < t.ngroups; g++) {
        uint64_t head[2];
        if (reduced[g].size < 16) {
            r = MP_EINVAL;
            break;
        }
        memcpy(head, reduced[g].data, sizeof head);
        pairs[g].key = strndup((const char *)reduced[g].data + 16, head[0]);
        pairs[g].key_len = head[0];
        pairs[g].value = head[1];
        if (pairs[g].key == NULL)
            r = -ENOMEM;
    }
    if (r == 0) {
        *results = pairs;
        *nresults = t.ngroups;
    } else {
        mr_pairs_free(pairs, t.ngroups);
    }
    free_bytes(items, t.ngroups);
    free_bytes(reduced, t.ngroups);
    table_free(&t);
    free_bytes(mapped, n);
    return r;
}
