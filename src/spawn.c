/*
 * spawn.c: starting a fresh image of the running program and taking it over
 * once its constructors have run (Python's spawn.py and the spawning half
 * of popen_spawn_posix.py).  Both the spawn start method and the forkserver
 * (which is itself spawned) use it.
 *
 * The parent:
 *   1. makes a socketpair, the "preparation channel", and a random token;
 *   2. posix_spawns the executable (/proc/self/exe or mp_set_executable's
 *      path; the libmp-spawn helper when this process started without
 *      libmp's start-up hook, see spawn_boot.c) with the parent's argv and
 *      environment plus LIBMP_SPAWN_FD=<fd>:<parent pid>:<token>.  Every fd
 *      the child needs (the arena's memfd, the fds of the fd table, the
 *      channel) is passed at the same number with
 *      posix_spawn_file_actions_adddup2(fd, fd), which clears FD_CLOEXEC in
 *      the child (POSIX 2024, glibc 2.29); since all of them are distinct
 *      open fds of the parent, no two of the actions can collide.  Every
 *      other fd above 2 is closed, as Python closes the fds it does not
 *      pass: those below the highest passed fd one by one, the rest with
 *      posix_spawn_file_actions_addclosefrom_np (close_range in the child,
 *      whatever the fds' numbers);
 *   3. writes the preparation message (struct prep, with the token, then
 *      one struct mp__fs_fd per fd) and waits for the child's answer: an
 *      int32, 0 when the child is ready, or the error that stopped it.
 *
 * The child (mp__spawn_child_boot, called just before main by spawn_boot.c
 * or mp_spawn_main, or by the helper): if LIBMP_SPAWN_FD is set, it removes
 * it from the environment at once (so that programs the child starts are
 * not taken for libmp children), and acts only if the hand-over is
 * authentic: the fd is a socket made by the parent the variable names,
 * which is its parent, and the message carries the token.  It checks that
 * it is the same build as the parent (GNU build-id), maps the arena at the
 * parent's address, restores FD_CLOEXEC where the parent had it, registers
 * the fds in its fd table with their owners, copies the log settings,
 * answers, and runs the process (mp__process_bootstrap, which exits) or
 * becomes the forkserver.  main() never runs.
 */
#include "internal/mp.h"
#include "internal/popen.h"
#include "internal/spawn.h"
#include "internal/util.h"

#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define ENV_NAME "LIBMP_SPAWN_FD"
#define PREP_MAGIC 0x6d707370u /* "mpsp" */
#define PREP_VERSION 2u
#define TOKEN_LEN 16
#define HELPER_NAME "libmp-spawn"
#define HANDSHAKE_MS 60000
#define BUILD_ID_MAX 64
#define SPAWN_TRIES 3

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
#define HAVE_ADDCLOSEFROM 1
#else
#define HAVE_ADDCLOSEFROM 0
#endif

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
#define DUP2_SAME_FD_CLEARS_CLOEXEC 1
#else
#define DUP2_SAME_FD_CLEARS_CLOEXEC 0
#endif

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

struct prep {
    uint32_t magic;
    uint32_t version;
    uint8_t token[TOKEN_LEN]; /* the one of LIBMP_SPAWN_FD */
    int32_t helper;           /* started through the libmp-spawn helper */
    int32_t pad_;
    int32_t kind;
    int32_t nfds;
    uint64_t arena_addr;
    uint64_t arena_size;
    int32_t arena_fd;
    int32_t sentinel_w;
    int32_t log_level;
    int32_t log_stderr;
    int32_t method;
    int32_t listen_fd;
    int32_t alive_fd;
    uint32_t build_id_len;
    uint8_t build_id[BUILD_ID_MAX];
    uint64_t object;
    mp__fnref preload;
    char comm[16]; /* the parent's name in the kernel (prctl PR_GET_NAME) */
};

/* ---- small helpers ---------------------------------------------------------- */

int mp__read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return mp__errno();
        }
        if (r == 0)
            return MP_EEOF;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int mp__write_full(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        /* send() with MSG_NOSIGNAL: a peer that died is an error, not a
         * SIGPIPE that kills the caller. */
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == ENOTSOCK)
            w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return mp__errno();
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

