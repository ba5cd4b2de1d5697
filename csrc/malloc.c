/* Memory allocator: the overview, and mallocgc.
 *
 * This is Go 1.13's allocator (src/runtime/malloc.go and friends), one
 * heap per ga_heap, told in our own words.
 *
 * The pieces, from the top:
 *   mcache    per P: one current span per span class, and the tiny block.
 *   mcentral  per span class (134 = 67 size classes x scan/noscan): the
 *             in-use spans that may have free slots, and the full ones.
 *   mheap     the page heap: every free run of 8 KiB pages is a free
 *             mspan in one treap ordered by address.
 *   arenas    the heap's address space, reserved and mapped in aligned
 *             arenas (64 MiB on linux/amd64), with a heap_arena each that
 *             maps every page to its span.
 *   hints     where the next arena should go: 0x00c000000000 upward on
 *             linux/amd64, a different formula per platform.
 *   fixalloc  off-heap metadata (spans, caches, treap nodes, hints).
 *
 * mallocinit (ga_heap_new) reserves nothing: it checks the platform,
 * initialises the fixallocs (mheap_init) and the 134 mcentrals, makes an
 * mcache per P (m0's is P 0's) and lays out the arena hints
 * (arena_init_hints).
 *
 * Allocating size bytes (mallocgc):
 *   0            the heap's zerobase address, shared by all.
 *   tiny         size < 16 and noscan: packed into the P's 16-byte block.
 *   small        size <= 32 KiB: the class's span in the P's mcache hands
 *                out its next free slot (next_free_fast: one ctz on the
 *                64-bit allocCache); when the span is full, mcache_refill
 *                asks the mcentral for a span with free slots, and the
 *                mcentral asks the mheap for a fresh one.
 *   large        > 32 KiB: a span of its own straight from the mheap.
 * Only the fast paths (a small slot from the allocCache, a tiny object
 * packed into the current block) run outside a protected call: they
 * cannot throw, and setjmp would cost as much as the allocation itself.
 * The mheap takes the lowest-addressed free span that is big enough
 * (first fit), carves its low end, and when nothing fits grows.  Address
 * space comes in whole arenas at the hints: a hint whose reservation
 * lands elsewhere is discarded; when all fail, the OS picks an aligned
 * region and two new hints extend it down and up.  Which Go 1.13 point
 * release the heap follows (ga_release, design §5.8) decides how it
 * grows: go1.13.8 (the default) cuts a span of the pages asked for off
 * the current arena (curArena) and maps new arenas only when that is too
 * small; go1.13.0 turns each new arena into one free span.  Fresh memory
 * counts as released (untouched) until allocated.
 *
 * Freeing (explicit in goalloc, design §6; Go frees by sweeping): a
 * slot of a span the freeing P caches is marked freed without a lock
 * (the P's free hint skips spanOf for runs of frees into one span); any
 * other small object is freed under its mcentral's lock alone, which
 * pins the span while the mcentral owns it; the span leaves for the
 * mheap when its last object goes and no P caches it.  A large object's
 * span goes back to the mheap at once, under the heap lock, where it
 * coalesces with free neighbours of the same scavenged state.  The
 * scavenger returns free pages to the OS from the top of the address
 * space down.
 *
 * What goalloc leaves out: GC marking and sweeping, write barriers,
 * stacks (manual spans), finalizers and profiling specials, the heap
 * bitmap (accounted in gc_sys, not allocated), the background scavenger;
 * the scavenger goal keeps the value it has before the first GC.
 *
 * Where things are, from the bottom up: a file calls only files below
 * it, but for mheap.c and scavenge.c, which call each other as Go's mheap
 * methods do (tools/check_layers.py checks it).  Each file's header names
 * its Go counterpart; internal.h declares what the files without a header
 * of their own lend the others.
 *   ga.h          Go's fixed numbers, the facade's basic types;
 *                 arith.h: rounding
 *   throw         Go's throw, protected calls, the heap lock, GA_ASSERT
 *                 and the GA_DEBUG levels
 *   platform      the GOOS/GOARCH choices mallocinit depends on
 *   sizeclasses   the generated size-class tables
 *   mem           the OS layer (sys*, linearAlloc): mem_linux.c,
 *                 mem_sim.c, mem_ranges.c (the ranges a heap holds)
 *   fixalloc      fixalloc, persistentalloc, the metadata allocator
 *   mspan         spans and span lists; mbitmap: their slot bitmaps
 *   treap         the free spans by address; treap_check.c: its walker
 *   arena         heap arenas and the page -> span index
 *   sysalloc      arena hints and sysAlloc: where address space comes from
 *   mheap         the page heap; scavenge: returning pages to the OS
 *   mcentral      central span lists; mcache: the per-P caches
 *   malloc        mallocgc (this file); tiny: the tiny allocator
 *   free.c        explicit free (goalloc's own)
 *   mallocinit.c  heap creation and options
 *   mstats        ReadMemStats, flushallmcaches
 *   introspect.c, check_pages.c, check.c, hooks.c, replay.c: views,
 *                 invariant walkers, fault injection, trace replay
 *   goalloc.h     the facade: the only header users include
 *
 * Go 1.13: src/runtime/malloc.go (mallocgc, largeAlloc, the overview;
 *          mallocinit is in mallocinit.c, nextFreeFast in malloc.h).
 * Differs from Go: see "What goalloc leaves out" above, and each file's
 *          header.
 * Locking: facade calls take the heap lock where Go does; frees of small
 *          objects take only their mcentral's lock (mcentral.h), frees
 *          into the P's own cached spans none.
 */
