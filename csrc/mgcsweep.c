/* Sweeping (GC mode).  See mgc.h.
 *
 * After a cycle every in-use span is unswept (sweepgen sg - 2) and its
 * allocation bits still show the objects that died.  A span is swept
 * before anything allocates from it, by whoever gets to it first: the
 * mcentral looking for a span for an mcache (cacheSpan), an mcache giving
 * back a span it cached before the cycle (uncacheSpan), the page
 * reclaimer before a span allocation (reclaim), the proportional sweeper
 * (deductSweepCredit), the background sweeper, or the next cycle's start
 * (finishsweep_m).  Each claims the span first (sg - 2 -> sg - 1), so no
 * span is swept twice.  Sweeping a small span makes its mark bits its
 * allocation bits; a span left with no object goes back to the heap, and
 * so does a large object's span when its object was not marked.
 * Go 1.13: src/runtime/mgcsweep.go ((*mspan).sweep, sweepone,
 *          finishsweep_m, deductSweepCredit, bgsweep), mheap.go
 *          (reclaim, reclaimChunk).
 * Differs from Go: the background sweeper runs at set points (design
 *          §14.4); pageMarks is the span's `marked` flag, which says the
 *          same (design §14.5).  This file and mcentral.c call each
 *          other as Go's do: cacheSpan sweeps, and a sweep gives an
 *          emptied span back through mcentral.freeSpan (an allowed
 *          cycle of tools/check_layers.py).
 * Locking: one thread drives a GC-mode heap (design §14.8); the heap
 *          lock and mcentral locks are taken where Go takes them.
 */
#include "mbitmap.h"
#include "mheap.h"
#include "tiny.h"

/* Pages the reclaimer looks at in one go (pagesPerChunk). */
#define RECLAIM_CHUNK_PAGES 512
#define RECLAIM_DONE ((uint64_t)1 << 63)

bool
sweep_claim(mheap *h, mspan *s)
{
    if (s->sweepgen != h->sweepgen - 2) {
        return false;
    }
    s->sweepgen = h->sweepgen - 1;
    return true;
}

/* freed_requested: the bytes callers asked for, summed over the objects
 * of s that this sweep frees (allocated, not marked): each object of a
 * tiny block. */
static uint64_t
freed_requested(const mspan *s)
{
    uint32_t *t = tiny_table_of(s);
    uint64_t bytes = 0;
    for (uint64_t w = 0; w * 64 < s->nelems; w++) {
        uint64_t dead = mspan_allocated_word(s, w) &
                        ~load64_le(s->mark_bits + w * 8);
        while (dead != 0) {
            uint64_t i = w * 64 + ctz64(dead);
            dead &= dead - 1;
            tiny_block b = t != NULL ? tiny_block_of(s, i)
                                     : (tiny_block){NULL, NULL};
            if (b.marks == NULL) {
                bytes += mspan_req_load(s, i);
                continue;
            }
            uint32_t m = tiny_marks_load(b);
            for (uint32_t st = m & TINY_OFFSETS; st != 0; st &= st - 1) {
                bytes += tiny_size_at(m, (uint64_t)__builtin_ctz(st));
            }
        }
    }
    return bytes;
}

/* sweep_large: a large object's span goes back to the heap unless its
 * object was marked. */
static bool
sweep_large(mheap *h, mspan *s)
{
    if (s->marked) {
        s->marked = false;
        s->sweepgen = h->sweepgen;
        mheap_lock(h);
        sweep_buf_push_locked(h, s);
        mheap_unlock(h);
        return false;
    }
    s->needzero = 1;
    s->sweepgen = h->sweepgen;
    s->alloc_count = 0;
    s->dropped = false;
    mheap_lock(h);
    h->nlargefree++;
    h->largefree += s->elemsize;
    h->large_requested_freed += s->limit - mspan_base(s);
    h->stats.heap_objects--;
    ga_addr base = mspan_base(s);
    mheap_free_span_locked(h, s, true, true);
    /* a later drop of the address is a second drop (design §14.5) */
    arena_set_page_freed(h, base);
    mheap_unlock(h);
    return true;
}

bool
sweep_span(mheap *h, mspan *s, bool preserve)
{
    if (s->state != MSPAN_IN_USE || s->sweepgen != h->sweepgen - 1) {
        throw(h, "mspan.sweep: bad span state");
    }
    h->gc.pages_swept += s->npages;
    if (span_class_sizeclass(s->spanclass) == 0) {
        return sweep_large(h, s);
    }
    uint64_t requested = freed_requested(s);
    /* wasempty is asked of the old bits, before they change; Go's
     * nextFreeIndex moves freeindex, which the allocated view below
     * still reads, so it is put back */
    uint64_t freeindex = s->freeindex;
    uint64_t cache = s->alloc_cache;
    bool wasempty = mspan_next_free_index(s) == s->nelems;
    mspan_freeindex_store(s, freeindex);
    s->alloc_cache = cache;
    uint64_t nalloc = mspan_gc_sweep_bits(s);
    if (nalloc > s->alloc_count) {
        throw(h, "sweep increased allocation count");
    }
    uint64_t nfreed = s->alloc_count - nalloc;
    s->alloc_count = (uint16_t)nalloc;
    s->marked = false;
    mspan_charge_mark_bits(h, s->nelems); /* the fresh gcmarkBits */
    bool res = false;
    if (nfreed == 0) {
        s->sweepgen = h->sweepgen;
    }
    else {
        mcentral *c = &h->central[s->spanclass];
        pthread_mutex_lock(&c->lock);
        c->nsmallfree += nfreed;
        c->requested_freed += requested;
        pthread_mutex_unlock(&c->lock);
        res = mcentral_free_span(h, c, s, preserve, wasempty);
    }
    if (!res) {
        mheap_lock(h);
        sweep_buf_push_locked(h, s);
        mheap_unlock(h);
    }
    return res;
}

