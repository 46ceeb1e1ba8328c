/*
 * mgr_server.c: the manager's server: the table of objects it holds, the
 * decoding of requests, method dispatch and the encoding of replies.
 *
 * The server state is private to the server process (plain malloc'd
 * memory); only the manager object and the channels are shared.  One lock
 * (process-private) guards the table and every object of the value kinds;
 * calls on the blocking kinds (hosted locks and queues) run outside it,
 * with the object pinned so it cannot be freed under them.
 */
#include "internal/managers.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct mgr_srv {
    mp_manager *m;
    pthread_mutex_t lock;
    struct mgr_obj **tab; /* open addressing on id; NULL empty, TOMB removed */
    size_t nb;
    size_t used;
    size_t count;
    uint64_t next_id;
    _Atomic bool stopping;
    bool freeing; /* mp__srv_free: references no longer count */
};

static struct mgr_obj tomb_obj;
#define TOMB (&tomb_obj)

/* ---- replies -------------------------------------------------------------- */

void mp__reply_val(struct mgr_reply *r, mp_val *owned)
{
    r->status = MGR_ST_OK;
    mp_val_free(r->owned);
    r->owned = owned;
    r->val = owned;
}

void mp__reply_borrow(struct mgr_reply *r, const mp_val *v)
{
    r->status = MGR_ST_OK;
    r->val = v;
}

void mp__reply_none(struct mgr_reply *r)
{
    r->status = MGR_ST_OK;
    r->val = &mp__none;
}

static void reply_verror(struct mgr_reply *r, int code, const char *type, const char *fmt,
                         va_list ap)
{
    r->status = MGR_ST_ERROR;
    r->code = code;
    snprintf(r->type, sizeof r->type, "%s", type ? type : "Error");
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
}

int mp__reply_error(struct mgr_reply *r, int code, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply_verror(r, code, type, fmt, ap);
    va_end(ap);
    return code;
}

/* Where mp_remote_raise puts its words while a registered method runs. */
static __thread struct mgr_reply *raise_target;

int mp_remote_raise(int code, const char *type, const char *fmt, ...)
{
    struct mgr_reply *r = raise_target;
    if (r != NULL && fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        reply_verror(r, code, type, fmt, ap);
        va_end(ap);
    }
    return code;
}

int mp__args(struct mgr_reply *r, const char *name, const mp_val *args, size_t min, size_t max)
{
    size_t n = args->seq.len;
    if (n >= min && n <= max)
        return 0;
    if (min == max)
        return mp__reply_error(r, MP_EINVAL, "TypeError",
                               "%s() takes exactly %zu argument%s (%zu given)", name, min,
                               min == 1 ? "" : "s", n);
    if (n < min)
        return mp__reply_error(r, MP_EINVAL, "TypeError",
                               "%s expected at least %zu argument%s, got %zu", name, min,
                               min == 1 ? "" : "s", n);
    return mp__reply_error(r, MP_EINVAL, "TypeError",
                           "%s expected at most %zu argument%s, got %zu", name, max,
                           max == 1 ? "" : "s", n);
}

static void encode_reply(struct mgr_reply *r, mp__buf *out)
{
    out->len = 0;
    if (r->status == MGR_ST_OK) {
        mp__buf_putc(out, MGR_ST_OK);
        if (mp__val_encode_buf(out, r->val ? r->val : MP_NONE) != 0 && !out->oom) {
            /* A method produced something that cannot be encoded. */
            out->len = 0;
            mp__reply_error(r, MP_EINVAL, "ValueError", "result cannot be encoded");
        }
    }
    if (r->status == MGR_ST_PROXY) {
        mp__buf_putc(out, MGR_ST_PROXY);
        mp__buf_varint(out, r->oid);
        mp__buf_varint(out, r->kind);
        size_t n = strlen(r->typeid);
        mp__buf_varint(out, n);
        mp__buf_put(out, r->typeid, n);
        uint64_t native = (uint64_t)(uintptr_t)r->native;
        uint8_t le[8];
        for (int k = 0; k < 8; k++)
            le[k] = (uint8_t)(native >> (8 * k));
        mp__buf_put(out, le, 8);
    }
    if (r->status == MGR_ST_ERROR) {
        mp__buf_putc(out, MGR_ST_ERROR);
        int64_t c = r->code;
        mp__buf_varint(out, ((uint64_t)c << 1) ^ (uint64_t)(c >> 63));
        size_t n = strnlen(r->type, sizeof r->type);
        mp__buf_varint(out, n);
        mp__buf_put(out, r->type, n);
        /* The message is cut on a character boundary so it stays UTF-8. */
        n = strnlen(r->msg, sizeof r->msg);
        while (n > 0 && !mp__utf8_valid(r->msg, n))
            n--;
        mp__buf_varint(out, n);
        mp__buf_put(out, r->msg, n);
    }
    mp_val_free(r->owned);
    r->owned = NULL;
    r->val = NULL;
}

