/* The tiny allocator.  See tiny.h.
 *
 * Go 1.13: src/runtime/malloc.go (mallocgc, the tiny branch).
 * Differs from Go: per-block live marks for explicit free.
 * Locking: the P's mcache; marks are atomic; see tiny.h.
 */
#include "tiny.h"

#include <string.h>

#include "malloc.h"
#include "mbitmap.h"

static uint64_t
tiny_align(uint64_t off, uint64_t size)
{
    if ((size & 7) == 0) {
        return ga_round_up(off, 8);
    }
    if ((size & 3) == 0) {
        return ga_round_up(off, 4);
    }
    if ((size & 1) == 0) {
        return ga_round_up(off, 2);
    }
    return off;
}

static uint64_t
slot_of(const mspan *s, ga_addr block)
{
    return (block - mspan_base(s)) / TINY_SIZE;
}

/* The marks of a block are set by the P packing into it, without a
 * lock, while frees on other threads clear marks of the same word under
 * the tiny class's mcentral lock: every access is atomic. */
static uint32_t
marks_load(const mspan *s, uint64_t i)
{
    return __atomic_load_n(&s->tiny_marks[i], __ATOMIC_RELAXED);
}

void
tiny_mark_new_block(mspan *s, ga_addr block, uint64_t size)
{
    uint64_t i = slot_of(s, block);
    __atomic_store_n(&s->tiny_marks[i], TINY_MARK_LIVE(0) | TINY_MARK_USED(0),
                     __ATOMIC_RELAXED);
    s->tiny_sizes[i * TINY_SIZE] = (uint8_t)size;
}

/* block_is_current: some P still packs into the block at addr.  The
 * owners change their tiny pointers without a lock (atomically); a block
 * once dropped never becomes current again until it is freed. */
static bool
block_is_current(const mheap *h, ga_addr block)
{
    for (int p = 0; p < h->nprocs; p++) {
        if (__atomic_load_n(&h->caches[p]->tiny, __ATOMIC_RELAXED) == block) {
            return true;
        }
    }
    return false;
}

static void
set_current_block(mcache *c, ga_addr block)
{
    __atomic_store_n(&c->tiny, block, __ATOMIC_RELAXED);
}

ga_addr
tiny_alloc(mheap *h, mcache *c, uint64_t size)
{
    uint64_t off = tiny_align(c->tinyoffset, size);
    if (off + size <= TINY_SIZE && c->tiny != 0) {
        mspan *s = c->tiny_span;
        uint64_t slot = slot_of(s, c->tiny);
        __atomic_fetch_or(&s->tiny_marks[slot],
                          TINY_MARK_LIVE(off) | TINY_MARK_USED(off),
                          __ATOMIC_RELAXED);
        s->tiny_sizes[slot * TINY_SIZE + off] = (uint8_t)size;
        c->tinyoffset = off + size;
        c->local_tinyallocs++;
        c->local_requested += size;
        return c->tiny + off;
    }
    /* A new 16-byte block. */
    mspan *s = c->alloc[TINY_SPAN_CLASS];
    uint64_t slot = next_free_fast(s);
    ga_addr v;
    if (slot != NO_SLOT) {
        v = mspan_slot_addr(s, slot);
    }
    else {
        v = mcache_next_free(h, c, TINY_SPAN_CLASS, &s);
        if (v == 0) {
            return 0;
        }
    }
    tiny_mark_new_block(s, v, size);
    c->local_requested += size;
    if (h->zero_memory) {
        memset((void *)(uintptr_t)v, 0, TINY_SIZE);
    }
    /* Keep whichever block has more room left. */
    if (size < c->tinyoffset || c->tiny == 0) {
        tiny_drop_block(h, c);
        c->tiny_span = s;
        c->tinyoffset = size;
        set_current_block(c, v);
    }
    return v;
}

/* free_block_locked frees the whole 16-byte slot i of s once none of its
 * objects is live and no P packs into it; requested is the size of the
 * tiny object whose free emptied it (0 when none did).  The caller holds
 * the tiny class's mcentral lock, under which both conditions change, so
 * exactly one of the racing callers frees the block.  Returns whether it
 * freed the block; *to_heap as for mcentral_free_slot_locked. */
static bool
free_block_locked(mheap *h, mspan *s, uint64_t i, uint64_t requested,
                  bool *to_heap)
{
    ga_addr block = mspan_base(s) + i * TINY_SIZE;
    if ((marks_load(s, i) & TINY_LIVE_MASK) != 0 || block_is_current(h, block)) {
        return false;
    }
    return mcentral_free_slot_locked(h, &h->central[TINY_SPAN_CLASS], s, i,
                                     requested, to_heap);
}

void
tiny_drop_block(mheap *h, mcache *c)
{
    ga_addr block = c->tiny;
    mspan *s = c->tiny_span;
    if (block == 0) {
        return;
    }
    mcentral *tc = &h->central[TINY_SPAN_CLASS];
    pthread_mutex_lock(&tc->lock);
    c->tiny_span = NULL;
    c->tinyoffset = 0;
    set_current_block(c, 0);
    bool to_heap = false;
    free_block_locked(h, s, slot_of(s, block), 0, &to_heap);
    pthread_mutex_unlock(&tc->lock);
    if (to_heap) {
        mcentral_release_to_heap(h, s, false);
    }
}

ga_status
tiny_free_locked(mheap *h, mspan *s, uint64_t i, uint64_t off, bool *to_heap)
{
    uint32_t m = __atomic_fetch_and(&s->tiny_marks[i], ~TINY_MARK_LIVE(off),
                                    __ATOMIC_RELAXED);
    if ((m & TINY_MARK_LIVE(off)) == 0) {
        return (m & TINY_MARK_USED(off)) ? GA_EDOUBLEFREE : GA_ENOTOBJECT;
    }
    uint64_t requested = s->tiny_sizes[i * TINY_SIZE + off];
    if ((m & ~TINY_MARK_LIVE(off) & TINY_LIVE_MASK) == 0 &&
        free_block_locked(h, s, i, requested, to_heap)) {
        return GA_OK; /* the block's free counted requested */
    }
    h->central[TINY_SPAN_CLASS].requested_freed += requested;
    return GA_OK;
}
