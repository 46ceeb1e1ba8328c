/*
 * resource_tracker.c: unlink named shared memory that a program created and
 * never unlinked (the role of Python's resource_tracker.py).
 *
 * The registry of tracked names lives in the arena.  The first tracked
 * creation in a process that has no tracker yet starts one: a grandchild
 * (so nobody has to reap it) that holds the read end of a pipe whose write
 * end every process of the family inherits (fork) or is handed (spawn and
 * forkserver pass registered fds).  When the last write end closes, that
 * is, when the last of those processes has ended by any means, read()
 * returns 0 and the tracker unlinks what is still registered.
 */
#include "internal/mp.h"
#include "internal/resource_tracker.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define TRACKER_MAGIC MP__MAGIC('t', 'r', 'k', 'r')

struct tracked {
    struct tracked *next;
    char name[MP_SHM_NAME_MAX + 2]; /* with the leading '/' */
};

struct mp__tracker {
    mp__obj hdr;
    pthread_mutex_t lock;
    struct tracked *head;
    int wfd; /* the write end, at this number in every member process */
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

/* In the tracker process: unlink everything still registered.  Only
 * async-signal-safe calls: we are the child of a fork of a program that may
 * have threads. */
static void cleanup(struct mp__tracker *t)
{
    mp__robust_lock(&t->lock);
    int n = 0;
    for (struct tracked *e = t->head; e; e = e->next)
        if (shm_unlink(e->name) == 0)
            n++;
    t->head = NULL;
    mp__robust_unlock(&t->lock);
    if (n > 0) {
        char msg[128];
        int len = snprintf(msg, sizeof msg,
                           "libmp resource_tracker: unlinked %d leaked "
                           "shared_memory segment(s) at shutdown\n", n);
        if (len > 0 && write(2, msg, (size_t)len) < 0)
            return;
    }
}

static _Noreturn void tracker_main(struct mp__tracker *t, int rfd)
{
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    /* Whatever thread started it (a Pool's blocks every signal), the
     * tracker blocks none, as Python's does. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    prctl(PR_SET_NAME, "mp-tracker");
    /* Hold nothing of the parent's but the pipe and stderr: an inherited
     * socket or pipe end would keep someone else's EOF from arriving. */
    if (rfd != 0) {
        dup2(rfd, 0);
        close(rfd);
    }
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0 && devnull != 1) {
        dup2(devnull, 1);
        close(devnull);
    }
    syscall(SYS_close_range, 3u, ~0u, 0u);
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
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return mp__errno();
    pid_t pid = fork();
    if (pid < 0) {
        int r = mp__errno();
        close(p[0]);
        close(p[1]);
        return r;
    }
    if (pid == 0) {
        close(p[1]);
        if (fork() == 0)
            tracker_main(t, p[0]);
        _exit(0);
    }
    close(p[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    t->wfd = p[1];
    return mp__fd_register(p[1], t);
}

static struct mp__tracker *ensure(int *err)
{
    pthread_mutex_lock(&start_lock);
    struct mp__tracker *t = current();
    if (t == NULL) {
        t = mp__obj_new(sizeof *t, TRACKER_MAGIC);
        if (t == NULL) {
            *err = -ENOMEM;
        } else if (mp__robust_mutex_init(&t->lock) != 0 || (*err = start(t)) != 0) {
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

int mp__tracker_register(const char *name, struct mp__tracker **where)
{
    int err = 0;
    struct mp__tracker *t = ensure(&err);
    if (t == NULL)
        return err ? err : -ENOMEM;
    struct tracked *e = mp__alloc(sizeof *e);
    if (e == NULL)
        return -ENOMEM;
    snprintf(e->name, sizeof e->name, "%s", name);
    mp__robust_lock(&t->lock);
    e->next = t->head;
    t->head = e;
    mp__robust_unlock(&t->lock);
    *where = t;
    return 0;
}

void mp__tracker_unregister(struct mp__tracker *t, const char *name)
{
    if (mp__obj_check(t, TRACKER_MAGIC) != 0)
        return;
    struct tracked *found = NULL;
    mp__robust_lock(&t->lock);
    for (struct tracked **pp = &t->head; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->name, name) == 0) {
            found = *pp;
            *pp = found->next;
            break;
        }
    }
    mp__robust_unlock(&t->lock);
    mp__free(found);
}
