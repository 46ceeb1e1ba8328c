/*
 * test_mpi.c: the MPI pool (mpi.h, docs/mpi.md).
 *
 * The cmocka tests start this same program under mpiexec with "--run
 * SCENARIO WORKERS" and check its exit status (0, or the line of the first
 * failed check), how long it took, and that nothing was left behind: no
 * process carrying this run's token in its environment, no new Open MPI
 * shared-memory segment in /dev/shm, no libmp entry.  The runner is rank 0
 * (spawn mode: mpiexec -n 1, its workers come from MPI_Comm_spawn; world
 * mode: mpiexec -n N, ranks 1..N-1 serve it after mp_mpi_main).  Every
 * result of the MPI pool is compared with a local thread pool's.
 *
 * Without MPI the program checks that the "mpi" context is refused with
 * -ENOTSUP and skips the rest, saying so.
 */
#include "internal/mp.h"
#include "mptest.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MPT_OTHER_BUILD
#define MPT_OTHER_BUILD "/nonexistent"
#endif
#ifndef MPT_CTOR_PEER
#define MPT_CTOR_PEER "/nonexistent"
#endif
#ifdef MPT_OTHER
/* Makes this build's code, hence its GNU build-id, differ from test_mpi's. */
__attribute__((used)) static const char other_build[] = "test_mpi_other";
#endif

/* ---- tasks ---------------------------------------------------------------- */

static int32_t init_value;

static int init_store(void *arg, size_t size)
{
    if (size != sizeof(int32_t))
        return MP_EINVAL;
    memcpy(&init_value, arg, sizeof init_value);
    return init_value == 666 ? -42 : 0;
}

/* x*x + arg; fails on multiples of 7 with -(100 + x % 50) and a message. */
static int sq(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    int64_t x = *(const int64_t *)in;
    if (x % 7 == 3) {
        mp_pool_set_error("item %lld fails", (long long)x);
        return (int)-(100 + x % 50);
    }
    *(int64_t *)out = x * x + (arg != NULL ? *(const int64_t *)arg : 0) + init_value;
    return 0;
}

static int add3(const void *const *args, void *out, size_t out_size, void *arg)
{
    *(int64_t *)out = *(const int64_t *)args[0] + *(const int32_t *)args[1] +
                      *(const char *)args[2];
    return 0;
}

/* Bytes: the input reversed, repeated (len % 3 + 1) times; fails on "bad". */
static int rev(const void *in, size_t n, mp_pool_out *out, void *arg)
{
    if (n == 3 && memcmp(in, "bad", 3) == 0) {
        mp_pool_set_error("bad input");
        return -77;
    }
    for (size_t k = 0; k < n % 3 + 1; k++) {
        char *p = mp_pool_out_reserve(out, n);
        if (p == NULL && n > 0)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++)
            p[i] = ((const char *)in)[n - 1 - i];
    }
    return 0;
}

/* Who runs the task: pid, parent pid, and how the parent's arena is mapped
 * here ('-' unmapped, else the first permission letters of /proc/self/maps:
 * "---p" for the reservation, "rw-s" would be the parent's arena). */
struct who {
    int32_t pid, ppid;
    char maps[8];
};

static int who(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    uintptr_t addr;
    memcpy(&addr, in, sizeof addr);
    struct who w = {(int32_t)getpid(), (int32_t)getppid(), "-"};
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        unsigned long lo, hi;
        char perm[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perm) == 3 && addr >= lo && addr < hi) {
            snprintf(w.maps, sizeof w.maps, "%s", perm);
            break;
        }
    }
    if (f != NULL)
        fclose(f);
    memcpy(out, &w, sizeof w);
    return 0;
}

/*
 * Set by a constructor of this program.  A spawned worker is taken over
 * after the program's own constructors (libmp's start-up hook, as for the
 * spawn start method), so its tasks see it set.
 */
static int32_t ctor_value;

__attribute__((constructor)) static void set_ctor_value(void)
{
    ctor_value = 4242;
}

static int ctor_seen(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    memcpy(out, &ctor_value, sizeof ctor_value);
    return 0;
}

/* Follows a pointer (to a libmp object) passed as the item. */
static int deref(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    const volatile int64_t *p;
    memcpy(&p, in, sizeof p);
    *(int64_t *)out = *p;
    return 0;
}

