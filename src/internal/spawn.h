/*
 * internal/spawn.h: contexts, the spawn machinery and the forkserver
 * (context.c, spawn.c, popen_spawn.c, forkserver.c, popen_forkserver.c).
 */
#ifndef LIBMP_INTERNAL_SPAWN_H
#define LIBMP_INTERNAL_SPAWN_H

#include "internal/mp.h"

#include <limits.h>

/* ---- contexts (context.c) ------------------------------------------------ */

/*
 * 0 if ctx is NULL or a context libmp made, MP_EINVAL otherwise.  Every
 * constructor that takes .ctx checks it with this.  For NULL it also checks
 * that the default can be resolved (MP_START_METHOD names a method), without
 * fixing the default.
 */
int mp__context_check(const mp_context *ctx);

/* In a new child: its parent's start method becomes its default. */
void mp__context_force(int method);

/* The executable spawn starts: mp_set_executable's path, or /proc/self/exe.
 * Copied into buf (PATH_MAX bytes). */
void mp__spawn_executable(char *buf);

/*
 * Fork handlers that take locks.  pthread_atfork runs prepare handlers in
 * the reverse order of registration, so a lock taken while another is held
 * must have its handler registered first, or a fork racing with the holder
 * deadlocks (ThreadSanitizer found the inversion).  The nesting is
 * popen_forkserver's chan_lock, then forkserver.c's start_lock, then
 * context.c's settings lock; each registration first registers the next
 * inner one (all idempotent).
 */
void mp__settings_atfork_register(void);
void mp__forkserver_atfork_register(void);

/* The forkserver preload hook (empty reference: none). */
void mp__forkserver_preload(mp__fnref *out);

/* ---- starting a fresh image (spawn.c) ------------------------------------ */

enum mp__spawn_kind {
    MP__SPAWN_PROCESS = 1,    /* run a process object */
    MP__SPAWN_FORKSERVER = 2, /* become a forkserver */
};

typedef struct mp__spawn_req {
    int kind;
    const void *object;   /* the mp_process, or the forkserver object */
    int method;           /* the child's default start method */
    bool pass_registered; /* pass the fds of the fd table (process kind) */
    int sentinel_w;       /* process kind: pipe write end the child keeps, or -1 */
    int listen_fd;        /* forkserver kind: the listening socket */
    int alive_fd;         /* forkserver kind: read end of the alive pipe */
} mp__spawn_req;

/*
 * posix_spawn the executable with the fds of req at the same numbers, send
 * it its preparation message and wait until it has mapped the arena and is
 * ready.  0 with *pid set (the child runs), or a negative code with the
 * child reaped: -EADDRINUSE (the arena's address is taken in the child),
 * -ENOEXEC (the executable is another build, or it did not answer within a
 * minute: not a libmp program), -ECHILD (it ended before answering),
 * MP_EINVAL (the target is not loaded in the child), -errno from
 * posix_spawn or the child's setup.
 */
int mp__spawn_start(const mp__spawn_req *req, pid_t *pid);

struct mp__fs_fd;

/*
 * The fds a child gets at the same numbers: the fds of the fd table (if
 * registered; not those of Process objects) with their owners and the
 * MP__FS_FD_REGISTER flag, and extra (-1 entries ignored), sorted by
 * number, without duplicates or fds that are not open, with
 * MP__FS_FD_CLOEXEC where the fd has FD_CLOEXEC.  *out is malloc'd.
 * 0 or -ENOMEM.
 */
int mp__fds_to_pass(bool registered, const int *extra, size_t nextra, struct mp__fs_fd **out,
                    size_t *n);

/* The GNU build-id of the main program (0 bytes if it has none). */
size_t mp__build_id(uint8_t *out, size_t cap);
/* The GNU build id of one loaded object (dl_iterate_phdr), at most cap
 * bytes of it; 0 when it has none. */
struct dl_phdr_info;
size_t mp__module_build_id(const struct dl_phdr_info *info, uint8_t *out, size_t cap);

/* Close every fd in [lo, hi] (close_range(2), or one by one). */
void mp__close_fds(unsigned lo, unsigned hi);

/* Read or write exactly n bytes (EINTR retried): 0, MP_EEOF, or -errno. */
int mp__read_full(int fd, void *buf, size_t n);
int mp__write_full(int fd, const void *buf, size_t n);

/* ---- how this process started (spawn_boot.c) ----------------------------- */

enum mp__boot {
    MP__BOOT_NONE = 0,   /* neither: libmp loaded by dlopen, or static without the call */
    MP__BOOT_HOOK = 1,   /* main was called through libmp's __libc_start_main */
    MP__BOOT_CALL = 2,   /* main called mp_spawn_main */
    MP__BOOT_HELPER = 3, /* a child started through the libmp-spawn helper */
};

int mp__spawn_boot_how(void);
void mp__spawn_boot_set(int how, char **argv);

/* main's argv, kept by the hook or mp_spawn_main (NULL if neither ran). */
char **mp__saved_argv(void);

