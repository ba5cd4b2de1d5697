/* The virtual backend (csrc/mem_sim.c) through the OS layer (mem.h):
 * reserve/map/release accounting, address reuse, top-down placement,
 * blocked ranges, injected failures, sysReserveAligned and linearAlloc.
 *
 * A mem_backend is driven on its own over linux/amd64's 47-bit address
 * space with 4 KiB pages; no memory is touched.
 * Go 1.13: the behaviour of Linux mmap that mem_linux.go relies on;
 *          malloc.go (sysReserveAligned, linearAlloc).
 * Differs from Go: everything here is a simulation (design §5).
 * Locking: single-threaded.
 */
#include <inttypes.h>
#include <string.h>

#include "check.h"
#include "mem.h"

#define PHYS 4096
#define SPACE ((ga_addr)1 << 47)
#define MiB ((uint64_t)1 << 20)
#define ARENA (64 * MiB)
#define HINT ((ga_addr)0xc000000000)

static void
sim(mem_backend *m)
{
    mem_init(m, GA_BACKING_VIRTUAL, PHYS, SPACE);
}

/* A reservation lands at its hint when the range is free; every call
 * counts; the heap's ranges are recorded, and released ones are
 * reusable at once. */
static void
test_reserve_and_release(void)
{
    mem_backend m;
    sim(&m);
    CHECK(m.mmap_top < SPACE && m.mmap_top % PHYS == 0);
    CHECK(m.mmap_top % ARENA != 0); /* not arena-aligned, as Linux's */
    ga_addr a = sys_reserve(&m, HINT, ARENA);
    CHECK(a == HINT && m.reserve_calls == 1);
    CHECK(mem_ranges_contain(&m.reserved, HINT, HINT + ARENA));
    /* taken: the same hint lands top-down below mmap_top */
    ga_addr b = sys_reserve(&m, HINT + MiB, ARENA);
    CHECK_MSG(b != 0 && b + ARENA <= m.mmap_top &&
                  b > m.mmap_top - 2 * ARENA && b % PHYS == 0,
              "b = 0x%" PRIx64, b);
    /* the next one top-down goes right below it */
    ga_addr c = sys_reserve(&m, 0, ARENA);
    CHECK(c == b - ARENA && m.reserve_calls == 3);
    /* beyond the address space: top-down too */
    CHECK(sys_reserve(&m, SPACE - MiB, ARENA) == c - ARENA);
    CHECK(sys_reserve(&m, UINT64_MAX - MiB, ARENA) == c - 2 * ARENA);
    CHECK(m.reserved.n == 5);
    /* release and reuse */
    uint64_t stat = 0;
    CHECK(sys_map(&m, a, ARENA, &stat) && stat == ARENA);
    CHECK(m.mapped_bytes == ARENA);
    sys_free(&m, a, ARENA, &stat);
    CHECK(stat == 0 && !mem_ranges_overlap(&m.reserved, a, a + ARENA));
    CHECK(sys_reserve(&m, HINT, ARENA) == HINT);
    /* a hole punched in a range is free again, exactly that size */
    sys_free(&m, HINT + MiB, MiB, NULL);
    CHECK(mem_ranges_contain(&m.reserved, HINT, HINT + MiB) &&
          mem_ranges_contain(&m.reserved, HINT + 2 * MiB, HINT + ARENA) &&
          !mem_ranges_overlap(&m.reserved, HINT + MiB, HINT + 2 * MiB));
    CHECK(sys_reserve(&m, HINT + MiB, MiB) == HINT + MiB);
    CHECK(sys_reserve(&m, HINT + MiB, 2 * MiB) != HINT + MiB);
    mem_destroy(&m);
}

/* sys_map maps reserved memory only; sys_unused counts what is
 * madvised; sys_free takes what it frees from the stat. */
static void
test_map_accounting(void)
{
    mem_backend m;
    sim(&m);
    uint64_t stat = 0;
    CHECK(!sys_map(&m, HINT, PHYS, &stat) && stat == 0);
    ga_addr a = sys_reserve(&m, HINT, 4 * MiB);
    CHECK(a == HINT);
    CHECK(!sys_map(&m, a + 3 * MiB, 2 * MiB, &stat)); /* runs past it */
    CHECK(sys_map(&m, a, MiB, &stat) && sys_map(&m, a + MiB, MiB, NULL));
    CHECK(stat == MiB && m.mapped_bytes == 2 * MiB);
    sys_used(&m, a, MiB);
    sys_unused(&m, a, 3 * PHYS);
    CHECK(m.madvised == 3 * PHYS);
    sys_free(&m, a, 4 * MiB, &stat);
    CHECK(stat == (uint64_t)MiB - 4 * MiB); /* the caller's to balance */
    CHECK(m.reserved.n == 0);
    mem_destroy(&m);
}