/* ---- the object table ------------------------------------------------------ */

static size_t slot_of(uint64_t id, size_t nb)
{
    uint64_t x = id * 0x9e3779b97f4a7c15ull;
    return (size_t)(x >> 17) & (nb - 1);
}

static int tab_grow(struct mgr_srv *s)
{
    size_t nb = s->nb ? s->nb : 64;
    while (s->count * 2 + 2 > nb)
        nb *= 2;
    struct mgr_obj **tab = calloc(nb, sizeof *tab);
    if (tab == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < s->nb; i++) {
        struct mgr_obj *o = s->tab[i];
        if (o == NULL || o == TOMB)
            continue;
        size_t j = slot_of(o->id, nb);
        while (tab[j] != NULL)
            j = (j + 1) & (nb - 1);
        tab[j] = o;
    }
    free(s->tab);
    s->tab = tab;
    s->nb = nb;
    s->used = s->count;
    return 0;
}

static struct mgr_obj *tab_find(struct mgr_srv *s, uint64_t id)
{
    if (s->nb == 0)
        return NULL;
    size_t j = slot_of(id, s->nb);
    for (;;) {
        struct mgr_obj *o = s->tab[j];
        if (o == NULL)
            return NULL;
        if (o != TOMB && o->id == id)
            return o;
        j = (j + 1) & (s->nb - 1);
    }
}

static int tab_add(struct mgr_srv *s, struct mgr_obj *o)
{
    if ((s->used + 1) * 4 >= s->nb * 3 && tab_grow(s) != 0)
        return -ENOMEM;
    size_t j = slot_of(o->id, s->nb);
    while (s->tab[j] != NULL && s->tab[j] != TOMB)
        j = (j + 1) & (s->nb - 1);
    if (s->tab[j] == NULL)
        s->used++;
    s->tab[j] = o;
    s->count++;
    return 0;
}

static void tab_remove(struct mgr_srv *s, struct mgr_obj *o)
{
    size_t j = slot_of(o->id, s->nb);
    while (s->tab[j] != o)
        j = (j + 1) & (s->nb - 1);
    s->tab[j] = TOMB;
    s->count--;
}

/* ---- the registry ------------------------------------------------------------ */

static const struct mgr_type_def *reg_type(struct mgr_srv *s, int idx)
{
    return &s->m->reg->types[idx];
}

static int reg_find(struct mgr_srv *s, const char *typeid, size_t len)
{
    struct mgr_registry *reg = s->m->reg;
    if (reg == NULL)
        return -1;
    for (uint32_t i = 0; i < reg->ntypes; i++)
        if (strlen(reg->types[i].typeid) == len &&
            memcmp(reg->types[i].typeid, typeid, len) == 0)
            return (int)i;
    return -1;
}

int (*mp__mgr_comparator(struct mgr_srv *s, const char *name))(const mp_val *, const mp_val *)
{
    struct mgr_registry *reg = s->m->reg;
    if (reg == NULL)
        return NULL;
    for (uint32_t i = 0; i < reg->ncmps; i++)
        if (strcmp(reg->cmps[i].name, name) == 0)
            return (int (*)(const mp_val *, const mp_val *))mp__fnref_resolve(
                &reg->cmps[i].fn);
    return NULL;
}

/* ---- objects ---------------------------------------------------------------- */

static void obj_destroy(struct mgr_srv *s, struct mgr_obj *o)
{
    if (o->typeidx >= 0) {
        void (*destroy)(void *) = (void (*)(void *))mp__fnref_resolve(
            &reg_type(s, o->typeidx)->destroy);
        if (destroy != NULL)
            destroy(o->obj);
    } else {
        const struct mgr_kind *k = mp__mgr_kind_by_kind(o->kind);
        if (k != NULL && k->destroy != NULL)
            k->destroy(o->obj);
    }
    free(o);
}

