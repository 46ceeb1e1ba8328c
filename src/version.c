/*
 * version.c: the version of the running library, and the rule that lets
 * options structs grow without breaking programs built against an older
 * header (common.h).
 */
#include "internal/mp.h"

#include <string.h>

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
