/*
 * shared_memory.c: named POSIX shared memory (Python's shared_memory.py).
 *
 * The object lives in the arena; the mapping is per process.  Each process
 * keeps a small table from object to its mapping there, inherited across
 * fork with the mappings themselves; a process that has no entry (a spawned
 * child) maps the segment by name on first use.
 */
#include "internal/mp.h"
#include "internal/resource_tracker.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHM_MAGIC MP__MAGIC('s', 'h', 'm', 'm')

struct mp_shared_memory {
    mp__obj hdr;
    size_t size;
    struct mp__tracker *tracker;    /* registry it is tracked in, or NULL */
    char name[MP_SHM_NAME_MAX + 2]; /* with the leading '/' */
};

/* ---- the per-process mapping table -------------------------------------- */

struct mapping {
    const mp_shared_memory *shm;
    uint64_t id; /* the object's id: a reused block is not mistaken */
    void *addr;  /* NULL once closed in this process */
};

static struct mapping *maps;
static size_t nmaps, capmaps;
static pthread_mutex_t maps_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* A fork while another thread holds maps_lock must not leave the child
 * with it held. */
static void maps_child_reset(void)
{
    pthread_mutex_init(&maps_lock, NULL);
}

static void maps_atfork(void)
{
    pthread_atfork(NULL, NULL, maps_child_reset);
}

static struct mapping *map_find(const mp_shared_memory *shm)
{
    for (size_t i = 0; i < nmaps; i++)
        if (maps[i].shm == shm && maps[i].id == shm->hdr.id)
            return &maps[i];
    return NULL;
}

static int map_add(const mp_shared_memory *shm, void *addr)
{
    if (nmaps == capmaps) {
        size_t cap = capmaps ? capmaps * 2 : 8;
        struct mapping *m = realloc(maps, cap * sizeof *m);
        if (m == NULL)
            return -ENOMEM;
        maps = m;
        capmaps = cap;
    }
    maps[nmaps++] = (struct mapping){shm, shm->hdr.id, addr};
    return 0;
}

static void map_remove(struct mapping *m)
{
    *m = maps[--nmaps];
}

/* ---- names ---------------------------------------------------------------- */

