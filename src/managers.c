/*
 * managers.c: the manager object, the client side of calls, and proxies.
 *
 * A call builds its request in a per-thread buffer, sends it through the
 * shared-memory channel (processes of the family) or the thread's socket
 * connection (a connected manager), and decodes the reply.  Replies that
 * report an error fill the thread's remote-error record (mp_remote_error_*).
 */
#include "internal/managers.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- per-thread state ------------------------------------------------------- */

struct tl_state {
    mp__buf req;
    mp__buf rep;
    int err_code;
    char err_type[MGR_ERRTYPE_MAX];
    char err_msg[MGR_ERRMSG_MAX];
};

static __thread struct tl_state tl;
static __thread bool tl_registered;
static pthread_key_t tl_key;
static pthread_once_t tl_once = PTHREAD_ONCE_INIT;

static void tl_destroy(void *unused)
{
    (void)unused;
    mp__buf_free(&tl.req);
    mp__buf_free(&tl.rep);
    mp__chan_thread_exit();
    mp__mgr_conn_thread_exit();
}

static void tl_key_make(void)
{
    pthread_key_create(&tl_key, tl_destroy);
}

static struct tl_state *tls(void)
{
    if (MP__UNLIKELY(!tl_registered)) {
        pthread_once(&tl_once, tl_key_make);
        pthread_setspecific(tl_key, (void *)1);
        tl_registered = true;
    }
    return &tl;
}

const char *mp_remote_error_type(void)
{
    return tl.err_type;
}

const char *mp_remote_error_message(void)
{
    return tl.err_msg;
}

int mp_remote_error_code(void)
{
    return tl.err_code;
}

/* ---- the manager object ----------------------------------------------------- */

static int copy_address(mp_manager *m, const mp_manager_options *o)
{
    if (o->path != NULL && o->host != NULL)
        return MP_EINVAL;
    if (o->path != NULL) {
        size_t n = strlen(o->path);
        if (n == 0 || n >= sizeof m->path || n > 107)
            return MP_EINVAL;
        memcpy(m->path, o->path, n + 1);
        m->path_len = n;
        m->family = 1;
    } else if (o->host != NULL) {
        size_t n = strlen(o->host);
        if (n >= sizeof m->host || o->port < 0 || o->port > 65535)
            return MP_EINVAL;
        memcpy(m->host, o->host, n + 1);
        m->port = o->port;
        m->family = 2;
    } else if (o->port != 0) {
        return MP_EINVAL;
    }
    if (o->authkey != NULL) {
        if (o->authkey_len > sizeof m->authkey)
            return MP_EINVAL;
        memcpy(m->authkey, o->authkey, o->authkey_len);
        m->authkey_len = o->authkey_len;
        m->has_authkey = true;
    } else if (o->authkey_len != 0) {
        return MP_EINVAL;
    }
    return 0;
}

mp_manager *mp_manager_new_opts(const mp_manager_options *opts)
{
    if (opts == NULL)
        return mp__fail_null(MP_EINVAL);
    int r = mp__heap_init();
    if (r != 0)
        return mp__fail_null(r);
    mp_manager *m = mp__obj_new(sizeof *m, MP__MAGIC_MANAGER);
    if (m == NULL)
        return mp__fail_null(-ENOMEM);
    r = copy_address(m, opts);
    if (r == 0)
        r = mp__robust_mutex_init(&m->alive);
    if (r != 0) {
        mp__obj_free(m);
        return mp__fail_null(r);
    }
    m->ctx = opts->ctx;
    atomic_store(&m->state, MGR_NEW);
    return m;
}

static int check_m(const mp_manager *m)
{
    return mp__obj_check(m, MP__MAGIC_MANAGER);
}

static bool name_ok(const char *name)
{
    return name != NULL && name[0] != '\0' && strlen(name) < MGR_NAME_MAX;
}

static int registry(mp_manager *m, struct mgr_registry **out)
{
    if (atomic_load(&m->state) != MGR_NEW)
        return MP_EINVAL;
    if (m->reg == NULL) {
        m->reg = mp__alloc(sizeof *m->reg);
        if (m->reg == NULL)
            return -ENOMEM;
    }
    *out = m->reg;
    return 0;
}

int mp_manager_register_opts(mp_manager *m, const mp_manager_type *t)
{
    if (check_m(m) != 0 || t == NULL || !name_ok(t->typeid) || t->create == NULL ||
        t->nmethods > MGR_MAX_METHODS || (t->nmethods > 0 && t->methods == NULL))
        return MP_EINVAL;
    size_t tlen = strlen(t->typeid);
    int kind = t->kind ? t->kind : MP_PROXY_CUSTOM;
    if (kind < MP_PROXY_DICT || kind > MP_PROXY_CUSTOM || kind == MP_PROXY_VALUE ||
        kind == MP_PROXY_ARRAY)
        return MP_EINVAL;
    if (kind != MP_PROXY_CUSTOM && t->nmethods > 0)
        return MP_EINVAL;
    if (mp__mgr_kind_by_typeid(t->typeid, tlen) != NULL)
        return MP_EINVAL;
    struct mgr_registry *reg;
    int r = registry(m, &reg);
    if (r != 0)
        return r;
    if (reg->ntypes >= MGR_MAX_TYPES)
        return MP_EINVAL;
    for (uint32_t i = 0; i < reg->ntypes; i++)
        if (strcmp(reg->types[i].typeid, t->typeid) == 0)
            return MP_EINVAL;
    struct mgr_type_def *d = &reg->types[reg->ntypes];
    memset(d, 0, sizeof *d);
    memcpy(d->typeid, t->typeid, tlen + 1);
    d->kind = (uint32_t)kind;
    if (mp__fnref_make(&d->create, (void (*)(void))t->create) != 0 ||
        mp__fnref_make(&d->destroy, (void (*)(void))t->destroy) != 0)
        return MP_EINVAL;
    for (size_t i = 0; i < t->nmethods; i++) {
        const mp_method *md = &t->methods[i];
        if (!name_ok(md->name) || md->fn == NULL)
            return MP_EINVAL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(t->methods[j].name, md->name) == 0)
                return MP_EINVAL;
        memcpy(d->methods[i].name, md->name, strlen(md->name) + 1);
        if (mp__fnref_make(&d->methods[i].fn, (void (*)(void))md->fn) != 0)
            return MP_EINVAL;
    }
    d->nmethods = (uint32_t)t->nmethods;
    reg->ntypes++; /* published last: a failed registration leaves no trace */
    return 0;
}

