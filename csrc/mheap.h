/* The page heap.  See malloc.c for the overview.
 *
 * The mheap owns every page of every arena.  Free runs of pages are free
 * spans in one treap ordered by address; allocation takes the lowest-
 * addressed span that is large enough (first fit), carves its low end and
 * leaves the remainder in place.  Freed spans coalesce with free
 * neighbours of equal scavenged state.  The heap takes address space in
 * whole arenas at the arena hints; go1.13.8 (the default) turns only the
 * pages a request needs into a free span and keeps the rest of the arena
 * as curArena for the next growth, go1.13.0 turns the whole arena into
 * one free span at once.  The scavenger returns free pages to the OS
 * from the top of the address space down.
 * Go 1.13: src/runtime/mheap.go (mheap, init, alloc_m, allocSpanLocked,
 *          grow, growAddSpan, freeSpan, freeSpanLocked, coalesce,
 *          scavengeLocked, scavengeIfNeededLocked, recordspan), of the
 *          release the heap was made for (ga_release).
 * Differs from Go: the sweeper and the page reclaimer run in GC mode
 *          only (mgc.h); the scavenger runs when asked or as growth
 *          needs, not in the background.
 * Locking: h->lock guards everything but the mcentrals and mcaches.
 */
#ifndef GA_MHEAP_H
#define GA_MHEAP_H

#include <pthread.h>

#include "ga.h"
#include "arena.h"
#include "fixalloc.h"
#include "mcache.h"
#include "mcentral.h"
#include "mem.h"
#include "mgc.h"
#include "mspan.h"
#include "mstats.h"
#include "platform.h"
#include "sysalloc.h"
#include "throw.h"
#include "treap.h"

/* arena_lookup: spanOf's constants, copied from the platform at init so
 * that a free reads them from one cache line (see heap_arena_of). */
typedef struct arena_lookup {
    uint64_t base_offset; /* arenaBaseOffset */
    uint64_t l2_mask;     /* (1 << arenaL2Bits) - 1 */
    uint64_t page_mask;   /* pagesPerArena - 1 */
    uint8_t shift;        /* log2(heapArenaBytes) */
    uint8_t bits;         /* arenaL1Bits + arenaL2Bits */
    uint8_t l2_bits;      /* arenaL2Bits */
} arena_lookup;