void mp__close_fds(unsigned lo, unsigned hi)
{
    if (lo > hi)
        return;
    if (syscall(SYS_close_range, lo, hi, 0u) == 0)
        return;
    /* Before Linux 5.9: the open ones, from /proc/self/fd. */
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) {
        long max = sysconf(_SC_OPEN_MAX);
        unsigned top = max > 0 && (unsigned long)max - 1 < hi ? (unsigned)max - 1 : hi;
        for (unsigned fd = lo; fd <= top; fd++)
            close((int)fd);
        return;
    }
    int self = dirfd(d);
    int *list = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        unsigned long fd = strtoul(e->d_name, &end, 10);
        if (*end != '\0' || e->d_name[0] == '.' || (int)fd == self || fd < lo || fd > hi)
            continue;
        if (n == cap) {
            int *l = realloc(list, (cap ? cap * 2 : 64) * sizeof *l);
            if (l == NULL)
                break;
            list = l;
            cap = cap ? cap * 2 : 64;
        }
        list[n++] = (int)fd;
    }
    closedir(d);
    for (size_t i = 0; i < n; i++)
        close(list[i]);
    free(list);
}

/* ---- the program's identity ----------------------------------------------- */

struct build_id {
    uintptr_t addr; /* the module that contains addr; 0: the main program */
    uint8_t id[BUILD_ID_MAX];
    size_t len;
};

static bool module_contains(const struct dl_phdr_info *info, uintptr_t addr)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && addr >= lo && addr < lo + ph->p_memsz)
            return true;
    }
    return false;
}

size_t mp__module_build_id(const struct dl_phdr_info *info, uint8_t *out, size_t cap)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        size_t align = ph->p_align == 8 ? 8 : 4;
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
        const char *end = p + ph->p_memsz;
        while ((size_t)(end - p) >= sizeof(ElfW(Nhdr))) {
            const ElfW(Nhdr) *n = (const void *)p;
            const char *name = p + sizeof *n;
            const char *desc = name + ((n->n_namesz + align - 1) & ~(align - 1));
            const char *next = desc + ((n->n_descsz + align - 1) & ~(align - 1));
            if (next > end || next <= p)
                break;
            if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 &&
                memcmp(name, "GNU", 4) == 0) {
                size_t len = n->n_descsz < cap ? n->n_descsz : cap;
                memcpy(out, desc, len);
                return len;
            }
            p = next;
        }
    }
    return 0;
}

static int build_id_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    struct build_id *b = data;
    if (b->addr != 0 && !module_contains(info, b->addr))
        return 0;
    b->len = mp__module_build_id(info, b->id, BUILD_ID_MAX);
    return 1; /* the first object is the main program: stop there */
}

static struct build_id main_build_id, lib_build_id;
static pthread_once_t build_id_once = PTHREAD_ONCE_INIT;

static void build_id_find(void)
{
    dl_iterate_phdr(build_id_cb, &main_build_id);
    lib_build_id.addr = (uintptr_t)build_id_find;
    dl_iterate_phdr(build_id_cb, &lib_build_id);
}

size_t mp__build_id(uint8_t *out, size_t cap)
{
    pthread_once(&build_id_once, build_id_find);
    size_t n = main_build_id.len < cap ? main_build_id.len : cap;
    memcpy(out, main_build_id.id, n);
    return n;
}

/* The build-id that says "same program" for a child: the main program's,
 * or libmp's own when the child is the helper. */
static size_t identity(bool helper, uint8_t *out)
{
    pthread_once(&build_id_once, build_id_find);
    const struct build_id *b = helper ? &lib_build_id : &main_build_id;
    memcpy(out, b->id, b->len);
    return b->len;
}

/* ---- the parent --------------------------------------------------------------- */

struct fdlist {
    struct mp__fs_fd *v;
    size_t n, cap;
    int err;
};

