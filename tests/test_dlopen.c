/*
 * test_dlopen: libmp.so loaded with dlopen by a program that is not linked
 * to it, as a plugin host or a language binding loads it.  Every call goes
 * through a dlsym'ed pointer.  The library carries no static TLS
 * (DF_STATIC_TLS), so dlopen works after the program started; a Lock (whose
 * owner token is thread-local), a Queue between two processes and a Pool
 * run through it.
 *
 * This program does not link mptest.c (which needs libmp's internals), so
 * it checks its own fds and children.  MPT_LIBMP_SO is the built library.
 */
#include <libmp.h>

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define SYM(name) __typeof__(name) *name

static struct {
    void *handle;
    SYM(mp_set_start_method);
    SYM(mp_lock_new_opts);
    SYM(mp_lock_acquire);
    SYM(mp_lock_release);
    SYM(mp_lock_free);
    SYM(mp_queue_new_opts);
    SYM(mp_queue_put);
    SYM(mp_queue_get);
    SYM(mp_queue_close);
    SYM(mp_queue_free);
    SYM(mp_process_new_opts);
    SYM(mp_process_start);
    SYM(mp_process_join);
    SYM(mp_process_exitcode);
    SYM(mp_process_close);
    SYM(mp_process_free);
    SYM(mp_pool_new_opts);
    SYM(mp_pool_map_opts);
    SYM(mp_pool_close);
    SYM(mp_pool_join);
    SYM(mp_pool_free);
    SYM(mp_strerror);
} mp;

#define LOAD(name)                                      \
    do {                                                \
        *(void **)(&mp.name) = dlsym(mp.handle, #name); \
        assert_non_null(mp.name);                       \
    } while (0)

/* found[0]: libmp.so is loaded; found[1]: it has DF_STATIC_TLS. */
static int static_tls_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    int *found = data;
    if (strstr(info->dlpi_name, "libmp.so") == NULL)
        return 0;
    found[0] = 1;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        if (info->dlpi_phdr[i].p_type != PT_DYNAMIC)
            continue;
        const ElfW(Dyn) *d = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
        for (; d->d_tag != DT_NULL; d++)
            if (d->d_tag == DT_FLAGS && (d->d_un.d_val & DF_STATIC_TLS))
                found[1] = 1;
    }
    return 0;
}

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static int setup(void **state)
{
    (void)state;
    mp.handle = dlopen(MPT_LIBMP_SO, RTLD_NOW | RTLD_LOCAL);
    if (mp.handle == NULL) {
        print_error("dlopen: %s\n", dlerror());
        return -1;
    }
    return 0;
}

static void test_loaded_late(void **state)
{
    (void)state;
    /* The library was not there at start-up: dlopen gave it dynamic TLS. */
    int found[2] = {0, 0};
    dl_iterate_phdr(static_tls_cb, found);
    assert_int_equal(found[0], 1);
    assert_int_equal(found[1], 0);
    LOAD(mp_set_start_method);
    LOAD(mp_lock_new_opts);
    LOAD(mp_lock_acquire);
    LOAD(mp_lock_release);
    LOAD(mp_lock_free);
    LOAD(mp_queue_new_opts);
    LOAD(mp_queue_put);
    LOAD(mp_queue_get);
    LOAD(mp_queue_close);
    LOAD(mp_queue_free);
    LOAD(mp_process_new_opts);
    LOAD(mp_process_start);
    LOAD(mp_process_join);
    LOAD(mp_process_exitcode);
    LOAD(mp_process_close);
    LOAD(mp_process_free);
    LOAD(mp_pool_new_opts);
    LOAD(mp_pool_map_opts);
    LOAD(mp_pool_close);
    LOAD(mp_pool_join);
    LOAD(mp_pool_free);
    LOAD(mp_strerror);
    /* Spawn needs the library in the child before main; a plugin is not. */
    assert_int_equal(mp.mp_set_start_method("fork", true), 0);
}

static void *lock_thread(void *arg)
{
    mp_lock *l = arg;
    for (int i = 0; i < 1000; i++) {
        int rc = mp.mp_lock_acquire(l, MP_FOREVER);
        if (rc != 0) {
            fprintf(stderr, "acquire %d: %s\n", i, mp.mp_strerror(rc));
            return (void *)1;
        }
        if ((rc = mp.mp_lock_release(l)) != 0) {
            fprintf(stderr, "release %d: %s\n", i, mp.mp_strerror(rc));
            return (void *)2;
        }
    }
    return NULL;
}

static void test_lock_threads(void **state)
{
    (void)state;
    mp_lock_options o = {0};
    mp_lock *l = mp.mp_lock_new_opts(&o);
    assert_non_null(l);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, lock_thread, l), 0);
    for (int i = 0; i < 2; i++) {
        void *r;
        assert_int_equal(pthread_join(t[i], &r), 0);
        assert_null(r);
    }
    /* Each thread had its own token: the main thread takes the lock too. */
    assert_int_equal(mp.mp_lock_acquire(l, 0), 0);
    assert_int_equal(mp.mp_lock_acquire(l, 0), MP_ETIMEDOUT);
    assert_int_equal(mp.mp_lock_release(l), 0);
    mp.mp_lock_free(l);
}

