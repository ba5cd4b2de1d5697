/* Per-P caches.  See mcache.h and malloc.c for the overview.
 *
 * Go 1.13: src/runtime/mcache.go (allocmcache, refill, releaseAll),
 *          malloc.go ((*mcache).nextFree).
 * Differs from Go: no heap-profiling sample (next_sample); see mcache.h.
 * Locking: allocmcache takes the heap lock for cachealloc.
 */
#include "mcache.h"

#include "mbitmap.h"
#include "mheap.h"

mcache *
allocmcache(mheap *h)
{
    mheap_lock(h);
    mcache *c = fixalloc_alloc(&h->cachealloc);
    if (c != NULL) {
        c->flush_gen = h->sweepgen;
    }
    mheap_unlock(h);
    if (c == NULL) {
        return NULL;
    }
    for (int i = 0; i < NUM_SPAN_CLASSES; i++) {
        c->alloc[i] = &h->emptymspan;
    }
    return c;
}

bool
mcache_refill(mheap *h, mcache *c, span_class spc)
{
    mspan *s = c->alloc[spc];
    if (s->freeindex != s->nelems) {
        throw(h, "refill of span with free space remaining");
    }
    mspan *fresh = mcentral_cache_span(h, &h->central[spc], c);
    if (fresh == NULL) {
        return false; /* the old span stays cached: nothing changed */
    }
    if (s != &h->emptymspan) {
        if (!mspan_is_cached(s, h->sweepgen)) {
            throw(h, "bad sweepgen in refill");
        }
        mcache_forget_hint(c, s);
        mcentral_uncache_span(h, &h->central[spc], s);
    }
    if (fresh->alloc_count == fresh->nelems) {
        throw(h, "span has no free space");
    }
    c->alloc[spc] = fresh; /* cacheSpan marked it cached (sweepgen) */
    c->refilled = true;
    return true;
}

uint64_t
mcache_next_free(mheap *h, mcache *c, span_class spc, mspan **sp)
{
    mspan *s = c->alloc[spc];
    uint64_t freeindex = s->freeindex;
    uint64_t cache = s->alloc_cache;
    uint64_t i = mspan_next_free_index(s);
    if (i == s->nelems) {
        if (!mcache_refill(h, c, spc)) {
            /* Out of memory: leave the span exactly as it was. */
            mspan_freeindex_store(s, freeindex);
            s->alloc_cache = cache;
            return NO_SLOT;
        }
        s = c->alloc[spc];
        i = mspan_next_free_index(s);
    }
    if (i >= s->nelems) {
        throw(h, "freeIndex is not valid");
    }
    s->alloc_count++;
    if (s->alloc_count > s->nelems) {
        throw(h, "s.allocCount > s.nelems");
    }
    *sp = s;
    return i;
}

void
mcache_release_all(mheap *h, mcache *c)
{
    GA_ASSERT(c->tiny == 0); /* the caller dropped the tiny block */
    mheap_lock(h);
    /* purgecachedstats */
    h->stats.tinyallocs += c->local_tinyallocs;
    c->local_tinyallocs = 0;
    mheap_unlock(h);
    for (int i = 0; i < NUM_SPAN_CLASSES; i++) {
        mspan *s = c->alloc[i];
        if (s != &h->emptymspan) {
            c->alloc[i] = &h->emptymspan;
            mcache_forget_hint(c, s);
            mcentral_uncache_span(h, &h->central[i], s);
        }
    }
}
