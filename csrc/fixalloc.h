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
 *          from the process allocator and are returned at heap close; a
 *          chunk's real memory can be made ahead (fixalloc_reserve), so
 *          that a growth never fails half done.
 *          One persistentalloc chunk serves the whole heap, as Go's
 *          globalAlloc does before any P exists (Go gives each P its own
 *          chunk once it has one).
 * Locking: the caller holds the heap lock.
 */
#ifndef GA_FIXALLOC_H
#define GA_FIXALLOC_H

#include "ga.h"

/* meta_alloc: where a heap's metadata gets its real memory from (the
 * process allocator), with fault injection: when fail_at is n > 0, the
 * n-th metadata allocation from then on fails (and disarms it), so that
 * tests can make every allocation of a growth fail in turn.  Every
 * allocation of heap metadata goes through meta_calloc /
 * meta_realloc (m may be NULL: no injection). */
typedef struct meta_alloc {
    uint64_t fail_at; /* atomic; 0 = armed for nothing */
} meta_alloc;

/* meta_alloc_fails counts one metadata allocation and says whether it is
 * the one to fail. */
bool meta_alloc_fails(meta_alloc *m);
/* meta_calloc: zeroed (by calloc: large blocks stay untouched until
 * written).  meta_aligned: zeroed and cache-line aligned, size
 * rounded up to whole lines. */
void *meta_calloc(meta_alloc *m, size_t size);
void *meta_aligned(meta_alloc *m, size_t size);
void *meta_realloc(meta_alloc *m, void *p, size_t size);

/* persistentalloc's accounting state: the 256 KiB chunk Go carves
 * fixalloc chunks (and other small metadata) from, charged to other_sys
 * and re-charged to the stat each request names. */
typedef struct persistent_alloc {
    bool has_chunk;      /* persistentAlloc.base != nil */
    uint64_t off;        /* persistentAlloc.off: bytes used of the chunk */
    uint64_t ptr_size;   /* a chunk's first word links it to the next */
    uint64_t *other_sys; /* &stats.other_sys */
} persistent_alloc;

void persistent_alloc_init(persistent_alloc *pa, uint64_t *other_sys,
                           uint64_t ptr_size);

/* persistent_alloc_charge accounts a persistentalloc(size, align, stat)
 * the way Go does: blocks >= 64 KiB are direct sysAllocs charged to stat
 * (NULL = charged to nothing); smaller ones come out of 256 KiB chunks at
 * align (0 = 8), and leave other_sys for stat even when stat is NULL
 * (Go's mSysStatDec runs whatever stat is). */
void persistent_alloc_charge(persistent_alloc *pa, uint64_t size,
                             uint64_t align, uint64_t *stat);

typedef void (*fixalloc_first_fn)(void *arg, void *p);

typedef struct fixalloc_block {
    struct fixalloc_block *next;
} fixalloc_block;

typedef struct fixalloc {
    uint64_t go_size;        /* Go's struct size: what accounting counts */
    size_t real_size;        /* goalloc's block size (>= sizeof(void *)) */
    fixalloc_first_fn first; /* called on each block carved fresh */
    void *arg;
    fixalloc_block *list; /* freed blocks */
    char *chunk;          /* real cursor in the current chunk */
    uint64_t nchunk;      /* accounted bytes left in the chunk */
    uint64_t inuse;       /* accounted bytes handed out, not freed */
    uint64_t *stat;       /* MemStats field charged per chunk */
    persistent_alloc *pa;
    void *chunks;     /* every real chunk, for release */
    void *spare;      /* a real chunk made ahead, not yet charged
                       * (fixalloc_reserve) */
    uint64_t nfree;   /* blocks on list */
    meta_alloc *meta; /* where chunks come from (NULL: plain) */
    bool zero;        /* zero blocks taken from the free list */
} fixalloc;

void fixalloc_init(fixalloc *f, uint64_t go_size, size_t real_size,
                   fixalloc_first_fn first, void *arg, uint64_t *stat,
                   persistent_alloc *pa);
/* fixalloc_alloc returns a block, or NULL when the process is out of
 * memory (nothing is charged then). */
void *fixalloc_alloc(fixalloc *f);
/* fixalloc_reserve makes sure the next n fixalloc_alloc calls (n at most
 * a chunk's worth) cannot fail: if the free list and the current chunk
 * hold fewer blocks, it makes the real memory of the next chunk now,
 * charging nothing until a block is carved from it (so the accounting
 * stays Go's).  False, with nothing changed, when the process is out of
 * memory. */
bool fixalloc_reserve(fixalloc *f, uint64_t n);
void fixalloc_free(fixalloc *f, void *p);
/* fixalloc_release returns every chunk to the process (heap close). */
void fixalloc_release(fixalloc *f);

#endif
