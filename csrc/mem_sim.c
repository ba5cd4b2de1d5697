/* The virtual backend: a simulated address space.  See mem.h.
 *
 * No memory is touched: the backend only records which ranges the heap
 * reserved and which ranges are blocked by "someone else".  A reservation
 * lands at its hint when the range is free and inside the modelled
 * address space, otherwise top-down below mmap_top, like Linux's mmap.
 * Tests make it refuse reservations (fail_reserves) or block ranges, to
 * drive Go's hint-collision and fallback paths deterministically.
 * Go 1.13: the behaviour of Linux mmap as mem_linux.go relies on it.
 * Differs from Go: everything here is a simulation.
 * Locking: the caller holds the heap lock.
 */
#include "mem_impl.h"

#include "arith.h"

static bool
sim_is_free(const mem_backend *m, ga_addr base, ga_addr end)
{
    return !mem_ranges_overlap(&m->reserved, base, end) &&
           !mem_ranges_overlap(&m->blocked, base, end);
}

/* The lowest base among ranges of s that overlap [base, end), or end. */
static ga_addr
lowest_overlap(const mem_range_set *s, ga_addr base, ga_addr end)
{
    ga_addr low = end;
    for (size_t i = 0; i < s->n; i++) {
        if (s->r[i].base < end && base < s->r[i].end && s->r[i].base < low) {
            low = s->r[i].base;
        }
    }
    return low;
}

/* sim_top_down finds the highest free n-byte range below mmap_top. */
static ga_addr
sim_top_down(const mem_backend *m, uint64_t n)
{
    const ga_addr floor = 0x10000;
    ga_addr end = m->mmap_top;
    while (end >= floor + n) {
        ga_addr base = round_down(end - n, m->phys_page_size);
        if (sim_is_free(m, base, base + n)) {
            return base;
        }
        ga_addr a = lowest_overlap(&m->reserved, base, base + n);
        ga_addr b = lowest_overlap(&m->blocked, base, base + n);
        end = a < b ? a : b;
    }
    return 0;
}

ga_addr
mem_sim_reserve(mem_backend *m, ga_addr v, uint64_t n)
{
    if (m->fail_reserves > 0) {
        m->fail_reserves--;
        return 0;
    }
    if (v != 0 && v + n > v && v + n <= m->space_end &&
        sim_is_free(m, v, v + n)) {
        return v;
    }
    return sim_top_down(m, n);
}
