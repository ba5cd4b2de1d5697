/* Heap arenas, the arena index and arena hints.  See malloc.c.
 *
 * The heap's address space comes in whole arenas (64 MiB on linux/amd64;
 * how the page heap uses them depends on its release), each aligned to
 * its size and described by a heap_arena that maps every page to its
 * span.  Arenas are found through a two-level index (L1 -> L2 -> arena).
 * Where to grow next is decided by the arena hints that mallocinit lays
 * out: an up-hint tries [addr, addr+n) and moves up, a down-hint tries
 * [addr-n, addr) and moves down; a hint whose reservation lands elsewhere
 * is discarded for good.
 * Go 1.13: src/runtime/malloc.go (arenaHint, mallocinit's hints,
 *          (*mheap).sysAlloc, linearAlloc), mheap.go (heapArena, spanOf,
 *          setSpans, pageIndexOf).
 * Differs from Go: the GC bitmap of heapArena is accounted (gc_sys) but
 *          not allocated, as nothing reads it without a GC.  A failed
 *          growth puts back the hints it discarded (rejected calls leave
 *          the heap unchanged), also when the OS reserves a range but
 *          will not back it, where Go throws "runtime: out of memory".
 *          The arenas' metadata (one block of process memory per growth,
 *          and the index's L2 maps) is sized against metadata_limit
 *          before anything moves and made before it is installed:
 *          running out of process memory for it, or passing the limit,
 *          refuses the growth and undoes it (Go throws, and has no
 *          limit).
 * Locking: the caller holds the heap lock.
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

typedef struct arena_hint {
    ga_addr addr;
    bool down;
    struct arena_hint *next;
} arena_hint;

/* linearAlloc: a bump allocator over a pre-reserved region (32-bit). */
typedef struct linear_alloc {
    ga_addr next;
    ga_addr mapped;
    ga_addr end;
} linear_alloc;

/* arena_init_hints lays out mallocinit's hints for the heap's platform.
 * Returns false (reason in err) if metadata could not be allocated. */
bool arena_init_hints(struct mheap *h, char *err, size_t errlen);

/* mheap_sys_alloc reserves and maps at least n bytes of heap in whole
 * arenas and creates their metadata (Go's (*mheap).sysAlloc).  Returns 0
 * when the address space cannot be had; then nothing has changed. */
ga_addr mheap_sys_alloc(struct mheap *h, uint64_t n, uint64_t *size);

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

/* arena_release frees every arena's metadata (heap close). */
void arena_release(struct mheap *h);

#endif
