/*
 * pool_mpi.c: the parent side of the MPI pool (internal/mpi.h).
 *
 * mp_pool_new with the "mpi" context starts the workers here (spawn or
 * world mode), checks their build and runs the initializer on each, then
 * makes a thread pool whose thread w is the proxy of worker w: it claims
 * chunks like any worker and calls mp__mpi_run_chunk, which sends the
 * chunk's inputs to the worker in one message and writes the reply where a
 * local worker would have written its outputs.
 */
#define MP__HAVE_MPI_H 1
#include "internal/mp.h"
#include "internal/mpi.h"
#include "internal/pool.h"
#include "internal/spawn.h"
#include "internal/util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_BATCHES 2
#define BATCH_MAX 1024 /* chunks per message */
#define BUDGET_NS 1000000
#define PAIR_NS 10000000
#define BATCH_BYTES (256 * 1024)

struct mp__mpi_batch {
    uint32_t n;
    uint64_t c[BATCH_MAX];
    MPI_Request req;
    char *buf;
    size_t cap;
};

struct mpi_worker {
    int rank; /* in comm's remote group (spawn) or world rank */
    int pid;
    int init_code;
    bool dead;
    bool leaked;       /* a batch's buffer may still be MPI's */
    uint64_t last_job; /* the job whose .arg the worker holds */
    uint64_t run_ns;   /* the worker's time for the last reply's items */
    char *buf;         /* the worker's replies (its proxy only) */
    size_t cap;
    struct mp__mpi_batch *b; /* the messages in flight */
    char host[64];
};

/*
 * Spawned workers are kept for the next pool of the process and ended at
 * its exit: with Open MPI 4.1 and PMIx 4, a process that calls
 * MPI_Comm_spawn again and again hangs now and then inside it (openpmix
 * issue 2735), and a spawn costs a good part of a second anyway.
 */
struct group {
    MPI_Comm comm;
    uint32_t n;
    bool busy;
    char exe[PATH_MAX];
    struct group *next;
};

static pthread_mutex_t groups_lock = PTHREAD_MUTEX_INITIALIZER;
static struct group *groups;

struct mp__mpipool {
    MPI_Comm comm;
    bool spawned;
    bool stopped;
    bool spoiled; /* a worker refused or died: do not reuse them */
    uint32_t n;
    struct mpi_worker *w;
    int *world_ranks;
    struct group *g;
};

/* ---- starting ----------------------------------------------------------------- */

/* Send EXIT to the group's workers and let them go. */
static void group_end(struct group *g)
{
    char none = 0;
    mp__mpi_lock();
    for (uint32_t i = 0; i < g->n; i++)
        MPI_Send(&none, 1, MPI_BYTE, (int)i, MP__MPI_TAG_EXIT, g->comm);
    MPI_Comm_disconnect(&g->comm);
    mp__mpi_unlock();
    free(g);
}

void mp__mpi_spawned_exit_all(void)
{
    pthread_mutex_lock(&groups_lock);
    struct group *g = groups;
    groups = NULL;
    pthread_mutex_unlock(&groups_lock);
    while (g != NULL) {
        struct group *next = g->next;
        group_end(g);
        g = next;
    }
}

/* An idle group of at least n workers of exe, taken; or NULL. */
static struct group *group_take(const char *exe, uint32_t n)
{
    pthread_mutex_lock(&groups_lock);
    struct group *best = NULL;
    for (struct group *g = groups; g != NULL; g = g->next)
        if (!g->busy && g->n >= n && strcmp(g->exe, exe) == 0 &&
            (best == NULL || g->n < best->n))
            best = g;
    if (best != NULL)
        best->busy = true;
    pthread_mutex_unlock(&groups_lock);
    return best;
}

/* Give g back for reuse, or end its workers when spoiled. */
static void group_put(struct group *g, bool spoiled)
{
    pthread_mutex_lock(&groups_lock);
    if (spoiled) {
        for (struct group **pp = &groups; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == g) {
                *pp = g->next;
                break;
            }
        }
    } else {
        g->busy = false;
    }
    pthread_mutex_unlock(&groups_lock);
    if (spoiled)
        group_end(g);
}