static void fdlist_add(struct fdlist *l, int fd, uint32_t flags, const void *owner)
{
    if (fd < 0 || l->err != 0)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct mp__fs_fd *v = realloc(l->v, cap * sizeof *v);
        if (v == NULL) {
            l->err = -ENOMEM;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (struct mp__fs_fd){fd, flags, (uint64_t)(uintptr_t)owner};
}

static void collect_registered(int fd, const void *owner, void *ctx)
{
    if (!mp__process_fd_owner(owner))
        fdlist_add(ctx, fd, MP__FS_FD_REGISTER, owner);
}

static int fd_cmp(const void *a, const void *b)
{
    const struct mp__fs_fd *x = a, *y = b;
    return (x->target > y->target) - (x->target < y->target);
}

/*
 * Sort by number, drop duplicates and fds that are not open (a registered
 * fd another thread closed meanwhile), and note which have FD_CLOEXEC.
 */
static void fdlist_settle(struct fdlist *l)
{
    qsort(l->v, l->n, sizeof *l->v, fd_cmp);
    size_t out = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (out > 0 && l->v[out - 1].target == l->v[i].target)
            continue;
        int fl = fcntl(l->v[i].target, F_GETFD);
        if (fl < 0)
            continue;
        l->v[out] = l->v[i];
        if (fl & FD_CLOEXEC)
            l->v[out].flags |= MP__FS_FD_CLOEXEC;
        out++;
    }
    l->n = out;
}

static bool fdlist_has(const struct fdlist *l, int fd)
{
    struct mp__fs_fd key = {.target = fd};
    return bsearch(&key, l->v, l->n, sizeof *l->v, fd_cmp) != NULL;
}

/*
 * Close in the child every fd above 2 that is not passed: those below the
 * highest passed fd one by one (they are below the soft RLIMIT_NOFILE, as
 * that one is), and everything above it at once with closefrom, which the
 * child does with close_range whatever the numbers (an fd at or above the
 * soft limit cannot be named in a file action).  Without closefrom (musl,
 * glibc before 2.34) every open fd is named; glibc refuses those at or
 * above the soft limit, which then stay open in the child unless they
 * have FD_CLOEXEC.
 */
static int add_closes(posix_spawn_file_actions_t *fa, const struct fdlist *l)
{
    int top = l->n > 0 ? l->v[l->n - 1].target : 2;
    long limit = HAVE_ADDCLOSEFROM ? top : LONG_MAX;
#if defined(__GLIBC__) && !HAVE_ADDCLOSEFROM
    limit = getdtablesize() - 1;
#endif
    int r = 0;
    if (limit > 2) {
        DIR *d = opendir("/proc/self/fd");
        if (d == NULL)
            return 0; /* no /proc: only FD_CLOEXEC protects the child */
        int self = dirfd(d);
        struct dirent *e;
        while (r == 0 && (e = readdir(d)) != NULL) {
            char *end;
            long fd = strtol(e->d_name, &end, 10);
            if (*end != '\0' || e->d_name[0] == '.' || fd <= 2 || fd == self || fd > limit)
                continue;
            if (!fdlist_has(l, (int)fd))
                r = -posix_spawn_file_actions_addclose(fa, (int)fd);
        }
        closedir(d);
    }
#if HAVE_ADDCLOSEFROM
    if (r == 0)
        r = -posix_spawn_file_actions_addclosefrom_np(fa, top + 1);
#endif
    return r;
}

/* The dup2 actions; without the same-fd rule, through temporary copies
 * (closed at exec by their FD_CLOEXEC), listed in tmp for the caller. */
static int add_dup2s(posix_spawn_file_actions_t *fa, const struct fdlist *l, int *tmp)
{
    for (size_t i = 0; i < l->n; i++) {
        int fd = l->v[i].target;
        int src = fd;
        if (!DUP2_SAME_FD_CLEARS_CLOEXEC) {
            src = tmp[i] = fcntl(fd, F_DUPFD_CLOEXEC, 0);
            if (src < 0)
                return mp__errno();
        }
        int r = posix_spawn_file_actions_adddup2(fa, src, fd);
        if (r != 0)
            return -r;
    }
    return 0;
}

/* The environment plus entry, LIBMP_SPAWN_FD=... (any old value dropped). */
static char **make_env(char *entry)
{
    size_t n = 0;
    for (char **e = environ; e && *e; e++)
        n++;
    char **env = malloc((n + 2) * sizeof *env);
    if (env == NULL)
        return NULL;
    size_t k = 0;
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, ENV_NAME "=", sizeof ENV_NAME) != 0)
            env[k++] = *e;
    env[k++] = entry;
    env[k] = NULL;
    return env;
}

/* Reap a child that failed its start (it may still run: it did not
 * answer, or it is a program that ignores the channel). */
