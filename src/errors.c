/* errors.c: error codes, their names and descriptions. */
#include "internal/mp.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

static _Thread_local int last_error;

/* The names of errno values and of signals, as tables: glibc's
 * strerrorname_np and sigabbrev_np are not in other C libraries.  Aliases
 * (EWOULDBLOCK, EDEADLOCK, ENOTSUP, SIGIOT, SIGIO) take their twin's name. */
#define NAME(e) [e] = #e,
static const char *const errno_names[] = {
    NAME(EPERM) NAME(ENOENT) NAME(ESRCH) NAME(EINTR) NAME(EIO) NAME(ENXIO) NAME(E2BIG) NAME(
        ENOEXEC) NAME(EBADF) NAME(ECHILD) NAME(EAGAIN) NAME(ENOMEM) NAME(EACCES) NAME(EFAULT)
        NAME(ENOTBLK) NAME(EBUSY) NAME(EEXIST) NAME(EXDEV) NAME(ENODEV) NAME(ENOTDIR) NAME(
            EISDIR) NAME(EINVAL) NAME(ENFILE) NAME(EMFILE) NAME(ENOTTY) NAME(ETXTBSY)
            NAME(EFBIG) NAME(ENOSPC) NAME(ESPIPE) NAME(EROFS) NAME(EMLINK) NAME(EPIPE) NAME(
                EDOM) NAME(ERANGE) NAME(EDEADLK) NAME(ENAMETOOLONG) NAME(ENOLCK) NAME(ENOSYS)
                NAME(ENOTEMPTY) NAME(ELOOP) NAME(ENOMSG) NAME(EIDRM) NAME(ECHRNG) NAME(
                    EL2NSYNC) NAME(EL3HLT) NAME(EL3RST) NAME(ELNRNG) NAME(EUNATCH) NAME(ENOCSI)
                    NAME(EL2HLT) NAME(EBADE) NAME(EBADR) NAME(EXFULL) NAME(
                        ENOANO) NAME(EBADRQC) NAME(EBADSLT) NAME(EBFONT) NAME(ENOSTR)
                        NAME(ENODATA) NAME(ETIME) NAME(ENOSR) NAME(ENONET)
                            NAME(ENOPKG) NAME(EREMOTE) NAME(ENOLINK) NAME(EADV) NAME(
                                ESRMNT) NAME(ECOMM) NAME(EPROTO) NAME(EMULTIHOP) NAME(EDOTDOT)
                                NAME(EBADMSG) NAME(EOVERFLOW) NAME(ENOTUNIQ) NAME(EBADFD) NAME(
                                    EREMCHG) NAME(ELIBACC) NAME(ELIBBAD)
                                    NAME(ELIBSCN) NAME(
                                        ELIBMAX) NAME(ELIBEXEC) NAME(EILSEQ)
                                        NAME(ERESTART) NAME(ESTRPIPE) NAME(EUSERS) NAME(
                                            ENOTSOCK) NAME(EDESTADDRREQ) NAME(EMSGSIZE)
                                            NAME(EPROTOTYPE) NAME(ENOPROTOOPT) NAME(
                                                EPROTONOSUPPORT) NAME(ESOCKTNOSUPPORT) NAME(EOPNOTSUPP)
                                                NAME(EPFNOSUPPORT) NAME(EAFNOSUPPORT) NAME(EADDRINUSE) NAME(
                                                    EADDRNOTAVAIL) NAME(ENETDOWN)
                                                    NAME(ENETUNREACH) NAME(ENETRESET) NAME(
                                                        ECONNABORTED) NAME(ECONNRESET)
                                                        NAME(ENOBUFS) NAME(
                                                            EISCONN) NAME(ENOTCONN) NAME(ESHUTDOWN)
                                                            NAME(ETOOMANYREFS) NAME(ETIMEDOUT) NAME(
                                                                ECONNREFUSED) NAME(EHOSTDOWN)
                                                                NAME(EHOSTUNREACH) NAME(
                                                                    EALREADY) NAME(EINPROGRESS)
                                                                    NAME(ESTALE) NAME(EUCLEAN) NAME(
                                                                        ENOTNAM) NAME(ENAVAIL)
                                                                        NAME(EISNAM) NAME(EREMOTEIO) NAME(
                                                                            EDQUOT) NAME(ENOMEDIUM)
                                                                            NAME(EMEDIUMTYPE) NAME(
                                                                                ECANCELED) NAME(ENOKEY)
                                                                                NAME(EKEYEXPIRED) NAME(
                                                                                    EKEYREVOKED) NAME(EKEYREJECTED)
                                                                                    NAME(EOWNERDEAD) NAME(
                                                                                        ENOTRECOVERABLE)
                                                                                        NAME(
                                                                                            ERFKILL)
                                                                                            NAME(
                                                                                                EHWPOISON)};
#undef NAME
#define NAME(s) [SIG##s] = #s,
static const char *const signal_names[] = {
    NAME(HUP) NAME(INT) NAME(QUIT) NAME(ILL) NAME(TRAP) NAME(ABRT) NAME(BUS) NAME(FPE)
        NAME(KILL) NAME(USR1) NAME(SEGV) NAME(USR2) NAME(PIPE) NAME(ALRM) NAME(TERM)
            NAME(STKFLT) NAME(CHLD) NAME(CONT) NAME(STOP) NAME(TSTP) NAME(TTIN) NAME(TTOU)
                NAME(URG) NAME(XCPU) NAME(XFSZ) NAME(VTALRM) NAME(PROF) NAME(WINCH) NAME(POLL)
                    NAME(PWR) NAME(SYS)};
#undef NAME

static const char *errno_desc(int e)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 32)
    /* Thread-safe, static text, never translated. */
    return strerrordesc_np(e);
#else
    /* musl's strerror returns static text and takes no lock. */
    return e < (int)(sizeof errno_names / sizeof *errno_names) && errno_names[e] != NULL
               ? strerror(e)
               : NULL;
#endif
}

const char *mp__errno_name(int e)
{
    return e > 0 && e < (int)(sizeof errno_names / sizeof *errno_names) ? errno_names[e]
                                                                        : NULL;
}

const char *mp__signal_abbrev(int sig)
{
    return sig > 0 && sig < (int)(sizeof signal_names / sizeof *signal_names)
               ? signal_names[sig]
               : NULL;
}

const char *mp_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define MP__STRERROR_CASE(name, value, text) \
    case MP_##name:                          \
        return text;
        MP__ERRNO_MAP(MP__STRERROR_CASE)
#undef MP__STRERROR_CASE
    }
    if (code < 0 && code > -4000) {
        const char *s = errno_desc(-code);
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
#define MP__ERRNAME_CASE(name, value, text) \
    case MP_##name:                         \
        return "MP_" #name;
        MP__ERRNO_MAP(MP__ERRNAME_CASE)
#undef MP__ERRNAME_CASE
    }
    if (code < 0 && code > -4000) {
        const char *s = mp__errno_name(-code);
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