int mp_manager_register_comparator(mp_manager *m, const char *name,
                                   int (*fn)(const mp_val *a, const mp_val *b))
{
    if (check_m(m) != 0 || !name_ok(name) || fn == NULL)
        return MP_EINVAL;
    static const char *const builtin[] = {"default", "bytes", "len", "casefold"};
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
        if (strcmp(name, builtin[i]) == 0)
            return MP_EINVAL;
    struct mgr_registry *reg;
    int r = registry(m, &reg);
    if (r != 0)
        return r;
    if (reg->ncmps >= MGR_MAX_CMPS)
        return MP_EINVAL;
    for (uint32_t i = 0; i < reg->ncmps; i++)
        if (strcmp(reg->cmps[i].name, name) == 0)
            return MP_EINVAL;
    struct mgr_cmp_def *c = &reg->cmps[reg->ncmps];
    if (mp__fnref_make(&c->fn, (void (*)(void))fn) != 0)
        return MP_EINVAL;
    memcpy(c->name, name, strlen(name) + 1);
    reg->ncmps++;
    return 0;
}

/* ---- serving ------------------------------------------------------------------ */

/* Take m from NEW to STARTING; MP_EINVAL when it is past NEW. */
static int claim_start(mp_manager *m)
{
    uint32_t st = MGR_NEW;
    return atomic_compare_exchange_strong(&m->state, &st, MGR_STARTING) ? 0 : MP_EINVAL;
}

static void set_state(mp_manager *m, uint32_t st)
{
    atomic_store(&m->state, st);
    mp__futex_wake((uint32_t *)&m->state, INT32_MAX);
}

int mp__mgr_serve(mp_manager *m, pid_t watch)
{
    struct mgr_srv *s = mp__srv_new(m);
    if (s == NULL) {
        m->start_error = -ENOMEM;
        set_state(m, MGR_FAILED);
        return -ENOMEM;
    }
    mp__robust_lock(&m->alive);
    struct mgr_net *net = NULL;
    int r = mp__mgr_net_start(m, s, &net);
    if (r != 0) {
        mp__robust_unlock(&m->alive);
        mp__srv_free(s);
        m->start_error = r;
        set_state(m, MGR_FAILED);
        return r;
    }
    m->server_pid = getpid();
    set_state(m, MGR_RUNNING);
    mp__chan_serve(m, s, watch);
    /* Stopping: no new calls are taken, every waiting client is woken and
     * sees MP_EEOF, then the objects are released. */
    set_state(m, MGR_STOPPED);
    mp__chan_wake_all(m);
    bool ended = mp__mgr_net_stop(net);
    mp__robust_unlock(&m->alive);
    /* A connection thread stuck in a registered method still uses the
     * server's state: it is left allocated rather than freed under it. */
    if (ended)
        mp__srv_free(s);
    return 0;
}

int mp_manager_serve_forever(mp_manager *m)
{
    if (check_m(m) != 0 || claim_start(m) != 0)
        return MP_EINVAL;
    m->owner_pid = getpid();
    return mp__mgr_serve(m, 0);
}

/* Wait until a starting server is running or has failed. */
int mp__mgr_wait_started(mp_manager *m, double timeout)
{
    mp__deadline d;
    int r = mp__deadline_init(&d, timeout);
    if (r != 0)
        return r;
    for (;;) {
        uint32_t st = atomic_load(&m->state);
        if (st == MGR_RUNNING)
            return 0;
        if (st == MGR_FAILED)
            return m->start_error ? m->start_error : MP_EINVAL;
        if (st != MGR_STARTING && st != MGR_NEW)
            return MP_EINVAL;
        r = mp__futex_wait((uint32_t *)&m->state, st, &d);
        if (r == MP_ETIMEDOUT)
            return r;
    }
}

int mp_manager_shutdown(mp_manager *m)
{
    if (check_m(m) != 0)
        return MP_EINVAL;
    uint32_t st = atomic_load(&m->state);
    if (st == MGR_NEW || st == MGR_STARTING)
        return MP_EINVAL;
    if (st == MGR_RUNNING || st == MGR_CONNECTED) {
        struct tl_state *t = tls();
        t->req.len = 0;
        mp__buf_putc(&t->req, MGR_OP_SHUTDOWN);
        if (!t->req.oom)
            (void)mp__mgr_transport(m, &t->req, &t->rep);
    }
    if (st == MGR_CONNECTED) {
        mp__mgr_conn_forget(m);
        atomic_store(&m->state, MGR_STOPPED);
    }
    mp__mgr_reap_server(m);
    return 0;
}

void mp_manager_free(mp_manager *m)
{
    if (check_m(m) != 0)
        return;
    if (atomic_load(&m->state) == MGR_RUNNING && m->proc != NULL && m->owner_pid == getpid())
        mp_manager_shutdown(m);
    mp__mgr_reap_server(m);
    mp__mgr_conn_forget(m);
    mp__chan_free_all(m);
    if (m->reg != NULL)
        mp__free(m->reg);
    pthread_mutex_destroy(&m->alive);
    mp__obj_free(m);
}

int mp_manager_address(const mp_manager *m, char *path, size_t pathlen, char *host,
                       size_t hostlen, int *port)
{
    if (check_m(m) != 0)
        return MP_EINVAL;
    if (path != NULL && pathlen > 0)
        snprintf(path, pathlen, "%s", m->family == 1 ? m->path : "");
    if (host != NULL && hostlen > 0)
        snprintf(host, hostlen, "%s", m->family == 2 ? m->host : "");
    if (port != NULL)
        *port = m->family == 2 ? m->port : 0;
    return m->family;
}

