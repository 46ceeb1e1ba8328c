/* internal/resource_tracker.h: the tracker of named shared memory and of
 * socket files (see resource_tracker.c). */
#ifndef LIBMP_INTERNAL_RESOURCE_TRACKER_H
#define LIBMP_INTERNAL_RESOURCE_TRACKER_H

#include <sys/stat.h>
#include <sys/types.h>

struct mp__tracker;

enum mp__track_kind {
    MP__TRACK_SHM = 1, /* a POSIX shared memory name, with its leading '/' */
    MP__TRACK_SOCKET,  /* a Unix socket's path */
    MP__TRACK_DIR,     /* an (empty by then) directory's path */
};

/* Make sure this process belongs to a running tracker: 0 or -errno. */
int mp__tracker_start(void);

/* The pid of this process's tracker, 0 if it has none (for tests). */
pid_t mp__tracker_pid(void);

/*
 * Track name, removed when the family ends unless untracked first.  fd, if
 * not -1, is open on the file (its identity is recorded from it; otherwise
 * from the path).  *where receives the registry.  0, or -errno.
 */
int mp__tracker_register(enum mp__track_kind kind, const char *name, int fd,
                         struct mp__tracker **where);

/* As mp__tracker_register, with the identity given: a name may be tracked
 * before it exists, as the file st describes (then made with link()). */
int mp__tracker_register_stat(enum mp__track_kind kind, const char *name,
                              const struct stat *st, struct mp__tracker **where);

/*
 * Track a name before it is made, for a name only this family can make (a
 * random one, or one inside a directory so reserved): if the family ends
 * before mp__tracker_confirm, the tracker removes whatever file of that
 * kind and of this user has the name.  Closes the window between the
 * creation of a name and its registration.  0, or -errno.
 */
int mp__tracker_reserve(enum mp__track_kind kind, const char *name,
                        struct mp__tracker **where);

/* The reserved name now exists: record its identity (from fd if not -1,
 * else the path), as mp__tracker_register does.  0, -ENOENT if name is not
 * tracked in t, or -errno. */
int mp__tracker_confirm(struct mp__tracker *t, enum mp__track_kind kind, const char *name,
                        int fd);

/* Stop tracking name in registry t (NULL: no-op). */
void mp__tracker_unregister(struct mp__tracker *t, enum mp__track_kind kind, const char *name);

#endif