#include "goalloc.h"

#include <string.h>

#include "malloc.h"
#include "mbitmap.h"
#include "mheap.h"
#include "sizeclasses.h"
#include "tiny.h"

/* large_alloc: a span of its own for a > 32 KiB object (largeAlloc),
 * allocated for the calling P's mcache c. */
static ga_status
large_alloc(mheap *h, mcache *c, uint64_t size, bool noscan, ga_addr *out)
{
    uint64_t npages = size >> PAGE_SHIFT;
    if ((size & PAGE_MASK) != 0) {
        npages++;
    }
    if (h->gc.enabled) {
        /* largeAlloc's sweep credit; alloc_m's reclaim */
        deduct_sweep_credit(h, npages * PAGE_SIZE, npages);
        mheap_reclaim(h, npages);
    }
    mheap_lock(h);
    bool room = mheap_has_room(h, npages);
    mheap_unlock(h);
    if (!room) {
        return GA_ENOMEM;
    }
    mspan *s = mheap_alloc(h, c, npages, make_span_class(0, noscan), size,
                           true);
    if (s == NULL) {
        return GA_ENOMEM;
    }
    /* initSpan takes the one-slot span's mark and alloc bits from the
     * gcBits arenas (goalloc only accounts them: nelems is 1) */
    mspan_charge_gc_bits(h, 1);
    *out = mspan_base(s);
    return GA_OK;
}

/* small_slot_rare finishes what small_slot_done leaves to it: a slot of
 * a span with tiny marks forgets the tiny block it may have been, and
 * dirty memory is zeroed (needzero).  Out of line, so that the fast path
 * saves no registers. */
static GA_NOINLINE ga_addr
small_slot_rare(mheap *h, mspan *s, uint64_t i, uint64_t size)
{
    ga_addr v = mspan_slot_addr(s, i);
    mspan_req_store(s, i, size);
    if (s->tiny_marks != NULL) {
        tiny_slot_clear(s, i);
    }
    if (s->needzero && h->zero_memory) {
        memset((void *)(uintptr_t)v, 0, (size_t)s->elemsize);
    }
    return v;
}

/* small_slot_done finishes the allocation of slot i of s: the requested
 * size is recorded (internal waste), and small_slot_rare does the rest
 * when there is more to do. */
static inline ga_addr
small_slot_done(mheap *h, mcache *c, mspan *s, uint64_t i, uint64_t size)
{
    GA_ASSERT(i < s->nelems && size <= s->elemsize);
    c->local_requested += size;
    /* (a dirty span of a heap that does not zero needs nothing more) */
    if (GA_LIKELY((!s->needzero || !h->zero_memory) &&
                  s->tiny_marks == NULL)) {
        mspan_req_store(s, i, size);
        return mspan_slot_addr(s, i);
    }
    return small_slot_rare(h, s, i, size);
}