/* Kills its own process on item 20 (the killed-worker scenario). */
static int die20(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    int64_t x = *(const int64_t *)in;
    if (x == 20)
        raise(SIGKILL);
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
    *(int64_t *)out = x;
    return 0;
}

static int slow(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
    *(int64_t *)out = *(const int64_t *)in;
    return 0;
}

/* ---- the runner (rank 0 under mpiexec) ---------------------------------------- */

#define CHECK(c)                                                                             \
    do {                                                                                     \
        if (!(c)) {                                                                          \
            fprintf(stderr, "test_mpi runner: check failed at line %d: %s\n", __LINE__, #c); \
            return __LINE__ % 250 + 1;                                                       \
        }                                                                                    \
    } while (0)

struct cbs {
    int calls, errors, code;
    int64_t sum;
    char msg[64];
};

static void on_map(const void *res, size_t size, void *arg)
{
    struct cbs *c = arg;
    const int64_t *v = res;
    for (size_t i = 0; i < size / sizeof *v; i++)
        c->sum += v[i];
    __atomic_add_fetch(&c->calls, 1, __ATOMIC_SEQ_CST);
}

static void on_err(int code, const char *msg, void *arg)
{
    struct cbs *c = arg;
    c->code = code;
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    __atomic_add_fetch(&c->errors, 1, __ATOMIC_SEQ_CST);
}

static void on_bytes(const void *res, size_t size, void *arg)
{
    struct cbs *c = arg;
    c->sum += (int64_t)size;
    __atomic_add_fetch(&c->calls, 1, __ATOMIC_SEQ_CST);
}

struct gen {
    int64_t next, end;
    int64_t cur;
};

static int gen_next(void *ctx, const void **data, size_t *size)
{
    struct gen *g = ctx;
    if (g->next >= g->end)
        return 0;
    g->cur = g->next++;
    *data = &g->cur;
    *size = sizeof g->cur;
    return 1;
}

#define N 1000

/* map, map_async, starmap over fixed-size items, against the local pool. */
static int run_maps(mp_pool *p, mp_pool *loc)
{
    static int64_t in[N], out[N], ref[N];
    static int st[N], rst[N];
    int64_t add = 5;
    for (int i = 0; i < N; i++)
        in[i] = i;
    size_t chunks[] = {0, 1, 7, N};
    for (size_t k = 0; k < sizeof chunks / sizeof *chunks; k++) {
        memset(out, 0, sizeof out);
        memset(ref, 0, sizeof ref);
        int r = mp_pool_map(p, sq, in, sizeof *in, N, out, sizeof *out, .arg = &add,
                            .arg_size = sizeof add, .status = st, .chunksize = chunks[k]);
        char msg[256];
        snprintf(msg, sizeof msg, "%s", mp_pool_error_message());
        int rr = mp_pool_map(loc, sq, in, sizeof *in, N, ref, sizeof *ref, .arg = &add,
                             .arg_size = sizeof add, .status = rst, .chunksize = chunks[k]);
        CHECK(r == rr && r == -103);
        CHECK(strcmp(msg, mp_pool_error_message()) == 0 && strcmp(msg, "item 3 fails") == 0);
        CHECK(memcmp(out, ref, sizeof out) == 0);
        CHECK(memcmp(st, rst, sizeof st) == 0);
    }
    /* Every item succeeds: no .status. */
    for (int i = 0; i < N; i++)
        in[i] = 7 * i;
    CHECK(mp_pool_map(p, sq, in, sizeof *in, N, out, sizeof *out) == 0);
    CHECK(mp_pool_map(loc, sq, in, sizeof *in, N, ref, sizeof *ref) == 0);
    CHECK(memcmp(out, ref, sizeof out) == 0);

    /* map_async with callbacks. */
    struct cbs c = {0};
    mp_async_result *a = mp_pool_map_async(p, sq, in, sizeof *in, N, out, sizeof *out,
                                           .callback = on_map, .error_callback = on_err,
                                           .cb_arg = &c);
    CHECK(a != NULL);
    CHECK(mp_async_result_get(a, 60, NULL, NULL) == 0);
    CHECK(mp_async_result_successful(a) == 1);
    mp_async_result_free(a);
    int64_t sum = 0;
    for (int i = 0; i < N; i++)
        sum += ref[i];
    CHECK(c.calls == 1 && c.errors == 0 && c.sum == sum);
    for (int i = 0; i < N; i++)
        in[i] = i;
    a = mp_pool_map_async(p, sq, in, sizeof *in, N, out, sizeof *out, .callback = on_map,
                          .error_callback = on_err, .cb_arg = &c);
    CHECK(a != NULL);
    CHECK(mp_async_result_wait(a, 60) == 0);
    CHECK(mp_async_result_successful(a) == 0);
    mp_async_result_free(a);
    CHECK(c.calls == 1 && c.errors == 1 && c.code == -103 &&
          strcmp(c.msg, "item 3 fails") == 0);

    /* starmap over three columns. */
    static int32_t c2[N];
    static char c3[N];
    for (int i = 0; i < N; i++) {
        c2[i] = -i;
        c3[i] = (char)(i % 100);
    }
    const void *cols[] = {in, c2, c3};
    size_t sizes[] = {sizeof *in, sizeof *c2, sizeof *c3};
    CHECK(mp_pool_starmap(p, add3, 3, cols, sizes, N, out, sizeof *out, .chunksize = 13) == 0);
    CHECK(mp_pool_starmap(loc, add3, 3, cols, sizes, N, ref, sizeof *ref) == 0);
    CHECK(memcmp(out, ref, sizeof out) == 0);

    /* A large map in chunks (default chunk size: 4 per worker). */
    size_t big = 1 << 20;
    int64_t *bi = malloc(big * sizeof *bi), *bo = malloc(big * sizeof *bo);
    CHECK(bi != NULL && bo != NULL);
    for (size_t i = 0; i < big; i++)
        bi[i] = (int64_t)(7 * i);
    int r = mp_pool_map(p, sq, bi, sizeof *bi, big, bo, sizeof *bo);
    bool ok = r == 0;
    for (size_t i = 0; ok && i < big; i++)
        ok = bo[i] == bi[i] * bi[i] + init_value;
    free(bi);
    free(bo);
    CHECK(ok);
    return 0;
}

/* imap, imap_unordered (array and lazy input), apply, bytes. */
static int run_lazy(mp_pool *p, mp_pool *loc)
{
    static int64_t in[N];
    for (int i = 0; i < N; i++)
        in[i] = i;
    for (int unordered = 0; unordered < 2; unordered++) {
        mp_imap *it = unordered
                          ? mp_pool_imap_unordered(p, sq, in, sizeof *in, N, 8, .chunksize = 3)
                          : mp_pool_imap(p, sq, in, sizeof *in, N, 8, .window = 64);
        CHECK(it != NULL);
        static char seen[N];
        memset(seen, 0, sizeof seen);
        size_t count = 0, idx = 0, prev = 0;
        int64_t y;
        int r;
        while ((r = mp_imap_next(it, 60, &y, &idx)) != MP_EEOF) {
            CHECK(idx < N && !seen[idx]);
            CHECK(unordered || count == 0 || idx == prev + 1);
            seen[idx] = 1;
            prev = idx;
            if (idx % 7 == 3) {
                CHECK(r == (int)-(100 + idx % 50));
            } else {
                CHECK(r == 0 && y == (int64_t)(idx * idx) + init_value);
            }
            count++;
        }
        CHECK(count == N);
        mp_imap_free(it);
    }
    /* A lazy input, in a small window. */
    struct gen g = {0, 5000, 0};
    mp_imap *it = mp_pool_imap(p, sq, NULL, sizeof(int64_t), 0, 8, .next_input = gen_next,
                               .next_ctx = &g, .window = 64, .chunksize = 2);
    CHECK(it != NULL);
    size_t count = 0, idx;
    int64_t y;
    int r;
    while ((r = mp_imap_next(it, 60, &y, &idx)) != MP_EEOF) {
        CHECK(idx == count);
        CHECK(idx % 7 == 3 || (r == 0 && y == (int64_t)(idx * idx) + init_value));
        /* Lazy and bounded: the input is read at most a window ahead. */
        CHECK(g.next <= (int64_t)(count + 1 + 64 * 2));
        count++;
    }
    CHECK(count == 5000);
    mp_imap_free(it);

    /* apply and apply_async with callbacks. */
    void *res = NULL;
    size_t len = 0;
    CHECK(mp_pool_apply(p, rev, "hello", 5, &res, &len) == 0);
    CHECK(len == 15 && memcmp(res, "olleholleholleh", 15) == 0);
    free(res);
    CHECK(mp_pool_apply(p, rev, "bad", 3, &res, &len) == -77);
    CHECK(strcmp(mp_pool_error_message(), "bad input") == 0);
    struct cbs c = {0};
    mp_async_result *as[64];
    for (int i = 0; i < 64; i++) {
        as[i] = mp_pool_apply_async(p, rev, i % 8 == 0 ? "bad" : "abcd", i % 8 == 0 ? 3 : 4,
                                    .callback = on_bytes, .error_callback = on_err,
                                    .cb_arg = &c);
        CHECK(as[i] != NULL);
    }
    for (int i = 0; i < 64; i++) {
        char buf[16];
        size_t l = 0;
        r = mp_async_result_get_into(as[i], 60, buf, sizeof buf, &l);
        if (i % 8 == 0) {
            CHECK(r == -77);
        } else {
            CHECK(r == 0 && l == 8 && memcmp(buf, "dcbadcba", 8) == 0);
        }
        mp_async_result_free(as[i]);
    }
    CHECK(c.calls == 56 && c.errors == 8 && c.sum == 56 * 8 && c.code == -77);

    /* map_bytes and imap_bytes against the local pool. */
    static const char *words[] = {"", "a", "bad", "xyz", "hello world", "bad", "0123456789"};
    enum { NW = 7 };
    mp_pool_bytes bin[NW * 20], bout[NW * 20], bref[NW * 20];
    for (int i = 0; i < NW * 20; i++) {
        bin[i].data = (void *)words[i % NW];
        bin[i].size = strlen(words[i % NW]);
    }
    int bst[NW * 20], brst[NW * 20];
    r = mp_pool_map_bytes(p, rev, bin, NW * 20, bout, .status = bst, .chunksize = 3);
    int rr = mp_pool_map_bytes(loc, rev, bin, NW * 20, bref, .status = brst);
    CHECK(r == rr && r == -77);
    for (int i = 0; i < NW * 20; i++) {
        CHECK(bst[i] == brst[i]);
        CHECK(bout[i].size == bref[i].size &&
              memcmp(bout[i].data, bref[i].data, bref[i].size) == 0);
        free(bout[i].data);
        free(bref[i].data);
    }
    it = mp_pool_imap_bytes(p, rev, bin, NW * 20, .chunksize = 4);
    CHECK(it != NULL);
    count = 0;
    void *d;
    size_t dl;
    while ((r = mp_imap_next_bytes(it, 60, &d, &dl, &idx)) != MP_EEOF) {
        CHECK(idx == count);
        if (r == 0) {
            size_t n = bin[idx].size;
            CHECK(dl == n * (n % 3 + 1));
            free(d);
        } else {
            CHECK(r == -77);
        }
        count++;
    }
    CHECK(count == NW * 20);
    mp_imap_free(it);
    return 0;
}

/* What travels: workers are not our children, do not map our arena, ran
 * this program's constructors, and a pointer to a libmp object fails the
 * task with MP_EINVAL. */
static int run_travel(mp_pool *p, int workers)
{
    int64_t *shared = mp_shared_alloc(sizeof *shared);
    CHECK(shared != NULL);
    *shared = 12345;
    uintptr_t addrs[16];
    struct who w[16];
    for (int i = 0; i < 16; i++)
        addrs[i] = (uintptr_t)shared;
    CHECK(mp_pool_map(p, who, addrs, sizeof *addrs, 16, w, sizeof *w, .chunksize = 1) == 0);
    for (int i = 0; i < 16; i++) {
        CHECK(w[i].pid != (int32_t)getpid() && w[i].ppid != (int32_t)getpid());
        CHECK(strncmp(w[i].maps, "rw", 2) != 0);
    }
    int32_t seen[16], zero[16] = {0};
    CHECK(mp_pool_map(p, ctor_seen, zero, sizeof *zero, 16, seen, sizeof *seen,
                      .chunksize = 1) == 0);
    for (int i = 0; i < 16; i++)
        CHECK(seen[i] == 4242);
    int64_t outv[4];
    int st[4];
    int64_t *ptrs[4] = {shared, shared, shared, shared};
    int r = mp_pool_map(p, deref, ptrs, sizeof *ptrs, 4, outv, sizeof *outv, .status = st);
    CHECK(r == MP_EINVAL);
    CHECK(strstr(mp_pool_error_message(), "libmp objects do not travel") != NULL);
    for (int i = 0; i < 4; i++)
        CHECK(st[i] == MP_EINVAL);
    /* The workers are still fine. */
    int64_t x = 9, y = 0;
    CHECK(mp_pool_map(p, sq, &x, sizeof x, 1, &y, sizeof y) == 0 && y == 81 + init_value);
    mp_shared_free(shared);
    return 0;
}

static int scenario_all(int workers, int expect)
{
    mp_context *ctx = mp_get_context("mpi");
    CHECK(ctx != NULL);
    CHECK(strcmp(mp_context_get_start_method(ctx), "mpi") == 0);
    CHECK(mp_pool_new(.ctx = ctx, .processes = 2, .maxtasksperchild = 3) == NULL &&
          mp_last_error() == MP_EINVAL);
    CHECK(mp_process_new(.ctx = ctx, .target = init_store) == NULL &&
          mp_last_error() == MP_EINVAL);
    int32_t iv = 1000;
    init_value = 1000; /* the local pool's threads see the same */
    mp_pool *p = mp_pool_new(.ctx = ctx, .processes = workers, .initializer = init_store,
                             .initarg = &iv, .initarg_size = sizeof iv);
    CHECK(p != NULL);
    CHECK(mp_pool_processes(p) == expect);
    mp_pool *loc = mp_thread_pool_new(.processes = 2);
    CHECK(loc != NULL);
    fprintf(stderr, "test_mpi runner: maps\n");
    int r = run_maps(p, loc);
    fprintf(stderr, "test_mpi runner: lazy\n");
    if (r == 0)
        r = run_lazy(p, loc);
    fprintf(stderr, "test_mpi runner: travel\n");
    if (r == 0)
        r = run_travel(p, workers);
    fprintf(stderr, "test_mpi runner: close\n");
    if (r != 0)
        return r;
    CHECK(mp_pool_close(p) == 0);
    CHECK(mp_pool_join(p, 60) == 0);
    mp_pool_free(p);
    mp_pool_close(loc);
    CHECK(mp_pool_join(loc, 60) == 0);
    mp_pool_free(loc);

    /* A second pool after the first (world mode lends the ranks again);
     * terminate with tasks in flight. */
    fprintf(stderr, "test_mpi runner: terminate\n");
    init_value = 0;
    p = mp_pool_new(.ctx = ctx, .processes = workers);
    CHECK(p != NULL);
    static int64_t in[200], out[200];
    for (int i = 0; i < 200; i++)
        in[i] = i;
    mp_async_result *a = mp_pool_map_async(p, slow, in, sizeof *in, 200, out, sizeof *out,
                                           .chunksize = 1);
    CHECK(a != NULL);
    struct timespec ts = {0, 100000000};
    nanosleep(&ts, NULL);
    CHECK(mp_pool_terminate(p) == 0);
    r = mp_async_result_get(a, 60, NULL, NULL);
    CHECK(r == MP_EWORKERLOST);
    mp_async_result_free(a);
    CHECK(mp_pool_join(p, 60) == 0);
    mp_pool_free(p);

    /* An initializer that fails breaks the pool: tasks get its code. */
    fprintf(stderr, "test_mpi runner: initializer\n");
    iv = 666;
    p = mp_pool_new(.ctx = ctx, .processes = workers, .initializer = init_store,
                    .initarg = &iv, .initarg_size = sizeof iv);
    CHECK(p != NULL);
    int64_t x = 1, y;
    CHECK(mp_pool_map(p, sq, &x, sizeof x, 1, &y, sizeof y) == -42);
    mp_pool_free(p);
    fprintf(stderr, "test_mpi runner: done\n");
    return 0;
}

static int scenario_kill(int workers)
{
    mp_pool *p = mp_pool_new(.ctx = mp_get_context("mpi"), .processes = workers);
    CHECK(p != NULL);
    static int64_t in[400], out[400];
    for (int i = 0; i < 400; i++)
        in[i] = i;
    int r = mp_pool_map(p, die20, in, sizeof *in, 400, out, sizeof *out, .chunksize = 1);
    /* Only if the MPI library lets us see the failure. */
    fprintf(stderr, "test_mpi runner: map after a killed worker returned %s\n",
            mp_err_name(r));
    mp_pool_free(p);
    return r == MP_EWORKERLOST ? 0 : 99;
}

/* Workers of another build refuse the pool (spawn: mp_set_executable of
 * the other build; world: its ranks are the other build, MPMD).  Only one
 * spawn per process: see the note on spawned groups in pool_mpi.c. */
/* A long map, to be interrupted (Ctrl-C on mpiexec). */
static int scenario_long(int workers)
{
    mp_pool *p = mp_pool_new(.ctx = mp_get_context("mpi"), .processes = workers);
    CHECK(p != NULL);
    static int64_t in[4000], out[4000];
    for (int i = 0; i < 4000; i++)
        in[i] = i;
    fprintf(stderr, "test_mpi runner: long map\n");
    mp_pool_map(p, slow, in, sizeof *in, 4000, out, sizeof *out, .chunksize = 1);
    mp_pool_free(p);
    return 0;
}

static int scenario_wrong_build(int workers)
{
    if (workers > 0)
        CHECK(mp_set_executable(MPT_OTHER_BUILD) == 0);
    mp_pool *p = mp_pool_new(.ctx = mp_get_context("mpi"), .processes = workers);
    CHECK(p == NULL && mp_last_error() == MP_EINVAL);
    CHECK(mp_set_executable(NULL) == 0);
    return 0;
}

static int run(int argc, char **argv)
{
    int r = mp_mpi_main(&argc, &argv);
    if (r != 0) {
        fprintf(stderr, "mp_mpi_main: %s\n", mp_err_name(r));
        return 1;
    }
    const char *what = argv[2];
    int workers = atoi(argv[3]);
    int expect = argc > 4 ? atoi(argv[4]) : workers;
    if (strcmp(what, "all") == 0)
        return scenario_all(workers, expect);
    if (strcmp(what, "kill") == 0)
        return scenario_kill(workers);
    if (strcmp(what, "wrongbuild") == 0)
        return scenario_wrong_build(workers);
    if (strcmp(what, "long") == 0)
        return scenario_long(workers);
    if (strcmp(what, "serve") == 0)
        return 0; /* a rank of world mode that was not rank 0: never here */
    return 2;
}

/* ---- the cmocka side ---------------------------------------------------------- */

#ifdef MP__HAVE_MPI

static char token[64];

/* Open MPI's shared-memory segments of this test's runs go to a directory
 * of its own (btl_vader_backing_directory), so that only they are counted:
 * other programs on the machine run MPI jobs too. */
static char vader_dir[64];

/* The entries of vader_dir: what this test's MPI runs left. */
static int list_shm(char names[][256], int cap)
{
    int n = 0;
    DIR *d = opendir(vader_dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n < cap)
            snprintf(names[n], 256, "%s", e->d_name);
        n++;
    }
    if (d != NULL)
        closedir(d);
    return n;
}

