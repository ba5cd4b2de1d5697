/* The OS layer: common parts and the backend switch.  See mem.h.
 *
 * The dispatch from Go's sys* names to the os or virtual implementation,
 * sysReserveAligned, and linearAlloc, which maps a reserved region as it
 * hands it out.  The range sets both backends keep are mem_ranges.c's.
 * Go 1.13: src/runtime/malloc.go (sysReserveAligned, linearAlloc),
 *          mem_linux.go.
 * Differs from Go: the heap records every range it reserved, so that
 *          closing a heap returns all of its address space.
 * Locking: the caller holds the heap lock.
 */
#include "mem.h"
#include "mem_impl.h"

#include <stdlib.h>
#include <string.h>

#include "arith.h"

/* ---- Dispatch ---------------------------------------------------- */

void
mem_unmap_ranges(mem_range *ranges, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mem_os_unmap(ranges[i].base, ranges[i].end - ranges[i].base);
    }
    free(ranges);
}

void
mem_init(mem_backend *m, ga_backing kind, uint64_t phys_page_size,
         ga_addr space_end)
{
    memset(m, 0, sizeof(*m));
    m->kind = kind;
    m->phys_page_size = phys_page_size;
    m->space_end = space_end;
    /* Linux puts its top-down mmap area just below the stack, at an
     * address that is page- but not arena-aligned. */
    m->mmap_top = round_down(space_end - (space_end >> 6) - 0x1000,
                             phys_page_size) -
                  0x5000;
    if (kind == GA_BACKING_OS) {
        mem_os_init(m);
    }
}

void
mem_destroy(mem_backend *m)
{
    if (m->kind == GA_BACKING_OS) {
        mem_os_release_all(m);
    }
    mem_ranges_free(&m->reserved);
    mem_ranges_free(&m->blocked);
}

ga_addr
sys_reserve(mem_backend *m, ga_addr v, uint64_t n)
{
    m->reserve_calls++;
    ga_addr p = m->kind == GA_BACKING_OS ? mem_os_reserve(m, v, n)
                                         : mem_sim_reserve(m, v, n);
    if (p != 0 && !mem_ranges_add(&m->reserved, p, p + n)) {
        /* Cannot track it: give it back and report a refusal. */
        if (m->kind == GA_BACKING_OS) {
            mem_os_unmap(p, n);
        }
        return 0;
    }
    return p;
}

bool
sys_map(mem_backend *m, ga_addr v, uint64_t n, uint64_t *stat)
{
    if (!mem_ranges_contain(&m->reserved, v, v + n)) {
        return false;
    }
    if (m->kind == GA_BACKING_OS && !mem_os_map(v, n)) {
        return false;
    }
    m->mapped_bytes += n;
    if (stat != NULL) {
        *stat += n;
    }
    return true;
}

void
sys_used(mem_backend *m, ga_addr v, uint64_t n)
{
    /* Linux commits nothing here (Go only re-enables huge pages). */
    (void)m;
    (void)v;
    (void)n;
}

void
sys_unused(mem_backend *m, ga_addr v, uint64_t n)
{
    m->madvised += n;
    if (m->kind == GA_BACKING_OS) {
        mem_os_unused(m, v, n);
    }
}

void
sys_free(mem_backend *m, ga_addr v, uint64_t n, uint64_t *stat)
{
    if (m->kind == GA_BACKING_OS) {
        mem_os_unmap(v, n);
    }
    mem_ranges_remove(&m->reserved, v, v + n);
    if (stat != NULL) {
        *stat -= n;
    }
}

ga_addr
sys_reserve_aligned(mem_backend *m, ga_addr v, uint64_t size, uint64_t align,
                    uint64_t *got)
{
    ga_addr p = sys_reserve(m, v, size + align);
    if (p == 0) {
        *got = 0;
        return 0;
    }
    if ((p & (align - 1)) == 0) {
        /* Lucky: aligned already, so keep all of it (as Go does). */
        *got = size + align;
        return p;
    }
    ga_addr aligned = round_up(p, align);
    sys_free(m, p, aligned - p, NULL);
    ga_addr end = aligned + size;
    ga_addr tail = (p + size + align) - end;
    if (tail > 0) {
        sys_free(m, end, tail, NULL);
    }
    *got = size;
    return aligned;
}

bool
mem_block(mem_backend *m, ga_addr addr, uint64_t len)
{
    ga_addr end = addr + len;
    if (end < addr || mem_ranges_overlap(&m->reserved, addr, end) ||
        mem_ranges_overlap(&m->blocked, addr, end)) {
        return false;
    }
    if (m->kind == GA_BACKING_OS && !mem_os_block(addr, len)) {
        return false;
    }
    if (!mem_ranges_add(&m->blocked, addr, end)) {
        if (m->kind == GA_BACKING_OS) {
            mem_os_unmap(addr, len);
        }
        return false;
    }
    return true;
}

/* ---- linearAlloc ------------------------------------------------- */

void
linear_alloc_init(linear_alloc *l, ga_addr base, uint64_t size)
{
    l->next = base;
    l->mapped = base;
    l->end = base + size;
}

ga_addr
linear_alloc_peek(const linear_alloc *l, uint64_t size, uint64_t align)
{
    ga_addr p = round_up(l->next, align);
    return p + size > l->end ? 0 : p;
}

ga_addr
linear_alloc_alloc(mem_backend *m, linear_alloc *l, uint64_t size,
                   uint64_t align, uint64_t *stat)
{
    ga_addr p = round_up(l->next, align);
    if (p + size > l->end) {
        return 0;
    }
    ga_addr next = p + size;
    ga_addr pend = round_up(next - 1, m->phys_page_size);
    if (pend > l->mapped) {
        if (!sys_map(m, l->mapped, pend - l->mapped, stat)) {
            return 0;
        }
        l->mapped = pend;
    }
    l->next = next;
    return p;
}
