/* fixalloc and persistentalloc's accounting, unit by unit: chunk carving,
 * free list reuse, inuse accounting, reserve, and the metadata fault
 * injection (meta_alloc) every chunk goes through.
 *
 * A fixalloc is driven here on its own, with a stat and a persistentalloc
 * of the test's: every number is Go's (16 KiB chunks, 256 KiB
 * persistentalloc chunks whose first word is a link, 64 KiB and up
 * sysAlloc'd directly), spelled out here.
 * Go 1.13: src/runtime/mfixalloc.go (init, alloc, free), malloc.go
 *          (persistentalloc1).
 * Differs from Go: real and accounted block sizes differ; reserve and
 *          the fault injection are goalloc's (csrc/fixalloc.h).
 * Locking: single-threaded.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixalloc.h"

#define CHUNK 16384      /* _FixAllocChunk */
#define PCHUNK 262144    /* persistentChunkSize */
#define GO_MSPAN 136     /* unsafe.Sizeof(mspan{}) on amd64 */
#define PER_CHUNK 120    /* 16384 / 136 */
#define REAL 200         /* a C struct bigger than Go's */
#define REAL_ROUNDED 256 /* cache-line sized */

typedef struct rig {
    fixalloc f;
    persistent_alloc pa;
    meta_alloc meta;
    uint64_t stat;      /* the MemStats field the fixalloc charges */
    uint64_t other_sys; /* persistentalloc's chunks */
    int fresh;          /* blocks carved fresh (the first hook) */
} rig;

static void
count_fresh(void *arg, void *p)
{
    rig *r = arg;
    r->fresh++;
    memset(p, 0x5a, REAL); /* Go's first hook may write the block */
}

static void
rig_init(rig *r)
{
    memset(r, 0, sizeof(*r));
    persistent_alloc_init(&r->pa, &r->other_sys, 8);
    fixalloc_init(&r->f, GO_MSPAN, REAL, count_fresh, r, &r->stat, &r->pa);
    r->f.meta = &r->meta;
}

/* Blocks are carved in order from 16 KiB chunks: 120 of Go's 136-byte
 * mspans a chunk, each chunk charged to the stat (and out of
 * persistentalloc's other_sys) when its first block is carved. */
static void
test_carving(void)
{
    rig r;
    rig_init(&r);
    CHECK(r.f.real_size == REAL_ROUNDED);
    CHECK(r.stat == 0 && r.other_sys == 0 && r.f.inuse == 0);
    char *b[PER_CHUNK + 1];
    for (int i = 0; i < PER_CHUNK + 1; i++) {
        b[i] = fixalloc_alloc(&r.f);
        if (!CHECK(b[i] != NULL)) {
            return;
        }
        CHECK(((uintptr_t)b[i] & 63) == 0); /* cache-line aligned */
        if (i > 0 && i < PER_CHUNK) {
            CHECK_MSG(b[i] == b[i - 1] + REAL_ROUNDED, "block %d", i);
        }
        if (i == 0) {
            /* one chunk: 16 KiB charged, the rest of persistentalloc's
             * first 256 KiB chunk stays other_sys */
            CHECK(r.stat == CHUNK && r.other_sys == PCHUNK - CHUNK);
        }
    }
    CHECK(r.fresh == PER_CHUNK + 1);
    CHECK_MSG(r.stat == 2 * CHUNK, "stat %llu after %d blocks",
              (unsigned long long)r.stat, PER_CHUNK + 1);
    CHECK(r.other_sys == PCHUNK - 2 * CHUNK);
    CHECK(r.f.inuse == (PER_CHUNK + 1) * (uint64_t)GO_MSPAN);
    /* 16 bytes of the first chunk were left unused: 16384 - 120 * 136 */
    CHECK(r.f.nchunk == CHUNK - GO_MSPAN);
    fixalloc_release(&r.f);
}

/* A freed block is handed out next (a LIFO free list), zeroed, without
 * the first hook and without a new chunk. */