static int spawn_workers(struct mp__mpipool *M, uint32_t n)
{
    if (!mp__mpi_workers_boot()) {
        mp__warn("MPI pool: a spawned worker would run main (no start-up hook: call "
                 "mp_mpi_main or mp_spawn_main at the top of main)");
        return MP_ESPAWNMAIN;
    }
    char exe[PATH_MAX];
    mp__spawn_executable(exe);
    if (strcmp(exe, "/proc/self/exe") == 0) {
        ssize_t l = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (l <= 0)
            return mp__errno();
        exe[l] = '\0';
    }
    struct group *g = group_take(exe, n);
    if (g != NULL) {
        M->g = g;
        M->comm = g->comm;
        M->spawned = true;
        for (uint32_t i = 0; i < n; i++)
            M->w[i].rank = (int)i;
        return 0;
    }
    g = calloc(1, sizeof *g);
    if (g == NULL)
        return -ENOMEM;
    snprintf(g->exe, sizeof g->exe, "%s", exe);
    char arg0[] = MP__MPI_WORKER_ARG;
    char *args[] = {arg0, NULL};
    int *errs = calloc(n, sizeof *errs);
    if (errs == NULL)
        return -ENOMEM;
    mp__mpi_lock();
    MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN);
    int rc = MPI_Comm_spawn(exe, args, (int)n, MPI_INFO_NULL, 0, MPI_COMM_SELF, &M->comm,
                            errs);
    mp__mpi_unlock();
    int r = 0;
    if (rc != MPI_SUCCESS) {
        r = -EAGAIN;
    } else {
        for (uint32_t i = 0; i < n; i++)
            if (errs[i] != MPI_SUCCESS)
                r = -EAGAIN;
    }
    free(errs);
    if (r != 0) {
        mp__warn("MPI_Comm_spawn of %u workers of %s failed", n, exe);
        if (rc == MPI_SUCCESS) {
            MPI_Comm_disconnect(&M->comm);
            M->comm = MPI_COMM_NULL;
        }
        free(g);
        return r;
    }
    MPI_Comm_set_errhandler(M->comm, MPI_ERRORS_RETURN);
    g->comm = M->comm;
    g->n = n;
    g->busy = true;
    pthread_mutex_lock(&groups_lock);
    g->next = groups;
    groups = g;
    pthread_mutex_unlock(&groups_lock);
    M->g = g;
    M->spawned = true;
    for (uint32_t i = 0; i < n; i++)
        M->w[i].rank = (int)i;
    return 0;
}

static int take_world(struct mp__mpipool *M, MPI_Comm world, uint32_t *n)
{
    int size;
    MPI_Comm_size(world, &size);
    M->world_ranks = calloc((size_t)size, sizeof *M->world_ranks);
    if (M->world_ranks == NULL)
        return -ENOMEM;
    uint32_t got = mp__mpi_world_take(*n, M->world_ranks, (uint32_t)size);
    if (got == 0 || (*n != 0 && got < *n)) {
        mp__mpi_world_put(M->world_ranks, got);
        free(M->world_ranks);
        M->world_ranks = NULL;
        mp__warn("MPI pool: %u worker ranks asked for, %u free in MPI_COMM_WORLD", *n, got);
        return MP_EINVAL;
    }
    *n = got;
    M->comm = world;
    for (uint32_t i = 0; i < got; i++)
        M->w[i].rank = M->world_ranks[i];
    return 0;
}

static uint32_t default_workers(void)
{
    int *usize = NULL, flag = 0;
    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_UNIVERSE_SIZE, &usize, &flag);
    if (flag && usize != NULL && *usize > 1)
        return (uint32_t)*usize - 1;
    return (uint32_t)mp_cpu_count();
}

