/*
 * resource_tracker.c: remove the named shared memory and socket files that
 * a program made and never removed (the role of Python's
 * resource_tracker.py), also when the whole program was killed.
 *
 * What is tracked is written twice, family-wide:
 * - a list in the arena (slot, kind, name, identity), under a robust mutex;
 * - the family's registry file, in a per-user directory on tmpfs
 *   (/dev/shm/libmp-UID): one fixed-size record per slot.  Every process of
 *   the family holds the file through one open file description (inherited
 *   under fork, passed by spawn and forkserver as a registered fd), locked
 *   with flock(LOCK_SH): the lock lasts exactly as long as some member (or
 *   the tracker) lives.
 *
 * The tracker is a process in a session of its own, so that a signal to the
 * program's process group (kill -9 -PGID, Ctrl-\) does not reach it.  It
 * holds the read end of a pipe whose write end every member holds; when the
 * last member ends, by any means, read() returns 0 and the tracker removes
 * what the list still holds, then the registry file.  If the tracker died
 * too (a cgroup kill), the file stays behind, unlocked: mp_cleanup_stale(),
 * which every new tracker runs once, removes what such files list.  A name
 * is removed only if it is still the file that was recorded (same device
 * and inode), so a name reused since is left alone.
 */
#include "internal/mp.h"
#include "internal/resource_tracker.h"
#include "internal/linux.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TRACKER_MAGIC MP__MAGIC('t', 'r', 'k', 'r')
#define REC_LIVE MP__MAGIC('r', 'e', 'c', '1')
/* A name recorded before it was made: one only this family can have made
 * (a random name, or a name inside such a directory), so it is removed if
 * it exists, whatever its identity. */
#define REC_PENDING MP__MAGIC('r', 'e', 'c', '0')
#define NAME_LEN 264
#define HDR_LEN 64
#define REG_HDR "libmp registry 1\n"
/* A registry younger than this with no header yet is being created. */
#define CREATING_SECONDS 60

_Static_assert(NAME_LEN >= MP_SHM_NAME_MAX + 2, "shm names fit");
_Static_assert(NAME_LEN > sizeof(((struct sockaddr_un *)0)->sun_path), "paths fit");

/* One record of the registry file; magic 0 is a free slot. */
struct rec {
    uint32_t magic;
    uint32_t kind;
    uint64_t dev;
    uint64_t ino;
    char name[NAME_LEN];
};

struct tracked {
    struct tracked *next;
    struct rec r;
    uint32_t slot;
};

struct mp__tracker {
    mp__obj hdr;
    pthread_mutex_t lock;
    struct tracked *head;  /* tracked now */
    struct tracked *spare; /* untracked, keeping their slots for reuse */
    uint32_t nslots;
    int wfd;       /* the pipe's write end, at this number in every member */
    int regfd;     /* the registry file, likewise; -1 without one */
    bool unlinked; /* the registry has no name (yet, or for good) */
    pid_t pid;     /* the tracker process */
    char regpath[128];
};

static struct mp__tracker *mine; /* this process's tracker, if any */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;

static void find_inherited(int fd, const void *owner, void *ctx)
{
    if (mp__obj_check(owner, TRACKER_MAGIC) == 0 &&
        ((const struct mp__tracker *)owner)->wfd == fd)
        *(const void **)ctx = owner;
}

/* The tracker this process belongs to: its own, or one it was handed. */
static struct mp__tracker *current(void)
{
    if (mine != NULL && mp__fd_owned(mine->wfd, mine))
        return mine;
    const void *found = NULL;
    mp__fd_foreach(find_inherited, &found);
    mine = (struct mp__tracker *)found;
    return mine;
}

/* ---- removing one recorded name ---------------------------------------- */

/* Remove the file rec names if it is still the one recorded; true if it
 * was removed.  Async-signal-safe (the tracker runs it). */