static void
test_free_list(void)
{
    rig r;
    rig_init(&r);
    char *a = fixalloc_alloc(&r.f);
    char *b = fixalloc_alloc(&r.f);
    char *c = fixalloc_alloc(&r.f);
    CHECK(a != NULL && b != NULL && c != NULL);
    memset(b, 0xab, REAL_ROUNDED);
    fixalloc_free(&r.f, b);
    fixalloc_free(&r.f, a);
    CHECK(r.f.nfree == 2 && r.f.inuse == GO_MSPAN);
    int fresh = r.fresh;
    CHECK(fixalloc_alloc(&r.f) == a);
    char *again = fixalloc_alloc(&r.f);
    CHECK(again == b);
    size_t dirty = 0;
    for (size_t i = 0; again != NULL && i < REAL_ROUNDED; i++) {
        dirty += again[i] != 0;
    }
    CHECK_MSG(dirty == 0, "%zu dirty bytes in a reused block", dirty);
    CHECK(r.fresh == fresh && r.f.nfree == 0);
    CHECK(r.f.inuse == 3 * GO_MSPAN && r.stat == CHUNK);
    /* zero off: Go's spanalloc keeps the old contents */
    r.f.zero = false;
    memset(c, 0xcd, REAL_ROUNDED);
    fixalloc_free(&r.f, c);
    char *d = fixalloc_alloc(&r.f);
    CHECK(d == c && (unsigned char)d[REAL_ROUNDED - 1] == 0xcd);
    fixalloc_release(&r.f);
}

/* fixalloc_reserve: nothing to do while the free list and the chunk
 * hold n blocks; otherwise the next chunk's memory is made now and
 * charged only when a block is carved from it. */
static void
test_reserve(void)
{
    rig r;
    rig_init(&r);
    void *p[PER_CHUNK];
    for (int i = 0; i < PER_CHUNK; i++) {
        p[i] = fixalloc_alloc(&r.f);
    }
    CHECK(r.f.nchunk < GO_MSPAN); /* the chunk is used up */
    fixalloc_free(&r.f, p[0]);
    CHECK(fixalloc_reserve(&r.f, 1) && r.f.spare == NULL);
    CHECK(fixalloc_reserve(&r.f, 2) && r.f.spare != NULL);
    CHECK_MSG(r.stat == CHUNK, "reserve charged: stat %llu",
              (unsigned long long)r.stat);
    void *spare = r.f.spare;
    /* a second reserve keeps the spare */
    CHECK(fixalloc_reserve(&r.f, 2) && r.f.spare == spare);
    CHECK(fixalloc_alloc(&r.f) == p[0]); /* the free list first */
    CHECK(r.stat == CHUNK);
    char *q = fixalloc_alloc(&r.f); /* carved from the spare */
    CHECK(r.f.spare == NULL && r.stat == 2 * CHUNK);
    CHECK(q != NULL && (void *)q > spare &&
          q < (char *)spare + GA_CACHE_LINE + REAL_ROUNDED);
    /* a reserve whose chunk cannot be made fails with nothing changed */
    for (int i = 1; i < PER_CHUNK; i++) {
        fixalloc_alloc(&r.f);
    }
    r.meta.fail_at = 1;
    CHECK(!fixalloc_reserve(&r.f, 1));
    CHECK(r.f.spare == NULL && r.stat == 2 * CHUNK && r.meta.fail_at == 0);
    CHECK(fixalloc_reserve(&r.f, 1) && r.f.spare != NULL);
    fixalloc_release(&r.f);
    CHECK(r.f.spare == NULL && r.f.chunks == NULL);
}

/* meta_alloc: fail_at = n makes the n-th metadata allocation from then
 * on fail, once.  A fixalloc whose new chunk fails returns NULL and
 * charges nothing; the next call succeeds. */