static void reap(pid_t pid)
{
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* Wait for the child's answer: its code, -ECHILD if it ended first,
 * -ENOEXEC if it did not answer in time. */
static int await_answer(int sock)
{
    mp__deadline d;
    mp__deadline_init(&d, HANDSHAKE_MS / 1000.0);
    for (;;) {
        struct pollfd pfd = {.fd = sock, .events = POLLIN};
        int n = poll(&pfd, 1, mp__deadline_poll_ms(&d));
        if (n > 0)
            break;
        if (n < 0 && errno != EINTR)
            return mp__errno();
        if (mp__deadline_expired(&d))
            return -ENOEXEC;
    }
    int32_t code;
    int r = mp__read_full(sock, &code, sizeof code);
    if (r == MP_EEOF || r == -ECONNRESET)
        return -ECHILD; /* it ended without answering */
    if (r != 0)
        return r;
    return code > 0 ? MP_EINVAL : code;
}

static int prep_fill(struct prep *pr, const mp__spawn_req *req, size_t nfds)
{
    memset(pr, 0, sizeof *pr);
    pr->magic = PREP_MAGIC;
    pr->version = PREP_VERSION;
    pr->kind = req->kind;
    pr->nfds = (int32_t)nfds;
    void *addr;
    size_t size;
    int afd;
    mp__heap_info(&afd, &addr, &size);
    if (afd < 0)
        return MP_EINVAL;
    pr->arena_addr = (uint64_t)(uintptr_t)addr;
    pr->arena_size = size;
    pr->arena_fd = afd;
    pr->sentinel_w = req->sentinel_w;
    int level;
    bool to_stderr;
    mp__log_state_get(&level, &to_stderr);
    pr->log_level = level;
    pr->log_stderr = to_stderr;
    pr->method = req->method;
    pr->listen_fd = req->listen_fd;
    pr->alive_fd = req->alive_fd;
    pr->object = (uint64_t)(uintptr_t)req->object;
    if (req->kind == MP__SPAWN_FORKSERVER)
        mp__forkserver_preload(&pr->preload);
    prctl(PR_GET_NAME, pr->comm);
    return 0;
}

int mp__fds_to_pass(bool registered, const int *extra, size_t nextra, struct mp__fs_fd **out,
                    size_t *n)
{
    struct fdlist l = {0};
    if (registered)
        mp__fd_foreach(collect_registered, &l);
    for (size_t i = 0; i < nextra; i++)
        fdlist_add(&l, extra[i], 0, NULL);
    if (l.err != 0) {
        free(l.v);
        return l.err;
    }
    fdlist_settle(&l);
    *out = l.v;
    *n = l.n;
    return 0;
}

/* What to execute and with which argv. */
struct image {
    bool helper;
    char exe[PATH_MAX];
    char lib[PATH_MAX]; /* helper: the path of libmp.so to load */
    char *argv[3];
};

/*
 * The helper: $LIBMP_SPAWN_HELPER, else libmp-spawn beside libmp.so (the
 * build tree), else in the libexec directory it was installed to.
 */
static int helper_path(char *buf, const char *lib)
{
    const char *env = getenv("LIBMP_SPAWN_HELPER");
    if (env != NULL && *env != '\0') {
        if (strlen(env) >= PATH_MAX)
            return -ENAMETOOLONG;
        strcpy(buf, env);
        return access(buf, X_OK) == 0 ? 0 : mp__errno();
    }
    const char *slash = strrchr(lib, '/');
    if (slash != NULL && (size_t)(slash - lib) + sizeof "/" HELPER_NAME <= PATH_MAX) {
        memcpy(buf, lib, (size_t)(slash - lib));
        strcpy(buf + (slash - lib), "/" HELPER_NAME);
        if (access(buf, X_OK) == 0)
            return 0;
    }
    strcpy(buf, MP_LIBEXECDIR "/" HELPER_NAME);
    return access(buf, X_OK) == 0 ? 0 : mp__errno();
}

static int image_pick(struct image *im)
{
    int how = mp__spawn_boot_how();
    im->helper = how == MP__BOOT_NONE || how == MP__BOOT_HELPER;
    if (!im->helper) {
        mp__spawn_executable(im->exe);
        /* Without main's argv (mp_spawn_main(0, NULL)), at least argv[0]
         * is the program's, as the child's program_invocation_name. */
        im->argv[0] = program_invocation_name != NULL ? program_invocation_name : im->exe;
        im->argv[1] = NULL;
        return 0;
    }
    /* No start-up hook ran here, so none will in a copy of this program:
     * start the helper, which loads libmp.so (and, on demand, the modules
     * the child's functions are in), if libmp is a shared library. */
    if (mp__module_path((const void *)(uintptr_t)mp__spawn_start, im->lib, sizeof im->lib) !=
        0)
        return MP_ESPAWNMAIN;
    int r = helper_path(im->exe, im->lib);
    if (r != 0)
        return r;
    im->argv[0] = im->exe;
    im->argv[1] = im->lib;
    im->argv[2] = NULL;
    return 0;
}

int mp__spawn_can_run(const mp__fnref *fn)
{
    int how = mp__spawn_boot_how();
    if (how == MP__BOOT_HOOK || how == MP__BOOT_CALL)
        return 0;
    char lib[PATH_MAX];
    if (mp__module_path((const void *)(uintptr_t)mp__spawn_start, lib, sizeof lib) != 0 ||
        mp__fnref_in_main(fn))
        return MP_ESPAWNMAIN;
    return 0;
}

/* True when an fd of the list is not open any more (another thread closed
 * it while the child was being started). */
static bool fdlist_changed(const struct fdlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (fcntl(l->v[i].target, F_GETFD) < 0)
            return true;
    return false;
}

/* One posix_spawn of im. */
static int spawn_once(const mp__spawn_req *req, const struct image *im, const char *entry,
                      int child_end, pid_t *pid, struct fdlist *l)
{
    int afd;
    mp__heap_info(&afd, NULL, NULL);
    int extra[] = {afd, child_end, req->sentinel_w, req->listen_fd, req->alive_fd};
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
    int r = mp__fds_to_pass(req->pass_registered, extra, sizeof extra / sizeof extra[0], &l->v,
                            &l->n);
    if (r != 0)
        return r;

    char **env = make_env((char *)entry);
    int *tmp = malloc((l->n ? l->n : 1) * sizeof *tmp);
    if (env == NULL || tmp == NULL) {
        free(env);
        free(tmp);
        return -ENOMEM;
    }
    for (size_t i = 0; i < l->n; i++)
        tmp[i] = -1;
    char *const *argv = im->argv;
    char **saved = mp__saved_argv();
    if (!im->helper && saved != NULL && saved[0] != NULL)
        argv = saved;

    posix_spawn_file_actions_t fa;
    r = -posix_spawn_file_actions_init(&fa);
    if (r == 0) {
        r = add_dup2s(&fa, l, tmp);
        if (r == 0)
            r = add_closes(&fa, l);
        if (r == 0)
            r = -posix_spawn(pid, im->exe, &fa, NULL, argv, env);
        posix_spawn_file_actions_destroy(&fa);
    }
    for (size_t i = 0; i < l->n; i++)
        if (tmp[i] >= 0)
            close(tmp[i]);
    free(tmp);
    free(env);
    return r;
}

static void hex(char *out, const uint8_t *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int mp__spawn_start(const mp__spawn_req *req, pid_t *pid)
{
    int r = mp__heap_init();
    if (r != 0)
        return r;
    struct image im;
    r = image_pick(&im);
    if (r != 0)
        return r;
    uint8_t token[TOKEN_LEN];
    if (getrandom(token, sizeof token, 0) != (ssize_t)sizeof token)
        return -EAGAIN;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return mp__errno();
    char tok[2 * TOKEN_LEN + 1];
    hex(tok, token, sizeof token);
    char entry[sizeof ENV_NAME + 3 * 12 + sizeof tok];
    snprintf(entry, sizeof entry, ENV_NAME "=%d:%d:%s", sv[1], (int)getpid(), tok);
    struct fdlist l = {0};
    /* EBADF from posix_spawn is retried only when one of the fds to pass
     * went away meanwhile; any other error would come back the same. */
    for (int i = 0; i < SPAWN_TRIES; i++) {
        r = spawn_once(req, &im, entry, sv[1], pid, &l);
        if (r != -EBADF || !fdlist_changed(&l))
            break;
    }
    close(sv[1]);
    if (r != 0) {
        free(l.v);
        close(sv[0]);
        return r;
    }
    struct prep pr;
    r = prep_fill(&pr, req, l.n);
    memcpy(pr.token, token, sizeof token);
    pr.helper = im.helper;
    pr.build_id_len = (uint32_t)identity(im.helper, pr.build_id);
    if (r == 0)
        r = mp__write_full(sv[0], &pr, sizeof pr);
    if (r == 0 && l.n > 0)
        r = mp__write_full(sv[0], l.v, l.n * sizeof *l.v);
    free(l.v);
    if (r == 0)
        r = await_answer(sv[0]);
    else if (r == -EPIPE || r == -ECONNRESET)
        r = -ECHILD;
    close(sv[0]);
    if (r != 0)
        reap(*pid);
    return r;
}

/* ---- the child ------------------------------------------------------------------ */

static _Noreturn void child_fail(int sock, int code)
{
    int32_t c = code;
    mp__write_full(sock, &c, sizeof c);
    _exit(127);
}

static void child_answer(int sock)
{
    int32_t ok = 0;
    mp__write_full(sock, &ok, sizeof ok);
    close(sock);
}

/* The rest of the hand-over, once the message's header (pr) has been
 * read and authenticated. */
static _Noreturn void spawn_child(int sock, struct prep *prp)
{
    struct prep pr = *prp;
    if (pr.version != PREP_VERSION || pr.nfds < 0 || pr.nfds > MP__FS_MAX_FDS)
        child_fail(sock, -ENOEXEC);
    size_t nfds = (size_t)pr.nfds;
    struct mp__fs_fd *fds = malloc((nfds ? nfds : 1) * sizeof *fds);
    if (fds == NULL)
        child_fail(sock, -ENOMEM);
    if (nfds > 0 && mp__read_full(sock, fds, nfds * sizeof *fds) != 0)
        _exit(127);

    bool helper = mp__spawn_boot_how() == MP__BOOT_HELPER;
    uint8_t id[BUILD_ID_MAX];
    size_t idlen = identity(helper, id);
    if ((pr.helper != 0) != helper || idlen != pr.build_id_len ||
        memcmp(id, pr.build_id, idlen) != 0)
        child_fail(sock, -ENOEXEC);
    for (size_t i = 0; i < nfds; i++)
        if (fcntl(fds[i].target, F_GETFD) < 0)
            child_fail(sock, -EBADF);

    int afd;
    mp__heap_info(&afd, NULL, NULL);
    if (afd >= 0) /* a constructor of the program used libmp already */
        child_fail(sock, -EADDRINUSE);
    int r = mp__heap_attach(pr.arena_fd, (void *)(uintptr_t)pr.arena_addr,
                            (size_t)pr.arena_size);
    if (r != 0)
        child_fail(sock, r);
    for (size_t i = 0; i < nfds; i++) {
        const struct mp__fs_fd *e = &fds[i];
        if (e->flags & MP__FS_FD_CLOEXEC)
            fcntl(e->target, F_SETFD, FD_CLOEXEC);
        if ((e->flags & MP__FS_FD_REGISTER) &&
            mp__fd_register(e->target, (const void *)(uintptr_t)e->owner) != 0)
            child_fail(sock, -ENOMEM);
    }
    free(fds);
    fcntl(sock, F_SETFD, FD_CLOEXEC);
    /* Executed as /proc/self/exe, the kernel named us "exe". */
    pr.comm[sizeof pr.comm - 1] = '\0';
    prctl(PR_SET_NAME, pr.comm);
    mp__log_state_set(pr.log_level, pr.log_stderr != 0);
    mp__context_force(pr.method);

    if (pr.kind == MP__SPAWN_PROCESS) {
        mp_process *p = (mp_process *)(uintptr_t)pr.object;
        r = mp__process_check_target(p);
        if (r != 0)
            child_fail(sock, r);
        if (pr.sentinel_w >= 0)
            mp__child_set_own_sentinel(pr.sentinel_w);
        child_answer(sock);
        mp__process_bootstrap(p, false);
    }
    if (pr.kind == MP__SPAWN_FORKSERVER) {
        /* The server is a grandchild: nobody has to reap it, and it is no
         * child of the program (it ends after the program, and a program
         * that counts or waits for its children does not see it). */
        pid_t pid = fork();
        if (pid < 0)
            child_fail(sock, mp__errno());
        if (pid > 0) {
            mp__forkserver_started((struct mp__forkserver *)(uintptr_t)pr.object, pid);
            child_answer(sock);
            _exit(0);
        }
        close(sock);
        mp__forkserver_main((struct mp__forkserver *)(uintptr_t)pr.object, pr.listen_fd,
                            pr.alive_fd, &pr.preload);
    }
    child_fail(sock, MP_EINVAL);
}

static int unhex(uint8_t *out, const char *in, size_t n)
{
    for (size_t i = 0; i < 2 * n; i++) {
        char c = in[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return -1;
        out[i / 2] = (uint8_t)(i % 2 ? (out[i / 2] << 4) | v : v);
    }
    return in[2 * n] == '\0' ? 0 : -1;
}

/* LIBMP_SPAWN_FD's value: "<fd>:<parent pid>:<token in hex>". */
static bool parse_entry(const char *v, int *fd, pid_t *ppid, uint8_t *token)
{
    char *end;
    errno = 0;
    long f = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != ':' || f <= 2 || f > INT_MAX)
        return false;
    v = end + 1;
    long p = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != ':' || p <= 1 || p > INT_MAX)
        return false;
    if (unhex(token, end + 1, TOKEN_LEN) != 0)
        return false;
    *fd = (int)f;
    *ppid = (pid_t)p;
    return true;
}

/* Read the message header within the hand-over's time: 0, or < 0. */
static int read_prep(int sock, struct prep *pr)
{
    struct pollfd pfd = {.fd = sock, .events = POLLIN};
    int n;
    do
        n = poll(&pfd, 1, HANDSHAKE_MS);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return -ETIMEDOUT;
    return mp__read_full(sock, pr, sizeof *pr);
}

/*
 * The hand-over variable, taken out of the environment by a constructor
 * (before the program's own: libmp.so's run first, being a dependency, and
 * in a program linked with libmp.a its priority puts it first), so
 * that neither the program's constructors nor the programs they start see
 * it.  The channel's fd is then also closed at exec, if it is a socket from
 * the parent the variable names.  Nothing is read here: the child is taken
 * over later, once every constructor has run.
 */
static struct {
    bool set;
    int fd;
    pid_t parent;
    uint8_t token[TOKEN_LEN];
} handover;

/* Whether fd is a socket that parent made (SO_PEERCRED). */
static bool socket_of(int fd, pid_t parent)
{
    struct stat st;
    struct ucred cred;
    socklen_t len = sizeof cred;
    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
           getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid == parent;
}

__attribute__((constructor(101))) static void handover_take(void)
{
    const char *v = getenv(ENV_NAME);
    if (v == NULL)
        return;
    handover.set = parse_entry(v, &handover.fd, &handover.parent, handover.token);
    unsetenv(ENV_NAME);
    if (handover.set && socket_of(handover.fd, handover.parent) &&
        getppid() == handover.parent)
        fcntl(handover.fd, F_SETFD, FD_CLOEXEC);
}

void mp__spawn_child_boot(void)
{
    if (!handover.set)
        return;
    handover.set = false;
    int fd = handover.fd;
    pid_t parent = handover.parent;
    /* Only a socket that the process named in the variable made, and only
     * if that process is ours: a stray variable naming an unrelated fd (a
     * pipe, a file, another program's socket) never takes us over and is
     * never read from. */
    if (!socket_of(fd, parent))
        return;
    if (getppid() != parent)
        _exit(127); /* spawned by libmp, but the parent died meanwhile */
    struct prep pr;
    int r = read_prep(fd, &pr);
    if (r == MP_EEOF || r == -ECONNRESET)
        _exit(127); /* the parent gave up on us */
    if (r != 0 || pr.magic != PREP_MAGIC)
        return;
    uint8_t diff = 0;
    for (size_t i = 0; i < TOKEN_LEN; i++)
        diff |= (uint8_t)(pr.token[i] ^ handover.token[i]);
    if (diff != 0)
        return;
    spawn_child(fd, &pr);
}

__attribute__((visibility("default"))) int mp__spawn_helper_main(int argc, char **argv)
{
    mp__spawn_boot_set(MP__BOOT_HELPER, NULL);
    mp__fnref_helper_mode();
    mp__spawn_child_boot();
    static const char msg[] = "libmp-spawn: not started by libmp\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    return 127;
}
