/* Where the heap's address space comes from: arena hints and sysAlloc.
 * See sysalloc.h.
 *
 * mallocinit's hint table for every platform branch (and, on 32-bit
 * ports, the regions it reserves up front), and heap growth through the
 * hints: a reservation at each hint in turn, the fallback to wherever the
 * OS puts it, and the undoing of a growth that cannot complete.
 * Go 1.13: src/runtime/malloc.go (mallocinit's hints, (*mheap).sysAlloc).
 * Differs from Go: see sysalloc.h.
 * Locking: the caller holds the heap lock.
 */
#include "sysalloc.h"

#include "arith.h"
#include "mheap.h"

/* ---- Hints ------------------------------------------------------- */

static bool
push_hint(mheap *h, ga_addr addr, bool down)
{
    arena_hint *hint = fixalloc_alloc(&h->arena_hint_alloc);
    if (hint == NULL) {
        return false;
    }
    hint->addr = addr;
    hint->down = down;
    hint->next = h->arena_hints;
    h->arena_hints = hint;
    return true;
}

/* hint_addr64 is the address of hint i on a 64-bit platform, or 0 when
 * mallocinit's switch skips it. */
static ga_addr
hint_addr64(const platform *p, uint64_t i)
{
    switch (p->hint_kind) {
    case HINTS_DARWIN_ARM64:
        return i << 40 | (ga_addr)0x0013 << 28;
    case HINTS_ARM64:
        return i << 40 | (ga_addr)0x0040 << 32;
    case HINTS_AIX:
        return i == 0 ? 0 : (i << 40 | (ga_addr)0xa0 << 52);
    case HINTS_RACE: {
        /* OR, not ADD: i in 0x40..0x5f aliases i in 0..0x1f. */
        ga_addr a = i << 32 | (ga_addr)0x00c0 << 32;
        return a >= (ga_addr)0x00e000000000 ? 0 : a;
    }
    default:
        return i << 40 | (ga_addr)0x00c0 << 32;
    }
}

static bool
init_hints_64(mheap *h)
{
    for (int i = 0x7f; i >= 0; i--) {
        ga_addr p = hint_addr64(&h->plat, (uint64_t)i);
        if (p != 0 && !push_hint(h, p, false)) {
            return false;
        }
    }
    return true;
}

/* init_hints_32: reserve room for every heapArena up front, then stake
 * out a large initial heap just above the binary, and hint past it. */
static bool
init_hints_32(mheap *h, ga_addr binary_end)
{
    uint64_t meta_size = ((uint64_t)1 << arena_bits(&h->plat)) *
                         h->plat.sizeof_heap_arena;
    ga_addr meta = sys_reserve(&h->mem, 0, meta_size);
    if (meta != 0) {
        linear_alloc_init(&h->heap_arena_alloc, meta, meta_size);
    }
    ga_addr p = binary_end;
    if (h->heap_arena_alloc.next <= p && p < h->heap_arena_alloc.end) {
        p = h->heap_arena_alloc.end;
    }
    p = round_up(p + (256 << 10), h->plat.heap_arena_bytes);
    static const uint64_t arena_sizes[] = {512 << 20, 256 << 20, 128 << 20};
    for (size_t i = 0; i < 3; i++) {
        uint64_t got;
        ga_addr a = sys_reserve_aligned(&h->mem, p, arena_sizes[i],
                                        h->plat.heap_arena_bytes, &got);
        if (a != 0) {
            linear_alloc_init(&h->arena, a, got);
            p = a + got;
            break;
        }
    }
    return push_hint(h, p, false);
}

bool
arena_init_hints(mheap *h)
{
    return h->plat.ptr_size == 8 ? init_hints_64(h)
                                 : init_hints_32(h, h->binary_end);
}

/* ---- Growth ------------------------------------------------------ */

static bool
region_usable(const mheap *h, ga_addr p, uint64_t n)
{
    if (p + n < p) {
        return false;
    }
    return arena_index(&h->plat, p + n - 1) >> arena_bits(&h->plat) == 0;
}

/* try_hints walks the hint list as Go does.  Hints that fail are
 * unlinked and kept on *discarded so the caller can free them on success
 * or put them back on failure. */
static ga_addr
try_hints(mheap *h, uint64_t n, arena_hint **discarded)
{
    arena_hint **tail = discarded;
    while (h->arena_hints != NULL) {
        arena_hint *hint = h->arena_hints;
        ga_addr p = hint->down ? hint->addr - n : hint->addr;
        ga_addr v = 0;
        if (region_usable(h, p, n)) {
            v = sys_reserve(&h->mem, p, n);
        }
        if (v == p && v != 0) {
            hint->addr = hint->down ? p : p + n;
            return v;
        }
        if (v != 0) {
            sys_free(&h->mem, v, n, NULL);
        }
        h->arena_hints = hint->next;
        hint->next = NULL;
        *tail = hint;
        tail = &hint->next;
    }
    return 0;
}

static void
restore_hints(mheap *h, arena_hint *discarded)
{
    if (discarded == NULL) {
        return;
    }
    arena_hint *last = discarded;
    while (last->next != NULL) {
        last = last->next;
    }
    last->next = h->arena_hints;
    h->arena_hints = discarded;
}

