/* Fault injection, test hooks and experiment counters.  See malloc.c.
 *
 * What tests, fuzzers and notebooks use to drive the heap into the paths
 * a healthy process rarely takes (a foreign mapping where the next arena
 * should go, an OS or a process out of memory, a throw) and the counters
 * the fragmentation experiments sample.
 * Go 1.13: export_test.go (MapNextArenaHint); the counters are
 *          ReadMemStats' fields plus goalloc's requested bytes.
 * Differs from Go: Go injects no faults into its allocator; goalloc's
 *          heaps fail on purpose only through these calls.
 * Locking: each call takes the heap lock, but ga_fail_metadata, which
 *          arms an atomic counter.
 */
#include "goalloc.h"

#include <stdio.h>

#include "internal.h"
#include "mheap.h"

ga_status
ga_block_range(ga_heap *h, ga_addr addr, uint64_t len)
{
    if (heap_poisoned(h) != NULL) {
        return GA_EPOISONED;
    }
    if (len == 0) {
        return GA_EINVAL;
    }
    mheap_lock(h);
    bool ok = mem_block(&h->mem, addr, len);
    mheap_unlock(h);
    return ok ? GA_OK : GA_EINVAL;
}

ga_status
ga_fail_reserves(ga_heap *h, int n)
{
    if (heap_poisoned(h) != NULL) {
        return GA_EPOISONED;
    }
    if (h->mem.kind != GA_BACKING_VIRTUAL || n < 0) {
        return h->mem.kind != GA_BACKING_VIRTUAL ? GA_EUNSUPPORTED : GA_EINVAL;
    }
    mheap_lock(h);
    h->mem.fail_reserves = n;
    mheap_unlock(h);
    return GA_OK;
}

ga_status
ga_test_throw(ga_heap *h, const char *msg)
{
    if (heap_poisoned(h) != NULL) {
        return GA_EPOISONED;
    }
    protect_frame pf; /* a throw lands here (throw.h) */
    protect_push(&pf);
    if (setjmp(pf.jb) != 0) {
        protect_pop(&pf);
        return GA_EPOISONED;
    }
    snprintf(h->throw_buf, sizeof(h->throw_buf), "%s", msg);
    mheap_lock(h);
    throw(h, h->throw_buf);
}

ga_status
ga_fail_metadata(ga_heap *h, uint64_t n)
{
    if (heap_poisoned(h) != NULL) {
        return GA_EPOISONED;
    }
    __atomic_store_n(&h->meta.fail_at, n, __ATOMIC_RELAXED);
    return GA_OK;
}

/* ---- Experiments ------------------------------------------------- */

ga_status
ga_heap_counters_get(ga_heap *h, ga_heap_counters *out)
{
    if (heap_poisoned(h) != NULL) {
        return GA_EPOISONED;
    }
    ga_mem_stats ms;
    mheap_lock(h);
    mheap_read_mem_stats_locked(h, &ms);
    out->heap_alloc = ms.heap_alloc;
    out->heap_inuse = ms.heap_inuse;
    out->heap_idle = ms.heap_idle;
    out->heap_released = ms.heap_released;
    out->heap_sys = ms.heap_sys;
    out->live_objects = ms.heap_objects;
    out->requested_live = mheap_requested_live_locked(h);
    out->largest_free = h->free.treap ? h->free.treap->max_pages * PAGE_SIZE
                                      : 0;
    /* go1.13.8's curArena takes a request as large as what is left of it
     * without new address space, as a free span of that size would. */
    uint64_t rest = h->cur_arena.end - h->cur_arena.base;
    if (rest > out->largest_free) {
        out->largest_free = rest;
    }
    out->heap_live = h->stats.heap_live;
    out->heap_marked = h->gc.heap_marked;
    out->gc_trigger = h->gc.gc_trigger;
    out->next_gc = h->gc.next_gc;
    out->num_gc = h->gc.numgc;
    mheap_unlock(h);
    return GA_OK;
}
