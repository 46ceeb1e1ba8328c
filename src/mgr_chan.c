/*
 * mgr_chan.c: the shared-memory transport between the manager's server
 * and the processes of its family.
 *
 * Each client thread owns a channel (struct mgr_chan) in the arena.  A call
 * writes the request into it, flips its state to CH_REQ, sets the
 * channel's bit in the manager's pending bitmap and rings the doorbell if
 * the server sleeps.  The server takes the pending bits, answers each
 * channel in place and flips it to CH_DONE, waking the client if it sleeps.
 *
 * A futex wake-up costs tens of microseconds on a loaded virtual machine,
 * so both sides spin for a short while before they sleep: a client waiting
 * for its reply, and the server after its last request.  That is what makes
 * a round trip cost well under a microsecond when calls come back to back.
 *
 * Each "sleep" is a pair of a flag store and a load of the other side's
 * word, both sequentially consistent (the Dekker pattern), so a wake-up is
 * never lost: the waker stores its word, then loads the sleeper's flag; the
 * sleeper stores its flag, then loads the word before it sleeps.
 */
#include "internal/managers.h"

#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * Spinning: both sides poll for up to a budget, calling sched_yield every
 * few polls.  On a machine with idle cores the other side answers within
 * the first polls; on a loaded one the yield hands the core to the other
 * side if it was waiting for it, which keeps round trips in microseconds
 * where a pure spin would burn the whole time slice (measured: see
 * docs/managers.md).
 */
#define POLL_MASK 7              /* yield (and look at the clock) every 8 polls */
#define CLIENT_SPIN_NS 20000ull  /* a client polls this long for its reply */
#define SERVER_SPIN_NS 200000ull /* the server polls this long after a request */
#define CLIENT_NAP_MS 20         /* then checks that the server lives this often */
#define SERVER_NAP_MS 200        /* the idle server looks around this often */

/* ---- who am I: pid and tid, refreshed in a fork child ---------------------- */

static pid_t cur_pid;
static __thread pid_t tl_tid;
static __thread pid_t tl_tid_pid;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void after_fork_child(void)
{
    cur_pid = getpid();
}

static void install_atfork(void)
{
    pthread_atfork(NULL, NULL, after_fork_child);
    cur_pid = getpid();
}

static pid_t my_pid(void)
{
    if (MP__UNLIKELY(cur_pid == 0))
        pthread_once(&atfork_once, install_atfork);
    return cur_pid;
}

static uint64_t my_owner_word(void)
{
    pid_t pid = my_pid();
    if (tl_tid_pid != pid) {
        tl_tid = (pid_t)syscall(SYS_gettid);
        tl_tid_pid = pid;
    }
    return (uint64_t)(uint32_t)pid << 32 | (uint32_t)tl_tid;
}

/* ---- the calling thread's channels ---------------------------------------- */

#define TL_SLOTS 8

struct tl_slot {
    mp_manager *m;
    uint64_t mgr_id;
    pid_t pid;
    struct mgr_chan *ch;
};

static __thread struct tl_slot tl_slots[TL_SLOTS];
static __thread unsigned tl_next_evict;

static bool slot_live(const struct tl_slot *sl)
{
    return sl->ch != NULL && sl->pid == my_pid() &&
           mp__obj_check(sl->m, MP__MAGIC_MANAGER) == 0 && sl->m->hdr.id == sl->mgr_id;
}

static void chan_give_back(struct mgr_chan *ch)
{
    atomic_store(&ch->owner, 0);
}

/* Is the thread that owns ch gone?  Locks callmx when it returns true with
 * *locked set; the caller unlocks. */
static bool owner_gone(struct mgr_chan *ch, uint64_t owner, bool *locked)
{
    *locked = false;
    int r = pthread_mutex_trylock(&ch->callmx);
    if (r == EBUSY)
        return false; /* in a call right now: alive */
    *locked = true;
    if (r == EOWNERDEAD) {
        pthread_mutex_consistent(&ch->callmx);
        return true; /* died in the middle of a call */
    }
    if (r != 0) {
        *locked = false;
        return false;
    }
    pid_t pid = (pid_t)(owner >> 32), tid = (pid_t)(owner & 0xffffffffu);
    if (syscall(SYS_tgkill, pid, tid, 0) == 0 || errno != ESRCH)
        return false;
    return true;
}

static void ring(mp_manager *m, uint32_t index)
{
    atomic_fetch_or(&m->pending[index / 64], (uint64_t)1 << (index % 64));
    if (atomic_load(&m->srv_sleeping)) {
        atomic_fetch_add(&m->doorbell, 1);
        mp__futex_wake((uint32_t *)&m->doorbell, 1);
    }
}

