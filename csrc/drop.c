/* Dropping an object (GC mode).  See mgc.h.
 *
 * In a Go program an object dies when the program loses its last
 * reference to it; nothing happens then: the next cycle's mark does not
 * reach it, and a sweep frees its slot.  ga_drop is that moment made
 * explicit.  It tells every other address apart as ga_free does: not in
 * the heap, not the start of an object, dropped already (or collected
 * since).  A dropped object is remembered in its span's dropped bits
 * (the explicit-free mode's freed_bits, which GC mode does not use for
 * freeing), a large object in its span, a tiny object at its offset of
 * the block's marks; the mark reads them (mgcmark.c).
 * Go 1.13: none: Go's program drops references by overwriting them.
 * Differs from Go: all of it (design §14.1).
 * Locking: one thread drives a GC-mode heap (design §14.8), so the
 *          common drop takes no lock; the others take the heap lock and
 *          the class's mcentral lock, as a free would.
 */
#include "goalloc.h"

#include "internal.h"
#include "mbitmap.h"
#include "mheap.h"
#include "tiny.h"

/* drop_small_locked drops addr in small span s; s's mcentral lock is
 * held. */
static ga_status
drop_small_locked(mspan *s, ga_addr addr)
{
    if (s->alloc_bits == NULL) {
        return GA_ENOTOBJECT; /* a span being made: nothing in it yet */
    }
    uint64_t i = mspan_obj_index(s, addr);
    uint64_t off = addr - mspan_slot_addr(s, i);
    if (!mspan_is_allocated(s, i)) {
        return dead_slot_status(s, i, off);
    }
    tiny_block b = tiny_block_of(s, i);
    if (b.marks != NULL) {
        if (!tiny_started(b, off)) {
            return GA_ENOTOBJECT;
        }
        uint16_t f = __atomic_fetch_or(b.freed, (uint16_t)TINY_START(off),
                                       __ATOMIC_RELAXED);
        return (f & TINY_START(off)) != 0 ? GA_EDOUBLEFREE : GA_OK;
    }
    if (off != 0) {
        return GA_ENOTOBJECT;
    }
    return bit_test_and_set(s->freed_bits, i) ? GA_EDOUBLEFREE : GA_OK;
}

/* drop_fast drops the common case without a lock: a plain object (not
 * in a span with tiny blocks) that starts at a slot of an in-use small
 * span and is allocated and not dropped.  A GC-mode heap has one caller
 * at a time (design §14.8), so nothing moves under it; any other address
 * takes the locked path, which tells them all apart (false here). */
static inline bool
drop_fast(mheap *h, ga_addr addr)
{
    mspan *s = span_of(h, addr);
    if (s == NULL || s->state != MSPAN_IN_USE ||
        span_class_sizeclass(s->spanclass) == 0 || s->alloc_bits == NULL ||
        s->tiny_marks != NULL || addr < mspan_base(s) || addr >= s->limit) {
        return false;
    }
    uint64_t i = mspan_obj_index(s, addr);
    if (mspan_slot_addr(s, i) != addr || !mspan_is_allocated(s, i) ||
        bit_get(s->freed_bits, i)) {
        return false;
    }
    bit_set(s->freed_bits, i);
    return true;
}

ga_status
ga_drop(ga_heap *h, ga_addr addr)
{
    if (heap_poisoned(h) != NULL) {
        return GA_EPOISONED;
    }
    if (!h->gc.enabled) {
        return GA_EUNSUPPORTED;
    }
    if (addr == h->zerobase) {
        return GA_ENOTOBJECT; /* every 0-byte allocation's address */
    }
    if (GA_LIKELY(drop_fast(h, addr))) {
        return GA_OK;
    }
    mspan *large, *small;
    mheap_lock(h);
    ga_status st = classify_locked(h, addr, &large, &small);
    if (large != NULL) {
        st = large->dropped ? GA_EDOUBLEFREE : GA_OK;
        large->dropped = true; /* the mark skips it (mgcmark.c) */
    }
    else if (small != NULL) {
        mcentral *c = &h->central[small->spanclass];
        pthread_mutex_lock(&c->lock);
        st = drop_small_locked(small, addr);
        pthread_mutex_unlock(&c->lock);
    }
    mheap_unlock(h);
    return st;
}