/* Send the start message to every worker and collect the answers. */
static int hello(struct mp__mpipool *M, const mp_pool_options *o)
{
    mp__fnref init;
    if (mp__fnref_make(&init, (void (*)(void))o->initializer) != 0)
        return MP_EINVAL;
    size_t len = sizeof(mp__mpi_hello) + o->initarg_size;
    mp__mpi_hello *h = calloc(1, len);
    if (h == NULL)
        return -ENOMEM;
    h->magic = MP__MPI_MAGIC;
    h->arena_lo = mp__arena_lo;
    h->arena_len = mp__arena_len;
    h->init = init;
    h->initarg_size = o->initarg_size;
    h->nmods = mp__mpi_modules(h->mods, MP__MPI_MAX_MODS);
    if (o->initarg_size > 0)
        memcpy(h + 1, o->initarg, o->initarg_size);
    int r = 0;
    for (uint32_t i = 0; i < M->n && r == 0; i++) {
        mp__mpi_lock();
        if (MPI_Send(h, (int)len, MPI_BYTE, M->w[i].rank, MP__MPI_TAG_HELLO, M->comm) !=
            MPI_SUCCESS)
            r = -EIO;
        mp__mpi_unlock();
    }
    free(h);
    /* Every answer is taken, also after a refusal: none stays unreceived. */
    for (uint32_t i = 0; i < M->n && r != -EIO; i++) {
        struct mpi_worker *W = &M->w[i];
        mp__mpi_ack a;
        MPI_Status st;
        if (mp__mpi_wait(M->comm, W->rank, MP__MPI_TAG_ACK, &st) != 0) {
            r = -EIO;
            break;
        }
        mp__mpi_lock();
        int rc = MPI_Recv(&a, (int)sizeof a, MPI_BYTE, W->rank, MP__MPI_TAG_ACK, M->comm,
                          MPI_STATUS_IGNORE);
        mp__mpi_unlock();
        if (rc != MPI_SUCCESS) {
            r = -EIO;
            break;
        }
        a.host[sizeof a.host - 1] = '\0';
        a.msg[sizeof a.msg - 1] = '\0';
        W->pid = a.pid;
        memcpy(W->host, a.host, sizeof W->host);
        W->init_code = a.code;
        if (a.refused) {
            M->spoiled = true;
            mp__warn("MPI worker %d (pid %d on %s) refused the pool: %s", W->rank, a.pid,
                     a.host, a.msg);
            if (r == 0)
                r = a.code < 0 ? a.code : MP_EINVAL;
        }
    }
    return r;
}

static void send_end(struct mp__mpipool *M)
{
    char none = 0;
    for (uint32_t i = 0; i < M->n; i++) {
        if (M->w[i].dead)
            continue;
        mp__mpi_lock();
        MPI_Send(&none, 1, MPI_BYTE, M->w[i].rank, MP__MPI_TAG_END, M->comm);
        mp__mpi_unlock();
    }
}

void mp__mpi_pool_stop(struct mp__mpipool *M)
{
    if (M == NULL || M->stopped)
        return;
    M->stopped = true;
    if (M->comm == MPI_COMM_NULL)
        return;
    send_end(M);
    if (M->spawned) {
        for (uint32_t i = 0; i < M->n; i++)
            M->spoiled |= M->w[i].dead;
        group_put(M->g, M->spoiled);
        M->g = NULL;
    } else {
        mp__mpi_world_put(M->world_ranks, M->n);
    }
    M->comm = MPI_COMM_NULL;
}

void mp__mpi_pool_free(struct mp__mpipool *M)
{
    if (M == NULL)
        return;
    mp__mpi_pool_stop(M);
    for (uint32_t i = 0; i < M->n; i++) {
        struct mpi_worker *W = &M->w[i];
        free(W->buf);
        for (unsigned k = 0; W->b != NULL && k < MAX_BATCHES; k++)
            if (!W->leaked)
                free(W->b[k].buf);
        free(W->b);
    }
    free(M->w);
    free(M->world_ranks);
    free(M);
}

