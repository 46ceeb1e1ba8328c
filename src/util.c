/*
 * util.c: logging, exit finalizers, after-fork hooks and the exit handler
 * (Python's multiprocessing/util.py).
 *
 * Logging takes no lock and writes each record with one writev(2), so it is
 * safe in a forked child of a multithreaded parent and lines from several
 * processes do not mix.  The settings are process-local atomics, inherited
 * by fork as Python's logging configuration is.
 */
#include "internal/mp.h"
#include "internal/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define LOGGER_MAGIC MP__MAGIC('l', 'o', 'g', 'r')
#define LOG_STACK_MSG 1024
#define LOG_MAX_MSG 65536

/* A token, one per family: every handle designates the caller's logger. */
struct mp_logger {
    mp__obj hdr;
};

static _Atomic int log_level = MP_LOG_NOTSET;
static atomic_bool log_to_stderr;
static _Atomic(mp_log_handler_fn) log_handler;
static _Atomic(void *) log_handler_ctx;
static _Atomic(mp_logger *) logger_token;

/* ---- levels --------------------------------------------------------------- */

const char *mp_log_level_name(int level, char *buf, size_t size)
{
    switch (level) {
    case MP_LOG_NOTSET:
        return "NOTSET";
    case MP_LOG_SUBDEBUG:
        return "SUBDEBUG";
    case MP_LOG_DEBUG:
        return "DEBUG";
    case MP_LOG_INFO:
        return "INFO";
    case MP_LOG_SUBWARNING:
        return "SUBWARNING";
    case MP_LOG_WARNING:
        return "WARNING";
    case MP_LOG_ERROR:
        return "ERROR";
    case MP_LOG_CRITICAL:
        return "CRITICAL";
    }
    if (buf == NULL || size == 0)
        return "Level";
    snprintf(buf, size, "Level %d", level);
    return buf;
}

static int effective_level(void)
{
    int l = atomic_load_explicit(&log_level, memory_order_relaxed);
    return l == MP_LOG_NOTSET ? MP_LOG_WARNING : l;
}

bool mp__log_enabled(int level)
{
    return level >= effective_level();
}

void mp__log_state_get(int *level, bool *to_stderr)
{
    *level = atomic_load(&log_level);
    *to_stderr = atomic_load(&log_to_stderr);
}

void mp__log_state_set(int level, bool to_stderr)
{
    atomic_store(&log_level, level < 0 ? MP_LOG_NOTSET : level);
    atomic_store(&log_to_stderr, to_stderr);
}

/* ---- emitting records ----------------------------------------------------- */