/* Processes whose environment holds this run's token. */
static int count_token_procs(void)
{
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    static char buf[1 << 16];
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9' || atoi(e->d_name) == getpid())
            continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/%.200s/environ", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (len <= 0)
            continue;
        buf[len] = '\0';
        for (ssize_t i = 0; i < len; i += (ssize_t)strlen(buf + i) + 1)
            if (strcmp(buf + i, token) == 0) {
                n++;
                break;
            }
    }
    if (d != NULL)
        closedir(d);
    return n;
}

/*
 * Run "mpiexec -n ranks THIS --run what workers [expect]" (or without
 * mpiexec when ranks is 0), wait at most limit seconds; returns the exit
 * status (1000 + signal when killed, -1 on timeout) and the seconds taken.
 */
static double sigint_after;     /* > 0: send SIGINT to mpiexec after so long */
static const char *launch_prog; /* run this program instead of this one */

static int launch(int ranks, const char *what, int workers, int expect, double limit,
                  double *took, char *log, size_t logsize)
{
    static char self[4096];
    ssize_t l = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(l > 0);
    self[l] = '\0';
    if (launch_prog != NULL)
        snprintf(self, sizeof self, "%s", launch_prog);
    char n[16], w[16], e[16];
    snprintf(n, sizeof n, "%d", ranks);
    snprintf(w, sizeof w, "%d", workers);
    snprintf(e, sizeof e, "%d", expect);
    char logpath[] = "/tmp/test_mpi_log_XXXXXX";
    int lfd = mkstemp(logpath);
    assert_true(lfd >= 0);
    double t0 = mp__now();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        dup2(lfd, 1);
        dup2(lfd, 2);
        putenv(token);
        /* Open MPI's own allocations are not ours to check. */
        setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
        if (ranks > 0 && strcmp(what, "wrongbuild") == 0 && workers == 0)
            execlp(MPT_MPIEXEC, MPT_MPIEXEC, "--oversubscribe", "-n", "1", self, "--run", what,
                   w, e, ":", "-n", n, MPT_OTHER_BUILD, "--run", "serve", "0", (char *)NULL);
        else if (ranks > 0)
            execlp(MPT_MPIEXEC, MPT_MPIEXEC, "--oversubscribe", "-n", n, self, "--run", what,
                   w, e, (char *)NULL);
        else
            execl(self, self, "--run", what, w, e, (char *)NULL);
        _exit(127);
    }
    int status = -1;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            status = WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
            break;
        }
        if (sigint_after > 0 && mp__now() - t0 > sigint_after) {
            kill(pid, SIGINT); /* Ctrl-C reaches mpiexec */
            sigint_after = 0;
        }
        if (mp__now() - t0 > limit) {
            kill(-pid, SIGKILL);
            waitpid(pid, &st, 0);
            break;
        }
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    *took = mp__now() - t0;
    ssize_t got = pread(lfd, log, logsize - 1, 0);
    log[got > 0 ? got : 0] = '\0';
    close(lfd);
    unlink(logpath);
    return status;
}

