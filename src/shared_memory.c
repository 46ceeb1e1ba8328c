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
#include "internal/linux.h"

#include <fcntl.h>
#include <stdatomic.h>
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

/*
 * A created name must never exist untracked, or a creator killed in
 * between leaks it.  So the segment is made nameless (O_TMPFILE on
 * /dev/shm, where shm_open keeps its names), sized, tracked under the name
 * with its identity, and only then given the name with linkat, which fails
 * with EEXIST as O_CREAT | O_EXCL does.  A death before the link leaves a
 * nameless file that dies with its fd; after it, a tracked name.
 */
static atomic_bool no_tmpfile;

static int tmpfile_open(void)
{
    if (atomic_load_explicit(&no_tmpfile, memory_order_relaxed))
        return -EOPNOTSUPP;
    if (mp__feature_disabled(MP__FEAT_TMPFILE)) {
        atomic_store(&no_tmpfile, true);
        return -EOPNOTSUPP;
    }
    int fd = open("/dev/shm", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    int r = mp__errno();
    /* No O_TMPFILE (kernel or filesystem), or no /proc to link it by. */
    if (r == -EISDIR || r == -EOPNOTSUPP || r == -EINVAL || access("/proc/self/fd", X_OK) != 0)
        atomic_store(&no_tmpfile, true);
    return r;
}

static int link_name(int fd, const char *name)
{
    char from[64], to[MP_SHM_NAME_MAX + 16];
    snprintf(from, sizeof from, "/proc/self/fd/%d", fd);
    snprintf(to, sizeof to, "/dev/shm%s", name);
    return linkat(AT_FDCWD, from, AT_FDCWD, to, AT_SYMLINK_FOLLOW) == 0 ? 0 : mp__errno();
}

/* Make the segment nameless, then name it; the fd, or -errno. */
static int create_linked(mp_shared_memory *shm, const mp_shared_memory_options *o,
                         bool generated, int fd)
{
    if (ftruncate(fd, (off_t)o->size) != 0)
        return mp__errno();
    for (int tries = 0;; tries++) {
        int r = 0;
        if (!o->notrack)
            r = mp__tracker_register(MP__TRACK_SHM, shm->name, fd, &shm->tracker);
        if (r == 0)
            r = link_name(fd, shm->name);
        if (r == 0)
            return fd;
        if (!o->notrack)
            mp__tracker_unregister(shm->tracker, MP__TRACK_SHM, shm->name);
        shm->tracker = NULL;
        if (r != -EEXIST || !generated || tries >= 16)
            return r;
        make_name(shm->name, NULL);
    }
}

/* shm_open(O_CREAT | O_EXCL), where O_TMPFILE cannot be used.  A generated
 * name is reserved with the tracker before it is made (no other family
 * can make it); a given name is tracked once made, which leaves the window
 * open for it (docs/shared_memory.md). */
static int create_named(mp_shared_memory *shm, const mp_shared_memory_options *o,
                        bool generated)
{
    mp__fallback_taken(MP__FEAT_TMPFILE);
    bool reserve = generated && !o->notrack;
    for (int tries = 0;; tries++) {
        int r = reserve ? mp__tracker_reserve(MP__TRACK_SHM, shm->name, &shm->tracker) : 0;
        if (r != 0)
            return r;
        int fd = shm_open(shm->name, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_CREAT | O_EXCL, 0600);
        if (fd >= 0)
            return fd;
        r = mp__errno();
        mp__tracker_unregister(shm->tracker, MP__TRACK_SHM, shm->name);
        shm->tracker = NULL;
        if (r != -EEXIST || !generated || tries >= 16)
            return r;
        make_name(shm->name, NULL);
    }
}

static int create_segment(mp_shared_memory *shm, const mp_shared_memory_options *o)
{
    bool generated = o->name == NULL;
    int fd = tmpfile_open();
    if (fd >= 0) {
        int r = create_linked(shm, o, generated, fd);
        if (r < 0)
            close(fd);
        if (r == -ENOENT && access("/proc/self/fd", X_OK) != 0)
            atomic_store(&no_tmpfile, true);
        if (r >= 0 || !atomic_load(&no_tmpfile))
            return r;
        /* linkat found no /proc after all: the other way. */
    }
    fd = create_named(shm, o, generated);
    if (fd < 0)
        return fd;
    int r = ftruncate(fd, (off_t)o->size) == 0 ? 0 : mp__errno();
    if (r == 0 && !o->notrack)
        r = shm->tracker != NULL
                ? mp__tracker_confirm(shm->tracker, MP__TRACK_SHM, shm->name, fd)
                : mp__tracker_register(MP__TRACK_SHM, shm->name, fd, &shm->tracker);
    if (r != 0) {
        shm_unlink(shm->name);
        mp__tracker_unregister(shm->tracker, MP__TRACK_SHM, shm->name);
        shm->tracker = NULL;
        close(fd);
        return r;
    }
    return fd;
}

static int attach_segment(mp_shared_memory *shm)
{
    int fd = shm_open(shm->name, O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return mp__errno();
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int r = mp__errno();
        close(fd);
        return r;
    }
    shm->size = (size_t)st.st_size;
    return fd;
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
    if (o->create)
        shm->size = o->size;
    int fd = o->create ? create_segment(shm, o) : attach_segment(shm);
    if (fd < 0)
        return fd;
    r = map_here(shm, fd);
    close(fd);
    if (r != 0 && o->create) {
        shm_unlink(shm->name);
        mp__tracker_unregister(shm->tracker, MP__TRACK_SHM, shm->name);
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
