/* The allocation fast path.  See malloc.c for the overview.
 *
 * next_free_fast is Go's nextFreeFast: one count-trailing-zeros on the
 * span's allocCache finds the next free slot.  It bails out (returns
 * NO_SLOT) when the cache is empty or the next index would cross a
 * 64-slot boundary, so the slow path (mcache_next_free) refills the
 * cache.
 * Go 1.13: src/runtime/malloc.go (nextFreeFast).
 * Differs from Go: it returns the slot index (Go: its address), so that
 *          the caller can record the requested size per slot.
 * Locking: the span belongs to the calling P's mcache.
 */
#ifndef GA_MALLOC_H
#define GA_MALLOC_H

#include "mbitmap.h"
#include "mspan.h"

/* next_free_fast returns the slot it hands out, or NO_SLOT.  Like Go's
 * nextFreeIndex it leaves freeindex at that slot + 1. */
static inline uint64_t
next_free_fast(mspan *s)
{
    unsigned bit = ctz64(s->alloc_cache);
    if (bit < 64) {
        uint64_t result = s->freeindex + bit;
        if (result < s->nelems) {
            uint64_t freeidx = result + 1;
            if (freeidx % 64 == 0 && freeidx != s->nelems) {
                return NO_SLOT;
            }
            s->alloc_cache = shr64(s->alloc_cache, bit + 1);
            mspan_freeindex_store(s, freeidx);
            s->alloc_count++;
            return result;
        }
    }
    return NO_SLOT;
}

#endif
