/* Fixed-size allocator for off-heap metadata.  See malloc.c.
 *
 * A fixalloc hands out blocks of one size from 16 KiB chunks and keeps
 * freed blocks on a free list; memory never goes back to the OS.  It
 * charges Go's struct size (go_size: mspan 136 bytes on amd64, ...) to
 * the MemStats field it owns, so the numbers match Go, while the blocks
 * themselves are sized for goalloc's C structs (real_size).
 * Go 1.13: src/runtime/mfixalloc.go (fixalloc, init, alloc, free),
 *          malloc.go (persistentalloc).
 * Differs from Go: real and accounted sizes are separate; chunks come
 *          from the process allocator and are returned at heap close.
 * Locking: the caller holds the heap lock.
 */
#ifndef GA_FIXALLOC_H
#define GA_FIXALLOC_H

#include "ga.h"

/* persistentalloc's accounting state: the 256 KiB chunk Go carves
 * fixalloc chunks from, charged to other_sys and re-charged to the
 * stat each request names. */
typedef struct persistent_alloc {
    uint64_t chunk_left; /* accounted bytes left in the current chunk */
    uint64_t *other_sys; /* &stats.other_sys */
} persistent_alloc;

void persistent_alloc_init(persistent_alloc *pa, uint64_t *other_sys);

/* persistent_alloc_charge accounts a persistentalloc(size, stat) the way
 * Go does: blocks >= 64 KiB are direct sysAllocs charged to stat (NULL
 * = charged to nothing); smaller ones come out of 256 KiB chunks. */
void persistent_alloc_charge(persistent_alloc *pa, uint64_t size,
                             uint64_t *stat);

typedef void (*fixalloc_first_fn)(void *arg, void *p);

typedef struct fixalloc_block {
    struct fixalloc_block *next;
} fixalloc_block;

typedef struct fixalloc {
    uint64_t go_size;   /* Go's struct size: what accounting counts */
    size_t real_size;   /* goalloc's block size (>= sizeof(void *)) */
    fixalloc_first_fn first; /* called on each block carved fresh */
    void *arg;
    fixalloc_block *list;    /* freed blocks */
    char *chunk;             /* real cursor in the current chunk */
    uint64_t nchunk;         /* accounted bytes left in the chunk */
    uint64_t inuse;          /* accounted bytes handed out, not freed */
    uint64_t *stat;          /* MemStats field charged per chunk */
    persistent_alloc *pa;
    void *chunks;            /* every real chunk, for release */
    bool zero;               /* zero blocks taken from the free list */
} fixalloc;

void fixalloc_init(fixalloc *f, uint64_t go_size, size_t real_size,
                   fixalloc_first_fn first, void *arg, uint64_t *stat,
                   persistent_alloc *pa);
/* fixalloc_alloc returns a block, or NULL when the process is out of
 * memory (nothing is charged then). */
void *fixalloc_alloc(fixalloc *f);
void fixalloc_free(fixalloc *f, void *p);
/* fixalloc_release returns every chunk to the process (heap close). */
void fixalloc_release(fixalloc *f);

#endif
