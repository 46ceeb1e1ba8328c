/*
 * internal/managers.h: the manager's shared object, wire protocol and server.
 *
 * A request and its reply are byte strings in the value encoding of
 * val_codec.c, whatever carries them (a shared-memory channel for processes
 * of the family, a socket for everyone else).  docs/managers.md documents
 * the protocol.
 */
#ifndef LIBMP_INTERNAL_MANAGERS_H
#define LIBMP_INTERNAL_MANAGERS_H

#include "internal/mp.h"
#include "internal/val.h"

#include <stdatomic.h>
#include <string.h>

#include <libmp/managers.h>

#define MP__MAGIC_MANAGER MP__MAGIC('m', 'g', 'r', '!')
#define MP__MAGIC_PROXY MP__MAGIC('p', 'r', 'x', 'y')

/* ---- protocol ------------------------------------------------------------- */

enum mgr_op {
    MGR_OP_CALL = 1,     /* varint oid, str method, tuple args */
    MGR_OP_CREATE = 2,   /* str typeid, tuple args */
    MGR_OP_INCREF = 3,   /* varint oid */
    MGR_OP_DECREF = 4,   /* varint oid */
    MGR_OP_SHUTDOWN = 5, /* nothing */
    MGR_OP_PING = 6,     /* nothing: replies None */
    MGR_OP_REBUILD = 7,  /* varint oid, varint kind, str typeid: incref, a proxy reply */
    MGR_OP_COUNT = 8,    /* nothing: replies the number of objects held */
};

enum mgr_status {
    MGR_ST_OK = 0,    /* value */
    MGR_ST_ERROR = 1, /* varint zigzag code, str type, str message */
    MGR_ST_PROXY = 2, /* varint oid, varint kind, str typeid, 8-byte native */
};

/* Longest error type and message carried back (longer ones are cut). */
#define MGR_ERRTYPE_MAX 32
#define MGR_ERRMSG_MAX 512

/* Largest request or reply accepted (a bigger one is refused). */
#define MGR_MSG_MAX ((size_t)1 << 30)

/* ---- the shared manager object ----------------------------------------- */

#define MGR_NCHAN 256      /* client threads using a manager at one time */
#define MGR_CHAN_SIZE 8192 /* one channel, inline buffer included */
#define MGR_MAX_TYPES 32
#define MGR_MAX_METHODS 48
#define MGR_NAME_MAX 48 /* typeid, method and comparator names */
/* A family process waiting on a hosted object looks at the server this
 * often (managers.h promises MP_EEOF within about 50 ms of its death). */
#define MGR_CLIENT_SLICE_MS 20
/* How long a stopping server waits for family processes to leave the
 * methods of its hosted objects before it frees them (it keeps them
 * allocated when some do not leave: the arena leaks rather than a client
 * touching freed memory). */
#define MGR_DRAIN_MS 500
#define MGR_MAX_CMPS 16

enum mgr_state {
    MGR_NEW = 0,
    MGR_STARTING = 1,
    MGR_RUNNING = 2,
    MGR_STOPPED = 3, /* shut down, or the server died */
    MGR_FAILED = 4,  /* the server could not start */
    MGR_CONNECTED = 5,
};

enum mgr_chan_state {
    CH_IDLE = 0,
    CH_REQ = 1,  /* a request is in the channel, for the server */
    CH_DONE = 2, /* the reply is in the channel, for the client */
};

/*
 * A request/reply slot for one client thread.  owner names the thread
 * (pid << 32 | tid) that holds the channel between calls, 0 when free;
 * callmx, a robust mutex, is held by that thread during each call, so a
 * thread or process that died in the middle of a call is recognised
 * (EOWNERDEAD) and its channel reused once the server has answered.  A
 * message longer than the inline buffer travels in an arena block named by
 * big; whoever reads it frees it.
 */
struct mgr_chan {
    pthread_mutex_t callmx;
    _Atomic uint64_t owner;
    _Atomic uint32_t state;        /* enum mgr_chan_state; the client sleeps on it */
    _Atomic uint32_t client_waits; /* the client is (about to be) asleep */
    uint32_t len;                  /* bytes of the message */
    uint32_t index;
    void *_Atomic big;
    uint8_t buf[] MP__ALIGNED(MP__CACHELINE);
};
#define MGR_CHAN_INLINE (MGR_CHAN_SIZE - offsetof(struct mgr_chan, buf))