struct mp__mpipool *mp__mpi_pool_open(const mp_pool_options *o, uint32_t *n)
{
    int r = mp__mpi_init(NULL, NULL);
    if (r != 0)
        return mp__fail_null(r);
    struct mp__mpipool *M = calloc(1, sizeof *M);
    if (M == NULL)
        return mp__fail_null(-ENOMEM);
    M->comm = MPI_COMM_NULL;
    MPI_Comm world = mp__mpi_world();
    uint32_t want = *n;
    if (world == MPI_COMM_NULL && want == 0)
        want = default_workers();
    if (world != MPI_COMM_NULL) {
        int size;
        MPI_Comm_size(world, &size);
        M->n = (uint32_t)size;
    } else {
        M->n = want;
    }
    if (M->n > MP__POOL_MAX_WORKERS)
        M->n = MP__POOL_MAX_WORKERS;
    M->w = calloc(M->n ? M->n : 1, sizeof *M->w);
    if (M->w == NULL) {
        free(M);
        return mp__fail_null(-ENOMEM);
    }

    if (world != MPI_COMM_NULL) {
        r = take_world(M, world, &want);
        M->n = want;
    } else {
        M->n = want;
        r = spawn_workers(M, want);
    }
    if (r != 0) {
        M->stopped = true;
        M->n = 0;
        mp__mpi_pool_free(M);
        return mp__fail_null(r);
    }
    for (uint32_t i = 0; i < M->n && r == 0; i++) {
        M->w[i].b = calloc(MAX_BATCHES, sizeof *M->w[i].b);
        if (M->w[i].b == NULL)
            r = -ENOMEM;
        for (unsigned k = 0; r == 0 && k < MAX_BATCHES; k++)
            M->w[i].b[k].req = MPI_REQUEST_NULL;
    }
    mp__heap_init(); /* the arena's range goes to the workers */
    if (r == 0)
        r = hello(M, o);
    if (r != 0) {
        mp__mpi_pool_free(M);
        return mp__fail_null(r);
    }
    *n = M->n;
    return M;
}

int mp__mpi_pool_init_code(struct mp_pool *pool, uint32_t w)
{
    struct mp__mpipool *M = pool->mpi;
    for (;;) {
        uint32_t seq = MP__LD(&pool->work_seq);
        uint32_t st = MP__LD(&pool->state);
        if (!M->w[w].dead || st == MP__P_TERMINATE ||
            (st == MP__P_CLOSE && !mp__pool_work_left(pool)))
            break;
        mp__deadline d;
        mp__deadline_init(&d, 0.1);
        mp__futex_wait(&pool->work_seq, seq, &d);
    }
    return M->w[w].init_code;
}

bool mp__mpi_worker_dead(struct mp__mpipool *M, uint32_t w)
{
    return __atomic_load_n(&M->w[w].dead, __ATOMIC_RELAXED);
}

/* ---- running chunks ------------------------------------------------------------ */

/*
 * A map's chunks travel in batches: one message carries the inputs of
 * several chunks and one reply brings their outputs, so that chunksize 1
 * does not cost a round trip per item.  Up to MAX_BATCHES messages are in
 * flight per worker (it runs one while the next is on its way), holding at
 * most lim chunks in all.  lim starts at 2 and follows the worker's own
 * time per chunk (sent back with each reply): a worker holds about
 * BUDGET_NS of queued work, which bounds how much longer one worker can
 * run than the others at the end of a map.  A message carries
 * at most BATCH_BYTES of inputs and outputs beyond its first chunk.
 * Messages are sent with MPI_Isend: a large one waits for the worker to
 * take it, while the worker may itself be sending its previous reply.
 */

static size_t chunk_lo(const mp__pjob *j, uint64_t c)
{
    return (size_t)c * j->chunksize;
}

static size_t chunk_items(const mp__pjob *j, uint64_t c)
{
    size_t lo = chunk_lo(j, c);
    return (lo + j->chunksize < j->n ? lo + j->chunksize : j->n) - lo;
}

