/*
 * features.c: the newer kernel calls libmp can do without, MP_DISABLE to
 * pretend they are missing, and counts of the fallbacks taken (see
 * internal/linux.h and docs/design.md, "What libmp needs").
 */
#include "internal/mp.h"
#include "internal/linux.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[MP__FEAT_COUNT] = {
    [MP__FEAT_PIDFD] = "pidfd",
    [MP__FEAT_FUTEX_WAITV] = "futex_waitv",
    [MP__FEAT_MEMBARRIER] = "membarrier",
    [MP__FEAT_TMPFILE] = "tmpfile",
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static unsigned disabled;
static _Atomic unsigned long taken[MP__FEAT_COUNT];

/* MP_DISABLE is a comma-separated list of the names above, or "all". */
static void read_env(void)
{
    const char *v = getenv("MP_DISABLE");
    while (v != NULL && *v != '\0') {
        size_t n = strcspn(v, ",");
        for (int f = 0; f < MP__FEAT_COUNT; f++)
            if ((n == 3 && strncmp(v, "all", 3) == 0) ||
                (strlen(names[f]) == n && strncmp(v, names[f], n) == 0))
                disabled |= 1u << f;
        v += n + (v[n] == ',');
    }
}

bool mp__feature_disabled(enum mp__feature f)
{
    pthread_once(&once, read_env);
    return (disabled >> f) & 1u;
}

const char *mp__feature_name(enum mp__feature f)
{
    return f >= 0 && f < MP__FEAT_COUNT ? names[f] : NULL;
}

void mp__fallback_taken(enum mp__feature f)
{
    atomic_fetch_add_explicit(&taken[f], 1, memory_order_relaxed);
}

unsigned long mp__fallback_count(enum mp__feature f)
{
    return f >= 0 && f < MP__FEAT_COUNT ? atomic_load_explicit(&taken[f], memory_order_relaxed)
                                        : 0;
}