/*
 * In a child spawned by libmp (an authenticated LIBMP_SPAWN_FD hand-over):
 * take the process over, never returning.  Otherwise remove the variable
 * (if any) and return.  Called once the program's constructors have run.
 */
void mp__spawn_child_boot(void);

/*
 * In a worker started by an MPI pool with MPI_Comm_spawn (argv[1] is
 * "--libmp-mpi-worker"): serve the parent's pools and exit, never
 * returning.  Otherwise return.  Called where mp__spawn_child_boot is
 * (after the program's constructors, before main), and by mp_mpi_main.
 * Defined only where libmp is built with MPI (context_mpi.c).
 */
void mp__mpi_child_boot(int argc, char **argv);

/*
 * The entry point of the libmp-spawn helper (which dlopens libmp.so and
 * calls it): the child of a process whose own start had no hook (libmp in
 * a plugin).  Takes the process over; returns 127 when it was not started
 * by libmp.
 */
int mp__spawn_helper_main(int argc, char **argv);

/*
 * Whether a spawned image (spawn, or the forkserver) can run the function
 * fn: 0, or MP_ESPAWNMAIN when this process started without a hook and fn
 * is in the main program (or libmp is linked into the main program).
 */
int mp__spawn_can_run(const mp__fnref *fn);

/* ---- the forkserver (forkserver.c) --------------------------------------- */

struct mp__forkserver;

/* In the spawned server, once the arena is mapped: serve until every
 * holder of the alive pipe is gone.  Never returns. */
_Noreturn void mp__forkserver_main(struct mp__forkserver *fs, int listen_fd, int alive_fd,
                                   const mp__fnref *preload);

/*
 * The caller's running server (starting one if needed): 0 and *fs, or a
 * negative code.  restart: the last connection to *fs was refused, start a
 * new server instead of it.
 */
int mp__forkserver_get(struct mp__forkserver **fs, bool restart);

/* Connect to fs with a new socket (SOCK_CLOEXEC): fd or -errno. */
int mp__forkserver_connect(struct mp__forkserver *fs);

/* The request header a client sends (popen_forkserver.c builds it). */
#define MP__FS_TOKEN_LEN 32
#define MP__FS_MAGIC 0x6d706673u /* "mpfs" */
#define MP__FS_VERSION 2u
#define MP__FS_MAX_FDS 65536
#define MP__FS_FDS_PER_MSG 250 /* below the kernel's SCM_MAX_FD (253) */

enum {
    MP__FS_FD_CLOEXEC = 1u,  /* set FD_CLOEXEC in the child */
    MP__FS_FD_REGISTER = 2u, /* register with owner in the child */
};

struct mp__fs_fd {
    int32_t target; /* the fd number in the child */
    uint32_t flags;
    uint64_t owner;
};

struct mp__fs_request {
    uint32_t magic;
    uint32_t version;
    uint64_t process; /* the mp_process to run */
    int32_t nfds;     /* entries following, then the fds themselves */
    int32_t log_level;
    int32_t log_stderr;
    int32_t requester;
    int32_t pad_;
    uint64_t sig_ign; /* the requester's ignored signals: bit n-1 for n */
};

/* With a started child come its sentinel (the client's end of a socket
 * pair whose other end the server writes the exit status to), then its
 * pidfd if has_pidfd. */
struct mp__fs_reply {
    int32_t code; /* 0, or a negative code (nothing was started) */
    int32_t pid;
    int32_t has_pidfd;
    int32_t pad_;
};

/*
 * sendmsg buf (len 0: one zero byte) with n <= MP__FS_FDS_PER_MSG fds
 * attached; the whole buffer is sent.  0 or a negative code.
 */
int mp__send_with_fds(int sock, const void *buf, size_t len, const int *fds, size_t n);

/*
 * Receive exactly len bytes (0: one byte) into buf, adding the fds that come
 * with them to fds[*got] (FD_CLOEXEC set; beyond max they are closed).
 * 0, MP_EEOF, MP_EINVAL (fds cut short), or -errno.
 */
int mp__recv_with_fds(int sock, void *buf, size_t len, int *fds, size_t max, size_t *got);

/*
 * The authkey challenges on a new connection to fs, both ways (the server
 * delivers first): 0, MP_EAUTH when the other side has another key, or the
 * connection's errors.
 */
int mp__forkserver_auth(int fd, const struct mp__forkserver *fs, bool server);

/* In the spawned process, once it has forked the server: its pid. */
void mp__forkserver_started(struct mp__forkserver *fs, pid_t pid);

/* Tests set this to skip the check that a forkserver start has the fds
 * for its answer, to exercise the answer that cannot be received. */
extern bool mp__fs_no_fd_check;

/* For tests: the server's private directory, and its pid. */
const char *mp__forkserver_dir(const struct mp__forkserver *fs);
pid_t mp__forkserver_pid(const struct mp__forkserver *fs);

#endif /* LIBMP_INTERNAL_SPAWN_H */
