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
 * Differs from Go: explicit free of tiny objects (design §6.4).  The
 *          marks cost 6 bytes per slot of a span that has served a tiny
 *          block (a table made when it serves its first one; none for
 *          spans of 16-byte objects only); a slot whose marks are not 0
 *          is a tiny block (a 16-byte object clears them).
 * Locking: the owning P packs into its block with no lock and no atomic
 *          read-modify-write (it alone writes a block's marks); frees
 *          take the tiny class's mcentral lock and set their bit of the
 *          block's freed word with an atomic or, and the P's drop of the
 *          block sets that word's spare bits with an atomic add, so that
 *          the drop and the frees are totally ordered and exactly one of
 *          them frees the block (see tiny.c).
 */
#ifndef GA_TINY_H
#define GA_TINY_H

#include "arith.h"
#include "goalloc.h"
#include "mbitmap.h"
#include "mheap.h"

#define TINY_SPAN_CLASS ((span_class)(TINY_SIZE_CLASS << 1 | 1))
#define TINY_OFFSETS 0xFFFFu
#define TINY_START(off) ((uint32_t)1 << (off))
/* The end of an object on the block's last byte is not recorded (an
 * object with no end mark after its start ends there), which frees bit
 * 31 for TINY_FULL_DROPPED. */
#define TINY_END(last) (((uint32_t)1 << ((last) + 16)) & TINY_ENDS)
#define TINY_ENDS 0x7FFF0000u
#define TINY_FULL_DROPPED ((uint32_t)1 << 31)

/* The marks of one 16-byte block (a slot of a span of the tiny class),
 * in two words of the span's table:
 *   marks  bits 0-15: the offsets that started a tiny object since the
 *          block was taken (offset 0 always); bits 16-30: the last byte
 *          of each of those objects but the one ending on byte 15; bit
 *          31: TINY_FULL_DROPPED.  Written by the P packing into the
 *          block only (plain, relaxed atomic, loads and stores), but for
 *          TINY_FULL_DROPPED, written under the tiny class's mcentral
 *          lock.
 *   freed  the offsets whose object was freed, and the drop: when no P
 *          packs into the block any more its bits at offsets that started
 *          no object are set (TINY_FULL_DROPPED instead when every offset
 *          started one: sixteen 1-byte objects).  Changed by atomic
 *          read-modify-write only.
 * Live objects are marks & ~freed at the started offsets; the offsets a
 * block ever used stay marked until the slot is handed out again, so a
 * second free of a tiny object is told from a free of a byte that never
 * started one. */
typedef struct tiny_block {
    uint32_t *marks;
    uint16_t *freed;
} tiny_block;

/* tiny_align: the offset of a size-byte object at or after off (Go's
 * rule: 8-byte alignment for multiples of 8, then 4, then 2). */
static inline uint64_t
tiny_align(uint64_t off, uint64_t size)
{
    if ((size & 7) == 0) {
        return round_up(off, 8);
    }
    if ((size & 3) == 0) {
        return round_up(off, 4);
    }
    if ((size & 1) == 0) {
        return round_up(off, 2);
    }
    return off;
}

/* tiny_alloc_fast packs a size-byte (1..15) object into P c's current
 * block when it fits there, as mallocgc's tiny path does; 0 when it
 * does not (tiny_new_block then takes a new block).  No lock, no atomic
 * read-modify-write: only this P writes the block's marks. */
static inline ga_addr
tiny_alloc_fast(mcache *c, uint64_t size)
{
    GA_ASSERT(size > 0 && size < TINY_SIZE);
    uint64_t off = tiny_align(c->tinyoffset, size);
    if (off + size > TINY_SIZE || c->tiny == 0) {
        return 0;
    }
    uint32_t *marks = c->tiny_marks;
    uint32_t m = __atomic_load_n(marks, __ATOMIC_RELAXED);
    __atomic_store_n(marks, m | TINY_START(off) | TINY_END(off + size - 1),
                     __ATOMIC_RELAXED);
    c->tinyoffset = off + size;
    c->local_tinyallocs++;
    c->local_requested += size;
    return c->tiny + off;
}

/* tiny_table_of: span s's table of block marks (marks[nelems], then
 * freed[nelems]), or NULL while s has served no tiny block.  The caching
 * P publishes it (release); frees on other threads read it. */
static inline uint32_t *
tiny_table_of(const mspan *s)
{
    return __atomic_load_n(&s->tiny_marks, __ATOMIC_ACQUIRE);
}

/* tiny_block_at: the marks of slot i in table t of s. */
static inline tiny_block
tiny_block_at(const mspan *s, uint32_t *t, uint64_t i)
{
    return (tiny_block){&t[i], (uint16_t *)(void *)(t + s->nelems) + i};
}

/* tiny_block_of: the marks of slot i of s if its last use was a tiny
 * block (its marks are not 0: offset 0 always starts an object, and a
 * 16-byte object clears them); .marks NULL if not. */
static inline tiny_block
tiny_block_of(const mspan *s, uint64_t i)
{
    uint32_t *t = tiny_table_of(s);
    if (t == NULL || __atomic_load_n(&t[i], __ATOMIC_RELAXED) == 0) {
        return (tiny_block){NULL, NULL};
    }
    return tiny_block_at(s, t, i);
}

/* tiny_slot_clear: slot i of s becomes a 16-byte object: it forgets the
 * marks of the tiny block it may have been.  The caching P's own span. */
static inline void
tiny_slot_clear(mspan *s, uint64_t i)
{
    tiny_block b = tiny_block_at(s, s->tiny_marks, i);
    __atomic_store_n(b.marks, 0, __ATOMIC_RELAXED);
    __atomic_store_n(b.freed, 0, __ATOMIC_RELAXED);
}

static inline uint32_t
tiny_marks_load(tiny_block b)
{
    return __atomic_load_n(b.marks, __ATOMIC_RELAXED);
}

static inline uint32_t
tiny_freed_load(tiny_block b)
{
    return __atomic_load_n(b.freed, __ATOMIC_RELAXED);
}

/* tiny_is_dropped: no P packs into the block whose words are m and f. */
static inline bool
tiny_is_dropped(uint32_t m, uint32_t f)
{
    return (f & ~m & TINY_OFFSETS) != 0 || (m & TINY_FULL_DROPPED) != 0;
}

/* tiny_live: the offsets of a block's live objects. */
static inline uint32_t
tiny_live(tiny_block b)
{
    return tiny_marks_load(b) & ~tiny_freed_load(b) & TINY_OFFSETS;
}

/* tiny_started: a tiny object started at offset off of block b since
 * the block was taken (it may have been freed since). */
static inline bool
tiny_started(tiny_block b, uint64_t off)
{
    return (tiny_marks_load(b) & TINY_START(off)) != 0;
}

/* tiny_size_at: the requested size of the object that started at off,
 * from a block's marks: up to its first end mark, else to byte 15. */
static inline uint64_t
tiny_size_at(uint32_t marks, uint64_t off)
{
    uint32_t ends = ((marks & TINY_ENDS) >> 16) >> off;
    return ends == 0 ? TINY_SIZE - off : (uint64_t)__builtin_ctz(ends) + 1;
}

/* A block a P dropped with nothing live in it, for the P to free. */
typedef struct tiny_dropped {
    mspan *span;
    uint64_t slot;
} tiny_dropped;

/* tiny_new_block allocates a size-byte tiny object in a new block, when
 * tiny_alloc_fast found no room in the current one.  A block from the
 * allocCache of the P's tiny span, if the span has its table, needs no
 * protected call (nothing there throws, as in Go's nextFreeFast); a
 * refill runs in one, and so does the free of a dropped block with
 * nothing live in it. */
ga_status tiny_new_block(mheap *h, mcache *c, uint64_t size, ga_addr *out);

/* tiny_drop_block stops packing into c's current block, freeing it if
 * none of its objects is live.  May throw. */
void tiny_drop_block(mheap *h, mcache *c);

/* tiny_free_locked frees the object at offset off of tiny block b, slot
 * i of s, whose slot is live; the caller holds the tiny class's mcentral
 * lock.  *to_heap as for mcentral_free_slot_locked. */
ga_status tiny_free_locked(mheap *h, mspan *s, uint64_t i, uint64_t off,
                           tiny_block b, bool *to_heap);

#endif