pid_t mp_manager_pid(const mp_manager *m)
{
    if (check_m(m) != 0)
        return MP_EINVAL;
    uint32_t st = atomic_load(&m->state);
    return st == MGR_RUNNING ? m->server_pid : 0;
}

/* ---- calls ---------------------------------------------------------------------- */

int mp__mgr_transport(mp_manager *m, const mp__buf *req, mp__buf *rep)
{
    if (req->oom || rep == NULL)
        return -ENOMEM;
    uint32_t st = atomic_load(&m->state);
    if (st == MGR_CONNECTED)
        return mp__mgr_conn_call(m, req->p, req->len, rep);
    if (st == MGR_RUNNING)
        return mp__chan_call(m, req->p, req->len, rep);
    if (st == MGR_STOPPED)
        return MP_EEOF;
    return MP_EINVAL;
}

/* Codes that are an operation's normal outcome and reach the caller as is. */
static bool passes_through(int code)
{
    return code == MP_ETIMEDOUT || code == MP_EEMPTY || code == MP_EFULL || code == MP_EBROKEN ||
           code == MP_EOWNERDEAD;
}

struct reply_info {
    uint64_t oid;
    uint32_t kind;
    char typeid[MGR_NAME_MAX];
    void *native;
};

/* Parse a reply: the value into *out (if out), a proxy into *pi (if pi). */
static int parse_reply(const mp__buf *rep, mp_val **out, struct reply_info *pi)
{
    mp__rd rd = {.p = (const uint8_t *)rep->p, .len = rep->len, .pos = 0};
    if (rep->len == 0)
        return -EPROTO;
    uint8_t status = rd.p[rd.pos++];
    if (status == MGR_ST_OK) {
        if (out == NULL)
            return 0;
        mp_val *v;
        int e = mp__rd_val(&rd, &v);
        if (e == -ENOMEM)
            return e;
        if (e != 0 || rd.pos != rd.len) {
            mp_val_free(e == 0 ? v : NULL);
            return -EPROTO;
        }
        *out = v;
        return 0;
    }
    if (status == MGR_ST_ERROR) {
        uint64_t zz;
        const char *type, *msg;
        size_t tlen, mlen;
        if (mp__rd_varint(&rd, &zz) != 0 || mp__rd_bytes(&rd, &type, &tlen) != 0 ||
            mp__rd_bytes(&rd, &msg, &mlen) != 0)
            return -EPROTO;
        int code = (int)((int64_t)(zz >> 1) ^ -(int64_t)(zz & 1));
        if (tlen >= sizeof tl.err_type)
            tlen = sizeof tl.err_type - 1;
        if (mlen >= sizeof tl.err_msg)
            mlen = sizeof tl.err_msg - 1;
        memcpy(tl.err_type, type, tlen);
        tl.err_type[tlen] = '\0';
        memcpy(tl.err_msg, msg, mlen);
        tl.err_msg[mlen] = '\0';
        tl.err_code = code;
        return passes_through(code) ? code : MP_EREMOTE;
    }
    if (status == MGR_ST_PROXY && pi != NULL) {
        uint64_t kind;
        const char *tid;
        size_t tlen;
        if (mp__rd_varint(&rd, &pi->oid) != 0 || mp__rd_varint(&rd, &kind) != 0 ||
            mp__rd_bytes(&rd, &tid, &tlen) != 0 || tlen >= MGR_NAME_MAX || rd.len - rd.pos != 8)
            return -EPROTO;
        pi->kind = (uint32_t)kind;
        memcpy(pi->typeid, tid, tlen);
        pi->typeid[tlen] = '\0';
        uint64_t native = 0;
        for (int k = 0; k < 8; k++)
            native |= (uint64_t)rd.p[rd.pos + (size_t)k] << (8 * k);
        pi->native = (void *)(uintptr_t)native;
        return 0;
    }
    return -EPROTO;
}

static void put_name(mp__buf *b, const char *name)
{
    size_t n = strlen(name);
    mp__buf_varint(b, n);
    mp__buf_put(b, name, n);
}

/* Encode args (NULL, a tuple or a list, or an array of n values) as a tuple. */
static int put_args(mp__buf *b, const mp_val *tuple, const mp_val *const *argv, size_t n)
{
    if (tuple != NULL) {
        if (tuple->type != MP_VAL_TUPLE && tuple->type != MP_VAL_LIST)
            return MP_EINVAL;
        argv = (const mp_val *const *)tuple->seq.items;
        n = tuple->seq.len;
    }
    mp__buf_putc(b, MP__TAG_TUPLE);
    mp__buf_varint(b, n);
    for (size_t i = 0; i < n; i++) {
        int e = mp__val_encode_buf(b, argv[i]);
        if (e != 0)
            return e;
    }
    return b->oom ? -ENOMEM : 0;
}

static int check_proxy(const mp_proxy *p, uint32_t kind)
{
    if (mp__obj_check(p, MP__MAGIC_PROXY) != 0 || check_m(p->m) != 0 || p->m->hdr.id != p->mgr_id)
        return MP_EINVAL;
    if (kind != 0 && p->kind != kind)
        return MP_EINVAL;
    return 0;
}

/* Record an error reply as the thread's remote error; the code to return. */
static int local_error(const struct mgr_reply *r)
{
    snprintf(tl.err_type, sizeof tl.err_type, "%s", r->type);
    snprintf(tl.err_msg, sizeof tl.err_msg, "%s", r->msg);
    tl.err_code = r->code;
    return passes_through(r->code) ? r->code : MP_EREMOTE;
}

/*
 * Run a method of a hosted libmp object in the calling process (family
 * processes only: the object is in the shared arena), with the same method
 * functions the server runs for its socket clients.
 */
