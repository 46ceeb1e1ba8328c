/*
 * internal/linux.h: the Linux system-call interface libmp uses beyond what
 * every C library declares.
 *
 * glibc builds see the kernel's own headers; a C library without them in
 * its include path (musl-gcc) gets the same constants from here.  The
 * values are the kernel's ABI (include/uapi/linux/futex.h, membarrier.h,
 * fs.h; x86-64 and the generic syscall table share the numbers below from
 * 424 on).  Minimum kernel for each call: docs/design.md, "What libmp
 * needs".
 */
#ifndef LIBMP_INTERNAL_LINUX_H
#define LIBMP_INTERNAL_LINUX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<linux/futex.h>)
#include <linux/futex.h>
#endif
#if __has_include(<linux/membarrier.h>)
#include <linux/membarrier.h>
#define MP__HAVE_LINUX_MEMBARRIER_H 1
#endif
#endif

#ifndef FUTEX_WAKE
#define FUTEX_WAKE 1
#define FUTEX_WAIT_BITSET 9
#define FUTEX_PRIVATE_FLAG 128
#define FUTEX_BITSET_MATCH_ANY 0xffffffffu
#define FUTEX_WAITERS 0x80000000u
#define FUTEX_OWNER_DIED 0x40000000u
#define FUTEX_TID_MASK 0x3fffffffu
#endif
#ifndef FUTEX_32
#define FUTEX_32 2
struct futex_waitv {
    uint64_t val;
    uint64_t uaddr;
    uint32_t flags;
    uint32_t __reserved;
};
#endif

#ifndef MP__HAVE_LINUX_MEMBARRIER_H
#define MEMBARRIER_CMD_GLOBAL_EXPEDITED (1 << 1)
#define MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED (1 << 2)
#endif

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

/* pwritev2 at the current file position (offset -1), through the system
 * call: musl before 1.2.5 has no wrapper.  On 64-bit targets the offset is
 * one register and the high half is ignored. */
static inline ssize_t mp__pwritev2_cur(int fd, const struct iovec *iov, int cnt, int flags)
{
    return (ssize_t)syscall(SYS_pwritev2, fd, iov, cnt, -1L, -1L, flags);
}

/*
 * Kernel features with a fallback (features.c).  The MP_DISABLE environment
 * variable, read once, names the ones to treat as missing:
 * MP_DISABLE=pidfd,futex_waitv,membarrier,tmpfile (or "all").  Each fallback path
 * counts itself with mp__fallback_taken, so a test can check that it ran.
 */
enum mp__feature {
    MP__FEAT_PIDFD,       /* pidfd_open (5.3): sentinels, signals, parent */
    MP__FEAT_FUTEX_WAITV, /* FUTEX_WAITV (5.16): lock waiters see a death */
    MP__FEAT_MEMBARRIER,  /* MEMBARRIER_CMD_GLOBAL_EXPEDITED (4.16): queues */
    MP__FEAT_TMPFILE,     /* O_TMPFILE on /dev/shm (3.11) and /proc: shm names */
    MP__FEAT_COUNT
};

/* True when MP_DISABLE names feature f (the caller then takes its fallback
 * as if the kernel had said ENOSYS). */
bool mp__feature_disabled(enum mp__feature f);
const char *mp__feature_name(enum mp__feature f);

/* Count one use of f's fallback in this process; and read the count. */
void mp__fallback_taken(enum mp__feature f);
unsigned long mp__fallback_count(enum mp__feature f);

#endif /* LIBMP_INTERNAL_LINUX_H */
