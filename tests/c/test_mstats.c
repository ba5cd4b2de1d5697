/* MemStats at scale: mspan structs and allspans, gcBits arenas,
 * persistentalloc's chunks and sweepSpans, each counted as Go counts it.
 *
 * Go 1.13: src/runtime/mstats.go, mheap.go (recordspan, gcBitsArena),
 *          malloc.go (persistentalloc1), mgcsweepbuf.go.
 * Differs from Go: none in the numbers (design §3.4, design §3.5).
 * Locking: single-threaded.
 */
#include "heap_helpers.h"

/* Go's sweepSpans[0] (mgcsweepbuf.go gcSweepBuf): alloc_m pushes every
 * span it allocates, and without a GC nothing pops them.  The spine (256
 * pointers at first) and the blocks of 512 pointers are persistentalloc'd
 * to gc_sys, so out of other_sys: the bytes after n pushes (n <= 512 x
 * 256, the first spine's reach). */
static uint64_t
go_sweep_spans_bytes(uint64_t pushes, uint64_t ptr)
{
    if (pushes == 0) {
        return 0;
    }
    return 256 * ptr + (pushes + 511) / 512 * 512 * ptr;
}

/* mspan structs: 120 to a 16 KiB spanalloc chunk (mspan_sys); allspans
 * starts with 64 KiB / 8 = 8192 entries of other_sys and grows by 1.5x,
 * freeing the old array (recordspan, design §3.5). */
static void
test_allspans_accounting(void)
{
    ga_heap *h = VIRT("linux", "amd64");
    if (h == NULL) {
        return;
    }
    ga_addr first = MALLOC(h, 40000);
    CHECK(first == 0xc000000000);
    uint64_t other_before = 0;
    uint64_t pushes = 1; /* span allocations: sweepSpans pushes */
    uint64_t sweep_took = 0;
    bool crossed = false;
    ga_addr last = first;
    /* Five-page objects side by side until span struct 8193 is made. */
    for (int i = 0; i < 20000 && !crossed; i++) {
        ga_heap_info in = info_of(h);
        ga_mem_stats st = stats_of(h);
        ga_addr a = 0;
        ga_status s = ga_malloc(h, 0, 40000, false, &a);
        if (!CHECK_MSG(s == GA_OK, "malloc %d: %s", i, ga_status_name(s))) {
            break;
        }
        CHECK(a == last + 5 * GO_PAGE);
        last = a;
        pushes++;
        ga_heap_info in2 = info_of(h);
        /* (A growth with no free tail to merge makes two fresh structs
         * in one allocation, so the count may jump past 8193.) */
        if (in.nallspans <= 8192 && in2.nallspans > 8192) {
            crossed = true;
            other_before = st.other_sys;
            sweep_took = go_sweep_spans_bytes(pushes, 8) -
                         go_sweep_spans_bytes(pushes - 1, 8);
        }
    }
    VERIFY(h);
    CHECK(crossed);
    ga_mem_stats st = stats_of(h);
    ga_heap_info in = info_of(h);
    /* The new allspans array: 8192 * 3/2 = 12288 entries, 98,304 bytes,
     * replaces the 65,536-byte one.  (Push 8193 opened a sweepSpans
     * block in the persistentalloc chunk.) */
    CHECK(sweep_took == 4096);
    CHECK_MSG(st.other_sys == other_before + 98304 - 65536 - sweep_took,
              "other_sys %" PRIu64 " -> %" PRIu64, other_before, st.other_sys);
    /* Fresh structs are carved in order, 120 per chunk. */
    CHECK_MSG(st.mspan_sys == (in.nallspans + 119) / 120 * 16384,
              "mspan_sys %" PRIu64 " for %" PRIu64 " structs", st.mspan_sys,
              in.nallspans);
    CHECK(st.mspan_inuse == ga_spans(h, NULL, 0) * GO_SIZEOF_MSPAN);
    ga_heap_free(h);
}