static int call_native(mp_proxy *p, const char *method, const mp_val *tuple,
                       const mp_val *const *argv, size_t n, mp_val **out)
{
    if (mp__mgr_server_gone(p->m))
        return MP_EEOF;
    const struct mgr_kind *k = mp__mgr_kind_by_kind(p->kind);
    const struct mgr_method *md = NULL;
    for (const struct mgr_method *x = k ? k->methods : NULL; x && x->name; x++)
        if (strcmp(x->name, method) == 0)
            md = x;
    struct mgr_reply r;
    memset(&r, 0, sizeof r);
    if (md == NULL) {
        mp__reply_error(&r, MP_EINVAL, "AttributeError", "method '%s' of '%s' object is not exposed",
                        method, k ? k->pyname : "?");
        return local_error(&r);
    }
    mp_val *args = mp__val_new(MP_VAL_TUPLE);
    if (tuple != NULL) {
        argv = (const mp_val *const *)tuple->seq.items;
        n = tuple->seq.len;
    }
    for (size_t i = 0; args != NULL && i < n; i++) {
        mp_val *c = mp_val_copy(argv[i]);
        if (c == NULL || mp__val_list_push(args, c) != 0) {
            int e = c == NULL ? mp_last_error() : -ENOMEM;
            mp_val_free(args);
            return e;
        }
    }
    if (args == NULL)
        return -ENOMEM;
    struct mgr_obj o = {.id = p->oid, .kind = p->kind, .typeidx = -1, .refs = 1, .obj = p->native};
    md->fn(NULL, &o, args, &r);
    mp_val_free(args);
    if (r.status == MGR_ST_ERROR) {
        mp_val_free(r.owned);
        return local_error(&r);
    }
    if (out != NULL) {
        *out = r.owned != NULL ? r.owned : mp_val_copy(r.val != NULL ? r.val : &mp__none);
        if (*out == NULL)
            return -ENOMEM;
    } else {
        mp_val_free(r.owned);
    }
    return 0;
}

/* Call method on p's object with args; decode the result into *out. */
static int call(mp_proxy *p, uint32_t kind, const char *method, const mp_val *tuple,
                const mp_val *const *argv, size_t n, mp_val **out)
{
    if (out != NULL)
        *out = NULL;
    int e = check_proxy(p, kind);
    if (e != 0)
        return e;
    if (method == NULL || method[0] == '\0' || strlen(method) >= MGR_NAME_MAX + 64)
        return MP_EINVAL;
    if (p->native != NULL)
        return call_native(p, method, tuple, argv, n, out);
    struct tl_state *t = tls();
    t->req.len = 0;
    t->req.oom = false;
    mp__buf_putc(&t->req, MGR_OP_CALL);
    mp__buf_varint(&t->req, p->oid);
    put_name(&t->req, method);
    e = put_args(&t->req, tuple, argv, n);
    if (e != 0)
        return e;
    e = mp__mgr_transport(p->m, &t->req, &t->rep);
    if (e != 0)
        return e;
    return parse_reply(&t->rep, out, NULL);
}

#define ARGS(...) (const mp_val *const[]){__VA_ARGS__}, MP__NARGS(__VA_ARGS__)
#define NOARGS NULL, 0

static mp_proxy *create(mp_manager *m, const char *typeid, const mp_val *tuple,
                        const mp_val *const *argv, size_t n)
{
    if (check_m(m) != 0 || !name_ok(typeid))
        return mp__fail_null(MP_EINVAL);
    struct tl_state *t = tls();
    t->req.len = 0;
    t->req.oom = false;
    mp__buf_putc(&t->req, MGR_OP_CREATE);
    put_name(&t->req, typeid);
    int e = put_args(&t->req, tuple, argv, n);
    if (e == 0)
        e = mp__mgr_transport(m, &t->req, &t->rep);
    struct reply_info pi;
    if (e == 0)
        e = parse_reply(&t->rep, NULL, &pi);
    if (e != 0)
        return mp__fail_null(e);
    mp_proxy *p = mp__obj_new(sizeof *p, MP__MAGIC_PROXY);
    if (p == NULL) {
        /* Give the object back to the server. */
        t->req.len = 0;
        mp__buf_putc(&t->req, MGR_OP_DECREF);
        mp__buf_varint(&t->req, pi.oid);
        (void)mp__mgr_transport(m, &t->req, &t->rep);
        return mp__fail_null(-ENOMEM);
    }
    p->m = m;
    p->mgr_id = m->hdr.id;
    p->oid = pi.oid;
    p->kind = pi.kind;
    memcpy(p->typeid, pi.typeid, sizeof p->typeid);
    /* A hosted libmp object is usable directly only in the server's family. */
    p->native = atomic_load(&m->state) == MGR_CONNECTED ? NULL : pi.native;
    return p;
}

mp_proxy *mp_manager_create(mp_manager *m, const char *typeid, const mp_val *args)
{
    if (args != NULL && args->type != MP_VAL_TUPLE && args->type != MP_VAL_LIST)
        return mp__fail_null(MP_EINVAL);
    return create(m, typeid, args, NOARGS);
}

mp_proxy *mp_manager_dict(mp_manager *m, const mp_val *init)
{
    return init ? create(m, "dict", NULL, ARGS(init)) : create(m, "dict", NULL, NOARGS);
}

mp_proxy *mp_manager_list(mp_manager *m, const mp_val *init)
{
    return init ? create(m, "list", NULL, ARGS(init)) : create(m, "list", NULL, NOARGS);
}

mp_proxy *mp_manager_namespace(mp_manager *m)
{
    return create(m, "Namespace", NULL, NOARGS);
}

mp_proxy *mp_manager_value(mp_manager *m, const char *typecode, const mp_val *value)
{
    if (typecode == NULL || value == NULL)
        return mp__fail_null(MP_EINVAL);
    return create(m, "Value", NULL, ARGS(MP_STR(typecode), value));
}

