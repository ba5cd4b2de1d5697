/* Heap arenas and the arena index.  See malloc.c for the overview.
 *
 * The heap's address space comes in whole arenas (64 MiB on linux/amd64;
 * how the page heap uses them depends on its release), each aligned to
 * its size and described by a heap_arena that maps every page to its
 * span.  Arenas are found through a two-level index (L1 -> L2 -> arena).
 * Where the arenas come from (the hints, sysAlloc) is sysalloc.h's.
 * Go 1.13: src/runtime/mheap.go (heapArena, spanOf, setSpan, setSpans,
 *          pageIndexOf), malloc.go (sysAlloc's metadata part).
 * Differs from Go: the GC bitmap of heapArena is accounted (gc_sys) but
 *          not allocated, as nothing reads it without a GC.  The arenas'
 *          metadata (one block of process memory per growth, and the
 *          index's L2 maps) is sized against metadata_limit before
 *          anything moves and made before it is installed: running out
 *          of process memory for it, or passing the limit, refuses the
 *          growth and undoes it (Go throws, and has no limit).  goalloc
 *          keeps a second page bitmap, page_freed, for double frees of
 *          large objects.
 * Locking: the caller holds the heap lock, except for span_of and
 *          heap_arena_of (inline in mheap.h), which read atomically
 *          published entries.
 */
#ifndef GA_ARENA_H
#define GA_ARENA_H

#include "ga.h"
#include "mspan.h"

struct mheap;

typedef struct heap_arena {
    uint8_t *page_in_use; /* bit per page: first page of an in-use span */
    uint8_t *page_freed;  /* goalloc: bit per page: a large object that
                           * started here was freed and the page has not
                           * been handed out since (double-free check) */
    mspan *spans[];       /* page -> span; free spans: ends only */
} heap_arena;

/* arena_index_init makes the index's L1 array (mallocinit).  False when
 * the process is out of memory. */
bool arena_index_init(struct mheap *h);

/* heap_arena_of and span_of (Go's spanOf) are inline in mheap.h. */
void set_span(struct mheap *h, ga_addr addr, mspan *s);
void set_spans(struct mheap *h, ga_addr base, uint64_t npages, mspan *s);

/* page_in_use bit of the page at addr (Go's pageIndexOf + pageInUse). */
void arena_set_page_in_use(struct mheap *h, ga_addr addr, bool on);
bool arena_page_in_use(const struct mheap *h, ga_addr addr);
void arena_set_page_freed(struct mheap *h, ga_addr addr);
bool arena_page_freed(const struct mheap *h, ga_addr addr);
/* arena_clear_freed forgets freed marks on npages from base. */
void arena_clear_freed(struct mheap *h, ga_addr base, uint64_t npages);

/* ---- Arena metadata: made before a growth, installed after ---------- */

/* The metadata of the arenas one growth maps is one block of process
 * memory: a header that chains the heap's blocks (for arena_release),
 * the heap_arenas with their page -> span maps, then their page bitmaps.
 * One calloc per growth: a large one is zero pages the OS backs only
 * where set_spans writes, and a huge one fails at once. */
typedef struct arena_block {
    struct arena_block *next;
} arena_block;

/* arena_prep: the metadata of the arenas a growth maps, made before the
 * heap changes, so that running out of process memory for it (or past
 * metadata_limit) refuses the growth instead of breaking the heap. */
typedef struct arena_prep {
    uint64_t first;     /* arenaIdx of the first arena */
    uint64_t n;         /* arenas */
    arena_block *block; /* their heap_arenas and page bits */
    uint64_t l1_first;  /* L1 entries the arenas fall in ... */
    uint64_t nl1;
    heap_arena ***l2; /* ... and a new L2 map for each that has none */
    uint64_t bytes;   /* real bytes of the block and the L2 maps */
} arena_prep;

/* arena_prep_plan sizes the metadata of the arenas that cover [v,
 * v+size) and checks it against metadata_limit, allocating nothing:
 * false (the reason recorded) when it would pass the limit. */
bool arena_prep_plan(struct mheap *h, ga_addr v, uint64_t size, arena_prep *p);
/* arena_prep_make makes the metadata arena_prep_plan sized, touching
 * nothing of the heap.  False, with nothing kept and the reason
 * recorded, when the process is out of memory. */
bool arena_prep_make(struct mheap *h, arena_prep *p);
/* arena_prep_install publishes the metadata of p, which the growth now
 * maps, and charges it as Go does; nothing here can fail. */
void arena_prep_install(struct mheap *h, arena_prep *p);
/* arena_prep_free drops metadata made for a growth that failed later. */
void arena_prep_free(arena_prep *p);

/* ---- Walking the arenas span by span ------------------------------ */

/* mheap_walk_spans calls fn on every span in address order (fn returns
 * false to stop); false if the arenas are not covered span by span.
 * go1.13.8's curArena, which holds no span, is skipped.  The walk needs
 * scratch memory: it is for introspection, checks and heap close. */
bool mheap_walk_spans(struct mheap *h, bool (*fn)(void *, mspan *), void *arg);
/* mheap_walk is mheap_walk_spans that also calls ungrown (if not NULL)
 * on curArena's [base, base+size) where it lies between the spans. */
bool mheap_walk(struct mheap *h, bool (*fn)(void *, mspan *),
                bool (*ungrown)(void *, ga_addr, uint64_t), void *arg);

/* arena_release frees every arena's metadata (heap close). */
void arena_release(struct mheap *h);

#endif
