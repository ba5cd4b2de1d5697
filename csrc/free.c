/* Explicit free.  See malloc.c for the overview.
 *
 * ga_free(h, addr) frees the object that starts at addr and tells every
 * other address apart: not in the heap (GA_EFOREIGN), not the start of a
 * live object (GA_ENOTOBJECT), freed already (GA_EDOUBLEFREE).  A slot of
 * a span the freeing P caches is marked in freed_bits without a lock (the
 * P's free hint answers a run of frees into one span without spanOf);
 * any other small object is freed under its mcentral's lock alone, which
 * pins the span while the mcentral owns it, and the span goes back to the
 * mheap when its last object goes and no P caches it; a large object's
 * span goes back to the mheap at once, under the heap lock.  Tiny objects
 * are freed one by one (tiny.h).
 * Go 1.13: none.
 * Differs from Go: all of it.  Go has no free: the garbage collector
 *          marks, and sweeping (mgcsweep.go) returns what was not marked.
 *          goalloc has no collector, so the caller says what is dead
 *          (design §6); the slot it frees waits in freed_bits for the
 *          span's next sweep, which takes the place of Go's gcmarkBits.
 * Locking: the caching P's frees take no lock (an atomic test-and-set
 *          of the slot's freed bit); other small frees take their
 *          mcentral's lock; the rest take the heap lock (then, for a
 *          small span being made or on its way home, its mcentral's).
 */
#include "goalloc.h"

#include "internal.h"
#include "mbitmap.h"
#include "mheap.h"
#include "tiny.h"

ga_status
classify_locked(mheap *h, ga_addr addr, mspan **large, mspan **small)
{
    GA_ASSERT(mheap_owned(h));
    *large = NULL;
    *small = NULL;
    mspan *s = span_of(h, addr);
    if (s == NULL) {
        /* In a mapped arena but in no span: go1.13.8's curArena. */
        return heap_arena_of(h, addr) != NULL ? GA_ENOTOBJECT : GA_EFOREIGN;
    }
    bool covers = mspan_base(s) <= addr && addr < mspan_end(s);
    if (!covers || s->state != MSPAN_IN_USE) {
        if (!covers || s->state != MSPAN_MANUAL) {
            /* a free span, or the stale struct of a span merged into a
             * free neighbour (spanOf of an interior page) */
            bool freed = (addr & PAGE_MASK) == 0 && arena_page_freed(h, addr);
            return freed ? GA_EDOUBLEFREE : GA_ENOTOBJECT;
        }
        return GA_ENOTOBJECT; /* manual span */
    }
    if (span_class_sizeclass(s->spanclass) == 0) {
        if (addr != mspan_base(s)) {
            return GA_ENOTOBJECT;
        }
        *large = s;
        return GA_OK;
    }
    if (addr >= s->limit) {
        return GA_ENOTOBJECT; /* the span's tail waste */
    }
    *small = s;
    return GA_OK;
}

/* large_free_locked frees a live large object's span; the caller holds
 * the heap lock since classifying it, so two frees cannot both pass. */
static void
large_free_locked(mheap *h, mspan *s)
{
    GA_ASSERT(mheap_owned(h));
    h->nlargefree++;
    h->largefree += s->elemsize;
    h->large_requested_freed += s->limit - mspan_base(s);
    heap_live_add(h, -(int64_t)s->elemsize);
    h->stats.heap_objects--;
    s->alloc_count = 0;
    s->needzero = 1;
    ga_addr base = mspan_base(s);
    mheap_free_span_locked(h, s, true, true);
    arena_set_page_freed(h, base);
}

ga_status
dead_slot_status(const mspan *s, uint64_t i, uint64_t off)
{
    if (off != 0) {
        tiny_block b = tiny_block_of(s, i);
        bool started = b.marks != NULL && tiny_started(b, off);
        return started ? GA_EDOUBLEFREE : GA_ENOTOBJECT;
    }
    bool was_used = bit_get_atomic(s->freed_bits, i) ||
                    bit_get(s->used_bits, i);
    return was_used ? GA_EDOUBLEFREE : GA_ENOTOBJECT;
}

/* small_free_central_locked frees addr in small span s under its
 * mcentral's lock, where the slot's state cannot change but for the
 * caching P's own frees (atomic). */
static ga_status
small_free_central_locked(mheap *h, mcentral *c, mspan *s, ga_addr addr,
                          bool *to_heap)
{
    uint64_t i = mspan_obj_index(s, addr);
    uint64_t off = addr - mspan_slot_addr(s, i);
    bool live = mspan_is_allocated(s, i) && !bit_get_atomic(s->freed_bits, i);
    if (!live) {
        return dead_slot_status(s, i, off);
    }
    tiny_block b = tiny_block_of(s, i);
    if (b.marks != NULL) {
        return tiny_free_locked(h, s, i, off, b, to_heap);
    }
    if (off != 0) {
        return GA_ENOTOBJECT;
    }
    return mcentral_free_slot_locked(h, c, s, i, mspan_req_load(s, i), to_heap)
               ? GA_OK
               : GA_EDOUBLEFREE;
}

/* small_free: the caller holds the heap lock, so s stays an in-use small
 * span; the mcentral lock is taken inside it (lock order heap ->
 * central).  small_free_pinned has handled spans their mcentral owns;
 * here s may also be one that is being made (no bitmaps yet, nothing
 * handed out) or that is on its way home (every slot dead). */
static ga_status
small_free(mheap *h, mspan *s, ga_addr addr)
{
    mcentral *c = &h->central[s->spanclass];
    bool to_heap = false;
    pthread_mutex_lock(&c->lock);
    ga_status st = !mcentral_owns(c, s) && s->alloc_bits == NULL
                       ? GA_ENOTOBJECT
                       : small_free_central_locked(h, c, s, addr, &to_heap);
    pthread_mutex_unlock(&c->lock);
    if (to_heap) {
        mcentral_release_to_heap_locked(h, s);
    }
    return st;
}

