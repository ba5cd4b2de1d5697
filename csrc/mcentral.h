/* Central free lists.  See malloc.c for the overview.
 *
 * An mcentral owns, for one span class, the in-use spans that have free
 * slots (nonempty) and the spans that are full or cached in an mcache
 * (empty).  cacheSpan hands an mcache a span with free slots (growing
 * from the mheap when none is left) and counts all its free slots as
 * allocated; uncacheSpan takes it back and returns the count of slots
 * that were never handed out.
 * Go 1.13: src/runtime/mcentral.go (mcentral, init, cacheSpan,
 *          uncacheSpan, freeSpan, grow).
 * Differs from Go: spans are swept eagerly when they join or leave an
 *          mcache (there is no GC); explicit frees move spans between the
 *          lists and send empty, uncached spans back to the mheap; frees
 *          are counted here (Go: mheap.nsmallfree).
 * Locking: c->lock guards both lists, nmalloc, nsmallfree, every sweep
 *          and the cached/uncached mark (sweepgen) of the class's spans.
 *          A small span is on one of its mcentral's lists from the moment
 *          it has slots (cacheSpan) until it leaves for the mheap, and
 *          only under c->lock does it join or leave them: so a span that
 *          c owns (mcentral_owns) under c->lock stays an in-use span of
 *          c's class, with its bitmaps, until the lock is dropped.  A
 *          free of a small object relies on that and takes c->lock alone;
 *          other frees take the heap lock first (lock order heap ->
 *          central; nothing takes the heap lock while holding c->lock).
 */
#ifndef GA_MCENTRAL_H
#define GA_MCENTRAL_H

#include <pthread.h>

#include "ga.h"
#include "mspan.h"

struct mheap;
struct mcache;

/* Each mcentral starts a cache line, so each lock gets its own line (Go
 * pads mheap.central's entries to CacheLinePadSize for the same
 * reason). */
typedef struct mcentral {
    _Alignas(GA_CACHE_LINE) pthread_mutex_t lock;
    span_class spanclass;
    mspan_list nonempty;      /* spans with a free slot */
    mspan_list empty;         /* full spans, and spans cached in an mcache */
    uint64_t nmalloc;         /* objects handed out, counted optimistically */
    uint64_t nsmallfree;      /* objects freed */
    uint64_t requested_freed; /* goalloc: requested bytes of those */
} mcentral;

/* mcentral_owns: s is on one of c's lists (cached in an mcache, full,
 * or with free slots).  Meaningful under c->lock, for any mspan struct,
 * even one a stale spanOf entry led to. */
static inline bool
mcentral_owns(const mcentral *c, const mspan *s)
{
    const mspan_list *l = mspan_list_of(s);
    return l == &c->nonempty || l == &c->empty;
}

void mcentral_init(mcentral *c, span_class spc);
void mcentral_destroy(mcentral *c);

/* mcentral_cache_span returns a swept span with at least one free slot
 * for mcache mc, or NULL when the heap cannot grow. */
mspan *mcentral_cache_span(struct mheap *h, mcentral *c, struct mcache *mc);
/* mcentral_uncache_span takes back a span an mcache held. */
void mcentral_uncache_span(struct mheap *h, mcentral *c, mspan *s);
/* mcentral_unused_slots: slots of a cached span not handed out yet
 * (what uncacheSpan would give back to nmalloc). */
uint64_t mcentral_unused_slots(const mspan *s);

/* mcentral_free_slot_locked frees live slot i of span s (design §6.2);
 * the caller holds c->lock.  In a span an mcache holds, the free is
 * counted in remote_frees for the next sweep.  Returns false (a double
 * free) when the caching P freed the slot first.  *to_heap: s has no
 * live object left and no mcache; it is off the lists, and the caller
 * must give it to mcentral_release_to_heap after dropping c->lock. */
bool mcentral_free_slot_locked(struct mheap *h, mcentral *c, mspan *s,
                               uint64_t i, uint64_t requested, bool *to_heap);
/* mcentral_release_to_heap returns a span with no live object, off its
 * mcentral's lists, to the mheap (Go's freeSpan, which takes the heap
 * lock); mcentral_release_to_heap_locked is it for a caller that holds
 * the heap lock. */
void mcentral_release_to_heap(struct mheap *h, mspan *s);
void mcentral_release_to_heap_locked(struct mheap *h, mspan *s);

/* mcentral_free_span is Go's mcentral.freeSpan (GC mode): a sweep freed
 * objects of s.  preserve: cacheSpan holds s, which only becomes swept.
 * Else a span that was full moves to nonempty, and a span left with no
 * object goes back to the heap (returns true).  wasempty: s had no free
 * slot before the sweep. */
bool mcentral_free_span(struct mheap *h, mcentral *c, mspan *s, bool preserve,
                        bool wasempty);

/* mcentral_freed: objects freed in span class spc and their requested
 * bytes: the mcentral's counts plus those of frees made by caching Ps. */
void mcentral_freed(const struct mheap *h, span_class spc, uint64_t *objects,
                    uint64_t *requested);

#endif
