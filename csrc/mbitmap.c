/* Span bitmaps: allocBits, allocCache and the free-slot search.
 * See mbitmap.h.
 *
 * Go 1.13: src/runtime/mbitmap.go (nextFreeIndex, initSpan), mheap.go
 *          (newAllocBits, newMarkBits), mgcsweep.go (sweep).
 * Differs from Go: see mbitmap.h.
 * Locking: the span's owner; mspan_sweep also holds the mcentral lock.
 */
#include "mbitmap.h"

#include <stdio.h>
#include <stdlib.h>

#include "mheap.h"
#include "sizeclasses.h"

/* gc_bits_arena_bytes: the bits one gcBits arena holds, gcBitsChunkBytes
 * less its header (free, next: two words). */
static uint64_t
gc_bits_arena_bytes(const mheap *h)
{
    return GC_BITS_CHUNK_BYTES - 2 * (uint64_t)h->plat.ptr_size;
}

/* new_gc_bits_locked accounts newMarkBits (newAllocBits is the same): n
 * bytes bumped from the newest gcBits arena of this epoch ("next"), or
 * from a new one when they do not fit: a free one if a cycle has freed
 * any, else a fresh 64 KiB sysAlloc'd to gc_sys; the old arena's tail is
 * never used again.  Without cycles every arena stays in "next". */
static void
new_gc_bits_locked(mheap *h, uint64_t n)
{
    if (h->gcbits_left < n) {
        gc_bits_arenas *a = &h->gc.bits;
        if (a->free > 0) {
            a->free--;
        }
        else {
            h->gcbits_sys += GC_BITS_CHUNK_BYTES;
        }
        a->next++;
        h->gcbits_left = gc_bits_arena_bytes(h);
    }
    h->gcbits_left -= n;
}

void
gc_bits_next_epoch(mheap *h)
{
    gc_bits_arenas *a = &h->gc.bits;
    pthread_mutex_lock(&h->gcbits_lock);
    a->free += a->previous;
    a->previous = a->current;
    a->current = a->next;
    a->next = 0;
    h->gcbits_left = 0;
    pthread_mutex_unlock(&h->gcbits_lock);
}

void
mspan_charge_mark_bits(mheap *h, uint64_t nelems)
{
    pthread_mutex_lock(&h->gcbits_lock);
    new_gc_bits_locked(h, gc_bits_bytes(nelems));
    pthread_mutex_unlock(&h->gcbits_lock);
}

void
mspan_charge_gc_bits(mheap *h, uint64_t nelems)
{
    uint64_t n = gc_bits_bytes(nelems);
    /* initSpan: gcmarkBits, then allocBits, two allocations under the
     * gcBits arenas' own lock */
    pthread_mutex_lock(&h->gcbits_lock);
    new_gc_bits_locked(h, n);
    new_gc_bits_locked(h, n);
    pthread_mutex_unlock(&h->gcbits_lock);
}

static uint64_t
span_nelems(const mspan *s)
{
    return s->npages * PAGE_SIZE / s->elemsize;
}

size_t
mspan_block_bytes(const mheap *h, span_class spc, uint64_t nelems)
{
    size_t marks = h->gc.enabled ? (size_t)gc_bits_bytes(nelems) : 0;
    return mspan_bits_bytes(spc, nelems) + marks;
}

uint8_t *
mspan_new_bits(mheap *h, span_class spc, uint64_t npages)
{
    uint64_t nelems = npages * PAGE_SIZE /
                      class_to_size[span_class_sizeclass(spc)];
    return meta_calloc(&h->meta, mspan_block_bytes(h, spc, nelems));
}

void
mspan_charge_bits(mheap *h, const mspan *s)
{
    uint64_t nelems = span_nelems(s);
    __atomic_fetch_add(&h->span_meta_bytes,
                       mspan_block_bytes(h, s->spanclass, nelems),
                       __ATOMIC_RELAXED);
    mspan_charge_gc_bits(h, nelems);
}

void
mspan_init_bits(mspan *s, uint8_t *bits, bool gc)
{
    GA_ASSERT(s->alloc_bits == NULL && s->state == MSPAN_IN_USE);
    uint64_t nelems = span_nelems(s);
    uint64_t nbytes = gc_bits_bytes(nelems);
    s->nelems = nelems;
    s->freeindex = 0;
    s->alloc_cache = ~(uint64_t)0;
    s->alloc_bits = bits;
    s->freed_bits = bits + nbytes;
    s->used_bits = bits + 2 * nbytes;
    /* GC mode's mark bits next, so that every bitmap is 8-aligned */
    s->mark_bits = gc ? bits + 3 * nbytes : NULL;
    uint64_t req = (gc ? 4 : 3) * nbytes;
    s->req_sizes = (uint16_t *)(void *)(bits + req); /* 8-aligned */
    bool one_size = mspan_req_len(s->spanclass, nelems) != nelems;
    s->req_mask = one_size ? 0 : 0xFFFF;
    if (one_size) {
        s->req_sizes[0] = TINY_SIZE; /* noscan 16 bytes: asked for 16 */
    }
}

