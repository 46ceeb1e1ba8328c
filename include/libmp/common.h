/*
 * libmp/common.h: definitions every libmp header shares.
 *
 * libmp is Python's multiprocessing for C programs on POSIX.  This header
 * holds the export marker, the timeout convention and the version macros.
 * It is included by <libmp.h>; there is no reason to include it directly.
 */
#ifndef LIBMP_COMMON_H
#define LIBMP_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
#define MP_BEGIN_DECLS extern "C" {
#define MP_END_DECLS }
#else
#define MP_BEGIN_DECLS
#define MP_END_DECLS
#endif

/*
 * MP_EXTERN marks the public API.  The library is built with hidden symbol
 * visibility, so only what carries this marker is exported.
 */
#if defined(MP_BUILDING_LIBMP) && defined(__GNUC__)
#define MP_EXTERN __attribute__((visibility("default")))
#else
#define MP_EXTERN
#endif

#define MP_VERSION_MAJOR 0
#define MP_VERSION_MINOR 1
#define MP_VERSION_PATCH 0
#define MP_VERSION_STRING "0.1.0"

/*
 * Timeouts are seconds as a double, as in Python.
 *
 *   MP_FOREVER   block until the operation can complete (Python's None);
 *   0            try once and do not block;
 *   t > 0        block for at most t seconds (INFINITY is the same as
 *                MP_FOREVER).
 *
 * Any other negative value and NaN are rejected with MP_EINVAL by every
 * function that takes a timeout.
 */
#define MP_FOREVER (-1.0)

/*
 * A start-method context (context.h), as Python's get_context() returns.
 * Every constructor's options take one as .ctx; NULL means the default
 * context (mp_set_start_method, or the MP_START_METHOD environment variable,
 * or "fork").
 */
typedef struct mp_context mp_context;

#endif /* LIBMP_COMMON_H */