/* Drop one reference; frees the object at zero unless a call is running. */
static void obj_decref(struct mgr_srv *s, struct mgr_obj *o)
{
    if (--o->refs > 0)
        return;
    tab_remove(s, o);
    if (o->pins > 0)
        o->dead = true;
    else
        obj_destroy(s, o);
}

/* The typeid of a held object. */
static const char *obj_typeid(struct mgr_srv *s, const struct mgr_obj *o)
{
    if (o->typeidx >= 0)
        return reg_type(s, o->typeidx)->typeid;
    const struct mgr_kind *k = mp__mgr_kind_by_kind(o->kind);
    return k ? k->typeid : "?";
}

/* ---- proxy references held by the server -------------------------------------
 *
 * A proxy reference (MP_VAL_PROXY) that arrives in a request is bound to
 * the server: it counts as one reference to its object for as long as the
 * value lives, wherever it is stored (Python's server-side proxy that the
 * unpickled token becomes).  Freeing it (the container is freed, the slot
 * overwritten or removed, the argument tuple dropped) gives the reference
 * back; copying it takes another.  Values are freed and copied under the
 * server lock, as the objects that hold them are used.
 */

void mp__mgr_ref_drop(mp_val *v)
{
    struct mgr_srv *s = v->ref.owner_;
    if (s == NULL || s->freeing)
        return;
    struct mgr_obj *o = tab_find(s, v->ref.oid);
    if (o != NULL)
        obj_decref(s, o);
}

void mp__mgr_ref_keep(mp_val *v)
{
    struct mgr_srv *s = v->ref.owner_;
    struct mgr_obj *o = s != NULL && !s->freeing ? tab_find(s, v->ref.oid) : NULL;
    if (o != NULL)
        o->refs++;
    else
        v->ref.bind_ = MP__REF_FREE;
}

/* The object a reference names, if it is held with that kind and typeid. */
static struct mgr_obj *ref_target(struct mgr_srv *s, uint64_t oid, uint32_t kind,
                                  const char *typeid, size_t tlen)
{
    struct mgr_obj *o = tab_find(s, oid);
    if (o == NULL || o->kind != kind)
        return NULL;
    const char *t = obj_typeid(s, o);
    return strlen(t) == tlen && memcmp(t, typeid, tlen) == 0 ? o : NULL;
}

/* Bind every proxy reference in v to the server; MP_EINVAL (with an error
 * reply) for one that names no object held here. */
static int bind_refs(struct mgr_srv *s, mp_val *v, struct mgr_reply *r)
{
    size_t pos = 0;
    mp_val *k, *x;
    switch (v->type) {
    case MP_VAL_PROXY: {
        struct mgr_obj *o = ref_target(s, v->ref.oid, v->ref.kind, v->ref.type_id,
                                       strlen(v->ref.type_id));
        if (o == NULL)
            return mp__reply_error(r, MP_EINVAL, "KeyError",
                                   "proxy of '%s' object %llu: no such object in this manager",
                                   v->ref.type_id, (unsigned long long)v->ref.oid);
        o->refs++;
        v->ref.bind_ = MP__REF_SERVER;
        v->ref.owner_ = s;
        return 0;
    }
    case MP_VAL_LIST:
    case MP_VAL_TUPLE:
        for (size_t i = 0; i < v->seq.len; i++)
            if (bind_refs(s, v->seq.items[i], r) != 0)
                return MP_EINVAL;
        return 0;
    case MP_VAL_DICT:
        while (pos < v->dict.slots_) {
            k = mp__val_dict_slot_key(v, pos);
            x = mp__val_dict_slot_value(v, pos);
            pos++;
            if (k != NULL && (bind_refs(s, k, r) != 0 || bind_refs(s, x, r) != 0))
                return MP_EINVAL;
        }
        return 0;
    default:
        return 0;
    }
}

/* An object a registered create returned before: same pointer, same id. */
static struct mgr_obj *find_by_ptr(struct mgr_srv *s, int typeidx, void *ptr)
{
    for (size_t i = 0; i < s->nb; i++) {
        struct mgr_obj *o = s->tab[i];
        if (o != NULL && o != TOMB && o->typeidx == typeidx && o->obj == ptr)
            return o;
    }
    return NULL;
}