static bool remove_rec(const struct rec *r)
{
    char path[NAME_LEN + 16];
    const char *p = r->name;
    if (r->name[NAME_LEN - 1] != '\0')
        return false;
    if (r->kind == MP__TRACK_SHM) {
        if (r->name[0] != '/' || strchr(r->name + 1, '/') != NULL)
            return false;
        size_t n = strlen(r->name);
        memcpy(path, "/dev/shm", 8);
        memcpy(path + 8, r->name, n + 1);
        p = path;
    }
    struct stat st;
    if (lstat(p, &st) != 0 || st.st_uid != geteuid())
        return false;
    if (r->magic != REC_PENDING &&
        ((uint64_t)st.st_dev != r->dev || (uint64_t)st.st_ino != r->ino))
        return false;
    switch (r->kind) {
    case MP__TRACK_SHM:
        return S_ISREG(st.st_mode) && shm_unlink(r->name) == 0;
    case MP__TRACK_SOCKET:
        return S_ISSOCK(st.st_mode) && unlink(p) == 0;
    case MP__TRACK_DIR:
        return S_ISDIR(st.st_mode) && rmdir(p) == 0;
    default:
        return false;
    }
}

/* ---- the registry directory and files ----------------------------------- */

static void registry_dir(char *out, size_t n)
{
    snprintf(out, n, "/dev/shm/libmp-%u", (unsigned)geteuid());
}

/* Open the directory if it is ours and private: an fd, or -errno. */
static int open_dir_checked(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return mp__errno();
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
        close(fd);
        return -EPERM;
    }
    return fd;
}

static void registry_name(struct mp__tracker *t, const char *dir)
{
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != sizeof rnd)
        rnd = (uint32_t)mp__now_ns();
    snprintf(t->regpath, sizeof t->regpath, "%s/fam-%d-%08x", dir, (int)getpid(), rnd);
}

/* Make the registry nameless (O_TMPFILE), locked and with its header: it
 * gets its name once the tracker holds it (registry_link), so that a kill
 * at any moment leaves no registry that nobody will remove.  0 or -errno. */
static int registry_create_unlinked(struct mp__tracker *t, const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        return mp__errno();
    char hdr[HDR_LEN] = REG_HDR;
    if (flock(fd, LOCK_SH | LOCK_NB) != 0 || pwrite(fd, hdr, sizeof hdr, 0) != HDR_LEN) {
        int r = errno ? mp__errno() : -EIO;
        close(fd);
        return r;
    }
    registry_name(t, dir);
    t->regfd = fd;
    t->unlinked = true;
    return 0;
}

/* Give the nameless registry its name, once the tracker holds it.  On
 * failure the family goes on without a registry on disk. */
static void registry_link(struct mp__tracker *t)
{
    char dir[64], from[64];
    registry_dir(dir, sizeof dir);
    snprintf(from, sizeof from, "/proc/self/fd/%d", t->regfd);
    for (int tries = 0; tries < 8; tries++) {
        if (linkat(AT_FDCWD, from, AT_FDCWD, t->regpath, AT_SYMLINK_FOLLOW) == 0) {
            t->unlinked = false;
            return;
        }
        if (errno != EEXIST)
            return;
        registry_name(t, dir);
    }
}

