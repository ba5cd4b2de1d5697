/* Span bitmaps: allocBits, allocCache and the free-slot search.
 * See malloc.c for the overview.
 *
 * A small span finds free slots through allocBits (1 = allocated as of the
 * last sweep) and allocCache, the complement of the 64 allocBits from
 * freeindex on, so that one count-trailing-zeros finds the next free
 * slot.  Allocation never writes allocBits: it only advances freeindex.
 * goalloc adds freed_bits (explicit frees since the last sweep) and
 * used_bits (slots handed out earlier), and sweeps a span eagerly when it
 * leaves or joins an mcache: allocBits := allocated and not freed.
 * Go 1.13: src/runtime/mbitmap.go (nextFreeIndex, refillAllocCache,
 *          initSpan, countAlloc), mheap.go (newMarkBits, gcBits arenas),
 *          mgcsweep.go ((*mspan).sweep).
 * Differs from Go: bitmaps are per span (calloc) and freed with the span;
 *          gc_sys is charged as Go's never-recycled gcBits arenas would be
 *          (65,520 bytes of bits an arena on 64-bit ports, 65,528 on
 *          32-bit; a mark and an alloc bitmap per small or large span,
 *          two allocations); a large span has no bitmap block at all.
 * Locking: the span's owner (an mcache, or its mcentral's lock); a free
 *          on another thread sets freed_bits atomically under the
 *          mcentral lock, which every sweep holds.
 */
#ifndef GA_MBITMAP_H
#define GA_MBITMAP_H

#include "ga.h"
#include "mspan.h"

struct mheap;

#define GC_BITS_CHUNK_BYTES 65536

/* Bytes of one bitmap for n slots: whole 64-bit words, so that
 * mspan_refill_alloc_cache may always read 8 bytes. */
static inline uint64_t
gc_bits_bytes(uint64_t nelems)
{
    return (nelems + 63) / 64 * 8;
}

/* mspan_req_len: the requested sizes a span of class spc keeps: one per
 * slot, but one for the tiny class, whose 16-byte objects all asked for
 * 16 bytes (its tiny blocks keep theirs in the tiny marks, tiny.c); four
 * there, to keep the block's size a multiple of 8. */
static inline uint64_t
mspan_req_len(span_class spc, uint64_t nelems)
{
    return spc == make_span_class(TINY_SIZE_CLASS, true) ? 4 : nelems;
}

/* mspan_bits_bytes: the block of one span of class spc and n slots: its
 * bitmaps (alloc, freed, used) and its requested sizes (16 bits each). */
static inline size_t
mspan_bits_bytes(span_class spc, uint64_t nelems)
{
    return (size_t)(3 * gc_bits_bytes(nelems)) +
           (size_t)mspan_req_len(spc, nelems) * sizeof(uint16_t);
}

/* The tiny class's block marks (tiny.h) are span metadata too: a table
 * of TINY_TABLE_BYTES_PER_SLOT bytes a slot, which tiny.c makes when the
 * span serves its first tiny block and mspan_free_bits frees with the
 * bitmaps. */
#define TINY_TABLE_BYTES_PER_SLOT (sizeof(uint32_t) + sizeof(uint16_t))

static inline size_t
tiny_table_bytes(const mspan *s)
{
    return (size_t)s->nelems * TINY_TABLE_BYTES_PER_SLOT;
}

static inline unsigned
ctz64(uint64_t x)
{
    return x == 0 ? 64u : (unsigned)__builtin_ctzll(x);
}

/* shr64 is Go's >>: shifting by 64 or more gives 0. */
static inline uint64_t
shr64(uint64_t x, unsigned n)
{
    return n >= 64 ? 0 : x >> n;
}

static inline bool
bit_get(const uint8_t *b, uint64_t i)
{
    return (b[i / 8] >> (i % 8)) & 1;
}

static inline void
bit_set(uint8_t *b, uint64_t i)
{
    b[i / 8] = (uint8_t)(b[i / 8] | (1u << (i % 8)));
}

/* freed_bits are set by frees on several threads at once (the caching P
 * without a lock, other threads under the mcentral lock): an atomic
 * test-and-set, so that of two racing frees of one object exactly one
 * wins and the other is a double free.  Bitmaps are whole, 8-byte
 * aligned 64-bit words (gc_bits_bytes, calloc), and on a little-endian
 * machine bit i of byte i/8 is bit i%64 of word i/64: there the test
 * and set is one word-wide `lock bts`, where a byte-wide one would be a
 * compare-and-swap loop. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
typedef uint64_t __attribute__((may_alias)) bit_word;

static inline bool
bit_test_and_set(uint8_t *b, uint64_t i)
{
    uint64_t m = (uint64_t)1 << (i % 64);
    bit_word *w = (bit_word *)(void *)b + i / 64;
    return (__atomic_fetch_or(w, m, __ATOMIC_RELAXED) & m) != 0;
}

static inline bool
bit_get_atomic(const uint8_t *b, uint64_t i)
{
    const bit_word *w = (const bit_word *)(const void *)b + i / 64;
    return (__atomic_load_n(w, __ATOMIC_RELAXED) >> (i % 64)) & 1;
}
#else
static inline bool
bit_test_and_set(uint8_t *b, uint64_t i)
{
    uint8_t m = (uint8_t)(1u << (i % 8));
    return (__atomic_fetch_or(&b[i / 8], m, __ATOMIC_RELAXED) & m) != 0;
}

static inline bool
bit_get_atomic(const uint8_t *b, uint64_t i)
{
    return (__atomic_load_n(&b[i / 8], __ATOMIC_RELAXED) >> (i % 8)) & 1;
}
#endif

static inline uint64_t
load64_le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

static inline void
store64_le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* mspan_refill_alloc_cache loads ~allocBits[which_byte .. +8]. */
static inline void
mspan_refill_alloc_cache(mspan *s, uint64_t which_byte)
{
    s->alloc_cache = ~load64_le(s->alloc_bits + which_byte);
}