mp_proxy *mp_manager_array(mp_manager *m, const char *typecode, const mp_val *init)
{
    if (typecode == NULL)
        return mp__fail_null(MP_EINVAL);
    return create(m, "Array", NULL, ARGS(MP_STR(typecode), init ? init : MP_EMPTY_LIST));
}

void mp_proxy_free(mp_proxy *p)
{
    if (mp__obj_check(p, MP__MAGIC_PROXY) != 0)
        return;
    if (check_proxy(p, 0) == 0) {
        uint32_t st = atomic_load(&p->m->state);
        if (st == MGR_RUNNING || st == MGR_CONNECTED) {
            struct tl_state *t = tls();
            t->req.len = 0;
            t->req.oom = false;
            mp__buf_putc(&t->req, MGR_OP_DECREF);
            mp__buf_varint(&t->req, p->oid);
            (void)mp__mgr_transport(p->m, &t->req, &t->rep);
        }
    }
    mp__obj_free(p);
}

int mp_proxy_kind_of(const mp_proxy *p)
{
    return mp__obj_check(p, MP__MAGIC_PROXY) == 0 ? (int)p->kind : MP_EINVAL;
}

const char *mp_proxy_typeid(const mp_proxy *p)
{
    return mp__obj_check(p, MP__MAGIC_PROXY) == 0 ? p->typeid : "";
}

int mp_proxy_call(mp_proxy *p, const char *method, const mp_val *args, mp_val **result)
{
    if (args != NULL && args->type != MP_VAL_TUPLE && args->type != MP_VAL_LIST)
        return MP_EINVAL;
    mp_val *tmp;
    int e = call(p, 0, method, args, NOARGS, &tmp);
    if (result != NULL)
        *result = e == 0 ? tmp : NULL;
    else
        mp_val_free(tmp);
    return e;
}

static char *text_call(mp_proxy *p, const char *method)
{
    mp_val *v;
    int e = call(p, 0, method, NULL, NOARGS, &v);
    if (e != 0)
        return mp__fail_null(e);
    if (v->type != MP_VAL_STR) {
        mp_val_free(v);
        return mp__fail_null(-EPROTO);
    }
    char *s = strdup(v->s.ptr);
    mp_val_free(v);
    return s != NULL ? s : mp__fail_null(-ENOMEM);
}

char *mp_proxy_repr(mp_proxy *p)
{
    return text_call(p, "__repr__");
}

char *mp_proxy_tostring(mp_proxy *p)
{
    return text_call(p, "__str__");
}

/* An int result as ssize_t. */
static ssize_t int_result(int e, mp_val *v)
{
    if (e != 0)
        return e;
    int64_t i = 0;
    e = mp_val_as_int(v, &i);
    mp_val_free(v);
    return e != 0 ? -EPROTO : (ssize_t)i;
}

static int bool_result(int e, mp_val *v)
{
    if (e != 0)
        return e;
    int r = mp_val_truth(v) ? 1 : 0;
    mp_val_free(v);
    return r;
}

/* ---- dict ---------------------------------------------------------------------- */

#define D MP_PROXY_DICT

int mp_dict_set(mp_proxy *d, const mp_val *key, const mp_val *value)
{
    if (!mp_val_hashable(key) || value == NULL)
        return MP_EINVAL;
    return call(d, D, "__setitem__", NULL, ARGS(key, value), NULL);
}

int mp_dict_getitem(mp_proxy *d, const mp_val *key, mp_val **out)
{
    if (!mp_val_hashable(key) || out == NULL)
        return MP_EINVAL;
    return call(d, D, "__getitem__", NULL, ARGS(key), out);
}

int mp_dict_get(mp_proxy *d, const mp_val *key, const mp_val *dflt, mp_val **out)
{
    if (!mp_val_hashable(key) || out == NULL)
        return MP_EINVAL;
    return call(d, D, "get", NULL, ARGS(key, dflt ? dflt : MP_NONE), out);
}

int mp_dict_del(mp_proxy *d, const mp_val *key)
{
    if (!mp_val_hashable(key))
        return MP_EINVAL;
    return call(d, D, "__delitem__", NULL, ARGS(key), NULL);
}

int mp_dict_contains(mp_proxy *d, const mp_val *key)
{
    if (!mp_val_hashable(key))
        return MP_EINVAL;
    mp_val *v;
    int e = call(d, D, "__contains__", NULL, ARGS(key), &v);
    return bool_result(e, v);
}

ssize_t mp_dict_len(mp_proxy *d)
{
    mp_val *v;
    int e = call(d, D, "__len__", NULL, NOARGS, &v);
    return int_result(e, v);
}

static int need_out(mp_val **out)
{
    return out == NULL ? MP_EINVAL : 0;
}

int mp_dict_keys(mp_proxy *d, mp_val **out)
{
    return need_out(out) ? MP_EINVAL : call(d, D, "keys", NULL, NOARGS, out);
}

int mp_dict_values(mp_proxy *d, mp_val **out)
{
    return need_out(out) ? MP_EINVAL : call(d, D, "values", NULL, NOARGS, out);
}

int mp_dict_items(mp_proxy *d, mp_val **out)
{
    return need_out(out) ? MP_EINVAL : call(d, D, "items", NULL, NOARGS, out);
}

int mp_dict_copy(mp_proxy *d, mp_val **out)
{
    return need_out(out) ? MP_EINVAL : call(d, D, "copy", NULL, NOARGS, out);
}

int mp_dict_update(mp_proxy *d, const mp_val *other)
{
    if (other == NULL)
        return MP_EINVAL;
    return call(d, D, "update", NULL, ARGS(other), NULL);
}

int mp_dict_clear(mp_proxy *d)
{
    return call(d, D, "clear", NULL, NOARGS, NULL);
}

int mp_dict_pop(mp_proxy *d, const mp_val *key, const mp_val *dflt, mp_val **out)
{
    if (!mp_val_hashable(key) || out == NULL)
        return MP_EINVAL;
    if (dflt != NULL)
        return call(d, D, "pop", NULL, ARGS(key, dflt), out);
    return call(d, D, "pop", NULL, ARGS(key), out);
}