/* Take ch if it is free or its owner is gone; true when it is ours. */
static bool chan_try_claim(mp_manager *m, struct mgr_chan *ch, uint64_t me)
{
    uint64_t owner = atomic_load(&ch->owner);
    if (owner == 0)
        return atomic_compare_exchange_strong(&ch->owner, &owner, me);
    bool locked;
    if (!owner_gone(ch, owner, &locked)) {
        if (locked)
            pthread_mutex_unlock(&ch->callmx);
        return false;
    }
    bool claimed = false;
    if (atomic_load(&ch->state) == CH_REQ) {
        /* The dead thread's request is still unanswered (maybe it died before
         * ringing): let the server answer it, and leave the channel for later. */
        ring(m, ch->index);
    } else if (atomic_compare_exchange_strong(&ch->owner, &owner, me)) {
        void *big = atomic_exchange(&ch->big, NULL);
        if (big != NULL)
            mp__free(big);
        atomic_store(&ch->state, CH_IDLE);
        atomic_store(&ch->client_waits, 0);
        claimed = true;
    }
    pthread_mutex_unlock(&ch->callmx);
    return claimed;
}

static struct mgr_chan *chan_new(uint32_t index, uint64_t me)
{
    struct mgr_chan *ch = mp__alloc(MGR_CHAN_SIZE);
    if (ch == NULL)
        return NULL;
    if (mp__robust_mutex_init(&ch->callmx) != 0) {
        mp__free(ch);
        return NULL;
    }
    ch->index = index;
    atomic_store(&ch->owner, me);
    return ch;
}

static int chan_claim(mp_manager *m, struct mgr_chan **out)
{
    uint64_t me = my_owner_word();
    for (uint32_t i = 0; i < MGR_NCHAN; i++) {
        struct mgr_chan *ch = atomic_load(&m->chans[i]);
        if (ch == NULL) {
            struct mgr_chan *fresh = chan_new(i, me);
            if (fresh == NULL)
                return -ENOMEM;
            struct mgr_chan *expected = NULL;
            if (atomic_compare_exchange_strong(&m->chans[i], &expected, fresh)) {
                *out = fresh;
                return 0;
            }
            pthread_mutex_destroy(&fresh->callmx);
            mp__free(fresh);
            ch = expected;
        }
        if (chan_try_claim(m, ch, me)) {
            *out = ch;
            return 0;
        }
    }
    return -EAGAIN;
}

static int chan_get(mp_manager *m, struct mgr_chan **out)
{
    pid_t pid = my_pid();
    struct tl_slot *free_slot = NULL;
    for (int i = 0; i < TL_SLOTS; i++) {
        struct tl_slot *sl = &tl_slots[i];
        if (sl->ch != NULL && sl->m == m && sl->mgr_id == m->hdr.id && sl->pid == pid) {
            *out = sl->ch;
            return 0;
        }
        if (free_slot == NULL && !slot_live(sl))
            free_slot = sl;
    }
    if (free_slot == NULL) {
        free_slot = &tl_slots[tl_next_evict++ % TL_SLOTS];
        chan_give_back(free_slot->ch);
    }
    struct mgr_chan *ch;
    int r = chan_claim(m, &ch);
    if (r != 0)
        return r;
    *free_slot = (struct tl_slot){.m = m, .mgr_id = m->hdr.id, .pid = pid, .ch = ch};
    *out = ch;
    return 0;
}

/* Drop the calling thread's slot for ch (the channel is no longer ours). */
static void forget_chan(struct mgr_chan *ch)
{
    for (int i = 0; i < TL_SLOTS; i++)
        if (tl_slots[i].ch == ch)
            memset(&tl_slots[i], 0, sizeof tl_slots[i]);
}

void mp__chan_release(mp_manager *m)
{
    pid_t pid = my_pid();
    for (int i = 0; i < TL_SLOTS; i++) {
        struct tl_slot *sl = &tl_slots[i];
        if (sl->ch != NULL && sl->m == m && sl->mgr_id == m->hdr.id && sl->pid == pid)
            chan_give_back(sl->ch);
        if (sl->m == m)
            memset(sl, 0, sizeof *sl);
    }
}

void mp__chan_thread_exit(void)
{
    /* Only live managers are touched: a freed one took its channels along. */
    for (int i = 0; i < TL_SLOTS; i++) {
        struct tl_slot *sl = &tl_slots[i];
        if (slot_live(sl))
            chan_give_back(sl->ch);
        memset(sl, 0, sizeof *sl);
    }
}

void mp__chan_free_all(mp_manager *m)
{
    mp__chan_release(m);
    for (uint32_t i = 0; i < MGR_NCHAN; i++) {
        struct mgr_chan *ch = atomic_exchange(&m->chans[i], NULL);
        if (ch == NULL)
            continue;
        void *big = atomic_exchange(&ch->big, NULL);
        if (big != NULL)
            mp__free(big);
        mp__free(ch);
    }
}

