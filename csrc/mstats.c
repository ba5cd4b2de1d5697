/* Memory statistics: ReadMemStats and flushallmcaches.  See mstats.h.
 *
 * The counters the allocator keeps as it goes (mstats, in h->stats, and
 * the mcentrals' and mcaches' object counts) are turned into Go's
 * MemStats exactly as updatememstats computes them, without flushing the
 * caches; ga_flush is Go's flushallmcaches for a caller who wants the
 * caches flushed.
 * Go 1.13: src/runtime/mstats.go (ReadMemStats, readmemstats_m,
 *          updatememstats, flushallmcaches, purgecachedstats).
 * Differs from Go: ReadMemStats leaves the caches as they are (Go flushes
 *          them: the numbers are the same); goalloc also counts the bytes
 *          callers asked for (requested), for internal waste.
 * Locking: the _locked readers need the heap lock and a world in which
 *          no other call on the heap runs (the mcaches' counters are
 *          read without their Ps); ga_read_mem_stats takes the heap lock.
 */
#include "goalloc.h"

#include <string.h>

#include "internal.h"
#include "mheap.h"
#include "sizeclasses.h"
#include "tiny.h"

void
mheap_read_mem_stats_locked(mheap *h, ga_mem_stats *out)
{
    GA_ASSERT(mheap_owned(h));
    memset(out, 0, sizeof(*out));
    /* Go flushes every mcache (releaseAll and the local counters) to make
     * the counts exact; goalloc adds the local counters up and subtracts,
     * for every cached span, the slots cacheSpan counted but nobody was
     * handed yet: the same numbers, and the caches stay as they were. */
    uint64_t unused[NUM_SIZE_CLASSES] = {0};
    for (int p = 0; p < h->nprocs; p++) {
        mcache *c = h->caches[p];
        for (int i = 0; i < NUM_SPAN_CLASSES; i++) {
            if (c->alloc[i] != &h->emptymspan) {
                unused[span_class_sizeclass((span_class)i)] +=
                    mcentral_unused_slots(c->alloc[i]);
            }
        }
    }
    uint64_t tinyallocs = h->stats.tinyallocs;
    for (int p = 0; p < h->nprocs; p++) {
        tinyallocs += h->caches[p]->local_tinyallocs;
    }
    const mstats *st = &h->stats;
    uint64_t nmalloc = h->nlargealloc + tinyallocs;
    uint64_t nfree = h->nlargefree + tinyallocs;
    uint64_t total = h->largealloc;
    uint64_t freed = h->largefree;
    for (int c = 0; c < NUM_SIZE_CLASSES; c++) {
        uint64_t cm = 0;
        uint64_t cf = 0;
        if (c > 0) {
            cm = h->central[make_span_class(c, false)].nmalloc +
                 h->central[make_span_class(c, true)].nmalloc - unused[c];
            for (int noscan = 0; noscan < 2; noscan++) {
                uint64_t objects, bytes;
                mcentral_freed(h, make_span_class(c, noscan), &objects,
                               &bytes);
                cf += objects;
            }
        }
        out->by_size[c].size = class_to_size[c];
        out->by_size[c].mallocs = cm;
        out->by_size[c].frees = cf;
        nmalloc += cm;
        nfree += cf;
        total += cm * class_to_size[c];
        freed += cf * class_to_size[c];
    }
    out->total_alloc = total;
    out->alloc = out->heap_alloc = total - freed;
    out->mallocs = nmalloc;
    out->frees = nfree;
    out->heap_objects = nmalloc - nfree;
    out->heap_sys = st->heap_sys;
    out->heap_idle = st->heap_idle;
    out->heap_inuse = st->heap_inuse;
    out->heap_released = st->heap_released;
    out->stack_inuse = st->stacks_inuse;
    out->stack_sys = st->stacks_sys + st->stacks_inuse;
    out->mspan_inuse = h->spanalloc.inuse;
    out->mspan_sys = st->mspan_sys;
    out->mcache_inuse = h->cachealloc.inuse;
    out->mcache_sys = st->mcache_sys;
    out->buck_hash_sys = st->buckhash_sys;
    out->gc_sys = heap_gc_sys(h);
    out->other_sys = st->other_sys;
    out->next_gc = h->gc.next_gc;
    out->last_gc = h->gc.last_gc_ns;
    out->pause_total_ns = h->gc.pause_total_ns;
    out->num_gc = h->gc.numgc;
    out->num_forced_gc = h->gc.numforcedgc;
    out->sys = st->heap_sys + st->stacks_sys + st->mspan_sys + st->mcache_sys +
               st->buckhash_sys + out->gc_sys + st->other_sys +
               st->stacks_inuse;
}

ga_status
ga_read_mem_stats(ga_heap *h, ga_mem_stats *out)
{
    if (heap_poisoned(h) != NULL) {
        return GA_EPOISONED;
    }
    mheap_lock(h);
    mheap_read_mem_stats_locked(h, out);
    mheap_unlock(h);
    return GA_OK;
}

uint64_t
mheap_requested_live_locked(mheap *h)
{
    GA_ASSERT(mheap_owned(h));
    uint64_t asked = h->large_requested;
    uint64_t freed = h->large_requested_freed;
    for (int p = 0; p < h->nprocs; p++) {
        asked += h->caches[p]->local_requested;
    }
    for (int i = 0; i < NUM_SPAN_CLASSES; i++) {
        uint64_t objects, bytes;
        mcentral_freed(h, (span_class)i, &objects, &bytes);
        freed += bytes;
    }
    return asked - freed;
}

/* ga_flush is Go's flushallmcaches: every P releases its cached spans
 * and its tiny block (releaseAll), as a GC or ReadMemStats would. */
ga_status
ga_flush(ga_heap *h)
{
    if (heap_poisoned(h) != NULL) {
        return GA_EPOISONED;
    }
    protect_frame pf; /* a throw lands here (throw.h) */
    protect_push(&pf);
    if (setjmp(pf.jb) != 0) {
        protect_pop(&pf);
        return GA_EPOISONED;
    }
    for (int p = 0; p < h->nprocs; p++) {
        tiny_drop_block(h, h->caches[p]);
        mcache_release_all(h, h->caches[p]);
    }
    protect_pop(&pf);
    return GA_OK;
}