/* Wait (a little) for the token's processes to be gone: mpiexec reaps its
 * daemons just before it exits, the kernel may not have finished. */
static int leftover_procs(void)
{
    int n = 0;
    for (int i = 0; i < 100 && (n = count_token_procs()) > 0; i++) {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    return n;
}

static char before[64][256];
static int nbefore;

static int setup(void **state)
{
    nbefore = list_shm(before, 64);
    return 0;
}

/* Fail on any new entry in vader_dir (removing it, so that one failure
 * does not leave the machine dirty). */
static int teardown(void **state)
{
    char after[64][256];
    int n = list_shm(after, 64), fresh = 0;
    for (int i = 0; i < n && i < 64; i++) {
        bool old = false;
        for (int k = 0; k < nbefore && k < 64 && !old; k++)
            old = strcmp(after[i], before[k]) == 0;
        if (!old) {
            char path[300];
            snprintf(path, sizeof path, "%s/%.200s", vader_dir, after[i]);
            fprintf(stderr, "left behind: %s\n", path);
            unlink(path);
            fresh++;
        }
    }
    assert_int_equal(fresh, 0);
    assert_int_equal(leftover_procs(), 0);
    return 0;
}

static void expect_ok(int ranks, const char *what, int workers, int expect)
{
    static char log[1 << 16];
    double took;
    int st = launch(ranks, what, workers, expect, 120, &took, log, sizeof log);
    if (st != 0)
        fprintf(stderr, "status %d after %.1f s; output:\n%s\n", st, took, log);
    assert_int_equal(st, 0);
}

static void test_context(void **state)
{
    mp_context *ctx = mp_get_context("mpi");
    assert_non_null(ctx);
    assert_string_equal(mp_context_get_start_method(ctx), "mpi");
    assert_ptr_equal(mp_get_context("mpi"), ctx);
    assert_null(mp_pool_new(.ctx = ctx, .maxtasksperchild = 1));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_process_new(.ctx = ctx, .target = init_store));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_int_equal(mp_set_start_method("mpi", true), MP_EINVAL);
}

