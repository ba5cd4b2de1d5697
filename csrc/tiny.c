/* The tiny allocator.  See tiny.h.
 *
 * Go 1.13: src/runtime/malloc.go (mallocgc, the tiny branch).
 * Differs from Go: per-block live marks for explicit free.
 * Locking: the P's mcache; see tiny.h.
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

/* block_is_current: some P still packs into the block at addr. */
static bool
block_is_current(const mheap *h, ga_addr block)
{
    for (int p = 0; p < h->nprocs; p++) {
        if (h->caches[p]->tiny == block) {
            return true;
        }
    }
    return false;
}

static bool
span_is_cached(const mheap *h, const mspan *s)
{
    return s->sweepgen == h->sweepgen + 3;
}

ga_addr
tiny_alloc(mheap *h, mcache *c, uint64_t size)
{
    uint64_t off = tiny_align(c->tinyoffset, size);
    if (off + size <= TINY_SIZE && c->tiny != 0) {
        mspan *s = c->tiny_span;
        uint64_t slot = slot_of(s, c->tiny);
        s->tiny_marks[slot] |= TINY_MARK_LIVE(off) | TINY_MARK_USED(off);
        s->tiny_sizes[slot * TINY_SIZE + off] = (uint8_t)size;
        c->tinyoffset = off + size;
        c->local_tinyallocs++;
        c->local_requested += size;
        return c->tiny + off;
    }
    /* A new 16-byte block. */
    mspan *s = c->alloc[TINY_SPAN_CLASS];
    ga_addr v = next_free_fast(s);
    if (v == 0) {
        v = mcache_next_free(h, c, TINY_SPAN_CLASS, &s);
        if (v == 0) {
            return 0;
        }
    }
    s->tiny_marks[slot_of(s, v)] = TINY_MARK_LIVE(0) | TINY_MARK_USED(0);
    s->tiny_sizes[slot_of(s, v) * TINY_SIZE] = (uint8_t)size;
    c->local_requested += size;
    if (h->mem.kind == GA_BACKING_OS) {
        memset((void *)(uintptr_t)v, 0, TINY_SIZE);
    }
    /* Keep whichever block has more room left. */
    if (size < c->tinyoffset || c->tiny == 0) {
        tiny_drop_block(h, c);
        c->tiny = v;
        c->tiny_span = s;
        c->tinyoffset = size;
    }
    return v;
}

/* free_block frees the whole 16-byte slot i of s; requested is the size
 * of the tiny object whose free emptied it (0 when none did). */
static void
free_block(mheap *h, mspan *s, uint64_t i, uint64_t requested)
{
    mcentral_free_slot(h, &h->central[TINY_SPAN_CLASS], s, i,
                       span_is_cached(h, s), requested);
}

void
tiny_drop_block(mheap *h, mcache *c)
{
    ga_addr block = c->tiny;
    mspan *s = c->tiny_span;
    c->tiny = 0;
    c->tinyoffset = 0;
    c->tiny_span = NULL;
    if (block == 0) {
        return;
    }
    uint64_t i = slot_of(s, block);
    if ((s->tiny_marks[i] & TINY_LIVE_MASK) == 0 &&
        !block_is_current(h, block)) {
        free_block(h, s, i, 0);
    }
}

ga_status
tiny_free(mheap *h, mspan *s, uint64_t i, uint64_t off)
{
    uint32_t m = s->tiny_marks[i];
    if ((m & TINY_MARK_LIVE(off)) == 0) {
        return (m & TINY_MARK_USED(off)) ? GA_EDOUBLEFREE : GA_ENOTOBJECT;
    }
    m &= ~TINY_MARK_LIVE(off);
    s->tiny_marks[i] = m;
    uint64_t requested = s->tiny_sizes[i * TINY_SIZE + off];
    ga_addr block = mspan_base(s) + i * TINY_SIZE;
    if ((m & TINY_LIVE_MASK) == 0 && !block_is_current(h, block)) {
        free_block(h, s, i, requested);
    }
    else {
        mcentral *c = &h->central[TINY_SPAN_CLASS];
        pthread_mutex_lock(&c->lock);
        c->requested_freed += requested;
        pthread_mutex_unlock(&c->lock);
    }
    return GA_OK;
}
