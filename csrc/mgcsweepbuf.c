/* The sweep stacks: Go's gcSweepBuf.  See mgc.h.
 *
 * Every in-use span is on one of two LIFO stacks, sweepSpans[2]: the
 * spans swept (or made) in this cycle, and the ones the last cycle left
 * to sweep.  A cycle's end swaps their roles (sweepgen += 2); sweepone
 * pops the unswept stack.  Go keeps blocks of 512 span pointers found
 * through a spine of block pointers, all persistentalloc'd to gc_sys and
 * never freed; goalloc links the spans themselves (sweep_link) and
 * charges gc_sys for the blocks and spines Go would have made.
 * Go 1.13: src/runtime/mgcsweepbuf.go (gcSweepBuf, push, pop),
 *          mheap.go (sweepSpans, alloc_m's push).
 * Differs from Go: the stack is intrusive; entries are not removed when
 *          a span is swept by another path, as in Go, so pops skip
 *          stale ones.  Without a GC (explicit-free mode) only the
 *          accounting of alloc_m's pushes is kept: nothing pops.
 * Locking: the heap lock (push); pop runs in GC mode, one thread.
 */
#include "mheap.h"

/* Go's gcSweepBuf geometry (mgcsweepbuf.go). */
#define GC_SWEEP_BLOCK_ENTRIES 512
#define GC_SWEEP_BUF_INIT_SPINE_CAP 256

gc_sweep_buf *
sweep_buf_of(mheap *h, bool unswept)
{
    unsigned swept = (h->sweepgen / 2) % 2;
    return &h->gc.sweep_spans[unswept ? 1 - swept : swept];
}

/* charge_push accounts one push at b's index: the first push into every
 * block of 512 takes a new block, and a full spine a new one of twice
 * the size (the old one leaks), persistentalloc'd at cache-line
 * alignment to gc_sys.  Blocks stay in the spine once made. */
static void
charge_push(mheap *h, gc_sweep_buf *b)
{
    uint64_t ptr = h->plat.ptr_size;
    uint64_t align = h->plat.cache_line_size;
    uint64_t top = b->index++ / GC_SWEEP_BLOCK_ENTRIES;
    if (top < b->spine_len) {
        return;
    }
    if (b->spine_len == b->spine_cap) {
        uint64_t cap = b->spine_cap == 0 ? GC_SWEEP_BUF_INIT_SPINE_CAP
                                         : 2 * b->spine_cap;
        persistent_alloc_charge(&h->pa, cap * ptr, align, &h->stats.gc_sys);
        b->spine_cap = cap;
    }
    persistent_alloc_charge(&h->pa, GC_SWEEP_BLOCK_ENTRIES * ptr, align,
                            &h->stats.gc_sys);
    b->spine_len++;
}

void
sweep_buf_push_locked(mheap *h, mspan *s)
{
    GA_ASSERT(mheap_owned(h));
    gc_sweep_buf *b = sweep_buf_of(h, false);
    charge_push(h, b);
    if (h->gc.enabled) {
        unsigned which = (unsigned)(b - h->gc.sweep_spans);
        s->sweep_link[which] = b->top;
        b->top = s;
    }
}

mspan *
sweep_buf_pop(mheap *h)
{
    gc_sweep_buf *b = sweep_buf_of(h, true);
    mspan *s = b->top;
    if (s != NULL) {
        unsigned which = (unsigned)(b - h->gc.sweep_spans);
        b->top = s->sweep_link[which];
        s->sweep_link[which] = NULL;
        b->index--;
    }
    return s;
}
