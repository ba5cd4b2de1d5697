/* Spans.  See malloc.c for the overview.
 *
 * An mspan describes a run of whole 8 KiB pages: free (in the mheap's
 * treap), in use for heap objects of one span class, or manual.  Small
 * spans carry the per-slot state of Go's bitmap allocator (freeindex,
 * allocCache, allocBits) plus goalloc's bits for explicit free.
 * Go 1.13: src/runtime/mheap.go (mspan, mSpanState, spanClass,
 *          mSpanList), mbitmap.go (nextFreeIndex, refillAllocCache).
 * Differs from Go: addresses are ga_addr (the simulated platform's);
 *          freed_bits and used_bits support explicit free; req_sizes
 *          and tiny_marks are goalloc's (requested sizes, tiny marks).
 * Locking: a span's fields are guarded by whoever owns the span (the heap
 *          lock while free or being made, its mcentral's lock or one mcache
 *          otherwise); spanclass and list are also read, atomically, by
 *          frees that have not yet found out who owns the span.
 */
#ifndef GA_MSPAN_H
#define GA_MSPAN_H

#include "ga.h"

/* Span states.  Transitions (Go's mSpanState):
 *   dead  -> free     heap growth, or the remainder of a split free span
 *   free  -> in use   mheap_alloc (heap objects)
 *   free  -> manual   Go's allocManual (stacks); goalloc allocates no
 *                     stacks, and marks a span manual only while
 *                     go1.13.0's allocSpanLocked scavenges around it
 *   in use/manual -> free   mheap_free_span_locked
 *   free  -> dead     merged into a neighbour by mheap_coalesce
 */
typedef enum mspan_state {
    MSPAN_DEAD = 0,
    MSPAN_IN_USE = 1,
    MSPAN_MANUAL = 2,
    MSPAN_FREE = 3,
} mspan_state;

extern const char *const mspan_state_names[4];

/* span_class = sizeclass << 1 | noscan (Go's spanClass). */
typedef uint8_t span_class;

static inline span_class
make_span_class(int sizeclass, bool noscan)
{
    return (span_class)((sizeclass << 1) | (noscan ? 1 : 0));
}

static inline int
span_class_sizeclass(span_class sc)
{
    return sc >> 1;
}

static inline bool
span_class_noscan(span_class sc)
{
    return (sc & 1) != 0;
}

/* NO_SLOT: no free slot (next_free_fast, mcache_next_free). */
#define NO_SLOT UINT64_MAX

/* Go's sweepgen states, relative to the heap's sweepgen sg (design
 * §7.2).  Go has five; without a GC goalloc's spans are in two:
 *   sg      swept, ready to use, in no mcache (SWEEPGEN_SWEPT)
 *   sg + 3  swept, then cached, still cached (SWEEPGEN_CACHED)
 * (sg - 2 "needs sweeping", sg - 1 "being swept" and sg + 1 "cached
 * since before this sweep" need a sweep phase.)  cacheSpan marks a span
 * cached and uncacheSpan swept, under the mcentral's lock. */
enum {
    SWEEPGEN_SWEPT = 0,
    SWEEPGEN_CACHED = 3,
};

struct mspan_list;

typedef struct mspan {
    /* The first word is fixalloc's free-list link while the struct is
     * free, so it must not be a field that a stale spanOf entry leads a
     * reader to (classify_locked reads start_addr and npages).  Hot
     * fields come next: a free and a malloc each read the first two
     * cache lines (fixalloc blocks are line-aligned). */
    struct mspan *next;   /* list link: on an mcentral list or on none */
    ga_addr start_addr;   /* first byte of the span */
    ga_addr limit;        /* end of usable data */
    uint64_t elemsize;    /* object size; npages*PAGE_SIZE for large */
    uint64_t freeindex;   /* slot where the next free-slot scan starts */
    uint8_t *alloc_bits;  /* 1 = allocated as of the last sweep */
    uint8_t *freed_bits;  /* goalloc: 1 = freed since the last sweep; the
                           * live set (gcmarkBits' role) is "allocated
                           * and not freed" */
    uint16_t *req_sizes;  /* goalloc: requested size of each slot's object,
                           * for internal waste (index & req_mask) */
    uint32_t *tiny_marks; /* goalloc, tiny span class: the marks of each
                           * 16-byte block (tiny.h), made when the span
                           * serves its first tiny block, else NULL
                           * (atomic: published by the caching P) */
    uint64_t nelems;      /* number of slots (1 for large spans) */
    uint64_t alloc_cache; /* ~allocBits from freeindex, bit 0 = freeindex */
    uint32_t sweepgen;
    uint32_t remote_frees; /* goalloc: frees of this span's slots while an
                            * mcache held it, made by a thread that does
                            * not run as the caching P; folded into
                            * alloc_count at the next sweep (atomic) */
    uint16_t div_mul;
    uint16_t base_mask;
    uint16_t alloc_count; /* slots allocated and not freed */
    span_class spanclass;
    uint8_t state; /* mspan_state */
    uint8_t needzero;
    uint8_t div_shift;
    uint8_t div_shift2;
    bool scavenged;    /* free span whose pages were released to the OS */
    uint16_t req_mask; /* goalloc: slot i's requested size is at
                        * req_sizes[i & req_mask]: all ones, but 0 for the
                        * tiny class, whose 16-byte objects were all asked
                        * for 16 bytes (one entry; tiny blocks keep theirs
                        * in the tiny marks) */
    /* the list the span is on (read by every free of an uncached span,
     * so in the second line; see mspan_list_of) */
    struct mspan_list *list;

    uint64_t npages;    /* length in 8 KiB pages */
    struct mspan *prev; /* list links, with next */

    uint8_t *used_bits; /* goalloc: 1 = handed out before the last sweep
                         * since initSpan, so a free of a dead slot is a
                         * double free */

    struct mspan *allnext; /* goalloc: chain of every struct ever made */

    /* GC mode (mgc.h) */
    struct mspan *sweep_link[2]; /* links of the two sweepSpans stacks */
    uint8_t *mark_bits;          /* gcmarkBits: 1 = reachable this cycle */
    bool marked;                 /* the mark reached an object of the span: its
                                  * first page's pageMarks bit */
    bool dropped;                /* a large object that the program dropped */
} mspan;