static void test_spawn_1_2(void **state)
{
    expect_ok(1, "all", 2, 2);
}

static void test_spawn_1_3(void **state)
{
    expect_ok(1, "all", 3, 3);
}

static void test_singleton(void **state)
{
    expect_ok(0, "all", 2, 2);
}

static void test_world_1_2(void **state)
{
    expect_ok(3, "all", 0, 2);
}

static void test_world_1_3(void **state)
{
    expect_ok(4, "all", 0, 3);
}

static void test_wrong_build_spawn(void **state)
{
    expect_ok(1, "wrongbuild", 2, 2);
}

/* mpiexec -n 1 test_mpi : -n 2 test_mpi_other */
static void test_wrong_build_world(void **state)
{
    expect_ok(2, "wrongbuild", 0, 0);
}

/* A worker killed with SIGKILL in the middle of a map: the parent gets
 * MP_EWORKERLOST, or (Open MPI) the whole job ends with a message and a
 * non-zero status, within seconds.  Never a hang. */
static void killed(int ranks, int workers)
{
    static char log[1 << 16];
    double took;
    int st = launch(ranks, "kill", workers, workers, 60, &took, log, sizeof log);
    fprintf(stderr, "killed worker (%s mode): status %d after %.1f s\n",
            ranks > 1 ? "world" : "spawn", st, took);
    assert_int_not_equal(st, -1);
    assert_true(took < 30);
    if (st != 0) {
        if (strstr(log, "signal 9") == NULL && strstr(log, "Killed") == NULL)
            fprintf(stderr, "output:\n%s\n", log);
        assert_true(strstr(log, "signal 9") != NULL || strstr(log, "Killed") != NULL);
    }
}

