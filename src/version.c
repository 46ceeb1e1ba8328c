/*
 * version.c: the version of the running library, and the rule that lets
 * options structs grow without breaking programs built against an older
 * header (common.h).
 */
#include "internal/mp.h"

#include <string.h>

/* common.h's version macros must follow meson.build's project version. */
#ifdef MP__PROJECT_VERSION
#define MP__SAME_VERSION_(major, minor, patch) \
    (MP_VERSION_MAJOR == (major) && MP_VERSION_MINOR == (minor) && MP_VERSION_PATCH == (patch))
#define MP__SAME_VERSION(...) MP__SAME_VERSION_(__VA_ARGS__)
_Static_assert(MP__SAME_VERSION(MP__PROJECT_VERSION),
               "MP_VERSION_* in common.h differ from the version in meson.build");
#endif

/* An options struct never comes close to this; a bigger size is garbage. */
#define OPTS_MAX_SIZE 4096

unsigned mp_version(void)
{
    return MP_VERSION_HEX;
}

const char *mp_version_string(void)
{
    return MP_VERSION_STRING;
}

const void *mp__opts_load(void *dst, size_t cur, size_t base, const void *src, int *err)
{
    *err = 0;
    if (src == NULL)
        return NULL;
    size_t size;
    memcpy(&size, src, sizeof size);
    if (size == 0)
        size = base;
    if (size < base || size > OPTS_MAX_SIZE) {
        *err = MP_EINVAL;
        return NULL;
    }
    const unsigned char *bytes = src;
    for (size_t i = cur; i < size; i++) {
        if (bytes[i] != 0) {
            *err = MP_EINVAL;
            return NULL;
        }
    }
    memset(dst, 0, cur);
    memcpy(dst, src, size < cur ? size : cur);
    return dst;
}