/* The list a span is on is written under that list's mcentral lock (or
 * the heap lock, for a span no list holds), and read by a free that has
 * taken only an mcentral lock to see whether the span is that
 * mcentral's (mcentral_owns): so it is stored and loaded atomically. */
static inline void
mspan_set_list(mspan *s, struct mspan_list *l)
{
    __atomic_store_n(&s->list, l, __ATOMIC_RELAXED);
}

static inline struct mspan_list *
mspan_list_of(const mspan *s)
{
    return __atomic_load_n(&s->list, __ATOMIC_RELAXED);
}

/* mspan_is_cached: an mcache holds s (sweepgen sg + 3).  The mark
 * changes only under s's mcentral's lock. */
static inline bool
mspan_is_cached(const mspan *s, uint32_t sg)
{
    return s->sweepgen == sg + SWEEPGEN_CACHED;
}

static inline ga_addr
mspan_base(const mspan *s)
{
    return s->start_addr;
}

/* Requested sizes are written by the P that hands a slot out and read
 * by frees on other threads: relaxed atomics (plain moves). */
static inline void
mspan_req_store(mspan *s, uint64_t i, uint64_t size)
{
    __atomic_store_n(&s->req_sizes[i & s->req_mask], (uint16_t)size,
                     __ATOMIC_RELAXED);
}

static inline uint64_t
mspan_req_load(const mspan *s, uint64_t i)
{
    return __atomic_load_n(&s->req_sizes[i & s->req_mask], __ATOMIC_RELAXED);
}

/* mspan_slot_addr: the address of slot i. */
static inline ga_addr
mspan_slot_addr(const mspan *s, uint64_t i)
{
    return mspan_base(s) + i * s->elemsize;
}

static inline ga_addr
mspan_end(const mspan *s)
{
    return s->start_addr + s->npages * PAGE_SIZE;
}

/* mspan_alloc_count: slots allocated and not freed, counting the frees
 * other threads made while an mcache held the span. */
static inline uint64_t
mspan_alloc_count(const mspan *s)
{
    return s->alloc_count -
           __atomic_load_n(&s->remote_frees, __ATOMIC_RELAXED);
}

/* The span class is read by frees on any thread before they know whether
 * the span is theirs (ga_free_p), so it is written and read atomically. */
static inline span_class
mspan_spanclass_load(const mspan *s)
{
    return __atomic_load_n(&s->spanclass, __ATOMIC_RELAXED);
}

static inline void
mspan_spanclass_store(mspan *s, span_class spc)
{
    __atomic_store_n(&s->spanclass, spc, __ATOMIC_RELAXED);
}

/* freeindex moves on the owning P without a lock while frees on other
 * threads read it (under the mcentral lock) to tell a live slot. */
static inline uint64_t
mspan_freeindex_load(const mspan *s)
{
    return __atomic_load_n(&s->freeindex, __ATOMIC_RELAXED);
}

static inline void
mspan_freeindex_store(mspan *s, uint64_t v)
{
    __atomic_store_n(&s->freeindex, v, __ATOMIC_RELAXED);
}

/* mspan_init resets a span for [base, base+npages pages), as Go's
 * (*mspan).init: sweepgen and the later-initialised fields are kept. */
void mspan_init(mspan *s, ga_addr base, uint64_t npages);

/* mspan_huge_pages counts the whole physical huge pages inside s
 * (Go's (*mspan).hugePages); 0 when huge_page_size is 0. */
uint64_t mspan_huge_pages(const mspan *s, uint64_t huge_page_size);

/* mspan_phys_page_bounds rounds the span in to whole physical pages
 * (Go's physPageBounds; the span itself when OS pages are no larger than
 * runtime pages); [*start, *end) may be empty. */
void mspan_phys_page_bounds(const mspan *s, uint64_t phys_page_size,
                            ga_addr *start, ga_addr *end);
/* mspan_released: the bytes of a scavenged free span that were returned
 * to the OS (Go's released); 0 if it is not scavenged. */
uint64_t mspan_released(const mspan *s, uint64_t phys_page_size);

/* Doubly linked span lists of an mcentral (Go's mSpanList). */
typedef struct mspan_list {
    mspan *first;
    mspan *last;
} mspan_list;

void mspan_list_init(mspan_list *l);
void mspan_list_remove(mspan_list *l, mspan *s);
void mspan_list_insert(mspan_list *l, mspan *s);
void mspan_list_insert_back(mspan_list *l, mspan *s);

static inline bool
mspan_list_is_empty(const mspan_list *l)
{
    return l->first == NULL;
}

#endif