/* Bytes of one input item of a fixed-size job (all columns of a starmap). */
static size_t item_in_bytes(const mp__pjob *j)
{
    if (!(j->flags & MP__JF_STAR))
        return j->in_size;
    size_t b = 0;
    for (uint32_t k = 0; k < j->ncols; k++)
        b += j->cols[k].size;
    return b;
}

/* The worker is gone (MPI said so): chunk c of j is lost. */
static void lose(struct mp_pool *pool, mp__pjob *j, uint64_t c, struct mpi_worker *W)
{
    struct mp__mpipool *M = pool->mpi;
    bool first = !W->dead;
    W->dead = true;
    char msg[MP__POOL_MSG];
    snprintf(msg, sizeof msg, "MPI worker %d (pid %d on %s) failed while running the task",
             W->rank, W->pid, W->host);
    mp__pool_chunk_lost(pool, j, c, W->pid, 1, msg);
    if (first)
        mp__warn("%s", msg);
    uint32_t alive = 0;
    for (uint32_t i = 0; i < M->n; i++)
        alive += !M->w[i].dead;
    if (alive == 0) {
        int32_t zero = 0;
        if (MP__CAS(&pool->broken, &zero, MP_EWORKERLOST))
            mp__pool_cancel_all(pool, MP_EWORKERLOST);
    }
}

static void lose_batch(struct mp_pool *pool, mp__pjob *j, struct mp__mpi_batch *b,
                       struct mpi_worker *W)
{
    if (b->req != MPI_REQUEST_NULL) {
        mp__mpi_lock();
        MPI_Request_free(&b->req);
        mp__mpi_unlock();
        /* MPI may still read the buffer: it goes with the pool. */
        W->leaked = true;
    }
    for (uint32_t i = 0; i < b->n; i++)
        lose(pool, j, b->c[i], W);
}

/* Build the message of batch b of j in b->buf; its length, or 0 (no
 * memory), or SIZE_MAX (too large for one MPI message). */
static size_t pack(mp__pjob *j, struct mp__mpi_batch *b, struct mpi_worker *W)
{
    mp__mpi_task t;
    memset(&t, 0, sizeof t);
    t.flags = j->flags;
    t.fn = j->fn;
    t.job = j->hdr.id;
    t.arg_size = j->arg_size;
    t.has_arg = j->arg_size > 0 && W->last_job != j->hdr.id;
    t.in_size = j->in_size;
    t.out_size = j->out_size;
    size_t nitems = 0, reply = sizeof(mp__mpi_result);
    if (j->kind == MP__K_FIXED) {
        for (uint32_t i = 0; i < b->n; i++)
            nitems += chunk_items(j, b->c[i]);
        t.op = j->flags & MP__JF_STAR ? MP__MPI_OP_STAR : MP__MPI_OP_FIXED;
        t.ncols = t.op == MP__MPI_OP_STAR ? j->ncols : 0;
        for (uint32_t k = 0; k < t.ncols; k++)
            t.col_size[k] = j->cols[k].size;
        t.in_len = nitems * item_in_bytes(j);
        reply += nitems * (j->out_size + sizeof(int32_t));
    } else {
        mp__pslot *s = &j->slots[b->c[0] % j->nslots];
        t.op = MP__MPI_OP_SLOTS;
        nitems = s->nitems;
        t.in_len = s->in_len;
    }
    t.nitems = (uint32_t)nitems;
    size_t len = sizeof t + (t.has_arg ? t.arg_size : 0) + t.in_len;
    if (len > INT_MAX || reply > INT_MAX || nitems > UINT32_MAX)
        return SIZE_MAX;
    if (!mp__mpi_grow(&b->buf, &b->cap, len))
        return 0;
    char *p = b->buf;
    memcpy(p, &t, sizeof t);
    p += sizeof t;
    if (t.has_arg) {
        memcpy(p, j->arg, j->arg_size);
        p += j->arg_size;
    }
    if (t.op == MP__MPI_OP_SLOTS) {
        if (t.in_len > 0)
            memcpy(p, j->slots[b->c[0] % j->nslots].in, t.in_len);
    } else if (t.op == MP__MPI_OP_FIXED) {
        for (uint32_t i = 0; i < b->n; i++) {
            size_t bytes = chunk_items(j, b->c[i]) * j->in_size;
            memcpy(p, j->in + chunk_lo(j, b->c[i]) * j->in_size, bytes);
            p += bytes;
        }
    } else {
        for (uint32_t k = 0; k < j->ncols; k++) {
            size_t sz = j->cols[k].size;
            for (uint32_t i = 0; i < b->n; i++) {
                size_t bytes = chunk_items(j, b->c[i]) * sz;
                memcpy(p, j->cols[k].p + chunk_lo(j, b->c[i]) * sz, bytes);
                p += bytes;
            }
        }
    }
    return len;
}

