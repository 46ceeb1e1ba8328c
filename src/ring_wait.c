/*
 * ring_wait.c: how the ring's processes wait for each other: per-process
 * state (cached pid, membarrier registration), whether a claimant is dead,
 * event counts on shared futexes, and the spin-then-sleep policy.
 * docs/queues.md ("Waiting") explains the choices.
 */
#include "internal/mp.h"
#include "internal/ring.h"
#include "internal/util.h"

#include <fcntl.h>
#include "internal/linux.h"
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Spin (pause for SPIN_PAUSE_NS, then yielding the cpu) this long before
 * sleeping: a futex wake-up takes tens of microseconds to be served here,
 * and sides that sleep sooner fall into a convoy where every batch costs
 * two wake-ups. */
#define SPIN_NS 50000u
#define SPIN_PAUSE_NS 2000u
#define NOWAIT_SPIN_NS 50000u      /* a nowait call waits this long for a claim */
#define FALLBACK_TICK_NS 10000000u /* sleep slice without membarrier */

/* ---- processes ----------------------------------------------------------- */

/*
 * Per-process state, set up on first use and again in a forked child: the
 * pid (getpid is a system call) and whether this process is registered for
 * MEMBARRIER_CMD_GLOBAL_EXPEDITED.
 *
 * Why membarrier: a producer publishes a slot and then looks at the
 * sleepers bit; a sleeper sets the bit and then looks at the slot.  Each
 * side needs a full fence between its store and its load (Dekker), which
 * as a locked instruction on every put and get costs a third of the
 * throughput.  Instead, registered processes publish with plain release
 * stores, and a sleeper, after setting the bit, has the kernel run a full
 * barrier on every CPU running a registered process: then either the
 * producer's store is visible to the sleeper's re-check, or the producer's
 * later load sees the bit.  A process that cannot register publishes with
 * a sequentially consistent exchange instead (safe with any sleeper); a
 * sleeper that cannot issue the barrier sleeps in short slices.
 */
static _Atomic pid_t self_pid;
_Atomic int mp__ring_fenceless; /* 1: plain publication, -1: fenced */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void forget_process(void)
{
    atomic_store_explicit(&self_pid, 0, memory_order_relaxed);
    atomic_store_explicit(&mp__ring_fenceless, 0, memory_order_relaxed);
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, forget_process);
}

static void process_init(void)
{
    pthread_once(&atfork_once, register_atfork);
    long rc = mp__feature_disabled(MP__FEAT_MEMBARRIER)
                  ? -1
                  : syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0);
    atomic_store_explicit(&mp__ring_fenceless, rc == 0 ? 1 : -1, memory_order_relaxed);
    atomic_store_explicit(&self_pid, getpid(), memory_order_relaxed);
}

pid_t mp__self_pid(void)
{
    pid_t p = atomic_load_explicit(&self_pid, memory_order_relaxed);
    if (MP__UNLIKELY(p == 0)) {
        process_init();
        p = atomic_load_explicit(&self_pid, memory_order_relaxed);
    }
    return p;
}

/*
 * True when pid has ended: it no longer exists, or it is a zombie (kill(2)
 * still succeeds on a zombie, so /proc says which).  A pid that cannot be
 * checked is taken as alive.
 */
bool mp__pid_dead(pid_t pid)
{
    if (pid <= 0 || pid == mp__self_pid())
        return false;
    if (kill(pid, 0) != 0)
        return errno == ESRCH;
    char path[40], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    ssize_t n = mp__read_text(path, buf, sizeof buf);
    if (n <= 0)
        return n == -ENOENT;
    const char *p = strrchr(buf, ')');
    return p != NULL && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

/* ---- waiting ------------------------------------------------------------- */

/*
 * Event counts.  A sleeper sets bit 0 (mp__ev_arm), re-checks its condition
 * and sleeps on the value it armed; a waker that has just made progress
 * visible (see the membarrier note above) looks at the word, and only if
 * bit 0 is set bumps the count (clearing the bit) and wakes everyone.  So the
 * uncontended path costs one load, and a sleeper that died only costs one
 * spurious wake-up before the bit is clear again.
 *
 * The membarrier costs a sleeper about a microsecond here, more when it
 * interrupts other cpus, and all callers in the system take one kernel
 * mutex: on an oversubscribed machine, where every wait sleeps, it made a
 * Queue ping-pong 0.5x to 0.8x the plain futex one.  So a sleeper that finds
 * the machine busy switches the count to fenced publication instead: wakers
 * then issue a full fence between their store and their look at the count,
 * which costs a few nanoseconds a put, and sleepers need no barrier at all.
 * The switch: PLAIN -> SWITCHING (compare-and-swap), one membarrier, then
 * FENCED.  A waker reads `fenced` after its store and before the count.
 * Why a sleeper that saw FENCED after arming is safe without a barrier:
 *   - a waker that read PLAIN before the switch began had done its store
 *     before that read, and the switcher's membarrier, which ended before
 *     FENCED was stored, made the store visible;
 *   - a waker that read FENCED (or SWITCHING) fences;
 *   - a waker that read PLAIN because the count was switched back (below)
 *     after this sleeper read FENCED reads the count after that, so after
 *     this sleeper armed it: it sees the bit.
 * A sleeper that finds the machine idle switches FENCED back to PLAIN and
 * issues the membarrier itself.  SWITCHING is never undone by anyone but its
 * switcher; if that one is killed in between, the count stays in fenced
 * publication and sleepers keep issuing barriers: slower, still correct.
 */
uint32_t mp__ev_arm(mp__evc *e, bool busy)
{
    (void)mp__self_pid(); /* sets up mp__ring_fenceless before it is read */
    uint32_t k = atomic_load(&e->count);
    while (!(k & 1u) && !atomic_compare_exchange_weak(&e->count, &k, k | 1u))
        ;
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&mp__ring_fenceless, memory_order_relaxed) <= 0) {
        mp__fallback_taken(MP__FEAT_MEMBARRIER); /* the publishers fence */
        return k | 1u;
    }
    uint32_t f = atomic_load_explicit(&e->fenced, memory_order_acquire);
    if (busy && f == MP__EVC_FENCED)
        return k | 1u;
    bool mine = false;
    if (busy && f == MP__EVC_PLAIN)
        mine = atomic_compare_exchange_strong(&e->fenced, &f, MP__EVC_SWITCHING);
    else if (!busy && f == MP__EVC_FENCED)
        atomic_compare_exchange_strong(&e->fenced, &f, MP__EVC_PLAIN);
    syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0);
    if (mine)
        atomic_store(&e->fenced, MP__EVC_FENCED);
    return k | 1u;
}

