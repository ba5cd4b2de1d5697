/* The tiny allocator.  See malloc.c for the overview.
 *
 * Requests under 16 bytes without pointers share 16-byte blocks: each P
 * packs them into its current block (aligned to 8, 4 or 2 bytes by the
 * request size) and takes a new block from the 16-byte noscan class when
 * one does not fit.  16-byte noscan objects come from the same span class
 * (5) but are plain small objects.  goalloc remembers, per block, which
 * offsets started a tiny object, where each ended and which were freed,
 * so that a tiny object can be freed alone; the block itself is freed
 * when none of its objects is live and no P packs into it.
 * Go 1.13: src/runtime/malloc.go (mallocgc's tiny path, maxTinySize,
 *          tinySpanClass).
 * Differs from Go: explicit free of tiny objects (decisions §4).  The
 *          marks cost 8 bytes per slot of a span that has served a tiny
 *          block (a table made when it serves its first one; none for
 *          spans of 16-byte objects only), and a block's slot records
 *          requested size 0, which tells it from a 16-byte object.
 * Locking: the owning P packs into its block with no lock and no atomic
 *          read-modify-write (it alone writes the block's `marks` while
 *          it packs); frees take the tiny class's mcentral lock and set
 *          `freed` bits with an atomic or, and the P's drop of the block
 *          sets TINY_DROPPED in the same word, so that the drop and the
 *          frees are totally ordered and exactly one of them frees the
 *          block (see tiny.c).
 */
#ifndef GA_TINY_H
#define GA_TINY_H

#include "goalloc.h"
#include "mheap.h"

#define TINY_SPAN_CLASS ((span_class)(TINY_SIZE_CLASS << 1 | 1))
#define TINY_START(off) ((uint32_t)1 << (off))
#define TINY_END(last) ((uint32_t)1 << ((last) + 16))
#define TINY_OFFSETS 0xFFFFu
#define TINY_DROPPED ((uint32_t)1 << 16)

/* The marks of one 16-byte block (a slot of a span of the tiny class).
 *   marks  bits 0-15: the offsets that started a tiny object since the
 *          block was taken (offset 0 always); bits 16-31: the last byte
 *          of each of those objects.  Written by the P packing into the
 *          block only, with plain (relaxed atomic) loads and stores.
 *   freed  bits 0-15: the offsets whose object was freed; TINY_DROPPED:
 *          no P packs into the block any more.  Changed only by atomic
 *          or.
 * Live objects are marks & ~freed; the offsets a block ever used stay in
 * marks until the slot is handed out again, so a second free of a tiny
 * object is told from a free of a byte that never started one. */
typedef struct tiny_block {
    uint32_t marks;
    uint32_t freed;
} tiny_block;

/* tiny_align: the offset of a size-byte object at or after off (Go's
 * rule: 8-byte alignment for multiples of 8, then 4, then 2). */
static inline uint64_t
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

/* tiny_alloc_fast packs a size-byte (1..15) object into P c's current
 * block when it fits there, as mallocgc's tiny path does; 0 when it
 * does not (tiny_alloc then takes a new block).  No lock, no atomic
 * read-modify-write: only this P writes the block's marks. */
static inline ga_addr
tiny_alloc_fast(mcache *c, uint64_t size)
{
    uint64_t off = tiny_align(c->tinyoffset, size);
    if (off + size > TINY_SIZE || c->tiny == 0) {
        return 0;
    }
    tiny_block *b = c->tiny_marks;
    uint32_t m = __atomic_load_n(&b->marks, __ATOMIC_RELAXED);
    __atomic_store_n(&b->marks,
                     m | TINY_START(off) | TINY_END(off + size - 1),
                     __ATOMIC_RELAXED);
    c->tinyoffset = off + size;
    c->local_tinyallocs++;
    c->local_requested += size;
    return c->tiny + off;
}

/* tiny_blocks_of: span s's table of block marks, or NULL while s has
 * served no tiny block.  The caching P publishes it (release); frees on
 * other threads read it. */
static inline tiny_block *
tiny_blocks_of(const mspan *s)
{
    return __atomic_load_n(&s->tiny_blocks, __ATOMIC_ACQUIRE);
}

/* tiny_block_of: the marks of slot i of s if its last use was a tiny
 * block (requested size 0 in a span with a table), else NULL. */
static inline tiny_block *
tiny_block_of(const mspan *s, uint64_t i)
{
    tiny_block *t = tiny_blocks_of(s);
    if (t == NULL || mspan_req_load(s, i) != 0) {
        return NULL;
    }
    return &t[i];
}

/* tiny_live: the offsets of a block's live objects. */
static inline uint32_t
tiny_live(const tiny_block *b)
{
    uint32_t m = __atomic_load_n(&b->marks, __ATOMIC_RELAXED);
    uint32_t f = __atomic_load_n(&b->freed, __ATOMIC_RELAXED);
    return m & ~f & TINY_OFFSETS;
}

/* tiny_started: a tiny object started at offset off of block b since
 * the block was taken (it may have been freed since). */
static inline bool
tiny_started(const tiny_block *b, uint64_t off)
{
    return (__atomic_load_n(&b->marks, __ATOMIC_RELAXED) & TINY_START(off)) != 0;
}

/* tiny_size_at: the requested size of the object that started at off,
 * from a block's marks (its first end at or after off). */
static inline uint64_t
tiny_size_at(uint32_t marks, uint64_t off)
{
    uint32_t ends = (marks >> 16) >> off;
    return ends == 0 ? 0 : (uint64_t)__builtin_ctz(ends) + 1;
}

/* A block a P dropped with nothing live in it, for the P to free. */
typedef struct tiny_dropped {
    mspan *span;
    uint64_t slot;
} tiny_dropped;

/* tiny_new_block allocates a size-byte tiny object in a new block, when
 * tiny_alloc_fast found no room in the current one.  A block from the
 * allocCache of the P's tiny span, if the span has its table, needs no
 * protected call (nothing there throws, as in Go's nextFreeFast); the
 * rest goes to malloc_slow, and a dropped block with nothing live in it
 * is freed inside a protected call. */
ga_status tiny_new_block(mheap *h, mcache *c, uint64_t size, ga_addr *out);

/* tiny_alloc is the slow path of a new block: refilling the P's tiny
 * span, making its table.  0 when the heap cannot grow.  Runs inside a
 * protected call. */
ga_addr tiny_alloc(mheap *h, mcache *c, uint64_t size);

/* tiny_free_dropped frees a block the P dropped with nothing live in
 * it; may throw (its span may go home). */
void tiny_free_dropped(mheap *h, const tiny_dropped *d);

/* tiny_drop_block stops packing into c's current block, freeing it if
 * none of its objects is live.  May throw. */
void tiny_drop_block(mheap *h, mcache *c);

/* tiny_free_locked frees the object at offset off of tiny block b, slot
 * i of s, whose slot is live; the caller holds the tiny class's mcentral
 * lock.  *to_heap as for mcentral_free_slot_locked. */
ga_status tiny_free_locked(mheap *h, mspan *s, uint64_t i, uint64_t off,
                           tiny_block *b, bool *to_heap);

/* tiny_blocks_free releases span s's table (with its bitmaps). */
void tiny_blocks_free(mheap *h, mspan *s);

#endif
