/*
 * process.c: Process objects, the current and parent process, the list of
 * children, and the child bootstrap (Python's multiprocessing/process.py).
 *
 * A process object lives in the shared arena.  Its identity, name, flags
 * and exit code are readable by every process of the family; its start
 * method state (sentinel fd, pid) is only meaningful in the process that
 * created it, which is the only one allowed to start, join, poll or signal
 * it (Python's _parent_pid checks).
 *
 * The list of children, the current process, the name counter and the
 * child's private copy of its argument bytes are process-local, as
 * Python's module globals are.
 */
#include "internal/mp.h"
#include "internal/popen.h"
#include "internal/spawn.h"
#include "internal/util.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PROCESS_MAGIC MP__MAGIC('p', 'r', 'o', 'c')
/* A running child freed by its owner: kept until it is reaped. */
#define ORPHAN_MAGIC MP__MAGIC('p', 'r', 'o', 'z')
/* An orphan being released by one thread. */
#define RELEASING_MAGIC MP__MAGIC('p', 'r', 'o', 'r')

#define NAME_MAX_LEN 255
#define IDENTITY_LEN 64

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

enum { ST_INITIAL = 0, ST_STARTED = 1, ST_ENDED = 2 };

enum {
    F_DAEMON = 1u << 0,
    F_CLOSED = 1u << 1,
    F_MAIN = 1u << 2,     /* the MainProcess object */
    F_PARENT = 1u << 3,   /* a child's view of its parent */
    F_RUN = 1u << 4,      /* .run (self) rather than .target (arg bytes) */
    F_INDIRECT = 1u << 5, /* a parent that is not the kernel's parent */
    F_SIGMASK = 1u << 6,  /* sig_block was given (mp__process_set_sigmask) */
    F_PDEATH = 1u << 7,   /* killed when its parent ends (a daemon) */
    F_OWNWATCH = 1u << 8, /* a daemon that watches its parent itself */
};

struct mp_process {
    mp__obj hdr;
    mp__fnref target;
    mp__fnref run;
    void *arg; /* arena copy of the argument bytes, or NULL */
    size_t arg_size;
    mp_context *ctx;
    pid_t creator; /* the only process that may start, join, signal it */
    uint32_t state;
    uint32_t flags;
    int32_t exitcode; /* valid in state ST_ENDED */
    /* Start-method state: meaningful only in the creator. */
    mp__popen po;
    pid_t parent_pid;            /* the starter, for the child's parent_process() */
    uint64_t sig_block;          /* the child's signal mask: bit n-1 for signal n */
    char identity[IDENTITY_LEN]; /* Python's _identity: "2:1" */
    char parent_name[NAME_MAX_LEN + 1];
    char name[NAME_MAX_LEN + 1];
    /* The key the child takes as its own (Python's _config['authkey']);
     * the caller's own key is process-local (authkey.c). */
    uint32_t authkey_len;
    unsigned char authkey[MP_AUTHKEY_MAX];
};

/* ---- process-local state --------------------------------------------------- */

/* NULL in the main process until asked; atomic because any thread may ask
 * (and log) while another creates MainProcess. */
static _Atomic(mp_process *) current;
static bool is_child; /* bootstrapped by libmp */
static _Atomic(mp_process *) parent_proxy;
static void *current_arg; /* the child's private copy of its bytes */
static size_t current_arg_size;
static atomic_uint name_counter; /* Python's _process_counter */

/*
 * The parent's pidfd handed over by a start method whose children are not
 * children of their parent process (forkserver): parent_fd_next is set
 * before the bootstrap, which moves it to parent_fd (-2: none given, judge
 * the parent by getppid()); mp_parent_process() adopts parent_fd.
 */
static int parent_fd_next = -2;
static int parent_fd = -2;

/*
 * The children this process started and has not reaped (Python's
 * _children).  The lock is held around fork (see children_atfork_*), so a
 * child never inherits it held; the child empties the list anyway.
 */
static pthread_mutex_t children_lock = PTHREAD_MUTEX_INITIALIZER;
static mp_process **children;
static size_t nchildren, capchildren;

