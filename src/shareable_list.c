/*
 * shareable_list.c: ShareableList and SharedMemoryManager (Python's
 * multiprocessing.shared_memory.ShareableList and
 * multiprocessing.managers.SharedMemoryManager).
 *
 * The segment's layout is Python's (3.9 and later, native struct packing,
 * all of it 8-byte aligned), so each side reads the other's lists:
 *
 *   int64 n                    the number of items
 *   int64 offsets[n + 1]       offsets[0] = 0, offsets[i + 1] = the end of
 *                              item i, from the start of the data area
 *   data area                  item i at offsets[i]: "q" int64, "d" double,
 *                              "xxxxxxx?" bool (its last byte), "xxxxxx?x"
 *                              None, "%ds" str/bytes padded with NULs
 *   char formats[n][8]         each item's struct format, NUL-padded
 *   int8 codes[n]              0 number/bool, 1 str, 2 bytes, 3 None
 *
 * The data area starts at (n + 2) * 8.  str and bytes items get 8 * (len /
 * 8 + 1) bytes; every other item 8.
 */
#include "internal/mp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SL_MAGIC MP__MAGIC('s', 'l', 's', 't')
#define SMM_MAGIC MP__MAGIC('s', 'm', 'm', 'g')

enum { CODE_VALUE = 0, CODE_STR = 1, CODE_BYTES = 2, CODE_NONE = 3 };

struct mp_shareable_list {
    mp__obj hdr;
    mp_shared_memory *shm;
    int64_t n;
};

/* ---- the layout --------------------------------------------------------------- */

static int64_t rd64(const unsigned char *p)
{
    int64_t v;
    memcpy(&v, p, 8);
    return v;
}

static void wr64(unsigned char *p, int64_t v)
{
    memcpy(p, &v, 8);
}

/* Where things are, checked against the segment's size. */
struct layout {
    unsigned char *base;
    size_t size;
    int64_t n;
    size_t data;    /* start of the data area */
    size_t formats; /* start of the formats */
    size_t codes;   /* start of the codes */
};

static int layout_of(mp_shareable_list *l, struct layout *L)
{
    if (mp__obj_check(l, SL_MAGIC) != 0)
        return MP_EINVAL;
    L->base = mp_shared_memory_buf(l->shm);
    if (L->base == NULL)
        return mp_last_error();
    L->size = mp_shared_memory_size(l->shm);
    L->n = l->n;
    L->data = (size_t)(L->n + 2) * 8;
    int64_t end = rd64(L->base + 8 + (size_t)L->n * 8);
    L->formats = L->data + (size_t)end;
    L->codes = L->formats + (size_t)L->n * 8;
    return 0;
}

/* A segment written by someone else: every offset inside it. */
static int layout_check(const unsigned char *b, size_t size, int64_t *n_out)
{
    if (size < 16)
        return -EPROTO;
    int64_t n = rd64(b);
    if (n < 0 || (uint64_t)n > (size - 16) / 8)
        return -EPROTO;
    size_t data = (size_t)(n + 2) * 8;
    int64_t prev = rd64(b + 8);
    if (prev != 0)
        return -EPROTO;
    for (int64_t i = 1; i <= n; i++) {
        int64_t o = rd64(b + 8 + (size_t)i * 8);
        if (o < prev + 8 || o % 8 != 0 || (uint64_t)o > size)
            return -EPROTO;
        prev = o;
    }
    if (data + (size_t)prev + (size_t)n * 9 > size)
        return -EPROTO;
    *n_out = n;
    return 0;
}

static size_t item_room(const mp_val *v)
{
    const char *p;
    size_t len;
    mp_val_type t = mp_val_typeof(v);
    if (t == MP_VAL_STR || t == MP_VAL_BYTES) {
        mp_val_as_str(v, &p, &len);
        return 8 * (len / 8 + 1);
    }
    return 8;
}

static bool storable(const mp_val *v)
{
    switch (mp_val_typeof(v)) {
    case MP_VAL_NONE:
    case MP_VAL_BOOL:
    case MP_VAL_INT:
    case MP_VAL_FLOAT:
    case MP_VAL_STR:
    case MP_VAL_BYTES:
        return v != NULL;
    default:
        return false;
    }
}

/*
 * Write v as item i whose room is room bytes, keeping a "%ds" format
 * when the slot has one (Python's __setitem__).  The caller checked that
 * a str or bytes fits.
 */
