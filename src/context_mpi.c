/*
 * context_mpi.c: MPI itself for the MPI pool, and the worker side.
 *
 * MPI is initialised by mp_mpi_main or by the first MPI pool, and, when
 * libmp initialised it, finalised by a finalizer at exit (after the pools:
 * they stop at priority 15).  A worker is a process that serves pools:
 *
 *   spawned  started by a pool with MPI_Comm_spawn and the argument
 *            MP__MPI_WORKER_ARG; it is taken over after the program's
 *            constructors, before main (mp__mpi_child_boot, called by
 *            libmp's __libc_start_main, mp_spawn_main or mp_mpi_main),
 *            serves the parent's pools through the parent
 *            intercommunicator (the parent reuses its spawned workers),
 *            and exits when the parent sends EXIT at its end.
 *   world    rank 1..N-1 of "mpiexec -n N" that called mp_mpi_main: it
 *            serves rank 0's pools one after the other until rank 0 sends
 *            EXIT (its finalizer), then finalises and exits.
 *
 * A worker holds no libmp state of the parent: no arena, no fds.  It
 * reserves (PROT_NONE) the address range of the parent's arena, so that a
 * task that follows a pointer to a libmp object faults there; that fault is
 * turned into MP_EINVAL for the task, and the worker goes on.
 */
#define MP__HAVE_MPI_H 1
#include "internal/mp.h"
#include "internal/mpi.h"
#include "internal/pool.h"
#include "internal/spawn.h"
#include "internal/util.h"

#include <elf.h>
#include <link.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t call_lock = PTHREAD_MUTEX_INITIALIZER;
static bool multiple; /* MPI_THREAD_MULTIPLE: no call_lock needed */
static bool we_init;  /* libmp called MPI_Init_thread */
static bool ready;
static MPI_Comm world = MPI_COMM_NULL;
static int world_size;
static uint8_t *world_busy; /* world ranks lent to a pool (rank 0's) */

void mp__mpi_lock(void)
{
    if (!multiple)
        pthread_mutex_lock(&call_lock);
}

void mp__mpi_unlock(void)
{
    if (!multiple)
        pthread_mutex_unlock(&call_lock);
}

/* ---- initialisation and the end ------------------------------------------- */

static void world_exit_all(void)
{
    if (world == MPI_COMM_NULL)
        return;
    int rank;
    MPI_Comm_rank(world, &rank);
    if (rank != 0)
        return;
    char none = 0;
    for (int r = 1; r < world_size; r++)
        MPI_Send(&none, 1, MPI_CHAR, r, MP__MPI_TAG_EXIT, world);
    MPI_Comm_free(&world);
    world = MPI_COMM_NULL;
}

static void mpi_at_exit(void *arg)
{
    int fin = 0;
    MPI_Finalized(&fin);
    if (fin)
        return;
    mp__mpi_spawned_exit_all();
    world_exit_all();
    if (we_init)
        MPI_Finalize();
}

int mp__mpi_init(int *argc, char ***argv)
{
    pthread_mutex_lock(&init_lock);
    int r = 0;
    if (!ready) {
        int init = 0, fin = 0, provided = MPI_THREAD_SINGLE;
        MPI_Finalized(&fin);
        MPI_Initialized(&init);
        if (fin) {
            r = MP_EINVAL;
        } else if (!init) {
            if (MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS)
                r = -EIO;
            else
                we_init = true;
        } else {
            MPI_Query_thread(&provided);
        }
        if (r == 0 && provided < MPI_THREAD_SERIALIZED) {
            mp__warn("MPI gives thread level %d: libmp's MPI pool needs "
                     "MPI_THREAD_SERIALIZED",
                     provided);
            r = MP_EINVAL;
        }
        if (r == 0) {
            multiple = provided >= MPI_THREAD_MULTIPLE;
            ready = true;
            if (mp_finalize(mpi_at_exit, NULL, -100) < 0)
                mp__debug("no finalizer for MPI");
        }
    }
    pthread_mutex_unlock(&init_lock);
    return r;
}

