/* Central free lists (csrc/mcentral.c): cacheSpan and uncacheSpan, the
 * nonempty and empty lists, the optimistic nmalloc count, heap_live, and
 * the paths of a free slot (a cached span, a full one, the last object).
 *
 * An mcentral of a real (virtual) heap is driven directly, as an mcache
 * would: slots are handed out with the span's own nextFreeIndex.
 * Go 1.13: src/runtime/mcentral.go (cacheSpan, uncacheSpan, freeSpan,
 *          grow).
 * Differs from Go: spans are swept as they join or leave an mcache;
 *          explicit frees move spans between the lists (design §6.2).
 * Locking: single-threaded; c->lock is taken where the code requires it.
 */
#include <inttypes.h>
#include <string.h>

#include "check.h"
#include "goalloc.h"
#include "mbitmap.h"
#include "mheap.h"
#include "sizeclasses.h"

#define SIZE 32 /* class 3: 256 slots in one page */

static mheap *
new_heap(void)
{
    ga_options o;
    ga_options_init(&o);
    o.backing = GA_BACKING_VIRTUAL;
    ga_status st;
    char err[256];
    mheap *h = ga_heap_new(&o, &st, err, sizeof(err));
    if (!CHECK_MSG(h != NULL, "%s", err)) {
        exit(1);
    }
    return h;
}

static void
verify_ok(mheap *h)
{
    char msg[300];
    CHECK_MSG(ga_verify(h, msg, sizeof(msg)), "%s", msg);
}

/* take n slots of cached span s, as P 0 would (small_slot_done). */
static void
take(mheap *h, mspan *s, uint64_t n)
{
    for (uint64_t k = 0; k < n; k++) {
        uint64_t i = mspan_next_free_index(s);
        if (!CHECK(i < s->nelems)) {
            return;
        }
        mspan_req_store(s, i, SIZE);
        h->caches[0]->local_requested += SIZE;
        s->alloc_count++;
    }
}

static bool
on(const mspan_list *l, const mspan *s)
{
    for (const mspan *t = l->first; t != NULL; t = t->next) {
        if (t == s) {
            return true;
        }
    }
    return false;
}

/* free_slot frees slot i of s under c->lock; returns its result. */
static bool
free_slot(mheap *h, mcentral *c, mspan *s, uint64_t i, bool *to_heap)
{
    pthread_mutex_lock(&c->lock);
    bool ok = mcentral_free_slot_locked(h, c, s, i, SIZE, to_heap);
    pthread_mutex_unlock(&c->lock);
    return ok;
}

/* cacheSpan grows a span when the lists are empty and counts all its
 * slots as allocated; uncacheSpan of an untouched span gives it back to
 * the heap and takes the count back. */
static void
test_cache_uncache(void)
{
    mheap *h = new_heap();
    span_class spc = make_span_class(size_to_class(SIZE), false);
    mcentral *c = &h->central[spc];
    uint64_t live0 = h->stats.heap_live, pages0 = h->pages_in_use;
    mspan *s = mcentral_cache_span(h, c, h->caches[0]);
    if (!CHECK(s != NULL)) {
        return;
    }
    CHECK(s->nelems == PAGE_SIZE / SIZE && s->npages == 1);
    CHECK(on(&c->empty, s) && mspan_list_is_empty(&c->nonempty));
    CHECK(mspan_is_cached(s, h->sweepgen) && mcentral_owns(c, s));
    CHECK(c->nmalloc == s->nelems);
    CHECK(h->stats.heap_live == live0 + PAGE_SIZE);
    CHECK(s->freeindex == 0 && s->alloc_cache == ~(uint64_t)0);
    CHECK(mcentral_unused_slots(s) == s->nelems);
    CHECK(h->pages_in_use == pages0 + 1);
    mcentral_uncache_span(h, c, s); /* s is gone now */
    CHECK(c->nmalloc == 0 && h->stats.heap_live == live0);
    CHECK(mspan_list_is_empty(&c->empty) && mspan_list_is_empty(&c->nonempty));
    CHECK(h->pages_in_use == pages0);
    verify_ok(h);
    ga_heap_free(h);
}

/* A partly used span goes to nonempty when uncached and is the one the
 * next cacheSpan takes; a full one stays on empty, uncached. */
