/*
 * shm_peer.c: an unrelated program for test_shared_memory.
 *
 *   shm_peer attach NAME       attach by name, check the bytes "ping" at the
 *                              start, write "pong" after them, exit 0
 *   shm_peer die NAME          create NAME (tracked), then SIGKILL itself
 *   shm_peer die-notrack NAME  create NAME untracked, then SIGKILL itself
 *   shm_peer family NAME PATH  create NAME (tracked) and a Listener at PATH,
 *                              start a libmp child that sleeps, print its
 *                              pid, and sleep until killed
 *   shm_peer busy PATH         a busy family: three segments with generated
 *                              names, a Listener at PATH, queue producers
 *                              and consumers, a pool mapping in a loop;
 *                              prints "ready" and works until killed
 *   shm_peer smm-die FILE      a SharedMemoryManager hands out a segment and
 *                              a ShareableList; their names go to FILE, one
 *                              a line; then SIGKILL itself
 *   shm_peer sock-churn DIR    starts a process (the forkserver's socket in
 *                              DIR, as TMPDIR), prints "ready", then makes
 *                              and closes Listeners at DIR/a and at the
 *                              relative path b (in DIR) until killed
 *   shm_peer random-kills SEED creators and attachers of segments killed
 *                              at random; prints what it counted (see
 *                              random_kills) and exits 0 if no read was torn
 */
#include <libmp.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int sleeper(void *arg, size_t size)
{
    (void)arg;
    (void)size;
    for (;;)
        pause();
    return 0;
}

static int family(const char *name, const char *path)
{
    mp_shared_memory *s = mp_shared_memory_new(.name = name, .create = true, .size = 4096);
    mp_listener *l = mp_listener_new(.path = path);
    if (s == NULL || l == NULL)
        return 7;
    mp_process *p = mp_process_new(.target = sleeper);
    if (p == NULL || mp_process_start(p) != 0)
        return 8;
    printf("%d\n", (int)mp_process_pid(p));
    fflush(stdout);
    for (;;)
        pause();
}

static int producer(void *arg, size_t size)
{
    mp_queue *q = *(mp_queue **)arg;
    for (int i = 0;; i++)
        if (mp_queue_put(q, &i, sizeof i, MP_FOREVER) != 0)
            return 1;
    (void)size;
    return 0;
}

static int consumer(void *arg, size_t size)
{
    mp_queue *q = *(mp_queue **)arg;
    for (;;) {
        int v;
        if (mp_queue_get(q, &v, sizeof v, NULL, MP_FOREVER) != 0)
            return 1;
    }
    (void)size;
    return 0;
}

static int square(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    int v = *(const int *)in;
    *(int *)out = v * v;
    return 0;
}

static int busy(const char *path)
{
    for (int i = 0; i < 3; i++) {
        mp_shared_memory *s = mp_shared_memory_new(.create = true, .size = 65536);
        if (s == NULL)
            return 7;
        memset(mp_shared_memory_buf(s), i, 65536);
    }
    if (mp_listener_new(.path = path) == NULL)
        return 8;
    mp_queue *q = mp_queue_new(.maxsize = 100);
    if (q == NULL)
        return 9;
    for (int i = 0; i < 4; i++) {
        mp_process *p = mp_process_new(.target = i % 2 ? consumer : producer, .arg = &q,
                                       .arg_size = sizeof q);
        if (p == NULL || mp_process_start(p) != 0)
            return 10;
    }
    mp_pool *pool = mp_pool_new(.processes = 2);
    int *in = mp_shared_alloc(1000 * sizeof *in), *out = mp_shared_alloc(1000 * sizeof *out);
    if (pool == NULL || in == NULL || out == NULL)
        return 11;
    for (int i = 0; i < 1000; i++)
        in[i] = i;
    printf("ready\n");
    fflush(stdout);
    for (;;)
        if (mp_pool_map(pool, square, in, sizeof *in, 1000, out, sizeof *out) != 0)
            return 12;
}

static int noop(void *arg, size_t size)
{
    (void)arg;
    (void)size;
    return 0;
}