static uint32_t load_u32(const uint32_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void store_u32(uint32_t *p, uint32_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static uint32_t magic_of(const mp_process *p)
{
    return __atomic_load_n(&p->hdr.magic, __ATOMIC_ACQUIRE);
}

/* A live process object. */
static int check(const mp_process *p)
{
    return mp__obj_check(p, PROCESS_MAGIC);
}

/* A live object, or the caller's own object freed by its parent. */
static int check_readable(const mp_process *p)
{
    if (p != NULL && p == current)
        return 0;
    return check(p);
}

static bool owned(const mp_process *p)
{
    return p->creator == getpid();
}

static bool closed(const mp_process *p)
{
    return (load_u32(&p->flags) & F_CLOSED) != 0;
}

static void copy_name(char *dst, const char *src)
{
    size_t n = strnlen(src, NAME_MAX_LEN);
    /* Bytes first, then the terminator, so a reader in another process
     * never runs past the buffer. */
    memcpy(dst, src, n);
    __atomic_store_n(&dst[n], '\0', __ATOMIC_RELEASE);
}

/* ---- the children list ------------------------------------------------------ */

static int children_reserve(void)
{
    int r = 0;
    pthread_mutex_lock(&children_lock);
    if (nchildren == capchildren) {
        size_t cap = capchildren ? capchildren * 2 : 16;
        mp_process **c = realloc(children, cap * sizeof *c);
        if (c == NULL) {
            r = -ENOMEM;
        } else {
            children = c;
            capchildren = cap;
        }
    }
    pthread_mutex_unlock(&children_lock);
    return r;
}

/* Append p; children_reserve made room (a concurrent start may have used
 * it, hence the second try). */
static int children_add(mp_process *p)
{
    for (;;) {
        pthread_mutex_lock(&children_lock);
        if (nchildren < capchildren) {
            children[nchildren++] = p;
            pthread_mutex_unlock(&children_lock);
            return 0;
        }
        pthread_mutex_unlock(&children_lock);
        int r = children_reserve();
        if (r != 0)
            return r;
    }
}

static void children_remove_locked(size_t i)
{
    children[i] = children[--nchildren];
}

static void children_remove(const mp_process *p)
{
    pthread_mutex_lock(&children_lock);
    for (size_t i = 0; i < nchildren; i++) {
        if (children[i] == p) {
            children_remove_locked(i);
            break;
        }
    }
    pthread_mutex_unlock(&children_lock);
}

static void children_atfork_prepare(void)
{
    pthread_mutex_lock(&children_lock);
}

static void children_atfork_parent(void)
{
    pthread_mutex_unlock(&children_lock);
}

static void children_atfork_child(void)
{
    pthread_mutex_unlock(&children_lock);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void register_atfork(void)
{
    pthread_atfork(children_atfork_prepare, children_atfork_parent, children_atfork_child);
}

/* ---- waiting, reaping, releasing -------------------------------------------- */

static const mp__popen_ops *ops_of(const mp_process *p)
{
    return mp__popen_ops_get(p->po.method);
}

/*
 * Wait for a started child of the caller until d: 0 once it has ended
 * (state ST_ENDED, exit code stored), MP_ETIMEDOUT while it runs.
 */
static int proc_wait(mp_process *p, const mp__deadline *d)
{
    if (load_u32(&p->state) == ST_ENDED)
        return 0;
    int code;
    int r = ops_of(p)->wait(&p->po, d, &code);
    if (r != 0)
        return r;
    __atomic_store_n(&p->exitcode, code, __ATOMIC_RELAXED);
    store_u32(&p->state, ST_ENDED);
    return 0;
}

static int proc_poll(mp_process *p)
{
    mp__deadline d;
    mp__deadline_init(&d, 0);
    return proc_wait(p, &d);
}

/* Close the sentinel (and the start method's second fd) in this process
 * if this process holds it. */
static void close_sentinel(mp_process *p)
{
    if (p->po.sentinel >= 0 && mp__fd_owned(p->po.sentinel, p)) {
        mp__fd_unregister(p->po.sentinel);
        if (p->po.aux >= 0 && mp__fd_owned(p->po.aux, p))
            mp__fd_unregister(p->po.aux);
        const mp__popen_ops *ops = ops_of(p);
        if (ops != NULL)
            ops->close(&p->po);
    }
}

/* Give the object and its argument bytes back to the arena. */
static void release(mp_process *p)
{
    close_sentinel(p);
    mp__free(p->arg);
    mp__obj_free(p);
}

/* Release an orphan once; false if another thread got it first. */
static bool release_orphan(mp_process *p)
{
    uint32_t expected = ORPHAN_MAGIC;
    if (!__atomic_compare_exchange_n(&p->hdr.magic, &expected, RELEASING_MAGIC, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return false;
    release(p);
    return true;
}

/*
 * Python's _cleanup(): forget the children that have ended (reaping them),
 * release the orphans among them, and drop entries inherited from a parent
 * through a fork that libmp did not make.
 */
static void children_cleanup(void)
{
    pid_t me = getpid();
    pthread_mutex_lock(&children_lock);
    for (size_t i = 0; i < nchildren;) {
        mp_process *p = children[i];
        if (p->creator != me) {
            children_remove_locked(i);
            continue;
        }
        if (proc_poll(p) == 0) {
            children_remove_locked(i);
            if (magic_of(p) == ORPHAN_MAGIC)
                release_orphan(p);
            continue;
        }
        i++;
    }
    pthread_mutex_unlock(&children_lock);
}

/* A snapshot of the children (orphans included); the caller frees it. */
static mp_process **children_snapshot(size_t *n)
{
    children_cleanup();
    pthread_mutex_lock(&children_lock);
    mp_process **list = malloc((nchildren ? nchildren : 1) * sizeof *list);
    *n = 0;
    if (list != NULL) {
        if (nchildren > 0)
            memcpy(list, children, nchildren * sizeof *list);
        *n = nchildren;
    }
    pthread_mutex_unlock(&children_lock);
    return list;
}

void mp__process_exit_children(void)
{
    pthread_mutex_lock(&children_lock);
    size_t any = nchildren;
    pthread_mutex_unlock(&children_lock);
    if (any == 0)
        return; /* the common case in a child: nothing to allocate */
    size_t n;
    mp_process **list = children_snapshot(&n);
    if (list == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        mp_process *p = list[i];
        if (load_u32(&p->flags) & F_DAEMON) {
            mp__info("calling terminate() for daemon %s", p->name);
            ops_of(p)->send_signal(&p->po, SIGTERM);
        }
    }
    free(list);
    list = children_snapshot(&n);
    if (list == NULL)
        return;
    mp__deadline forever;
    mp__deadline_init(&forever, MP_FOREVER);
    for (size_t i = 0; i < n; i++) {
        mp_process *p = list[i];
        mp__info("calling join() for process %s", p->name);
        if (proc_wait(p, &forever) == 0) {
            children_remove(p);
            if (magic_of(p) == ORPHAN_MAGIC)
                release_orphan(p);
        }
    }
    free(list);
}

/* ---- the current process ---------------------------------------------------- */

static pthread_once_t main_once = PTHREAD_ONCE_INIT;

static void main_create(void)
{
    if (mp__heap_init() != 0)
        return;
    mp_process *m = mp__obj_new(sizeof *m, PROCESS_MAGIC);
    if (m == NULL)
        return;
    m->flags = F_MAIN;
    m->state = ST_STARTED;
    m->po.sentinel = -1;
    m->po.aux = -1;
    m->po.pid = getpid();
    copy_name(m->name, "MainProcess");
    current = m;
}

mp_process *mp_current_process(void)
{
    if (current == NULL) {
        mp__util_init();
        pthread_once(&main_once, main_create);
    }
    return current;
}

const char *mp__process_current_name(void)
{
    mp_process *c = current;
    return c != NULL ? c->name : "MainProcess";
}

bool mp__process_is_child(void)
{
    return is_child;
}

static const char *current_identity(void)
{
    return current != NULL ? current->identity : "";
}

bool mp__daemon_children_ok;

static bool current_is_daemon(void)
{
    return current != NULL && (load_u32(&current->flags) & F_DAEMON);
}

/* ---- the parent, as seen from a child --------------------------------------- */

static void parent_proxy_release(void *arg)
{
    mp_process *pp = atomic_exchange(&parent_proxy, NULL);
    if (pp != NULL) {
        if (pp->po.sentinel >= 0 && mp__fd_owned(pp->po.sentinel, pp)) {
            mp__fd_unregister(pp->po.sentinel);
            close(pp->po.sentinel);
        }
        mp__obj_free(pp);
    }
}

static mp_process *parent_proxy_create(void)
{
    mp_process *pp = mp__obj_new(sizeof *pp, PROCESS_MAGIC);
    if (pp == NULL)
        return NULL;
    pid_t ppid = current->parent_pid;
    pp->flags = F_PARENT;
    pp->state = ST_STARTED;
    pp->po.pid = ppid;
    pp->po.sentinel = -1;
    pp->po.aux = -1;
    copy_name(pp->name, current->parent_name);
    int fd;
    if (parent_fd != -2) {
        /* Handed over by the start method: the parent is not our parent
         * in the kernel's eyes, and the fd (if any) names it for sure. */
        fd = parent_fd;
        parent_fd = -2;
        pp->flags |= F_INDIRECT; /* no getppid() test */
    } else {
        fd = mp__sentinel_pidfd_ok() ? (int)syscall(SYS_pidfd_open, ppid, 0) : -1;
        /* The pidfd names the parent only if we were not reparented before
         * it was opened (the pid may have been reused since). */
        if (getppid() != ppid) {
            if (fd >= 0)
                close(fd);
            fd = -1;
            pp->state = ST_ENDED;
        }
    }
    if (fd >= 0 && mp__fd_register(fd, pp) != 0) {
        close(fd);
        fd = -1;
    }
    if (fd >= 0) {
        pp->po.sentinel = fd;
        pp->po.kind = MP__SENTINEL_PIDFD;
    }
    return pp;
}

mp_process *mp_parent_process(void)
{
    if (!is_child || current == NULL)
        return NULL;
    mp_process *pp = atomic_load(&parent_proxy);
    if (pp != NULL)
        return pp;
    mp_process *fresh = parent_proxy_create();
    if (fresh == NULL)
        return NULL;
    if (!atomic_compare_exchange_strong(&parent_proxy, &pp, fresh)) {
        if (fresh->po.sentinel >= 0) {
            mp__fd_unregister(fresh->po.sentinel);
            close(fresh->po.sentinel);
        }
        mp__obj_free(fresh);
        return pp;
    }
    /* Released after every other finalizer at exit. */
    mp_finalize(parent_proxy_release, NULL, INT_MIN);
    return fresh;
}

/* Without a pidfd, whether the parent has ended. */
static bool parent_gone(const mp_process *pp)
{
    if (pp->flags & F_INDIRECT)
        return kill(pp->po.pid, 0) != 0 && errno == ESRCH;
    return getppid() != pp->po.pid;
}

/* Wait until the parent ends or d expires: 0 ended, MP_ETIMEDOUT. */
static int parent_wait(mp_process *pp, const mp__deadline *d)
{
    for (;;) {
        if (load_u32(&pp->state) == ST_ENDED)
            return 0;
        int fd = pp->po.sentinel;
        /* Without a pidfd: the parent is gone once we are reparented (or,
         * for a child of the forkserver, once its pid is gone; a reused
         * pid fools this, which only kernels without pidfds risk). */
        if (fd < 0 && parent_gone(pp)) {
            store_u32(&pp->state, ST_ENDED);
            return 0;
        }
        int ms = d->nowait ? 0 : mp__deadline_poll_ms(d);
        if (fd < 0 && (ms < 0 || ms > 10))
            ms = 10;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int n = poll(&pfd, 1, ms);
        if (n > 0) {
            store_u32(&pp->state, ST_ENDED);
            return 0;
        }
        if (n < 0 && errno != EINTR)
            return mp__errno();
        if (n == 0 && (d->nowait || mp__deadline_expired(d))) {
            if (fd < 0 && parent_gone(pp))
                continue;
            return MP_ETIMEDOUT;
        }
    }
}

/* ---- creation ----------------------------------------------------------------- */

static int make_identity(char *out, unsigned count)
{
    const char *base = current_identity();
    int n = snprintf(out, IDENTITY_LEN, "%s%s%u", base, *base ? ":" : "", count);
    return n < 0 || n >= IDENTITY_LEN ? -ENAMETOOLONG : 0;
}

mp_process *mp_process_new_opts(const mp_process_options *o)
{
    mp_process_options opts_local;
    int opts_err;
    o = MP__OPTS_LOAD(opts_local, o, ctx, &opts_err);
    if (opts_err != 0)
        return mp__fail_null(opts_err);
    if (o == NULL || (o->target == NULL) == (o->run == NULL))
        return mp__fail_null(MP_EINVAL);
    if (o->arg == NULL && o->arg_size != 0)
        return mp__fail_null(MP_EINVAL);
    if (o->name != NULL && strnlen(o->name, NAME_MAX_LEN + 1) > NAME_MAX_LEN)
        return mp__fail_null(MP_EINVAL);
    mp__fnref target, run;
    if (mp__fnref_make(&target, (void (*)(void))o->target) != 0 ||
        mp__fnref_make(&run, (void (*)(void))o->run) != 0)
        return mp__fail_null(MP_EINVAL);
    int r = mp__context_check(o->ctx);
    if (r < 0)
        return mp__fail_null(r);
    r = mp__heap_init();
    if (r != 0)
        return mp__fail_null(r);

    char identity[IDENTITY_LEN] = {0}; /* copied whole into shared memory */
    unsigned count = atomic_fetch_add(&name_counter, 1) + 1;
    r = make_identity(identity, count);
    if (r != 0)
        return mp__fail_null(r);

    mp_process *p = mp__obj_new(sizeof *p, PROCESS_MAGIC);
    if (p == NULL)
        return mp__fail_null(-ENOMEM);
    if (o->arg_size > 0) {
        p->arg = mp__alloc(o->arg_size);
        if (p->arg == NULL) {
            mp__obj_free(p);
            return mp__fail_null(-ENOMEM);
        }
        memcpy(p->arg, o->arg, o->arg_size);
        p->arg_size = o->arg_size;
    }
    p->target = target;
    p->run = run;
    p->ctx = o->ctx;
    p->creator = getpid();
    p->state = ST_INITIAL;
    p->flags = (o->daemon ? F_DAEMON : 0) | (o->run != NULL ? F_RUN : 0);
    p->po.sentinel = -1;
    p->po.aux = -1;
    memcpy(p->identity, identity, sizeof identity);
    p->authkey_len = (uint32_t)mp__authkey_get(p->authkey);
    if (o->name != NULL) {
        copy_name(p->name, o->name);
    } else {
        char name[NAME_MAX_LEN + 1];
        snprintf(name, sizeof name, "Process-%s", identity);
        copy_name(p->name, name);
    }
    return p;
}

/* ---- signal masks and the parent's death ---------------------------------------- */

/*
 * A daemonic child dies with its parent, however the parent ends (Python's
 * only end the parent's exit function).  The kernel's parent-death signal
 * does it where the parent is the kernel's parent (fork, spawn) and the
 * starter is the main thread: Linux sends it when the thread that forked
 * the child ends, which for another thread is not the end of the process.
 */
static void pdeath_decide(mp_process *p, int method)
{
    uint32_t f = load_u32(&p->flags);
    bool arm = (f & F_DAEMON) && !(f & F_OWNWATCH) && method != MP__START_FORKSERVER &&
               gettid() == getpid();
    if (arm)
        __atomic_or_fetch(&p->flags, F_PDEATH, __ATOMIC_ACQ_REL);
    else
        __atomic_and_fetch(&p->flags, ~(uint32_t)F_PDEATH, __ATOMIC_ACQ_REL);
}

static void pdeath_arm(mp_process *p)
{
    if (!(load_u32(&p->flags) & F_PDEATH))
        return;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* The parent may have died before the prctl. */
    if (getppid() != p->parent_pid)
        raise(SIGKILL);
}

uint64_t mp__sigmask_capture(void)
{
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    uint64_t bits = 0;
    for (int sig = 1; sig <= 64 && sig < NSIG; sig++)
        if (sigismember(&cur, sig) == 1)
            bits |= UINT64_C(1) << (sig - 1);
    return bits;
}

void mp__sigmask_apply(uint64_t bits)
{
    sigset_t set;
    sigemptyset(&set);
    for (int sig = 1; sig <= 64 && sig < NSIG; sig++)
        if (bits & (UINT64_C(1) << (sig - 1)))
            sigaddset(&set, sig); /* glibc refuses its own two: fine */
    pthread_sigmask(SIG_SETMASK, &set, NULL);
}

bool mp__process_dies_with_parent(const mp_process *p)
{
    uint32_t f = check(p) == 0 ? load_u32(&p->flags) : 0;
    return (f & F_DAEMON) && !(f & F_OWNWATCH);
}

int mp__process_watches_parent(mp_process *p)
{
    if (check(p) != 0 || load_u32(&p->state) != ST_INITIAL || !owned(p))
        return MP_EINVAL;
    __atomic_or_fetch(&p->flags, F_OWNWATCH, __ATOMIC_ACQ_REL);
    return 0;
}

int mp__process_set_sigmask(mp_process *p, uint64_t bits)
{
    if (check(p) != 0 || load_u32(&p->state) != ST_INITIAL || !owned(p))
        return MP_EINVAL;
    p->sig_block = bits;
    __atomic_or_fetch(&p->flags, F_SIGMASK, __ATOMIC_ACQ_REL);
    return 0;
}

/* ---- start ---------------------------------------------------------------------- */

/* Undo a start whose child cannot be watched. */
static void start_abandon(mp_process *p)
{
    const mp__popen_ops *ops = ops_of(p);
    ops->send_signal(&p->po, SIGKILL);
    mp__deadline forever;
    mp__deadline_init(&forever, MP_FOREVER);
    int code;
    ops->wait(&p->po, &forever, &code);
    ops->close(&p->po);
    memset(&p->po, 0, sizeof p->po);
    p->po.sentinel = p->po.aux = -1;
    store_u32(&p->state, ST_INITIAL);
}

int mp_process_start(mp_process *p)
{
    if (check(p) != 0 || (p->flags & (F_MAIN | F_PARENT)) || closed(p))
        return MP_EINVAL;
    if (load_u32(&p->state) != ST_INITIAL || !owned(p))
        return MP_EINVAL;
    if (current_is_daemon() && !mp__daemon_children_ok)
        return MP_EINVAL; /* daemonic processes are not allowed to have children */
    int method = mp__popen_method_for(p->ctx);
    if (method < 0)
        return method;
    const mp__popen_ops *ops = mp__popen_ops_get(method);
    if (ops == NULL)
        return MP_EINVAL;
    int r = method == MP__START_FORK
                ? 0
                : mp__spawn_can_run((p->flags & F_RUN) ? &p->run : &p->target);
    if (r != 0)
        return r;
    r = mp__heap_init();
    if (r != 0)
        return r;
    mp__util_init();
    pthread_once(&atfork_once, register_atfork);
    children_cleanup();
    r = children_reserve();
    if (r != 0)
        return r;

    /* Two threads starting the same object: one wins. */
    uint32_t expected = ST_INITIAL;
    if (!__atomic_compare_exchange_n(&p->state, &expected, ST_STARTED, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return MP_EINVAL;
    p->parent_pid = getpid();
    if (!(load_u32(&p->flags) & F_SIGMASK))
        p->sig_block = mp__sigmask_capture();
    pdeath_decide(p, method);
    copy_name(p->parent_name, mp__process_current_name());
    memset(&p->po, 0, sizeof p->po);
    p->po.sentinel = p->po.aux = -1;
    p->po.method = (uint8_t)method;

    mp__flush_std_streams();
    r = ops->launch(p, &p->po);
    if (r != 0) {
        memset(&p->po, 0, sizeof p->po);
        p->po.sentinel = p->po.aux = -1;
        store_u32(&p->state, ST_INITIAL);
        return r;
    }
    /* Registered, so that a forked child closes them and spawned ones do
     * not get them. */
    r = mp__fd_register(p->po.sentinel, p);
    if (r == 0 && p->po.aux >= 0)
        r = mp__fd_register(p->po.aux, p);
    if (r == 0)
        r = children_add(p);
    if (r != 0) {
        mp__fd_unregister(p->po.sentinel);
        if (p->po.aux >= 0)
            mp__fd_unregister(p->po.aux);
        start_abandon(p);
        return r;
    }
    return 0;
}

/* ---- join, poll, signals ------------------------------------------------------- */

int mp_process_join(mp_process *p, double timeout)
{
    if (check(p) != 0)
        return MP_EINVAL;
    mp__deadline d;
    if (mp__deadline_init(&d, timeout) != 0)
        return MP_EINVAL;
    if (p->flags & F_PARENT)
        return parent_wait(p, &d);
    if (closed(p) || p == current || !owned(p) || load_u32(&p->state) == ST_INITIAL)
        return MP_EINVAL;
    int r = proc_wait(p, &d);
    if (r == 0)
        children_remove(p);
    return r;
}

int mp_process_is_alive(mp_process *p)
{
    if (p != NULL && p == current)
        return 1;
    if (check(p) != 0)
        return MP_EINVAL;
    if (p->flags & F_PARENT) {
        mp__deadline d;
        mp__deadline_init(&d, 0);
        int r = parent_wait(p, &d);
        return r == MP_ETIMEDOUT ? 1 : r == 0 ? 0 : r;
    }
    if (closed(p) || !owned(p))
        return MP_EINVAL;
    uint32_t st = load_u32(&p->state);
    if (st != ST_STARTED)
        return 0;
    int r = proc_poll(p);
    if (r == 0) {
        children_remove(p);
        return 0;
    }
    return r == MP_ETIMEDOUT ? 1 : r;
}

static int send_signal(mp_process *p, int sig)
{
    if (check(p) != 0 || closed(p) || !owned(p) || (p->flags & (F_MAIN | F_PARENT)))
        return MP_EINVAL;
    uint32_t st = load_u32(&p->state);
    if (st == ST_INITIAL)
        return MP_EINVAL;
    if (st == ST_ENDED)
        return 0;
    return ops_of(p)->send_signal(&p->po, sig);
}

int mp_process_terminate(mp_process *p)
{
    return send_signal(p, SIGTERM);
}

int mp_process_kill(mp_process *p)
{
    return send_signal(p, SIGKILL);
}

int mp_process_interrupt(mp_process *p)
{
    return send_signal(p, SIGINT);
}

int mp_process_exitcode(mp_process *p, int *code)
{
    if (code == NULL || check_readable(p) != 0 || closed(p))
        return MP_EINVAL;
    uint32_t st = load_u32(&p->state);
    if (st == ST_STARTED && owned(p) && !(p->flags & (F_MAIN | F_PARENT)) && proc_poll(p) == 0)
        st = ST_ENDED;
    if (st != ST_ENDED || (p->flags & F_PARENT))
        return MP_ETIMEDOUT;
    *code = __atomic_load_n(&p->exitcode, __ATOMIC_RELAXED);
    return 0;
}

/* ---- close and free ------------------------------------------------------------- */

int mp_process_close(mp_process *p)
{
    if (check(p) != 0 || (p->flags & (F_MAIN | F_PARENT)) || p == current || !owned(p))
        return MP_EINVAL;
    if (closed(p))
        return 0;
    if (load_u32(&p->state) == ST_STARTED) {
        if (proc_poll(p) != 0)
            return MP_EINVAL; /* still running: join() or terminate() first */
        children_remove(p);
    }
    close_sentinel(p);
    __atomic_or_fetch(&p->flags, F_CLOSED, __ATOMIC_ACQ_REL);
    return 0;
}

void mp_process_free(mp_process *p)
{
    if (check(p) != 0 || p == current || (p->flags & (F_MAIN | F_PARENT)))
        return;
    if (load_u32(&p->state) == ST_STARTED) {
        if (!owned(p))
            return; /* another process's running child: not ours to free */
        /* Decide under the children lock, so that a concurrent cleanup
         * either sees an orphan (and releases it) or nothing to release. */
        pthread_mutex_lock(&children_lock);
        bool running = proc_poll(p) != 0;
        if (running)
            store_u32(&p->hdr.magic, ORPHAN_MAGIC);
        pthread_mutex_unlock(&children_lock);
        if (running)
            return;
    }
    children_remove(p);
    release(p);
}

/* ---- accessors ------------------------------------------------------------------- */

pid_t mp_process_pid(const mp_process *p)
{
    if (check_readable(p) != 0 || closed(p))
        return MP_EINVAL;
    if (p == current)
        return getpid();
    return p->po.pid;
}

const char *mp_process_name(const mp_process *p)
{
    if (check_readable(p) != 0)
        return "";
    return p->name;
}

int mp_process_daemon(const mp_process *p)
{
    if (check_readable(p) != 0)
        return MP_EINVAL;
    return (load_u32(&p->flags) & F_DAEMON) != 0;
}

int mp_process_set_name(mp_process *p, const char *name)
{
    if (check_readable(p) != 0 || name == NULL ||
        strnlen(name, NAME_MAX_LEN + 1) > NAME_MAX_LEN)
        return MP_EINVAL;
    if (p != current &&
        (load_u32(&p->state) != ST_INITIAL || !owned(p) || (p->flags & F_PARENT)))
        return MP_EINVAL;
    copy_name(p->name, name);
    return 0;
}

int mp_process_set_daemon(mp_process *p, bool daemon)
{
    if (check(p) != 0 || (p->flags & (F_MAIN | F_PARENT)) || closed(p) ||
        load_u32(&p->state) != ST_INITIAL || !owned(p))
        return MP_EINVAL;
    if (daemon)
        __atomic_or_fetch(&p->flags, F_DAEMON, __ATOMIC_ACQ_REL);
    else
        __atomic_and_fetch(&p->flags, ~(uint32_t)F_DAEMON, __ATOMIC_ACQ_REL);
    return 0;
}

int mp_process_authkey(const mp_process *p, void *buf, size_t size)
{
    if (check_readable(p) != 0 || (buf == NULL && size > 0))
        return MP_EINVAL;
    unsigned char k[MP_AUTHKEY_MAX];
    size_t n;
    if (p == current || (p->flags & F_PARENT)) {
        n = mp__authkey_get(k);
    } else {
        n = p->authkey_len;
        if (n > MP_AUTHKEY_MAX)
            return MP_EINVAL;
        memcpy(k, p->authkey, n);
    }
    if (buf == NULL)
        return (int)n;
    if (size < n)
        return MP_ETOOSHORT;
    memcpy(buf, k, n);
    return (int)n;
}

int mp_process_set_authkey(mp_process *p, const void *key, size_t len)
{
    if (check_readable(p) != 0 || (key == NULL && len > 0) || len > MP_AUTHKEY_MAX)
        return MP_EINVAL;
    if (p == current) {
        mp__authkey_set(key, len);
        return 0;
    }
    if ((p->flags & (F_MAIN | F_PARENT)) || closed(p) || load_u32(&p->state) != ST_INITIAL ||
        !owned(p))
        return MP_EINVAL;
    if (len > 0)
        memcpy(p->authkey, key, len);
    p->authkey_len = (uint32_t)len;
    return 0;
}

int mp_process_sentinel(const mp_process *p)
{
    if (check(p) != 0 || closed(p))
        return MP_EINVAL;
    int fd = p->po.sentinel;
    if (p->flags & F_PARENT)
        return fd >= 0 ? fd : MP_EINVAL;
    if (!owned(p) || load_u32(&p->state) == ST_INITIAL || !mp__fd_owned(fd, p))
        return MP_EINVAL;
    return fd;
}

void *mp_process_arg(const mp_process *p, size_t *size)
{
    void *arg = NULL;
    size_t n = 0;
    if (p != NULL && p == current && is_child) {
        arg = current_arg;
        n = current_arg_size;
    } else if (check(p) == 0) {
        arg = p->arg;
        n = p->arg_size;
    }
    if (size != NULL)
        *size = n;
    return arg;
}

const void *mp__process_arg_shared(const mp_process *p, size_t *size)
{
    *size = p->arg_size;
    return p->arg;
}

int mp__process_check_target(const mp_process *p)
{
    if (check(p) != 0)
        return MP_EINVAL;
    const mp__fnref *ref = (p->flags & F_RUN) ? &p->run : &p->target;
    return mp__fnref_resolve(ref) != NULL ? 0 : MP_EINVAL;
}

bool mp__process_fd_owner(const void *owner)
{
    uint32_t m = magic_of(owner);
    return m == PROCESS_MAGIC || m == ORPHAN_MAGIC || m == RELEASING_MAGIC;
}

static const char *status_text(const mp_process *p, char *buf, size_t size)
{
    if (p == current || (p->flags & (F_MAIN | F_PARENT)))
        return "started";
    if (closed(p))
        return "closed";
    switch (load_u32(&p->state)) {
    case ST_INITIAL:
        return "initial";
    case ST_STARTED:
        return "started";
    }
    int code = __atomic_load_n(&p->exitcode, __ATOMIC_RELAXED);
    if (code == 0)
        return "stopped";
    const char *sig = code < 0 ? mp__signal_abbrev(-code) : NULL;
    if (sig != NULL)
        snprintf(buf, size, "stopped[SIG%s]", sig);
    else
        snprintf(buf, size, "stopped[%d]", code);
    return buf;
}

int mp_process_repr(const mp_process *p, char *buf, size_t size)
{
    if (check_readable(p) != 0 || (buf == NULL && size > 0))
        return MP_EINVAL;
    char sbuf[32];
    const char *status = status_text(p, sbuf, sizeof sbuf);
    int n = snprintf(buf, size, "<Process(%s, %s%s)>", p->name, status,
                     (load_u32(&p->flags) & F_DAEMON) ? " daemon" : "");
    return n < 0 ? MP_EINVAL : n;
}

int mp_active_children(mp_process **list, size_t n)
{
    if (list == NULL && n > 0)
        return MP_EINVAL;
    children_cleanup();
    pthread_mutex_lock(&children_lock);
    size_t count = 0;
    for (size_t i = 0; i < nchildren; i++) {
        if (magic_of(children[i]) != PROCESS_MAGIC)
            continue; /* freed by its owner: no longer a valid handle */
        if (count < n)
            list[count] = children[i];
        count++;
    }
    pthread_mutex_unlock(&children_lock);
    return count > INT_MAX ? INT_MAX : (int)count;
}

int mp_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > INT_MAX ? INT_MAX : (int)n;
}

/* ---- the child ----------------------------------------------------------------- */

/* Close the parent's descriptors of its other children (and of its own
 * parent): inherited by fork, or passed to a spawned child with every
 * registered fd; they mean nothing here. */
static void close_inherited(int fd, const void *owner, void *ctx)
{
    const mp_process *p = owner;
    uint32_t m = magic_of(p);
    if (m == PROCESS_MAGIC || m == ORPHAN_MAGIC) {
        mp__fd_unregister(fd);
        close(fd);
    }
}

void mp__process_set_parent_pidfd(int fd)
{
    parent_fd_next = fd;
}

static void child_become(mp_process *p, bool after_fork)
{
    /* A parent pidfd this process was handed and never adopted is not
     * the new child's parent. */
    if (parent_fd >= 0)
        close(parent_fd);
    parent_fd = parent_fd_next;
    parent_fd_next = -2;
    current = p;
    is_child = true;
    mp__authkey_set(p->authkey, p->authkey_len);
    mp__context_force(p->po.method);
    atomic_store(&name_counter, 0);
    atomic_store(&parent_proxy, NULL); /* the inherited one is the parent's */
    pthread_mutex_init(&children_lock, NULL);
    free(children);
    children = NULL;
    nchildren = capchildren = 0;
    current_arg = NULL;
    current_arg_size = 0;
    mp__util_child_reset();
    mp__util_init();
    pthread_once(&atfork_once, register_atfork);
    mp__fd_foreach(close_inherited, NULL);
    if (after_fork)
        mp__run_after_forkers();
    pdeath_arm(p);
    /* Last: until here the child runs with the mask of the thread that
     * made it (every signal blocked, for a pool's or the forkserver's). */
    mp__sigmask_apply(p->sig_block);
}

static int child_run(mp_process *p)
{
    if (p->arg_size > 0) {
        current_arg = malloc(p->arg_size);
        if (current_arg == NULL) {
            fprintf(stderr, "Process %s:\nMemoryError: cannot copy %zu argument bytes\n",
                    p->name, p->arg_size);
            return 1;
        }
        memcpy(current_arg, p->arg, p->arg_size);
        current_arg_size = p->arg_size;
    }
    bool run = (p->flags & F_RUN) != 0;
    void (*fn)(void) = mp__fnref_resolve(run ? &p->run : &p->target);
    if (fn == NULL) {
        fprintf(stderr, "Process %s:\nlibmp: the target is not loaded in this process\n",
                p->name);
        return 1;
    }
    if (run)
        return ((mp_run_fn)fn)(p);
    return ((mp_target_fn)fn)(current_arg, current_arg_size);
}

/* Whether a debugger (or strace) is attached: /proc/self/status's TracerPid. */
static bool traced(void)
{
    char buf[2048];
    if (mp__read_text("/proc/self/status", buf, sizeof buf) <= 0)
        return true; /* cannot tell: do not wait forever */
    const char *t = strstr(buf, "TracerPid:");
    return t == NULL || strtol(t + sizeof "TracerPid:" - 1, NULL, 10) != 0;
}

/*
 * MP_DEBUG_WAIT=GLOB: a child whose name matches waits before its target
 * until a debugger attaches (docs/process.md).  Read in the child: a
 * forkserver child sees the server's environment, which is the program's
 * when the server started.
 */
static void debug_wait(const mp_process *p)
{
    const char *glob = getenv("MP_DEBUG_WAIT");
    if (glob == NULL || *glob == '\0' || fnmatch(glob, p->name, 0) != 0)
        return;
    int pid = (int)getpid();
    fprintf(stderr, "libmp: process %s (pid %d) waits for a debugger: gdb -p %d\n", p->name,
            pid, pid);
    while (!traced())
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
}

_Noreturn void mp__process_bootstrap(mp_process *p, bool after_fork)
{
    child_become(p, after_fork);
    debug_wait(p);
    mp__info("child process calling self.run()");
    int code = child_run(p) & 0xff;
    mp__flush_std_streams();
    mp__exit_function();
    mp__info("process exiting with exitcode %d", code);
    mp__run_atexit();
    mp__flush_std_streams();
    mp__heap_cache_flush();
    /*
     * A fork child must not run the C atexit handlers it inherited from its
     * parent.  A spawn or forkserver child is a fresh image of the program:
     * exit() runs the handlers registered in it (by the target, or by the
     * program's constructors) and flushes stdio, as Python 3.12+ runs a
     * child's atexit handlers (gh-83856).
     */
    if (p->po.method == MP__START_FORK)
        _exit(code);
    mp__util_exit_logged();
    exit(code);
}