/* Fault injection: fail_reserves refuses that many reservations; a
 * blocked range is foreign, and reservations avoid it. */
static void
test_faults(void)
{
    mem_backend m;
    sim(&m);
    m.fail_reserves = 2;
    CHECK(sys_reserve(&m, HINT, ARENA) == 0);
    CHECK(sys_reserve(&m, 0, ARENA) == 0);
    CHECK(m.fail_reserves == 0 && m.reserve_calls == 2 && m.reserved.n == 0);
    CHECK(sys_reserve(&m, HINT, ARENA) == HINT);
    /* blocking: not over the heap's ranges, not wrapping around */
    CHECK(!mem_block(&m, HINT + MiB, PHYS));
    CHECK(!mem_block(&m, UINT64_MAX - PHYS + 2, PHYS));
    CHECK(mem_block(&m, HINT + ARENA + 5 * PHYS, PHYS));
    CHECK(!mem_block(&m, HINT + ARENA + 5 * PHYS, PHYS)); /* twice */
    ga_addr b = sys_reserve(&m, HINT + ARENA, ARENA);
    CHECK(b != HINT + ARENA && b != 0);
    CHECK(!mem_ranges_overlap(&m.blocked, b, b + ARENA));
    /* a block just below mmap_top pushes top-down placement under it */
    mem_backend n;
    sim(&n);
    ga_addr top = n.mmap_top;
    CHECK(mem_block(&n, top - PHYS, PHYS));
    CHECK(sys_reserve(&n, 0, ARENA) == top - PHYS - ARENA);
    mem_destroy(&n);
    mem_destroy(&m);
}

/* sysReserveAligned: reserve size + align, keep the aligned part and
 * give back the rest; keep everything when the OS answer is aligned. */
static void
test_reserve_aligned(void)
{
    mem_backend m;
    sim(&m);
    uint64_t got = 0;
    /* top-down from an unaligned mmap_top: trimmed on both sides */
    ga_addr a = sys_reserve_aligned(&m, 0, ARENA, ARENA, &got);
    CHECK(a != 0 && a % ARENA == 0 && got == ARENA);
    CHECK(m.reserved.n == 1 && mem_ranges_contain(&m.reserved, a, a + ARENA) &&
          m.reserved.r[0].base == a && m.reserved.r[0].end == a + ARENA);
    /* at an aligned hint: lucky, all of it */
    ga_addr b = sys_reserve_aligned(&m, HINT, ARENA, ARENA, &got);
    CHECK(b == HINT && got == 2 * ARENA);
    CHECK(mem_ranges_contain(&m.reserved, HINT, HINT + 2 * ARENA));
    m.fail_reserves = 1;
    CHECK(sys_reserve_aligned(&m, 0, ARENA, ARENA, &got) == 0 && got == 0);
    mem_destroy(&m);
}

/* linearAlloc maps whole OS pages as it hands the region out. */
static void
test_linear_alloc(void)
{
    mem_backend m;
    sim(&m);
    ga_addr base = sys_reserve(&m, 0x08400000, 4 * MiB);
    CHECK(base == 0x08400000);
    linear_alloc l;
    linear_alloc_init(&l, base, 4 * MiB);
    uint64_t stat = 0;
    CHECK(linear_alloc_peek(&l, 100, 8) == base);
    CHECK(linear_alloc_alloc(&m, &l, 100, 8, &stat) == base);
    CHECK(stat == PHYS && l.mapped == base + PHYS);
    CHECK(linear_alloc_alloc(&m, &l, 100, 64, &stat) == base + 128);
    CHECK(stat == PHYS);
    CHECK(linear_alloc_alloc(&m, &l, PHYS, 8, &stat) == base + 232);
    CHECK(stat == 2 * PHYS);
    CHECK(linear_alloc_peek(&l, 4 * MiB, 8) == 0);
    CHECK(linear_alloc_alloc(&m, &l, 4 * MiB, 8, &stat) == 0);
    CHECK(stat == 2 * PHYS && m.mapped_bytes == 2 * PHYS);
    mem_destroy(&m);
}

int
main(void)
{
    CHECK_RUN(test_reserve_and_release());
    CHECK_RUN(test_map_accounting());
    CHECK_RUN(test_faults());
    CHECK_RUN(test_reserve_aligned());
    CHECK_RUN(test_linear_alloc());
    int failed = check_summary("mem_sim");
    return failed > 255 ? 255 : failed;
}
