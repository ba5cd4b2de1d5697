/* Per-P caches (csrc/mcache.c): allocmcache's emptymspan sentinel,
 * refill, nextFree's slow path, releaseAll, the free hint, and the
 * statistics a flush moves (they must read the same before and after).
 *
 * The mcache of P 0 of a real (virtual) heap is driven directly and
 * through ga_malloc, whose fast path reads it.
 * Go 1.13: src/runtime/mcache.go (allocmcache, refill, releaseAll),
 *          malloc.go (nextFree), mstats.go (purgecachedstats).
 * Differs from Go: the free hint and the per-P free counters (design
 *          §6.3).
 * Locking: single-threaded.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <string.h>

#include "check.h"
#include "goalloc.h"
#include "mbitmap.h"
#include "mheap.h"
#include "sizeclasses.h"

#define SIZE 48 /* class 4: 170 slots in one page */

static mheap *
new_heap(int procs)
{
    ga_options o;
    ga_options_init(&o);
    o.backing = GA_BACKING_VIRTUAL;
    o.procs = procs;
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

static span_class
spc_of(uint64_t size)
{
    return make_span_class(size_to_class((size_t)size), false);
}

/* refill_throws calls mcache_refill in a protected call, as a facade
 * call would: the throw's message, or NULL if it did not throw. */
static const char *
refill_throws(mheap *h, mcache *c, span_class spc)
{
    protect_frame pf;
    protect_push(&pf);
    if (setjmp(pf.jb) != 0) {
        protect_pop(&pf);
        return ga_poisoned(h);
    }
    mcache_refill(h, c, spc);
    protect_pop(&pf);
    return NULL;
}

/* A fresh mcache points every class at the heap's emptymspan, which has
 * no slot, so that the fast path fails into a refill. */
static void
test_allocmcache(void)
{
    mheap *h = new_heap(3);
    CHECK(h->cachealloc.inuse == 3 * 1736); /* Go's sizeof(mcache) */
    for (int p = 0; p < 3; p++) {
        uint64_t bad = 0;
        for (int i = 0; i < NUM_SPAN_CLASSES; i++) {
            bad += h->caches[p]->alloc[i] != &h->emptymspan;
        }
        CHECK_MSG(bad == 0, "P %d: %" PRIu64 " classes not at emptymspan", p,
                  bad);
    }
    CHECK(h->emptymspan.nelems == 0 && h->emptymspan.freeindex == 0);
    CHECK(mspan_next_free_index(&h->emptymspan) == 0); /* "full" */
    mcache *extra = allocmcache(h);
    CHECK(extra != NULL && h->cachealloc.inuse == 4 * 1736);
    CHECK(extra->alloc[spc_of(SIZE)] == &h->emptymspan);
    mheap_lock(h);
    fixalloc_free(&h->cachealloc, extra);
    mheap_unlock(h);
    ga_heap_free(h);
}

/* nextFree hands out a span's slots in order, then refills: the used-up
 * span goes back (full: on the mcentral's empty list, uncached) and a
 * fresh one is cached. */
static void
test_next_free_and_refill(void)
{
    mheap *h = new_heap(1);
    mcache *c = h->caches[0];
    span_class spc = spc_of(SIZE);
    mspan *s = NULL;
    uint64_t i = mcache_next_free(h, c, spc, &s);
    CHECK(i == 0 && s != NULL && s == c->alloc[spc]);
    if (s == NULL) {
        return;
    }
    CHECK(mspan_is_cached(s, h->sweepgen) && s->alloc_count == 1);
    uint64_t n = s->nelems, wrong = 0;
    CHECK(n == PAGE_SIZE / SIZE);
    for (uint64_t k = 1; k < n; k++) {
        mspan *t = NULL;
        wrong += mcache_next_free(h, c, spc, &t) != k || t != s;
        mspan_req_store(s, k, SIZE);
    }
    mspan_req_store(s, 0, SIZE);
    c->local_requested += n * SIZE;
    CHECK(wrong == 0 && s->alloc_count == n && s->freeindex == n);
    c->free_hint.span = s; /* as a free through P 0 would leave it */
    c->free_hint.base = s->start_addr;
    c->free_hint.limit = s->limit;
    mspan *t = NULL;
    CHECK(mcache_next_free(h, c, spc, &t) == 0 && t != s && t != NULL);
    CHECK(c->alloc[spc] == t && mspan_is_cached(t, h->sweepgen));
    CHECK(!mspan_is_cached(s, h->sweepgen));
    CHECK(s->list == &h->central[spc].empty); /* full */
    CHECK(c->free_hint.span == NULL && c->free_hint.limit == 0);
    mspan_req_store(t, 0, SIZE);
    c->local_requested += SIZE;
    verify_ok(h);
    /* a refill while the span still has slots is Go's throw */
    const char *why = refill_throws(h, c, spc);
    CHECK_MSG(why != NULL &&
                  strcmp(why, "refill of span with free space remaining") == 0,
              "%s", why != NULL ? why : "no throw");
    ga_heap_free(h);
}

/* releaseAll gives every span back, moves the tiny count to the heap
 * and forgets the free hint; ReadMemStats reads the same numbers before
 * and after (it counts what the caches hold, Go flushes first). */
static void
test_release_all(void)
{
    mheap *h = new_heap(1);
    mcache *c = h->caches[0];
    ga_addr a[3];
    CHECK(ga_malloc(h, 0, SIZE, false, &a[0]) == GA_OK);
    CHECK(ga_malloc(h, 0, 500, true, &a[1]) == GA_OK);
    CHECK(ga_malloc(h, 0, 5, true, &a[2]) == GA_OK); /* tiny */
    CHECK(ga_malloc(h, 0, 3, true, &a[2]) == GA_OK); /* packed with it */
    CHECK(c->local_tinyallocs == 1 && c->tiny != 0);
    mspan *s48 = c->alloc[spc_of(SIZE)];
    mspan *s500 = c->alloc[make_span_class(size_to_class(500), true)];
    CHECK(s48 != &h->emptymspan && s500 != &h->emptymspan);
    CHECK(ga_free_p(h, 0, a[0]) == GA_OK);
    CHECK(c->free_hint.span == s48);
    ga_mem_stats before, after;
    CHECK(ga_read_mem_stats(h, &before) == GA_OK);
    CHECK(ga_flush(h) == GA_OK); /* drops the tiny block, releaseAll */
    CHECK(ga_read_mem_stats(h, &after) == GA_OK);
    CHECK(before.mallocs == after.mallocs && before.frees == after.frees &&
          before.heap_alloc == after.heap_alloc &&
          before.heap_objects == after.heap_objects);
    CHECK(c->local_tinyallocs == 0 && h->stats.tinyallocs == 1);
    CHECK(c->free_hint.span == NULL && c->tiny == 0);
    uint64_t cached = 0;
    for (int i = 0; i < NUM_SPAN_CLASSES; i++) {
        cached += c->alloc[i] != &h->emptymspan;
    }
    CHECK(cached == 0);
    /* the 48-byte span had no live object left: back in the heap; the
     * 500-byte one has one: swept, on its mcentral's nonempty list */
    ga_span_info si;
    CHECK(ga_span_of(h, a[0], &si) && si.state == MSPAN_FREE);
    CHECK(s500->list == &h->central[s500->spanclass].nonempty &&
          s500->alloc_count == 1 && !mspan_is_cached(s500, h->sweepgen));
    verify_ok(h);
    ga_heap_free(h);
}

int
main(void)
{
    CHECK_RUN(test_allocmcache());
    CHECK_RUN(test_next_free_and_refill());
    CHECK_RUN(test_release_all());
    int failed = check_summary("mcache");
    return failed > 255 ? 255 : failed;
}