MPI_Comm mp__mpi_world(void)
{
    return world;
}

uint32_t mp__mpi_world_take(uint32_t want, int *ranks, uint32_t cap)
{
    uint32_t got = 0;
    pthread_mutex_lock(&init_lock);
    for (int r = 1; r < world_size && got < cap && (want == 0 || got < want); r++) {
        if (!world_busy[r]) {
            world_busy[r] = 1;
            ranks[got++] = r;
        }
    }
    pthread_mutex_unlock(&init_lock);
    return got;
}

void mp__mpi_world_put(const int *ranks, uint32_t n)
{
    pthread_mutex_lock(&init_lock);
    for (uint32_t i = 0; i < n; i++)
        world_busy[ranks[i]] = 0;
    pthread_mutex_unlock(&init_lock);
}

mp_context *mp__mpi_get_context(void)
{
    return mp__context_mpi();
}

/* ---- waiting without burning a cpu ------------------------------------------ */

/* Poll for 50 us, yield the cpu until 2 ms, then sleep up to 1 ms at a
 * time; never sleep while one of sends is not complete: MPI moves a large
 * message's data only inside MPI calls, so a sleeping sender would hold
 * its receiver up. */
#define SPIN_NS 50000
#define YIELD_NS 2000000

int mp__mpi_wait_sends(MPI_Comm comm, int src, int tag, MPI_Status *st,
                       MPI_Request *const *sends, unsigned nsends)
{
    uint64_t start = mp__now_ns();
    long nap = 1000;
    for (unsigned i = 0;; i++) {
        int flag = 0, rc = MPI_SUCCESS;
        bool sending = false;
        mp__mpi_lock();
        for (unsigned k = 0; k < nsends && rc == MPI_SUCCESS; k++) {
            if (*sends[k] == MPI_REQUEST_NULL)
                continue;
            int done = 0;
            rc = MPI_Test(sends[k], &done, MPI_STATUS_IGNORE);
            sending |= !done;
        }
        if (rc == MPI_SUCCESS)
            rc = MPI_Iprobe(src, tag, comm, &flag, st);
        mp__mpi_unlock();
        if (rc != MPI_SUCCESS)
            return -EIO;
        if (flag)
            return 0;
        uint64_t t = (i & 15) == 15 ? mp__now_ns() - start : 0;
        if (t < SPIN_NS) {
            mp__cpu_relax();
        } else if (t < YIELD_NS || sending) {
            sched_yield();
        } else {
            struct timespec ts = {0, nap};
            nanosleep(&ts, NULL);
            if (nap < 1000000)
                nap *= 2;
        }
    }
}

int mp__mpi_wait(MPI_Comm comm, int src, int tag, MPI_Status *st)
{
    return mp__mpi_wait_sends(comm, src, tag, st, NULL, 0);
}

/* ---- the modules and their build ids --------------------------------------- */

static uint64_t path_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a, as fnref.c */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

struct mods {
    mp__mpi_mod *v;
    uint32_t n, cap;
};

static int mods_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    struct mods *m = data;
    if (m->n >= m->cap)
        return 1;
    mp__mpi_mod *e = &m->v[m->n];
    memset(e, 0, sizeof *e);
    e->idlen = mp__module_build_id(info, e->id, MP__MPI_IDLEN);
    /* Only modules with a build id can be checked; the vdso has one too. */
    if (e->idlen > 0) {
        e->hash = path_hash(info->dlpi_name ? info->dlpi_name : "");
        m->n++;
    }
    return 0;
}

uint32_t mp__mpi_modules(mp__mpi_mod *v, uint32_t cap)
{
    struct mods m = {v, 0, cap};
    dl_iterate_phdr(mods_cb, &m);
    return m.n;
}

/*
 * The worker's check: the main program (the first entry of each table)
 * must be the same build, and so must every module both sides loaded under
 * the same path.  Returns 0 or MP_EINVAL with a message.
 */