static void put_item(const struct layout *L, int64_t i, size_t off, size_t room,
                     const mp_val *v)
{
    unsigned char *item = L->base + L->data + off;
    char *fmt = (char *)L->base + L->formats + (size_t)i * 8;
    signed char *code = (signed char *)L->base + L->codes + i;
    char nf[9] = "";
    const char *p;
    size_t len;
    switch (mp_val_typeof(v)) {
    case MP_VAL_INT: {
        int64_t x;
        mp_val_as_int(v, &x);
        memcpy(nf, "q", 1);
        wr64(item, x);
        *code = CODE_VALUE;
        break;
    }
    case MP_VAL_FLOAT: {
        double d;
        mp_val_as_float(v, &d);
        memcpy(nf, "d", 1);
        memcpy(item, &d, 8);
        *code = CODE_VALUE;
        break;
    }
    case MP_VAL_BOOL: {
        bool b;
        mp_val_as_bool(v, &b);
        memcpy(nf, "xxxxxxx?", 8);
        memset(item, 0, 8);
        item[7] = b;
        *code = CODE_VALUE;
        break;
    }
    case MP_VAL_NONE:
        memcpy(nf, "xxxxxx?x", 8);
        memset(item, 0, 8);
        *code = CODE_NONE;
        break;
    default: /* str, bytes */
        mp_val_as_str(v, &p, &len);
        if (fmt[7] != '\0' || strnlen(fmt, 8) == 0 || fmt[strnlen(fmt, 8) - 1] != 's')
            snprintf(nf, sizeof nf, "%zus", room);
        else
            memcpy(nf, fmt, strnlen(fmt, 8));
        size_t width = (size_t)strtoull(nf, NULL, 10);
        memset(item, 0, width);
        memcpy(item, p, len);
        *code = mp_val_typeof(v) == MP_VAL_STR ? CODE_STR : CODE_BYTES;
        break;
    }
    memset(fmt, 0, 8);
    memcpy(fmt, nf, strlen(nf));
}

/* ---- ShareableList ---------------------------------------------------------- */

static mp_shareable_list *shareable_list_create(const mp_val *seq, const char *name,
                                                bool notrack)
{
    mp_val_type t = mp_val_typeof(seq);
    if (seq == NULL || (t != MP_VAL_LIST && t != MP_VAL_TUPLE))
        return mp__fail_null(MP_EINVAL);
    int64_t n = (int64_t)mp_val_len(seq);
    size_t data_len = 0;
    for (int64_t i = 0; i < n; i++) {
        const mp_val *v = mp_val_item(seq, i);
        if (!storable(v))
            return mp__fail_null(MP_EINVAL);
        data_len += item_room(v);
    }
    size_t size = (size_t)(n + 2) * 8 + data_len + (size_t)n * 9;
    mp_shareable_list *l = mp__obj_new(sizeof *l, SL_MAGIC);
    if (l == NULL)
        return mp__fail_null(-ENOMEM);
    l->shm = mp_shared_memory_new(.name = name, .create = true, .size = size,
                                  .notrack = notrack);
    if (l->shm == NULL) {
        int r = mp_last_error();
        mp__obj_free(l);
        return mp__fail_null(r);
    }
    l->n = n;
    unsigned char *b = mp_shared_memory_buf(l->shm);
    if (b == NULL) {
        int r = mp_last_error();
        mp_shared_memory_unlink(l->shm);
        mp_shared_memory_free(l->shm);
        mp__obj_free(l);
        return mp__fail_null(r);
    }
    wr64(b, n);
    size_t off = 0;
    wr64(b + 8, 0);
    for (int64_t i = 0; i < n; i++) {
        off += item_room(mp_val_item(seq, i));
        wr64(b + 16 + (size_t)i * 8, (int64_t)off);
    }
    struct layout L;
    layout_of(l, &L);
    off = 0;
    for (int64_t i = 0; i < n; i++) {
        const mp_val *v = mp_val_item(seq, i);
        size_t room = item_room(v);
        put_item(&L, i, off, room, v);
        off += room;
    }
    return l;
}

mp_shareable_list *mp_shareable_list_new(const mp_val *seq, const char *name)
{
    return shareable_list_create(seq, name, false);
}

mp_shareable_list *mp_shareable_list_attach(const char *name)
{
    if (name == NULL)
        return mp__fail_null(MP_EINVAL);
    mp_shareable_list *l = mp__obj_new(sizeof *l, SL_MAGIC);
    if (l == NULL)
        return mp__fail_null(-ENOMEM);
    l->shm = mp_shared_memory_new(.name = name);
    int r = l->shm == NULL ? mp_last_error() : 0;
    unsigned char *b = r == 0 ? mp_shared_memory_buf(l->shm) : NULL;
    if (r == 0 && b == NULL)
        r = mp_last_error();
    if (r == 0)
        r = layout_check(b, mp_shared_memory_size(l->shm), &l->n);
    if (r != 0) {
        mp_shared_memory_free(l->shm);
        mp__obj_free(l);
        return mp__fail_null(r);
    }
    return l;
}