/* Ctrl-C on mpiexec in the middle of a long map ends every rank, spawned
 * workers included, within seconds (teardown: nothing left). */
static void interrupted(int ranks, int workers)
{
    static char log[1 << 16];
    double took;
    sigint_after = 3;
    int st = launch(ranks, "long", workers, workers, 60, &took, log, sizeof log);
    fprintf(stderr, "Ctrl-C (%s mode): status %d after %.1f s\n",
            ranks > 1 ? "world" : "spawn", st, took);
    assert_int_not_equal(st, -1);
    assert_int_not_equal(st, 0);
    assert_true(took < 20);
}

static void test_ctrl_c_spawn(void **state)
{
    interrupted(1, 2);
}

static void test_ctrl_c_world(void **state)
{
    interrupted(3, 0);
}

/* A worker is taken over after the program's constructors (issue 13): a
 * program linked with libmp.so, whose constructors run after libmp's. */
static void constructors(int ranks, int workers)
{
    static char log[1 << 16];
    double took;
    launch_prog = MPT_CTOR_PEER;
    int st = launch(ranks, "ctor", workers, workers, 120, &took, log, sizeof log);
    launch_prog = NULL;
    if (st != 0)
        fprintf(stderr, "%s", log);
    assert_int_equal(st, 0);
}

