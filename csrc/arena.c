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

/* linear_alloc_peek is where linear_alloc_alloc would put size bytes
 * aligned to align, or 0 when the region is exhausted. */
static ga_addr
linear_alloc_peek(const linear_alloc *l, uint64_t size, uint64_t align)
{
    ga_addr p = ga_round_up(l->next, align);
    return p + size > l->end ? 0 : p;
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
    h->arenas = ga_meta_calloc(&h->meta, (size_t)l1_len * sizeof(*h->arenas));
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

/* ---- Arena metadata: made before the growth, installed after ------ */

/* The metadata of the arenas one growth maps is one block of process
 * memory: a header that chains the heap's blocks (for arena_release),
 * the heap_arenas with their page -> span maps, then their page bitmaps.
 * One calloc per growth: a large one is zero pages the OS backs only
 * where set_spans writes, and a huge one fails at once. */
typedef struct arena_block {
    struct arena_block *next;
} arena_block;

/* stride of one heap_arena with its span map, and of its page bits */
static uint64_t
heap_arena_stride(const mheap *h)
{
    return sizeof(heap_arena) + h->plat.pages_per_arena * sizeof(mspan *);
}

static uint64_t
page_bits_bytes(const mheap *h)
{
    return h->plat.pages_per_arena / 8 * 2;
}

/* The real bytes of one L2 map of the arena index: with the arenas'
 * blocks, what a heap costs in process memory besides its heap memory,
 * also on the virtual backing. */
static uint64_t
l2_map_bytes(const mheap *h)
{
    return ((uint64_t)1 << h->plat.arena_l2_bits) * sizeof(heap_arena *);
}

/* arena_prep: the metadata of the arenas a growth maps, made before the
 * heap changes, so that running out of process memory for it (or past
 * metadata_limit) refuses the growth instead of breaking the heap. */
typedef struct arena_prep {
    uint64_t first;       /* arenaIdx of the first arena */
    uint64_t n;           /* arenas */
    arena_block *block;   /* their heap_arenas and page bits */
    uint64_t l1_first;    /* L1 entries the arenas fall in ... */
    uint64_t nl1;
    heap_arena ***l2;     /* ... and a new L2 map for each that has none */
    uint64_t bytes;       /* real bytes of the block and the L2 maps */
} arena_prep;

static void
arena_prep_free(arena_prep *p)
{
    for (uint64_t j = 0; p->l2 != NULL && j < p->nl1; j++) {
        free(p->l2[j]);
    }
    free(p->l2);
    free(p->block);
    memset(p, 0, sizeof(*p));
}

/* arena_prep_arena: the i-th heap_arena of p's block. */
static heap_arena *
arena_prep_arena(const mheap *h, const arena_prep *p, uint64_t i)
{
    char *base = (char *)(p->block + 1);
    return (heap_arena *)(void *)(base + i * heap_arena_stride(h));
}

/* all_arenas_room makes allArenas' real array hold n entries. */
static bool
all_arenas_room(mheap *h, uint64_t n)
{
    if (n <= h->all_arenas_room) {
        return true;
    }
    uint64_t room = 2 * h->all_arenas_room > n ? 2 * h->all_arenas_room : n;
    uint64_t *a = ga_meta_realloc(&h->meta, h->all_arenas,
                                  (size_t)room * sizeof(*a));
    if (a == NULL) {
        return false;
    }
    h->all_arenas = a;
    h->all_arenas_room = room;
    return true;
}

/* arena_prep_budget: the real bytes the arenas of p need, checked
 * against metadata_limit before any of it is made. */
static bool
arena_prep_budget(mheap *h, arena_prep *p)
{
    uint64_t need = sizeof(arena_block) +
                    p->n * (heap_arena_stride(h) + page_bits_bytes(h));
    for (uint64_t j = 0; j < p->nl1; j++) {
        if (h->arenas[p->l1_first + j] == NULL) {
            need += l2_map_bytes(h);
        }
    }
    p->bytes = need;
    uint64_t left = h->meta_limit > h->meta_bytes
                        ? h->meta_limit - h->meta_bytes
                        : 0;
    return h->meta_limit == 0 || need <= left ||
           mheap_refuse(h, "its arena metadata would take the heap past "
                           "metadata_limit (real memory)");
}

/* arena_prep_plan sizes the metadata of the arenas that cover [v,
 * v+size) and checks it against metadata_limit, allocating nothing:
 * false (the reason recorded) when it would pass the limit. */
static bool
arena_prep_plan(mheap *h, ga_addr v, uint64_t size, arena_prep *p)
{
    memset(p, 0, sizeof(*p));
    p->first = arena_index(&h->plat, v);
    p->n = arena_index(&h->plat, v + size - 1) - p->first + 1;
    p->l1_first = l1_of(h, p->first);
    p->nl1 = l1_of(h, p->first + p->n - 1) - p->l1_first + 1;
    for (uint64_t i = 0; i < p->n; i++) {
        heap_arena **l2 = h->arenas[l1_of(h, p->first + i)];
        if (l2 != NULL && l2[l2_of(h, p->first + i)] != NULL) {
            throw(h, "arena already initialized");
        }
    }
    return arena_prep_budget(h, p);
}

/* arena_prep_make makes the metadata arena_prep_plan sized, touching
 * nothing of the heap.  False, with nothing kept and the reason
 * recorded, when the process is out of memory. */
static bool
arena_prep_make(mheap *h, arena_prep *p)
{
    uint64_t stride = heap_arena_stride(h);
    uint64_t bits = page_bits_bytes(h);
    uint64_t pages = h->plat.pages_per_arena;
    p->l2 = ga_meta_calloc(&h->meta, (size_t)p->nl1 * sizeof(heap_arena **));
    bool ok = p->l2 != NULL;
    for (uint64_t j = 0; ok && j < p->nl1; j++) {
        if (h->arenas[p->l1_first + j] == NULL) {
            p->l2[j] = ga_meta_calloc(&h->meta, (size_t)l2_map_bytes(h));
            ok = p->l2[j] != NULL;
        }
    }
    if (ok) {
        p->block = ga_meta_calloc(&h->meta,
                                  sizeof(arena_block) + p->n * (stride + bits));
        ok = p->block != NULL;
    }
    uint8_t *bitmaps = ok ? (uint8_t *)(p->block + 1) + p->n * stride : NULL;
    for (uint64_t i = 0; ok && i < p->n; i++) {
        heap_arena *ha = arena_prep_arena(h, p, i);
        ha->page_in_use = bitmaps + i * bits;
        ha->page_freed = ha->page_in_use + pages / 8;
    }
    /* last: a bigger array is harmless if the growth fails later */
    if (ok && !all_arenas_room(h, h->nall_arenas + p->n)) {
        ok = false;
    }
    if (!ok) {
        arena_prep_free(p);
        return mheap_refuse(h, "out of process memory for arena metadata");
    }
    return true;
}

/* record_arena appends idx to allArenas, doubling the accounted backing
 * array as Go does (old arrays are leaked: gc_sys only grows); the real
 * array has room (all_arenas_room). */
static void
record_arena(mheap *h, uint64_t idx)
{
    if (h->nall_arenas == h->all_arenas_cap) {
        uint64_t bytes = 2 * h->all_arenas_cap * h->plat.ptr_size;
        if (bytes == 0) {
            bytes = h->plat.phys_page_size;
        }
        h->all_arenas_cap = bytes / h->plat.ptr_size;
        persistent_alloc_charge(&h->pa, bytes, h->plat.ptr_size,
                                &h->stats.gc_sys);
    }
    h->all_arenas[h->nall_arenas++] = idx;
}

/* arena_prep_install publishes the metadata of p, which the growth now
 * maps, and charges it as Go does; nothing here can fail. */
static void
arena_prep_install(mheap *h, arena_prep *p)
{
    for (uint64_t j = 0; j < p->nl1; j++) {
        if (p->l2[j] != NULL) {
            /* The L2 map: persistentalloc'd with no stat.  On 64-bit
             * ports it is a direct sysAlloc charged to nothing; on 32-bit
             * ones (4 KiB, 2 KiB on mips) it comes out of a chunk,
             * leaving other_sys for nothing. */
            persistent_alloc_charge(&h->pa,
                                    h->plat.ptr_size << h->plat.arena_l2_bits,
                                    h->plat.ptr_size, NULL);
            __atomic_store_n(&h->arenas[p->l1_first + j], p->l2[j],
                             __ATOMIC_RELEASE);
        }
    }
    uint64_t size = h->plat.sizeof_heap_arena;
    for (uint64_t i = 0; i < p->n; i++) {
        uint64_t idx = p->first + i;
        record_arena(h, idx);
        /* Go's heapArena comes from heapArenaAlloc (32-bit) or
         * persistentalloc, both charged to gc_sys. */
        if (h->plat.ptr_size != 4 ||
            linear_alloc_alloc(h, &h->heap_arena_alloc, size,
                               h->plat.ptr_size, &h->stats.gc_sys) == 0) {
            persistent_alloc_charge(&h->pa, size, h->plat.ptr_size,
                                    &h->stats.gc_sys);
        }
        __atomic_store_n(&h->arenas[l1_of(h, idx)][l2_of(h, idx)],
                         arena_prep_arena(h, p, i), __ATOMIC_RELEASE);
    }
    p->block->next = h->arena_blocks;
    h->arena_blocks = p->block;
    h->meta_bytes += p->bytes;
    free(p->l2);
    memset(p, 0, sizeof(*p));
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
    if (linear_alloc_alloc(h, &h->arena, n, align, &h->stats.heap_sys) != v) {
        arena_prep_free(&prep);
        return 0;
    }
    arena_prep_install(h, &prep);
    return v;
}

ga_addr
mheap_sys_alloc(mheap *h, uint64_t n, uint64_t *size)
{
    n = ga_round_up(n, h->plat.heap_arena_bytes);
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

void
arena_release(mheap *h)
{
    if (h->arenas == NULL) {
        return;
    }
    while (h->arena_blocks != NULL) {
        arena_block *next = h->arena_blocks->next;
        free(h->arena_blocks);
        h->arena_blocks = next;
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
