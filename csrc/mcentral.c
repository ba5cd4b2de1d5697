/* Central free lists.  See mcentral.h and malloc.c for the overview.
 *
 * Go 1.13: src/runtime/mcentral.go (init, cacheSpan, uncacheSpan, grow,
 *          freeSpan).
 * Differs from Go: see mcentral.h.
 * Layers: in GC mode this file and mgcsweep.c call each other, as Go's
 *          cacheSpan sweeps and a sweep calls mcentral.freeSpan (an
 *          allowed cycle of tools/check_layers.py).
 * Locking: c->lock guards the lists, the counters and every sweep; the
 *          heap lock may be held when c->lock is taken, never the other
 *          way round.
 */
#include "mcentral.h"

#include <stdlib.h>

#include "mbitmap.h"
#include "mcache.h"
#include "mgc.h"
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
    mheap_reclaim(h, npages); /* alloc_m, while sweeping is pending */
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

/* cache_span_finish is cacheSpan's end (havespan): the span's free
 * bytes count in heap_live, and its allocCache is loaded from
 * freeindex. */
static mspan *
cache_span_finish(mheap *h, mspan *s, uint64_t n)
{
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

/* grow_locked takes a fresh span from the mheap (mcentral.grow) and
 * installs it at the back of empty; c->lock is dropped while the heap
 * works and held again on return.  NULL when the heap cannot grow. */
static mspan *
grow_locked(mheap *h, mcentral *c, mcache *mc)
{
    pthread_mutex_unlock(&c->lock);
    uint8_t *bits;
    mspan *s = mcentral_grow(h, c, mc, &bits);
    pthread_mutex_lock(&c->lock);
    if (s != NULL) {
        /* Until now a free that finds s (under the heap lock) sees a span
         * that c does not own and that has no bitmaps (small_free). */
        mspan_init_bits(s, bits, h->gc.enabled);
    }
    return s;
}

/* move_to_empty_back moves s to the back of c's empty list. */
static void
move_to_empty_back(mcentral *c, mspan *s)
{
    mspan_list_remove(s->list, s);
    mspan_list_insert_back(&c->empty, s);
}

/* cache_span_gc is cacheSpan in GC mode: sweep credit first; then a span
 * of nonempty (sweeping it if it needs it), else one of empty that
 * sweeping frees a slot in, else a fresh one.  Returns with c->lock
 * held, the span on the back of empty (NULL if the heap cannot grow). */
static mspan *
cache_span_gc(mheap *h, mcentral *c, mcache *mc)
{
    uint64_t npages = class_to_allocnpages[span_class_sizeclass(c->spanclass)];
    deduct_sweep_credit(h, npages * PAGE_SIZE, 0);
    pthread_mutex_lock(&c->lock);
    uint32_t sg = h->sweepgen;
retry:
    for (mspan *s = c->nonempty.first, *next; s != NULL; s = next) {
        next = s->next;
        if (s->sweepgen == sg - 1) {
            continue; /* being swept */
        }
        bool claimed = sweep_claim(h, s);
        move_to_empty_back(c, s);
        if (claimed) {
            pthread_mutex_unlock(&c->lock);
            sweep_span(h, s, true);
            pthread_mutex_lock(&c->lock);
        }
        return s;
    }
    for (mspan *s = c->empty.first, *next; s != NULL; s = next) {
        next = s->next;
        if (s->sweepgen == sg - 1) {
            continue;
        }
        if (!sweep_claim(h, s)) {
            break; /* swept or cached: so is the rest of the list */
        }
        move_to_empty_back(c, s);
        pthread_mutex_unlock(&c->lock);
        sweep_span(h, s, true);
        uint64_t fi = mspan_next_free_index(s);
        pthread_mutex_lock(&c->lock);
        if (fi != s->nelems) {
            mspan_freeindex_store(s, fi);
            return s;
        }
        goto retry; /* swept full: look again */
    }
    mspan *s = grow_locked(h, c, mc);
    if (s != NULL) {
        mspan_list_insert_back(&c->empty, s);
    }
    return s;
}

mspan *
mcentral_cache_span(mheap *h, mcentral *c, mcache *mc)
{
    if (h->gc.enabled) {
        mspan *s = cache_span_gc(h, c, mc);
        uint64_t n = 0;
        if (s != NULL) {
            s->sweepgen = h->sweepgen + SWEEPGEN_CACHED;
            n = s->nelems - s->alloc_count;
            c->nmalloc += n;
        }
        pthread_mutex_unlock(&c->lock);
        return s == NULL ? NULL : cache_span_finish(h, s, n);
    }
    pthread_mutex_lock(&c->lock);
    mspan *s = c->nonempty.first;
    uint64_t n = s != NULL ? take_span_locked(h, c, s) : 0;
    if (s == NULL) {
        s = grow_locked(h, c, mc);
        n = s != NULL ? take_span_locked(h, c, s) : 0;
    }
    pthread_mutex_unlock(&c->lock);
    return s == NULL ? NULL : cache_span_finish(h, s, n);
}

bool
mcentral_free_span(mheap *h, mcentral *c, mspan *s, bool preserve,
                   bool wasempty)
{
    uint32_t sg = h->sweepgen;
    if (s->sweepgen == sg + 1 || s->sweepgen == sg + SWEEPGEN_CACHED) {
        throw(h, "freeSpan given cached span");
    }
    s->needzero = 1;
    if (preserve) {
        if (s->list == NULL) {
            throw(h, "can't preserve unlinked span");
        }
        s->sweepgen = sg;
        return false;
    }
    pthread_mutex_lock(&c->lock);
    if (wasempty) {
        mspan_list_remove(&c->empty, s);
        mspan_list_insert(&c->nonempty, s);
    }
    s->sweepgen = sg;
    if (s->alloc_count != 0) {
        pthread_mutex_unlock(&c->lock);
        return false;
    }
    mspan_list_remove(&c->nonempty, s);
    pthread_mutex_unlock(&c->lock);
    mcentral_release_to_heap(h, s);
    return true;
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

/* uncache_span_gc is uncacheSpan in GC mode: a span cached before the
 * cycle (stale) is swept now; heap_live gives back the slots never
 * handed out only if it was not recomputed since the span was cached. */
static void
uncache_span_gc(mheap *h, mcentral *c, mspan *s)
{
    if (s->alloc_count == 0) {
        throw(h, "uncaching span but s.allocCount == 0");
    }
    uint32_t sg = h->sweepgen;
    bool stale = s->sweepgen == sg + 1;
    s->sweepgen = stale ? sg - 1 : sg;
    uint64_t n = s->nelems - s->alloc_count;
    if (n > 0) {
        pthread_mutex_lock(&c->lock);
        c->nmalloc -= n;
        mspan_list_remove(&c->empty, s);
        mspan_list_insert(&c->nonempty, s);
        if (!stale) {
            heap_live_add(h, -(int64_t)(n * s->elemsize));
        }
        pthread_mutex_unlock(&c->lock);
    }
    if (stale) {
        sweep_span(h, s, false);
    }
}

void
mcentral_uncache_span(mheap *h, mcentral *c, mspan *s)
{
    if (h->gc.enabled) {
        uncache_span_gc(h, c, s);
        return;
    }
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
