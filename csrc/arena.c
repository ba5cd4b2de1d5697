/* Heap arenas, the arena index and arena hints.  See arena.h.
 *
 * mallocinit's hint table for every platform branch, heap growth through
 * the hints (sysAlloc), and the page -> span map.
 * Go 1.13: src/runtime/malloc.go (mallocinit, sysAlloc, linearAlloc),
 *          mheap.go (spanOf, setSpan, setSpans, pageIndexOf).
 * Differs from Go: see arena.h.
 * Locking: the caller holds the heap lock, except for span_of and
 *          heap_arena_of, which read atomically published entries.
 */
#include "arena.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mheap.h"

/* ---- Arena index ------------------------------------------------- */

void
set_span(mheap *h, ga_addr addr, mspan *s)
{
    __atomic_store_n(&heap_arena_of(h, addr)->spans[page_index(h, addr)], s,
                     __ATOMIC_RELAXED);
}

void
set_spans(mheap *h, ga_addr base, uint64_t npages, mspan *s)
{
    /* A span may cross into the next arena when arenas are adjacent. */
    heap_arena *ha = heap_arena_of(h, base);
    uint64_t pi = page_index(h, base);
    for (uint64_t n = 0; n < npages; n++) {
        if (pi == h->plat.pages_per_arena) {
            ha = heap_arena_of(h, base + n * PAGE_SIZE);
            pi = 0;
        }
        __atomic_store_n(&ha->spans[pi++], s, __ATOMIC_RELAXED);
    }
}


static void
set_page_bit(uint8_t *bits, uint64_t pi, bool on)
{
    uint8_t bit = (uint8_t)(1u << (pi % 8));
    if (on) {
        bits[pi / 8] |= bit;
    }
    else {
        bits[pi / 8] &= (uint8_t)~bit;
    }
}

void
arena_set_page_in_use(mheap *h, ga_addr addr, bool on)
{
    set_page_bit(heap_arena_of(h, addr)->page_in_use, page_index(h, addr),
                 on);
}

bool
arena_page_in_use(const mheap *h, ga_addr addr)
{
    heap_arena *ha = heap_arena_of(h, addr);
    uint64_t pi = page_index(h, addr);
    return (ha->page_in_use[pi / 8] >> (pi % 8)) & 1;
}

void
arena_set_page_freed(mheap *h, ga_addr addr)
{
    set_page_bit(heap_arena_of(h, addr)->page_freed, page_index(h, addr),
                 true);
}

bool
arena_page_freed(const mheap *h, ga_addr addr)
{
    heap_arena *ha = heap_arena_of(h, addr);
    uint64_t pi = page_index(h, addr);
    return (ha->page_freed[pi / 8] >> (pi % 8)) & 1;
}

