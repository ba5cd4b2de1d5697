/* Fixed-size allocator for off-heap metadata.  See malloc.c.
 *
 * fixalloc carves blocks of one size out of 16 KiB chunks and recycles
 * freed blocks through a free list.  Accounting follows Go exactly (a
 * chunk charges 16 KiB to its stat and persistentalloc's 256 KiB chunks
 * charge other_sys), while the real memory behind the blocks is sized for
 * goalloc's C structs.
 * Go 1.13: src/runtime/mfixalloc.go, malloc.go (persistentalloc).
 * Differs from Go: real chunks come from malloc and are freed at close.
 * Locking: the caller holds the heap lock.
 */
#include "fixalloc.h"

#include <stdlib.h>
#include <string.h>

#include "arith.h"
#include "throw.h"

/* A real chunk: a link for release, then the blocks. */
/* Blocks are cache-line aligned and sized: the mspans that two Ps
 * allocate from (and the mcaches) must not share a line, or every
 * allocation on one P would invalidate the other's. */

typedef struct real_chunk {
    struct real_chunk *next;
    _Alignas(GA_CACHE_LINE) unsigned char blocks[];
} real_chunk;

bool
meta_alloc_fails(meta_alloc *m)
{
    if (m == NULL) {
        return false;
    }
    uint64_t v = __atomic_load_n(&m->fail_at, __ATOMIC_RELAXED);
    while (v != 0) {
        if (__atomic_compare_exchange_n(&m->fail_at, &v, v - 1, false,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            return v == 1;
        }
    }
    return false;
}

void *
meta_calloc(meta_alloc *m, size_t size)
{
    return meta_alloc_fails(m) ? NULL : calloc(1, size == 0 ? 1 : size);
}

void *
meta_aligned(meta_alloc *m, size_t size)
{
    if (meta_alloc_fails(m)) {
        return NULL;
    }
    size_t bytes = round_up(size == 0 ? 1 : size, GA_CACHE_LINE);
    if (bytes < size) {
        return NULL;
    }
    void *p = aligned_alloc(GA_CACHE_LINE, bytes);
    if (p != NULL) {
        memset(p, 0, bytes);
    }
    return p;
}

void *
meta_realloc(meta_alloc *m, void *p, size_t size)
{
    if (meta_alloc_fails(m)) {
        return NULL;
    }
    return realloc(p, size);
}

void
persistent_alloc_init(persistent_alloc *pa, uint64_t *other_sys,
                      uint64_t ptr_size)
{
    pa->has_chunk = false;
    pa->off = 0;
    pa->ptr_size = ptr_size;
    pa->other_sys = other_sys;
}

void
persistent_alloc_charge(persistent_alloc *pa, uint64_t size, uint64_t align,
                        uint64_t *stat)
{
    if (size >= PERSISTENT_MAX_BLOCK) {
        /* A direct sysAlloc: charged to stat alone (NULL: to nothing). */
        if (stat != NULL) {
            *stat += size;
        }
        return;
    }
    if (align == 0) {
        align = 8;
    }
    pa->off = round_up(pa->off, align);
    if (!pa->has_chunk || pa->off + size > PERSISTENT_CHUNK_SIZE) {
        /* The old chunk's tail is abandoned, as in Go; the new one's
         * first word links it into persistentChunks. */
        *pa->other_sys += PERSISTENT_CHUNK_SIZE;
        pa->has_chunk = true;
        pa->off = round_up(pa->ptr_size, align);
    }
    pa->off += size;
    if (stat != pa->other_sys) {
        if (stat != NULL) {
            *stat += size;
        }
        *pa->other_sys -= size;
    }
}

void
fixalloc_init(fixalloc *f, uint64_t go_size, size_t real_size,
              fixalloc_first_fn first, void *arg, uint64_t *stat,
              persistent_alloc *pa)
{
    memset(f, 0, sizeof(*f));
    f->go_size = go_size;
    f->real_size = round_up(real_size < sizeof(fixalloc_block)
                                ? sizeof(fixalloc_block)
                                : real_size,
                            GA_CACHE_LINE);
    f->first = first;
    f->arg = arg;
    f->stat = stat;
    f->pa = pa;
    f->zero = true;
}

/* real_chunk_new makes the real memory of one chunk (not charged). */
static real_chunk *
real_chunk_new(fixalloc *f)
{
    size_t nblocks = (size_t)(FIX_ALLOC_CHUNK / f->go_size);
    /* cache-line aligned and sized: see real_chunk */
    return meta_aligned(f->meta, sizeof(real_chunk) + nblocks * f->real_size);
}

bool
fixalloc_reserve(fixalloc *f, uint64_t n)
{
    if (f->spare != NULL || f->nfree + f->nchunk / f->go_size >= n) {
        return true;
    }
    f->spare = real_chunk_new(f);
    return f->spare != NULL;
}

/* fixalloc_new_chunk takes the real memory for one accounted 16 KiB chunk
 * (the spare, if one was made ahead) and charges it.  Returns false
 * (charging nothing) when malloc fails. */
static bool
fixalloc_new_chunk(fixalloc *f)
{
    real_chunk *c = f->spare != NULL ? f->spare : real_chunk_new(f);
    if (c == NULL) {
        return false;
    }
    f->spare = NULL;
    c->next = f->chunks;
    f->chunks = c;
    f->chunk = (char *)c->blocks;
    f->nchunk = FIX_ALLOC_CHUNK;
    persistent_alloc_charge(f->pa, FIX_ALLOC_CHUNK, 0, f->stat);
    return true;
}

void *
fixalloc_alloc(fixalloc *f)
{
    if (f->list != NULL) {
        fixalloc_block *b = f->list;
        f->list = b->next;
        f->nfree--;
        f->inuse += f->go_size;
        if (f->zero) {
            memset(b, 0, f->real_size);
        }
        return b;
    }
    if (f->nchunk < f->go_size && !fixalloc_new_chunk(f)) {
        return NULL;
    }
    void *p = f->chunk;
    if (f->first != NULL) {
        f->first(f->arg, p);
    }
    f->chunk += f->real_size;
    f->nchunk -= f->go_size;
    f->inuse += f->go_size;
    return p;
}

void
fixalloc_free(fixalloc *f, void *p)
{
    GA_ASSERT(p != NULL && f->inuse >= f->go_size);
    fixalloc_block *b = p;
    f->inuse -= f->go_size;
    b->next = f->list;
    f->list = b;
    f->nfree++;
}

void
fixalloc_release(fixalloc *f)
{
    real_chunk *c = f->chunks;
    while (c != NULL) {
        real_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(f->spare);
    f->spare = NULL;
    f->chunks = NULL;
    f->list = NULL;
    f->nfree = 0;
    f->chunk = NULL;
    f->nchunk = 0;
}
