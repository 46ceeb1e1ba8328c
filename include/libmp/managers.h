/*
 * libmp/managers.h: managers and proxies, as multiprocessing.managers.
 *
 *   Python                                   C
 *   m = Manager()                            m = mp_manager_new(); mp_manager_start(m)
 *   m.start(initializer, initargs)           mp_manager_new(.initializer = f, .initarg = &a,
 *                                                  .initarg_size = sizeof a)
 *   m = BaseManager(address, authkey)        m = mp_manager_new(.host = "0.0.0.0", .port = 50000,
 *                                                  .authkey = "abc", .authkey_len = 3)
 *   m.start()                                mp_manager_start(m)
 *   m.get_server().serve_forever()           mp_manager_serve_forever(m)
 *   m.connect()                              mp_manager_connect(m)
 *   m.shutdown() / with m: ...               mp_manager_shutdown(m); mp_manager_free(m)
 *   m.address                                mp_manager_address(m, ...)
 *   m._process.exitcode                      mp_manager_exitcode(m, &code)
 *   BaseManager.register(typeid, callable,   mp_manager_register(m, .type_name = "Foo",
 *                        exposed=...)              .create = foo_new, .methods = foo_methods, ...)
 *   m.Foo(args) / m.get_queue()              mp_manager_create(m, "Foo", args)
 *   m.dict(init), m.list(init)               mp_manager_dict(m, init), mp_manager_list(m, init)
 *   m.Namespace()                            mp_manager_namespace(m)
 *   m.Value('i', 5), m.Array('i', seq)       mp_manager_value(m, "i", MP_I64(5)),
 *                                            mp_manager_array(m, "i", seq)
 *   m.Lock(), m.RLock(), m.Semaphore(n),     mp_manager_lock(m), ... (see "Synchronisation
 *   m.Event(), m.Queue(n), ...                 and queues" below)
 *   d[k] = v; d[k]; d.get(k, x); del d[k]    mp_dict_set / mp_dict_getitem / mp_dict_get / mp_dict_del
 *   k in d; len(d); d.keys() ...             mp_dict_contains / mp_dict_len / mp_dict_keys ...
 *   l.append(x); l[i]; l[i] = x; l[a:b]      mp_list_append / mp_list_get / mp_list_set / mp_list_slice
 *   d | x; l + x; l * n; reversed(l)         mp_dict_or / mp_list_add / mp_list_mul / mp_list_reversed
 *   for x in proxy: ...                      mp_proxy_iter_new / mp_proxy_iter_next / _free
 *   s = m.set(init); s.add(x) ...            mp_manager_set(m, init); mp_setproxy_add(s, x) ...
 *   ns.x = v; ns.x; del ns.x                 mp_namespace_set / mp_namespace_get / mp_namespace_del
 *   d['a'] = m.list(); d['a'].append(1)      r = mp_val_proxy(l); mp_dict_set(d, k, r);
 *                                            mp_dict_getitem(d, k, &r);
 *                                            l2 = mp_proxy_from_val(NULL, r)
 *   m._number_of_objects()                   mp_manager_object_count(m)
 *   pool = m.Pool(n); pool.map(f, xs)        pool = mp_manager_pool(m, n);
 *                                            mp_poolproxy_map(pool, f, in, ...)
 *   r = pool.apply_async(f, x); r.get()      r = mp_poolproxy_apply_async(...);
 *                                            mp_asyncproxy_get(r, timeout, &out, &n)
 *   proxy.method(*args)                      mp_proxy_call(p, "method", args, &result)
 *   str(proxy), repr(proxy)                  mp_proxy_tostring(p), mp_proxy_repr(p)
 *   RemoteError, exceptions from methods     MP_EREMOTE; mp_remote_error_type() / _message()
 *
 * A manager is a server process that holds objects (dicts, lists,
 * namespaces, values, arrays, registered types, and synchronisation objects
 * and queues) and lets other processes use them through proxies.  Values
 * are mp_val trees (libmp/val.h), the C form of the Python objects a
 * Python manager holds; what a call hands back is always a copy owned by
 * the caller, so changing it does not change the manager's object (the
 * seed's namespaces_mutable example).
 *
 * Where the objects are used from:
 * - Processes of the family (the program and its children under every
 *   start method) use the manager and proxies directly: both are objects in
 *   the shared arena, so the pointers can be passed to children as process
 *   arguments.  Each thread of each process talks to the server through a
 *   request slot in shared memory of its own, opened on first use.
 * - Other programs connect over a socket (AF_UNIX path or AF_INET
 *   host:port) to a manager that was given an address, with the authkey
 *   challenge of multiprocessing.connection; a wrong key is refused with
 *   MP_EAUTH.  The wire format is libmp's own (docs/managers.md): a Python
 *   manager cannot talk to a libmp one.
 *
 * Errors.  A method that fails in the server (Python's exception raised by
 * the referent, for instance KeyError) makes the call return MP_EREMOTE;
 * mp_remote_error_type() and mp_remote_error_message() then say what
 * happened ("KeyError", "'x'"), as Python's re-raised exception would.  The
 * codes that are part of an operation's normal contract pass through
 * unchanged instead: MP_ETIMEDOUT, MP_EEMPTY, MP_EFULL, MP_EBROKEN,
 * MP_EOWNERDEAD.  When the server has shut down or died, calls return
 * MP_EEOF promptly (within about 50 ms of its death), never hang: also a
 * call blocked in a hosted Lock, Semaphore, Event, Condition, Barrier or
 * Queue wait (a timed one too), and every later call on the manager and its
 * proxies, over a socket as well.  A value given as an argument may nest
 * MP_VAL_MAX_DEPTH - 1 deep (it travels inside the argument tuple); a
 * deeper one is MP_EINVAL before anything is sent.
 *
 * Thread-safety: every function may be called from several threads and
 * processes at once; the server runs the calls on one object one at a time.
 * Fork-safety: a child forked at any moment (outside a call of the forking
 * thread) opens channels and connections of its own on first use; it never
 * uses its parent's.
 *
 * C++ has no compound literals (before C++20, see common.h): fill a
 * zero-initialised struct and call the _opts function, e.g.
 *     mp_manager_options o = {};
 *     o.path = "/tmp/mgr";
 *     ... = mp_manager_new_opts(&o);
 */
#ifndef LIBMP_MANAGERS_H
#define LIBMP_MANAGERS_H

#include <stdbool.h>
#include <stdio.h>

#include "common.h"
#include "pool.h"
#include "val.h"

MP_BEGIN_DECLS