/* A slot's reply (one chunk, c) into the slot. */
static void unpack_slot(mp__pjob *j, uint64_t c, const mp__mpi_result *res, const char *data)
{
    mp__pslot *s = &j->slots[c % j->nslots];
    s->chunk_code = res->chunk_code;
    if (res->out_len == 0) {
        s->out = NULL;
    } else if (res->out_len <= sizeof s->out_inline) {
        memcpy(s->out_inline, data, res->out_len);
        s->out = s->out_inline;
    } else {
        char *o = mp__alloc(res->out_len);
        if (o == NULL) {
            s->out = NULL;
            s->out_len = 0;
            s->chunk_code = -ENOMEM;
            MP__ST(&s->state, mp__cs(c, MP__CS_ERR));
            return;
        }
        memcpy(o, data, res->out_len);
        s->out = o;
    }
    s->out_len = s->out != NULL ? res->out_len : 0;
    if (s->out == NULL && s->chunk_code == 0)
        s->chunk_code = -ENOMEM;
    MP__ST(mp__chunk_state(j, c), mp__cs(c, res->failed ? MP__CS_ERR : MP__CS_OK));
}

/* Write the worker's reply to batch b (in W->buf, len bytes) into its
 * chunks; false when the reply is malformed. */
static bool unpack(struct mp_pool *pool, mp__pjob *j, struct mp__mpi_batch *b,
                   struct mpi_worker *W, size_t len)
{
    mp__mpi_result res;
    if (len < sizeof res)
        return false;
    memcpy(&res, W->buf, sizeof res);
    const char *data = W->buf + sizeof res;
    if (len - sizeof res < res.out_len)
        return false;
    W->run_ns = res.run_ns;
    if (j->kind != MP__K_FIXED) {
        unpack_slot(j, b->c[0], &res, data);
        return true;
    }
    size_t nitems = 0;
    for (uint32_t i = 0; i < b->n; i++)
        nitems += chunk_items(j, b->c[i]);
    size_t ob = nitems * j->out_size;
    bool failed = res.failed != 0;
    if (res.out_len < ob + (failed ? nitems * sizeof(int32_t) : 0) ||
        (failed && (res.err_index < 0 || (uint64_t)res.err_index >= nitems)))
        return false;
    const char *codes = data + ob; /* int32 each, perhaps unaligned */
    size_t at = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        uint64_t c = b->c[i];
        size_t lo = chunk_lo(j, c), k = chunk_items(j, c);
        memcpy(j->out + lo * j->out_size, data + at * j->out_size, k * j->out_size);
        bool bad = false;
        if (failed) {
            int32_t code;
            for (size_t x = 0; x < k && !bad; x++) {
                memcpy(&code, codes + (at + x) * sizeof code, sizeof code);
                bad = code != 0;
            }
            if (j->status != NULL)
                memcpy(j->status + lo, codes + at * sizeof(int32_t), k * sizeof(int32_t));
            /* The batch's first failure is the lowest index of its chunks
             * (claimed in increasing order). */
            if ((uint64_t)res.err_index >= at && (uint64_t)res.err_index < at + k) {
                res.err_msg[sizeof res.err_msg - 1] = '\0';
                mp__pool_record_error(pool, j, lo + ((size_t)res.err_index - at), res.err_code,
                                      res.err_msg);
            }
        } else if (j->status != NULL) {
            memset(j->status + lo, 0, k * sizeof(int32_t));
        }
        MP__ST(mp__chunk_state(j, c), mp__cs(c, bad ? MP__CS_ERR : MP__CS_OK));
        at += k;
    }
    return true;
}