static void
test_partial_and_full(void)
{
    mheap *h = new_heap();
    span_class spc = make_span_class(size_to_class(SIZE), false);
    mcentral *c = &h->central[spc];
    uint64_t live0 = h->stats.heap_live;
    mspan *s = mcentral_cache_span(h, c, h->caches[0]);
    if (!CHECK(s != NULL)) {
        return;
    }
    take(h, s, 10);
    CHECK(mcentral_unused_slots(s) == s->nelems - 10);
    mcentral_uncache_span(h, c, s);
    CHECK(on(&c->nonempty, s) && !on(&c->empty, s));
    CHECK(!mspan_is_cached(s, h->sweepgen) && s->sweepgen == h->sweepgen);
    CHECK(c->nmalloc == 10 && h->stats.heap_live == live0 + 10 * SIZE);
    CHECK(s->alloc_count == 10 && s->freeindex == 0);
    verify_ok(h);
    /* cacheSpan takes it again: the rest of its slots are counted */
    mspan *again = mcentral_cache_span(h, c, h->caches[0]);
    CHECK(again == s && on(&c->empty, s) && mspan_is_cached(s, h->sweepgen));
    CHECK(c->nmalloc == s->nelems);
    /* freeindex stays 0; the allocCache skips the 10 taken slots */
    CHECK(s->freeindex == 0 && ctz64(s->alloc_cache) == 10);
    take(h, s, s->nelems - 10);
    CHECK(mspan_next_free_index(s) == s->nelems);
    mcentral_uncache_span(h, c, s);
    CHECK(on(&c->empty, s) && !mspan_is_cached(s, h->sweepgen));
    CHECK(c->nmalloc == s->nelems && s->alloc_count == s->nelems);
    CHECK(h->stats.heap_live == live0 + PAGE_SIZE);
    verify_ok(h);
    ga_heap_free(h);
}

/* Frees: a full uncached span regains a slot and moves to nonempty; a
 * slot freed twice is refused; the last object's free takes the span
 * off the lists for the heap.  In a cached span the free is counted in
 * remote_frees until the next sweep. */
static void
test_free_slot_paths(void)
{
    mheap *h = new_heap();
    span_class spc = make_span_class(size_to_class(SIZE), false);
    mcentral *c = &h->central[spc];
    mspan *s = mcentral_cache_span(h, c, h->caches[0]);
    if (!CHECK(s != NULL)) {
        return;
    }
    uint64_t n = s->nelems;
    take(h, s, n);
    mcentral_uncache_span(h, c, s);
    bool to_heap = true;
    CHECK(free_slot(h, c, s, 7, &to_heap) && !to_heap);
    CHECK(on(&c->nonempty, s) && s->alloc_count == n - 1);
    CHECK(!free_slot(h, c, s, 7, &to_heap) && !to_heap); /* double */
    CHECK(s->alloc_count == n - 1 && c->nsmallfree == 1);
    uint64_t objs = 0, req = 0;
    mcentral_freed(h, spc, &objs, &req);
    CHECK(objs == 1 && req == SIZE);
    for (uint64_t i = 0; i < n - 1; i++) {
        if (i == 7) {
            continue;
        }
        CHECK(free_slot(h, c, s, i, &to_heap) && !to_heap);
    }
    uint64_t pages = h->pages_in_use;
    CHECK(free_slot(h, c, s, n - 1, &to_heap) && to_heap);
    CHECK(s->alloc_count == 0 && !on(&c->nonempty, s) && !on(&c->empty, s));
    CHECK(!mcentral_owns(c, s));
    mcentral_release_to_heap(h, s);
    CHECK(h->pages_in_use == pages - 1 && c->nsmallfree == n);
    verify_ok(h);

    /* a cached span: the free waits in remote_frees for the sweep */
    s = mcentral_cache_span(h, c, h->caches[0]);
    if (!CHECK(s != NULL)) {
        return;
    }
    take(h, s, 3);
    CHECK(free_slot(h, c, s, 1, &to_heap) && !to_heap);
    CHECK(s->alloc_count == 3 && s->remote_frees == 1);
    CHECK(mspan_alloc_count(s) == 2 && on(&c->empty, s));
    CHECK(!free_slot(h, c, s, 1, &to_heap));
    mcentral_uncache_span(h, c, s);
    CHECK(s->alloc_count == 2 && s->remote_frees == 0);
    CHECK(on(&c->nonempty, s) && !bit_get(s->alloc_bits, 1));
    CHECK(bit_get(s->alloc_bits, 0) && bit_get(s->alloc_bits, 2));
    verify_ok(h);
    ga_heap_free(h);
}

int
main(void)
{
    CHECK_RUN(test_cache_uncache());
    CHECK_RUN(test_partial_and_full());
    CHECK_RUN(test_free_slot_paths());
    int failed = check_summary("mcentral");
    return failed > 255 ? 255 : failed;
}