static int make_name(char *out, const char *name)
{
    if (name == NULL) {
        /* The family's root pid first: a family's names can be told apart
         * from another's (tests count only their own). */
        uint64_t r;
        if (getrandom(&r, sizeof r, 0) != sizeof r)
            r = mp__now_ns() ^ ((uint64_t)getpid() << 32);
        snprintf(out, MP_SHM_NAME_MAX + 2, "/mp_%x_%012llx", (unsigned)mp__heap_creator(),
                 (unsigned long long)(r & 0xffffffffffffull));
        return 0;
    }
    if (name[0] == '/')
        name++;
    size_t len = strlen(name);
    if (len == 0 || len > MP_SHM_NAME_MAX || strchr(name, '/') != NULL ||
        strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return MP_EINVAL;
    out[0] = '/';
    memcpy(out + 1, name, len + 1);
    return 0;
}

/* ---- create and attach ------------------------------------------------------ */

static int open_segment(mp_shared_memory *shm, const mp_shared_memory_options *o,
                        bool generated)
{
    for (int tries = 0;; tries++) {
        int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | (o->create ? O_CREAT | O_EXCL : 0);
        int fd = shm_open(shm->name, flags, 0600);
        if (fd >= 0)
            return fd;
        if (errno == EEXIST && generated && tries < 16) {
            make_name(shm->name, NULL);
            continue;
        }
        return mp__errno();
    }
}

static int segment_size(mp_shared_memory *shm, int fd, const mp_shared_memory_options *o)
{
    if (o->create) {
        if (ftruncate(fd, (off_t)o->size) != 0)
            return mp__errno();
        shm->size = o->size;
        return 0;
    }
    struct stat st;
    if (fstat(fd, &st) != 0)
        return mp__errno();
    shm->size = (size_t)st.st_size;
    return 0;
}

static int map_here(mp_shared_memory *shm, int fd)
{
    void *addr = NULL;
    if (shm->size > 0) {
        addr = mmap(NULL, shm->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (addr == MAP_FAILED)
            return mp__errno();
    }
    pthread_mutex_lock(&maps_lock);
    int r = map_add(shm, addr);
    pthread_mutex_unlock(&maps_lock);
    if (r != 0 && addr != NULL)
        munmap(addr, shm->size);
    return r;
}

static int setup(mp_shared_memory *shm, const mp_shared_memory_options *o)
{
    int r = make_name(shm->name, o->name);
    if (r != 0)
        return r;
    int fd = open_segment(shm, o, o->name == NULL);
    if (fd < 0)
        return fd;
    r = segment_size(shm, fd, o);
    if (r == 0 && o->create && !o->notrack)
        r = mp__tracker_register(MP__TRACK_SHM, shm->name, fd, &shm->tracker);
    if (r == 0)
        r = map_here(shm, fd);
    close(fd);
    if (r != 0) {
        mp__tracker_unregister(shm->tracker, MP__TRACK_SHM, shm->name);
        if (o->create)
            shm_unlink(shm->name);
    }
    return r;
}

mp_shared_memory *mp_shared_memory_new_opts(const mp_shared_memory_options *o)
{
    mp_shared_memory_options opts_local;
    int opts_err;
    o = MP__OPTS_LOAD(opts_local, o, ctx, &opts_err);
    if (opts_err != 0)
        return mp__fail_null(opts_err);
    if (o == NULL)
        return mp__fail_null(MP_EINVAL);
    if (o->create ? o->size == 0 : o->name == NULL)
        return mp__fail_null(MP_EINVAL);
    pthread_once(&atfork_once, maps_atfork);
    mp_shared_memory *shm = mp__obj_new(sizeof *shm, SHM_MAGIC);
    if (shm == NULL)
        return mp__fail_null(-ENOMEM);
    int r = setup(shm, o);
    if (r != 0) {
        mp__obj_free(shm);
        return mp__fail_null(r);
    }
    return shm;
}

/* ---- use --------------------------------------------------------------------- */

static void *attach_here(mp_shared_memory *shm, int *err)
{
    int fd = shm_open(shm->name, O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        *err = mp__errno();
        return NULL;
    }
    void *addr = mmap(NULL, shm->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    *err = addr == MAP_FAILED ? mp__errno() : 0;
    close(fd);
    return addr == MAP_FAILED ? NULL : addr;
}

void *mp_shared_memory_buf(mp_shared_memory *shm)
{
    if (mp__obj_check(shm, SHM_MAGIC) != 0 || shm->size == 0)
        return mp__fail_null(MP_EINVAL);
    pthread_once(&atfork_once, maps_atfork);
    pthread_mutex_lock(&maps_lock);
    int err = 0;
    void *addr = NULL;
    struct mapping *m = map_find(shm);
    if (m != NULL) {
        addr = m->addr;
        err = addr ? 0 : MP_EINVAL; /* closed in this process */
    } else {
        addr = attach_here(shm, &err);
        if (addr != NULL && (err = map_add(shm, addr)) != 0) {
            munmap(addr, shm->size);
            addr = NULL;
        }
    }
    pthread_mutex_unlock(&maps_lock);
    return addr ? addr : mp__fail_null(err);
}

size_t mp_shared_memory_size(const mp_shared_memory *shm)
{
    return mp__obj_check(shm, SHM_MAGIC) == 0 ? shm->size : 0;
}

const char *mp_shared_memory_name(const mp_shared_memory *shm)
{
    return mp__obj_check(shm, SHM_MAGIC) == 0 ? shm->name + 1 : "";
}

int mp_shared_memory_close(mp_shared_memory *shm)
{
    if (mp__obj_check(shm, SHM_MAGIC) != 0)
        return MP_EINVAL;
    pthread_mutex_lock(&maps_lock);
    struct mapping *m = map_find(shm);
    if (m == NULL) {
        /* Never mapped here: remember it is closed, as Python's buf is None. */
        map_add(shm, NULL);
    } else if (m->addr != NULL) {
        munmap(m->addr, shm->size);
        m->addr = NULL;
    }
    pthread_mutex_unlock(&maps_lock);
    return 0;
}

int mp_shared_memory_unlink(mp_shared_memory *shm)
{
    if (mp__obj_check(shm, SHM_MAGIC) != 0)
        return MP_EINVAL;
    int r = shm_unlink(shm->name) == 0 ? 0 : mp__errno();
    struct mp__tracker *t = __atomic_exchange_n(&shm->tracker, NULL, __ATOMIC_ACQ_REL);
    if (t != NULL)
        mp__tracker_unregister(t, MP__TRACK_SHM, shm->name);
    return r;
}

void mp_shared_memory_free(mp_shared_memory *shm)
{
    if (mp__obj_check(shm, SHM_MAGIC) != 0)
        return;
    pthread_mutex_lock(&maps_lock);
    struct mapping *m = map_find(shm);
    if (m != NULL) {
        if (m->addr != NULL)
            munmap(m->addr, shm->size);
        map_remove(m);
    }
    pthread_mutex_unlock(&maps_lock);
    mp__obj_free(shm);
}