/* A reply that hands out a proxy for o. */
static void proxy_reply(struct mgr_srv *s, struct mgr_obj *o, struct mgr_reply *r)
{
    r->status = MGR_ST_PROXY;
    r->oid = o->id;
    r->kind = o->kind;
    snprintf(r->typeid, sizeof r->typeid, "%s", obj_typeid(s, o));
    /* A hosted libmp object lives in the arena: the family uses it directly. */
    const struct mgr_kind *k = mp__mgr_kind_by_kind(o->kind);
    r->native = k != NULL && k->blocking ? o->obj : NULL;
}

static int obj_register(struct mgr_srv *s, uint32_t kind, int typeidx, void *ptr,
                        struct mgr_reply *r)
{
    struct mgr_obj *o = typeidx >= 0 ? find_by_ptr(s, typeidx, ptr) : NULL;
    if (o != NULL) {
        o->refs++;
    } else {
        o = calloc(1, sizeof *o);
        if (o == NULL)
            return mp__reply_error(r, -ENOMEM, "MemoryError", "out of memory");
        o->id = s->next_id++;
        o->kind = kind;
        o->typeidx = typeidx;
        o->refs = 1;
        o->obj = ptr;
        if (tab_add(s, o) != 0) {
            free(o);
            return mp__reply_error(r, -ENOMEM, "MemoryError", "out of memory");
        }
    }
    proxy_reply(s, o, r);
    return 0;
}

mp_manager *mp__srv_manager(struct mgr_srv *s)
{
    return s->m;
}

int mp__srv_register(struct mgr_srv *s, uint32_t kind, void *obj, struct mgr_reply *r)
{
    return obj_register(s, kind, -1, obj, r);
}

/* ---- requests --------------------------------------------------------------- */

static int do_create(struct mgr_srv *s, const char *typeid, size_t tlen, mp_val *args,
                     struct mgr_reply *r)
{
    int idx = reg_find(s, typeid, tlen);
    if (idx >= 0) {
        const struct mgr_type_def *t = reg_type(s, idx);
        void *(*create)(const mp_val *) = (void *(*)(const mp_val *))mp__fnref_resolve(
            &t->create);
        if (create == NULL)
            return mp__reply_error(r, MP_EINVAL, "TypeError",
                                   "typeid '%s' has no callable here", t->typeid);
        raise_target = r;
        r->status = MGR_ST_OK;
        void *obj = create(args);
        raise_target = NULL;
        if (obj == NULL) {
            if (r->status != MGR_ST_ERROR)
                mp__reply_error(r, MP_EINVAL, "Error", "%s() failed", t->typeid);
            return r->code;
        }
        return obj_register(s, t->kind ? t->kind : MP_PROXY_CUSTOM, idx, obj, r);
    }
    const struct mgr_kind *k = mp__mgr_kind_by_typeid(typeid, tlen);
    if (k == NULL || k->create == NULL)
        return mp__reply_error(r, MP_EINVAL, "KeyError", "'%.*s'",
                               (int)(tlen > 64 ? 64 : tlen), typeid);
    void *obj = NULL;
    int e = k->create(s, args, &obj, r);
    if (e != 0)
        return e;
    e = obj_register(s, k->kind, -1, obj, r);
    if (e != 0)
        k->destroy(obj);
    return e;
}

static int call_registered(struct mgr_srv *s, struct mgr_obj *o, const char *name, size_t nlen,
                           mp_val *args, struct mgr_reply *r)
{
    const struct mgr_type_def *t = reg_type(s, o->typeidx);
    for (uint32_t i = 0; i < t->nmethods; i++) {
        const struct mgr_method_def *md = &t->methods[i];
        if (strlen(md->name) != nlen || memcmp(md->name, name, nlen) != 0)
            continue;
        mp_method_fn fn = (mp_method_fn)mp__fnref_resolve(&md->fn);
        if (fn == NULL)
            break;
        mp_val *result = NULL;
        raise_target = r;
        r->status = MGR_ST_OK;
        int e = fn(o->obj, args, &result);
        raise_target = NULL;
        if (e != 0) {
            mp_val_free(result);
            if (r->status != MGR_ST_ERROR)
                mp__reply_error(r, e, "Error", "%s() failed: %s", md->name, mp_strerror(e));
            r->code = e;
            return e;
        }
        if (result != NULL && mp__val_check(result) != 0) {
            mp_val_free(result);
            return mp__reply_error(r, MP_EINVAL, "ValueError",
                                   "%s() returned a malformed value", md->name);
        }
        if (result != NULL)
            mp__reply_val(r, result);
        else
            mp__reply_none(r);
        return 0;
    }
    /* Python's proxies print str() and repr() of objects without them. */
    if ((nlen == 8 && memcmp(name, "__repr__", 8) == 0) ||
        (nlen == 7 && memcmp(name, "__str__", 7) == 0)) {
        char text[96];
        int n = snprintf(text, sizeof text, "<%s object>", t->typeid);
        mp_val *v = mp__val_new_bytes(MP_VAL_STR, text, (size_t)n);
        if (v == NULL)
            return mp__reply_error(r, -ENOMEM, "MemoryError", "out of memory");
        mp__reply_val(r, v);
        return 0;
    }
    return mp__reply_error(r, MP_EINVAL, "AttributeError",
                           "method '%.*s' of '%s' object is not exposed",
                           (int)(nlen > 64 ? 64 : nlen), name, t->typeid);
}

