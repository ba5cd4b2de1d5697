/* The tiny allocator.  See malloc.c for the overview.
 *
 * Requests under 16 bytes without pointers share 16-byte blocks: each P
 * packs them into its current block (aligned to 8, 4 or 2 bytes by the
 * request size) and takes a new block from the 16-byte noscan class when
 * one does not fit.  goalloc remembers, per block, which offsets start a
 * live tiny object (and which ever did), so a tiny object can be freed
 * alone; the block itself is freed when none of its objects is live and
 * no P is packing into it.
 * Go 1.13: src/runtime/malloc.go (mallocgc's tiny path, maxTinySize,
 *          tinySpanClass).
 * Differs from Go: explicit free of tiny objects (decisions §4).
 * Locking: the owning P packs into its block without a lock; dropping a
 *          block and every free take the tiny class's mcentral lock, and
 *          marks are read and written atomically.
 */
#ifndef GA_TINY_H
#define GA_TINY_H

#include "goalloc.h"
#include "mheap.h"

#define TINY_SPAN_CLASS ((span_class)(TINY_SIZE_CLASS << 1 | 1))
#define TINY_MARK_LIVE(off) ((uint32_t)1 << (off))
#define TINY_MARK_USED(off) ((uint32_t)1 << ((off) + 16))
#define TINY_LIVE_MASK 0xFFFFu

/* tiny_alloc returns a tiny object of size bytes (1..15) for P c, or 0
 * when the heap cannot grow. */
ga_addr tiny_alloc(mheap *h, mcache *c, uint64_t size);

/* tiny_drop_block stops packing into c's current block, freeing it if
 * none of its objects is live. */
void tiny_drop_block(mheap *h, mcache *c);

/* tiny_mark_new_block records a fresh block at block whose first object
 * (offset 0) has size bytes. */
void tiny_mark_new_block(mspan *s, ga_addr block, uint64_t size);

/* tiny_free_locked frees the object at offset off of slot i of the tiny
 * span class span s, whose slot is live; the caller holds the tiny
 * class's mcentral lock.  *to_heap as for mcentral_free_slot_locked. */
ga_status tiny_free_locked(mheap *h, mspan *s, uint64_t i, uint64_t off,
                           bool *to_heap);

#endif