typedef struct mheap {
    /* read by every facade call, on any thread: one cache line */
    const char *poisoned; /* Go's throw: the message once poisoned
                           * (atomic; see heap_poisoned) */
    int nprocs;
    bool zero_memory;   /* os backing without skip_zeroing: needzero */
    bool keep_needzero; /* zero_on_request: in-use spans keep needzero,
                         * for ga_calloc */
    mcache **caches;    /* one per P; caches[0] is m0's */
    ga_addr zerobase;   /* os: &zerobase (mallocinit.c); virtual: fixed */
    arena_lookup lookup;

    /* on a line of its own: taken by every refill, on any thread */
    _Alignas(GA_CACHE_LINE) heap_lock lock; /* a throw releases it */

    mtreap free; /* every free span, by address */
    ga_release release;
    /* curArena (go1.13.8): the mapped room the heap grows into next,
     * physical-page aligned; counted idle and released, not a span */
    struct {
        ga_addr base;
        ga_addr end;
    } cur_arena;
    uint32_t sweepgen; /* +2 per GC cycle (GC mode); else stays 0 */
    uint64_t pages_in_use;

    /* allspans: every mspan struct ever made, chained through allnext;
     * the Go slice's capacity is tracked only for other_sys. */
    mspan *allspans;
    uint64_t nallspans;
    uint64_t allspans_cap;

    /* large-object statistics (small frees are counted per mcentral) */
    uint64_t largealloc;
    uint64_t nlargealloc;
    uint64_t largefree;
    uint64_t nlargefree;
    uint64_t large_requested; /* goalloc: bytes callers asked for */
    uint64_t large_requested_freed;

    /* arenas: L1 array of L2 arrays of heap_arena pointers */
    heap_arena ***arenas;
    uint64_t *all_arenas; /* arena indices, in order of creation */
    uint64_t nall_arenas;
    uint64_t all_arenas_cap;          /* Go's slice capacity (accounting) */
    uint64_t all_arenas_room;         /* entries the real array holds */
    struct arena_block *arena_blocks; /* the heap_arenas' memory, one
                                       * block per growth (arena.c) */
    arena_hint *arena_hints;
    linear_alloc arena;            /* 32-bit pre-reserved heap */
    linear_alloc heap_arena_alloc; /* 32-bit metadata reservation */
    ga_addr binary_end;            /* 32-bit: end of the binary/brk */

    mcentral central[NUM_SPAN_CLASSES];

    persistent_alloc pa;
    fixalloc spanalloc;
    fixalloc cachealloc;
    fixalloc treapalloc;
    fixalloc specialfinalizeralloc;
    fixalloc specialprofilealloc;
    fixalloc arena_hint_alloc;

    mstats stats; /* under the heap lock, but heap_live (atomic, as Go's
                   * Xadd64 in cacheSpan/uncacheSpan) */
    /* the collector (GC mode; without it only the pacing of gcinit, the
     * sweepSpans accounting and the gcBits arenas' are used) */
    gcstate gc;
    /* gcBitsArenas: its own lock, as in Go, so that growing spans does
     * not take the heap lock for it; gcbits_sys is its part of gc_sys */
    pthread_mutex_t gcbits_lock;
    uint64_t gcbits_left; /* accounted bytes left in the gcBits arena */
    uint64_t gcbits_sys;
    /* goalloc's own per-span metadata, which Go's MemStats cannot show
     * (Go has none of it): the bitmap blocks (alloc, freed and used bits,
     * requested sizes) and the tiny class's block marks.  Atomic: spans
     * get them outside the heap lock. */
    uint64_t span_meta_bytes;
    uint64_t tiny_meta_bytes;
    platform plat;
    mem_backend mem;
    uint64_t sys_limit;
    uint64_t scavenge_goal;
    uint64_t scavenged_total; /* bytes scavengeLocked ever released */
    uint64_t seed;
    /* real memory of the arena metadata (heap_arena structs with their
     * span maps and page bits, the L2 maps of the arena index) and the
     * most of it growth may take (0: no limit) */
    uint64_t meta_bytes;
    uint64_t meta_limit;
    meta_alloc meta;        /* metadata allocations, fault injection */
    const char *oom_reason; /* atomic: why the last growth was refused */

    mspan emptymspan;

    char throw_buf[256]; /* the text of a throw made up at run time
                          * (ga_test_throw, GA_DEBUG's checks) */
} mheap;

/* ---- The arena index, inline: every free looks its span up --------- */

static inline uint64_t
l1_of(const mheap *h, uint64_t idx)
{
    return h->plat.arena_l1_bits == 0 ? 0 : idx >> h->plat.arena_l2_bits;
}

static inline uint64_t
l2_of(const mheap *h, uint64_t idx)
{
    return idx & (((uint64_t)1 << h->plat.arena_l2_bits) - 1);
}

/* heap_arena_of returns the arena holding addr, or NULL.  Frees on any
 * thread look arenas up without the heap lock; both index levels are
 * published once, NULL to set, with a release store (arena.c). */
static inline heap_arena *
heap_arena_of(const mheap *h, ga_addr addr)
{
    const arena_lookup *k = &h->lookup;
    uint64_t idx = (addr + k->base_offset) >> k->shift; /* arenaIndex */
    if (idx >> k->bits != 0) {
        return NULL;
    }
    /* Without an L1 level idx < 2^l2_bits, so the L1 index is 0. */
    heap_arena **l2 = __atomic_load_n(&h->arenas[idx >> k->l2_bits],
                                      __ATOMIC_ACQUIRE);
    /* Go skips this test when there is no L1 level; the L2 map does not
     * exist before the first arena, so goalloc always makes it. */
    if (l2 == NULL) {
        return NULL;
    }
    return __atomic_load_n(&l2[idx & k->l2_mask], __ATOMIC_ACQUIRE);
}

