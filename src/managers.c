/*
 * managers.c: the manager object, the client side of calls, and proxies.
 *
 * A call builds its request in a per-thread buffer, sends it through the
 * shared-memory channel (processes of the family) or the thread's socket
 * connection (a connected manager), and decodes the reply.  Replies that
 * report an error fill the thread's remote-error record (mp_remote_error_*).
 */
#include "internal/managers.h"
#include "internal/util.h"

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
    } else {
        /* Python's default: current_process().authkey. */
        unsigned char k[MP_AUTHKEY_MAX];
        size_t n = mp__authkey_get(k);
        if (n > sizeof m->authkey)
            n = sizeof m->authkey;
        memcpy(m->authkey, k, n);
        m->authkey_len = n;
        m->has_authkey = true;
    }
    return 0;
}

static int copy_initializer(mp_manager *m, const mp_manager_options *o)
{
    if ((o->initarg == NULL && o->initarg_size > 0) ||
        ((o->initarg != NULL || o->initarg_size > 0) && o->initializer == NULL))
        return MP_EINVAL;
    if (mp__fnref_make(&m->init, (void (*)(void))o->initializer) != 0)
        return MP_EINVAL;
    if (o->initarg_size > 0) {
        m->initarg = mp__alloc(o->initarg_size);
        if (m->initarg == NULL)
            return -ENOMEM;
        memcpy(m->initarg, o->initarg, o->initarg_size);
        m->initarg_size = o->initarg_size;
    }
    return 0;
}