int mp_dict_popitem(mp_proxy *d, mp_val **out)
{
    return need_out(out) ? MP_EINVAL : call(d, D, "popitem", NULL, NOARGS, out);
}

int mp_dict_setdefault(mp_proxy *d, const mp_val *key, const mp_val *dflt, mp_val **out)
{
    if (!mp_val_hashable(key) || out == NULL)
        return MP_EINVAL;
    return call(d, D, "setdefault", NULL, ARGS(key, dflt ? dflt : MP_NONE), out);
}

/* ---- list ---------------------------------------------------------------------- */

#define L MP_PROXY_LIST

static bool is_seq(const mp_val *v)
{
    return v != NULL && (v->type == MP_VAL_LIST || v->type == MP_VAL_TUPLE);
}

int mp_list_append(mp_proxy *l, const mp_val *x)
{
    return x == NULL ? MP_EINVAL : call(l, L, "append", NULL, ARGS(x), NULL);
}

int mp_list_extend(mp_proxy *l, const mp_val *seq)
{
    return !is_seq(seq) ? MP_EINVAL : call(l, L, "extend", NULL, ARGS(seq), NULL);
}

int mp_list_insert(mp_proxy *l, int64_t i, const mp_val *x)
{
    return x == NULL ? MP_EINVAL : call(l, L, "insert", NULL, ARGS(MP_INT(i), x), NULL);
}

int mp_list_get(mp_proxy *l, int64_t i, mp_val **out)
{
    return need_out(out) ? MP_EINVAL : call(l, L, "__getitem__", NULL, ARGS(MP_INT(i)), out);
}

int mp_list_set(mp_proxy *l, int64_t i, const mp_val *x)
{
    return x == NULL ? MP_EINVAL : call(l, L, "__setitem__", NULL, ARGS(MP_INT(i), x), NULL);
}

int mp_list_del(mp_proxy *l, int64_t i)
{
    return call(l, L, "__delitem__", NULL, ARGS(MP_INT(i)), NULL);
}

int mp_list_pop(mp_proxy *l, int64_t i, mp_val **out)
{
    return need_out(out) ? MP_EINVAL : call(l, L, "pop", NULL, ARGS(MP_INT(i)), out);
}

int mp_list_remove(mp_proxy *l, const mp_val *x)
{
    return x == NULL ? MP_EINVAL : call(l, L, "remove", NULL, ARGS(x), NULL);
}

ssize_t mp_list_index(mp_proxy *l, const mp_val *x)
{
    if (x == NULL)
        return MP_EINVAL;
    mp_val *v;
    int e = call(l, L, "index", NULL, ARGS(x), &v);
    return int_result(e, v);
}

ssize_t mp_list_count(mp_proxy *l, const mp_val *x)
{
    if (x == NULL)
        return MP_EINVAL;
    mp_val *v;
    int e = call(l, L, "count", NULL, ARGS(x), &v);
    return int_result(e, v);
}

int mp_list_contains(mp_proxy *l, const mp_val *x)
{
    if (x == NULL)
        return MP_EINVAL;
    mp_val *v;
    int e = call(l, L, "__contains__", NULL, ARGS(x), &v);
    return bool_result(e, v);
}

ssize_t mp_list_len(mp_proxy *l)
{
    mp_val *v;
    int e = call(l, L, "__len__", NULL, NOARGS, &v);
    return int_result(e, v);
}

int mp_list_reverse(mp_proxy *l)
{
    return call(l, L, "reverse", NULL, NOARGS, NULL);
}

int mp_list_sort(mp_proxy *l, const char *cmp, bool reverse)
{
    if (cmp != NULL && !name_ok(cmp))
        return MP_EINVAL;
    return call(l, L, "sort", NULL, ARGS(cmp ? MP_STR(cmp) : MP_NONE, MP_BOOL(reverse)), NULL);
}

static const mp_val *bound(int64_t b, mp_val *tmp)
{
    if (b == MP_SLICE_END)
        return &mp__none;
    tmp->type = MP_VAL_INT;
    tmp->i = b;
    return tmp;
}

int mp_list_slice(mp_proxy *l, int64_t start, int64_t stop, int64_t step, mp_val **out)
{
    if (out == NULL || step == 0)
        return MP_EINVAL;
    mp_val a = {0}, b = {0};
    return call(l, L, "getslice", NULL, ARGS(bound(start, &a), bound(stop, &b), MP_INT(step)), out);
}

int mp_list_set_slice(mp_proxy *l, int64_t start, int64_t stop, const mp_val *seq)
{
    if (!is_seq(seq))
        return MP_EINVAL;
    mp_val a = {0}, b = {0};
    return call(l, L, "setslice", NULL, ARGS(bound(start, &a), bound(stop, &b), seq), NULL);
}

int mp_list_del_slice(mp_proxy *l, int64_t start, int64_t stop)
{
    mp_val a = {0}, b = {0};
    return call(l, L, "delslice", NULL, ARGS(bound(start, &a), bound(stop, &b)), NULL);
}

int mp_list_copy(mp_proxy *l, mp_val **out)
{
    return need_out(out) ? MP_EINVAL : call(l, L, "copy", NULL, NOARGS, out);
}

/* ---- Namespace ------------------------------------------------------------------ */

#define NS MP_PROXY_NAMESPACE

static bool attr_ok(const char *name)
{
    if (name == NULL || name[0] == '\0' || name[0] == '_' || (name[0] >= '0' && name[0] <= '9') ||
        strlen(name) > 255)
        return false;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c >= 0x80))
            return false;
    return mp__utf8_valid(name, strlen(name));
}

int mp_namespace_set(mp_proxy *ns, const char *name, const mp_val *value)
{
    if (!attr_ok(name) || value == NULL)
        return MP_EINVAL;
    return call(ns, NS, "__setattr__", NULL, ARGS(MP_STR(name), value), NULL);
}