/* Make this family's registry file, locked shared, in t->regfd. */
static int registry_create(struct mp__tracker *t)
{
    char dir[64];
    registry_dir(dir, sizeof dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return mp__errno();
    int dfd = open_dir_checked(dir);
    if (dfd < 0)
        return dfd;
    close(dfd);
    if (!mp__feature_disabled(MP__FEAT_TMPFILE) && access("/proc/self/fd", X_OK) == 0 &&
        registry_create_unlinked(t, dir) == 0)
        return 0;
    for (int tries = 0; tries < 8; tries++) {
        registry_name(t, dir);
        int fd = open(t->regpath, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST)
            continue;
        if (fd < 0)
            return mp__errno();
        char hdr[HDR_LEN] = REG_HDR;
        if (flock(fd, LOCK_SH | LOCK_NB) != 0 || pwrite(fd, hdr, sizeof hdr, 0) != HDR_LEN) {
            int r = errno ? mp__errno() : -EIO;
            unlink(t->regpath);
            close(fd);
            return r;
        }
        t->regfd = fd;
        return 0;
    }
    return -EEXIST;
}

/* Write slot's record (or free it: r NULL) into the registry.  A process
 * that does not hold the registry at t->regfd (a member of another
 * tracker's family untracking one of ours) opens it by path. */
static void registry_write(struct mp__tracker *t, uint32_t slot, const struct rec *r)
{
    if (t->regfd < 0)
        return;
    static const struct rec free_rec;
    const struct rec *w = r != NULL ? r : &free_rec;
    off_t off = HDR_LEN + (off_t)slot * (off_t)sizeof *w;
    bool here = mp__fd_owned(t->regfd, t);
    int fd = here ? t->regfd : open(t->regpath, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    /* Best effort: a record that could not be written costs only the
     * clean-up after a kill of the tracker itself. */
    if (fd >= 0 && pwrite(fd, w, sizeof *w, off) != (ssize_t)sizeof *w)
        errno = 0;
    if (fd >= 0 && !here)
        close(fd);
}

/* The records of a dead family's registry: non-directories first, so that
 * a directory is empty by the time it is removed. */
static int clean_registry(int fd)
{
    int n = 0;
    for (int pass = 0; pass < 2; pass++) {
        struct rec r;
        for (off_t off = HDR_LEN; pread(fd, &r, sizeof r, off) == (ssize_t)sizeof r;
             off += (off_t)sizeof r) {
            if ((r.magic != REC_LIVE && r.magic != REC_PENDING) ||
                (r.kind == MP__TRACK_DIR) != (pass == 1))
                continue;
            if (remove_rec(&r) && r.kind == MP__TRACK_SHM)
                n++;
        }
    }
    return n;
}

/* Handle one registry file of the directory; 1 if it was a dead family's
 * and is gone now, 0 if left, or -errno. */
static int clean_one(int dfd, const char *name)
{
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? 0 : mp__errno();
    struct stat st;
    int r = 0;
    /* Held by some member (or a tracker) of a live family: theirs. */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0)
        goto out;
    /* Gone meanwhile (another cleaner), or not one of ours. */
    if (fstat(fd, &st) != 0 || st.st_nlink == 0 || !S_ISREG(st.st_mode) ||
        st.st_uid != geteuid())
        goto out;
    char hdr[HDR_LEN];
    if (pread(fd, hdr, sizeof hdr, 0) != HDR_LEN ||
        memcmp(hdr, REG_HDR, sizeof REG_HDR - 1) != 0) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        if (now.tv_sec - st.st_mtim.tv_sec < CREATING_SECONDS)
            goto out;
    } else {
        clean_registry(fd);
    }
    if (unlinkat(dfd, name, 0) == 0)
        r = 1;
out:
    close(fd);
    return r;
}

/* The kernel's record of getdents64 (libcs spell dirent64 differently). */
struct linux_dirent64 {
    uint64_t ino;
    int64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[];
};

/* Remove what the registries of dead families list; async-signal-safe
 * (directory entries are read with getdents64, not readdir). */
static int clean_stale(void)
{
    char dir[64];
    registry_dir(dir, sizeof dir);
    int dfd = open_dir_checked(dir);
    if (dfd < 0)
        return dfd == -ENOENT ? 0 : dfd;
    int cleaned = 0;
    char buf[4096] __attribute__((aligned(8)));
    for (;;) {
        long got = syscall(SYS_getdents64, dfd, buf, sizeof buf);
        if (got <= 0)
            break;
        for (long off = 0; off < got;) {
            struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
            off += d->reclen;
            if (strncmp(d->name, "fam-", 4) == 0 && clean_one(dfd, d->name) == 1)
                cleaned++;
        }
    }
    close(dfd);
    return cleaned;
}

int mp_cleanup_stale(void)
{
    return clean_stale();
}

/* ---- the tracker process -------------------------------------------------- */

/* In the tracker process: remove everything still tracked.  Only
 * async-signal-safe calls: we are the child of a fork of a program that may
 * have threads. */
static void cleanup(struct mp__tracker *t)
{
    mp__robust_lock(&t->lock);
    int n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (struct tracked *e = t->head; e; e = e->next)
            if ((e->r.kind == MP__TRACK_DIR) == (pass == 1) && remove_rec(&e->r) &&
                e->r.kind == MP__TRACK_SHM)
                n++;
    t->head = NULL;
    mp__robust_unlock(&t->lock);
    /* The registry is at fd 3 here; its name may never have been made (its
     * creator died first) or made again since by someone else. */
    struct stat a, b;
    if (t->regfd >= 0 && fstat(3, &a) == 0 && lstat(t->regpath, &b) == 0 &&
        a.st_dev == b.st_dev && a.st_ino == b.st_ino)
        unlink(t->regpath);
    if (n > 0) {
        char msg[128];
        int len = snprintf(msg, sizeof msg,
                           "libmp resource_tracker: unlinked %d leaked "
                           "shared_memory segment(s) at shutdown\n",
                           n);
        if (len > 0 && write(2, msg, (size_t)len) < 0)
            return;
    }
}

