/* Per-P caches.  See mcache.h and malloc.c for the overview.
 *
 * Go 1.13: src/runtime/mcache.go (allocmcache).
 * Differs from Go: no heap-profiling sample (next_sample).
 * Locking: allocmcache takes the heap lock for cachealloc.
 */
#include "mcache.h"

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