/* malloc_slow_protected is malloc_slow's work, in its protected call:
 * a small object when the allocCache has no slot, a large object, and
 * size 0.  Out of line, so that no variable of it lives in the frame
 * that setjmp saves. */
static GA_NOINLINE ga_status
malloc_slow_protected(mheap *h, mcache *c, uint64_t size, bool noscan,
                      ga_addr *out)
{
    ga_status st = GA_OK;
    ga_addr v = 0;
    if (size == 0) {
        v = h->zerobase;
    }
    else if (size <= MAX_SMALL_SIZE) {
        span_class spc = make_span_class(size_to_class((size_t)size), noscan);
        mspan *s;
        uint64_t i = mcache_next_free(h, c, spc, &s);
        if (i != NO_SLOT) {
            v = small_slot_done(h, c, s, i, size);
        }
        st = v != 0 ? GA_OK : GA_ENOMEM;
    }
    else {
        st = large_alloc(h, c, size, noscan, &v);
    }
    *out = v;
    return st;
}

/* malloc_slow runs what may refill, grow or throw, inside a protected
 * call.  (A tiny object's slow path is tiny_new_block's.) */
static GA_NOINLINE ga_status
malloc_slow(mheap *h, mcache *c, uint64_t size, bool noscan, ga_addr *out)
{
    if (size > h->plat.max_alloc) {
        return GA_ETOOLARGE;
    }
    if (heap_poisoned(h) != NULL) {
        return GA_EPOISONED;
    }
    protect_frame pf; /* a throw lands here (throw.h) */
    protect_push(&pf);
    if (setjmp(pf.jb) != 0) {
        protect_pop(&pf);
        return GA_EPOISONED;
    }
    c->refilled = false;
    ga_status st = malloc_slow_protected(h, c, size, noscan, out);
    if (st == GA_OK && h->gc.enabled &&
        (c->refilled || size > MAX_SMALL_SIZE)) {
        gc_after_slow_alloc(h);
    }
    protect_pop(&pf);
    return st;
}

/* is_p: p is one of h's Ps. */
static inline bool
is_p(const mheap *h, int p)
{
    return p >= 0 && p < h->nprocs;
}

ga_status
ga_malloc_check(ga_heap *h, int p, uint64_t size)
{
    if (heap_poisoned(h) != NULL) {
        return GA_EPOISONED;
    }
    if (!is_p(h, p)) {
        return GA_EBADP;
    }
    return size > h->plat.max_alloc ? GA_ETOOLARGE : GA_OK;
}

ga_status
ga_malloc(ga_heap *h, int p, uint64_t size, bool noscan, ga_addr *out)
{
    if (GA_UNLIKELY(heap_poisoned(h) != NULL)) {
        return GA_EPOISONED;
    }
    if (GA_UNLIKELY(!is_p(h, p))) {
        return GA_EBADP;
    }
    mcache *c = h->caches[p];
    /* The fast paths: no lock, no protected call.  (A small size is
     * below every platform's maxAlloc.) */
    if (GA_LIKELY(size - 1 < MAX_SMALL_SIZE)) {
        if (GA_LIKELY(size >= TINY_SIZE || !noscan)) {
            /* one ctz on the class's allocCache */
            mspan *s =
                c->alloc[make_span_class(size_to_class((size_t)size), noscan)];
            uint64_t i = next_free_fast(s);
            if (GA_LIKELY(i != NO_SLOT)) {
                *out = small_slot_done(h, c, s, i, size);
                return GA_OK;
            }
        }
        else {
            /* packed into the P's current tiny block, if it has room */
            ga_addr v = tiny_alloc_fast(c, size);
            if (GA_LIKELY(v != 0)) {
                *out = v;
                return GA_OK;
            }
            return tiny_new_block(h, c, size, out);
        }
    }
    return malloc_slow(h, c, size, noscan, out);
}

void *
ga_alloc(ga_heap *h, int p, size_t size, bool noscan)
{
    ga_addr a = 0;
    if (h->mem.kind != GA_BACKING_OS ||
        ga_malloc(h, p, size, noscan, &a) != GA_OK) {
        return NULL;
    }
    return (void *)(uintptr_t)a;
}
