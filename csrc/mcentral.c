/* Central free lists.  See mcentral.h and malloc.c for the overview.
 *
 * Go 1.13: src/runtime/mcentral.go (init, cacheSpan, uncacheSpan, grow,
 *          freeSpan).
 * Differs from Go: see mcentral.h.
 * Locking: c->lock guards the lists; mheap calls happen without it.
 */
#include "mcentral.h"

#include "mbitmap.h"
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

/* mcentral_grow takes a fresh span from the mheap and sets up its slots
 * (grow + heapBits.initSpan).  NULL when the heap cannot grow. */
static mspan *
mcentral_grow(mheap *h, mcentral *c)
{
    int sc = span_class_sizeclass(c->spanclass);
    uint64_t npages = class_to_allocnpages[sc];
    mspan *s = mheap_alloc(h, npages, c->spanclass, false, true);
    if (s == NULL) {
        return NULL;
    }
    /* objects per span by div magic, as Go computes it for limit */
    uint64_t n = ((npages * PAGE_SIZE) >> s->div_shift) * s->div_mul >>
                 s->div_shift2;
    s->limit = mspan_base(s) + s->elemsize * n;
    if (!mspan_init_bits(h, s)) {
        ga_throw(h, "runtime: cannot allocate memory");
    }
    return s;
}

mspan *
mcentral_cache_span(mheap *h, mcentral *c)
{
    pthread_mutex_lock(&c->lock);
    mspan *s = c->nonempty.first;
    if (s != NULL) {
        mspan_list_remove(&c->nonempty, s);
        mspan_list_insert_back(&c->empty, s);
        mspan_sweep(s); /* frees since it left an mcache become reusable */
    }
    pthread_mutex_unlock(&c->lock);
    if (s == NULL) {
        s = mcentral_grow(h, c);
        if (s == NULL) {
            return NULL;
        }
        pthread_mutex_lock(&c->lock);
        mspan_list_insert_back(&c->empty, s);
        pthread_mutex_unlock(&c->lock);
    }
    /* havespan */
    uint64_t n = s->nelems - s->alloc_count;
    if (n == 0 || s->freeindex == s->nelems || s->alloc_count == 0xFFFF) {
        ga_throw(h, "span has no free objects");
    }
    pthread_mutex_lock(&c->lock);
    c->nmalloc += n; /* optimistic: every free slot will be used */
    pthread_mutex_unlock(&c->lock);
    mheap_lock(h);
    h->stats.heap_live += s->npages * PAGE_SIZE - s->alloc_count * s->elemsize;
    mheap_unlock(h);
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

/* release_to_heap sends a span with no live object back to the mheap. */
static void
release_to_heap(mheap *h, mspan *s)
{
    mspan_free_bits(s);
    s->needzero = 1;
    mheap_free_span(h, s, false);
}

void
mcentral_uncache_span(mheap *h, mcentral *c, mspan *s)
{
    uint64_t unused = mcentral_unused_slots(s);
    s->sweepgen = h->sweepgen;
    pthread_mutex_lock(&c->lock);
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
    mheap_lock(h);
    h->stats.heap_live -= unused * s->elemsize;
    mheap_unlock(h);
    if (empty_now) {
        release_to_heap(h, s);
    }
}

bool
mcentral_free_slot(mheap *h, mcentral *c, mspan *s, uint64_t i, bool cached,
                   uint64_t requested)
{
    pthread_mutex_lock(&c->lock);
    bit_set(s->freed_bits, i);
    s->alloc_count--;
    c->nsmallfree++;
    c->requested_freed += requested;
    bool to_heap = false;
    if (!cached) {
        /* Go's mcentral.freeSpan: a full span regains a free slot. */
        if (s->list == &c->empty) {
            mspan_list_remove(&c->empty, s);
            mspan_list_insert(&c->nonempty, s);
        }
        if (s->alloc_count == 0) {
            mspan_list_remove(&c->nonempty, s);
            to_heap = true;
        }
    }
    pthread_mutex_unlock(&c->lock);
    if (to_heap) {
        release_to_heap(h, s);
    }
    return to_heap;
}
