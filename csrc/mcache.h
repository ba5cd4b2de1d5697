/* Per-P caches.  See malloc.c for the overview.
 *
 * Each P owns an mcache: one current span per span class and the tiny
 * allocator's block.  A fresh mcache points every class at the heap's
 * emptymspan sentinel (no slots, so it always looks full), so the first
 * allocation of a class refills without a NULL test on the fast path.
 * refill trades a used-up span for one with free slots from the class's
 * mcentral; releaseAll gives every span back.
 * Go 1.13: src/runtime/mcache.go (mcache, allocmcache, refill,
 *          releaseAll, emptymspan), malloc.go ((*mcache).nextFree).
 * Differs from Go: the sentinel belongs to the heap; a span handed back
 *          may have frees in it, so "full" means freeindex == nelems;
 *          explicit frees keep per-P counters and a free hint (the span
 *          of the P's last lock-free free) that Go has no use for.
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
    ga_addr tiny;              /* current 16-byte tiny block, or 0 */
    uint64_t tinyoffset;       /* bytes used in it */
    uint64_t local_tinyallocs; /* tiny objects packed into a block */
    uint64_t local_requested;  /* goalloc: bytes requested by callers */
    uint32_t *tiny_marks;      /* goalloc: the tiny block's marks (tiny.h) */
    mspan *tiny_span;          /* the span holding the tiny block */
    mspan *alloc[NUM_SPAN_CLASSES];

    /* goalloc: the span of this P's last lock-free free, and its slots'
     * range, so that frees into one span skip spanOf.  While the range
     * is not empty the span is one that this mcache caches and that has
     * no tiny blocks: mcache_forget_hint empties it before the span
     * leaves or gets tiny marks.  Only the P's own thread reads or writes
     * it. */
    struct {
        mspan *span;
        ga_addr base;
        ga_addr limit;
    } free_hint;

    /* frees the owning P made in its own cached spans (ga_free_p), kept
     * here so that Ps freeing at once share no counter (Go's
     * local_nsmallfree); readers add them to the mcentral's */
    uint64_t local_nsmallfree[NUM_SPAN_CLASSES];
    uint64_t local_requested_freed[NUM_SPAN_CLASSES];

    /* cold */
    uint32_t flush_gen;
    bool refilled; /* GC mode: the last slow-path allocation refilled
                    * (mallocgc's shouldhelpgc) */
} mcache;

/* allocmcache takes an mcache from cachealloc (heap lock held inside)
 * and points every class at emptymspan.  NULL when out of memory. */
mcache *allocmcache(struct mheap *h);

/* mcache_forget_hint: s leaves c, so the free hint must not name it. */
static inline void
mcache_forget_hint(mcache *c, const mspan *s)
{
    if (c->free_hint.span == s) {
        c->free_hint.span = NULL;
        c->free_hint.base = 0;
        c->free_hint.limit = 0;
    }
}

/* mcache_refill replaces the class's used-up span by one with free
 * slots.  Returns false when the heap cannot grow. */
bool mcache_refill(struct mheap *h, mcache *c, span_class spc);

/* mcache_next_free is the slow path of allocation (nextFree): a free
 * slot of class spc, refilling if needed, and its span in *sp; NO_SLOT,
 * with nothing changed, when the heap cannot grow.  It returns the slot,
 * as next_free_fast does, where Go's nextFree returns its address: the
 * caller records the requested size per slot. */
uint64_t mcache_next_free(struct mheap *h, mcache *c, span_class spc,
                          mspan **sp);

/* mcache_release_all gives every cached span back and moves the tiny
 * allocation count to the heap's (releaseAll, purgecachedstats).  The
 * caller drops the tiny block first (tiny_drop_block), as freeing it
 * needs its span still cached; Go's releaseAll just forgets the block. */
void mcache_release_all(struct mheap *h, mcache *c);

#endif