void
arena_clear_freed(mheap *h, ga_addr base, uint64_t npages)
{
    for (uint64_t n = 0; n < npages; n++) {
        ga_addr a = base + n * PAGE_SIZE;
        set_page_bit(heap_arena_of(h, a)->page_freed, page_index(h, a),
                     false);
    }
}

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
hint_addr64(const ga_platform *p, uint64_t i)
{
    switch (p->hint_kind) {
    case GA_HINTS_DARWIN_ARM64:
        return i << 40 | (ga_addr)0x0013 << 28;
    case GA_HINTS_ARM64:
        return i << 40 | (ga_addr)0x0040 << 32;
    case GA_HINTS_AIX:
        return i == 0 ? 0 : (i << 40 | (ga_addr)0xa0 << 52);
    case GA_HINTS_RACE: {
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

static void
linear_alloc_init(linear_alloc *l, ga_addr base, uint64_t size)
{
    l->next = base;
    l->mapped = base;
    l->end = base + size;
}

/* linear_alloc_alloc bumps size bytes aligned to align and maps what
 * it newly covers, charging stat.  0 when the region is exhausted. */
static ga_addr
linear_alloc_alloc(mheap *h, linear_alloc *l, uint64_t size, uint64_t align,
                   uint64_t *stat)
{
    ga_addr p = ga_round_up(l->next, align);
    if (p + size > l->end) {
        return 0;
    }
    ga_addr next = p + size;
    ga_addr pend = ga_round_up(next - 1, h->plat.phys_page_size);
    if (pend > l->mapped) {
        if (!sys_map(&h->mem, l->mapped, pend - l->mapped, stat)) {
            return 0;
        }
        l->mapped = pend;
    }
    l->next = next;
    return p;
}

/* init_hints_32: reserve room for every heapArena up front, then stake
 * out a large initial heap just above the binary, and hint past it. */
static bool
init_hints_32(mheap *h, ga_addr binary_end)
{
    uint64_t meta_size =
        ((uint64_t)1 << arena_bits(&h->plat)) * h->plat.sizeof_heap_arena;
    ga_addr meta = sys_reserve(&h->mem, 0, meta_size);
    if (meta != 0) {
        linear_alloc_init(&h->heap_arena_alloc, meta, meta_size);
    }
    ga_addr p = binary_end;
    if (h->heap_arena_alloc.next <= p && p < h->heap_arena_alloc.end) {
        p = h->heap_arena_alloc.end;
    }
    p = ga_round_up(p + (256 << 10), h->plat.heap_arena_bytes);
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
arena_init_hints(mheap *h, char *err, size_t errlen)
{
    uint64_t l1_len = (uint64_t)1 << h->plat.arena_l1_bits;
    h->arenas = calloc(l1_len, sizeof(*h->arenas));
    bool ok = h->arenas != NULL;
    if (ok) {
        ok = h->plat.ptr_size == 8 ? init_hints_64(h)
                                   : init_hints_32(h, h->binary_end);
    }
    if (!ok) {
        snprintf(err, errlen, "out of memory laying out the arena hints");
    }
    return ok;
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

/* grow_all_arenas appends idx to allArenas, doubling the accounted
 * backing array as Go does (old arrays are leaked: gc_sys only grows). */
static bool
record_arena(mheap *h, uint64_t idx)
{
    if (h->nall_arenas == h->all_arenas_cap) {
        uint64_t bytes = 2 * h->all_arenas_cap * h->plat.ptr_size;
        if (bytes == 0) {
            bytes = h->plat.phys_page_size;
        }
        uint64_t cap = bytes / h->plat.ptr_size;
        uint64_t *a = realloc(h->all_arenas, cap * sizeof(*a));
        if (a == NULL) {
            return false;
        }
        h->all_arenas = a;
        h->all_arenas_cap = cap;
        persistent_alloc_charge(&h->pa, bytes, &h->stats.gc_sys);
    }
    h->all_arenas[h->nall_arenas++] = idx;
    return true;
}

/* new_heap_arena creates the metadata of arena idx. */
static bool
new_heap_arena(mheap *h, uint64_t idx)
{
    heap_arena ***l2p = &h->arenas[l1_of(h, idx)];
    if (*l2p == NULL) {
        /* The L2 map: persistentalloc'd and charged to no stat. */
        heap_arena **l2 = calloc((size_t)1 << h->plat.arena_l2_bits,
                                 sizeof(*l2));
        if (l2 == NULL) {
            ga_throw(h, "out of memory allocating heap arena map");
        }
        __atomic_store_n(l2p, l2, __ATOMIC_RELEASE);
    }
    if ((*l2p)[l2_of(h, idx)] != NULL) {
        ga_throw(h, "arena already initialized");
    }
    uint64_t pages = h->plat.pages_per_arena;
    heap_arena *ha = calloc(1, sizeof(*ha) + pages * sizeof(mspan *));
    uint8_t *bits = calloc(pages / 8, 2);
    if (ha == NULL || bits == NULL || !record_arena(h, idx)) {
        free(ha);
        free(bits);
        ga_throw(h, "out of memory allocating heap arena metadata");
    }
    ha->page_in_use = bits;
    ha->page_freed = bits + pages / 8;
    /* Go's heapArena comes from heapArenaAlloc (32-bit) or
     * persistentalloc, both charged to gc_sys. */
    uint64_t size = h->plat.sizeof_heap_arena;
    if (h->plat.ptr_size == 4 &&
        linear_alloc_alloc(h, &h->heap_arena_alloc, size, h->plat.ptr_size,
                           &h->stats.gc_sys) != 0) {
        /* charged by linear_alloc_alloc as it maps */
    }
    else {
        persistent_alloc_charge(&h->pa, size, &h->stats.gc_sys);
    }
    __atomic_store_n(&(*l2p)[l2_of(h, idx)], ha, __ATOMIC_RELEASE);
    return true;
}

static void
create_arena_metadata(mheap *h, ga_addr v, uint64_t size)
{
    uint64_t first = arena_index(&h->plat, v);
    uint64_t last = arena_index(&h->plat, v + size - 1);
    for (uint64_t ri = first; ri <= last; ri++) {
        new_heap_arena(h, ri);
    }
}

ga_addr
mheap_sys_alloc(mheap *h, uint64_t n, uint64_t *size)
{
    n = ga_round_up(n, h->plat.heap_arena_bytes);
    ga_addr v = 0;
    if (h->plat.ptr_size == 4) {
        v = linear_alloc_alloc(h, &h->arena, n, h->plat.heap_arena_bytes,
                               &h->stats.heap_sys);
        if (v != 0) {
            *size = n;
            create_arena_metadata(h, v, n);
            return v;
        }
    }
    arena_hint *discarded = NULL;
    uint64_t got = n;
    v = try_hints(h, n, &discarded);
    bool fallback = v == 0;
    if (v == 0) {
        if (h->plat.race) {
            ga_throw(h, "too many address space collisions for -race mode");
        }
        v = sys_reserve_aligned(&h->mem, 0, n, h->plat.heap_arena_bytes,
                                &got);
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
            return 0;
        }
    }
    if (!region_usable(h, v, got)) {
        ga_throw(h, "memory reservation exceeds address space limit");
    }
    if ((v & (h->plat.heap_arena_bytes - 1)) != 0) {
        ga_throw(h, "misrounded allocation in sysAlloc");
    }
    if (!sys_map(&h->mem, v, got, &h->stats.heap_sys)) {
        /* Go throws "runtime: out of memory" here (sysMap).  goalloc
         * undoes the growth instead: the OS reserved the range but will
         * not back it, which is the caller's OutOfMemoryError. */
        unwind_growth(h, v, got, n, fallback, discarded);
        return 0;
    }
    free_hints(h, discarded);
    create_arena_metadata(h, v, got);
    *size = got;
    return v;
}

void
arena_release(mheap *h)
{
    if (h->arenas == NULL) {
        return;
    }
    for (uint64_t i = 0; i < h->nall_arenas; i++) {
        uint64_t idx = h->all_arenas[i];
        heap_arena **l2 = h->arenas[l1_of(h, idx)];
        heap_arena *ha = l2[l2_of(h, idx)];
        free(ha->page_in_use);
        free(ha);
    }
    uint64_t l1_len = (uint64_t)1 << h->plat.arena_l1_bits;
    for (uint64_t i = 0; i < l1_len; i++) {
        free(h->arenas[i]);
    }
    free(h->arenas);
    free(h->all_arenas);
    h->arenas = NULL;
    h->all_arenas = NULL;
}