uint64_t
sweepone(mheap *h)
{
    gcstate *g = &h->gc;
    if (g->sweepdone) {
        return UINT64_MAX;
    }
    for (;;) {
        mspan *s = sweep_buf_pop(h);
        if (s == NULL) {
            g->sweepdone = true;
            return UINT64_MAX;
        }
        if (s->state != MSPAN_IN_USE) {
            /* swept by another path and freed since: its struct may be
             * a free span, or in no span at all */
            if (s->sweepgen != h->sweepgen && s->sweepgen != h->sweepgen + 3) {
                throw(h, "non in-use span in unswept list");
            }
            continue;
        }
        if (!sweep_claim(h, s)) {
            continue;
        }
        uint64_t npages = s->npages; /* s may be gone once swept */
        if (sweep_span(h, s, false)) {
            g->reclaim_credit += npages;
            return npages;
        }
        return 0;
    }
}

void
finish_sweep(mheap *h)
{
    while (sweepone(h) != UINT64_MAX) {
    }
    gc_bits_next_epoch(h);
}

void
deduct_sweep_credit(mheap *h, uint64_t span_bytes, uint64_t caller_pages)
{
    gcstate *g = &h->gc;
    if (!g->enabled || g->sweep_pages_per_byte == 0) {
        return;
    }
    uint64_t live = h->stats.heap_live - g->sweep_heap_live_basis + span_bytes;
    int64_t target = (int64_t)(g->sweep_pages_per_byte * (double)live) -
                     (int64_t)caller_pages;
    while ((int64_t)(g->pages_swept - g->pages_swept_basis) < target) {
        if (sweepone(h) == UINT64_MAX) {
            g->sweep_pages_per_byte = 0;
            break;
        }
    }
}

/* reclaim_chunk sweeps the spans that start in pages [first, first+n)
 * of arena `arena` and whose objects were all left unmarked (pageInUse
 * and not pageMarks); returns the pages that went back to the heap. */
static uint64_t
reclaim_chunk(mheap *h, ga_addr arena, uint64_t first, uint64_t n)
{
    uint64_t freed = 0;
    for (uint64_t k = first; k < first + n; k++) {
        ga_addr a = arena + k * PAGE_SIZE;
        if (!arena_page_in_use(h, a)) {
            continue;
        }
        mspan *s = span_of(h, a);
        if (s == NULL || s->marked || !sweep_claim(h, s)) {
            continue;
        }
        uint64_t npages = s->npages;
        if (sweep_span(h, s, false)) {
            freed += npages;
        }
    }
    return freed;
}

void
mheap_reclaim(mheap *h, uint64_t npages)
{
    gcstate *g = &h->gc;
    if (!g->enabled || g->sweepdone || g->reclaim_index >= RECLAIM_DONE) {
        return;
    }
    uint64_t per_arena = h->plat.pages_per_arena;
    while (npages > 0) {
        if (g->reclaim_credit > 0) {
            uint64_t take = g->reclaim_credit < npages ? g->reclaim_credit
                                                       : npages;
            g->reclaim_credit -= take;
            npages -= take;
            continue;
        }
        uint64_t idx = g->reclaim_index;
        g->reclaim_index += RECLAIM_CHUNK_PAGES;
        if (idx / per_arena >= h->nall_arenas) {
            g->reclaim_index = RECLAIM_DONE;
            break;
        }
        ga_addr arena = arena_base(&h->plat, h->all_arenas[idx / per_arena]);
        uint64_t first = idx % per_arena;
        uint64_t n = per_arena - first < RECLAIM_CHUNK_PAGES
                         ? per_arena - first
                         : RECLAIM_CHUNK_PAGES;
        uint64_t found = reclaim_chunk(h, arena, first, n);
        if (found <= npages) {
            npages -= found;
        }
        else {
            g->reclaim_credit += found - npages;
            npages = 0;
        }
    }
}

void
gc_background_sweep(mheap *h)
{
    gcstate *g = &h->gc;
    if (!g->enabled || g->running) {
        return;
    }
    if (g->bgsweep < 0) {
        while (sweepone(h) != UINT64_MAX) {
            g->nbgsweep++;
        }
        return;
    }
    for (int64_t k = 0; k < g->bgsweep; k++) {
        if (sweepone(h) == UINT64_MAX) {
            return;
        }
        g->nbgsweep++;
    }
}