/* small_free_pinned frees addr when it lies in a small span that its
 * mcentral owns: the span is pinned by that mcentral's lock alone (see
 * mcentral.h), so frees of small objects on different threads contend
 * only per size class.  Returns false, having changed nothing, when addr
 * is not in such a span (large objects, free spans, foreign addresses,
 * a span's tail): classify_locked decides those under the heap lock. */
static bool
small_free_pinned(mheap *h, ga_addr addr, ga_status *st)
{
    mspan *s = span_of(h, addr);
    if (s == NULL) {
        return false;
    }
    span_class spc = mspan_spanclass_load(s);
    if (spc >= NUM_SPAN_CLASSES || span_class_sizeclass(spc) == 0) {
        return false;
    }
    mcentral *c = &h->central[spc];
    bool to_heap = false;
    pthread_mutex_lock(&c->lock);
    bool pinned = mcentral_owns(c, s) && mspan_base(s) <= addr &&
                  addr < s->limit;
    if (pinned) {
        *st = small_free_central_locked(h, c, s, addr, &to_heap);
    }
    pthread_mutex_unlock(&c->lock);
    if (to_heap) {
        mcentral_release_to_heap(h, s);
    }
    return pinned;
}

/* free_slow frees what the fast path could not, inside a protected call
 * (returning a span to the mheap may throw): a small object under its
 * mcentral's lock, anything else classified under the heap lock. */
static GA_NOINLINE ga_status
free_slow(mheap *h, ga_addr addr)
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
    ga_status st = GA_OK;
    if (!small_free_pinned(h, addr, &st)) {
        mspan *large, *small;
        mheap_lock(h);
        st = classify_locked(h, addr, &large, &small);
        if (large != NULL) {
            large_free_locked(h, large);
        }
        else if (small != NULL) {
            st = small_free(h, small, addr);
        }
        mheap_unlock(h);
    }
    protect_pop(&pf);
    return st;
}

/* owner_cache: the mcache through which the caller may free a slot of s
 * without a lock, or NULL.  As P p, that is p's mcache when it caches s;
 * as every P at once (GA_ALL_PS: nothing else runs), any P that caches
 * s, whose counters then go to P 0. */
static inline mcache *
owner_cache(mheap *h, int p, const mspan *s)
{
    if (p >= 0) {
        mcache *c = h->caches[p];
        return c->alloc[mspan_spanclass_load(s)] == s ? c : NULL;
    }
    bool cached = s->state == MSPAN_IN_USE && mspan_is_cached(s, h->sweepgen);
    return cached ? h->caches[0] : NULL;
}

/* cached_span_of: the small span holding addr between its base and limit
 * (not one with tiny blocks: those are freed under the tiny class's
 * mcentral lock, tiny.h), if the caller may free into it without a
 * lock (owner_cache), with that mcache in *cp; else NULL.  A P's run of
 * frees into one span is answered by its free hint, without spanOf.
 * spanOf needs no lock: arena entries are published atomically. */
static inline mspan *
cached_span_of(mheap *h, int p, ga_addr addr, mcache **cp)
{
    if (p >= 0) {
        mcache *c = h->caches[p];
        if (addr - c->free_hint.base <
            c->free_hint.limit - c->free_hint.base) {
            *cp = c;
            return c->free_hint.span;
        }
    }
    mspan *s = span_of(h, addr);
    mcache *c = s != NULL && p != GA_NO_P ? owner_cache(h, p, s) : NULL;
    if (c == NULL || s->tiny_marks != NULL || addr < mspan_base(s) ||
        addr >= s->limit) {
        return NULL;
    }
    if (p >= 0) {
        c->free_hint.span = s;
        c->free_hint.base = mspan_base(s);
        c->free_hint.limit = s->limit;
    }
    *cp = c;
    return s;
}

ga_status
ga_free_p(ga_heap *h, int p, ga_addr addr)
{
    if (GA_UNLIKELY(heap_poisoned(h) != NULL)) {
        return GA_EPOISONED;
    }
    if (GA_UNLIKELY(p < GA_ALL_PS || p >= h->nprocs)) {
        return GA_EBADP;
    }
    if (GA_UNLIKELY(h->gc.enabled)) {
        return GA_EUNSUPPORTED; /* the collector frees (ga_drop) */
    }
    if (addr == h->zerobase) {
        return GA_OK;
    }
    /* The fast path: a live object at a slot start of a small span that
     * the caller's P caches (and that has no tiny blocks). */
    mcache *c;
    mspan *s = cached_span_of(h, p, addr, &c);
    if (GA_LIKELY(s != NULL)) {
        uint64_t i = mspan_obj_index(s, addr);
        if (mspan_slot_addr(s, i) == addr && mspan_is_allocated(s, i)) {
            /* The slot waits in freed_bits for the span's next sweep; a
             * free on another thread may set a bit of the same word, and
             * a bit already set is a double free. */
            if (bit_test_and_set(s->freed_bits, i)) {
                return GA_EDOUBLEFREE;
            }
            s->alloc_count--;
            c->local_nsmallfree[s->spanclass]++;
            /* this P wrote it: a plain load, after the locked instruction */
            c->local_requested_freed[s->spanclass] +=
                s->req_sizes[i & s->req_mask];
            return GA_OK;
        }
    }
    return free_slow(h, addr);
}

ga_status
ga_free(ga_heap *h, ga_addr addr)
{
    return ga_free_p(h, GA_NO_P, addr);
}