static void
free_hints(mheap *h, arena_hint *discarded)
{
    while (discarded != NULL) {
        arena_hint *next = discarded->next;
        fixalloc_free(&h->arena_hint_alloc, discarded);
        discarded = next;
    }
}

/* unwind_growth undoes a growth whose reservation [v, v+got) the OS will
 * not back: the range goes back, the hint that gave it returns to where
 * it was (or the two hints the fallback pushed go), and the discarded
 * hints are put back. */
static void
unwind_growth(mheap *h, ga_addr v, uint64_t got, uint64_t n, bool fallback,
              arena_hint *discarded)
{
    sys_free(&h->mem, v, got, NULL);
    if (fallback) {
        for (int i = 0; i < 2; i++) {
            arena_hint *pushed = h->arena_hints;
            h->arena_hints = pushed->next;
            fixalloc_free(&h->arena_hint_alloc, pushed);
        }
    }
    else {
        arena_hint *used = h->arena_hints;
        used->addr = used->down ? v + n : v;
    }
    restore_hints(h, discarded);
}

/* sys_alloc_linear (32-bit): the arenas come from the region mallocinit
 * reserved, as long as it lasts.  0 when it is exhausted (the hints are
 * next) or, with no_meta set, when the metadata could not be made. */
static ga_addr
sys_alloc_linear(mheap *h, uint64_t n, bool *no_meta)
{
    uint64_t align = h->plat.heap_arena_bytes;
    ga_addr v = linear_alloc_peek(&h->arena, n, align);
    if (v == 0) {
        return 0;
    }
    /* The metadata first: a 32-bit heap's is small, and the linear
     * region is not easily given back. */
    arena_prep prep;
    if (!arena_prep_plan(h, v, n, &prep) || !arena_prep_make(h, &prep)) {
        *no_meta = true;
        return 0;
    }
    if (linear_alloc_alloc(&h->mem, &h->arena, n, align, &h->stats.heap_sys) !=
        v) {
        arena_prep_free(&prep);
        return 0;
    }
    arena_prep_install(h, &prep);
    return v;
}

ga_addr
mheap_sys_alloc(mheap *h, uint64_t n, uint64_t *size)
{
    n = round_up(n, h->plat.heap_arena_bytes);
    if (h->plat.ptr_size == 4) {
        bool no_meta = false;
        ga_addr v = sys_alloc_linear(h, n, &no_meta);
        if (v != 0 || no_meta) {
            *size = n;
            return v;
        }
    }
    /* A growth adds at most one range to the reserved set (more only
     * for a moment): room for it first, so that no reservation is taken
     * for a collision because the set could not grow. */
    if (!mem_ranges_room(&h->mem.reserved, 2, &h->meta)) {
        mheap_refuse(h, "out of process memory for the heap's ranges");
        return 0;
    }
    arena_hint *discarded = NULL;
    uint64_t got = n;
    ga_addr v = try_hints(h, n, &discarded);
    bool fallback = v == 0;
    if (v == 0) {
        if (h->plat.race) {
            throw(h, "too many address space collisions for -race mode");
        }
        v = sys_reserve_aligned(&h->mem, 0, n, h->plat.heap_arena_bytes, &got);
        bool ok = v != 0;
        /* New hints extend the region both ways; up is tried first. */
        if (ok && !push_hint(h, v, true)) {
            ok = false;
        }
        else if (ok && !push_hint(h, v + got, false)) {
            arena_hint *down = h->arena_hints;
            h->arena_hints = down->next;
            fixalloc_free(&h->arena_hint_alloc, down);
            ok = false;
        }
        if (!ok) {
            if (v != 0) {
                sys_free(&h->mem, v, got, NULL);
            }
            restore_hints(h, discarded);
            mheap_refuse(h, "no address space for the heap (every "
                            "reservation was refused)");
            return 0;
        }
    }
    if (!region_usable(h, v, got)) {
        throw(h, "memory reservation exceeds address space limit");
    }
    if ((v & (h->plat.heap_arena_bytes - 1)) != 0) {
        throw(h, "misrounded allocation in sysAlloc");
    }
    /* The metadata's size against metadata_limit (Go has no such
     * limit), before anything is mapped or made. */
    arena_prep prep;
    if (!arena_prep_plan(h, v, got, &prep)) {
        unwind_growth(h, v, got, n, fallback, discarded);
        return 0;
    }
    if (!sys_map(&h->mem, v, got, &h->stats.heap_sys)) {
        /* Go throws "runtime: out of memory" here (sysMap).  goalloc
         * undoes the growth instead: the OS reserved the range but will
         * not back it, which is the caller's OutOfMemoryError. */
        unwind_growth(h, v, got, n, fallback, discarded);
        mheap_refuse(h, "the OS would not back the heap's new arena");
        return 0;
    }
    /* Mapped first, so that an OS that will not back the arena refuses
     * before its metadata is made.  Out of process memory for the
     * metadata, Go would throw (persistentalloc); goalloc refuses the
     * growth and gives the mapping back. */
    if (!arena_prep_make(h, &prep)) {
        h->stats.heap_sys -= got; /* sys_map's charge */
        h->mem.mapped_bytes -= got;
        unwind_growth(h, v, got, n, fallback, discarded);
        return 0;
    }
    free_hints(h, discarded);
    arena_prep_install(h, &prep);
    *size = got;
    return v;
}
