/*
 * libmp/errors.h: the error model.
 *
 * Every libmp function that can fail returns an int: 0 on success and a
 * negative code on failure.  Operating system errors are returned as
 * -errno (for example -ENOMEM, -EMFILE); each Python exception that
 * multiprocessing can raise has a code of its own, listed below.  The two
 * ranges never overlap: libmp's own codes are all below -4000, far past any
 * errno value.
 *
 * Constructors that return a pointer return NULL on failure and record the
 * code for the calling thread, to be read with mp_last_error().
 *
 * Python                                    libmp
 * ---------------------------------------   --------------
 * queue.Empty                               MP_EEMPTY
 * queue.Full                                MP_EFULL
 * TimeoutError, acquire() returning False   MP_ETIMEDOUT
 * EOFError (peer closed)                    MP_EEOF
 * BufferTooShort                            MP_ETOOSHORT
 * AuthenticationError                       MP_EAUTH
 * threading.BrokenBarrierError              MP_EBROKEN
 * ValueError (closed object, bad argument)  MP_EINVAL
 * managers.RemoteError                      MP_EREMOTE
 * BrokenProcessPool / a worker that died    MP_EWORKERLOST
 * (new) lock holder died while holding it   MP_EOWNERDEAD
 * (new) spawn cannot take a child over      MP_ESPAWNMAIN
 */
#ifndef LIBMP_ERRORS_H
#define LIBMP_ERRORS_H

#include "common.h"

MP_BEGIN_DECLS

#define MP__ERRNO_MAP(XX)                                                   \
    XX(EEMPTY, -4001, "queue is empty")                                     \
    XX(EFULL, -4002, "queue is full")                                       \
    XX(ETIMEDOUT, -4003, "operation timed out")                             \
    XX(EEOF, -4004, "end of file: the peer closed the connection")          \
    XX(ETOOSHORT, -4005, "buffer too short for the message")                \
    XX(EAUTH, -4006, "authentication failed")                               \
    XX(EBROKEN, -4007, "barrier is broken")                                 \
    XX(EINVAL, -4008, "invalid argument or closed object")                  \
    XX(EREMOTE, -4009, "error in the remote (manager) process")             \
    XX(EWORKERLOST, -4010, "worker process died before finishing the task") \
    XX(EOWNERDEAD, -4011, "previous owner died while holding the lock")     \
    XX(ESPAWNMAIN, -4012, "spawn needs mp_spawn_main(argc, argv) at the top of main")

/*
 * Misuse that Python reports with AssertionError (start a process twice,
 * join one that was never started) is MP_EINVAL here too.  A blocking call
 * that gives control back because of SIGINT (Python's KeyboardInterrupt)
 * returns -EINTR.
 */
typedef enum mp_errno {
#define MP__ERRNO_ENUM(name, value, text) MP_##name = value,
    MP__ERRNO_MAP(MP__ERRNO_ENUM)
#undef MP__ERRNO_ENUM
        MP__ERRNO_LAST = -4013
} mp_errno;

/*
 * mp_strerror: a static, human-readable description of an error code.
 *
 * code  a libmp code (MP_E...), a negated errno value, or 0.
 *
 * Returns a string that is never NULL and must not be freed: for 0
 * "success", for -errno the C library's description of errno, and
 * "unknown error" for anything else.  Thread-safe and async-signal-safe.
 */
MP_EXTERN const char *mp_strerror(int code);

/*
 * mp_err_name: the symbolic name of an error code, as a static string.
 *
 * code  as for mp_strerror.
 *
 * Returns "MP_EEMPTY" for MP_EEMPTY and so on, "ENOMEM" for -ENOMEM,
 * "OK" for 0 and "UNKNOWN" for anything else.  Never NULL; do not free.
 * Thread-safe and async-signal-safe.
 */
MP_EXTERN const char *mp_err_name(int code);

/*
 * mp_last_error: the code of the last failure of a pointer-returning
 * constructor (mp_X_new) in the calling thread.
 *
 * Returns 0 if no constructor has failed in this thread yet.  Successful
 * calls do not reset it.  Thread-safe (the value is per thread).
 */
MP_EXTERN int mp_last_error(void);

MP_END_DECLS

#endif /* LIBMP_ERRORS_H */
