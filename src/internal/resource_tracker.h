/* internal/resource_tracker.h: the tracker of named shared memory. */
#ifndef LIBMP_INTERNAL_RESOURCE_TRACKER_H
#define LIBMP_INTERNAL_RESOURCE_TRACKER_H

struct mp__tracker;

/* Make sure this process belongs to a running tracker: 0 or -errno. */
int mp__tracker_start(void);

/* Track name (with its leading '/'); *where receives the registry. */
int mp__tracker_register(const char *name, struct mp__tracker **where);

/* Stop tracking name in registry t (NULL: no-op). */
void mp__tracker_unregister(struct mp__tracker *t, const char *name);

#endif
