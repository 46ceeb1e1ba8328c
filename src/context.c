/*
 * context.c: start-method contexts and the default method (Python's
 * context.py), the executable spawn starts, and the forkserver preload hook.
 *
 * The three context objects live in the shared arena (one block, found
 * through the arena's root table), so a context pointer is the same in every
 * process of the family, including spawned children, and may be stored in
 * shared objects.  The default method is process-local, as Python's
 * _default_context is per interpreter; a child starts with its parent's
 * method as default (mp__context_force, Python's _force_start_method).
 */
#include "internal/mp.h"
#include "internal/mpi.h"
#include "internal/popen.h"
#include "internal/spawn.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONTEXT_MAGIC MP__MAGIC('c', 't', 'x', 't')
#define CONTEXT_SET_MAGIC MP__MAGIC('c', 't', 'x', 's')
#define ENV_START_METHOD "MP_START_METHOD"

struct mp_context {
    mp__obj hdr;
    int32_t method;
    char name[12];
};

/* The "mpi" context: not a start method (processes refuse it), a pool's. */
#define CTX_MPI MP__START_COUNT

struct context_set {
    mp__obj hdr;
    struct mp_context ctx[MP__START_COUNT + 1];
};

static const char *const method_names[MP__START_COUNT + 1] = {
    [MP__START_FORK] = "fork",
    [MP__START_SPAWN] = "spawn",
    [MP__START_FORKSERVER] = "forkserver",
    [CTX_MPI] = "mpi",
};

/* The fixed default method (0: not fixed yet). */
static atomic_int actual;

/* ---- names and the environment ------------------------------------------- */

static int method_of_name(const char *name)
{
    if (name == NULL)
        return MP_EINVAL;
    for (int m = MP__START_FORK; m < MP__START_COUNT; m++)
        if (strcmp(name, method_names[m]) == 0)
            return m;
    return MP_EINVAL;
}

/* The default before anything is fixed: MP_START_METHOD, else fork. */
static int env_default(void)
{
    const char *env = getenv(ENV_START_METHOD);
    if (env == NULL || *env == '\0')
        return MP__START_FORK;
    return method_of_name(env);
}

/* The default method, fixed by this call if fix and not fixed yet. */
static int default_method(bool fix)
{
    int a = atomic_load(&actual);
    if (a != 0)
        return a;
    int m = env_default();
    if (m < 0 || !fix)
        return m;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&actual, &expected, m))
        return expected;
    return m;
}

void mp__context_force(int method)
{
    if (method > MP__START_NONE && method < MP__START_COUNT)
        atomic_store(&actual, method);
}

/* ---- the context objects --------------------------------------------------- */

static void *set_make(void)
{
    struct context_set *s = mp__obj_new(sizeof *s, CONTEXT_SET_MAGIC);
    if (s == NULL)
        return NULL;
    for (int m = MP__START_FORK; m <= CTX_MPI; m++) {
        struct mp_context *c = &s->ctx[m];
        c->method = m;
        strcpy(c->name, method_names[m]);
        c->hdr.id = mp__heap_next_id();
        __atomic_store_n(&c->hdr.magic, CONTEXT_MAGIC, __ATOMIC_RELEASE);
    }
    return s;
}

static int context_of(int method, mp_context **out)
{
    struct context_set *s = mp__heap_root(MP__ROOT_CONTEXT, set_make);
    if (s == NULL) {
        int r = mp__heap_init();
        return r != 0 ? r : -ENOMEM;
    }
    *out = &s->ctx[method];
    return 0;
}

/* The method of a context libmp made, or MP_EINVAL. */
static int method_of_context(const mp_context *ctx)
{
    if (mp__obj_check(ctx, CONTEXT_MAGIC) != 0)
        return MP_EINVAL;
    int m = ctx->method;
    return m > MP__START_NONE && m < MP__START_COUNT ? m : MP_EINVAL;
}

int mp__context_check(const mp_context *ctx)
{
    int m = ctx == NULL ? default_method(false) : method_of_context(ctx);
    return m < 0 ? m : 0;
}

int mp__popen_method_for(const mp_context *ctx)
{
    return ctx == NULL ? default_method(true) : method_of_context(ctx);
}

/* ---- public API ------------------------------------------------------------- */

bool mp__context_is_mpi(const mp_context *ctx)
{
    return ctx != NULL && mp__obj_check(ctx, CONTEXT_MAGIC) == 0 && ctx->method == CTX_MPI;
}

mp_context *mp__context_mpi(void)
{
    mp_context *c;
    int r = context_of(CTX_MPI, &c);
    return r == 0 ? c : mp__fail_null(r);
}

mp_context *mp_get_context(const char *method)
{
    if (method != NULL && strcmp(method, "mpi") == 0)
        return mp__mpi_get_context();
    int m = method == NULL ? default_method(true) : method_of_name(method);
    if (m < 0)
        return mp__fail_null(m);
    mp_context *c;
    int r = context_of(m, &c);
    return r == 0 ? c : mp__fail_null(r);
}

const char *mp_context_get_start_method(const mp_context *ctx)
{
    if (mp__context_is_mpi(ctx))
        return method_names[CTX_MPI];
    int m = method_of_context(ctx);
    return m < 0 ? NULL : method_names[m];
}

int mp_set_start_method(const char *method, bool force)
{
    if (!force && atomic_load(&actual) != 0)
        return MP_EINVAL; /* 'context has already been set' */
    if (method == NULL && force) {
        atomic_store(&actual, 0);
        return 0;
    }
    int m = method == NULL ? env_default() : method_of_name(method);
    if (m < 0)
        return m;
    if (force) {
        atomic_store(&actual, m);
        return 0;
    }
    int expected = 0;
    return atomic_compare_exchange_strong(&actual, &expected, m) ? 0 : MP_EINVAL;
}

