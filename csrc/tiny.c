/* The tiny allocator.  See tiny.h.
 *
 * Go 1.13: src/runtime/malloc.go (mallocgc, the tiny branch).
 * Differs from Go: per-block marks for explicit free, in a table per
 *          span made when the span serves its first tiny block.
 * Locking: the P's mcache; see tiny.h.  Who frees a block: the P's drop
 *          sets the bits of the block's freed word at the offsets that
 *          started no object, and each free sets its offset's bit, all by
 *          atomic read-modify-write of that word, so they happen in one
 *          order.  A free that comes before the drop never frees the
 *          block (the P may still pack into it); the drop frees it if
 *          every object it ever held was freed before; otherwise the free
 *          that frees the last live object after the drop does.  A block
 *          of sixteen 1-byte objects has no spare bit: its drop takes the
 *          mcentral lock that every free holds and sets TINY_FULL_DROPPED
 *          in the marks instead.  The P reads its block's marks before it
 *          drops it: afterwards a free may free the block and send its
 *          span home.
 */
#include "tiny.h"

#include <stdlib.h>
#include <string.h>

#include "malloc.h"
#include "mbitmap.h"

static uint64_t
slot_of(const mspan *s, ga_addr block)
{
    return (block - mspan_base(s)) / TINY_SIZE;
}

/* tiny_table_make: s's table of block marks, made the first time s
 * serves a tiny block.  Only the P caching s (c) takes blocks from it, so
 * only that P makes the table; frees on other threads read the pointer
 * (acquire) once a block of s was handed out.  The P's free hint may name
 * s, which from now on is no span for the lock-free free: it forgets. */
static uint32_t *
tiny_table_make(mheap *h, mcache *c, mspan *s)
{
    uint32_t *t = s->tiny_marks;
    if (GA_LIKELY(t != NULL)) {
        return t;
    }
    mcache_forget_hint(c, s);
    t = calloc(1, tiny_table_bytes(s));
    if (t == NULL) {
        throw(h, "runtime: cannot allocate memory");
    }
    __atomic_fetch_add(&h->tiny_meta_bytes, tiny_table_bytes(s),
                       __ATOMIC_RELAXED);
    __atomic_store_n(&s->tiny_marks, t, __ATOMIC_RELEASE);
    return t;
}

/* start_block: a fresh block whose first object (offset 0) has size
 * bytes; dropped at once when no P will pack into it. */
static void
start_block(tiny_block b, uint64_t size, bool dropped)
{
    __atomic_store_n(b.marks, TINY_START(0) | TINY_END(size - 1),
                     __ATOMIC_RELAXED);
    __atomic_store_n(b.freed,
                     (uint16_t)(dropped ? TINY_OFFSETS & ~TINY_START(0) : 0),
                     __ATOMIC_RELAXED);
}

/* drop_full_locked drops a block whose sixteen offsets all started an
 * object: under the lock its frees take, TINY_FULL_DROPPED goes into
 * the marks (this P's word; frees read it under the lock).  Returns
 * whether every object was freed already. */
static bool
drop_full_locked(mheap *h, tiny_block b, uint32_t m)
{
    mcentral *tc = &h->central[TINY_SPAN_CLASS];
    pthread_mutex_lock(&tc->lock);
    __atomic_store_n(b.marks, m | TINY_FULL_DROPPED, __ATOMIC_RELAXED);
    bool empty = tiny_freed_load(b) == TINY_OFFSETS;
    pthread_mutex_unlock(&tc->lock);
    return empty;
}

/* drop_current stops packing into c's current block.  Returns true when
 * nothing in it is live: then no free will come for it, and the caller
 * frees it (*d), its slot still allocated, so d->span is still its span.
 * Otherwise the free of its last live object frees it, maybe at once on
 * another thread: the marks are read before the drop. */
static GA_ALWAYS_INLINE bool
drop_current(mheap *h, mcache *c, tiny_dropped *d)
{
    mspan *s = c->tiny_span;
    d->span = s;
    d->slot = slot_of(s, c->tiny);
    tiny_block b = tiny_block_at(s, s->tiny_marks, d->slot);
    c->tiny = 0;
    c->tiny_marks = NULL;
    c->tiny_span = NULL;
    c->tinyoffset = 0;
    uint32_t m = tiny_marks_load(b);
    uint32_t starts = m & TINY_OFFSETS;
    if (GA_UNLIKELY(starts == TINY_OFFSETS)) {
        return drop_full_locked(h, b, m) && !h->gc.enabled;
    }
    /* An add, as the spare offsets' bits are clear until the drop (frees
     * set started offsets' bits only): one `lock xadd`, where an or that
     * returns the old word is a compare-and-swap loop. */
    uint16_t f = __atomic_fetch_add(b.freed,
                                    (uint16_t)(TINY_OFFSETS & ~starts),
                                    __ATOMIC_ACQ_REL);
    /* In GC mode a block with nothing live waits for the collector. */
    return (starts & ~(uint32_t)f) == 0 && !h->gc.enabled;
}

static void
tiny_free_dropped(mheap *h, const tiny_dropped *d)
{
    mcentral *tc = &h->central[TINY_SPAN_CLASS];
    bool to_heap = false;
    pthread_mutex_lock(&tc->lock);
    mcentral_free_slot_locked(h, tc, d->span, d->slot, 0, &to_heap);
    pthread_mutex_unlock(&tc->lock);
    if (to_heap) {
        mcentral_release_to_heap(h, d->span);
    }
}