/* Fail the chunks of b with code without sending them (they cannot be). */
static void fail_unsent(struct mp_pool *pool, mp__pjob *j, struct mp__mpi_batch *b, int code)
{
    for (uint32_t i = 0; i < b->n; i++) {
        uint64_t c = b->c[i];
        if (j->kind == MP__K_FIXED) {
            size_t lo = chunk_lo(j, c), hi = lo + chunk_items(j, c);
            if (j->status != NULL)
                for (size_t x = lo; x < hi; x++)
                    j->status[x] = code;
            mp__pool_record_error(pool, j, lo, code,
                                  "the chunk cannot be sent to the MPI worker");
        } else {
            mp__pslot *s = &j->slots[c % j->nslots];
            s->out = NULL;
            s->out_len = 0;
            s->chunk_code = code;
        }
        MP__ST(mp__chunk_state(j, c), mp__cs(c, MP__CS_ERR));
    }
}

/* Send batch b of j to W: 0, or 1 when its chunks were failed here, or -1
 * when the worker is gone (they are lost). */
static int send_batch(struct mp_pool *pool, mp__pjob *j, struct mp__mpi_batch *b,
                      struct mpi_worker *W)
{
    struct mp__mpipool *M = pool->mpi;
    b->req = MPI_REQUEST_NULL;
    if (W->dead) {
        lose_batch(pool, j, b, W);
        return -1;
    }
    size_t len = pack(j, b, W);
    if (len == 0 || len == SIZE_MAX) {
        fail_unsent(pool, j, b, len == 0 ? -ENOMEM : -EMSGSIZE);
        return 1;
    }
    mp__mpi_lock();
    int rc = MPI_Isend(b->buf, (int)len, MPI_BYTE, W->rank, MP__MPI_TAG_TASK, M->comm,
                       &b->req);
    mp__mpi_unlock();
    if (rc != MPI_SUCCESS) {
        b->req = MPI_REQUEST_NULL;
        lose_batch(pool, j, b, W);
        return -1;
    }
    if (j->arg_size > 0)
        W->last_job = j->hdr.id;
    return 0;
}

/* Take W's next reply, which is batch b's (replies come in order); the
 * sends of W's batches in flight progress meanwhile. */
static void take_reply(struct mp_pool *pool, mp__pjob *j, struct mp__mpi_batch *b,
                       struct mpi_worker *W)
{
    struct mp__mpipool *M = pool->mpi;
    MPI_Status st;
    int count = 0;
    MPI_Request *sends[MAX_BATCHES];
    for (unsigned k = 0; k < MAX_BATCHES; k++)
        sends[k] = &W->b[k].req;
    if (W->dead ||
        mp__mpi_wait_sends(M->comm, W->rank, MP__MPI_TAG_RESULT, &st, sends, MAX_BATCHES) !=
            0 ||
        MPI_Get_count(&st, MPI_BYTE, &count) != MPI_SUCCESS || count < 0 ||
        !mp__mpi_grow(&W->buf, &W->cap, (size_t)count + 1)) {
        lose_batch(pool, j, b, W);
        return;
    }
    mp__mpi_lock();
    int rc = MPI_Recv(W->buf, count, MPI_BYTE, W->rank, MP__MPI_TAG_RESULT, M->comm,
                      MPI_STATUS_IGNORE);
    /* The worker replied, so it has taken the message: this returns at once. */
    if (rc == MPI_SUCCESS)
        rc = MPI_Wait(&b->req, MPI_STATUS_IGNORE);
    mp__mpi_unlock();
    if (rc != MPI_SUCCESS || !unpack(pool, j, b, W, (size_t)count))
        lose_batch(pool, j, b, W);
}