struct mgr_method_def {
    char name[MGR_NAME_MAX];
    mp__fnref fn;
};

struct mgr_type_def {
    char typeid[MGR_NAME_MAX];
    uint32_t kind; /* mp_proxy_kind of what create returns */
    uint32_t nmethods;
    mp__fnref create;
    mp__fnref destroy;
    struct mgr_method_def methods[MGR_MAX_METHODS];
};

struct mgr_cmp_def {
    char name[MGR_NAME_MAX];
    mp__fnref fn;
};

struct mgr_registry {
    uint32_t ntypes;
    uint32_t ncmps;
    struct mgr_type_def types[MGR_MAX_TYPES];
    struct mgr_cmp_def cmps[MGR_MAX_CMPS];
};

struct mp_manager {
    mp__obj hdr;
    _Atomic uint32_t state; /* enum mgr_state; waited on while starting */
    int32_t start_error;
    pid_t server_pid;
    pid_t owner_pid;  /* the process that started it */
    mp_process *proc; /* the server child (mp_manager_start) */
    int finalizer;    /* the owner's exit finalizer (owner only) */
    /* The server child's exit code once its owner reaped it (exit_known
     * is set after exitcode is written). */
    int32_t exitcode;
    _Atomic uint32_t exit_known;
    /* The initializer mp_manager_start's server runs (Python's
     * start(initializer, initargs)), with its argument bytes (an arena
     * block, NULL for none). */
    mp__fnref init;
    void *initarg;
    size_t initarg_size;
    /* Family threads running a method of a hosted object right now (the
     * server frees those objects at shutdown only once this is 0).  In the
     * padding before ctx: on the cache line of state and of alive's lock
     * word, which such a call touches anyway. */
    _Atomic uint32_t native_users;
    mp_context *ctx;
    pthread_mutex_t alive;      /* robust: held by the server while it serves */
    _Atomic uint32_t dead_seen; /* a client found the server dead */
    /* shared-memory transport */
    _Atomic uint32_t doorbell MP__ALIGNED(MP__CACHELINE);
    _Atomic uint32_t srv_sleeping;
    _Atomic uint64_t pending[MGR_NCHAN / 64] MP__ALIGNED(MP__CACHELINE);
    struct mgr_chan *_Atomic chans[MGR_NCHAN];
    /* socket transport */
    int family; /* 0 none, 1 AF_UNIX, 2 AF_INET */
    char path[112];
    size_t path_len;
    char host[64];
    int port;
    uint8_t authkey[256];
    size_t authkey_len;
    bool has_authkey;
    /* registered types and comparators (an arena block) */
    struct mgr_registry *reg;
    char name[64];
};

/* ---- the proxy object -------------------------------------------------- */

struct mp_proxy {
    mp__obj hdr;
    mp_manager *m;
    uint64_t mgr_id; /* m's id, to notice a freed and reused manager */
    uint64_t oid;
    uint32_t kind;
    char typeid[MGR_NAME_MAX];
    void *native; /* a hosted libmp object in the server's arena */
};

/* ---- server (mgr_server.c) ----------------------------------------------- */

struct mgr_srv;

/* A reply being built by a method. */
struct mgr_reply {
    int status;        /* enum mgr_status */
    const mp_val *val; /* MGR_ST_OK: borrowed or owned (below) */
    mp_val *owned;     /* freed after encoding */
    int code;          /* MGR_ST_ERROR */
    char type[MGR_ERRTYPE_MAX];
    char msg[MGR_ERRMSG_MAX];
    uint64_t oid; /* MGR_ST_PROXY */
    uint32_t kind;
    char typeid[MGR_NAME_MAX];
    void *native;
};

void mp__reply_val(struct mgr_reply *r, mp_val *owned);
void mp__reply_borrow(struct mgr_reply *r, const mp_val *v);
void mp__reply_none(struct mgr_reply *r);
/*
 * The block and timeout arguments of a blocking method (mgr_sync.c), at
 * indexes ib and it (-1: not taken), into *t: block false means 0, timeout
 * None means MP_FOREVER.  0, or the error reply's code (TypeError,
 * ValueError for a negative timeout).
 */
int mp__mgr_timeout_args(struct mgr_reply *r, const mp_val *a, int ib, int it, double *t);