static int check_build(const mp__mpi_hello *h, char *msg, size_t msize)
{
    static mp__mpi_mod mine[MP__MPI_MAX_MODS];
    uint32_t n = mp__mpi_modules(mine, MP__MPI_MAX_MODS);
    if (n == 0 || h->nmods == 0 || mine[0].idlen != h->mods[0].idlen ||
        memcmp(mine[0].id, h->mods[0].id, mine[0].idlen) != 0) {
        snprintf(msg, msize,
                 "the MPI worker runs another build of the program "
                 "(GNU build-id differs)");
        return MP_EINVAL;
    }
    for (uint32_t i = 1; i < n; i++) {
        for (uint32_t k = 1; k < h->nmods && k < MP__MPI_MAX_MODS; k++) {
            if (h->mods[k].hash != mine[i].hash)
                continue;
            if (h->mods[k].idlen != mine[i].idlen ||
                memcmp(h->mods[k].id, mine[i].id, mine[i].idlen) != 0) {
                snprintf(msg, msize,
                         "the MPI worker loaded another build of a "
                         "shared library (module %u, GNU build-id differs)",
                         i);
                return MP_EINVAL;
            }
        }
    }
    return 0;
}

/* ---- the worker ------------------------------------------------------------- */

static sigjmp_buf fault_jmp;
static volatile sig_atomic_t guarding;
static uintptr_t guard_lo, guard_len;
static volatile uintptr_t fault_addr;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    uintptr_t a = (uintptr_t)si->si_addr;
    if (guarding && a - guard_lo < guard_len) {
        guarding = 0;
        fault_addr = a;
        siglongjmp(fault_jmp, 1);
    }
    /* Not ours: the default action, when the faulting access is retried. */
    signal(sig, SIG_DFL);
}

static void guard_setup(uintptr_t lo, uintptr_t len)
{
    if (len == 0 || guard_len != 0)
        return;
    void *p = mmap((void *)lo, len, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED || p != (void *)lo) {
        if (p != MAP_FAILED)
            munmap(p, len);
        /* Something of this process is there already: no detection. */
        return;
    }
    guard_lo = lo;
    guard_len = len;
    static char altstack[64 * 1024];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
}

struct session {
    bool open;
    uint64_t arg_job;
    void *arg;
    size_t arg_size;
    char *buf; /* the reply */
    size_t cap;
    char *status; /* the items' codes */
    size_t status_cap;
};

/* Not inlined: its locals must not live in the frames that call sigsetjmp. */
__attribute__((noinline)) bool mp__mpi_grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    char *nb = realloc(*buf, c);
    if (nb == NULL)
        return false;
    *buf = nb;
    *cap = c;
    return true;
}

static void send_ack(MPI_Comm comm, int parent, int code, int refused, const char *msg)
{
    mp__mpi_ack a;
    memset(&a, 0, sizeof a);
    a.code = code;
    a.refused = refused;
    a.pid = (int32_t)getpid();
    gethostname(a.host, sizeof a.host - 1);
    snprintf(a.msg, sizeof a.msg, "%s", msg);
    MPI_Send(&a, (int)sizeof a, MPI_BYTE, parent, MP__MPI_TAG_ACK, comm);
}

static void do_hello(struct session *S, MPI_Comm comm, int parent, const char *buf, size_t len)
{
    char msg[192] = "";
    const mp__mpi_hello *h = (const void *)buf;
    if (len < sizeof *h || h->magic != MP__MPI_MAGIC || len - sizeof *h < h->initarg_size) {
        send_ack(comm, parent, MP_EINVAL, 1, "the MPI worker got a malformed start message");
        return;
    }
    int r = check_build(h, msg, sizeof msg);
    if (r != 0) {
        send_ack(comm, parent, r, 1, msg);
        return;
    }
    guard_setup((uintptr_t)h->arena_lo, (uintptr_t)h->arena_len);
    S->open = true;
    S->arg_job = 0;
    if (h->init.module != 0 || h->init.offset != 0) {
        mp_pool_init_fn init = (mp_pool_init_fn)mp__fnref_resolve(&h->init);
        if (init == NULL) {
            send_ack(comm, parent, MP_EINVAL, 0,
                     "the initializer is not loaded in the MPI worker");
            return;
        }
        void *copy = NULL;
        if (h->initarg_size > 0) {
            copy = malloc(h->initarg_size);
            if (copy == NULL) {
                send_ack(comm, parent, -ENOMEM, 0, "");
                return;
            }
            memcpy(copy, buf + sizeof *h, h->initarg_size);
        }
        r = init(copy, h->initarg_size);
        free(copy);
    }
    send_ack(comm, parent, r < 0 ? r : 0, 0, "");
}