static const struct mgr_method *find_method(const struct mgr_kind *k, const char *name,
                                            size_t nlen)
{
    for (const struct mgr_method *m = k->methods; m->name != NULL; m++)
        if (m->name[0] == name[0] && strncmp(m->name, name, nlen) == 0 &&
            m->name[nlen] == '\0')
            return m;
    return NULL;
}

static int do_call(struct mgr_srv *s, uint64_t oid, const char *name, size_t nlen,
                   mp_val *args, bool may_block, struct mgr_reply *r)
{
    struct mgr_obj *o = tab_find(s, oid);
    if (o == NULL)
        return mp__reply_error(r, MP_EINVAL, "KeyError",
                               "object %llu is not held by the manager (freed?)",
                               (unsigned long long)oid);
    if (o->typeidx >= 0 && o->kind == MP_PROXY_CUSTOM)
        return call_registered(s, o, name, nlen, args, r);
    const struct mgr_kind *k = mp__mgr_kind_by_kind(o->kind);
    const struct mgr_method *m = k ? find_method(k, name, nlen) : NULL;
    if (m == NULL)
        return mp__reply_error(r, MP_EINVAL, "AttributeError",
                               "method '%.*s' of '%s' object is not exposed",
                               (int)(nlen > 64 ? 64 : nlen), name, k ? k->pyname : "?");
    if (!k->blocking) {
        /* Pinned: the call may drop the last reference to its own object
         * (a container that held a reference to itself). */
        o->pins++;
        int e = m->fn(s, o, args, r);
        if (--o->pins == 0 && o->dead)
            obj_destroy(s, o);
        return e;
    }
    if (!may_block)
        return mp__reply_error(r, MP_EINVAL, "RuntimeError",
                               "a hosted %s is used directly by processes of the family",
                               k->pyname);
    /* A call that may block runs without the lock, with the object pinned. */
    o->pins++;
    pthread_mutex_unlock(&s->lock);
    int e = m->fn(s, o, args, r);
    pthread_mutex_lock(&s->lock);
    if (--o->pins == 0 && o->dead)
        obj_destroy(s, o);
    return e;
}

static int read_name(mp__rd *rd, const char **p, size_t *n)
{
    int e = mp__rd_bytes(rd, p, n);
    if (e == 0 && (*n == 0 || *n >= MGR_NAME_MAX + 64))
        e = MP_EINVAL;
    return e;
}

static int read_args(mp__rd *rd, mp_val **args)
{
    int e = mp__rd_val(rd, args);
    if (e != 0)
        return e;
    if ((*args)->type != MP_VAL_TUPLE && (*args)->type != MP_VAL_LIST) {
        mp_val_free(*args);
        *args = NULL;
        return MP_EINVAL;
    }
    (*args)->type = MP_VAL_TUPLE;
    return rd->pos == rd->len ? 0 : MP_EINVAL;
}