int mp_namespace_get(mp_proxy *ns, const char *name, mp_val **out)
{
    if (!attr_ok(name) || out == NULL)
        return MP_EINVAL;
    return call(ns, NS, "__getattribute__", NULL, ARGS(MP_STR(name)), out);
}

int mp_namespace_del(mp_proxy *ns, const char *name)
{
    if (!attr_ok(name))
        return MP_EINVAL;
    return call(ns, NS, "__delattr__", NULL, ARGS(MP_STR(name)), NULL);
}

int mp_namespace_copy(mp_proxy *ns, mp_val **out)
{
    return need_out(out) ? MP_EINVAL : call(ns, NS, "copy", NULL, NOARGS, out);
}

/* ---- Value and Array --------------------------------------------------------------- */

int mp_valueproxy_get(mp_proxy *v, mp_val **out)
{
    return need_out(out) ? MP_EINVAL : call(v, MP_PROXY_VALUE, "get", NULL, NOARGS, out);
}

int mp_valueproxy_set(mp_proxy *v, const mp_val *x)
{
    return x == NULL ? MP_EINVAL : call(v, MP_PROXY_VALUE, "set", NULL, ARGS(x), NULL);
}

ssize_t mp_arrayproxy_len(mp_proxy *a)
{
    mp_val *v;
    int e = call(a, MP_PROXY_ARRAY, "__len__", NULL, NOARGS, &v);
    return int_result(e, v);
}

int mp_arrayproxy_get(mp_proxy *a, int64_t i, mp_val **out)
{
    return need_out(out) ? MP_EINVAL
                         : call(a, MP_PROXY_ARRAY, "__getitem__", NULL, ARGS(MP_INT(i)), out);
}

int mp_arrayproxy_set(mp_proxy *a, int64_t i, const mp_val *x)
{
    return x == NULL ? MP_EINVAL
                     : call(a, MP_PROXY_ARRAY, "__setitem__", NULL, ARGS(MP_INT(i), x), NULL);
}

int mp_arrayproxy_tolist(mp_proxy *a, mp_val **out)
{
    return need_out(out) ? MP_EINVAL : call(a, MP_PROXY_ARRAY, "tolist", NULL, NOARGS, out);
}

/* ---- hosted synchronisation objects and queues ---------------------------------------- */

mp_proxy *mp_manager_lock(mp_manager *m)
{
    return create(m, "Lock", NULL, NOARGS);
}

mp_proxy *mp_manager_rlock(mp_manager *m)
{
    return create(m, "RLock", NULL, NOARGS);
}

mp_proxy *mp_manager_semaphore(mp_manager *m, int value)
{
    return create(m, "Semaphore", NULL, ARGS(MP_INT(value)));
}

mp_proxy *mp_manager_bounded_semaphore(mp_manager *m, int value)
{
    return create(m, "BoundedSemaphore", NULL, ARGS(MP_INT(value)));
}

mp_proxy *mp_manager_condition(mp_manager *m)
{
    return create(m, "Condition", NULL, NOARGS);
}

mp_proxy *mp_manager_event(mp_manager *m)
{
    return create(m, "Event", NULL, NOARGS);
}

/* A timeout as an argument: None for MP_FOREVER.  tmp holds a float. */
static const mp_val *timeout_val(double t, mp_val *tmp)
{
    if (t == MP_FOREVER || isinf(t))
        return &mp__none;
    tmp->type = MP_VAL_FLOAT;
    tmp->f = t;
    return tmp;
}

static int check_timeout(double t)
{
    mp__deadline d;
    return mp__deadline_init(&d, t);
}

mp_proxy *mp_manager_barrier(mp_manager *m, int parties, double timeout)
{
    mp_val tmp = {0};
    if (check_timeout(timeout) != 0)
        return mp__fail_null(MP_EINVAL);
    return create(m, "Barrier", NULL,
                  ARGS(MP_INT(parties), &mp__none, timeout == 0 ? &mp__none : timeout_val(timeout, &tmp)));
}

mp_proxy *mp_manager_queue(mp_manager *m, long maxsize)
{
    return create(m, "Queue", NULL, ARGS(MP_INT(maxsize)));
}

mp_proxy *mp_manager_joinable_queue(mp_manager *m, long maxsize)
{
    return create(m, "JoinableQueue", NULL, ARGS(MP_INT(maxsize)));
}

void *mp_proxy_native(const mp_proxy *p)
{
    return check_proxy(p, 0) == 0 ? p->native : NULL;
}

static bool kind_in(const mp_proxy *p, uint32_t a, uint32_t b, uint32_t c, uint32_t d, uint32_t e)
{
    if (check_proxy(p, 0) != 0)
        return false;
    return p->kind == a || p->kind == b || p->kind == c || p->kind == d || p->kind == e;
}

#define LOCKISH(p)                                                                      \
    kind_in(p, MP_PROXY_LOCK, MP_PROXY_RLOCK, MP_PROXY_SEMAPHORE, MP_PROXY_BOUNDED_SEMAPHORE, \
            MP_PROXY_CONDITION)
#define IS(p, k) kind_in(p, k, k, k, k, k)
#define QUEUEISH(p) kind_in(p, MP_PROXY_QUEUE, MP_PROXY_JOINABLE_QUEUE, 0, 0, 0)

/* A call whose result is dropped and whose codes are returned as they are. */
static int simple(mp_proxy *p, const char *method, const mp_val *const *argv, size_t n)
{
    return call(p, 0, method, NULL, argv, n, NULL);
}

int mp_proxy_acquire(mp_proxy *p, double timeout)
{
    mp_val tmp = {0};
    if (!LOCKISH(p) || check_timeout(timeout) != 0)
        return MP_EINVAL;
    return simple(p, "acquire", ARGS(&mp__true, timeout_val(timeout, &tmp)));
}