typedef struct mp_manager mp_manager;
typedef struct mp_proxy mp_proxy;

/* ---- the manager ----------------------------------------------------------- */

/*
 * A manager's initializer (Python's start(initializer, initargs)): called
 * once in the server process started by mp_manager_start, before it serves,
 * with its own copy of the initarg bytes (NULL when there are none;
 * malloc'd, so aligned for any type) and their size.  It returns 0, or a
 * negative code that makes mp_manager_start fail with that code.
 */
typedef int (*mp_manager_init_fn)(void *arg, size_t arg_size);

typedef struct mp_manager_options {
    size_t struct_size; /* sizeof: the macros set it; 0 is the 0.1 layout (common.h) */
    mp_context *ctx;    /* start method of the server process (NULL: default) */
    /*
     * Address for other programs (Python's address=): give .path (AF_UNIX;
     * "@name" is a Linux abstract name) or .host and .port (AF_INET; port 0
     * lets the system choose: read it back with mp_manager_address).
     * Neither: the manager serves the family only, through shared memory.
     * For mp_manager_connect this is where the server is.
     */
    const char *path;
    const char *host;
    int port;
    /* The key every socket client must prove it knows (Python's authkey).
     * NULL: the calling process's key (mp_process_authkey of
     * mp_current_process(), as Python's default), which children inherit
     * and unrelated programs must be given.  At most 256 bytes; copied. */
    const void *authkey;
    size_t authkey_len;
    /* Run in the server started by mp_manager_start (not by
     * mp_manager_serve_forever, as Python's get_server() does not); stored
     * as module + offset, so a function of the program or of a loaded
     * library.  initarg: bytes copied into the manager. */
    mp_manager_init_fn initializer;
    const void *initarg;
    size_t initarg_size;
} mp_manager_options;

/*
 * mp_manager_new: a manager object, not started yet (Python's BaseManager;
 * Python's Manager() is mp_manager_new() then mp_manager_start()).
 *
 * Returns the manager, owned by the caller (mp_manager_free), or NULL with
 * mp_last_error(): MP_EINVAL for both .path and .host, a port outside
 * 0..65535 or without a host, an empty path or one longer than 107 bytes,
 * an authkey longer than 256 bytes or NULL with a length, an initializer
 * in no loaded module, initarg NULL with a size or given without an
 * initializer; -ENOMEM.  The object lives in the shared arena:
 * pass the pointer to children to let them use the manager.
 */
#define mp_manager_new(...) mp_manager_new_opts(MP__OPTS(mp_manager_options, __VA_ARGS__))
MP_EXTERN mp_manager *mp_manager_new_opts(const mp_manager_options *opts);

/*
 * A method of a registered type, run in the server with the object that
 * create returned, the call's arguments (a tuple, never NULL) and a place
 * for the result.
 *
 * Return 0 and optionally set *result to a value allocated with the mp_val_
 * constructors (the server sends it and frees it; NULL means None), or a
 * negative code after calling mp_remote_raise to say what went wrong (the
 * caller gets MP_EREMOTE, or the code itself when it is one of the codes
 * that pass through, see above).
 */
typedef int (*mp_method_fn)(void *self, const mp_val *args, mp_val **result);

typedef struct mp_method {
    const char *name; /* at most 47 bytes */
    mp_method_fn fn;
} mp_method;

typedef struct mp_manager_type {
    size_t struct_size;    /* sizeof: the macros set it; 0 is the 0.1 layout (common.h) */
    const char *type_name; /* the name (Python's typeid), at most 47 bytes */
    /* Runs in the server for mp_manager_create(m, type_name, args): returns
     * the object, or NULL after mp_remote_raise.  Returning the same
     * pointer again gives a proxy to the same object (Python's
     * callable=lambda: shared_obj). */
    void *(*create)(const mp_val *args);
    /* Runs in the server when the last proxy is freed or at shutdown
     * (NULL: nothing is done, for shared objects the program owns). */
    void (*destroy)(void *self);
    const mp_method *methods; /* the exposed methods (Python's exposed=) */
    size_t nmethods;          /* at most 48 */
    /*
     * What create returns (Python's proxytype=):
     *   0 or MP_PROXY_CUSTOM  a program object served by .methods;
     *   MP_PROXY_DICT, MP_PROXY_LIST  an allocated mp_val dict or list,
     *       served with the dict or list methods (mp_dict_..., mp_list_...);
     *   MP_PROXY_NAMESPACE  an allocated mp_val dict of attributes;
     *   MP_PROXY_LOCK, _RLOCK, _SEMAPHORE, _BOUNDED_SEMAPHORE, _CONDITION,
     *   _EVENT, _BARRIER, _QUEUE, _JOINABLE_QUEUE  the libmp object of that
     *       kind (mp_lock *, ..., mp_queue *), made in the server process.
     * With a builtin kind .methods must be empty (MP_PROXY_VALUE and
     * MP_PROXY_ARRAY are not allowed).  This is how a server shares one
     * object with every client (Python's
     * register('get_queue', callable=lambda: queue)): create returns the
     * same object each time and destroy is NULL.
     */
    int kind;
} mp_manager_type;

/*
 * mp_manager_register: register a type with the manager (Python's
 * BaseManager.register), before mp_manager_start or
 * mp_manager_serve_forever.  The functions are stored as module + offset,
 * so they are found again in a server started with spawn or forkserver;
 * they must be functions of the program or of a loaded library.
 *
 *     static const mp_method counter_methods[] = {{"add", counter_add}, ...};
 *     mp_manager_register(m, .type_name = "Counter", .create = counter_new,
 *                         .destroy = counter_free, .methods = counter_methods,
 *                         .nmethods = 2);
 *
 * Returns 0; MP_EINVAL for m invalid or already started, a missing or too
 * long typeid or method name, a typeid already registered or builtin
 * ("dict", "list", ...), no create, too many methods or types (32), a
 * function that is in no loaded module; -ENOMEM.
 */
#define mp_manager_register(m, ...) \
    mp_manager_register_opts((m), MP__OPTS(mp_manager_type, __VA_ARGS__))
MP_EXTERN int mp_manager_register_opts(mp_manager *m, const mp_manager_type *type);

/*
 * mp_manager_register_comparator: name a comparison function for
 * mp_list_sort (Python passes key= functions; C passes their name, since
 * the sort runs in the server).  fn returns <0, 0 or >0.  Same rules as
 * mp_manager_register.  Builtin names: "default" (mp_val_cmp), "bytes" (by
 * the encoded bytes), "len", "casefold" (ASCII case-insensitive for str).
 * Returns 0; MP_EINVAL (bad name, taken, too many (16), started manager);
 * -ENOMEM.
 */