/* gcBits arenas (mheap.go gcBitsArena, newMarkBits, newAllocBits;
 * mbitmap.go initSpan): 64 KiB sysAlloc'd to gc_sys, of which a header of
 * two words (free, next) leaves 65,520 bytes of bits on a 64-bit port and
 * 65,528 on a 32-bit one.  initSpan takes a span's mark bits, then its
 * alloc bits: two bump allocations of ceil(nelems/64)*8 bytes each from
 * the newest arena, a fresh arena when one does not fit (the old one's
 * tail is never used again). */
static void
test_gc_bits_arenas_small(void)
{
    ga_heap *h = VIRT("linux", "amd64");
    if (h == NULL) {
        return;
    }
    /* The heapArena struct, the first allArenas array (see 2.), and
     * sweepSpans with its first block (256 spans pushed) */
    const uint64_t meta = GO_SIZEOF_HEAP_ARENA_AMD64 + 4096 +
                          go_sweep_spans_bytes(256, 8);
    /* The 8-byte class: 1024 slots a span, two bitmaps of 128 bytes.
     * 255 spans take 65,280 bytes: one arena. */
    /* ga_malloc, not MALLOC: a verify per allocation would make this
     * loop quadratic (minutes) */
    for (uint64_t i = 0; i < 255 * 1024; i++) {
        ga_addr a;
        if (!CHECK(ga_malloc(h, 0, 8, false, &a) == GA_OK)) {
            break;
        }
    }
    VERIFY(h);
    ga_mem_stats st = stats_of(h);
    CHECK_MSG(st.gc_sys == meta + 65536, "255 spans: gc_sys %" PRIu64,
              st.gc_sys);
    /* Span 256: its mark bits fit (65,408 bytes), its alloc bits do not
     * (65,536 > 65,520): a second arena. */
    MALLOC(h, 8);
    st = stats_of(h);
    CHECK_MSG(st.gc_sys == meta + 2 * 65536, "256 spans: gc_sys %" PRIu64,
              st.gc_sys);
    VERIFY(h);
    ga_heap_free(h);
}

/* Large spans take two 8-byte bitmaps each (nelems 1).  A big object
 * made and freed first gives later ones free pages without growth, so
 * gc_sys moves only by gcBits arenas.  8,191 spans (the big one with
 * them) need 16,382 eight-byte allocations: on a 32-bit port two arenas
 * hold 2 x 8,191 of them (a span's pair may straddle two arenas), on a
 * 64-bit port they hold 2 x 8,190, and a third arena is needed. */
static void
gc_bits_arenas_large_case(const char *goarch, uint64_t want_arenas)
{
    ga_heap *h = VIRT("linux", goarch);
    if (h == NULL) {
        return;
    }
    const uint64_t n = 8190;
    const uint64_t ptr = info_of(h).ptr_size;
    ga_addr big = MALLOC(h, n * 5 * GO_PAGE);
    FREE(h, big);
    /* the big object's pair opened the first arena; sweepSpans has it */
    uint64_t meta = stats_of(h).gc_sys - 65536 - go_sweep_spans_bytes(1, ptr);
    for (uint64_t i = 0; i < n; i++) {
        ga_addr a = 0; /* ga_malloc: no verify per allocation (quadratic) */
        ga_status s = ga_malloc(h, 0, 40000, false, &a); /* 5 pages */
        if (!CHECK(s == GA_OK && a == big + i * 5 * GO_PAGE)) {
            break;
        }
    }
    VERIFY(h);
    ga_mem_stats st = stats_of(h);
    CHECK_MSG(st.gc_sys == meta + want_arenas * 65536 +
                               go_sweep_spans_bytes(n + 1, ptr),
              "%s: gc_sys %" PRIu64 ", want %" PRIu64 " arenas", goarch,
              st.gc_sys - meta, want_arenas);
    VERIFY(h);
    ga_heap_free(h);
}

static void
test_gc_bits_arenas_large(void)
{
    gc_bits_arenas_large_case("amd64", 3);
    gc_bits_arenas_large_case("386", 2);
}

/* persistentAlloc (malloc.go persistentalloc1) carves its requests from
 * 256 KiB chunks sysAlloc'd to other_sys, each at its alignment, but a
 * fresh chunk's first word links it into persistentChunks: the offset
 * starts at PtrSize, rounded to the request's alignment.  go_chunk
 * replays that. */
typedef struct go_chunk {
    uint64_t off;
    uint64_t n; /* chunks opened */
} go_chunk;