/* Move fd to 'to' (a fresh number first, so that fd == to and clashes with
 * the other fds being placed are harmless). */
static void place_fd(int fd, int to)
{
    int high = fcntl(fd, F_DUPFD, 10);
    if (high >= 0) {
        dup2(high, to);
        close(high);
    }
}

static _Noreturn void tracker_main(struct mp__tracker *t, int rfd)
{
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    /* Whatever thread started it (a Pool's blocks every signal), the
     * tracker blocks none, as Python's does. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    prctl(PR_SET_NAME, "mp-tracker");
    /* Hold nothing of the parent's but the pipe, the registry and stderr:
     * an inherited socket or pipe end would keep someone else's EOF from
     * arriving.  Holding the registry keeps it locked, so that nobody
     * takes this family for dead while the tracker cleans up. */
    int in = fcntl(rfd, F_DUPFD, 10);
    int reg = t->regfd >= 0 ? fcntl(t->regfd, F_DUPFD, 10) : -1;
    if (in >= 0)
        place_fd(in, 0);
    if (reg >= 0)
        place_fd(reg, 3);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0 && devnull != 1) {
        dup2(devnull, 1);
        close(devnull);
    }
    syscall(SYS_close_range, reg >= 0 ? 4u : 3u, ~0u, 0u);
    /* The families that died with their trackers (a cgroup kill). */
    clean_stale();
    char buf[64];
    for (;;) {
        ssize_t r = read(0, buf, sizeof buf);
        if (r == 0 || (r < 0 && errno != EINTR))
            break;
    }
    cleanup(t);
    _exit(0);
}