MP_EXTERN int mp_manager_register_comparator(mp_manager *m, const char *name,
                                             int (*fn)(const mp_val *a, const mp_val *b));

/*
 * mp_remote_raise: in a method or create function of a registered type,
 * say what went wrong (Python's raise inside the referent).  type is the
 * exception's name ("ValueError"; NULL: "Error"), fmt a printf format.
 * The caller of the proxy reads them with mp_remote_error_type and
 * mp_remote_error_message.  Returns code, so a method can end with
 * return mp_remote_raise(MP_EINVAL, "ValueError", "bad %d", x).
 */
MP_EXTERN int mp_remote_raise(int code, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * mp_manager_start: start the server in a child process (Python's start()),
 * with the manager's start method, and wait until it serves.  The child is
 * named "SyncManager-N" (N from the process counter, as Python does) and is
 * daemonic: it is stopped when the program exits, and it also stops by
 * itself when the process that started it dies.
 *
 * Returns 0; MP_EINVAL if m is invalid or was already started, connected
 * or is serving; the error the server met while starting (for example
 * -EADDRINUSE for an address that is taken, or the negative code the
 * initializer returned); -errno from starting the process.
 */
MP_EXTERN int mp_manager_start(mp_manager *m);

/*
 * mp_manager_serve_forever: run the server in the calling process (Python's
 * get_server().serve_forever()) until a client asks for a shutdown
 * (mp_manager_shutdown from any process or program holding the manager).
 * Processes of the family reach it through shared memory as usual;
 * programs that connect reach it through the address.
 *
 * Returns 0 after the shutdown; MP_EINVAL if m is invalid or already
 * started, serving or connected; the error met while setting up (an
 * address in use: -EADDRINUSE).  Starts threads in the calling process
 * while it runs (an acceptor and one per socket connection); at shutdown
 * their sockets are closed and their waits woken, and they have all ended
 * when it returns, except one stuck for more than 5 s in a registered
 * method: that one is left running and the server's memory is not freed
 * under it.  Not async-signal-safe; call it from a thread that may block.
 */
MP_EXTERN int mp_manager_serve_forever(mp_manager *m);

/*
 * mp_manager_connect: connect to the server at the manager's address
 * (Python's connect()), from any program.  The connection is checked at
 * once (authkey included); afterwards each thread of each process of this
 * family that uses the manager or its proxies opens its own connection on
 * first use.
 *
 * Returns 0; MP_EINVAL if m is invalid, has no address, or is started,
 * serving or connected already; MP_EAUTH for a wrong authkey (either way);
 * -ECONNREFUSED, -ENOENT and other -errno of connect(2).
 */
MP_EXTERN int mp_manager_connect(mp_manager *m);

/*
 * mp_manager_shutdown: stop the server (Python's shutdown()).  Every object
 * it holds is released, hosted ones after the family processes blocked in
 * them have left with MP_EEOF; calls through proxies made afterwards
 * return MP_EEOF.  If the calling process started the server, it also
 * waits for it to end (at most 1 s, then terminates it, as Python does).
 *
 * Returns 0 (also when the server had already stopped or died); MP_EINVAL
 * if m is invalid or was never started, served or connected.
 */
MP_EXTERN int mp_manager_shutdown(mp_manager *m);

/*
 * mp_manager_free: release the manager object.  A server this process
 * started and that still runs is shut down first.  Proxies of the manager
 * become invalid (MP_EINVAL).  Other processes must be done with the
 * manager.  NULL is a no-op.
 */
MP_EXTERN void mp_manager_free(mp_manager *m);

/*
 * mp_manager_address: the address the server listens on (Python's address),
 * with the port the system chose for port 0.  path receives the AF_UNIX
 * path ("" for AF_INET) and host/port the AF_INET address; any of them may
 * be NULL.  Returns 1 for AF_UNIX, 2 for AF_INET, 0 when the manager has no
 * address, MP_EINVAL for an invalid m.  pathlen and hostlen are the sizes of
 * the buffers (the text is cut to fit, always NUL-terminated).
 */
MP_EXTERN int mp_manager_address(const mp_manager *m, char *path, size_t pathlen, char *host,
                                 size_t hostlen, int *port);

/* mp_manager_pid: the server's pid, 0 if it is not started or runs in
 * another program; MP_EINVAL for an invalid m. */
MP_EXTERN pid_t mp_manager_pid(const mp_manager *m);

/*
 * mp_manager_exitcode: the server process's exit code (Python's
 * m._process.exitcode): 0 after a clean mp_manager_shutdown, -N when it was
 * ended by signal N (also when shutdown had to terminate it), 1 when it
 * stopped on an error.  Does not block.
 *
 * Returns 0 and sets *code once the process that started the server has
 * seen it end (shutdown, free, or a server that died: the starter sees
 * that at once, other processes after its shutdown); MP_ETIMEDOUT while it
 * runs, or for a manager that was never started or was only connected or
 * served in the calling process (Python's None); MP_EINVAL for an invalid
 * m or a NULL code.
 */
MP_EXTERN int mp_manager_exitcode(const mp_manager *m, int *code);

/* ---- proxies ------------------------------------------------------------------ */

typedef enum mp_proxy_kind {
    MP_PROXY_DICT = 1,
    MP_PROXY_LIST = 2,
    MP_PROXY_NAMESPACE = 3,
    MP_PROXY_VALUE = 4,
    MP_PROXY_ARRAY = 5,
    MP_PROXY_LOCK = 6,
    MP_PROXY_RLOCK = 7,
    MP_PROXY_SEMAPHORE = 8,
    MP_PROXY_BOUNDED_SEMAPHORE = 9,
    MP_PROXY_CONDITION = 10,
    MP_PROXY_EVENT = 11,
    MP_PROXY_BARRIER = 12,
    MP_PROXY_QUEUE = 13,
    MP_PROXY_JOINABLE_QUEUE = 14,
    MP_PROXY_CUSTOM = 15, /* a registered type */
    MP_PROXY_SET = 16,
    MP_PROXY_POOL = 17,
    MP_PROXY_ASYNC_RESULT = 18
} mp_proxy_kind;

/*
 * Creating objects in the manager.  Each returns a proxy owned by the
 * caller (mp_proxy_free), which lives in the shared arena and can be passed
 * to children; or NULL with mp_last_error(): MP_EINVAL for an invalid or
 * unstarted manager or bad arguments; MP_EREMOTE when the server refused
 * (mp_remote_error_message says why); MP_EEOF when the server is gone;
 * -ENOMEM.
 *
 * mp_manager_dict     init: NULL, a dict, or a list of (key, value) pairs.
 * mp_manager_list     init: NULL or a list or tuple.
 * mp_manager_set      Python's m.set(init): init NULL or a list or tuple of
 *                     hashable members (repeats are kept once; anything
 *                     else is MP_EINVAL, checked before it is sent).
 * mp_manager_namespace  an empty Namespace.
 * mp_manager_value    Python's m.Value(typecode, value): the typecode is
 *                     kept for printing ("Value('i', 5)"); value any mp_val.
 * mp_manager_array    Python's m.Array(typecode, sequence): an array.array
 *                     of typecode 'b' 'B' 'h' 'H' 'i' 'I' 'l' 'L' 'q' 'Q'
 *                     'f' or 'd' holding the numbers of init (a list or
 *                     tuple); a number that does not fit is an error.
 * mp_manager_create   any typeid: a registered one with args (a tuple, or
 *                     NULL for none) passed to its create function, or a
 *                     builtin one ("dict", "list", "Namespace", "Value",
 *                     "Array", "Lock", ...) with the arguments Python's
 *                     SyncManager takes.
 */
MP_EXTERN mp_proxy *mp_manager_dict(mp_manager *m, const mp_val *init);
MP_EXTERN mp_proxy *mp_manager_list(mp_manager *m, const mp_val *init);
MP_EXTERN mp_proxy *mp_manager_set(mp_manager *m, const mp_val *init);
MP_EXTERN mp_proxy *mp_manager_namespace(mp_manager *m);
MP_EXTERN mp_proxy *mp_manager_value(mp_manager *m, const char *typecode, const mp_val *value);
MP_EXTERN mp_proxy *mp_manager_array(mp_manager *m, const char *typecode, const mp_val *init);
MP_EXTERN mp_proxy *mp_manager_create(mp_manager *m, const char *type_name,
                                      const mp_val *args);

/*
 * mp_proxy_free: drop the proxy: the server forgets the object when no
 * proxy refers to it any more.  Exactly one process frees a proxy, after
 * the others are done with it.  If the server is gone only the proxy is
 * released.  NULL is a no-op.
 */
MP_EXTERN void mp_proxy_free(mp_proxy *p);

/* ---- proxies stored in managed objects --------------------------------------- */

/*
 * mp_val_proxy: a value that names p's object (MP_VAL_PROXY, a proxy
 * reference: what Python pickles a proxy into, its Token: typeid, object
 * id, server address), for storing in the same manager's objects, as in
 * Python's d['a'] = m.list() or m.list([m.Queue()]):
 *
 *     mp_val *r = mp_val_proxy(inner);
 *     mp_dict_set(d, MP_STR("a"), r);
 *     mp_val_free(r);
 *
 * While a managed dict, list, namespace, value or registered object holds
 * the reference, the server keeps the object alive, even after every proxy
 * of it is freed; it lets it go when the entry is overwritten or removed
 * or the container is freed (Python's refcounting through its
 * server-side proxies).  Getting the entry back (mp_dict_getitem,
 * mp_list_get, ...) gives the reference, which mp_proxy_from_val turns into
 * a proxy.  A reference is only stored in its own manager: sending one to
 * another manager's object is MP_EINVAL.  References are not hashable (no
 * dict keys or set members).
 *
 * Returns a new value owned by the caller (mp_val_free; freeing it does
 * not touch the object), or NULL with mp_last_error(): MP_EINVAL for an
 * invalid proxy; -ENOMEM.  Fork-safe; makes no call to the server.
 */
MP_EXTERN mp_val *mp_val_proxy(const mp_proxy *p);

/*
 * mp_proxy_from_val: a new proxy for the object a reference names
 * (Python's RebuildProxy, which unpickling a proxy runs): d['a'].append(1)
 * is mp_dict_getitem, mp_proxy_from_val, mp_list_append.  The proxy is of
 * the object's kind (a list proxy, a queue proxy, ...) and takes a
 * reference of its own: it stays usable after the reference value is freed
 * or the entry removed.
 *
 * m    the manager the reference came from, or NULL: a reference that a
 *      call through a manager handed out (or that mp_val_proxy made)
 *      remembers it.  Needed for one decoded from bytes (mp_val_decode).
 * v    a proxy reference (not consumed).
 *
 * Returns the proxy, owned by the caller (mp_proxy_free), or NULL with
 * mp_last_error(): MP_EINVAL when v is not a proxy reference, m is NULL and
 * v remembers no live manager, or m is not the one v came from;
 * MP_EREMOTE ("KeyError") when the server holds no such object any more;
 * MP_EEOF when the server is gone; -ENOMEM.
 */
MP_EXTERN mp_proxy *mp_proxy_from_val(mp_manager *m, const mp_val *v);

/*
 * mp_manager_object_count: how many objects the server holds (Python's
 * BaseManager._number_of_objects()), for finding leaks.  Returns the
 * count; MP_EINVAL for an invalid or unstarted manager; MP_EEOF when the
 * server is gone.
 */
MP_EXTERN ssize_t mp_manager_object_count(mp_manager *m);

/* mp_proxy_kind: the kind of object behind p (MP_PROXY_...), or MP_EINVAL.
 * mp_proxy_typeid: its typeid ("dict", "Counter", ...), owned by the proxy;
 * "" for an invalid proxy. */
MP_EXTERN int mp_proxy_kind_of(const mp_proxy *p);
MP_EXTERN const char *mp_proxy_typeid(const mp_proxy *p);

/*
 * mp_proxy_call: call a method of the object in the server (Python's
 * proxy._callmethod(name, args)).
 *
 * method  the method's name: one of a registered type's methods, or one of
 *         the builtin kinds' methods listed in docs/managers.md (for
 *         example "__getitem__", "append", "acquire").
 * args    a tuple or list of arguments (MP_TUPLE(...)), or NULL for none.
 * result  receives the result, owned by the caller (mp_val_free); None
 *         when the method returns nothing.  May be NULL to drop it.
 *
 * Returns 0; MP_EREMOTE when the method failed in the server (see above:
 * mp_remote_error_type / _message), or an unknown method or object;
 * MP_EINVAL for an invalid proxy, a NULL method or malformed args; MP_EEOF
 * when the server is gone; -ENOMEM; the connection's errors for a remote
 * manager.  A method that returns another managed object (a registered
 * create) is not reachable this way; use mp_manager_create.
 */
MP_EXTERN int mp_proxy_call(mp_proxy *p, const char *method, const mp_val *args,
                            mp_val **result);

/*
 * mp_proxy_repr / mp_proxy_tostring: the object's repr() and str(), as new
 * strings owned by the caller (free): "{0: 0, 1: 2}", "Namespace(a=1)",
 * "array('i', [0, 1])", "Value('i', 5)"; a registered type prints with its
 * __repr__ / __str__ method if it has one, else "<Counter object>".  NULL
 * with mp_last_error() on failure (codes as mp_proxy_call).
 */
MP_EXTERN char *mp_proxy_repr(mp_proxy *p);
MP_EXTERN char *mp_proxy_tostring(mp_proxy *p);

/*
 * mp_remote_error_type / _message / _code: what the last call of the
 * calling thread that returned MP_EREMOTE was told by the server: the
 * exception's name ("KeyError", "AttributeError", "IndexError",
 * "ValueError", "TypeError", or a registered method's own), its message
 * (Python's str(exception), for instance "'Namespace' object has no
 * attribute 'value'"), and the code the method failed with.  Valid until
 * the thread's next failing call; "" and 0 when there was none.
 */
MP_EXTERN const char *mp_remote_error_type(void);
MP_EXTERN const char *mp_remote_error_message(void);
MP_EXTERN int mp_remote_error_code(void);

/* ---- dict proxies (Python's DictProxy) ------------------------------------ */

/*
 * Unless said otherwise these return 0; MP_EINVAL for an invalid proxy, a
 * proxy of another kind, NULL or malformed values, or an unhashable key
 * (checked before anything is sent); MP_EREMOTE with "KeyError" for a
 * missing key; MP_EEOF when the server is gone.  Values handed out (*out)
 * are copies owned by the caller (mp_val_free).
 *
 * mp_dict_set          d[key] = value
 * mp_dict_getitem      d[key]  (missing: MP_EREMOTE, KeyError)
 * mp_dict_get          d.get(key, dflt)  (dflt NULL: None)
 * mp_dict_del          del d[key]
 * mp_dict_contains     key in d: 1 or 0 (or a negative code)
 * mp_dict_len          len(d) (or a negative code)
 * mp_dict_keys / _values / _items   lists (items: of (key, value) tuples)
 * mp_dict_copy         the whole dict as a dict value (Python's d.copy())
 * mp_dict_update       d.update(other): a dict or a list of pairs
 * mp_dict_clear        d.clear()
 * mp_dict_pop          d.pop(key, dflt)  (dflt NULL: missing is KeyError)
 * mp_dict_popitem      d.popitem(): the last (key, value) tuple
 *                      (empty: MP_EREMOTE, KeyError)
 * mp_dict_setdefault   d.setdefault(key, dflt)  (dflt NULL: None)
 */
MP_EXTERN int mp_dict_set(mp_proxy *d, const mp_val *key, const mp_val *value);
MP_EXTERN int mp_dict_getitem(mp_proxy *d, const mp_val *key, mp_val **out);
MP_EXTERN int mp_dict_get(mp_proxy *d, const mp_val *key, const mp_val *dflt, mp_val **out);
MP_EXTERN int mp_dict_del(mp_proxy *d, const mp_val *key);
MP_EXTERN int mp_dict_contains(mp_proxy *d, const mp_val *key);
MP_EXTERN ssize_t mp_dict_len(mp_proxy *d);
MP_EXTERN int mp_dict_keys(mp_proxy *d, mp_val **out);
MP_EXTERN int mp_dict_values(mp_proxy *d, mp_val **out);
MP_EXTERN int mp_dict_items(mp_proxy *d, mp_val **out);
MP_EXTERN int mp_dict_copy(mp_proxy *d, mp_val **out);
MP_EXTERN int mp_dict_update(mp_proxy *d, const mp_val *other);
MP_EXTERN int mp_dict_clear(mp_proxy *d);
MP_EXTERN int mp_dict_pop(mp_proxy *d, const mp_val *key, const mp_val *dflt, mp_val **out);
MP_EXTERN int mp_dict_popitem(mp_proxy *d, mp_val **out);
MP_EXTERN int mp_dict_setdefault(mp_proxy *d, const mp_val *key, const mp_val *dflt,
                                 mp_val **out);

/*
 * mp_dict_or: d | other: a new dict value (a copy of d updated with other,
 * which must be a dict, else MP_EINVAL) in *out; d is unchanged.
 * mp_dict_ior: d |= other (other: a dict or a list of pairs, as update).
 * Codes as above.
 */
MP_EXTERN int mp_dict_or(mp_proxy *d, const mp_val *other, mp_val **out);
MP_EXTERN int mp_dict_ior(mp_proxy *d, const mp_val *other);

/* ---- list proxies (Python's ListProxy) ---------------------------------------- */

/* An omitted slice bound (Python's l[:b], l[a:]). */
#define MP_SLICE_END INT64_MIN

/*
 * Return codes as for dicts; index errors are MP_EREMOTE with "IndexError"
 * and a missing value (remove, index) MP_EREMOTE with "ValueError".
 * Negative indexes count from the end, as in Python.
 *
 * mp_list_append       l.append(x)
 * mp_list_extend       l.extend(seq)  (a list or tuple)
 * mp_list_insert       l.insert(i, x)  (out of range clamps, as Python)
 * mp_list_get          l[i]
 * mp_list_set          l[i] = x
 * mp_list_del          del l[i]
 * mp_list_pop          l.pop(i)  (i = -1: the last)
 * mp_list_remove       l.remove(x)
 * mp_list_index        l.index(x): the position, or a negative code
 * mp_list_count        l.count(x), or a negative code
 * mp_list_contains     x in l: 1 or 0
 * mp_list_len          len(l)
 * mp_list_reverse      l.reverse()
 * mp_list_sort         l.sort(key=cmp, reverse=reverse): cmp names a
 *                      comparator (NULL: "default"; see
 *                      mp_manager_register_comparator); stable
 * mp_list_slice        l[start:stop:step] as a list (bounds may be
 *                      MP_SLICE_END; step 0 is MP_EINVAL)
 * mp_list_set_slice    l[start:stop] = seq
 * mp_list_del_slice    del l[start:stop]
 * mp_list_copy         the whole list as a list value (Python's l[:])
 */
MP_EXTERN int mp_list_append(mp_proxy *l, const mp_val *x);
MP_EXTERN int mp_list_extend(mp_proxy *l, const mp_val *seq);
MP_EXTERN int mp_list_insert(mp_proxy *l, int64_t i, const mp_val *x);
MP_EXTERN int mp_list_get(mp_proxy *l, int64_t i, mp_val **out);
MP_EXTERN int mp_list_set(mp_proxy *l, int64_t i, const mp_val *x);
MP_EXTERN int mp_list_del(mp_proxy *l, int64_t i);
MP_EXTERN int mp_list_pop(mp_proxy *l, int64_t i, mp_val **out);
MP_EXTERN int mp_list_remove(mp_proxy *l, const mp_val *x);
MP_EXTERN ssize_t mp_list_index(mp_proxy *l, const mp_val *x);
MP_EXTERN ssize_t mp_list_count(mp_proxy *l, const mp_val *x);
MP_EXTERN int mp_list_contains(mp_proxy *l, const mp_val *x);
MP_EXTERN ssize_t mp_list_len(mp_proxy *l);
MP_EXTERN int mp_list_reverse(mp_proxy *l);
MP_EXTERN int mp_list_sort(mp_proxy *l, const char *cmp, bool reverse);
MP_EXTERN int mp_list_slice(mp_proxy *l, int64_t start, int64_t stop, int64_t step,
                            mp_val **out);
MP_EXTERN int mp_list_set_slice(mp_proxy *l, int64_t start, int64_t stop, const mp_val *seq);
MP_EXTERN int mp_list_del_slice(mp_proxy *l, int64_t start, int64_t stop);
MP_EXTERN int mp_list_copy(mp_proxy *l, mp_val **out);

/*
 * List operators, codes as above:
 * mp_list_add          l + other: a new list value in *out (other must be
 *                      a list, else MP_EINVAL, as Python's TypeError)
 * mp_list_iadd         l += seq (a list or tuple; the same as extend)
 * mp_list_mul          l * n: a new list value (n <= 0: empty)
 * mp_list_imul         l *= n, in place (n <= 0 empties it)
 * mp_list_reversed     list(reversed(l)): a reversed copy; l is unchanged
 */
MP_EXTERN int mp_list_add(mp_proxy *l, const mp_val *other, mp_val **out);
MP_EXTERN int mp_list_iadd(mp_proxy *l, const mp_val *seq);
MP_EXTERN int mp_list_mul(mp_proxy *l, int64_t n, mp_val **out);
MP_EXTERN int mp_list_imul(mp_proxy *l, int64_t n);
MP_EXTERN int mp_list_reversed(mp_proxy *l, mp_val **out);

/* ---- iterating a dict, list or set proxy ------------------------------------ */

typedef struct mp_proxy_iter mp_proxy_iter;

/*
 * mp_proxy_iter_new: an iterator over p (Python's for x in proxy): the
 * keys of a dict, the items of a list, the members of a set, taken as one
 * snapshot when it is made (one call to the server); later changes to the
 * object are not seen and do not disturb it (Python raises RuntimeError
 * for a dict changed during iteration).  Returns the iterator, owned by
 * the calling process (mp_proxy_iter_free; it cannot be passed to other
 * processes), or NULL with mp_last_error(): MP_EINVAL for an invalid proxy
 * or one of another kind; the codes of mp_dict_keys; -ENOMEM.
 *
 *     const mp_val *x;
 *     while (mp_proxy_iter_next(it, &x) == 1) ...
 *
 * mp_proxy_iter_next: 1 and *item the next one (owned by the iterator,
 * valid until it is freed), 0 at the end (*item NULL), MP_EINVAL for NULL
 * arguments.  mp_proxy_iter_free: release it; NULL is a no-op.
 */
MP_EXTERN mp_proxy_iter *mp_proxy_iter_new(mp_proxy *p);
MP_EXTERN int mp_proxy_iter_next(mp_proxy_iter *it, const mp_val **item);
MP_EXTERN void mp_proxy_iter_free(mp_proxy_iter *it);

/* ---- set proxies (Python's SetProxy) --------------------------------------- */

/*
 * Return codes as for dicts: MP_EINVAL for an invalid proxy, one of
 * another kind, a NULL or unhashable member or a seq that is not a list or
 * tuple of hashable values (checked before anything is sent); MP_EREMOTE
 * with "KeyError" for a missing member (remove) or an empty set (pop);
 * MP_EEOF when the server is gone.  The set keeps its members in the order
 * they were first added (Python's order is the hash order); the results
 * that are sets in Python (*out of union, intersection, difference and
 * members) are lists of copies in that order, owned by the caller.
 *
 * mp_setproxy_add           s.add(x)
 * mp_setproxy_discard       s.discard(x)  (missing: nothing happens)
 * mp_setproxy_remove        s.remove(x)  (missing: MP_EREMOTE, KeyError)
 * mp_setproxy_contains      x in s: 1 or 0 (or a negative code)
 * mp_setproxy_len           len(s) (or a negative code)
 * mp_setproxy_pop           s.pop(): the last member added
 * mp_setproxy_clear         s.clear()
 * mp_setproxy_update        s.update(seq), s |= set(seq)
 * mp_setproxy_union         s.union(seq), s | set(seq)
 * mp_setproxy_intersection  s.intersection(seq), s & set(seq)
 * mp_setproxy_difference    s.difference(seq), s - set(seq)
 * mp_setproxy_members       list(s), s.copy()
 */
MP_EXTERN int mp_setproxy_add(mp_proxy *s, const mp_val *x);
MP_EXTERN int mp_setproxy_discard(mp_proxy *s, const mp_val *x);
MP_EXTERN int mp_setproxy_remove(mp_proxy *s, const mp_val *x);
MP_EXTERN int mp_setproxy_contains(mp_proxy *s, const mp_val *x);
MP_EXTERN ssize_t mp_setproxy_len(mp_proxy *s);
MP_EXTERN int mp_setproxy_pop(mp_proxy *s, mp_val **out);
MP_EXTERN int mp_setproxy_clear(mp_proxy *s);
MP_EXTERN int mp_setproxy_update(mp_proxy *s, const mp_val *seq);
MP_EXTERN int mp_setproxy_union(mp_proxy *s, const mp_val *seq, mp_val **out);
MP_EXTERN int mp_setproxy_intersection(mp_proxy *s, const mp_val *seq, mp_val **out);
MP_EXTERN int mp_setproxy_difference(mp_proxy *s, const mp_val *seq, mp_val **out);
MP_EXTERN int mp_setproxy_members(mp_proxy *s, mp_val **out);

/* ---- Namespace proxies ----------------------------------------------------------- */

/*
 * name is an attribute name (a non-empty identifier not starting with an
 * underscore, as Python's proxy only forwards those; anything else is
 * MP_EINVAL).  Getting or deleting a missing attribute is MP_EREMOTE with
 * "AttributeError" and the message "'Namespace' object has no attribute
 * 'value'", as Python prints it.  mp_namespace_copy gives every attribute
 * as a dict (Python's vars(ns)).
 */
MP_EXTERN int mp_namespace_set(mp_proxy *ns, const char *name, const mp_val *value);
MP_EXTERN int mp_namespace_get(mp_proxy *ns, const char *name, mp_val **out);
MP_EXTERN int mp_namespace_del(mp_proxy *ns, const char *name);
MP_EXTERN int mp_namespace_copy(mp_proxy *ns, mp_val **out);

/* ---- Value and Array proxies (Python's ValueProxy, ArrayProxy) ------------- */

/*
 * mp_valueproxy_get / _set: v.value and v.value = x.
 * mp_arrayproxy_len / _get / _set / _tolist: len(a), a[i], a[i] = x (a
 * number of the array's type; out of range for the type is MP_EREMOTE with
 * "OverflowError", a float into an integer array "TypeError"), and
 * a.tolist() (a[:]).  Codes as above.
 */
MP_EXTERN int mp_valueproxy_get(mp_proxy *v, mp_val **out);
MP_EXTERN int mp_valueproxy_set(mp_proxy *v, const mp_val *x);
MP_EXTERN ssize_t mp_arrayproxy_len(mp_proxy *a);
MP_EXTERN int mp_arrayproxy_get(mp_proxy *a, int64_t i, mp_val **out);
MP_EXTERN int mp_arrayproxy_set(mp_proxy *a, int64_t i, const mp_val *x);
MP_EXTERN int mp_arrayproxy_tolist(mp_proxy *a, mp_val **out);

/* ---- synchronisation objects and queues --------------------------------------- */

/*
 * Python's m.Lock(), m.RLock(), m.Semaphore(value), m.BoundedSemaphore(value),
 * m.Condition(), m.Event(), m.Barrier(parties, timeout=...), m.Queue(maxsize)
 * and m.JoinableQueue(maxsize).  Return codes as for mp_manager_dict.
 *
 * The server holds a libmp object (synchronize.h, queues.h) for each.  In
 * processes of the family the proxy uses that object directly: a blocking
 * call blocks only the caller, a lock is held by the calling thread, and
 * mp_proxy_native gives the object itself (an mp_lock *, mp_semaphore *,
 * mp_condition *, mp_event *, mp_barrier * or mp_queue *) to use with its
 * own API.  For a program connected over a socket the calls run in the
 * server, in the thread that serves that program's connection, so they
 * block only that program (and a lock's holder is that connection).
 *
 * Departures: a managed Condition always makes its own RLock, a managed
 * Barrier takes no action (no function can be sent), and mp_manager_barrier's
 * timeout 0 means none, as for mp_barrier_new.
 */
MP_EXTERN mp_proxy *mp_manager_lock(mp_manager *m);
MP_EXTERN mp_proxy *mp_manager_rlock(mp_manager *m);
MP_EXTERN mp_proxy *mp_manager_semaphore(mp_manager *m, int value);
MP_EXTERN mp_proxy *mp_manager_bounded_semaphore(mp_manager *m, int value);
MP_EXTERN mp_proxy *mp_manager_condition(mp_manager *m);
MP_EXTERN mp_proxy *mp_manager_event(mp_manager *m);
MP_EXTERN mp_proxy *mp_manager_barrier(mp_manager *m, int parties, double timeout);
MP_EXTERN mp_proxy *mp_manager_queue(mp_manager *m, long maxsize);
MP_EXTERN mp_proxy *mp_manager_joinable_queue(mp_manager *m, long maxsize);

/*
 * mp_proxy_native: the libmp object behind a hosted synchronisation object
 * or queue, in a process of the server's family; NULL for other kinds, for
 * a connected (remote) manager, or an invalid proxy.  Owned by the server:
 * never free it; it is freed with the proxy or at shutdown.  Its own API
 * does not watch the server (the proxy's methods do): do not shut the
 * manager down while a thread waits on it that way.
 */
MP_EXTERN void *mp_proxy_native(const mp_proxy *p);

/*
 * The methods, on the proxy (as Python calls them on the proxy).  Each
 * returns MP_EINVAL for a proxy of a kind that does not have the method, a
 * bad timeout, or a NULL argument; MP_EEOF when the server is gone;
 * MP_EREMOTE for other failures in the server.
 *
 * mp_proxy_acquire      Lock, RLock, Semaphore, BoundedSemaphore, Condition:
 *                       0, MP_ETIMEDOUT (Python's False), MP_EOWNERDEAD
 *                       (acquired; the previous holder of a lock died).
 * mp_proxy_release      the same kinds: 0; MP_EINVAL when the caller does
 *                       not hold it or a BoundedSemaphore would go above
 *                       its initial value.
 * mp_proxy_get_value    Semaphore, BoundedSemaphore: the value.
 * mp_proxy_wait         Condition: 0 when notified, MP_ETIMEDOUT, MP_EINVAL
 *                       when the caller does not hold its lock; Event: 0
 *                       when set, MP_ETIMEDOUT (False); Barrier: the
 *                       arrival index, or MP_EBROKEN.
 * mp_proxy_notify / _notify_all   Condition (the caller holds the lock).
 * mp_proxy_set / _clear / _is_set Event (is_set: 1 or 0).
 * mp_proxy_reset / _abort / _parties / _n_waiting / _broken   Barrier.
 * mp_proxy_put          Queue, JoinableQueue: put(v, timeout): 0 or MP_EFULL.
 * mp_proxy_get          get(timeout) into *out (owned by the caller): 0 or
 *                       MP_EEMPTY.  A message put into the native queue by
 *                       other means than a proxy comes out as bytes.
 * mp_proxy_qsize / _empty / _full, mp_proxy_task_done, mp_proxy_join
 *                       (the last two: JoinableQueue; join: 0 or
 *                       MP_ETIMEDOUT; task_done too often: MP_EINVAL).
 */
MP_EXTERN int mp_proxy_acquire(mp_proxy *p, double timeout);
MP_EXTERN int mp_proxy_release(mp_proxy *p);
MP_EXTERN int mp_proxy_get_value(mp_proxy *p);
MP_EXTERN int mp_proxy_wait(mp_proxy *p, double timeout);
MP_EXTERN int mp_proxy_notify(mp_proxy *p, int n);
MP_EXTERN int mp_proxy_notify_all(mp_proxy *p);
MP_EXTERN int mp_proxy_set(mp_proxy *p);
MP_EXTERN int mp_proxy_clear(mp_proxy *p);
MP_EXTERN int mp_proxy_is_set(mp_proxy *p);
MP_EXTERN int mp_proxy_reset(mp_proxy *p);
MP_EXTERN int mp_proxy_abort(mp_proxy *p);
MP_EXTERN int mp_proxy_parties(mp_proxy *p);
MP_EXTERN int mp_proxy_n_waiting(mp_proxy *p);
MP_EXTERN int mp_proxy_broken(mp_proxy *p);
MP_EXTERN int mp_proxy_put(mp_proxy *q, const mp_val *v, double timeout);
MP_EXTERN int mp_proxy_get(mp_proxy *q, double timeout, mp_val **out);
MP_EXTERN long mp_proxy_qsize(mp_proxy *q);
MP_EXTERN int mp_proxy_empty(mp_proxy *q);
MP_EXTERN int mp_proxy_full(mp_proxy *q);
MP_EXTERN int mp_proxy_task_done(mp_proxy *q);
MP_EXTERN int mp_proxy_join(mp_proxy *q, double timeout);

/* ---- a Pool in the manager (Python's SyncManager.Pool) ----------------------- */

/*
 * mp_manager_pool: a pool of worker processes made and held by the server
 * (Python's m.Pool(processes)): its workers are children of the server
 * process, and every process that holds the proxy (the family, by passing
 * the pointer) submits work to the same pool.  processes 0: the server's
 * mp_cpu_count().  Returns the proxy (kind MP_PROXY_POOL; free it with
 * mp_proxy_free, which terminates the pool once no proxy and no
 * AsyncResult refers to it), or NULL with mp_last_error() as
 * mp_manager_dict's, MP_EINVAL for processes < 0, MP_EREMOTE when the
 * server could not start the pool.
 *
 * The functions travel as module + offset (as process targets do): they
 * must be functions of the program or of a library loaded in the server
 * too.  A manager connected over a socket (another program) can create,
 * close, terminate and join a Pool, but apply and map through it are
 * MP_EINVAL: a function cannot be named across programs.  Tasks get NULL
 * as their arg (no .arg option); imap, imap_unordered, starmap and
 * callbacks are not provided (Python's proxy has them: a departure,
 * docs/managers.md).
 */
MP_EXTERN mp_proxy *mp_manager_pool(mp_manager *m, int processes);

/*
 * mp_poolproxy_apply: run f(in) in a worker of the pool and wait (Python's
 * pool.apply); *out receives the result bytes (malloc'd, free it; may be
 * NULL to drop them) and *out_size their length.
 * mp_poolproxy_map: out[i] = f(in[i]) for n items of in_size bytes into n
 * items of out_size bytes (Python's pool.map; all items run, as
 * mp_pool_map).
 *
 * Return 0; the code of the failed task (the first failed item for map;
 * its message in mp_remote_error_message()); MP_EWORKERLOST when a worker
 * died or the pool was terminated; MP_EINVAL for a proxy that is not a
 * Pool's, f in no loaded module, NULL buffers with sizes, in_size 0, a
 * closed pool (MP_EREMOTE then, "ValueError"), or a connected manager;
 * MP_EEOF when the server is gone; -ENOMEM.
 */
MP_EXTERN int mp_poolproxy_apply(mp_proxy *pool, mp_pool_bytes_fn f, const void *in,
                                 size_t in_size, void **out, size_t *out_size);
MP_EXTERN int mp_poolproxy_map(mp_proxy *pool, mp_pool_fn f, const void *in, size_t in_size,
                               size_t n, void *out, size_t out_size);

/*
 * mp_poolproxy_apply_async / mp_poolproxy_map_async: submit the work
 * without waiting (Python's apply_async, map_async) and return a proxy of
 * its AsyncResult (kind MP_PROXY_ASYNC_RESULT), held by the server; the
 * result (map: the n * out_size output bytes) stays there until
 * mp_asyncproxy_get fetches a copy.  chunksize 0: map's rule.  NULL with
 * mp_last_error() for the errors of apply and map that are known at once.
 * Freeing the AsyncResult proxy before the work is done abandons it, as
 * mp_async_result_free does.
 */
MP_EXTERN mp_proxy *mp_poolproxy_apply_async(mp_proxy *pool, mp_pool_bytes_fn f,
                                             const void *in, size_t in_size);
MP_EXTERN mp_proxy *mp_poolproxy_map_async(mp_proxy *pool, mp_pool_fn f, const void *in,
                                           size_t in_size, size_t n, size_t out_size,
                                           size_t chunksize);

/*
 * mp_asyncproxy_get: wait for the result (Python's AsyncResult.get): 0 with
 * *out a malloc'd copy of the result bytes (free it) and *size their
 * length (either may be NULL); the task's code as for mp_poolproxy_apply;
 * MP_ETIMEDOUT; MP_EEOF (the server is gone); MP_EINVAL for another kind
 * or a bad timeout.  May be called again.
 * mp_asyncproxy_wait: 0 when ready, MP_ETIMEDOUT, or those codes.
 * mp_asyncproxy_ready: 1 or 0.  mp_asyncproxy_successful: 1 or 0 once
 * ready, MP_EINVAL before (Python's ValueError).
 * In the server's family the waits are on shared memory (they do not hold
 * up the server) and end with MP_EEOF within about 50 ms of its death.
 */
MP_EXTERN int mp_asyncproxy_get(mp_proxy *r, double timeout, void **out, size_t *size);
MP_EXTERN int mp_asyncproxy_wait(mp_proxy *r, double timeout);
MP_EXTERN int mp_asyncproxy_ready(mp_proxy *r);
MP_EXTERN int mp_asyncproxy_successful(mp_proxy *r);

/*
 * mp_poolproxy_close / _terminate / _join: Python's pool.close(),
 * terminate() and join(timeout) on the server's pool (join before close or
 * terminate is MP_EINVAL, as Python's ValueError; MP_ETIMEDOUT when the
 * workers have not ended by the timeout).  Return 0 or the codes above.
 */
MP_EXTERN int mp_poolproxy_close(mp_proxy *pool);
MP_EXTERN int mp_poolproxy_terminate(mp_proxy *pool);
MP_EXTERN int mp_poolproxy_join(mp_proxy *pool, double timeout);

MP_END_DECLS

#endif /* LIBMP_MANAGERS_H */