/* tiny_table_free releases span s's table of tiny block marks. */
static void
tiny_table_free(mheap *h, mspan *s)
{
    uint32_t *t = s->tiny_marks;
    if (t == NULL) {
        return;
    }
    __atomic_store_n(&s->tiny_marks, NULL, __ATOMIC_RELAXED);
    __atomic_fetch_sub(&h->tiny_meta_bytes, tiny_table_bytes(s),
                       __ATOMIC_RELAXED);
    free(t);
}

void
mspan_free_bits(mheap *h, mspan *s)
{
    tiny_table_free(h, s);
    __atomic_fetch_sub(&h->span_meta_bytes,
                       mspan_block_bytes(h, s->spanclass, s->nelems),
                       __ATOMIC_RELAXED);
    free(s->alloc_bits);
    s->alloc_bits = NULL;
    s->freed_bits = NULL;
    s->used_bits = NULL;
    s->req_sizes = NULL;
    s->mark_bits = NULL;
}

uint64_t
mspan_next_free_index(mspan *s)
{
    uint64_t sfreeindex = s->freeindex;
    uint64_t snelems = s->nelems;
    if (sfreeindex == snelems) {
        return sfreeindex;
    }
    unsigned bit = ctz64(s->alloc_cache);
    while (bit == 64) {
        /* Nothing in the cache: move to the next 64 slots. */
        sfreeindex = (sfreeindex + 64) & ~(uint64_t)63;
        if (sfreeindex >= snelems) {
            mspan_freeindex_store(s, snelems);
            return snelems;
        }
        mspan_refill_alloc_cache(s, sfreeindex / 8);
        bit = ctz64(s->alloc_cache);
    }
    uint64_t result = sfreeindex + bit;
    if (result >= snelems) {
        mspan_freeindex_store(s, snelems);
        return snelems;
    }
    s->alloc_cache = shr64(s->alloc_cache, bit + 1);
    sfreeindex = result + 1;
    if (sfreeindex % 64 == 0 && sfreeindex != snelems) {
        mspan_refill_alloc_cache(s, sfreeindex / 8);
    }
    mspan_freeindex_store(s, sfreeindex);
    return result;
}

uint64_t
mspan_allocated_word(const mspan *s, uint64_t w)
{
    uint64_t bits = load64_le(s->alloc_bits + w * 8);
    uint64_t lo = w * 64;
    if (s->freeindex >= lo + 64) {
        bits = ~(uint64_t)0;
    }
    else if (s->freeindex > lo) {
        bits |= (((uint64_t)1 << (s->freeindex - lo)) - 1);
    }
    if (s->nelems < lo + 64) {
        bits &= ((uint64_t)1 << (s->nelems - lo)) - 1;
    }
    return bits;
}

uint64_t
mspan_count_allocated(const mspan *s)
{
    uint64_t n = 0;
    for (uint64_t w = 0; w * 64 < s->nelems; w++) {
        n += (uint64_t)__builtin_popcountll(mspan_allocated_word(s, w));
    }
    return n;
}

uint64_t
mspan_sweep(mspan *s)
{
    uint64_t nfreed = 0;
    for (uint64_t w = 0; w * 64 < s->nelems; w++) {
        uint64_t alloc = mspan_allocated_word(s, w);
        uint64_t freed = load64_le(s->freed_bits + w * 8);
        nfreed += (uint64_t)__builtin_popcountll(freed);
        store64_le(s->used_bits + w * 8,
                   load64_le(s->used_bits + w * 8) | alloc);
        store64_le(s->alloc_bits + w * 8, alloc & ~freed);
        store64_le(s->freed_bits + w * 8, 0);
    }
    mspan_freeindex_store(s, 0);
    mspan_refill_alloc_cache(s, 0);
    /* Frees by other threads while an mcache held the span were counted
     * aside; the sweep holds the mcentral lock, so no more can arrive. */
    s->alloc_count = (uint16_t)(s->alloc_count -
                                __atomic_exchange_n(&s->remote_frees, 0,
                                                    __ATOMIC_RELAXED));
    if (nfreed > 0) {
        s->needzero = 1; /* freed slots hold old data */
    }
    return nfreed;
}