int mp__reply_error(struct mgr_reply *r, int code, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* An object held by the server. */
struct mgr_obj {
    uint64_t id;
    uint32_t kind; /* mp_proxy_kind */
    int typeidx;   /* registered type, or -1 */
    long refs;
    long pins; /* calls running outside the server lock */
    bool dead; /* refs reached 0 while pinned */
    void *obj;
    mp_manager *watch; /* in a family process: the manager whose server
                           * a wait watches (mgr_sync.c) */
};

/*
 * A builtin method.  args is the decoded argument tuple, owned by the
 * dispatcher: a method may steal items from it (set them to NULL).  Runs
 * under the server lock unless the kind is a blocking one (mgr_sync.c).
 */
typedef int (*mgr_method_fn)(struct mgr_srv *s, struct mgr_obj *o, mp_val *args,
                             struct mgr_reply *r);

struct mgr_method {
    const char *name;
    mgr_method_fn fn;
};

/* The builtin kinds (mgr_types.c, mgr_sync.c). */
struct mgr_kind {
    uint32_t kind;
    const char *typeid;
    const char *pyname; /* for messages: 'dict' object ... */
    bool blocking;      /* methods run outside the server lock */
    int (*create)(struct mgr_srv *s, mp_val *args, void **obj, struct mgr_reply *r);
    void (*destroy)(void *obj);
    const struct mgr_method *methods;
};

const struct mgr_kind *mp__mgr_kind_by_typeid(const char *typeid, size_t len);
const struct mgr_kind *mp__mgr_kind_by_kind(uint32_t kind);
/* The hosted synchronisation and queue kinds (mgr_sync.c). */
const struct mgr_kind *mp__mgr_sync_kind_by_typeid(const char *typeid, size_t len);
const struct mgr_kind *mp__mgr_sync_kind_by_kind(uint32_t kind);

/* The Pool and AsyncResult kinds (mgr_pool.c). */
const struct mgr_kind *mp__mgr_pool_kind_by_typeid(const char *typeid, size_t len);
const struct mgr_kind *mp__mgr_pool_kind_by_kind(uint32_t kind);

/* A wait of a hosted kind's method on o, in slices that watch the server
 * (in the server: its shutdown; in a family process: its death); MP_EEOF
 * when the watch ends it (mgr_sync.c). */
int mp__mgr_timed(struct mgr_srv *s, const struct mgr_obj *o, double timeout, int timeout_code,
                  int (*op)(void *obj, void *extra, double timeout), void *extra);

/* The manager a server serves. */
mp_manager *mp__srv_manager(struct mgr_srv *s);

/* Hold obj, a new object of a builtin kind made by a method, and make r the
 * reply that hands out a proxy for it; 0, or -ENOMEM (with an error reply)
 * when it cannot be held (the caller still owns obj). */
int mp__srv_register(struct mgr_srv *s, uint32_t kind, void *obj, struct mgr_reply *r);

/* Check the argument count; fills an error reply (TypeError) if wrong. */
int mp__args(struct mgr_reply *r, const char *name, const mp_val *args, size_t min,
             size_t max);

/* Find a registered comparator in the server's registry; NULL if none. */
int (*mp__mgr_comparator(struct mgr_srv *s, const char *name))(const mp_val *, const mp_val *);

struct mgr_srv *mp__srv_new(mp_manager *m);
void mp__srv_free(struct mgr_srv *s);
/* The same, but with keep_hosted the hosted libmp objects (locks, queues...
 * in the arena) are left allocated. */
void mp__srv_free_keep(struct mgr_srv *s, bool keep_hosted);

/*
 * Handle one request and write the reply into out (cleared first).  Methods
 * of the blocking kinds are refused unless may_block (the shared-memory
 * dispatcher must never wait; family processes run them themselves).  Returns
 * 0, or 1 when the request was a shutdown (the reply is written too), or a
 * negative code when the reply could not even be built (-ENOMEM).
 * Thread-safe: takes the server lock itself.
 */
int mp__srv_handle(struct mgr_srv *s, const uint8_t *req, size_t len, mp__buf *out,
                   bool may_block);

/* True once a shutdown request has been handled, or mp__srv_stop called. */
bool mp__srv_stopping(struct mgr_srv *s);

/* Mark the server stopping (however it came to stop): the waits of the
 * connection threads in hosted objects see it within a slice and end with
 * MP_EEOF. */
void mp__srv_stop(struct mgr_srv *s);

/* ---- transports -------------------------------------------------------------- */

/* The shared-memory transport (mgr_chan.c).  The server side runs the
 * dispatcher until a shutdown request, or until the process watch (when
 * not 0) has died; the client side makes one call and copies the reply
 * into reply. */
int mp__chan_serve(mp_manager *m, struct mgr_srv *s, pid_t watch);
/* Wake the dispatcher (a shutdown came through another transport). */
void mp__chan_kick(mp_manager *m);
int mp__chan_call(mp_manager *m, const void *req, size_t len, mp__buf *reply);
/* Wake every client waiting on a channel (the server is going away). */
void mp__chan_wake_all(mp_manager *m);
/* Give back the calling thread's channel of m, if it has one. */
void mp__chan_release(mp_manager *m);
/* Give back every channel of the exiting thread. */
void mp__chan_thread_exit(void);
/* Free every channel of m (the manager is being freed). */
void mp__chan_free_all(mp_manager *m);

/* True when the server of m is known or found to be gone. */
bool mp__mgr_server_gone(mp_manager *m);

/* ---- the manager's life (managers.c, mgr_start.c) ------------------------ */

/* Serve m in the calling process (state STARTING) until shut down, or until
 * the process watch (when not 0) has died.  0 or the setup error. */
int mp__mgr_serve(mp_manager *m, pid_t watch);

/* Wait for a starting server: 0 when it runs, its error when it failed. */
int mp__mgr_wait_started(mp_manager *m, double timeout);

/* Wait for (and reap) a server child this process started; no-op otherwise. */
void mp__mgr_reap_server(mp_manager *m);

/* ---- calls (managers.c) -------------------------------------------------------- */

/* An argument list for mp__mgr_call / mp__mgr_create: ARGS(a, b), NOARGS. */
#define ARGS(...) (const mp_val *const[]){__VA_ARGS__}, MP__NARGS(__VA_ARGS__)
#define NOARGS NULL, 0

/* A typeid, method or comparator name that fits the registry. */
static inline bool mp__mgr_name_ok(const char *name)
{
    return name != NULL && name[0] != '\0' && strlen(name) < MGR_NAME_MAX;
}

/* 0 when p is a live proxy (of kind, unless kind is 0), else MP_EINVAL. */
int mp__mgr_check_proxy(const mp_proxy *p, uint32_t kind);

/* Call method on p's object with the arguments (a tuple, or argv[0..n)),
 * the result decoded into *out (if out is not NULL). */
int mp__mgr_call(mp_proxy *p, uint32_t kind, const char *method, const mp_val *tuple,
                 const mp_val *const *argv, size_t n, mp_val **out);

/* Call a method of p's object (of kind) that makes a new object: the proxy
 * for it, or NULL with mp_last_error(). */
mp_proxy *mp__mgr_call_proxy(mp_proxy *p, uint32_t kind, const char *method,
                             const mp_val *const *argv, size_t n);

/* Create an object of typeid in the server and a proxy for it. */
mp_proxy *mp__mgr_create(mp_manager *m, const char *typeid, const mp_val *tuple,
                         const mp_val *const *argv, size_t n);

/* Send a request through whichever transport m uses; the reply lands in rep. */
int mp__mgr_transport(mp_manager *m, const mp__buf *req, mp__buf *rep);

/* ---- sockets (mgr_net.c) ----------------------------------------------------- */

struct mgr_net;

/* Server: listen on m's address (if it has one) and serve connections in
 * threads; *net is NULL when there is no address.  Stop closes everything
 * and joins the threads. */
int mp__mgr_net_start(mp_manager *m, struct mgr_srv *s, struct mgr_net **net);
/* Returns false when some connection thread would not end (it is left
 * running, so the server state must not be freed). */
bool mp__mgr_net_stop(struct mgr_net *net);

/* Client: connect and check (mp_manager_connect), call through the calling
 * thread's connection, forget this process's connections of m, and close
 * the exiting thread's connections. */
int mp__mgr_conn_open(mp_manager *m);
int mp__mgr_conn_call(mp_manager *m, const void *req, size_t len, mp__buf *rep);
void mp__mgr_conn_forget(mp_manager *m);
void mp__mgr_conn_thread_exit(void);

#endif /* LIBMP_INTERNAL_MANAGERS_H */