/* mspan_obj_index is Go's objIndex: the slot holding p, by div magic. */
static inline uint64_t
mspan_obj_index(const mspan *s, ga_addr p)
{
    uint64_t off = p - mspan_base(s);
    if (s->base_mask != 0) {
        return off >> s->div_shift;
    }
    return ((off >> s->div_shift) * s->div_mul) >> s->div_shift2;
}

/* mspan_is_allocated: slot i was handed out and not swept away (Go's
 * view: i < freeindex or allocBits[i]). */
static inline bool
mspan_is_allocated(const mspan *s, uint64_t i)
{
    return i < mspan_freeindex_load(s) || bit_get(s->alloc_bits, i);
}

/* mspan_init_bits is initSpan for a small span of known elemsize: slot
 * count, fresh zeroed bitmaps (with mark bits when gc), freeindex 0 and
 * a full allocCache. */
void mspan_init_bits(mspan *s, uint8_t *bits, bool gc);
/* mspan_block_bytes: the bytes of the block of a span of class spc with
 * nelems slots on heap h: mspan_bits_bytes, plus mark bits in GC
 * mode. */
size_t mspan_block_bytes(const struct mheap *h, span_class spc,
                         uint64_t nelems);
/* mspan_new_bits allocates the zeroed block mspan_init_bits takes for an
 * npages span of class spc, before the span exists (so that running out
 * of memory refuses the allocation with nothing changed); NULL when the
 * process is out of memory.  mspan_charge_bits charges it once the span
 * is made: gc_sys for Go's part of it (alloc and mark bits) and
 * span_meta_bytes for all of it. */
uint8_t *mspan_new_bits(struct mheap *h, span_class spc, uint64_t npages);
void mspan_charge_bits(struct mheap *h, const mspan *s);
/* mspan_charge_gc_bits accounts what initSpan takes from the gcBits
 * arenas for a span of nelems slots (small or large): a mark and an
 * alloc bitmap of gc_bits_bytes(nelems) each, charging gc_sys for every
 * fresh 64 KiB arena. */
void mspan_charge_gc_bits(struct mheap *h, uint64_t nelems);
/* mspan_charge_mark_bits accounts a sweep's newMarkBits for a span of
 * nelems slots; gc_bits_next_epoch is nextMarkBitArenaEpoch (each
 * cycle's start): the arenas of two cycles ago become free for reuse. */
void mspan_charge_mark_bits(struct mheap *h, uint64_t nelems);
void gc_bits_next_epoch(struct mheap *h);
/* mspan_free_bits releases the block, and the span's tiny marks table
 * if it has one. */
void mspan_free_bits(struct mheap *h, mspan *s);

/* mspan_next_free_index is Go's nextFreeIndex: the next free slot at or
 * after freeindex (advancing it), or nelems when there is none. */
uint64_t mspan_next_free_index(mspan *s);

/* mspan_allocated_word is word w (slots 64w..) of Go's allocated view:
 * every slot below freeindex, plus allocBits, limited to nelems. */
uint64_t mspan_allocated_word(const mspan *s, uint64_t w);

/* mspan_count_allocated counts slots allocated in Go's view. */
uint64_t mspan_count_allocated(const mspan *s);

/* mspan_sweep makes the slots freed since the last sweep reusable:
 * allocBits := allocated and not freed, freeindex 0, allocCache from
 * slot 0.  Returns the number of slots it freed. */
uint64_t mspan_sweep(mspan *s);

/* mspan_gc_sweep_bits is the bitmap half of (*mspan).sweep in GC mode:
 * allocBits := gcmarkBits, zeroed gcmarkBits, freeindex 0, allocCache
 * from slot 0; drops of the objects it frees are forgotten and the slots
 * handed out remembered (used_bits).  Returns the objects marked, the
 * span's new allocCount. */
uint64_t mspan_gc_sweep_bits(mspan *s);

/* mspan_check_bits checks the bitmap invariants of a small in-use span
 * (design §11.4); false + message if broken. */
bool mspan_check_bits(const mspan *s, char *msg, size_t msglen);

#endif
