/* Central free lists.  See mcentral.h and malloc.c for the overview.
 *
 * Go 1.13: src/runtime/mcentral.go (init, cacheSpan, uncacheSpan, grow,
 *          freeSpan).
 * Differs from Go: see mcentral.h.
 * Locking: c->lock guards the lists, the counters and every sweep; the
 *          heap lock may be held when c->lock is taken, never the other
 *          way round.
 */
#include "mcentral.h"

#include <stdlib.h>

#include "mbitmap.h"
#include "mcache.h"
#include "mheap.h"
#include "sizeclasses.h"

void
mcentral_init(mcentral *c, span_class spc)
{
    pthread_mutex_init(&c->lock, NULL);
    c->spanclass = spc;
    mspan_list_init(&c->nonempty);
    mspan_list_init(&c->empty);
    c->nmalloc = 0;
    c->nsmallfree = 0;
    c->requested_freed = 0;
}

void
mcentral_destroy(mcentral *c)
{
    pthread_mutex_destroy(&c->lock);
}

/* mcentral_grow takes a fresh span from the mheap for mcache mc (its
 * limit set there) and the block for its bitmaps; mcentral_cache_span installs
 * them (initSpan) under c->lock.  NULL when the heap cannot grow. */
static mspan *
mcentral_grow(mheap *h, mcentral *c, mcache *mc, uint8_t **bits)
{
    int sc = span_class_sizeclass(c->spanclass);
    uint64_t npages = class_to_allocnpages[sc];
    /* The bitmaps' memory first: without it nothing may change. */
    *bits = mspan_new_bits(h, c->spanclass, npages);
    if (*bits == NULL) {
        mheap_refuse(h, "out of process memory for span bitmaps");
        return NULL;
    }
    mspan *s = mheap_alloc(h, mc, npages, c->spanclass, 0, true);
    if (s == NULL) {
        free(*bits);
        return NULL;
    }
    mspan_charge_bits(h, s);
    return s;
}

/* take_span_locked moves s to the empty list, marks it cached and counts
 * its free slots as allocated (optimistic nmalloc).  Returns the number
 * of free slots; 0 means the span is unusable (the caller throws). */
static uint64_t
take_span_locked(mheap *h, mcentral *c, mspan *s)
{
    if (s->list == &c->nonempty) {
        mspan_list_remove(&c->nonempty, s);
    }
    mspan_list_insert_back(&c->empty, s);
    mspan_sweep(s); /* frees since it left an mcache become reusable */
    s->sweepgen = h->sweepgen + SWEEPGEN_CACHED;
    uint64_t n = s->nelems - s->alloc_count;
    if (s->freeindex == s->nelems || s->alloc_count == 0xFFFF) {
        return 0;
    }
    c->nmalloc += n;
    return n;
}

mspan *
mcentral_cache_span(mheap *h, mcentral *c, mcache *mc)
{
    pthread_mutex_lock(&c->lock);
    mspan *s = c->nonempty.first;
    uint64_t n = s != NULL ? take_span_locked(h, c, s) : 0;
    pthread_mutex_unlock(&c->lock);
    if (s == NULL) {
        uint8_t *bits;
        s = mcentral_grow(h, c, mc, &bits);
        if (s == NULL) {
            return NULL;
        }
        /* Until now a free that finds s (under the heap lock) sees a span
         * that c does not own and that has no bitmaps (small_free). */
        pthread_mutex_lock(&c->lock);
        mspan_init_bits(s, bits);
        n = take_span_locked(h, c, s);
        pthread_mutex_unlock(&c->lock);
    }
    /* havespan */
    if (n == 0) {
        throw(h, "span has no free objects");
    }
    heap_live_add(h, (int64_t)(s->npages * PAGE_SIZE) -
                         (int64_t)(s->alloc_count * s->elemsize));
    uint64_t freeindex = s->freeindex;
    mspan_refill_alloc_cache(s, (freeindex & ~(uint64_t)63) / 8);
    s->alloc_cache = shr64(s->alloc_cache, (unsigned)(freeindex % 64));
    return s;
}

uint64_t
mcentral_unused_slots(const mspan *s)
{
    return s->nelems - mspan_count_allocated(s);
}

void
mcentral_release_to_heap_locked(mheap *h, mspan *s)
{
    GA_ASSERT(mheap_owned(h));
    /* s is off its mcentral's lists, so frees holding only that lock
     * leave it alone; frees that hold the heap lock may still be looking
     * at s, so the bitmaps go under the heap lock. */
    mspan_free_bits(h, s);
    s->needzero = 1;
    mheap_free_span_locked(h, s, true, true);
}

void
mcentral_release_to_heap(mheap *h, mspan *s)
{
    mheap_lock(h);
    mcentral_release_to_heap_locked(h, s);
    mheap_unlock(h);
}

void
mcentral_uncache_span(mheap *h, mcentral *c, mspan *s)
{
    pthread_mutex_lock(&c->lock);
    GA_ASSERT(mspan_is_cached(s, h->sweepgen) && s->list == &c->empty);
    uint64_t unused = mcentral_unused_slots(s);
    /* Read elemsize while c->lock pins s: once the lock is dropped, a
     * free may empty s and send it home, and its struct may be reused. */
    int64_t unused_bytes = (int64_t)(unused * s->elemsize);
    s->sweepgen = h->sweepgen + SWEEPGEN_SWEPT;
    c->nmalloc -= unused;
    mspan_sweep(s);
    bool empty_now = s->alloc_count == 0;
    if (empty_now) {
        mspan_list_remove(&c->empty, s);
    }
    else if (s->alloc_count < s->nelems) {
        mspan_list_remove(&c->empty, s);
        mspan_list_insert(&c->nonempty, s);
    }
    pthread_mutex_unlock(&c->lock);
    heap_live_add(h, -unused_bytes);
    if (empty_now) {
        mcentral_release_to_heap(h, s);
    }
}

bool
mcentral_free_slot_locked(mheap *h, mcentral *c, mspan *s, uint64_t i,
                          uint64_t requested, bool *to_heap)
{
    GA_ASSERT(mcentral_owns(c, s) && i < s->nelems);
    *to_heap = false;
    if (bit_test_and_set(s->freed_bits, i)) {
        return false; /* the caching P freed it since the caller looked */
    }
    c->nsmallfree++;
    c->requested_freed += requested;
    if (mspan_is_cached(s, h->sweepgen)) {
        /* The caching P counts alloc_count without a lock; the next
         * sweep folds this in. */
        __atomic_fetch_add(&s->remote_frees, 1, __ATOMIC_RELAXED);
        return true;
    }
    s->alloc_count--;
    /* Go's mcentral.freeSpan: a full span regains a free slot. */
    if (s->list == &c->empty) {
        mspan_list_remove(&c->empty, s);
        mspan_list_insert(&c->nonempty, s);
    }
    if (s->alloc_count == 0) {
        mspan_list_remove(&c->nonempty, s);
        *to_heap = true;
    }
    return true;
}

void
mcentral_freed(const mheap *h, span_class spc, uint64_t *objects,
               uint64_t *requested)
{
    uint64_t n = h->central[spc].nsmallfree;
    uint64_t bytes = h->central[spc].requested_freed;
    for (int p = 0; p < h->nprocs; p++) {
        n += h->caches[p]->local_nsmallfree[spc];
        bytes += h->caches[p]->local_requested_freed[spc];
    }
    *objects = n;
    *requested = bytes;
}