mp_manager *mp_manager_new_opts(const mp_manager_options *opts)
{
    mp_manager_options opts_local;
    int opts_err;
    opts = MP__OPTS_LOAD(opts_local, opts, authkey_len, &opts_err);
    if (opts_err != 0)
        return mp__fail_null(opts_err);
    if (opts == NULL)
        return mp__fail_null(MP_EINVAL);
    mp_manager *m = mp__obj_create(sizeof *m, MP__MAGIC_MANAGER);
    if (m == NULL)
        return NULL;
    int r = copy_address(m, opts);
    if (r == 0)
        r = copy_initializer(m, opts);
    if (r == 0)
        r = mp__robust_mutex_init(&m->alive);
    if (r != 0) {
        if (m->initarg != NULL)
            mp__free(m->initarg);
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
    return mp__mgr_name_ok(name);
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
    mp_manager_type opts_local;
    int opts_err;
    t = MP__OPTS_LOAD(opts_local, t, kind, &opts_err);
    if (opts_err != 0)
        return opts_err;
    if (check_m(m) != 0 || t == NULL || !name_ok(t->type_name) || t->create == NULL ||
        t->nmethods > MGR_MAX_METHODS || (t->nmethods > 0 && t->methods == NULL))
        return MP_EINVAL;
    size_t tlen = strlen(t->type_name);
    int kind = t->kind ? t->kind : MP_PROXY_CUSTOM;
    if (kind < MP_PROXY_DICT || kind > MP_PROXY_CUSTOM || kind == MP_PROXY_VALUE ||
        kind == MP_PROXY_ARRAY)
        return MP_EINVAL;
    if (kind != MP_PROXY_CUSTOM && t->nmethods > 0)
        return MP_EINVAL;
    if (mp__mgr_kind_by_typeid(t->type_name, tlen) != NULL)
        return MP_EINVAL;
    struct mgr_registry *reg;
    int r = registry(m, &reg);
    if (r != 0)
        return r;
    if (reg->ntypes >= MGR_MAX_TYPES)
        return MP_EINVAL;
    for (uint32_t i = 0; i < reg->ntypes; i++)
        if (strcmp(reg->types[i].typeid, t->type_name) == 0)
            return MP_EINVAL;
    struct mgr_type_def *d = &reg->types[reg->ntypes];
    memset(d, 0, sizeof *d);
    memcpy(d->typeid, t->type_name, tlen + 1);
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

/*
 * Wait (the state is STOPPED already) until no process of the family runs
 * a method of a hosted object: those in a wait see the stop within a slice
 * (MGR_CLIENT_SLICE_MS) and leave with MP_EEOF.  False after MGR_DRAIN_MS
 * (a client stopped, or killed in the middle of a call, never leaves).
 */
static bool drain_native_users(mp_manager *m)
{
    uint64_t until = mp__now_ns() + (uint64_t)MGR_DRAIN_MS * 1000000u;
    while (atomic_load(&m->native_users) != 0) {
        if (mp__now_ns() > until)
            return false;
        usleep(1000);
    }
    return true;
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
    mp__srv_stop(s);
    mp__chan_wake_all(m);
    bool ended = mp__mgr_net_stop(net);
    bool drained = drain_native_users(m);
    mp__robust_unlock(&m->alive);
    /* A connection thread stuck in a registered method still uses the
     * server's state: it is left allocated rather than freed under it. */
    if (ended)
        mp__srv_free_keep(s, !drained);
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
    if (m->initarg != NULL)
        mp__free(m->initarg);
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

int mp_manager_exitcode(const mp_manager *m, int *code)
{
    if (check_m(m) != 0 || code == NULL)
        return MP_EINVAL;
    if (atomic_load(&m->exit_known)) {
        *code = m->exitcode;
        return 0;
    }
    /* A server that died on its own, seen by its owner before a shutdown. */
    if (m->proc != NULL && m->owner_pid == getpid())
        return mp_process_exitcode(m->proc, code);
    return MP_ETIMEDOUT;
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
    return code == MP_ETIMEDOUT || code == MP_EEMPTY || code == MP_EFULL ||
           code == MP_EBROKEN || code == MP_EOWNERDEAD || code == MP_EEOF;
}

struct reply_info {
    uint64_t oid;
    uint32_t kind;
    char typeid[MGR_NAME_MAX];
    void *native;
};

/* Attach the proxy references of a value that came from m's server to m,
 * so that mp_proxy_from_val finds the manager again. */
static void attach_refs(mp_val *v, mp_manager *m)
{
    size_t pos = 0;
    switch (v->type) {
    case MP_VAL_PROXY:
        if (v->ref.bind_ == MP__REF_FREE) {
            v->ref.bind_ = MP__REF_CLIENT;
            v->ref.owner_ = m;
            v->ref.owner_id_ = m->hdr.id;
        }
        break;
    case MP_VAL_LIST:
    case MP_VAL_TUPLE:
        for (size_t i = 0; i < v->seq.len; i++)
            attach_refs(v->seq.items[i], m);
        break;
    case MP_VAL_DICT:
        for (; pos < v->dict.slots_; pos++)
            if (mp__val_dict_slot_key(v, pos) != NULL)
                attach_refs(mp__val_dict_slot_value(v, pos), m);
        break;
    default:
        break;
    }
}

/* Parse a reply: the value into *out (if out), a proxy into *pi (if pi);
 * references in the value are attached to m. */
static int parse_reply(mp_manager *m, const mp__buf *rep, mp_val **out, struct reply_info *pi)
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
        if (rd.nrefs > 0)
            attach_refs(v, m);
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
            mp__rd_bytes(&rd, &tid, &tlen) != 0 || tlen >= MGR_NAME_MAX ||
            rd.len - rd.pos != 8)
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

/* True when every proxy reference in v may be sent to m: one that came
 * through m (or was made from one of its proxies), or one decoded from
 * bytes (the server checks that it names one of its objects). */
static bool refs_belong(const mp_val *v, const mp_manager *m)
{
    size_t pos = 0;
    const mp_val *x;
    switch (v->type) {
    case MP_VAL_PROXY:
        return v->ref.bind_ == MP__REF_FREE ||
               (v->ref.owner_ == m && v->ref.owner_id_ == m->hdr.id);
    case MP_VAL_LIST:
    case MP_VAL_TUPLE:
        for (size_t i = 0; i < v->seq.len; i++)
            if (!refs_belong(v->seq.items[i], m))
                return false;
        return true;
    case MP_VAL_DICT:
        while (mp_val_dict_next(v, &pos, NULL, &x))
            if (!refs_belong(x, m))
                return false;
        return true;
    default:
        return true;
    }
}

/* Encode args (NULL, a tuple or a list, or an array of n values) as a tuple,
 * for m's server. */
static int put_args(mp__buf *b, const mp_manager *m, const mp_val *tuple,
                    const mp_val *const *argv, size_t n)
{
    if (tuple != NULL) {
        if (tuple->type != MP_VAL_TUPLE && tuple->type != MP_VAL_LIST)
            return MP_EINVAL;
        argv = (const mp_val *const *)tuple->seq.items;
        n = tuple->seq.len;
    }
    mp__buf_putc(b, MP__TAG_TUPLE);
    mp__buf_varint(b, n);
    b->nrefs = 0;
    for (size_t i = 0; i < n; i++) {
        /* At depth 1, inside the tuple: a value the server's decoder would
         * find too deep is refused here (MP_EINVAL). */
        int e = mp__val_encode_buf_at(b, argv[i], 1);
        if (e != 0)
            return e;
    }
    /* A proxy of another manager cannot be stored in this one. */
    for (size_t i = 0; b->nrefs > 0 && i < n; i++)
        if (!refs_belong(argv[i], m))
            return MP_EINVAL;
    return b->oom ? -ENOMEM : 0;
}

int mp__mgr_check_proxy(const mp_proxy *p, uint32_t kind)
{
    if (mp__obj_check(p, MP__MAGIC_PROXY) != 0 || check_m(p->m) != 0 ||
        p->m->hdr.id != p->mgr_id)
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
    mp_manager *m = p->m;
    const struct mgr_kind *k = mp__mgr_kind_by_kind(p->kind);
    const struct mgr_method *md = NULL;
    for (const struct mgr_method *x = k ? k->methods : NULL; x && x->name; x++)
        if (strcmp(x->name, method) == 0)
            md = x;
    struct mgr_reply r;
    memset(&r, 0, sizeof r);
    if (md == NULL) {
        mp__reply_error(&r, MP_EINVAL, "AttributeError",
                        "method '%s' of '%s' object is not exposed", method,
                        k ? k->pyname : "?");
        return local_error(&r);
    }
    mp_val *args = mp__val_new(MP_VAL_TUPLE);
    if (tuple != NULL) {
        argv = (const mp_val *const *)tuple->seq.items;
        n = tuple->seq.len;
    }
    for (size_t i = 0; args != NULL && i < n; i++) {
        /* Depth 1: the arguments sit in a tuple, as on the wire. */
        mp_val *c = NULL;
        int e = mp__val_copy_depth(argv[i], &c, 1);
        if (e != 0 || mp__val_list_push(args, c) != 0) {
            mp_val_free(c);
            mp_val_free(args);
            return e != 0 ? e : -ENOMEM;
        }
    }
    if (args == NULL)
        return -ENOMEM;
    struct mgr_obj o = {
        .id = p->oid, .kind = p->kind, .typeidx = -1, .refs = 1, .obj = p->native, .watch = m};
    /*
     * Counted in before the server is looked at, and the stopping server
     * sets its state before it counts the users (both sequentially
     * consistent): either this call sees the server stopped, or the server
     * sees this call and does not free the object under it.
     */
    atomic_fetch_add(&m->native_users, 1);
    if (mp__mgr_server_gone(m)) {
        atomic_fetch_sub(&m->native_users, 1);
        mp_val_free(args);
        return MP_EEOF;
    }
    md->fn(NULL, &o, args, &r);
    /* A failure while the server is gone is the server's end, whatever
     * the object said (a timed get that ran out is MP_EEOF too). */
    bool gone = r.status == MGR_ST_ERROR && r.code != MP_EEOF && mp__mgr_server_gone(m);
    atomic_fetch_sub(&m->native_users, 1);
    mp_val_free(args);
    if (gone)
        r.code = MP_EEOF;
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

/* Send "call method(args)" on p's object; the reply lands in t->rep. */
static int call_request(struct tl_state *t, mp_proxy *p, const char *method,
                        const mp_val *tuple, const mp_val *const *argv, size_t n)
{
    t->req.len = 0;
    t->req.oom = false;
    mp__buf_putc(&t->req, MGR_OP_CALL);
    mp__buf_varint(&t->req, p->oid);
    put_name(&t->req, method);
    int e = put_args(&t->req, p->m, tuple, argv, n);
    return e != 0 ? e : mp__mgr_transport(p->m, &t->req, &t->rep);
}

/* Call method on p's object with args; decode the result into *out. */
int mp__mgr_call(mp_proxy *p, uint32_t kind, const char *method, const mp_val *tuple,
                 const mp_val *const *argv, size_t n, mp_val **out)
{
    if (out != NULL)
        *out = NULL;
    int e = mp__mgr_check_proxy(p, kind);
    if (e != 0)
        return e;
    if (method == NULL || method[0] == '\0' || strlen(method) >= MGR_NAME_MAX + 64)
        return MP_EINVAL;
    if (p->native != NULL)
        return call_native(p, method, tuple, argv, n, out);
    struct tl_state *t = tls();
    e = call_request(t, p, method, tuple, argv, n);
    if (e != 0)
        return e;
    return parse_reply(p->m, &t->rep, out, NULL);
}


static mp_proxy *proxy_from_reply(mp_manager *m, struct tl_state *t, int e);

mp_proxy *mp__mgr_create(mp_manager *m, const char *typeid, const mp_val *tuple,
                         const mp_val *const *argv, size_t n)
{
    if (check_m(m) != 0 || !name_ok(typeid))
        return mp__fail_null(MP_EINVAL);
    struct tl_state *t = tls();
    t->req.len = 0;
    t->req.oom = false;
    mp__buf_putc(&t->req, MGR_OP_CREATE);
    put_name(&t->req, typeid);
    int e = put_args(&t->req, m, tuple, argv, n);
    if (e == 0)
        e = mp__mgr_transport(m, &t->req, &t->rep);
    return proxy_from_reply(m, t, e);
}

/* The proxy for the object the reply in t->rep names (e: the transport's
 * result so far). */
static mp_proxy *proxy_from_reply(mp_manager *m, struct tl_state *t, int e)
{
    struct reply_info pi;
    if (e == 0)
        e = parse_reply(m, &t->rep, NULL, &pi);
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
    return mp__mgr_create(m, typeid, args, NOARGS);
}

mp_proxy *mp_manager_dict(mp_manager *m, const mp_val *init)
{
    return init ? mp__mgr_create(m, "dict", NULL, ARGS(init))
                : mp__mgr_create(m, "dict", NULL, NOARGS);
}

mp_proxy *mp_manager_list(mp_manager *m, const mp_val *init)
{
    return init ? mp__mgr_create(m, "list", NULL, ARGS(init))
                : mp__mgr_create(m, "list", NULL, NOARGS);
}

mp_proxy *mp_manager_set(mp_manager *m, const mp_val *init)
{
    if (init != NULL) {
        bool ok = init->type == MP_VAL_LIST || init->type == MP_VAL_TUPLE;
        for (size_t i = 0; ok && i < init->seq.len; i++)
            ok = mp_val_hashable(init->seq.items[i]);
        if (!ok)
            return mp__fail_null(MP_EINVAL);
    }
    return init ? mp__mgr_create(m, "set", NULL, ARGS(init))
                : mp__mgr_create(m, "set", NULL, NOARGS);
}

mp_proxy *mp_manager_namespace(mp_manager *m)
{
    return mp__mgr_create(m, "Namespace", NULL, NOARGS);
}

mp_proxy *mp_manager_value(mp_manager *m, const char *typecode, const mp_val *value)
{
    if (typecode == NULL || value == NULL)
        return mp__fail_null(MP_EINVAL);
    return mp__mgr_create(m, "Value", NULL, ARGS(MP_STR(typecode), value));
}

mp_proxy *mp_manager_array(mp_manager *m, const char *typecode, const mp_val *init)
{
    if (typecode == NULL)
        return mp__fail_null(MP_EINVAL);
    return mp__mgr_create(m, "Array", NULL,
                          ARGS(MP_STR(typecode), init ? init : MP_EMPTY_LIST));
}

void mp_proxy_free(mp_proxy *p)
{
    if (mp__obj_check(p, MP__MAGIC_PROXY) != 0)
        return;
    if (mp__mgr_check_proxy(p, 0) == 0) {
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

mp_proxy *mp__mgr_call_proxy(mp_proxy *p, uint32_t kind, const char *method,
                             const mp_val *const *argv, size_t n)
{
    int e = mp__mgr_check_proxy(p, kind);
    if (e != 0)
        return mp__fail_null(e);
    struct tl_state *t = tls();
    return proxy_from_reply(p->m, t, call_request(t, p, method, NULL, argv, n));
}

mp_val *mp_val_proxy(const mp_proxy *p)
{
    if (mp__mgr_check_proxy(p, 0) != 0)
        return mp__fail_null(MP_EINVAL);
    const mp_manager *m = p->m;
    char addr[MP__REF_ADDR_MAX + 1] = "";
    if (m->family == 1)
        snprintf(addr, sizeof addr, "%s", m->path);
    else if (m->family == 2)
        snprintf(addr, sizeof addr, "%s:%d", m->host, m->port);
    mp_val *v = mp__val_new_ref(p->typeid, strlen(p->typeid), addr, strlen(addr), p->oid,
                                p->kind);
    if (v == NULL)
        return mp__fail_null(-ENOMEM);
    v->ref.bind_ = MP__REF_CLIENT;
    v->ref.owner_ = p->m;
    v->ref.owner_id_ = p->m->hdr.id;
    return v;
}

mp_proxy *mp_proxy_from_val(mp_manager *m, const mp_val *v)
{
    if (v == NULL || v->type != MP_VAL_PROXY || !mp__ref_ok(v))
        return mp__fail_null(MP_EINVAL);
    if (v->ref.bind_ == MP__REF_CLIENT) {
        mp_manager *from = v->ref.owner_;
        if (m != NULL && m != from)
            return mp__fail_null(MP_EINVAL);
        m = from;
        if (check_m(m) != 0 || m->hdr.id != v->ref.owner_id_)
            return mp__fail_null(MP_EINVAL);
    } else if (v->ref.bind_ != MP__REF_FREE || check_m(m) != 0) {
        return mp__fail_null(MP_EINVAL);
    }
    /* Python's RebuildProxy: a new proxy, which takes a reference. */
    struct tl_state *t = tls();
    t->req.len = 0;
    t->req.oom = false;
    mp__buf_putc(&t->req, MGR_OP_REBUILD);
    mp__buf_varint(&t->req, v->ref.oid);
    mp__buf_varint(&t->req, v->ref.kind);
    put_name(&t->req, v->ref.type_id);
    return proxy_from_reply(m, t, mp__mgr_transport(m, &t->req, &t->rep));
}

ssize_t mp_manager_object_count(mp_manager *m)
{
    if (check_m(m) != 0)
        return MP_EINVAL;
    struct tl_state *t = tls();
    t->req.len = 0;
    t->req.oom = false;
    mp__buf_putc(&t->req, MGR_OP_COUNT);
    int e = mp__mgr_transport(m, &t->req, &t->rep);
    mp_val *n = NULL;
    if (e == 0)
        e = parse_reply(m, &t->rep, &n, NULL);
    if (e != 0)
        return e;
    int64_t c = -1;
    e = mp_val_as_int(n, &c) == 0 && c >= 0 ? 0 : -EPROTO;
    mp_val_free(n);
    return e != 0 ? e : (ssize_t)c;
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
    int e = mp__mgr_call(p, 0, method, args, NOARGS, &tmp);
    if (result != NULL)
        *result = e == 0 ? tmp : NULL;
    else
        mp_val_free(tmp);
    return e;
}

static char *text_call(mp_proxy *p, const char *method)
{
    mp_val *v;
    int e = mp__mgr_call(p, 0, method, NULL, NOARGS, &v);
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