int mp_proxy_release(mp_proxy *p)
{
    if (!LOCKISH(p))
        return MP_EINVAL;
    int e = simple(p, "release", NOARGS);
    /* Releasing what one does not hold is the caller's mistake. */
    return e == MP_EREMOTE && mp_remote_error_code() == MP_EINVAL ? MP_EINVAL : e;
}

static int int_call(mp_proxy *p, const char *method)
{
    mp_val *v;
    int e = call(p, 0, method, NULL, NOARGS, &v);
    return (int)int_result(e, v);
}

static int bool_call(mp_proxy *p, const char *method)
{
    mp_val *v;
    int e = call(p, 0, method, NULL, NOARGS, &v);
    return bool_result(e, v);
}

int mp_proxy_get_value(mp_proxy *p)
{
    if (!kind_in(p, MP_PROXY_SEMAPHORE, MP_PROXY_BOUNDED_SEMAPHORE, 0, 0, 0))
        return MP_EINVAL;
    return int_call(p, "get_value");
}

int mp_proxy_wait(mp_proxy *p, double timeout)
{
    mp_val tmp = {0};
    if (!kind_in(p, MP_PROXY_CONDITION, MP_PROXY_EVENT, MP_PROXY_BARRIER, 0, 0) ||
        check_timeout(timeout) != 0)
        return MP_EINVAL;
    mp_val *v;
    int e = call(p, 0, "wait", NULL, ARGS(timeout_val(timeout, &tmp)), &v);
    if (e != 0)
        return e == MP_EREMOTE && mp_remote_error_code() == MP_EINVAL ? MP_EINVAL : e;
    int r;
    if (p->kind == MP_PROXY_BARRIER) {
        r = (int)int_result(0, v);
    } else {
        r = mp_val_truth(v) ? 0 : MP_ETIMEDOUT;
        mp_val_free(v);
    }
    return r;
}

int mp_proxy_notify(mp_proxy *p, int n)
{
    if (!IS(p, MP_PROXY_CONDITION) || n < 0)
        return MP_EINVAL;
    int e = simple(p, "notify", ARGS(MP_INT(n)));
    return e == MP_EREMOTE && mp_remote_error_code() == MP_EINVAL ? MP_EINVAL : e;
}

int mp_proxy_notify_all(mp_proxy *p)
{
    if (!IS(p, MP_PROXY_CONDITION))
        return MP_EINVAL;
    int e = simple(p, "notify_all", NOARGS);
    return e == MP_EREMOTE && mp_remote_error_code() == MP_EINVAL ? MP_EINVAL : e;
}

int mp_proxy_set(mp_proxy *p)
{
    return IS(p, MP_PROXY_EVENT) ? simple(p, "set", NOARGS) : MP_EINVAL;
}

int mp_proxy_clear(mp_proxy *p)
{
    return IS(p, MP_PROXY_EVENT) ? simple(p, "clear", NOARGS) : MP_EINVAL;
}

int mp_proxy_is_set(mp_proxy *p)
{
    return IS(p, MP_PROXY_EVENT) ? bool_call(p, "is_set") : MP_EINVAL;
}

int mp_proxy_reset(mp_proxy *p)
{
    return IS(p, MP_PROXY_BARRIER) ? simple(p, "reset", NOARGS) : MP_EINVAL;
}

int mp_proxy_abort(mp_proxy *p)
{
    return IS(p, MP_PROXY_BARRIER) ? simple(p, "abort", NOARGS) : MP_EINVAL;
}

int mp_proxy_parties(mp_proxy *p)
{
    return IS(p, MP_PROXY_BARRIER) ? int_call(p, "parties") : MP_EINVAL;
}

int mp_proxy_n_waiting(mp_proxy *p)
{
    return IS(p, MP_PROXY_BARRIER) ? int_call(p, "n_waiting") : MP_EINVAL;
}

int mp_proxy_broken(mp_proxy *p)
{
    return IS(p, MP_PROXY_BARRIER) ? bool_call(p, "broken") : MP_EINVAL;
}

int mp_proxy_put(mp_proxy *q, const mp_val *v, double timeout)
{
    mp_val tmp = {0};
    if (!QUEUEISH(q) || v == NULL || check_timeout(timeout) != 0)
        return MP_EINVAL;
    return simple(q, "put", ARGS(v, &mp__true, timeout_val(timeout, &tmp)));
}

int mp_proxy_get(mp_proxy *q, double timeout, mp_val **out)
{
    mp_val tmp = {0};
    if (out != NULL)
        *out = NULL;
    if (!QUEUEISH(q) || out == NULL || check_timeout(timeout) != 0)
        return MP_EINVAL;
    return call(q, 0, "get", NULL, ARGS(&mp__true, timeout_val(timeout, &tmp)), out);
}

long mp_proxy_qsize(mp_proxy *q)
{
    if (!QUEUEISH(q))
        return MP_EINVAL;
    mp_val *v;
    int e = call(q, 0, "qsize", NULL, NOARGS, &v);
    return (long)int_result(e, v);
}

int mp_proxy_empty(mp_proxy *q)
{
    return QUEUEISH(q) ? bool_call(q, "empty") : MP_EINVAL;
}

int mp_proxy_full(mp_proxy *q)
{
    return QUEUEISH(q) ? bool_call(q, "full") : MP_EINVAL;
}

int mp_proxy_task_done(mp_proxy *q)
{
    if (!IS(q, MP_PROXY_JOINABLE_QUEUE))
        return MP_EINVAL;
    int e = simple(q, "task_done", NOARGS);
    return e == MP_EREMOTE && mp_remote_error_code() == MP_EINVAL ? MP_EINVAL : e;
}

int mp_proxy_join(mp_proxy *q, double timeout)
{
    mp_val tmp = {0};
    if (!IS(q, MP_PROXY_JOINABLE_QUEUE) || check_timeout(timeout) != 0)
        return MP_EINVAL;
    return simple(q, "join", ARGS(timeout_val(timeout, &tmp)));
}