void mp__ev_wake_slow(mp__evc *e, uint32_t k)
{
    while (k & 1u) {
        if (atomic_compare_exchange_weak(&e->count, &k, k + 1u)) {
            mp__futex_wake((uint32_t *)&e->count, INT32_MAX);
            return;
        }
    }
}

static bool deadline_before(const mp__deadline *a, const mp__deadline *b)
{
    if (b->forever)
        return true;
    return a->at.tv_sec < b->at.tv_sec ||
           (a->at.tv_sec == b->at.tv_sec && a->at.tv_nsec < b->at.tv_nsec);
}

/*
 * One step of waiting for a condition that the caller re-evaluates after
 * every step: spin for a while, then arm the event count (the caller then
 * checks once more with the waiters bit visible), then sleep until woken,
 * the deadline d, or a slice of tick_ns (0: no slice).  Returns 0 to
 * re-evaluate, MP_ETIMEDOUT when d has passed.  A nowait deadline spins at
 * most NOWAIT_SPIN_NS (only callers waiting for a claim already under way
 * use it).  Signals interrupting the sleep are absorbed.
 */
int mp__waiter_step(mp__waiter *wt, mp__evc *ev, const mp__deadline *d, uint64_t tick_ns)
{
    if (wt->armed) {
        wt->armed = false;
        const mp__deadline *use = d;
        mp__deadline slice;
        if (atomic_load_explicit(&mp__ring_fenceless, memory_order_relaxed) < 0 &&
            (tick_ns == 0 || tick_ns > FALLBACK_TICK_NS))
            tick_ns = FALLBACK_TICK_NS;
        if (tick_ns != 0 && mp__deadline_init(&slice, (double)tick_ns / 1e9) == 0 &&
            deadline_before(&slice, d))
            use = &slice;
        int rc = mp__futex_wait((uint32_t *)&ev->count, wt->key, use);
        return rc == MP_ETIMEDOUT && use == d ? MP_ETIMEDOUT : 0;
    }
    if (wt->start == 0) {
        wt->start = mp__now_ns();
        wt->busy = !wt->no_spin && mp__cpu_busy_at(wt->start);
    }
    if (wt->busy && !d->nowait) {
        /*
         * Oversubscribed: no spin, the task that would end this wait needs
         * the cpu.  Nor sched_yield: with other programs' tasks runnable it
         * hands the cpu to one of them for a whole slice (measured: a p50
         * of 14 ms), where a sleeper that is woken preempts at once.
         */
        if (mp__deadline_expired(d))
            return MP_ETIMEDOUT;
        wt->key = mp__ev_arm(ev, wt->busy);
        wt->armed = true;
        return 0;
    }
    if (!wt->no_spin && (++wt->spins & 31u) != 0) {
        mp__cpu_relax();
        return 0;
    }
    uint64_t spent = mp__now_ns() - wt->start;
    if (d->nowait) {
        if (spent >= NOWAIT_SPIN_NS)
            return MP_ETIMEDOUT;
        sched_yield();
        return 0;
    }
    if (mp__deadline_expired(d))
        return MP_ETIMEDOUT;
    if (!wt->no_spin && spent < SPIN_NS) {
        if (spent > SPIN_PAUSE_NS)
            sched_yield();
        return 0;
    }
    wt->key = mp__ev_arm(ev, false);
    wt->armed = true;
    return 0;
}

bool mp__stuck_dead(mp__stuck *st, uint64_t w, pid_t pid)
{
    uint64_t now = mp__now_ns();
    if (st->w != w) {
        st->w = w;
        st->since = now;
        return false;
    }
    if (now - st->since < MP__RING_TICK_NS)
        return false;
    st->since = now;
    return mp__pid_dead(pid);
}
