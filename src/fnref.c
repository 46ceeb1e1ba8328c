/*
 * fnref.c: function pointers that survive a spawn.
 *
 * A function pointer is only meaningful in the process image that took it:
 * a spawned child is a fresh image, with its own ASLR base for the program
 * and every shared library.  A function is therefore stored as the hash of
 * the path of the loaded object that contains it (the main program's path
 * is the empty string in dl_iterate_phdr) and its offset from that
 * object's load base, and resolved again in the process that calls it.
 */
#include "internal/mp.h"
#include "internal/spawn.h"

#include <dlfcn.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

#define MODULES_MAGIC MP__MAGIC('m', 'o', 'd', 's')

/*
 * The family's list of module paths (root MP__ROOT_MODULES): for each
 * shared object a function reference was made in, the hash its creator
 * knows it by and its absolute path.  Only a child of the libmp-spawn
 * helper reads it, to dlopen the modules its targets are in; only
 * processes whose children may be such children (no start-up hook) write
 * it.  Nodes are pushed with a compare-and-swap and never removed.
 */
struct module_node {
    struct module_node *next;
    uint64_t hash;
    char path[];
};

struct module_list {
    mp__obj hdr;
    struct module_node *head;
};

static bool helper_mode;

struct find_addr {
    uintptr_t addr;
    mp__fnref *out;
    bool found;
    char *path; /* if not NULL, receives the module's name (cap bytes) */
    size_t cap;
};

static uint64_t path_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

/* The module's name as the hash sees it: "" for the program itself, which
 * glibc names "" and musl by the path it was started as (another one in a
 * spawned child, started as /proc/self/exe). */
static const char *module_name(const struct dl_phdr_info *info)
{
    if ((uintptr_t)info->dlpi_phdr == (uintptr_t)getauxval(AT_PHDR))
        return "";
    return info->dlpi_name ? info->dlpi_name : "";
}

static bool segment_contains(const struct dl_phdr_info *info, uintptr_t addr)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (addr >= lo && addr < lo + ph->p_memsz)
            return true;
    }
    return false;
}

static int find_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    struct find_addr *f = data;
    if (!segment_contains(info, f->addr))
        return 0;
    const char *name = module_name(info);
    if (f->path != NULL)
        snprintf(f->path, f->cap, "%s", name);
    f->out->module = path_hash(name);
    f->out->offset = f->addr - info->dlpi_addr;
    f->found = true;
    return 1;
}

static void *modules_make(void)
{
    return mp__obj_new(sizeof(struct module_list), MODULES_MAGIC);
}

static struct module_list *modules(void)
{
    return mp__heap_root(MP__ROOT_MODULES, modules_make);
}

static const struct module_node *module_find(const struct module_list *l, uint64_t hash)
{
    for (const struct module_node *n = __atomic_load_n(&l->head, __ATOMIC_ACQUIRE); n;
         n = n->next)
        if (n->hash == hash)
            return n;
    return NULL;
}

/* Record the path of a module (name as loaded here) under hash. */
static void module_record(uint64_t hash, const char *name)
{
    static _Thread_local uint64_t last;
    if (hash == last)
        return;
    struct module_list *l = modules();
    if (l == NULL || module_find(l, hash) != NULL) {
        last = l != NULL ? hash : 0;
        return;
    }
    char abs[PATH_MAX];
    if (realpath(name, abs) == NULL)
        return;
    size_t len = strlen(abs);
    struct module_node *n = mp__alloc(sizeof *n + len + 1);
    if (n == NULL)
        return;
    n->hash = hash;
    memcpy(n->path, abs, len + 1);
    n->next = __atomic_load_n(&l->head, __ATOMIC_ACQUIRE);
    while (!__atomic_compare_exchange_n(&l->head, &n->next, n, true, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
        ;
    last = hash;
}

int mp__fnref_make(mp__fnref *ref, void (*fn)(void))
{
    if (fn == NULL) {
        ref->module = 0;
        ref->offset = 0;
        return 0;
    }
    int how = mp__spawn_boot_how();
    bool record = how == MP__BOOT_NONE || how == MP__BOOT_HELPER;
    char name[PATH_MAX];
    struct find_addr f = {.addr = (uintptr_t)fn,
                          .out = ref,
                          .found = false,
                          .path = record ? name : NULL,
                          .cap = sizeof name};
    dl_iterate_phdr(find_cb, &f);
    if (!f.found)
        return MP_EINVAL;
    if (record && name[0] != '\0')
        module_record(ref->module, name);
    return 0;
}

bool mp__fnref_in_main(const mp__fnref *ref)
{
    return ref->module == path_hash("") && !(ref->module == 0 && ref->offset == 0);
}

int mp__module_path(const void *addr, char *buf, size_t cap)
{
    mp__fnref ref;
    struct find_addr f = {
        .addr = (uintptr_t)addr, .out = &ref, .found = false, .path = buf, .cap = cap};
    dl_iterate_phdr(find_cb, &f);
    if (!f.found || buf[0] == '\0')
        return MP_EINVAL;
    return strlen(buf) + 1 >= cap ? -ENAMETOOLONG : 0;
}

void mp__fnref_helper_mode(void)
{
    helper_mode = true;
}

struct find_module {
    uint64_t module;
    uintptr_t base;
    bool found;
};

static int module_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    struct find_module *f = data;
    const char *name = module_name(info);
    if (helper_mode && name[0] == '\0')
        return 0; /* the helper's own program */
    if (path_hash(name) != f->module)
        return 0;
    f->base = info->dlpi_addr;
    f->found = true;
    return 1;
}

void (*mp__fnref_resolve(const mp__fnref *ref))(void)
{
    if (ref->module == 0 && ref->offset == 0)
        return NULL;
    struct find_module f = {.module = ref->module, .base = 0, .found = false};
    dl_iterate_phdr(module_cb, &f);
    if (!f.found && helper_mode) {
        /* Load it from the path its creator recorded (it stays loaded); it
         * is then known by that path. */
        const struct module_list *l = modules();
        const struct module_node *n = l != NULL ? module_find(l, ref->module) : NULL;
        if (n != NULL && dlopen(n->path, RTLD_NOW | RTLD_GLOBAL) != NULL) {
            f.module = path_hash(n->path);
            dl_iterate_phdr(module_cb, &f);
        }
    }
    if (!f.found)
        return NULL;
    return (void (*)(void))(f.base + ref->offset);
}