void
tiny_drop_block(mheap *h, mcache *c)
{
    tiny_dropped d;
    if (c->tiny != 0 && drop_current(h, c, &d)) {
        tiny_free_dropped(h, &d);
    }
}

/* take_block makes slot `slot` of s, whose table is t, a tiny block whose
 * first object has size bytes, and returns its address.  The block
 * becomes c's current one if it has more room left than the current one
 * (Go's rule); the old one is dropped, and *d names it if it is to be
 * freed (d->span stays NULL otherwise).  Nothing here throws.  Inline
 * in tiny_new_block, the path of every other 8-byte allocation. */
static GA_ALWAYS_INLINE ga_addr
take_block(mheap *h, mcache *c, mspan *s, uint32_t *t, uint64_t slot,
           uint64_t size, tiny_dropped *d)
{
    ga_addr v = mspan_slot_addr(s, slot);
    c->local_requested += size;
    /* The old block is dropped before the new one is zeroed: the drop's
     * atomic waits for every store before it, and the zeroing store may
     * miss the cache. */
    bool replace = size < c->tinyoffset || c->tiny == 0;
    if (replace && c->tiny != 0 && !drop_current(h, c, d)) {
        d->span = NULL;
    }
    tiny_block b = tiny_block_at(s, t, slot);
    start_block(b, size, !replace);
    if (h->zero_memory) {
        memset((void *)(uintptr_t)v, 0, TINY_SIZE);
    }
    if (replace) {
        c->tiny = v;
        c->tiny_marks = b.marks;
        c->tiny_span = s;
        c->tinyoffset = size;
    }
    return v;
}

/* tiny_alloc is the slow path of a new block: refilling the P's tiny
 * span, making its table.  0 when the heap cannot grow.  Runs inside a
 * protected call. */
static ga_addr
tiny_alloc(mheap *h, mcache *c, uint64_t size)
{
    mspan *s;
    uint64_t slot = mcache_next_free(h, c, TINY_SPAN_CLASS, &s);
    if (slot == NO_SLOT) {
        return 0;
    }
    uint32_t *t = tiny_table_make(h, c, s);
    tiny_dropped d = {NULL, 0};
    ga_addr v = take_block(h, c, s, t, slot, size, &d);
    if (d.span != NULL) {
        tiny_free_dropped(h, &d);
    }
    return v;
}

/* tiny_alloc_protected runs tiny_alloc inside a protected call. */
static GA_NOINLINE ga_status
tiny_alloc_protected(mheap *h, mcache *c, uint64_t size, ga_addr *out)
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
    c->refilled = false;
    ga_addr v = tiny_alloc(h, c, size);
    if (v != 0 && h->gc.enabled && c->refilled) {
        gc_after_slow_alloc(h);
    }
    protect_pop(&pf);
    *out = v;
    return v != 0 ? GA_OK : GA_ENOMEM;
}

/* free_dropped_protected frees, inside a protected call, a block that
 * its P dropped with nothing live in it. */
static GA_NOINLINE ga_status
free_dropped_protected(mheap *h, const tiny_dropped *d)
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
    tiny_free_dropped(h, d);
    protect_pop(&pf);
    return GA_OK;
}

GA_NOINLINE ga_status
tiny_new_block(mheap *h, mcache *c, uint64_t size, ga_addr *out)
{
    mspan *s = c->alloc[TINY_SPAN_CLASS];
    uint32_t *t = s->tiny_marks; /* this P's own span: its own write */
    uint64_t slot = GA_LIKELY(t != NULL) ? next_free_fast(s) : NO_SLOT;
    if (GA_UNLIKELY(slot == NO_SLOT)) {
        return tiny_alloc_protected(h, c, size, out);
    }
    tiny_dropped d = {NULL, 0};
    *out = take_block(h, c, s, t, slot, size, &d);
    return GA_LIKELY(d.span == NULL) ? GA_OK : free_dropped_protected(h, &d);
}

ga_status
tiny_free_locked(mheap *h, mspan *s, uint64_t i, uint64_t off, tiny_block b,
                 bool *to_heap)
{
    if (!tiny_started(b, off)) {
        return GA_ENOTOBJECT;
    }
    uint16_t f = __atomic_fetch_or(b.freed, (uint16_t)TINY_START(off),
                                   __ATOMIC_ACQ_REL);
    if ((f & TINY_START(off)) != 0) {
        return GA_EDOUBLEFREE;
    }
    /* After the drop the marks no longer change; before it this free
     * does not free the block, whatever they say. */
    uint32_t m = tiny_marks_load(b);
    uint32_t freed = f | TINY_START(off);
    uint64_t requested = tiny_size_at(m, off);
    mcentral *tc = &h->central[TINY_SPAN_CLASS];
    if (tiny_is_dropped(m, freed) && (m & ~freed & TINY_OFFSETS) == 0) {
        /* the block's free counts requested */
        mcentral_free_slot_locked(h, tc, s, i, requested, to_heap);
        return GA_OK;
    }
    tc->requested_freed += requested;
    return GA_OK;
}