static const char fault_text[] =
    "the task followed a pointer into the parent's shared memory: libmp objects "
    "do not travel to MPI workers";

/* All items failed with MP_EINVAL and fault_text, as output records. */
static char *fault_records(uint32_t nitems, size_t *len)
{
    size_t l = sizeof fault_text;
    size_t one = sizeof(mp__orec) + ((l + 15) & ~(size_t)15);
    char *b = calloc(nitems ? nitems : 1, one);
    if (b == NULL)
        return NULL;
    for (uint32_t i = 0; i < nitems; i++) {
        mp__orec *o = (mp__orec *)(b + i * one);
        o->code = MP_EINVAL;
        o->msg_len = (uint32_t)l;
        memcpy(o + 1, fault_text, l);
    }
    *len = one * nitems;
    return b;
}

static void (*resolve_cached(const mp__fnref *r))(void)
{
    static mp__fnref last;
    static void (*fn)(void);
    if (fn == NULL || last.module != r->module || last.offset != r->offset) {
        fn = mp__fnref_resolve(r);
        last = *r;
    }
    return fn;
}

/* Run a FIXED or STAR message's items, writing the reply in S->buf after
 * the header: the outputs, then, when some failed, their codes. */
static int run_fixed_items(struct session *S, const mp__mpi_task *t, const char *p, void *arg,
                           void (*fn)(void), mp__mpi_result *res)
{
    size_t ob = (size_t)t->nitems * t->out_size;
    size_t sb = (size_t)t->nitems * sizeof(int32_t);
    if (!mp__mpi_grow(&S->buf, &S->cap, sizeof *res + ob + sb) ||
        !mp__mpi_grow(&S->status, &S->status_cap, sb + sizeof(int32_t)))
        return -ENOMEM;
    char *out = S->buf + sizeof *res;
    int32_t *status = (int32_t *)(void *)S->status;
    const char *cols[MP__POOL_MAX_COLS];
    size_t csz[MP__POOL_MAX_COLS];
    const char *cp = p;
    for (uint32_t k = 0; k < t->ncols; k++) {
        cols[k] = cp;
        csz[k] = (size_t)t->col_size[k];
        cp += csz[k] * t->nitems;
    }
    res->err_index = -1;
    memset(out, 0, ob);
    guarding = 1;
    if (sigsetjmp(fault_jmp, 1) == 0) {
        bool ok = mp__pool_local_fixed(fn, t->op == MP__MPI_OP_STAR, p, t->in_size, cols, csz,
                                       t->ncols, t->nitems, out, t->out_size, arg, status,
                                       &res->err_index, &res->err_code, res->err_msg,
                                       sizeof res->err_msg);
        guarding = 0;
        res->failed = !ok;
    } else {
        for (uint32_t i = 0; i < t->nitems; i++)
            status[i] = MP_EINVAL;
        res->failed = 1;
        res->err_index = 0;
        res->err_code = MP_EINVAL;
        snprintf(res->err_msg, sizeof res->err_msg, "%s", fault_text);
    }
    res->out_len = ob;
    if (res->failed) {
        memcpy(out + ob, status, sb);
        res->out_len += sb;
    }
    return 0;
}