void mp__chan_wake_all(mp_manager *m)
{
    for (uint32_t i = 0; i < MGR_NCHAN; i++) {
        struct mgr_chan *ch = atomic_load(&m->chans[i]);
        if (ch != NULL)
            mp__futex_wake((uint32_t *)&ch->state, INT32_MAX);
    }
}

/* ---- liveness of the server ------------------------------------------------- */

bool mp__mgr_server_gone(mp_manager *m)
{
    uint32_t st = atomic_load(&m->state);
    if (st == MGR_STOPPED || st == MGR_FAILED)
        return true;
    if (st != MGR_RUNNING)
        return false;
    int r = pthread_mutex_trylock(&m->alive);
    if (r == EBUSY)
        return false;
    if (r == EOWNERDEAD)
        pthread_mutex_consistent(&m->alive);
    if (r == 0 || r == EOWNERDEAD) {
        /* Nobody serves: the server died (or stopped an instant ago). */
        pthread_mutex_unlock(&m->alive);
        uint32_t running = MGR_RUNNING;
        if (atomic_compare_exchange_strong(&m->state, &running, MGR_STOPPED)) {
            atomic_store(&m->dead_seen, 1);
            mp__futex_wake((uint32_t *)&m->state, INT32_MAX);
            mp__chan_wake_all(m);
        }
        return true;
    }
    return false;
}

/* ---- client side -------------------------------------------------------------- */

static int wait_reply(mp_manager *m, struct mgr_chan *ch)
{
    uint64_t start = mp__now_ns();
    bool busy = mp__cpu_busy_at(start);
    for (unsigned i = 0;; i++) {
        if (atomic_load_explicit(&ch->state, memory_order_acquire) == CH_DONE)
            return 0;
        if (busy)
            break;
        mp__cpu_relax();
        if ((i & POLL_MASK) == POLL_MASK) {
            if (mp__now_ns() - start > CLIENT_SPIN_NS)
                break;
            sched_yield();
        }
    }
    for (;;) {
        atomic_store(&ch->client_waits, 1);
        if (atomic_load(&ch->state) == CH_DONE) {
            atomic_store(&ch->client_waits, 0);
            return 0;
        }
        mp__deadline d;
        mp__deadline_init(&d, CLIENT_NAP_MS / 1000.0);
        mp__futex_wait((uint32_t *)&ch->state, CH_REQ, &d);
        atomic_store(&ch->client_waits, 0);
        if (atomic_load_explicit(&ch->state, memory_order_acquire) == CH_DONE)
            return 0;
        if (mp__mgr_server_gone(m))
            return MP_EEOF;
    }
}

int mp__chan_call(mp_manager *m, const void *req, size_t len, mp__buf *reply)
{
    if (len > MGR_MSG_MAX)
        return -EMSGSIZE;
    if (atomic_load(&m->state) != MGR_RUNNING)
        return MP_EEOF;
    struct mgr_chan *ch;
    int r;
    for (;;) {
        r = chan_get(m, &ch);
        if (r != 0)
            return r;
        /* The channel is ours only while its owner word says so: a thread
         * wrongly taken for dead (its tid reused, say) loses it, and the
         * check is made under callmx, which whoever takes it over holds. */
        mp__robust_lock(&ch->callmx);
        if (atomic_load(&ch->owner) == my_owner_word())
            break;
        mp__robust_unlock(&ch->callmx);
        forget_chan(ch);
    }
    if (len <= MGR_CHAN_INLINE) {
        memcpy(ch->buf, req, len);
    } else {
        void *big = mp__alloc(len);
        if (big == NULL) {
            mp__robust_unlock(&ch->callmx);
            return -ENOMEM;
        }
        memcpy(big, req, len);
        atomic_store(&ch->big, big);
    }
    ch->len = (uint32_t)len;
    atomic_store(&ch->state, CH_REQ);
    ring(m, ch->index);
    r = wait_reply(m, ch);
    if (r == 0) {
        void *big = atomic_exchange(&ch->big, NULL);
        size_t n = ch->len;
        reply->len = 0;
        if (big != NULL) {
            mp__buf_put(reply, big, n);
            mp__free(big);
        } else {
            mp__buf_put(reply, ch->buf, n <= MGR_CHAN_INLINE ? n : 0);
        }
        atomic_store(&ch->state, CH_IDLE);
        if (reply->oom)
            r = -ENOMEM;
    } else {
        /* The server is gone: the channel will never be answered.  Leave it
         * marked as ours and in CH_REQ; it dies with the manager. */
    }
    mp__robust_unlock(&ch->callmx);
    return r;
}

/* ---- server side --------------------------------------------------------------- */

