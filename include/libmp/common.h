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

/*
 * The version of the headers.  The library that is running may be newer:
 * ask it with mp_version() and mp_version_string() (below).
 */
#define MP_VERSION_MAJOR 0
#define MP_VERSION_MINOR 1
#define MP_VERSION_PATCH 0
#define MP_VERSION_STRING "0.1.0"
/* MP_VERSION_HEX: 0xMMmmpp, the form mp_version() returns. */
#define MP_VERSION_HEX ((MP_VERSION_MAJOR << 16) | (MP_VERSION_MINOR << 8) | MP_VERSION_PATCH)

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

/*
 * Options structs.  Every mp_X_options struct begins with
 * size_t struct_size, which the mp_X_new(.field = ...) macros set to the
 * size of the struct the caller was compiled with; the library reads only
 * the fields that size covers, so a program built against an older header
 * keeps working when a newer library adds fields (they read as zero).  A
 * struct_size of 0 stands for the layout of libmp 0.1 (what a
 * zero-initialised struct gives), a size smaller than that or bigger than
 * the library's own with a nonzero byte in the part it does not know is
 * MP_EINVAL.  Fields are only ever appended.
 *
 * C++: the macros use C99 compound literals, which C++ does not have.
 * Before C++20, fill a zero-initialised struct and call the _opts function:
 *     mp_process_options o = {};
 *     o.target = worker;
 *     mp_process *p = mp_process_new_opts(&o);
 * From C++20 on, the macros work with designated initialisers, given in the
 * order the fields are declared (a C++20 rule):
 *     mp_process *p = mp_process_new(.target = worker, .name = "w");
 * (g++ 12 warns about the fields left out under -Wextra, where gcc does
 * not for C: add -Wno-missing-field-initializers; clang++ does not warn.)
 * The mp_val literals (MP_I64, MP_LIST, ...) stay C only; C++ builds values
 * with the mp_val_* constructors (val.h).
 */
#ifndef __cplusplus
#define MP__OPTS(type, ...) (&(const type){.struct_size = sizeof(type), __VA_ARGS__})
#elif __cplusplus >= 202002L
extern "C++" {
/* The address of a temporary that lives to the end of the full expression. */
template <class T> inline const T *mp__opts_ptr(const T &opts)
{
    return &opts;
}
}
#define MP__OPTS(type, ...) ::mp__opts_ptr(type{.struct_size = sizeof(type), __VA_ARGS__})
#else
/* Names what to do instead in the compiler's "not declared" error. */
#define MP__OPTS(type, ...) MP_options_macros_need_CXX20_call_the_opts_function_instead
#endif

MP_BEGIN_DECLS

/*
 * mp_version: the version of the library that is running, as
 * MP_VERSION_HEX encodes it (0xMMmmpp); compare it with MP_VERSION_HEX,
 * the version of the headers the program was compiled with.
 * mp_version_string: the same as "MAJOR.MINOR.PATCH", a static string.
 * Both are async-signal-safe and callable before any other libmp call.
 */
MP_EXTERN unsigned mp_version(void);
MP_EXTERN const char *mp_version_string(void);

MP_END_DECLS

#endif /* LIBMP_COMMON_H */
