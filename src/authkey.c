/*
 * authkey.c: the calling process's authentication key (Python's
 * current_process().authkey), kept per process.
 *
 * The main program draws 32 random bytes when libmp is loaded, as Python
 * does when multiprocessing is imported, so a raw fork(2) child shares
 * them too.  A child started by libmp takes the key its Process object
 * carries (its parent's at mp_process_new, or what mp_process_set_authkey
 * put there before start): process.c calls mp__authkey_set at bootstrap.
 */
#include "internal/mp.h"
#include "internal/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static pthread_mutex_t key_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char key[MP_AUTHKEY_MAX];
static size_t key_len;
static bool key_made;

static void fill_random(unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        p += r;
        n -= (size_t)r;
    }
    if (n == 0)
        return;
    /* No getrandom: the kernel's urandom device, else the clock (a key
     * nobody can guess is then not promised, and Python would fail). */
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    while (fd >= 0 && n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        p += r;
        n -= (size_t)r;
    }
    if (fd >= 0)
        close(fd);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(mp__now() * 1e9) ^ (unsigned char)(i * 131 + getpid());
}

static void make_key(void)
{
    if (!key_made) {
        fill_random(key, MP__AUTHKEY_DEFAULT_LEN);
        key_len = MP__AUTHKEY_DEFAULT_LEN;
        key_made = true;
    }
}

/* Around fork: a child never inherits the lock held. */
static void atfork_prepare(void)
{
    pthread_mutex_lock(&key_lock);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&key_lock);
}

/* The forking thread holds the lock in the child too: unlocked, not
 * initialised again over a held mutex (which TSan, rightly, reads as
 * still held, and which POSIX leaves undefined). */
static void atfork_child(void)
{
    pthread_mutex_unlock(&key_lock);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_register(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* Before main, as Python draws the key at import.  spawn.c's constructor
 * may run first (and run a spawned child's target): the functions below
 * register the fork handlers themselves too. */
__attribute__((constructor)) static void authkey_ctor(void)
{
    pthread_once(&atfork_once, atfork_register);
    make_key();
}

size_t mp__authkey_get(unsigned char out[MP_AUTHKEY_MAX])
{
    pthread_once(&atfork_once, atfork_register);
    pthread_mutex_lock(&key_lock);
    make_key();
    size_t n = key_len;
    memcpy(out, key, n);
    pthread_mutex_unlock(&key_lock);
    return n;
}

void mp__authkey_set(const void *k, size_t n)
{
    pthread_once(&atfork_once, atfork_register);
    pthread_mutex_lock(&key_lock);
    if (n > 0)
        memcpy(key, k, n);
    key_len = n;
    key_made = true;
    pthread_mutex_unlock(&key_lock);
}