static int sock_churn(const char *dir)
{
    char abs[108];
    snprintf(abs, sizeof abs, "%s/a", dir);
    if (setenv("TMPDIR", dir, 1) != 0 || chdir(dir) != 0)
        return 7;
    mp_process *p = mp_process_new(.target = noop);
    if (p == NULL || mp_process_start(p) != 0 || mp_process_join(p, MP_FOREVER) != 0)
        return 8;
    mp_process_free(p);
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        mp_listener *a = mp_listener_new(.path = abs);
        mp_listener *b = mp_listener_new(.path = "b");
        if (a == NULL || b == NULL)
            return 9;
        mp_listener_free(a);
        mp_listener_free(b);
    }
}

/* ---- random-kills: creators, attachers and a reader of segments ----------- */

enum { RK_WRITERS = 3, RK_ATTACHERS = 2, RK_WORDS = 32 };

/* A record: seq odd while a writer is in it; words all equal v, sum = the
 * sum of a hash of each word. */
struct rk_rec {
    uint64_t seq;
    uint64_t words[RK_WORDS];
    uint64_t sum;
};

/* A writer's slot in the family's shared table: its current segment's name,
 * under a seqlock of its own. */
struct rk_slot {
    uint64_t seq;
    char name[64];
};

struct rk_table {
    struct rk_slot slot[RK_WRITERS];
    uint64_t creating[RK_WRITERS]; /* a writer is inside mp_shared_memory_new */
    uint64_t reads, torn, stuck, created, unlinked, stop;
};

struct rk_arg {
    struct rk_table *t;
    int slot;
    uint64_t seed;
};

static uint64_t rk_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static uint64_t rk_hash(uint64_t x)
{
    return (x + 0x9e3779b97f4a7c15ull) * 0xbf58476d1ce4e5b9ull;
}

static bool rk_stopped(struct rk_table *t)
{
    return __atomic_load_n(&t->stop, __ATOMIC_SEQ_CST) != 0;
}

static void rk_write_rec(struct rk_rec *r, uint64_t v)
{
    uint64_t s = __atomic_load_n(&r->seq, __ATOMIC_RELAXED);
    __atomic_store_n(&r->seq, s | 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    uint64_t sum = 0;
    for (int i = 0; i < RK_WORDS; i++) {
        __atomic_store_n(&r->words[i], v, __ATOMIC_RELAXED);
        sum += rk_hash(v);
    }
    __atomic_store_n(&r->sum, sum, __ATOMIC_RELAXED);
    __atomic_store_n(&r->seq, (s | 1) + 1, __ATOMIC_RELEASE);
}

/* 1 for a consistent read, 0 for a torn one, -1 when a writer never left
 * (killed inside the record). */
static int rk_read_rec(struct rk_rec *r)
{
    for (int tries = 0; tries < 100000; tries++) {
        uint64_t s1 = __atomic_load_n(&r->seq, __ATOMIC_ACQUIRE);
        if (s1 & 1)
            continue;
        uint64_t w[RK_WORDS], sum;
        for (int i = 0; i < RK_WORDS; i++)
            w[i] = __atomic_load_n(&r->words[i], __ATOMIC_RELAXED);
        sum = __atomic_load_n(&r->sum, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&r->seq, __ATOMIC_RELAXED) != s1)
            continue;
        uint64_t want = 0;
        for (int i = 0; i < RK_WORDS; i++) {
            if (w[i] != w[0])
                return 0;
            want += rk_hash(w[i]);
        }
        return s1 == 0 || sum == want;
    }
    return -1;
}

static void rk_publish(struct rk_slot *s, const char *name)
{
    uint64_t q = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
    __atomic_store_n(&s->seq, q | 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    for (int i = 0; i < 64; i++)
        __atomic_store_n(&s->name[i], name[i], __ATOMIC_RELAXED);
    __atomic_store_n(&s->seq, (q | 1) + 1, __ATOMIC_RELEASE);
}

static bool rk_read_name(struct rk_slot *s, char *out)
{
    for (int tries = 0; tries < 1000; tries++) {
        uint64_t q = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        if (q & 1)
            continue;
        for (int i = 0; i < 64; i++)
            out[i] = __atomic_load_n(&s->name[i], __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) == q)
            return out[63] == 0 && out[0] != 0;
    }
    return false;
}

/* Create a tracked segment, publish it, write records into it, then
 * unpublish, close and unlink it; again and again. */