int mp__srv_handle(struct mgr_srv *s, const uint8_t *req, size_t len, mp__buf *out,
                   bool may_block)
{
    struct mgr_reply r;
    memset(&r, 0, sizeof r);
    mp__rd rd = {.p = req, .len = len, .pos = 0};
    uint64_t oid;
    const char *name;
    size_t nlen;
    mp_val *args = NULL;
    int ret = 0;
    if (len == 0) {
        mp__reply_error(&r, MP_EINVAL, "ValueError", "empty request");
        goto reply;
    }
    uint8_t op = req[rd.pos++];
    pthread_mutex_lock(&s->lock);
    switch (op) {
    case MGR_OP_CALL:
        if (mp__rd_varint(&rd, &oid) != 0 || read_name(&rd, &name, &nlen) != 0 ||
            read_args(&rd, &args) != 0)
            goto malformed;
        if (rd.nrefs > 0 && bind_refs(s, args, &r) != 0)
            break;
        do_call(s, oid, name, nlen, args, may_block, &r);
        break;
    case MGR_OP_CREATE:
        if (read_name(&rd, &name, &nlen) != 0 || read_args(&rd, &args) != 0)
            goto malformed;
        if (rd.nrefs > 0 && bind_refs(s, args, &r) != 0)
            break;
        do_create(s, name, nlen, args, &r);
        break;
    case MGR_OP_REBUILD: {
        uint64_t kind;
        if (mp__rd_varint(&rd, &oid) != 0 || mp__rd_varint(&rd, &kind) != 0 ||
            read_name(&rd, &name, &nlen) != 0 || rd.pos != len || kind > UINT32_MAX)
            goto malformed;
        struct mgr_obj *o = ref_target(s, oid, (uint32_t)kind, name, nlen);
        if (o == NULL) {
            mp__reply_error(&r, MP_EINVAL, "KeyError",
                            "object %llu is not held by the manager (freed?)",
                            (unsigned long long)oid);
            break;
        }
        o->refs++;
        proxy_reply(s, o, &r);
        break;
    }
    case MGR_OP_COUNT: {
        if (rd.pos != len)
            goto malformed;
        mp_val *n = mp__val_new(MP_VAL_INT);
        if (n == NULL) {
            mp__reply_error(&r, -ENOMEM, "MemoryError", "out of memory");
            break;
        }
        n->i = (int64_t)s->count;
        mp__reply_val(&r, n);
        break;
    }
    case MGR_OP_INCREF:
    case MGR_OP_DECREF: {
        if (mp__rd_varint(&rd, &oid) != 0 || rd.pos != len)
            goto malformed;
        struct mgr_obj *o = tab_find(s, oid);
        if (o == NULL) {
            mp__reply_error(&r, MP_EINVAL, "KeyError",
                            "object %llu is not held by the manager", (unsigned long long)oid);
        } else {
            if (op == MGR_OP_INCREF)
                o->refs++;
            else
                obj_decref(s, o);
            mp__reply_none(&r);
        }
        break;
    }
    case MGR_OP_SHUTDOWN:
        if (rd.pos != len)
            goto malformed;
        atomic_store(&s->stopping, true);
        mp__reply_none(&r);
        ret = 1;
        break;
    case MGR_OP_PING:
        if (rd.pos != len)
            goto malformed;
        mp__reply_none(&r);
        break;
    default:
    malformed:
        mp__reply_error(&r, MP_EINVAL, "ValueError", "malformed request");
        break;
    }
    /* Encoded under the lock: the reply may borrow from a held object.  The
     * arguments are freed under it too: their proxy references count. */
    encode_reply(&r, out);
    mp_val_free(args);
    pthread_mutex_unlock(&s->lock);
    return out->oom ? -ENOMEM : ret;
reply:
    encode_reply(&r, out);
    return out->oom ? -ENOMEM : ret;
}

void mp__srv_stop(struct mgr_srv *s)
{
    atomic_store(&s->stopping, true);
}

bool mp__srv_stopping(struct mgr_srv *s)
{
    return atomic_load(&s->stopping);
}

struct mgr_srv *mp__srv_new(mp_manager *m)
{
    struct mgr_srv *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->m = m;
    s->next_id = 1;
    pthread_mutex_init(&s->lock, NULL);
    return s;
}

void mp__srv_free(struct mgr_srv *s)
{
    mp__srv_free_keep(s, false);
}

void mp__srv_free_keep(struct mgr_srv *s, bool keep_hosted)
{
    if (s == NULL)
        return;
    s->freeing = true;
    for (size_t i = 0; i < s->nb; i++) {
        struct mgr_obj *o = s->tab[i];
        if (o == NULL || o == TOMB)
            continue;
        const struct mgr_kind *k = mp__mgr_kind_by_kind(o->kind);
        if (keep_hosted && k != NULL && k->blocking)
            free(o); /* the arena object stays: a family process may still use it */
        else
            obj_destroy(s, o);
    }
    free(s->tab);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