/*
 * The window after a reply: about BUDGET_NS of the worker's time queued.
 * It grows at most 8 times per reply (from 2 to the largest in 4 replies:
 * on a busy machine a round trip costs milliseconds) and at most halves,
 * so that one odd batch does not swing it.
 */
static uint32_t next_lim(uint32_t lim, uint64_t run_ns, uint32_t nchunks)
{
    uint64_t per = run_ns / (nchunks ? nchunks : 1);
    uint64_t want = 1 + BUDGET_NS / (per ? per : 1);
    /* One chunk on its way while the worker runs another, up to PAIR_NS
     * per chunk: large chunks cost a transfer each way. */
    if (want < 2 && per <= PAIR_NS)
        want = 2;
    if (want > BATCH_MAX * MAX_BATCHES)
        want = BATCH_MAX * MAX_BATCHES;
    if (want > 8 * (uint64_t)lim)
        return 8 * lim;
    if (want < lim / 2)
        return lim / 2;
    return (uint32_t)want;
}

/* Count the chunks of b but c (the caller counts c). */
static void count_batch(struct mp_pool *pool, mp__pjob *j, struct mp__mpi_batch *b, uint64_t c,
                        mp__wrec *rec)
{
    uint64_t k = 0;
    for (uint32_t i = 0; i < b->n; i++)
        k += b->c[i] != c;
    mp__pool_chunks_counted(pool, j, rec, k);
}

/*
 * Fill batch b: c first when given, then chunks of j claimed while the
 * window and the message have room.  Only maps claim more: their chunks are
 * all published at once below nchunks, and the caller keeps the hazard on
 * j all along.
 */
static void fill(struct mp_pool *pool, mp__pjob *j, struct mp__mpi_batch *b, const uint64_t *c,
                 uint32_t room, bool *more, uint32_t w)
{
    b->n = 0;
    size_t bytes = 0,
           per = j->kind == MP__K_FIXED ? j->chunksize * (item_in_bytes(j) + j->out_size) : 0;
    if (c != NULL) {
        b->c[b->n++] = *c;
        bytes = per;
    }
    uint32_t cap = room < BATCH_MAX ? room : BATCH_MAX;
    while (*more && b->n < cap && (b->n == 0 || bytes + per <= BATCH_BYTES)) {
        uint64_t c2;
        if (MP__LDR(&pool->state) == MP__P_TERMINATE ||
            !mp__pool_claim(j, j->nchunks, w, &pool->recs[w], &c2)) {
            *more = false;
            break;
        }
        b->c[b->n++] = c2;
        bytes += per;
    }
}

void mp__mpi_run_chunk(struct mp_pool *pool, mp__pjob *j, uint64_t c, uint32_t w)
{
    struct mpi_worker *W = &pool->mpi->w[w];
    mp__wrec *rec = &pool->recs[w];
    struct mp__mpi_batch *B = W->b;
    unsigned head = 0, nb = 0;
    uint32_t inflight = 0, lim = 2;
    bool more = j->kind == MP__K_FIXED, first = true;
    for (;;) {
        while (nb < MAX_BATCHES && (first || (more && inflight < lim))) {
            struct mp__mpi_batch *b = &B[(head + nb) % MAX_BATCHES];
            /* Half the window per message, so that the two alternate. */
            uint32_t room = lim - inflight, half = (lim + MAX_BATCHES - 1) / MAX_BATCHES;
            fill(pool, j, b, first ? &c : NULL, room < half ? room : half, &more, w);
            first = false;
            if (b->n == 0)
                break;
            int r = send_batch(pool, j, b, W);
            if (r != 0) {
                count_batch(pool, j, b, c, rec);
                more = more && r > 0;
                continue;
            }
            inflight += b->n;
            nb++;
        }
        if (nb == 0)
            break;
        struct mp__mpi_batch *b = &B[head];
        take_reply(pool, j, b, W);
        head = (head + 1) % MAX_BATCHES;
        nb--;
        inflight -= b->n;
        count_batch(pool, j, b, c, rec);
        if (!W->dead)
            lim = next_lim(lim, W->run_ns, b->n);
    }
}