static void
test_fail_metadata(void)
{
    meta_alloc m = {3};
    CHECK(!meta_alloc_fails(&m) && !meta_alloc_fails(&m));
    CHECK(meta_alloc_fails(&m) && m.fail_at == 0);
    CHECK(!meta_alloc_fails(&m) && !meta_alloc_fails(NULL));
    m.fail_at = 1;
    CHECK(meta_calloc(&m, 8) == NULL && m.fail_at == 0);
    void *p = meta_calloc(&m, 0); /* size 0: still a block */
    CHECK(p != NULL);
    free(p);
    m.fail_at = 1;
    CHECK(meta_aligned(&m, 100) == NULL);
    p = meta_aligned(&m, 100);
    CHECK(p != NULL && ((uintptr_t)p & (GA_CACHE_LINE - 1)) == 0);
    free(p);

    rig r;
    rig_init(&r);
    r.meta.fail_at = 1;
    CHECK(fixalloc_alloc(&r.f) == NULL);
    CHECK(r.stat == 0 && r.other_sys == 0 && r.f.inuse == 0 && r.fresh == 0 &&
          r.f.chunks == NULL);
    void *b = fixalloc_alloc(&r.f);
    CHECK(b != NULL && r.stat == CHUNK && r.f.inuse == GO_MSPAN);
    /* blocks from the current chunk need no metadata allocation */
    r.meta.fail_at = 1;
    CHECK(fixalloc_alloc(&r.f) != NULL && r.meta.fail_at == 1);
    fixalloc_release(&r.f);
}

/* persistentalloc's accounting (persistentalloc1): small requests are
 * carved at their alignment from 256 KiB chunks whose first word is a
 * link, charged to their stat and out of other_sys; 64 KiB and more go
 * to the stat alone (NULL: to nothing). */
static void
test_persistent_charge(void)
{
    uint64_t other = 0, gc = 0;
    persistent_alloc pa;
    persistent_alloc_init(&pa, &other, 8);
    persistent_alloc_charge(&pa, 65536, 0, &gc);
    CHECK(gc == 65536 && other == 0 && !pa.has_chunk);
    persistent_alloc_charge(&pa, 65536, 0, NULL);
    CHECK(gc == 65536 && other == 0);
    persistent_alloc_charge(&pa, 100, 64, &gc);
    CHECK(pa.has_chunk && pa.off == 64 + 100);
    CHECK(gc == 65536 + 100 && other == PCHUNK - 100);
    persistent_alloc_charge(&pa, 4096, 0, NULL); /* nil stat: still out */
    CHECK(pa.off == 168 + 4096 && other == PCHUNK - 100 - 4096);
    persistent_alloc_charge(&pa, 1000, 0, &other); /* stays other_sys */
    CHECK(other == PCHUNK - 100 - 4096);
    /* a request that does not fit opens a chunk; the tail is lost */
    persistent_alloc_charge(&pa, PCHUNK - 8, 0, NULL);
    CHECK(gc == 65536 + 100); /* >= 64 KiB: direct, charged to nothing */
    uint64_t before = other;
    persistent_alloc_charge(&pa, 60000, 0, &gc);
    persistent_alloc_charge(&pa, 60000, 0, &gc);
    persistent_alloc_charge(&pa, 60000, 0, &gc);
    CHECK(pa.off == 5264 + 180000);
    persistent_alloc_charge(&pa, 60000, 0, &gc); /* to 245264: fits */
    CHECK(other == before - 240000);
    persistent_alloc_charge(&pa, 60000, 0, &gc); /* 305264: new chunk */
    CHECK_MSG(other == before - 300000 + PCHUNK && pa.off == 8 + 60000,
              "other_sys %llu off %llu", (unsigned long long)other,
              (unsigned long long)pa.off);
}

int
main(void)
{
    CHECK_RUN(test_carving());
    CHECK_RUN(test_free_list());
    CHECK_RUN(test_reserve());
    CHECK_RUN(test_fail_metadata());
    CHECK_RUN(test_persistent_charge());
    int failed = check_summary("fixalloc");
    return failed > 255 ? 255 : failed;
}