/* Run a SLOTS message's records; the reply goes to S->buf after the header. */
static int run_slot_items(struct session *S, const mp__mpi_task *t, const char *p, void *arg,
                          void (*fn)(void), mp__mpi_result *res)
{
    char *out = NULL;
    size_t out_len = 0;
    guarding = 1;
    if (sigsetjmp(fault_jmp, 1) == 0) {
        int r = mp__pool_local_slots(fn, t->flags & MP__JF_BYTES, p, t->nitems, t->in_size,
                                     t->out_size, arg, &out, &out_len);
        guarding = 0;
        if (r < 0) {
            res->chunk_code = r;
            res->failed = 1;
            out = NULL;
            out_len = 0;
        } else {
            res->failed = r != 0;
        }
    } else {
        out = fault_records(t->nitems, &out_len);
        res->failed = 1;
        if (out == NULL) {
            res->chunk_code = MP_EINVAL;
            out_len = 0;
        }
    }
    if (!mp__mpi_grow(&S->buf, &S->cap, sizeof *res + out_len)) {
        free(out);
        return -ENOMEM;
    }
    if (out_len > 0)
        memcpy(S->buf + sizeof *res, out, out_len);
    free(out);
    res->out_len = out_len;
    return 0;
}

/*
 * How long the items kept the worker busy, for the parent's window: the
 * wall-clock time when they waited for something (a voluntary context
 * switch: a lock, I/O, a sleep), else the cpu time, so that the time a busy
 * machine took the cpu away from the worker does not count.
 */
struct busy {
    uint64_t wall, cpu;
    long nvcsw;
};

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long voluntary_switches(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_THREAD, &ru) == 0 ? ru.ru_nvcsw : -1;
}

static void busy_start(struct busy *b)
{
    b->nvcsw = voluntary_switches();
    b->cpu = thread_cpu_ns();
    b->wall = mp__now_ns();
}

static uint64_t busy_ns(const struct busy *b)
{
    uint64_t wall = mp__now_ns() - b->wall, cpu = thread_cpu_ns() - b->cpu;
    long v = voluntary_switches();
    return v < 0 || b->nvcsw < 0 || v != b->nvcsw || cpu > wall ? wall : cpu;
}

static int do_task(struct session *S, MPI_Comm comm, int parent, char *buf, size_t len)
{
    mp__mpi_task t;
    mp__mpi_result res;
    memset(&res, 0, sizeof res);
    if (len < sizeof t)
        return MP_EINVAL;
    memcpy(&t, buf, sizeof t);
    size_t left = len - sizeof t;
    if (t.has_arg) {
        if (left < t.arg_size)
            return MP_EINVAL;
        void *a = realloc(S->arg, t.arg_size ? t.arg_size : 1);
        if (a == NULL)
            return -ENOMEM;
        memcpy(a, buf + sizeof t, t.arg_size);
        S->arg = a;
        S->arg_size = t.arg_size;
        S->arg_job = t.job;
        left -= t.arg_size;
    }
    const char *const p = buf + sizeof t + (t.has_arg ? t.arg_size : 0);
    if (left < t.in_len || t.ncols > MP__POOL_MAX_COLS)
        return MP_EINVAL;
    void *arg = t.arg_size > 0 && S->arg_job == t.job ? S->arg : NULL;
    void (*fn)(void) = resolve_cached(&t.fn);
    struct busy b0;
    busy_start(&b0);
    int r = t.op == MP__MPI_OP_SLOTS ? run_slot_items(S, &t, p, arg, fn, &res)
                                     : run_fixed_items(S, &t, p, arg, fn, &res);
    if (r != 0)
        return r;
    res.run_ns = busy_ns(&b0);
    memcpy(S->buf, &res, sizeof res);
    MPI_Send(S->buf, (int)(sizeof res + res.out_len), MPI_BYTE, parent, MP__MPI_TAG_RESULT,
             comm);
    return 0;
}

/*
 * Serve pools of the process at rank parent of comm, one after the other
 * (END ends one), until EXIT.  Returns when told to, or when MPI fails.
 */