static inline uint64_t
page_index(const mheap *h, ga_addr addr)
{
    return (addr >> PAGE_SHIFT) & h->lookup.page_mask;
}

/* span_of is Go's spanOf: the span recorded for addr's page, or NULL.
 * For a free span's interior pages the entry may be stale. */
static inline mspan *
span_of(const mheap *h, ga_addr addr)
{
    heap_arena *ha = heap_arena_of(h, addr);
    return ha == NULL ? NULL
                      : __atomic_load_n(&ha->spans[page_index(h, addr)],
                                        __ATOMIC_RELAXED);
}

/* heap_live_add: Go's atomic.Xadd64(&memstats.heap_live, delta). */
static inline void
heap_live_add(mheap *h, int64_t delta)
{
    __atomic_fetch_add(&h->stats.heap_live, (uint64_t)delta, __ATOMIC_RELAXED);
}

/* heap_gc_sys: MemStats.GCSys, the heap lock's part and the gcBits'. */
static inline uint64_t
heap_gc_sys(const mheap *h)
{
    return h->stats.gc_sys + h->gcbits_sys;
}

/* heap_poisoned: Go's throw message, or NULL while the heap is sound. */
static inline const char *
heap_poisoned(const mheap *h)
{
    return __atomic_load_n(&h->poisoned, __ATOMIC_ACQUIRE);
}

static inline void
mheap_lock(mheap *h)
{
    heap_lock_acquire(&h->lock);
}

static inline void
mheap_unlock(mheap *h)
{
    heap_lock_release(&h->lock);
}

/* mheap_owned: the calling thread holds h->lock (for GA_ASSERT in the
 * functions named _locked). */
static inline bool
mheap_owned(mheap *h)
{
    return heap_lock_held(&h->lock);
}

/* throw is Go's throw: it poisons the heap, releases the heap lock if
 * this thread holds it and jumps to the thread's protected call
 * (throw.h).  msg must outlive the heap (a string literal). */
static inline GA_NORETURN void throw(mheap * h, const char *msg)
{
    throw_poison(&h->poisoned, &h->lock, msg);
}

/* mheap_init is Go's (*mheap).init but for the mcentrals, which
 * mallocinit initialises itself (so that the page heap calls nothing of
 * the layers above it): the fixallocs and the treap. */
void mheap_init(mheap *h);

/* mheap_alloc allocates a span of npages for span class spc (Go's
 * (*mheap).alloc / alloc_m) on behalf of the calling P's mcache c, whose
 * local_tinyallocs it moves into the heap's tinyallocs as alloc_m does.
 * large_size > 0 makes it the span of one large object of that many
 * bytes (initSpan and mallocgc's large-object epilogue); a small span
 * gets its limit here and its bitmaps from mcentral_grow.  Both under
 * the heap lock, so that a free classifying an address in the span never
 * finds it half made.  NULL, with nothing changed, when the heap cannot
 * grow. */
mspan *mheap_alloc(mheap *h, mcache *c, uint64_t npages, span_class spc,
                   uint64_t large_size, bool needzero);

mspan *mheap_alloc_span_locked(mheap *h, uint64_t npage, uint64_t *stat);
void mheap_free_span_locked(mheap *h, mspan *s, bool acctinuse, bool acctidle);
/* mheap_coalesce merges free span s (not in the treap) with free
 * neighbours of the same scavenged state. */
void mheap_coalesce(mheap *h, mspan *s);
/* mheap_has_room: a free span of npage pages exists or growth may work. */
bool mheap_has_room(mheap *h, uint64_t npage);

/* mheap_can_grow tells whether growing by npages could succeed without
 * exceeding the configured limits (checked before anything moves). */
bool mheap_can_grow(mheap *h, uint64_t npages);

/* mheap_refuse records why a growth was refused (a string literal) for
 * the OutOfMemoryError's message; returns false. */
static inline bool
mheap_refuse(mheap *h, const char *why)
{
    __atomic_store_n(&h->oom_reason, why, __ATOMIC_RELAXED);
    return false;
}

#endif