ssize_t mp_shareable_list_len(const mp_shareable_list *l)
{
    return mp__obj_check(l, SL_MAGIC) == 0 ? (ssize_t)l->n : MP_EINVAL;
}

const char *mp_shareable_list_name(const mp_shareable_list *l)
{
    return mp__obj_check(l, SL_MAGIC) == 0 ? mp_shared_memory_name(l->shm) : "";
}

mp_shared_memory *mp_shareable_list_shm(const mp_shareable_list *l)
{
    return mp__obj_check(l, SL_MAGIC) == 0 ? l->shm : NULL;
}

/* Item i's place: Python's negative indexes count from the end. */
static int item_at(mp_shareable_list *l, int64_t *i, struct layout *L, size_t *off,
                   size_t *room)
{
    int r = layout_of(l, L);
    if (r != 0)
        return r;
    if (*i < 0)
        *i += L->n;
    if (*i < 0 || *i >= L->n)
        return MP_EINVAL; /* IndexError */
    int64_t a = rd64(L->base + 8 + (size_t)*i * 8), b = rd64(L->base + 16 + (size_t)*i * 8);
    if (a < 0 || b < a + 8 || L->data + (size_t)b > L->size ||
        L->codes + (size_t)L->n > L->size)
        return -EPROTO;
    *off = (size_t)a;
    *room = (size_t)(b - a);
    return 0;
}

int mp_shareable_list_get(mp_shareable_list *l, int64_t i, mp_val **out)
{
    if (out == NULL)
        return MP_EINVAL;
    *out = NULL;
    struct layout L;
    size_t off, room;
    int r = item_at(l, &i, &L, &off, &room);
    if (r != 0)
        return r;
    const unsigned char *item = L.base + L.data + off;
    char fmt[9] = "";
    memcpy(fmt, L.base + L.formats + (size_t)i * 8, 8);
    signed char code = (signed char)L.base[L.codes + (size_t)i];
    mp_val *v = NULL;
    if (code == CODE_NONE) {
        v = mp_val_none();
    } else if (code == CODE_STR || code == CODE_BYTES) {
        size_t width = (size_t)strtoull(fmt, NULL, 10);
        if (strlen(fmt) == 0 || fmt[strlen(fmt) - 1] != 's' || width > room)
            return -EPROTO;
        while (width > 0 && item[width - 1] == '\0') /* Python's rstrip */
            width--;
        v = code == CODE_STR ? mp_val_strn((const char *)item, width)
                             : mp_val_bytes(item, width);
    } else if (code == CODE_VALUE && strcmp(fmt, "q") == 0) {
        v = mp_val_int(rd64(item));
    } else if (code == CODE_VALUE && strcmp(fmt, "d") == 0) {
        double d;
        memcpy(&d, item, 8);
        v = mp_val_float(d);
    } else if (code == CODE_VALUE && strcmp(fmt, "xxxxxxx?") == 0) {
        v = mp_val_bool(item[7] != 0);
    } else {
        return -EPROTO;
    }
    if (v == NULL)
        return mp_last_error() != 0 ? mp_last_error() : -ENOMEM;
    *out = v;
    return 0;
}

int mp_shareable_list_set(mp_shareable_list *l, int64_t i, const mp_val *v)
{
    if (!storable(v))
        return MP_EINVAL;
    struct layout L;
    size_t off, room;
    int r = item_at(l, &i, &L, &off, &room);
    if (r != 0)
        return r;
    mp_val_type t = mp_val_typeof(v);
    if (t == MP_VAL_STR || t == MP_VAL_BYTES) {
        const char *p;
        size_t len;
        mp_val_as_str(v, &p, &len);
        if (len > room)
            return MP_EINVAL; /* 'bytes/str item exceeds available storage' */
    }
    put_item(&L, i, off, room, v);
    return 0;
}

int mp_shareable_list_index(mp_shareable_list *l, const mp_val *v, int64_t *index)
{
    ssize_t n = mp_shareable_list_len(l);
    if (n < 0 || v == NULL)
        return MP_EINVAL;
    for (int64_t i = 0; i < n; i++) {
        mp_val *x;
        int r = mp_shareable_list_get(l, i, &x);
        if (r != 0)
            return r;
        bool eq = mp_val_eq(x, v);
        mp_val_free(x);
        if (eq) {
            if (index != NULL)
                *index = i;
            return 0;
        }
    }
    return -ENOENT; /* ValueError: not in list */
}