static void serve(MPI_Comm comm, int parent, bool spawned)
{
    struct session S;
    memset(&S, 0, sizeof S);
    char *in = NULL;
    size_t incap = 0;
    for (;;) {
        MPI_Status st;
        if (mp__mpi_wait(comm, parent, MPI_ANY_TAG, &st) != 0)
            break;
        int count = 0;
        MPI_Get_count(&st, MPI_BYTE, &count);
        /* A negative count (MPI_UNDEFINED) would wrap the size (gcc -fanalyzer). */
        if (count < 0 || !mp__mpi_grow(&in, &incap, (size_t)count + 1))
            break;
        if (MPI_Recv(in, count, MPI_BYTE, parent, st.MPI_TAG, comm, MPI_STATUS_IGNORE) !=
            MPI_SUCCESS)
            break;
        if (st.MPI_TAG == MP__MPI_TAG_HELLO) {
            do_hello(&S, comm, parent, in, (size_t)count);
        } else if (st.MPI_TAG == MP__MPI_TAG_TASK) {
            int r = do_task(&S, comm, parent, in, (size_t)count);
            if (r != 0) {
                fprintf(stderr, "libmp MPI worker %d: cannot run a task (%s)\n", (int)getpid(),
                        mp_err_name(r));
                break;
            }
        } else if (st.MPI_TAG == MP__MPI_TAG_END) {
            S.open = false;
        } else if (st.MPI_TAG == MP__MPI_TAG_EXIT) {
            break;
        }
    }
    free(in);
    free(S.arg);
    free(S.buf);
    free(S.status);
}

/* A spawned worker: serve the parent, then leave without running main. */
static void spawned_worker(void)
{
    int provided;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_SINGLE, &provided) != MPI_SUCCESS)
        _exit(3);
    MPI_Comm parent;
    MPI_Comm_get_parent(&parent);
    if (parent == MPI_COMM_NULL) {
        fprintf(stderr, "libmp: %s is for workers started by an MPI pool\n",
                MP__MPI_WORKER_ARG);
        MPI_Finalize();
        _exit(2);
    }
    MPI_Comm_set_errhandler(parent, MPI_ERRORS_RETURN);
    /* The pool owns the worker's lifetime: Ctrl-C goes to the program. */
    signal(SIGINT, SIG_IGN);
    serve(parent, 0, true);
    fflush(NULL);
    MPI_Comm_disconnect(&parent);
    MPI_Finalize();
    _exit(0);
}

void mp__mpi_child_boot(int argc, char **argv)
{
    if (argc >= 2 && argv != NULL && argv[1] != NULL &&
        strcmp(argv[1], MP__MPI_WORKER_ARG) == 0)
        spawned_worker();
}

static bool main_called;

bool mp__mpi_workers_boot(void)
{
    int how = mp__spawn_boot_how();
    return how == MP__BOOT_HOOK || how == MP__BOOT_CALL || MP__LD(&main_called);
}

int mp_mpi_main(int *argc, char ***argv)
{
    /* A spawned worker of a program whose start had no hook (static). */
    if (argc != NULL && argv != NULL)
        mp__mpi_child_boot(*argc, *argv);
    MP__ST(&main_called, true);
    int r = mp__mpi_init(argc, argv);
    if (r != 0)
        return r;
    pthread_mutex_lock(&init_lock);
    bool first = world == MPI_COMM_NULL && world_busy == NULL;
    pthread_mutex_unlock(&init_lock);
    if (!first)
        return 0;
    int size = 1, rank = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (size <= 1)
        return 0;
    uint8_t *busy = calloc((size_t)size, 1);
    if (busy == NULL)
        return -ENOMEM;
    MPI_Comm dup;
    if (MPI_Comm_dup(MPI_COMM_WORLD, &dup) != MPI_SUCCESS) {
        free(busy);
        return -EIO;
    }
    MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN);
    pthread_mutex_lock(&init_lock);
    world = dup;
    world_size = size;
    world_busy = busy;
    pthread_mutex_unlock(&init_lock);
    if (rank == 0)
        return 0;
    /* A worker rank: serve rank 0 and never return to main. */
    signal(SIGINT, SIG_IGN);
    serve(dup, 0, false);
    fflush(NULL);
    MPI_Comm_free(&world);
    world = MPI_COMM_NULL;
    if (we_init)
        MPI_Finalize();
    _exit(0);
}