static int rk_writer(void *arg, size_t size)
{
    struct rk_arg *a = arg;
    struct rk_table *t = a->t;
    uint64_t rng = a->seed | 1;
    char empty[64] = {0};
    while (!rk_stopped(t)) {
        __atomic_store_n(&t->creating[a->slot], 1, __ATOMIC_SEQ_CST);
        mp_shared_memory *s = mp_shared_memory_new(.create = true, .size = 4096);
        __atomic_store_n(&t->creating[a->slot], 0, __ATOMIC_SEQ_CST);
        if (s == NULL)
            return 20;
        __atomic_fetch_add(&t->created, 1, __ATOMIC_SEQ_CST);
        struct rk_rec *r = mp_shared_memory_buf(s);
        if (r == NULL)
            return 21;
        char name[64] = {0};
        snprintf(name, sizeof name, "%s", mp_shared_memory_name(s));
        rk_publish(&t->slot[a->slot], name);
        int n = (int)(rk_rand(&rng) % 2000);
        for (int i = 0; i < n; i++)
            rk_write_rec(r, rk_rand(&rng));
        rk_publish(&t->slot[a->slot], empty);
        if (mp_shared_memory_close(s) != 0)
            return 22;
        if (mp_shared_memory_unlink(s) != 0)
            return 23;
        __atomic_fetch_add(&t->unlinked, 1, __ATOMIC_SEQ_CST);
        mp_shared_memory_free(s);
    }
    return 0;
}

/* Attach to a published segment, read its record, close. */
static int rk_attacher(void *arg, size_t size)
{
    struct rk_arg *a = arg;
    struct rk_table *t = a->t;
    uint64_t rng = a->seed | 1;
    while (!rk_stopped(t)) {
        char name[64];
        if (!rk_read_name(&t->slot[rk_rand(&rng) % RK_WRITERS], name))
            continue;
        mp_shared_memory *s = mp_shared_memory_new(.name = name);
        if (s == NULL) {
            if (mp_last_error() != -ENOENT)
                return 30;
            continue;
        }
        struct rk_rec *r = mp_shared_memory_buf(s);
        for (int i = 0; r != NULL && i < 50; i++) {
            int ok = rk_read_rec(r);
            __atomic_fetch_add(ok > 0    ? &t->reads
                               : ok == 0 ? &t->torn
                                         : &t->stuck,
                               1, __ATOMIC_SEQ_CST);
            if (ok <= 0)
                break;
        }
        mp_shared_memory_free(s);
    }
    return 0;
}

static double rk_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int count_own_shm(void)
{
    char prefix[32];
    snprintf(prefix, sizeof prefix, "mp_%x_", (unsigned)getpid());
    DIR *d = opendir("/dev/shm");
    int n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d != NULL)
        closedir(d);
    return n;
}

/*
 * Writers and attachers SIGKILLed at random for 1.5 seconds and at least
 * 12 times, one attacher never; then everyone stops.  Prints "kills K
 * in-create W created C unlinked U reads R stuck S torn T left L" (W:
 * kills of a writer inside
 * mp_shared_memory_new; S: reads given up because a writer stayed inside
 * the record, killed there or slow; L: this family's names still there,
 * which its tracker removes when the family ends).  Exits 0, or 40 + n.
 */
