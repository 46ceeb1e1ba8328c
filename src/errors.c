/* errors.c: error codes, their names and descriptions. */
#include "internal/mp.h"

#include <errno.h>
#include <string.h>

static _Thread_local int last_error;

const char *mp_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define MP__STRERROR_CASE(name, value, text) case MP_##name: return text;
    MP__ERRNO_MAP(MP__STRERROR_CASE)
#undef MP__STRERROR_CASE
    }
    if (code < 0 && code > -4000) {
        /* strerrordesc_np is thread-safe and returns static text. */
        const char *s = strerrordesc_np(-code);
        if (s != NULL)
            return s;
    }
    return "unknown error";
}

const char *mp_err_name(int code)
{
    switch (code) {
    case 0:
        return "OK";
#define MP__ERRNAME_CASE(name, value, text) case MP_##name: return "MP_" #name;
    MP__ERRNO_MAP(MP__ERRNAME_CASE)
#undef MP__ERRNAME_CASE
    }
    if (code < 0 && code > -4000) {
        const char *s = strerrorname_np(-code);
        if (s != NULL)
            return s;
    }
    return "UNKNOWN";
}

int mp_last_error(void)
{
    return last_error;
}

void *mp__fail_null(int code)
{
    last_error = code;
    errno = code > -4000 && code < 0 ? -code : EINVAL;
    return NULL;
}