static int start(struct mp__tracker *t)
{
    t->regfd = -1;
    /* Without a registry the tracker still works; only the clean-up after
     * a kill of the tracker itself is lost. */
    if (registry_create(t) != 0)
        t->regfd = -1;
    int p[2];
    int r = 0;
    if (pipe2(p, O_CLOEXEC) != 0) {
        r = mp__errno();
        goto fail;
    }
    /* _Fork: no fork handlers, for the caller may hold locks that they
     * take (the forkserver's, when it starts a server); what runs in the
     * children is async-signal-safe. */
    pid_t pid = _Fork();
    if (pid < 0) {
        r = mp__errno();
        close(p[0]);
        close(p[1]);
        goto fail;
    }
    if (pid == 0) {
        /* A session of its own, before the tracker exists: once the
         * caller returns, no signal to its process group reaches it. */
        close(p[1]);
        setsid();
        pid_t g = _Fork();
        if (g == 0)
            tracker_main(t, p[0]);
        t->pid = g;
        _exit(g > 0 ? 0 : 1);
    }
    close(p[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        close(p[1]);
        r = -EAGAIN;
        goto fail;
    }
    t->wfd = p[1];
    if (t->regfd >= 0 && t->unlinked)
        registry_link(t);
    r = mp__fd_register(p[1], t);
    if (r == 0 && t->regfd >= 0)
        r = mp__fd_register(t->regfd, t);
    if (r == 0)
        return 0;
    /* The tracker sees EOF and removes the registry file. */
    mp__fd_unregister(p[1]);
    close(p[1]);
    if (t->regfd >= 0)
        close(t->regfd);
    return r;
fail:
    if (t->regfd >= 0) {
        if (!t->unlinked)
            unlink(t->regpath);
        close(t->regfd);
    }
    return r;
}

static struct mp__tracker *ensure(int *err)
{
    pthread_mutex_lock(&start_lock);
    struct mp__tracker *t = current();
    if (t == NULL) {
        t = mp__obj_new(sizeof *t, TRACKER_MAGIC);
        if (t == NULL) {
            *err = -ENOMEM;
        } else if ((*err = mp__robust_mutex_init(&t->lock)) != 0 || (*err = start(t)) != 0) {
            mp__obj_free(t);
            t = NULL;
        } else {
            mine = t;
        }
    }
    pthread_mutex_unlock(&start_lock);
    return t;
}

int mp__tracker_start(void)
{
    int err = 0;
    return ensure(&err) != NULL ? 0 : (err ? err : -ENOMEM);
}

pid_t mp__tracker_pid(void)
{
    pthread_mutex_lock(&start_lock);
    struct mp__tracker *t = current();
    pid_t pid = t != NULL ? t->pid : 0;
    pthread_mutex_unlock(&start_lock);
    return pid;
}

/* The identity recorded for name: the file that fd is open on, or the
 * path itself (not followed). */
static int identify(struct stat *st, const char *name, int fd)
{
    if (fd >= 0 ? fstat(fd, st) != 0 : lstat(name, st) != 0)
        return mp__errno();
    return 0;
}

/* Add a record (magic, kind, name, identity st or none) to the list and
 * the registry. */
static int add(uint32_t magic, enum mp__track_kind kind, const char *name,
               const struct stat *st, struct mp__tracker **where)
{
    if (strlen(name) >= NAME_LEN)
        return -ENAMETOOLONG;
    int err = 0;
    struct mp__tracker *t = ensure(&err);
    if (t == NULL)
        return err ? err : -ENOMEM;
    struct rec r = {.magic = magic, .kind = kind};
    snprintf(r.name, sizeof r.name, "%s", name);
    if (st != NULL) {
        r.dev = (uint64_t)st->st_dev;
        r.ino = (uint64_t)st->st_ino;
    }
    mp__robust_lock(&t->lock);
    struct tracked *e = t->spare;
    if (e != NULL) {
        t->spare = e->next;
    } else {
        e = mp__alloc(sizeof *e);
        if (e != NULL)
            e->slot = t->nslots++;
    }
    if (e != NULL) {
        e->r = r;
        registry_write(t, e->slot, &e->r);
        e->next = t->head;
        /* Last, so that a death here never leaves a half-made record in
         * the list the tracker reads. */
        __atomic_store_n(&t->head, e, __ATOMIC_RELEASE);
    }
    mp__robust_unlock(&t->lock);
    if (e == NULL)
        return -ENOMEM;
    *where = t;
    return 0;
}

int mp__tracker_register_stat(enum mp__track_kind kind, const char *name,
                              const struct stat *st, struct mp__tracker **where)
{
    return add(REC_LIVE, kind, name, st, where);
}

int mp__tracker_register(enum mp__track_kind kind, const char *name, int fd,
                         struct mp__tracker **where)
{
    struct stat st;
    int err = identify(&st, name, fd);
    return err != 0 ? err : add(REC_LIVE, kind, name, &st, where);
}

int mp__tracker_reserve(enum mp__track_kind kind, const char *name, struct mp__tracker **where)
{
    return add(REC_PENDING, kind, name, NULL, where);
}

int mp__tracker_confirm(struct mp__tracker *t, enum mp__track_kind kind, const char *name,
                        int fd)
{
    if (mp__obj_check(t, TRACKER_MAGIC) != 0)
        return MP_EINVAL;
    struct stat st;
    int err = identify(&st, name, fd);
    if (err != 0)
        return err;
    err = -ENOENT;
    mp__robust_lock(&t->lock);
    for (struct tracked *e = t->head; e; e = e->next) {
        if (e->r.kind == (uint32_t)kind && strcmp(e->r.name, name) == 0) {
            e->r.dev = (uint64_t)st.st_dev;
            e->r.ino = (uint64_t)st.st_ino;
            /* Last: a death here leaves the record pending or whole. */
            __atomic_store_n(&e->r.magic, REC_LIVE, __ATOMIC_RELEASE);
            registry_write(t, e->slot, &e->r);
            err = 0;
            break;
        }
    }
    mp__robust_unlock(&t->lock);
    return err;
}

void mp__tracker_unregister(struct mp__tracker *t, enum mp__track_kind kind, const char *name)
{
    if (mp__obj_check(t, TRACKER_MAGIC) != 0)
        return;
    mp__robust_lock(&t->lock);
    for (struct tracked **pp = &t->head; *pp; pp = &(*pp)->next) {
        struct tracked *e = *pp;
        if (e->r.kind == (uint32_t)kind && strcmp(e->r.name, name) == 0) {
            *pp = e->next;
            registry_write(t, e->slot, NULL);
            e->r.magic = 0;
            e->next = t->spare;
            t->spare = e;
            break;
        }
    }
    mp__robust_unlock(&t->lock);
}