uint64_t
mspan_gc_sweep_bits(mspan *s)
{
    uint64_t n = 0;
    for (uint64_t w = 0; w * 64 < s->nelems; w++) {
        uint64_t alloc = mspan_allocated_word(s, w);
        uint64_t marks = load64_le(s->mark_bits + w * 8);
        store64_le(s->used_bits + w * 8,
                   load64_le(s->used_bits + w * 8) | alloc);
        /* the drops of the objects freed now are done with; objects
         * marked now may have been dropped since */
        store64_le(s->freed_bits + w * 8,
                   load64_le(s->freed_bits + w * 8) & marks);
        store64_le(s->alloc_bits + w * 8, marks);
        store64_le(s->mark_bits + w * 8, 0);
        n += (uint64_t)__builtin_popcountll(marks);
    }
    mspan_freeindex_store(s, 0);
    mspan_refill_alloc_cache(s, 0);
    return n;
}

bool
mspan_check_bits(const mspan *s, char *msg, size_t msglen)
{
    int c = span_class_sizeclass(s->spanclass);
    const div_magic *m = &class_to_divmagic[c];
    uint64_t base = mspan_base(s);
    if (s->elemsize != class_to_size[c] ||
        s->npages != class_to_allocnpages[c] ||
        s->nelems != class_objects(c) ||
        s->limit != base + s->nelems * s->elemsize ||
        s->div_shift != m->shift || s->div_shift2 != m->shift2 ||
        s->div_mul != m->mul || s->base_mask != m->base_mask) {
        snprintf(msg, msglen,
                 "small span 0x%llx: fields disagree with class %d",
                 (unsigned long long)base, c);
        return false;
    }
    uint64_t alloc_count = mspan_alloc_count(s);
    if (s->freeindex > s->nelems || alloc_count > s->nelems) {
        snprintf(msg, msglen,
                 "small span 0x%llx: freeindex/allocCount out of range",
                 (unsigned long long)base);
        return false;
    }
    uint64_t live = 0;
    for (uint64_t i = 0; i < s->nelems; i++) {
        bool allocated = mspan_is_allocated(s, i);
        bool freed = bit_get(s->freed_bits, i);
        if (freed && !allocated) {
            snprintf(msg, msglen,
                     "small span 0x%llx: slot %llu freed but not allocated",
                     (unsigned long long)base, (unsigned long long)i);
            return false;
        }
        /* in GC mode (mark bits) freed_bits are drops: a dropped
         * object is allocated until a sweep frees it */
        live += allocated && (!freed || s->mark_bits != NULL);
    }
    if (live != alloc_count) {
        snprintf(msg, msglen,
                 "small span 0x%llx: allocCount %llu != live slots %llu",
                 (unsigned long long)base, (unsigned long long)alloc_count,
                 (unsigned long long)live);
        return false;
    }
    if (s->freeindex < s->nelems) {
        /* bit j of allocCache == !allocBits[freeindex + j] for the rest of
         * freeindex's 64-slot word */
        uint64_t span = 64 - s->freeindex % 64;
        for (uint64_t j = 0; j < span; j++) {
            uint64_t i = s->freeindex + j;
            bool cache_free = (s->alloc_cache >> j) & 1;
            bool want = i < s->nelems ? !bit_get(s->alloc_bits, i)
                                      : cache_free;
            if (cache_free != want) {
                snprintf(msg, msglen,
                         "small span 0x%llx: allocCache bit %llu disagrees "
                         "with allocBits",
                         (unsigned long long)base, (unsigned long long)j);
                return false;
            }
        }
        for (uint64_t j = span; j < 64; j++) {
            if ((s->alloc_cache >> j) & 1) {
                snprintf(msg, msglen,
                         "small span 0x%llx: allocCache bit %llu beyond "
                         "freeindex's word is set",
                         (unsigned long long)base, (unsigned long long)j);
                return false;
            }
        }
    }
    /* objIndex by div magic at each slot's first and last word */
    for (uint64_t i = 0; i < s->nelems; i++) {
        ga_addr first = mspan_slot_addr(s, i);
        ga_addr last = first + s->elemsize - 8;
        if (mspan_obj_index(s, first) != i || mspan_obj_index(s, last) != i) {
            snprintf(msg, msglen,
                     "small span 0x%llx: div magic wrong at slot %llu",
                     (unsigned long long)base, (unsigned long long)i);
            return false;
        }
    }
    return true;
}