static int random_kills(const char *seed_text)
{
    uint64_t rng = strtoull(seed_text, NULL, 10) | 1;
    struct rk_table *t = mp_shared_alloc(sizeof *t);
    if (t == NULL)
        return 40;
    /* With RK_ROOT_TRACKER the root starts the family's tracker, which
     * every child then shares; without, each writer starts its own. */
    if (getenv("RK_ROOT_TRACKER") != NULL) {
        mp_shared_memory *s0 = mp_shared_memory_new(.create = true, .size = 64);
        if (s0 == NULL || mp_shared_memory_unlink(s0) != 0)
            return 49;
        mp_shared_memory_free(s0);
    }
    enum { N = RK_WRITERS + RK_ATTACHERS + 1 };
    mp_process *ps[N];
    struct rk_arg args[N];
    for (int i = 0; i < N; i++) {
        args[i] = (struct rk_arg){t, i % RK_WRITERS, rk_rand(&rng)};
        ps[i] = mp_process_new(.target = i < RK_WRITERS ? rk_writer : rk_attacher,
                               .arg = &args[i], .arg_size = sizeof args[i]);
        if (ps[i] == NULL || mp_process_start(ps[i]) != 0)
            return 41;
    }
    int kills = 0, in_create = 0;
    double t0 = rk_now();
    /* At least 12 kills however loaded the machine (a kill, its join and
     * the restart take longer there), within 20 s. */
    while (rk_now() - t0 < 1.5 || (kills < 12 && rk_now() - t0 < 20)) {
        usleep((useconds_t)(1000 + rk_rand(&rng) % 30000));
        int v = (int)(rk_rand(&rng) % (N - 1)); /* the last attacher is never killed */
        if (mp_process_kill(ps[v]) != 0 || mp_process_join(ps[v], 10) != 0)
            return 42;
        int code = 0;
        if (mp_process_exitcode(ps[v], &code) != 0 || code != -SIGKILL)
            return 43;
        mp_process_free(ps[v]);
        kills++;
        if (v < RK_WRITERS && __atomic_exchange_n(&t->creating[v], 0, __ATOMIC_SEQ_CST) != 0)
            in_create++;
        args[v].seed = rk_rand(&rng);
        ps[v] = mp_process_new(.target = v < RK_WRITERS ? rk_writer : rk_attacher,
                               .arg = &args[v], .arg_size = sizeof args[v]);
        if (ps[v] == NULL || mp_process_start(ps[v]) != 0)
            return 44;
    }
    __atomic_store_n(&t->stop, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < N; i++) {
        int code = -1;
        if (mp_process_join(ps[i], 30) != 0 || mp_process_exitcode(ps[i], &code) != 0)
            return 45;
        if (code != 0) {
            fprintf(stderr, "shm_peer random-kills: process %d exited with %d\n", i, code);
            return 46;
        }
        mp_process_free(ps[i]);
    }
    printf("kills %d in-create %d created %llu unlinked %llu reads %llu stuck %llu torn %llu "
           "left %d\n",
           kills, in_create, (unsigned long long)t->created, (unsigned long long)t->unlinked,
           (unsigned long long)t->reads, (unsigned long long)t->stuck,
           (unsigned long long)t->torn, count_own_shm());
    fflush(stdout);
    return t->torn != 0 ? 47 : t->reads == 0 ? 48 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "random-kills") == 0)
        return random_kills(argv[2]);
    if (argc == 3 && strcmp(argv[1], "sock-churn") == 0)
        return sock_churn(argv[2]);
    if (argc == 3 && strcmp(argv[1], "busy") == 0)
        return busy(argv[2]);
    if (argc == 4 && strcmp(argv[1], "family") == 0)
        return family(argv[2], argv[3]);
    if (argc != 3)
        return 2;
    if (strcmp(argv[1], "attach") == 0) {
        mp_shared_memory *s = mp_shared_memory_new(.name = argv[2]);
        if (s == NULL)
            return 3;
        char *buf = mp_shared_memory_buf(s);
        if (buf == NULL || mp_shared_memory_size(s) < 8 || memcmp(buf, "ping", 4) != 0)
            return 4;
        memcpy(buf + 4, "pong", 4);
        mp_shared_memory_free(s);
        return 0;
    }
    if (strcmp(argv[1], "smm-die") == 0) {
        mp_shm_manager *m = mp_shm_manager_new();
        mp_shared_memory *s = mp_shm_manager_shared_memory(m, 4096);
        mp_shareable_list *l = mp_shm_manager_shareable_list(m,
                                                             MP_LIST(MP_I64(1), MP_STR("x")));
        FILE *f = fopen(argv[2], "w");
        if (m == NULL || s == NULL || l == NULL || f == NULL)
            return 7;
        fprintf(f, "%s\n%s\n", mp_shared_memory_name(s), mp_shareable_list_name(l));
        fclose(f);
        raise(SIGKILL);
        return 6;
    }
    bool notrack = strcmp(argv[1], "die-notrack") == 0;
    if (!notrack && strcmp(argv[1], "die") != 0)
        return 2;
    mp_shared_memory *s = mp_shared_memory_new(.name = argv[2], .create = true, .size = 4096,
                                               .notrack = notrack);
    if (s == NULL)
        return 5;
    raise(SIGKILL);
    return 6;
}
