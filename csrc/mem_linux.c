/* The os backend: real mmap/madvise.  See mem.h.
 *
 * Reservations are PROT_NONE mappings placed with the address only as a
 * hint (no MAP_FIXED), so the kernel may put them elsewhere; sys_map
 * remaps the range read-write with MAP_FIXED; sys_unused advises
 * MADV_FREE, falling back to MADV_DONTNEED where the kernel lacks it.
 * Go 1.13: src/runtime/mem_linux.go (sysReserve, sysMap, sysUnused,
 *          sysFree), os_linux.go (osinit's physHugePageSize).
 * Differs from Go: huge-page advice (MADV_HUGEPAGE/NOHUGEPAGE) is not
 *          given.
 * Locking: the caller holds the heap lock.
 */
#define _GNU_SOURCE
#include "mem_impl.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static void *
as_ptr(ga_addr a)
{
    return (void *)(uintptr_t)a;
}

void
mem_os_init(mem_backend *m)
{
#ifdef MADV_FREE
    m->use_madv_free = true;
#else
    m->use_madv_free = false;
#endif
}

ga_addr
mem_os_reserve(mem_backend *m, ga_addr v, uint64_t n)
{
    (void)m;
    void *p = mmap(as_ptr(v), (size_t)n, PROT_NONE,
                   MAP_ANONYMOUS | MAP_PRIVATE | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        return 0;
    }
    return (ga_addr)(uintptr_t)p;
}

bool
mem_os_map(ga_addr v, uint64_t n)
{
    void *p = mmap(as_ptr(v), (size_t)n, PROT_READ | PROT_WRITE,
                   MAP_ANONYMOUS | MAP_FIXED | MAP_PRIVATE, -1, 0);
    return p != MAP_FAILED;
}

void
mem_os_unused(mem_backend *m, ga_addr v, uint64_t n)
{
#ifdef MADV_FREE
    if (m->use_madv_free) {
        if (madvise(as_ptr(v), (size_t)n, MADV_FREE) == 0) {
            return;
        }
        if (errno == EINVAL) {
            m->use_madv_free = false; /* kernel < 4.5, as Go's fallback */
        }
    }
#else
    (void)m;
#endif
    madvise(as_ptr(v), (size_t)n, MADV_DONTNEED);
}

void
mem_os_unmap(ga_addr v, uint64_t n)
{
    munmap(as_ptr(v), (size_t)n);
}

bool
mem_os_block(ga_addr v, uint64_t n)
{
    void *p = mmap(as_ptr(v), (size_t)n, PROT_NONE,
                   MAP_ANONYMOUS | MAP_PRIVATE | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED) {
        return false;
    }
    if ((ga_addr)(uintptr_t)p != v) {
        /* An old kernel took the flag as a plain hint. */
        munmap(p, (size_t)n);
        return false;
    }
    return true;
}

void
mem_os_release_all(mem_backend *m)
{
    for (size_t i = 0; i < m->reserved.n; i++) {
        mem_os_unmap(m->reserved.r[i].base,
                     m->reserved.r[i].end - m->reserved.r[i].base);
    }
    for (size_t i = 0; i < m->blocked.n; i++) {
        mem_os_unmap(m->blocked.r[i].base,
                     m->blocked.r[i].end - m->blocked.r[i].base);
    }
}

uint64_t
mem_host_phys_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES);
    long page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}

uint64_t
mem_host_huge_page_size(void)
{
    uint64_t size = 0;
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "r");
    if (f != NULL) {
        unsigned long long v = 0;
        if (fscanf(f, "%llu", &v) == 1) {
            size = v;
        }
        fclose(f);
    }
    return size;
}