ssize_t mp_shareable_list_count(mp_shareable_list *l, const mp_val *v)
{
    ssize_t n = mp_shareable_list_len(l);
    if (n < 0 || v == NULL)
        return MP_EINVAL;
    ssize_t c = 0;
    for (int64_t i = 0; i < n; i++) {
        mp_val *x;
        int r = mp_shareable_list_get(l, i, &x);
        if (r != 0)
            return r;
        c += mp_val_eq(x, v);
        mp_val_free(x);
    }
    return c;
}

int mp_shareable_list_unlink(mp_shareable_list *l)
{
    if (mp__obj_check(l, SL_MAGIC) != 0)
        return MP_EINVAL;
    return mp_shared_memory_unlink(l->shm);
}

void mp_shareable_list_free(mp_shareable_list *l)
{
    if (mp__obj_check(l, SL_MAGIC) != 0)
        return;
    mp_shared_memory_free(l->shm);
    mp__obj_free(l);
}

/* ---- SharedMemoryManager ------------------------------------------------------- */

struct smm_entry {
    struct smm_entry *next;
    char name[MP_SHM_NAME_MAX + 1];
};

struct mp_shm_manager {
    mp__obj hdr;
    pthread_mutex_t lock;     /* robust, process-shared */
    struct smm_entry *blocks; /* arena: every segment handed out */
    bool shut;
};

mp_shm_manager *mp_shm_manager_new(void)
{
    mp_shm_manager *m = mp__obj_create(sizeof *m, SMM_MAGIC);
    if (m == NULL)
        return NULL;
    int r = mp__robust_mutex_init(&m->lock);
    if (r != 0) {
        mp__obj_free(m);
        return mp__fail_null(r);
    }
    return m;
}

static int smm_remember(mp_shm_manager *m, const char *name)
{
    struct smm_entry *e = mp__alloc(sizeof *e);
    if (e == NULL)
        return -ENOMEM;
    snprintf(e->name, sizeof e->name, "%s", name);
    mp__robust_lock(&m->lock);
    bool shut = m->shut;
    if (!shut) {
        e->next = m->blocks;
        m->blocks = e;
    }
    mp__robust_unlock(&m->lock);
    if (shut) {
        mp__free(e);
        return MP_EINVAL;
    }
    return 0;
}

static bool smm_ok(mp_shm_manager *m)
{
    if (mp__obj_check(m, SMM_MAGIC) != 0)
        return false;
    mp__robust_lock(&m->lock);
    bool shut = m->shut;
    mp__robust_unlock(&m->lock);
    return !shut;
}

mp_shared_memory *mp_shm_manager_shared_memory(mp_shm_manager *m, size_t size)
{
    if (!smm_ok(m))
        return mp__fail_null(MP_EINVAL);
    mp_shared_memory *s = mp_shared_memory_new(.create = true, .size = size);
    if (s == NULL)
        return NULL;
    int r = smm_remember(m, mp_shared_memory_name(s));
    if (r != 0) {
        mp_shared_memory_unlink(s);
        mp_shared_memory_free(s);
        return mp__fail_null(r);
    }
    return s;
}

mp_shareable_list *mp_shm_manager_shareable_list(mp_shm_manager *m, const mp_val *seq)
{
    if (!smm_ok(m))
        return mp__fail_null(MP_EINVAL);
    mp_shareable_list *l = mp_shareable_list_new(seq, NULL);
    if (l == NULL)
        return NULL;
    int r = smm_remember(m, mp_shareable_list_name(l));
    if (r != 0) {
        mp_shareable_list_unlink(l);
        mp_shareable_list_free(l);
        return mp__fail_null(r);
    }
    return l;
}

int mp_shm_manager_shutdown(mp_shm_manager *m)
{
    if (mp__obj_check(m, SMM_MAGIC) != 0)
        return MP_EINVAL;
    mp__robust_lock(&m->lock);
    struct smm_entry *e = m->blocks;
    m->blocks = NULL;
    m->shut = true;
    mp__robust_unlock(&m->lock);
    while (e != NULL) {
        struct smm_entry *next = e->next;
        mp_shared_memory *s = mp_shared_memory_new(.name = e->name);
        if (s != NULL) {
            mp_shared_memory_unlink(s); /* also ends its tracking */
            mp_shared_memory_free(s);
        }
        mp__free(e);
        e = next;
    }
    return 0;
}

void mp_shm_manager_free(mp_shm_manager *m)
{
    if (mp_shm_manager_shutdown(m) == 0)
        mp__obj_free(m);
}
