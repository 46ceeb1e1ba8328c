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

/* Whether this program runs under valgrind (RUNNING_ON_VALGRIND where
 * <valgrind/valgrind.h> exists, else valgrind's preloaded libraries). */
int mpt_valgrind(void);

/* The first python3 on PATH, in out (n bytes): 1 if there is one, else 0. */
int mpt_find_python3(char *out, size_t n);

/* Number of open fds in this process. */
int mpt_count_fds(void);

/* Number of entries in /dev/shm whose name starts with prefix (NULL: all). */
int mpt_count_shm(const char *prefix);

/* Number of live or zombie children of this process. */
int mpt_count_children(void);

/*
 * The process table.  mpt_proc_stat reads /proc/PID/stat: 0, or -1 if there
 * is no such process (any out pointer may be NULL).  mpt_count_pgroup counts
 * the live (not zombie) processes of process group pgid; mpt_find_process
 * returns a live process named comm whose parent is ppid, or 0.
 */
int mpt_proc_stat(pid_t pid, char *state, pid_t *ppid, pid_t *pgid, char *comm,
                  size_t commlen);
int mpt_count_pgroup(pid_t pgid);
pid_t mpt_find_process(const char *comm, pid_t ppid);

/* SIGKILL and reap every child of this process until it has none (for a
 * subreaper: orphans keep arriving while their parents die). */
void mpt_kill_children(void);

/*
 * Randomized tests: mpt_seed() is the seed of this run (MPT_SEED from the
 * environment, else from the clock), printed once with the test's name so
 * that a failure can be replayed; mpt_rand() is a small xorshift generator
 * over a caller's state.
 */
uint64_t mpt_seed(const char *test);
uint64_t mpt_rand(uint64_t *state);

/* Run fn(arg) in a forked child that exits with fn's return value (stdio
 * is flushed first); its pid.  The child never calls a cmocka assert. */
pid_t mpt_fork(int (*fn)(void *arg), void *arg);

/* waitpid(pid) and return its exit status, or 1000 + signal if killed. */
int mpt_wait_status(pid_t pid);

/* mpt_wait_status within seconds (seconds * 100 polls 10 ms apart): -1 if
 * pid has not ended by then (it is neither killed nor reaped) or cannot be
 * waited for. */
int mpt_wait_timed(pid_t pid, double seconds);

/*
 * Processes of the family, for the parent's side of a test: mpt_start makes
 * and starts one (failing the test if it cannot); mpt_join_ok joins it
 * within timeout seconds, fails the test unless it exited with 0, and frees
 * it; mpt_run_ok is the two in one.  The target reports through its return
 * value, never a cmocka assert.
 */
struct mp_process *mpt_start(int (*target)(void *arg, size_t size), void *arg, size_t size);
void mpt_join_ok(struct mp_process *p, double timeout);
void mpt_run_ok(int (*target)(void *arg, size_t size), void *arg, size_t size, double timeout);

/*
 * This test run's shared memory names: the prefix of the names libmp
 * generates in this family ("mp_" and the root's pid in hex, "_"), a name
 * for a test's own segment ("mpt_WHAT_PID"), and the number of such names
 * in /dev/shm.  Leak checks count only these, so that other programs (and
 * another test run in parallel) never fail them.
 */
const char *mpt_shm_prefix(void);
void mpt_shm_name(char *out, size_t n, const char *what);
int mpt_count_own_shm(void);

/*
 * Fixture checks for leaks: call mpt_leak_begin() at the start of a test and
 * mpt_leak_end() at its end; the latter fails the test if fds, children or
 * this run's /dev/shm names were left behind.  mpt_leak_begin() starts the
 * resource tracker first (its two fds stay open until the program exits).
 */
void mpt_leak_begin(void);
void mpt_leak_end(void);

/* The usual cmocka fixture: mpt_setup makes the shared arena and calls
 * mpt_leak_begin(); mpt_teardown calls mpt_leak_end(). */
int mpt_setup(void **state);
int mpt_teardown(void **state);

/*
 * Start methods.  The suites run the process-level tests under each start
 * method by setting MP_START_METHOD; mpt_method() is that method ("fork"
 * when unset), and mpt_forking() is true under fork.  Under forkserver,
 * mpt_leak_begin() starts the server first, so that its one fd (kept until
 * the test program exits) does not count as a leak.
 */
const char *mpt_method(void);
int mpt_forking(void);

/*
 * A raw fd handed to a child as argument bytes reaches it under fork only:
 * spawn and forkserver pass only the fds that libmp objects own (Python
 * passes only what the child needs).  mpt_pass_fd registers fd as owned by
 * a test object, so that every start method passes it, at the same number;
 * mpt_pipe makes a pipe whose two ends are passed; mpt_close unregisters
 * and closes.
 */
void mpt_pass_fd(int fd);
int mpt_pipe(int pfd[2]);
void mpt_close(int fd);

/*
 * Use up every fd of the calling process but spare: lower the soft
 * RLIMIT_NOFILE to just above the highest open fd and fill the free numbers
 * below it, then close spare of them (0, or -1 if that failed).  mpt_fds_restore closes those fds and puts the
 * limit back.  For a forked child that checks EMFILE paths.
 */
int mpt_fds_exhaust(int spare);
void mpt_fds_restore(void);

#endif