/* Write all of the iovecs to fd 2, retrying short writes and EINTR. */
static void write_all(struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(STDERR_FILENO, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
}

static void emit_stderr(int level, const char *name, const char *msg)
{
    char lbuf[32];
    const char *lname = mp_log_level_name(level, lbuf, sizeof lbuf);
    struct iovec iov[] = {
        {(void *)"[", 1},  {(void *)lname, strlen(lname)},
        {(void *)"/", 1},  {(void *)name, strlen(name)},
        {(void *)"] ", 2}, {(void *)msg, strlen(msg)},
        {(void *)"\n", 1},
    };
    write_all(iov, (int)(sizeof iov / sizeof iov[0]));
}

static void emit_bare(const char *msg)
{
    struct iovec iov[] = {{(void *)msg, strlen(msg)}, {(void *)"\n", 1}};
    write_all(iov, 2);
}

static void emit(int level, const char *fmt, va_list ap)
{
    if (level < effective_level())
        return;
    int saved_errno = errno;
    char stack[LOG_STACK_MSG];
    char *msg = stack;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(stack, sizeof stack, fmt, ap);
    if (n < 0) {
        snprintf(stack, sizeof stack, "(bad log format: %s)", fmt);
    } else if (n >= (int)sizeof stack) {
        size_t len = n < LOG_MAX_MSG ? (size_t)n + 1 : LOG_MAX_MSG;
        char *big = malloc(len);
        if (big != NULL) {
            vsnprintf(big, len, fmt, ap2);
            msg = big;
            if ((size_t)n >= len)
                memcpy(big + len - 4, "...", 4);
        } else {
            memcpy(stack + sizeof stack - 4, "...", 4);
        }
    }
    va_end(ap2);
    const char *name = mp__process_current_name();
    mp_log_handler_fn fn = atomic_load(&log_handler);
    bool to_stderr = atomic_load(&log_to_stderr);
    if (to_stderr)
        emit_stderr(level, name, msg);
    if (fn != NULL)
        fn(level, name, msg, atomic_load(&log_handler_ctx));
    if (!to_stderr && fn == NULL && level >= MP_LOG_WARNING)
        emit_bare(msg);
    if (msg != stack)
        free(msg);
    errno = saved_errno;
}

void mp__log(int level, const char *fmt, ...)
{
    if (!mp__log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    emit(level, fmt, ap);
    va_end(ap);
}

int mp_vlog(int level, const char *fmt, va_list ap)
{
    if (level < 0 || fmt == NULL)
        return MP_EINVAL;
    emit(level, fmt, ap);
    return 0;
}

int mp_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = mp_vlog(level, fmt, ap);
    va_end(ap);
    return r;
}

/* ---- the logger handle ---------------------------------------------------- */

static void *logger_make(void)
{
    return mp__obj_new(sizeof(struct mp_logger), LOGGER_MAGIC);
}

mp_logger *mp_get_logger(void)
{
    mp_logger *lg = atomic_load(&logger_token);
    if (lg != NULL)
        return lg;
    int r = mp__heap_init();
    if (r != 0)
        return mp__fail_null(r);
    mp__util_init();
    /* One token for the whole family, kept in the arena's root table. */
    lg = mp__heap_root(MP__ROOT_LOGGER, logger_make);
    if (lg == NULL)
        return mp__fail_null(-ENOMEM);
    atomic_store(&logger_token, lg);
    return lg;
}

mp_logger *mp_log_to_stderr(int level)
{
    mp_logger *lg = mp_get_logger();
    if (lg == NULL)
        return NULL;
    if (level > 0)
        atomic_store(&log_level, level);
    atomic_store(&log_to_stderr, true);
    return lg;
}

int mp_logger_set_level(mp_logger *lg, int level)
{
    if (mp__obj_check(lg, LOGGER_MAGIC) != 0 || level < 0)
        return MP_EINVAL;
    atomic_store(&log_level, level);
    return 0;
}

int mp_logger_get_level(const mp_logger *lg)
{
    if (mp__obj_check(lg, LOGGER_MAGIC) != 0)
        return MP_EINVAL;
    return atomic_load(&log_level);
}

int mp_logger_effective_level(const mp_logger *lg)
{
    if (mp__obj_check(lg, LOGGER_MAGIC) != 0)
        return MP_EINVAL;
    return effective_level();
}

int mp_logger_is_enabled_for(const mp_logger *lg, int level)
{
    if (mp__obj_check(lg, LOGGER_MAGIC) != 0)
        return MP_EINVAL;
    return level >= effective_level();
}

int mp_logger_set_handler(mp_logger *lg, mp_log_handler_fn fn, void *ctx)
{
    if (mp__obj_check(lg, LOGGER_MAGIC) != 0)
        return MP_EINVAL;
    /* The context first, so a concurrent record never pairs the new handler
     * with the old context. */
    atomic_store(&log_handler_ctx, ctx);
    atomic_store(&log_handler, fn);
    return 0;
}

int mp_logger_log(mp_logger *lg, int level, const char *fmt, ...)
{
    if (mp__obj_check(lg, LOGGER_MAGIC) != 0)
        return MP_EINVAL;
    va_list ap;
    va_start(ap, fmt);
    int r = mp_vlog(level, fmt, ap);
    va_end(ap);
    return r;
}

/* ---- finalizers ------------------------------------------------------------ */

struct finalizer {
    int id;
    int priority; /* MP_NO_EXITPRIORITY: never run at exit */
    void (*fn)(void *);
    void *arg;
    const void *obj; /* run when it is freed; NULL: none */
};

/* How many registered finalizers have an object: mp__obj_free and
 * mp_shared_free look here before they look for them. */
_Atomic size_t mp__obj_finalizers;

/*
 * The registry is process-local.  Its lock is taken around fork (see
 * util_atfork_*), so a child never starts with it held by a thread that
 * does not exist there.
 */
static pthread_mutex_t fin_lock = PTHREAD_MUTEX_INITIALIZER;
static struct finalizer *fins;
static size_t nfins, capfins;
static int next_fin_id = 1;

int mp_finalize(void (*fn)(void *arg), void *arg, int priority)
{
    return mp_finalize_object(NULL, fn, arg, priority);
}

int mp_finalize_object(const void *obj, void (*fn)(void *arg), void *arg, int priority)
{
    /* Python's TypeError: without an object, only exit can run it. */
    if (fn == NULL || (obj == NULL && priority == MP_NO_EXITPRIORITY))
        return MP_EINVAL;
    mp__util_init();
    int r;
    pthread_mutex_lock(&fin_lock);
    if (nfins == capfins) {
        size_t cap = capfins ? capfins * 2 : 16;
        struct finalizer *f = realloc(fins, cap * sizeof *f);
        if (f == NULL) {
            pthread_mutex_unlock(&fin_lock);
            return -ENOMEM;
        }
        fins = f;
        capfins = cap;
    }
    if (next_fin_id == INT32_MAX) {
        r = -ENOMEM; /* two billion finalizers: the ids are used up */
    } else {
        r = next_fin_id++;
        fins[nfins++] = (struct finalizer){r, priority, fn, arg, obj};
        if (obj != NULL)
            atomic_fetch_add(&mp__obj_finalizers, 1);
    }
    pthread_mutex_unlock(&fin_lock);
    return r;
}

/* Remove entry i (the lock is held). */
static struct finalizer fin_take(size_t i)
{
    struct finalizer f = fins[i];
    memmove(&fins[i], &fins[i + 1], (nfins - i - 1) * sizeof *fins);
    nfins--;
    if (f.obj != NULL)
        atomic_fetch_sub(&mp__obj_finalizers, 1);
    return f;
}

static int fin_find(int id)
{
    for (size_t i = 0; i < nfins; i++)
        if (fins[i].id == id)
            return (int)i;
    return -1;
}

int mp_finalizer_run(int id)
{
    pthread_mutex_lock(&fin_lock);
    int i = fin_find(id);
    if (i < 0) {
        pthread_mutex_unlock(&fin_lock);
        mp__subdebug("finalizer no longer registered");
        return MP_EINVAL;
    }
    struct finalizer f = fin_take((size_t)i);
    pthread_mutex_unlock(&fin_lock);
    mp__subdebug("finalizer calling %p with arg %p", (void *)(uintptr_t)f.fn, f.arg);
    f.fn(f.arg);
    return 0;
}

int mp_finalizer_cancel(int id)
{
    pthread_mutex_lock(&fin_lock);
    int i = fin_find(id);
    if (i >= 0)
        fin_take((size_t)i);
    pthread_mutex_unlock(&fin_lock);
    return i >= 0 ? 0 : MP_EINVAL;
}

int mp_finalizer_still_active(int id)
{
    pthread_mutex_lock(&fin_lock);
    int i = fin_find(id);
    pthread_mutex_unlock(&fin_lock);
    return i >= 0;
}

/*
 * Run the finalizers registered before the call with priority >= minpriority
 * (every one when all), highest priority first, the most recent first among
 * equals.  Finalizers registered meanwhile wait for a later run, as Python
 * works on a snapshot of the registry.
 */
void mp__run_finalizers(int minpriority, bool all)
{
    pthread_mutex_lock(&fin_lock);
    int limit = next_fin_id;
    pthread_mutex_unlock(&fin_lock);
    for (;;) {
        pthread_mutex_lock(&fin_lock);
        ssize_t best = -1;
        for (size_t i = 0; i < nfins; i++) {
            if (fins[i].id >= limit || fins[i].priority == MP_NO_EXITPRIORITY ||
                (!all && fins[i].priority < minpriority))
                continue;
            if (best < 0 || fins[i].priority > fins[best].priority ||
                (fins[i].priority == fins[best].priority && fins[i].id > fins[best].id))
                best = (ssize_t)i;
        }
        if (best < 0) {
            pthread_mutex_unlock(&fin_lock);
            break;
        }
        struct finalizer f = fin_take((size_t)best);
        pthread_mutex_unlock(&fin_lock);
        mp__subdebug("calling finalizer %d", f.id);
        f.fn(f.arg);
    }
}

int mp_finalize_object_freed(const void *obj)
{
    if (obj == NULL)
        return 0;
    int ran = 0;
    for (;;) {
        /* The most recent first, as the exit function orders equals. */
        pthread_mutex_lock(&fin_lock);
        ssize_t last = -1;
        for (size_t i = 0; i < nfins; i++)
            if (fins[i].obj == obj)
                last = (ssize_t)i;
        if (last < 0) {
            pthread_mutex_unlock(&fin_lock);
            return ran;
        }
        struct finalizer f = fin_take((size_t)last);
        pthread_mutex_unlock(&fin_lock);
        mp__subdebug("finalizer calling %p with arg %p (object freed)",
                     (void *)(uintptr_t)f.fn, f.arg);
        f.fn(f.arg);
        ran++;
    }
}

/* ---- after-fork hooks ------------------------------------------------------ */

struct after_fork {
    void (*fn)(void *);
    void *arg;
};

static pthread_mutex_t fork_lock = PTHREAD_MUTEX_INITIALIZER;
static struct after_fork *forkers;
static size_t nforkers, capforkers;

int mp_register_after_fork(void (*fn)(void *arg), void *arg)
{
    if (fn == NULL)
        return MP_EINVAL;
    mp__util_init();
    pthread_mutex_lock(&fork_lock);
    if (nforkers == capforkers) {
        size_t cap = capforkers ? capforkers * 2 : 16;
        struct after_fork *f = realloc(forkers, cap * sizeof *f);
        if (f == NULL) {
            pthread_mutex_unlock(&fork_lock);
            return -ENOMEM;
        }
        forkers = f;
        capforkers = cap;
    }
    forkers[nforkers++] = (struct after_fork){fn, arg};
    pthread_mutex_unlock(&fork_lock);
    return 0;
}

void mp__run_after_forkers(void)
{
    /* The child is single-threaded here, but a callback may register more. */
    for (size_t i = 0; i < nforkers; i++) {
        struct after_fork f = forkers[i];
        f.fn(f.arg);
    }
}

/* ---- exit ------------------------------------------------------------------ */

static atomic_bool exiting;

bool mp__util_exiting(void)
{
    return atomic_load(&exiting);
}

ssize_t mp__read_text(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, size - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    buf[n] = '\0';
    return n;
}

void mp__flush_std_streams(void)
{
    /* Only when something is buffered: a flush takes the stream's lock,
     * a write that costs a copy-on-write fault right after a fork. */
    if (__fpending(stdout) > 0)
        fflush(stdout);
    if (__fpending(stderr) > 0)
        fflush(stderr);
}

void mp__exit_function(void)
{
    if (atomic_exchange(&exiting, true))
        return;
    mp__info("process shutting down");
    mp__debug("running all \"atexit\" finalizers with priority >= 0");
    mp__run_finalizers(0, false);
    mp__process_exit_children();
    mp__debug("running the remaining \"atexit\" finalizers");
    mp__run_finalizers(0, true);
}

/* ---- mp_atexit: exit handlers of this process only ---------------------------- */

struct atexit_entry {
    void (*fn)(void *);
    void *arg;
};

static pthread_mutex_t atexit_lock = PTHREAD_MUTEX_INITIALIZER;
static struct atexit_entry *atexits;
static size_t natexits, capatexits;
static atomic_bool exit_logged;

int mp_atexit(void (*fn)(void *arg), void *arg)
{
    if (fn == NULL)
        return MP_EINVAL;
    mp__util_init();
    pthread_mutex_lock(&atexit_lock);
    if (natexits == capatexits) {
        size_t cap = capatexits ? capatexits * 2 : 8;
        struct atexit_entry *e = realloc(atexits, cap * sizeof *e);
        if (e == NULL) {
            pthread_mutex_unlock(&atexit_lock);
            return -ENOMEM;
        }
        atexits = e;
        capatexits = cap;
    }
    atexits[natexits++] = (struct atexit_entry){fn, arg};
    pthread_mutex_unlock(&atexit_lock);
    return 0;
}

void mp__run_atexit(void)
{
    for (;;) {
        pthread_mutex_lock(&atexit_lock);
        if (natexits == 0) {
            pthread_mutex_unlock(&atexit_lock);
            return;
        }
        struct atexit_entry e = atexits[--natexits];
        pthread_mutex_unlock(&atexit_lock);
        mp__subdebug("calling atexit handler %p", (void *)(uintptr_t)e.fn);
        e.fn(e.arg);
    }
}

void mp__util_exit_logged(void)
{
    atomic_store(&exit_logged, true);
}

/*
 * The exit handler.  The main program runs its mp_atexit handlers first,
 * then the exit function (Python's atexit order: util._exit_function was
 * registered at import, before the program's own handlers).  A child runs
 * the exit function first, then its handlers, as its bootstrap does; one
 * that leaves through exit() (rather than by returning from its target)
 * also logs the exit code, which on_exit hands over, as Python logs the
 * code of a SystemExit.
 */
static void exit_handler_body(int status, bool have_status)
{
    if (!mp__process_is_child()) {
        mp__run_atexit();
        mp__exit_function();
        return;
    }
    mp__exit_function();
    mp__run_atexit();
    if (have_status && !atomic_exchange(&exit_logged, true))
        mp__info("process exiting with exitcode %d", status & 0xff);
}

#ifdef __GLIBC__
static void exit_handler(int status, void *arg)
{
    exit_handler_body(status, true);
}
#else
static void exit_handler(void)
{
    exit_handler_body(0, false);
}
#endif

static void util_atfork_prepare(void)
{
    pthread_mutex_lock(&fin_lock);
    pthread_mutex_lock(&fork_lock);
    pthread_mutex_lock(&atexit_lock);
}

static void util_atfork_parent(void)
{
    pthread_mutex_unlock(&atexit_lock);
    pthread_mutex_unlock(&fork_lock);
    pthread_mutex_unlock(&fin_lock);
}

static void util_atfork_child(void)
{
    pthread_mutex_unlock(&atexit_lock);
    pthread_mutex_unlock(&fork_lock);
    pthread_mutex_unlock(&fin_lock);
}

static pthread_once_t util_once = PTHREAD_ONCE_INIT;

static void util_register(void)
{
#ifdef __GLIBC__
    on_exit(exit_handler, NULL);
#else
    atexit(exit_handler);
#endif
    pthread_atfork(util_atfork_prepare, util_atfork_parent, util_atfork_child);
}

void mp__util_init(void)
{
    pthread_once(&util_once, util_register);
}

void mp__util_child_reset(void)
{
    /* Python clears the finalizer registry in every new process. */
    pthread_mutex_init(&fin_lock, NULL);
    pthread_mutex_init(&fork_lock, NULL);
    nfins = 0;
    atomic_store(&mp__obj_finalizers, 0);
    /* Python 3.12+ clears the atexit registry in a child (gh-83856). */
    pthread_mutex_init(&atexit_lock, NULL);
    natexits = 0;
    atomic_store(&exit_logged, false);
    atomic_store(&exiting, false);
}
