/* The allocation fast path.  See malloc.c for the overview.
 *
 * next_free_fast is Go's nextFreeFast: one count-trailing-zeros on the
 * span's allocCache finds the next free slot.  It bails out (returns 0)
 * when the cache is empty or the next index would cross a 64-slot
 * boundary, so the slow path (mcache_next_free) refills the cache.
 * Go 1.13: src/runtime/malloc.go (nextFreeFast).
 * Differs from Go: nothing.
 * Locking: the span belongs to the calling P's mcache.
 */
#ifndef GA_MALLOC_H
#define GA_MALLOC_H

#include "mbitmap.h"
#include "mspan.h"

static inline ga_addr
next_free_fast(mspan *s)
{
    unsigned bit = ctz64(s->alloc_cache);
    if (bit < 64) {
        uint64_t result = s->freeindex + bit;
        if (result < s->nelems) {
            uint64_t freeidx = result + 1;
            if (freeidx % 64 == 0 && freeidx != s->nelems) {
                return 0;
            }
            s->alloc_cache = shr64(s->alloc_cache, bit + 1);
            mspan_freeindex_store(s, freeidx);
            s->alloc_count++;
            return result * s->elemsize + mspan_base(s);
        }
    }
    return 0;
}

#endif
