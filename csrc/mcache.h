/* Per-P caches.  See malloc.c for the overview.
 *
 * Each P owns an mcache: one current span per span class and the tiny
 * allocator's block.  A fresh mcache points every class at the heap's
 * emptymspan sentinel (no slots, so it always looks full), so the first
 * allocation of a class refills without a NULL test on the fast path.
 * Go 1.13: src/runtime/mcache.go (mcache, allocmcache, emptymspan).
 * Differs from Go: the sentinel belongs to the heap, not the process.
 * Locking: an mcache is used by one P at a time; creating one takes the
 *          heap lock (cachealloc).
 */
#ifndef GA_MCACHE_H
#define GA_MCACHE_H

#include "ga.h"
#include "mspan.h"

struct mheap;

typedef struct mcache {
    /* read on every malloc */
    ga_addr tiny;        /* current 16-byte tiny block, or 0 */
    uint64_t tinyoffset; /* bytes used in it */
    uint64_t local_tinyallocs;
    mspan *alloc[NUM_SPAN_CLASSES];

    /* cold: frees, flushed into the heap's counters */
    uint64_t local_largefree;
    uint64_t local_nlargefree;
    uint64_t local_nsmallfree[NUM_SIZE_CLASSES];
    uint32_t flush_gen;
} mcache;

/* allocmcache takes an mcache from cachealloc (heap lock held inside)
 * and points every class at emptymspan.  NULL when out of memory. */
mcache *allocmcache(struct mheap *h);

#endif