static void
go_chunk_alloc(go_chunk *c, uint64_t size, uint64_t align)
{
    c->off = round_up(c->off, align);
    if (c->n == 0 || c->off + size > 262144) {
        c->n++;
        c->off = round_up(8, align);
    }
    c->off += size;
}

/* The requests on amd64: the hint and mcache fixalloc chunks at
 * mallocinit; allArenas' 4 KiB array and the treap-node chunk at the first
 * growth; a 16 KiB spanalloc chunk every 120 spans; sweepSpans' spine
 * (2 KiB) and a 4 KiB block every 512 pushes, cache-line (64) aligned. */
static void
test_persistent_chunk_header(void)
{
    ga_heap *h = VIRT("linux", "amd64");
    if (h == NULL) {
        return;
    }
    go_chunk c = {0, 0};
    go_chunk_alloc(&c, 16384, 8); /* arena hints */
    go_chunk_alloc(&c, 16384, 8); /* m0's mcache */
    uint64_t span_chunks = 0;
    bool opened_third = false;
    for (uint64_t i = 0; i < 28 * 120; i++) {
        if (MALLOC(h, 40000) == 0) {
            break;
        }
        ga_mem_stats st = stats_of(h);
        if (i == 0) {
            go_chunk_alloc(&c, 4096, 8);  /* allArenas */
            go_chunk_alloc(&c, 16384, 8); /* treap nodes */
        }
        for (; span_chunks < st.mspan_sys / 16384; span_chunks++) {
            go_chunk_alloc(&c, 16384, 8);
        }
        if (i == 0) {
            go_chunk_alloc(&c, 2048, 64); /* sweepSpans' spine */
        }
        if (i % 512 == 0) {
            go_chunk_alloc(&c, 4096, 64); /* a sweepSpans block */
        }
        opened_third |= c.n == 3;
        /* allspans: 8192 entries of 8 bytes, sysAlloc'd to other_sys */
        uint64_t want = c.n * 262144 - st.mcache_sys - st.mspan_sys - 4096 -
                        go_sweep_spans_bytes(i + 1, 8) + 65536;
        if (!CHECK_MSG(info_of(h).nallspans <= 8192 && st.other_sys == want,
                       "object %" PRIu64 ", %" PRIu64
                       " span chunks: other_sys %" PRIu64 ", want %" PRIu64
                       " (%" PRIu64 " chunks)",
                       i, span_chunks, st.other_sys, want, c.n)) {
            break;
        }
    }
    CHECK(opened_third);
    VERIFY(h);
    ga_heap_free(h);
}

/* alloc_m pushes every span it allocates on sweepSpans, frees take none
 * off (only a sweep would), and a block of 512 pushes is 4 KiB of
 * gc_sys: the same object made and freed 513 times needs two blocks. */
static void
test_sweep_spans_accounting(void)
{
    ga_heap *h = VIRT("linux", "amd64");
    if (h == NULL) {
        return;
    }
    for (int i = 0; i < 513; i++) {
        ga_addr a = MALLOC(h, 100000);
        if (a == 0) {
            break;
        }
        ga_mem_stats st = stats_of(h);
        /* heapArena, allArenas, one gcBits arena (513 x 16 bytes),
         * the spine and the blocks */
        uint64_t blocks = i < 512 ? 1 : 2;
        CHECK_MSG(st.gc_sys == GO_SIZEOF_HEAP_ARENA_AMD64 + 4096 + 65536 +
                                   2048 + blocks * 4096,
                  "push %d: gc_sys %" PRIu64, i + 1, st.gc_sys);
        FREE(h, a);
    }
    CHECK(go_sweep_spans_bytes(513, 8) == 2048 + 2 * 4096);
    VERIFY(h);
    ga_heap_free(h);
}

int
main(void)
{
    CHECK_RUN(test_allspans_accounting());
    CHECK_RUN(test_gc_bits_arenas_small());
    CHECK_RUN(test_gc_bits_arenas_large());
    CHECK_RUN(test_persistent_chunk_header());
    CHECK_RUN(test_sweep_spans_accounting());
    int failed = check_summary("mstats");
    return failed > 255 ? 255 : failed;
}