/* A fresh thread's first call into libmp: the one that allocates its TLS. */
struct first_call {
    mp_lock *lock;
    _Atomic int started;
    _Atomic int done;
    int rc;
};

static void *first_acquire_thread(void *arg)
{
    struct first_call *fc = arg;
    atomic_store(&fc->started, 1);
    fc->rc = mp.mp_lock_acquire(fc->lock, MP_FOREVER);
    atomic_store(&fc->done, 1);
    if (fc->rc == 0)
        mp.mp_lock_release(fc->lock);
    return NULL;
}

/*
 * A thread whose first libmp call is mp_lock_acquire(l, MP_FOREVER) on a
 * held lock waits for it.  With TLS descriptors on a glibc that does not
 * save the vector registers in _dl_tlsdesc_dynamic (before 2.40), the
 * timeout (in xmm0) came back from the thread's first TLS access as 0 and
 * the call returned MP_ETIMEDOUT at once.
 */
static void test_lock_first_call_waits(void **state)
{
    (void)state;
    mp_lock_options o = {0};
    mp_lock *l = mp.mp_lock_new_opts(&o);
    assert_non_null(l);
    for (int round = 0; round < 3; round++) {
        struct first_call fc = {.lock = l};
        assert_int_equal(mp.mp_lock_acquire(l, 0), 0);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, first_acquire_thread, &fc), 0);
        while (!atomic_load(&fc.started))
            sched_yield();
        /* Time for a wrong MP_ETIMEDOUT to come back; a right one waits. */
        nanosleep(&(struct timespec){.tv_nsec = 30000000}, NULL);
        int early = atomic_load(&fc.done);
        assert_int_equal(mp.mp_lock_release(l), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        if (fc.rc != 0)
            print_error("round %d: acquire: %s\n", round, mp.mp_strerror(fc.rc));
        assert_int_equal(fc.rc, 0);
        assert_int_equal(early, 0);
    }
    mp.mp_lock_free(l);
}

#define MSGS 100

static int producer(void *arg, size_t size)
{
    mp_queue *q = *(mp_queue *const *)arg;
    for (int i = 0; i < MSGS; i++) {
        char m[32];
        int n = snprintf(m, sizeof m, "message %d", i);
        if (mp.mp_queue_put(q, m, (size_t)n, MP_FOREVER) != 0)
            return 1;
    }
    return 0;
}

static void test_queue_two_processes(void **state)
{
    (void)state;
    int fds = count_fds();
    mp_queue_options qo = {0};
    mp_queue *q = mp.mp_queue_new_opts(&qo);
    assert_non_null(q);
    mp_process_options po = {.target = producer, .arg = &q, .arg_size = sizeof q};
    mp_process *p = mp.mp_process_new_opts(&po);
    assert_non_null(p);
    assert_int_equal(mp.mp_process_start(p), 0);
    for (int i = 0; i < MSGS; i++) {
        char m[32], want[32];
        size_t len;
        int r = mp.mp_queue_get(q, m, sizeof m - 1, &len, 30.0);
        assert_int_equal(r, 0);
        m[len] = '\0';
        snprintf(want, sizeof want, "message %d", i);
        assert_string_equal(m, want);
    }
    assert_int_equal(mp.mp_process_join(p, 30.0), 0);
    int code = -1;
    assert_int_equal(mp.mp_process_exitcode(p, &code), 0);
    assert_int_equal(code, 0);
    assert_int_equal(mp.mp_process_close(p), 0);
    mp.mp_process_free(p);
    assert_int_equal(mp.mp_queue_close(q), 0);
    mp.mp_queue_free(q);
    assert_int_equal(count_fds(), fds);
}

static int square(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    int v = *(const int *)in;
    *(int *)out = v * v;
    return 0;
}

static void test_pool_map(void **state)
{
    (void)state;
    mp_pool_options o = {.processes = 2};
    mp_pool *pool = mp.mp_pool_new_opts(&o);
    assert_non_null(pool);
    int in[200], out[200];
    for (int i = 0; i < 200; i++)
        in[i] = i;
    mp_pool_call_options co = {.chunksize = 7};
    int r = mp.mp_pool_map_opts(pool, square, in, sizeof *in, 200, out, sizeof *out, &co);
    assert_int_equal(r, 0);
    for (int i = 0; i < 200; i++)
        assert_int_equal(out[i], i * i);
    assert_int_equal(mp.mp_pool_close(pool), 0);
    assert_int_equal(mp.mp_pool_join(pool, 30.0), 0);
    mp.mp_pool_free(pool);
    /* Every worker was reaped. */
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loaded_late),
        cmocka_unit_test(test_lock_threads),
        cmocka_unit_test(test_lock_first_call_waits),
        cmocka_unit_test(test_queue_two_processes),
        cmocka_unit_test(test_pool_map),
    };
    return cmocka_run_group_tests_name("dlopen", tests, setup, NULL);
}
