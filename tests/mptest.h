/*
 * mptest.h: helpers shared by the unit tests.
 *
 * A forked child never calls a cmocka assert: it reports through its exit
 * status, and the parent checks it with mpt_wait_ok().
 */
#ifndef MPTEST_H
#define MPTEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/types.h>

/* Number of open fds in this process. */
int mpt_count_fds(void);

/* Number of entries in /dev/shm whose name starts with prefix (NULL: all). */
int mpt_count_shm(const char *prefix);

/* Number of live or zombie children of this process. */
int mpt_count_children(void);

/* waitpid(pid) and return its exit status, or 1000 + signal if killed. */
int mpt_wait_status(pid_t pid);

/*
 * Fixture checks for leaks: call mpt_leak_begin() at the start of a test and
 * mpt_leak_end() at its end; the latter fails the test if fds, children or
 * /dev/shm entries were left behind.
 */
void mpt_leak_begin(void);
void mpt_leak_end(void);

#endif
