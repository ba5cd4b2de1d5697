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
 * Locking: c->lock guards both lists, nmalloc, nsmallfree and the freed
 *          bits of uncached spans; mheap calls are made without it.
 */
#ifndef GA_MCENTRAL_H
#define GA_MCENTRAL_H

#include <pthread.h>

#include "ga.h"
#include "mspan.h"

struct mheap;

typedef struct mcentral {
    pthread_mutex_t lock;
    span_class spanclass;
    mspan_list nonempty; /* spans with a free slot */
    mspan_list empty;    /* full spans, and spans cached in an mcache */
    uint64_t nmalloc;    /* objects handed out, counted optimistically */
    uint64_t nsmallfree; /* objects freed */
    uint64_t requested_freed; /* goalloc: requested bytes of those */
} mcentral;

void mcentral_init(mcentral *c, span_class spc);
void mcentral_destroy(mcentral *c);

/* mcentral_cache_span returns a swept span with at least one free slot
 * for an mcache, or NULL when the heap cannot grow. */
mspan *mcentral_cache_span(struct mheap *h, mcentral *c);
/* mcentral_uncache_span takes back a span an mcache held. */
void mcentral_uncache_span(struct mheap *h, mcentral *c, mspan *s);
/* mcentral_unused_slots: slots of a cached span not handed out yet
 * (what uncacheSpan would give back to nmalloc). */
uint64_t mcentral_unused_slots(const mspan *s);

/* mcentral_free_slot frees slot i of span s (decisions §4); cached tells
 * whether an mcache holds s.  Returns true if s went back to the heap. */
bool mcentral_free_slot(struct mheap *h, mcentral *c, mspan *s, uint64_t i,
                        bool cached, uint64_t requested);

#endif