const char *mp_get_start_method(bool allow_none)
{
    if (allow_none && atomic_load(&actual) == 0)
        return NULL;
    int m = default_method(true);
    if (m < 0)
        return mp__fail_null(m);
    return method_names[m];
}

mp_context *mp_context_get_context(const mp_context *ctx, const char *method)
{
    if (ctx == NULL)
        return mp_get_context(method);
    if (method_of_context(ctx) < 0 && !mp__context_is_mpi(ctx))
        return mp__fail_null(MP_EINVAL);
    return method == NULL ? (mp_context *)ctx : mp_get_context(method);
}

int mp_context_set_start_method(const mp_context *ctx, const char *method, bool force)
{
    if (ctx == NULL)
        return mp_set_start_method(method, force);
    return MP_EINVAL; /* 'cannot set start method of concrete context' */
}

int mp_get_all_start_methods(const char **list, size_t n)
{
    if (list == NULL && n > 0)
        return MP_EINVAL;
    /* Python 3.14: the platform's default first, whatever
     * set_start_method chose; libmp's platform default is
     * MP_START_METHOD, else fork. */
    int first = env_default();
    if (first < 0)
        first = MP__START_FORK;
    size_t count = 0;
    if (count < n)
        list[count] = method_names[first];
    count++;
    for (int m = MP__START_FORK; m < MP__START_COUNT; m++) {
        if (m == first)
            continue;
        if (count < n)
            list[count] = method_names[m];
        count++;
    }
    return (int)count;
}

/* ---- executable and preload (process-local settings) ----------------------- */

/*
 * Both settings are copied under one lock, held around fork (see
 * settings_atfork_*) so that a child never inherits it held.
 */
static pthread_mutex_t settings_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t settings_once = PTHREAD_ONCE_INIT;
static char executable[PATH_MAX]; /* "" : /proc/self/exe */
static mp__fnref preload;

static void settings_atfork_prepare(void)
{
    pthread_mutex_lock(&settings_lock);
}

static void settings_atfork_release(void)
{
    pthread_mutex_unlock(&settings_lock);
}

static void settings_register(void)
{
    pthread_atfork(settings_atfork_prepare, settings_atfork_release, settings_atfork_release);
}

void mp__settings_atfork_register(void)
{
    pthread_once(&settings_once, settings_register);
}

static void settings_lock_take(void)
{
    mp__settings_atfork_register();
    pthread_mutex_lock(&settings_lock);
}

int mp_set_executable(const char *path)
{
    if (path != NULL) {
        size_t len = strnlen(path, PATH_MAX);
        if (len == 0 || len >= PATH_MAX)
            return MP_EINVAL;
        if (access(path, X_OK) != 0)
            return mp__errno();
    }
    settings_lock_take();
    if (path == NULL)
        executable[0] = '\0';
    else
        strcpy(executable, path);
    pthread_mutex_unlock(&settings_lock);
    return 0;
}

/*
 * The running program: /proc/self/exe, which stays right even if the file
 * is renamed or replaced meanwhile; but under valgrind that is valgrind's
 * tool (which refuses to run on its own), while readlink tells the
 * program's path (valgrind answers it for its client): then that path.
 */
static void self_exe(char *buf)
{
    static const char self[] = "/proc/self/exe";
    char path[PATH_MAX];
    ssize_t n = readlink(self, path, sizeof path - 1);
    struct stat a, b;
    strcpy(buf, self);
    if (n <= 0 || path[0] != '/')
        return;
    path[n] = '\0';
    if (stat(self, &a) != 0 || stat(path, &b) != 0)
        return;
    if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
        strcpy(buf, path);
}

void mp__spawn_executable(char *buf)
{
    settings_lock_take();
    bool set = executable[0] != '\0';
    if (set)
        strcpy(buf, executable);
    pthread_mutex_unlock(&settings_lock);
    if (!set)
        self_exe(buf);
}

int mp_set_forkserver_preload(void (*fn)(void))
{
    mp__fnref ref;
    if (mp__fnref_make(&ref, fn) != 0)
        return MP_EINVAL;
    settings_lock_take();
    preload = ref;
    pthread_mutex_unlock(&settings_lock);
    return 0;
}

void mp__forkserver_preload(mp__fnref *out)
{
    settings_lock_take();
    *out = preload;
    pthread_mutex_unlock(&settings_lock);
}

/* ---- without MPI ------------------------------------------------------------ */

#ifndef MP__HAVE_MPI
mp_context *mp__mpi_get_context(void)
{
    return mp__fail_null(-ENOTSUP);
}

int mp_mpi_main(int *argc, char ***argv)
{
    return -ENOTSUP;
}

struct mp__mpipool *mp__mpi_pool_open(const mp_pool_options *o, uint32_t *n)
{
    return mp__fail_null(-ENOTSUP);
}

int mp__mpi_pool_init_code(struct mp_pool *pool, uint32_t w)
{
    return -ENOTSUP;
}

bool mp__mpi_worker_dead(struct mp__mpipool *M, uint32_t w)
{
    return true;
}

void mp__mpi_run_chunk(struct mp_pool *pool, struct mp__pjob *j, uint64_t c, uint32_t w)
{
}

void mp__mpi_pool_stop(struct mp__mpipool *M)
{
}

void mp__mpi_pool_free(struct mp__mpipool *M)
{
}
#endif