/* The reply when no other can be built: MemoryError, code -ENOMEM. */
static const uint8_t nomem[] = {MGR_ST_ERROR,
                                0x17 /* zigzag(-ENOMEM) */,
                                11,
                                'M',
                                'e',
                                'm',
                                'o',
                                'r',
                                'y',
                                'E',
                                'r',
                                'r',
                                'o',
                                'r',
                                0};

/* Answer one channel; returns 1 when it asked for a shutdown. */
static int serve_chan(mp_manager *m, struct mgr_srv *s, struct mgr_chan *ch, mp__buf *out)
{
    if (atomic_load_explicit(&ch->state, memory_order_acquire) != CH_REQ)
        return 0;
    /* The client is trusted to be of the family, but its lengths are still
     * checked so a torn or garbled channel cannot make the server read
     * outside it. */
    size_t len = ch->len;
    void *big = atomic_exchange(&ch->big, NULL);
    const uint8_t *req = ch->buf;
    int r;
    if (big != NULL) {
        if (!mp__in_arena(big) || mp__alloc_size(big) < len)
            len = 0;
        req = big;
    } else if (len > MGR_CHAN_INLINE) {
        len = 0;
    }
    r = mp__srv_handle(s, req, len, out, false);
    if (big != NULL && mp__in_arena(big))
        mp__free(big);
    if (r < 0 || out->len > MGR_MSG_MAX) {
        out->len = 0;
        out->oom = false;
        mp__buf_put(out, nomem, sizeof nomem);
        r = 0;
    }
    void *rbig = out->len > MGR_CHAN_INLINE ? mp__alloc(out->len) : NULL;
    if (rbig != NULL) {
        memcpy(rbig, out->p, out->len);
        atomic_store(&ch->big, rbig);
    } else {
        if (out->len > MGR_CHAN_INLINE) {
            out->len = 0;
            mp__buf_put(out, nomem, sizeof nomem);
        }
        memcpy(ch->buf, out->p, out->len);
    }
    ch->len = (uint32_t)out->len;
    atomic_store(&ch->state, CH_DONE);
    if (atomic_load(&ch->client_waits))
        mp__futex_wake((uint32_t *)&ch->state, 1);
    return r;
}

static bool any_pending(mp_manager *m)
{
    for (size_t w = 0; w < MGR_NCHAN / 64; w++)
        if (atomic_load(&m->pending[w]) != 0)
            return true;
    return false;
}

/* Answer every channel whose bit is set; returns how many, or -1 when a
 * shutdown was asked for. */
static int serve_pending(mp_manager *m, struct mgr_srv *s, mp__buf *out)
{
    int n = 0;
    for (size_t w = 0; w < MGR_NCHAN / 64; w++) {
        if (atomic_load_explicit(&m->pending[w], memory_order_relaxed) == 0)
            continue;
        uint64_t bits = atomic_exchange(&m->pending[w], 0);
        while (bits) {
            unsigned b = (unsigned)__builtin_ctzll(bits);
            bits &= bits - 1;
            struct mgr_chan *ch = atomic_load(&m->chans[w * 64 + b]);
            if (ch == NULL)
                continue;
            n++;
            if (serve_chan(m, s, ch, out) == 1)
                return -1;
        }
    }
    return n;
}

int mp__chan_serve(mp_manager *m, struct mgr_srv *s, pid_t watch)
{
    mp__buf out = {0};
    uint64_t last = mp__now_ns();
    /* A parent that dies is noticed by the change of parent at once (a dead
     * process whose own parent does not reap it would still answer kill). */
    bool by_ppid = watch > 0 && getppid() == watch;
    unsigned idle = 0;
    while (!mp__srv_stopping(s)) {
        int n = serve_pending(m, s, &out);
        if (n < 0)
            break;
        if (n > 0) {
            last = mp__now_ns();
            continue;
        }
        mp__cpu_relax();
        if ((++idle & POLL_MASK) != 0)
            continue;
        uint64_t now = mp__now_ns();
        if (now - last < SERVER_SPIN_NS && !mp__cpu_busy_at(now)) {
            sched_yield();
            continue;
        }
        uint32_t seq = atomic_load(&m->doorbell);
        atomic_store(&m->srv_sleeping, 1);
        if (!any_pending(m) && !mp__srv_stopping(s)) {
            mp__deadline d;
            mp__deadline_init(&d, SERVER_NAP_MS / 1000.0);
            mp__futex_wait((uint32_t *)&m->doorbell, seq, &d);
        }
        atomic_store(&m->srv_sleeping, 0);
        last = mp__now_ns();
        if (by_ppid ? getppid() != watch : watch > 0 && kill(watch, 0) != 0 && errno == ESRCH)
            break; /* the process that started the server died */
    }
    mp__buf_free(&out);
    return 0;
}

void mp__chan_kick(mp_manager *m)
{
    atomic_fetch_add(&m->doorbell, 1);
    mp__futex_wake((uint32_t *)&m->doorbell, 1);
}
