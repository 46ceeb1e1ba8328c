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

#include <link.h>
#include <sys/auxv.h>
#include <string.h>

struct find_addr {
    uintptr_t addr;
    mp__fnref *out;
    bool found;
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
    f->out->module = path_hash(module_name(info));
    f->out->offset = f->addr - info->dlpi_addr;
    f->found = true;
    return 1;
}

int mp__fnref_make(mp__fnref *ref, void (*fn)(void))
{
    if (fn == NULL) {
        ref->module = 0;
        ref->offset = 0;
        return 0;
    }
    struct find_addr f = {.addr = (uintptr_t)fn, .out = ref, .found = false};
    dl_iterate_phdr(find_cb, &f);
    return f.found ? 0 : MP_EINVAL;
}

struct find_module {
    uint64_t module;
    uintptr_t base;
    bool found;
};

static int module_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    struct find_module *f = data;
    if (path_hash(module_name(info)) != f->module)
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
    if (!f.found)
        return NULL;
    return (void (*)(void))(f.base + ref->offset);
}