static void test_constructors_spawn(void **state)
{
    constructors(1, 2);
}

static void test_constructors_world(void **state)
{
    constructors(3, 0);
}

static void test_killed_worker_spawn(void **state)
{
    killed(1, 2);
}

static void test_killed_worker_world(void **state)
{
    killed(3, 0);
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "--run") == 0)
        return run(argc, argv);
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    /* More workers than cores, for spawn mode too (mpiexec's
     * --oversubscribe does not reach MPI_Comm_spawn). */
    setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
    snprintf(token, sizeof token, "MPT_MPI_TOKEN=%d.%ld", (int)getpid(), (long)time(NULL));
    snprintf(vader_dir, sizeof vader_dir, "/dev/shm/mpt-mpi-XXXXXX");
    if (mkdtemp(vader_dir) == NULL) {
        perror("test_mpi: mkdtemp");
        return 1;
    }
    setenv("OMPI_MCA_btl_vader_backing_directory", vader_dir, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_context),
        cmocka_unit_test_setup_teardown(test_spawn_1_2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spawn_1_3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_singleton, setup, teardown),
        cmocka_unit_test_setup_teardown(test_world_1_2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_world_1_3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_build_spawn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_build_world, setup, teardown),
        cmocka_unit_test_setup_teardown(test_constructors_spawn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_constructors_world, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_worker_spawn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_worker_world, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctrl_c_spawn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctrl_c_world, setup, teardown),
    };
    int rc = cmocka_run_group_tests_name("mpi", tests, NULL, NULL);
    if (rmdir(vader_dir) != 0) {
        perror("test_mpi: rmdir of the segment directory");
        rc = 1;
    }
    return rc;
}

#else /* no MPI */

static void test_no_mpi(void **state)
{
    assert_null(mp_get_context("mpi"));
    assert_int_equal(mp_last_error(), -ENOTSUP);
    assert_int_equal(mp_mpi_main(NULL, NULL), -ENOTSUP);
    /* Everything else is as before. */
    assert_non_null(mp_get_context("fork"));
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "--run") == 0)
        return run(argc, argv);
    printf("test_mpi: libmp was built without MPI: only the refusal is tested\n");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_mpi),
    };
    return cmocka_run_group_tests_name("mpi", tests, NULL, NULL);
}

#endif
