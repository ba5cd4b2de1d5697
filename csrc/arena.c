/* Heap arenas and the arena index.  See arena.h.
 *
 * The page -> span map and page bits, the arenas' metadata, which a
 * growth (sysalloc.c) makes before it maps and installs after, and the
 * walk over every mapped arena, span by span, in address order.
 * Go 1.13: src/runtime/malloc.go (sysAlloc's heapArena part), mheap.go
 *          (heapArena, spanOf, setSpan, setSpans, pageIndexOf).
 * Differs from Go: see arena.h.
 * Locking: the caller holds the heap lock, except for span_of and
 *          heap_arena_of, which read atomically published entries.
 */
#include "arena.h"

#include <stdlib.h>
#include <string.h>

#include "mheap.h"

/* ---- Arena index ------------------------------------------------- */

void
set_span(mheap *h, ga_addr addr, mspan *s)
{
    GA_ASSERT(heap_arena_of(h, addr) != NULL);
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
    set_page_bit(heap_arena_of(h, addr)->page_in_use, page_index(h, addr), on);
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
        set_page_bit(heap_arena_of(h, a)->page_freed, page_index(h, a), false);
    }
}

/* arena_index_init makes the arena index's L1 array (the L2 maps come
 * with the first arena of their range). */
bool
arena_index_init(mheap *h)
{
    uint64_t l1_len = (uint64_t)1 << h->plat.arena_l1_bits;
    h->arenas = meta_calloc(&h->meta, (size_t)l1_len * sizeof(*h->arenas));
    return h->arenas != NULL;
}

/* ---- Arena metadata: made before the growth, installed after ------ */

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

void
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
    uint64_t *a = meta_realloc(&h->meta, h->all_arenas,
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

bool
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

bool
arena_prep_make(mheap *h, arena_prep *p)
{
    uint64_t stride = heap_arena_stride(h);
    uint64_t bits = page_bits_bytes(h);
    uint64_t pages = h->plat.pages_per_arena;
    p->l2 = meta_calloc(&h->meta, (size_t)p->nl1 * sizeof(heap_arena **));
    bool ok = p->l2 != NULL;
    for (uint64_t j = 0; ok && j < p->nl1; j++) {
        if (h->arenas[p->l1_first + j] == NULL) {
            p->l2[j] = meta_calloc(&h->meta, (size_t)l2_map_bytes(h));
            ok = p->l2[j] != NULL;
        }
    }
    if (ok) {
        p->block = meta_calloc(&h->meta,
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

void
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
            linear_alloc_alloc(&h->mem, &h->heap_arena_alloc, size,
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

/* ---- Walking the arenas span by span ------------------------------ */

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

bool
mheap_walk(mheap *h, bool (*fn)(void *, mspan *),
           bool (*ungrown)(void *, ga_addr, uint64_t), void *arg)
{
    size_t n = (size_t)h->nall_arenas;
    uint64_t *idx = malloc((n ? n : 1) * sizeof(*idx));
    if (idx == NULL) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        idx[i] = h->all_arenas[i];
    }
    qsort(idx, n, sizeof(*idx), cmp_u64);
    ga_addr cursor = 0;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        ga_addr base = arena_base(&h->plat, idx[i]);
        ga_addr end = base + h->plat.heap_arena_bytes;
        if (cursor < base) {
            cursor = base;
        }
        while (cursor < end && ok) {
            if (cursor == h->cur_arena.base && cursor < h->cur_arena.end) {
                /* go1.13.8's curArena: mapped pages with no span yet */
                ok = ungrown == NULL ||
                     ungrown(arg, cursor, h->cur_arena.end - cursor);
                cursor = h->cur_arena.end;
                continue;
            }
            mspan *s = span_of(h, cursor);
            if (s == NULL || mspan_base(s) != cursor || s->npages == 0) {
                ok = false;
                break;
            }
            ok = fn(arg, s);
            cursor = mspan_end(s);
        }
    }
    free(idx);
    return ok;
}

bool
mheap_walk_spans(mheap *h, bool (*fn)(void *, mspan *), void *arg)
{
    return mheap_walk(h, fn, NULL, arg);
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
