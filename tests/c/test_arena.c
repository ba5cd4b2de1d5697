/* Arenas through the facade: the first arena and its statistics, growth
 * by whole arenas (go1.13.0) and growth into curArena (go1.13.8).
 *
 * Every expected number is computed here from Go 1.13's formulas
 * (design chapters 3 and 4), and every mutating step is followed by
 * ga_verify.  The arena index itself is test_arena_index.c's.
 * Go 1.13: src/runtime/malloc.go (sysAlloc, largeAlloc), mheap.go
 *          (grow, allocSpanLocked), go1.13.8's curArena.
 * Differs from Go: objects are freed explicitly (design §6).
 * Locking: single-threaded.
 */
#include "heap_helpers.h"

/* ---- The first arena --------------------------------------------- */

/* check_first_growth checks a heap right after its first ga_malloc of
 * 100000 bytes returned a.  want_hints is the hint table before. */
static void
check_first_growth(ga_heap *h, ga_addr a, const ga_addr *want_hints,
                   size_t nwant, const char *what)
{
    bool go1130 = info_of(h).release == GA_RELEASE_GO1_13_0;
    /* largeAlloc: npages = size >> _PageShift, +1 for the remainder:
     * 100000 = 12 * 8192 + 1696, so 13 pages. */
    const uint64_t np = 13;
    const uint64_t inuse = np * GO_PAGE;
    CHECK(pages_for(100000) == np);

    /* sysAlloc took the first hint whose reservation landed where asked;
     * every hint before it was discarded (design §4.3), and the
     * one it used moved up by the 64 MiB it gave. */
    size_t left = hint_count(h);
    size_t discarded = nwant - left;
    CHECK_MSG(left <= nwant && discarded < nwant && a == want_hints[discarded],
              "%s: object at 0x%" PRIx64 ", %zu hints discarded", what, a,
              discarded);
    CHECK_MSG(head_hint(h, NULL) == a + ARENA_64,
              "%s: head hint 0x%" PRIx64 ", want 0x%" PRIx64, what,
              head_hint(h, NULL), a + ARENA_64);

    LARGE_SPAN(h, a, 100000, false);
    /* Interior addresses are reported through their span. */
    ga_span_info s;
    memset(&s, 0, sizeof s);
    CHECK(ga_span_of(h, a + 99999, &s) && s.base == a);
    CHECK(ga_span_of(h, a + np * GO_PAGE - 1, &s) && s.base == a);

    ga_heap_info in = info_of(h);
    if (go1130) {
        /* The rest of the arena is one free span, still released: grow
         * made the whole arena a scavenged free span (fresh memory is
         * untouched) and allocSpanLocked carved the low 13 pages out of
         * it. */
        span_want layout[] = {
            {a, np, SPAN_IN_USE, false},
            {a + inuse, ARENA_64 / GO_PAGE - np, SPAN_FREE, true},
        };
        LAYOUT(h, layout);
        CHECK(in.cur_arena_base == 0 && in.cur_arena_end == 0);
    }
    else {
        /* go1.13.8: grow made a span of the 13 pages asked for (rounded
         * to physPageSize: no change) off the bottom of curArena, which
         * keeps the rest of the arena, mapped but no span. */
        span_want layout[] = {{a, np, SPAN_IN_USE, false}};
        LAYOUT(h, layout);
        CHECK_MSG(in.cur_arena_base == a + inuse &&
                      in.cur_arena_end == a + ARENA_64,
                  "%s: curArena [0x%" PRIx64 ", 0x%" PRIx64 ")", what,
                  in.cur_arena_base, in.cur_arena_end);
        ga_span_info none;
        CHECK(!ga_span_of(h, a + inuse, &none) &&
              !ga_span_of(h, a + ARENA_64 - 1, &none));
    }

    arena_list ar = get_arenas(h);
    CHECK(ar.n == 1);
    if (ar.n == 1) {
        /* arenaIndex(p) = (p + 2^47) / 64 MiB; 0x203000 for 0xc000000000
         * (design §3.2). */
        uint64_t idx = (a + ((uint64_t)1 << 47)) / ARENA_64;
        CHECK(ar.v[0].base == a && ar.v[0].index == idx && ar.v[0].l1 == 0 &&
              ar.v[0].l2 == idx);
        if (a == 0xc000000000) {
            CHECK(idx == 0x203000);
        }
    }
    free(ar.v);

    ga_mem_stats st = stats_of(h);
    /* sysAlloc: n = round(n, heapArenaBytes), sysMap(v, size,
     * &memstats.heap_sys): one 64 MiB arena. */
    CHECK_MSG(st.heap_sys == ARENA_64, "%s: heap_sys %" PRIu64, what,
              st.heap_sys);
    /* alloc_m: allocSpanLocked(npage, &memstats.heap_inuse) adds
     * npage << _PageShift. */
    CHECK_MSG(st.heap_inuse == inuse, "%s: heap_inuse %" PRIu64, what,
              st.heap_inuse);
    /* grow (go1.13.8: when sysAlloc maps the arena): heap_idle += size;
     * allocSpanLocked: heap_idle -= npage pages. */
    CHECK(st.heap_idle == ARENA_64 - inuse);
    /* grow: heap_released += size; allocSpanLocked: -= s.released(), then
     * += the remainder's released bytes: the whole free remainder
     * (go1.13.8: curArena, released and idle though no span). */
    CHECK_MSG(st.heap_released == st.heap_idle, "%s: heap_released %" PRIu64,
              what, st.heap_released);
    /* alloc_m (large): largealloc += elemsize = npages << _PageShift;
     * updatememstats: heap_alloc = total_alloc - freed. */
    CHECK(st.heap_alloc == inuse && st.alloc == inuse &&
          st.total_alloc == inuse);
    /* nlargealloc++ ; heap_objects = nmalloc - nfree. */
    CHECK(st.mallocs == 1 && st.frees == 0 && st.heap_objects == 1);
    CHECK(st.lookups == 0 && st.stack_inuse == 0 && st.stack_sys == 0 &&
          st.buck_hash_sys == 0);
    /* spanalloc: one 16 KiB fixalloc chunk (_FixAllocChunk) charged to
     * mspan_sys, holding the grown span and (go1.13.0) the carved one
     * (136 B each); go1.13.8's grown span fits the request exactly. */
    const uint64_t nspans = go1130 ? 2 : 1;
    CHECK(st.mspan_sys == 16384);
    CHECK(st.mspan_inuse == nspans * GO_SIZEOF_MSPAN);
    /* cachealloc: one chunk for m0's mcache (mallocinit's allocmcache). */
    CHECK(st.mcache_sys == 16384);
    CHECK(st.mcache_inuse == GO_SIZEOF_MCACHE);
    /* sysAlloc: the heapArena struct (2,164,736 B on amd64) comes from
     * persistentalloc(..., &memstats.gc_sys); being >= 64 KiB it is a
     * direct sysAlloc charged to gc_sys.  allArenas' first backing array
     * is physPageSize (4096) bytes, persistentalloc'd to gc_sys.
     * largeAlloc's initSpan takes the span's mark and alloc bits (8 bytes
     * each) from the gcBits arenas: the first one, 64 KiB sysAlloc'd to
     * gc_sys.  alloc_m pushed the span on sweepSpans: its spine (2 KiB)
     * and first block (4 KiB), persistentalloc'd to gc_sys. */
    CHECK_MSG(st.gc_sys ==
                  GO_SIZEOF_HEAP_ARENA_AMD64 + 4096 + 65536 + 2048 + 4096,
              "%s: gc_sys %" PRIu64, what, st.gc_sys);
    /* other_sys: persistentalloc's first 256 KiB chunk (sysAlloc'd to
     * other_sys) minus what was re-charged from it to mcache_sys (16 KiB),
     * mspan_sys (16 KiB) and gc_sys (4 KiB of allArenas, 6 KiB of
     * sweepSpans); the treap-node and hint fixalloc chunks are other_sys
     * already; plus recordspan's allspans array of 64 KiB / PtrSize
     * entries, sysAlloc'd to other_sys. */
    CHECK_MSG(st.other_sys ==
                  262144 - 16384 - 16384 - 4096 - 2048 - 4096 + 65536,
              "%s: other_sys %" PRIu64, what, st.other_sys);
    /* updatememstats: Sys is the sum of the *Sys fields. */
    CHECK(st.sys == st.heap_sys + st.stack_sys + st.mspan_sys + st.mcache_sys +
                        st.buck_hash_sys + st.gc_sys + st.other_sys);

    in = info_of(h);
    CHECK(in.pages_in_use == np && in.nallspans == nspans &&
          in.unscav_huge_pages == 0);
}

static void
first_growth_virtual(ga_release r)
{
    ga_heap *h = VIRT_R("linux", "amd64", r);
    if (h == NULL) {
        return;
    }
    ga_addr want[NUM_HINTS_64];
    size_t n = want_hints_default(want);
    ga_addr a = MALLOC(h, 100000);
    /* In the simulator nothing is in the way: the first hint. */
    CHECK_MSG(a == 0xc000000000, "virtual: first object at 0x%" PRIx64, a);
    CHECK(hint_count(h) == NUM_HINTS_64);
    check_first_growth(h, a, want, n, "virtual");
    /* ga_alloc returns pointers only on the os backing. */
    CHECK(ga_alloc(h, 0, 100000, false) == NULL);
    VERIFY(h);
    ga_heap_free(h);
}

static void
test_first_growth_virtual(void)
{
    for (size_t i = 0; i < NRELEASES; i++) {
        first_growth_virtual(release_of(i));
    }
}

static void
first_growth_os(ga_release r)
{
    ga_options o;
    opts(&o, "linux", "amd64", false, GA_BACKING_OS);
    ga_options_set_release(&o, r);
    ga_heap *h = OPEN(&o);
    if (h == NULL) {
        return;
    }
    ga_addr want[NUM_HINTS_64];
    size_t n = want_hints_default(want);
    check_hint_table(h, want, n, "os");
    /* Under ASan the shadow memory covers 0x00c0...: the first hints
     * collide there and are discarded; check_first_growth accepts any
     * initial hint provided all earlier ones are gone. */
    ga_addr a = MALLOC(h, 100000);
    if (a == 0) {
        ga_heap_free(h);
        return;
    }
    check_first_growth(h, a, want, n, "os");
    /* Real memory: writable, and handed out zeroed. */
    unsigned char *p = (unsigned char *)(uintptr_t)a;
    CHECK(p[0] == 0 && p[99999] == 0);
    memset(p, 0xab, 100000);
    void *q = ga_alloc(h, 0, 200000, true);
    CHECK(q != NULL && (ga_addr)(uintptr_t)q == a + 13 * GO_PAGE);
    if (q != NULL) {
        memset(q, 0xcd, 200000);
        LARGE_SPAN(h, (ga_addr)(uintptr_t)q, 200000, true);
        FREE(h, (ga_addr)(uintptr_t)q);
    }
    FREE(h, a);
    CHECK(SCAVENGE(h, UINT64_MAX) ==
          13 * GO_PAGE + pages_for(200000) * GO_PAGE);
    ga_mem_stats st = stats_of(h);
    CHECK(st.heap_released == ARENA_64 && st.heap_idle == ARENA_64);
    /* Released memory is reused and zeroed again where needed. */
    ga_addr b = MALLOC(h, 100000);
    CHECK(b == a);
    if (b != 0) {
        p = (unsigned char *)(uintptr_t)b;
        CHECK(p[0] == 0 && p[50000] == 0 && p[99999] == 0);
    }
    ga_heap_free(h);
}

static void
test_first_growth_os(void)
{
    for (size_t i = 0; i < NRELEASES; i++) {
        first_growth_os(release_of(i));
    }
}

/* ---- Growth by whole arenas (go1.13.0) --------------------------- */

static void
test_growth_arenas(void)
{
    ga_heap *h = VIRT0("linux", "amd64");
    if (h == NULL) {
        return;
    }
    const ga_addr B = 0xc000000000;
    const uint64_t ppa = ARENA_64 / GO_PAGE; /* 8192 pages per arena */
    ga_addr a1 = MALLOC(h, 100000);          /* 13 pages */
    CHECK(a1 == B);

    /* One page more than the free remainder: grow by one arena at the
     * moved hint, 0xc004000000; the fresh arena coalesces with the
     * remainder (both scavenged) and the object is carved from the low
     * end of the merged span, so it crosses the arena boundary. */
    uint64_t np2 = ppa - 13 + 1;
    ga_addr a2 = MALLOC(h, np2 * GO_PAGE);
    CHECK_MSG(a2 == B + 13 * GO_PAGE, "a2 = 0x%" PRIx64, a2);
    LARGE_SPAN(h, a2, np2 * GO_PAGE, false);
    CHECK(head_hint(h, NULL) == B + 2 * ARENA_64);
    ga_span_info s;
    memset(&s, 0, sizeof s);
    /* setSpans across the boundary: the first page of the second arena
     * maps to the span that started in the first. */
    CHECK(ga_span_of(h, B + ARENA_64, &s) && s.base == a2);
    CHECK(ga_span_of(h, B + ARENA_64 - 1, &s) && s.base == a2);
    ga_mem_stats st = stats_of(h);
    CHECK(st.heap_sys == 2 * ARENA_64);
    CHECK(st.heap_inuse == (13 + np2) * GO_PAGE);

    /* 100 MiB rounds up to two arenas (128 MiB) at 0xc008000000; they
     * merge with the free tail of the second arena. */
    ga_addr a3 = MALLOC(h, 100 * MiB);
    ga_addr tail = B + (13 + np2) * GO_PAGE;
    CHECK_MSG(a3 == tail, "a3 = 0x%" PRIx64, a3);
    LARGE_SPAN(h, a3, 100 * MiB, false);
    CHECK(head_hint(h, NULL) == B + 4 * ARENA_64);
    st = stats_of(h);
    CHECK(st.heap_sys == 4 * ARENA_64);
    CHECK(st.heap_released == st.heap_idle);

    arena_list ar = get_arenas(h);
    CHECK(ar.n == 4);
    for (size_t i = 0; i < ar.n && i < 4; i++) {
        /* allArenas, in creation order */
        CHECK_MSG(ar.v[i].base == B + i * ARENA_64 &&
                      ar.v[i].index == 0x203000 + i,
                  "arena %zu at 0x%" PRIx64, i, ar.v[i].base);
    }
    free(ar.v);

    ga_addr end3 = a3 + 100 * MiB;
    span_want grown[] = {
        {B, 13, SPAN_IN_USE, false},
        {a2, np2, SPAN_IN_USE, false},
        {a3, 100 * MiB / GO_PAGE, SPAN_IN_USE, false},
        {end3, (B + 4 * ARENA_64 - end3) / GO_PAGE, SPAN_FREE, true},
    };
    LAYOUT(h, grown);

    /* Coalescing across arenas: freeing a2 then a1 makes one unscavenged
     * span that crosses the first arena boundary. */
    FREE(h, a2);
    FREE(h, a1);
    span_want merged[] = {
        {B, 13 + np2, SPAN_FREE, false},
        {a3, 100 * MiB / GO_PAGE, SPAN_IN_USE, false},
        {end3, (B + 4 * ARENA_64 - end3) / GO_PAGE, SPAN_FREE, true},
    };
    LAYOUT(h, merged);
    CHECK(ga_span_of(h, B + ARENA_64, &s) && s.base == B &&
          s.state == SPAN_FREE);
    /* Freeing a3 joins the unscavenged span below but not the released
     * span above (design §4.7). */
    FREE(h, a3);
    span_want two[] = {
        {B, (end3 - B) / GO_PAGE, SPAN_FREE, false},
        {end3, (B + 4 * ARENA_64 - end3) / GO_PAGE, SPAN_FREE, true},
    };
    LAYOUT(h, two);
    /* Releasing everything leaves one span over all four arenas. */
    uint64_t rel = SCAVENGE(h, UINT64_MAX);
    CHECK_MSG(rel == end3 - B, "released %" PRIu64, rel);
    span_want one[] = {{B, 4 * ppa, SPAN_FREE, true}};
    LAYOUT(h, one);
    st = stats_of(h);
    CHECK(st.heap_released == 4 * ARENA_64 && st.heap_idle == 4 * ARENA_64 &&
          st.heap_inuse == 0 && st.heap_objects == 0 && st.mallocs == 3 &&
          st.frees == 3 && st.heap_alloc == 0);
    CHECK(st.total_alloc == (13 + np2) * GO_PAGE + 100 * MiB);
    /* The next allocation starts at the bottom again. */
    ga_addr a4 = MALLOC(h, 3 * ARENA_64);
    CHECK(a4 == B);
    ga_heap_free(h);
}

/* ---- go1.13.8: growth into curArena ------------------------------ */

static void
check_cur_arena_at(ga_heap *h, ga_addr base, ga_addr end, int line)
{
    ga_heap_info in = info_of(h);
    CHECK_MSG(in.cur_arena_base == base && in.cur_arena_end == end,
              "line %d: curArena [0x%" PRIx64 ", 0x%" PRIx64
              "), want [0x%" PRIx64 ", 0x%" PRIx64 ")",
              line, in.cur_arena_base, in.cur_arena_end, base, end);
    /* heap_idle and heap_released count it (ReadMemStatsSlow). */
    ga_mem_stats st = stats_of(h);
    span_list l = get_spans(h);
    uint64_t idle = 0, released = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (l.v[i].state == SPAN_FREE) {
            idle += l.v[i].npages * GO_PAGE;
            released += l.v[i].scavenged ? l.v[i].npages * GO_PAGE : 0;
        }
    }
    free(l.v);
    CHECK_MSG(st.heap_idle == idle + (end - base) &&
                  st.heap_released == released + (end - base),
              "line %d: heap_idle %" PRIu64 " heap_released %" PRIu64, line,
              st.heap_idle, st.heap_released);
}

#define CUR_ARENA(h, base, end)                                               \
    check_cur_arena_at((h), (base), (end), __LINE__)

/* test_growth_arenas for go1.13.8: each growth adds the pages asked for;
 * sysAlloc maps whole arenas only when curArena is too small, and new
 * arenas that adjoin it extend it. */
static void
test_growth_cur_arena(void)
{
    ga_heap *h = VIRT("linux", "amd64");
    if (h == NULL) {
        return;
    }
    const ga_addr B = 0xc000000000;
    const uint64_t ppa = ARENA_64 / GO_PAGE;
    ga_addr a1 = MALLOC(h, 100000); /* 13 pages */
    CHECK(a1 == B);
    CUR_ARENA(h, B + 13 * GO_PAGE, B + ARENA_64);
    /* Growing inside curArena takes no address space. */
    ga_addr g = MALLOC(h, 40000);
    CHECK(g == B + 13 * GO_PAGE);
    CHECK(stats_of(h).heap_sys == ARENA_64 && ga_arenas(h, NULL, 0) == 1);
    CUR_ARENA(h, B + 18 * GO_PAGE, B + ARENA_64);
    FREE(h, g); /* a free unscavenged span below curArena */

    /* One page more than curArena holds: sysAlloc maps a new arena at
     * the moved hint, 0xc004000000, which adjoins curArena and extends
     * it.  growAddSpan first scavenges up to np2 pages (goal 0): g's
     * 5-page hole, which then coalesces with the new span above it; so
     * the object starts in the hole, crosses the arena boundary, and a
     * released 5-page remainder is left at its top. */
    uint64_t np2 = ppa - 18 + 1;
    ga_addr a2 = MALLOC(h, np2 * GO_PAGE);
    CHECK_MSG(a2 == B + 13 * GO_PAGE, "a2 = 0x%" PRIx64, a2);
    LARGE_SPAN(h, a2, np2 * GO_PAGE, false);
    CHECK(head_hint(h, NULL) == B + 2 * ARENA_64);
    ga_addr hole = a2 + np2 * GO_PAGE;
    CUR_ARENA(h, hole + 5 * GO_PAGE, B + 2 * ARENA_64);
    CHECK(hole + 5 * GO_PAGE == B + ARENA_64 + GO_PAGE);
    span_want w2[] = {
        {B, 13, SPAN_IN_USE, false},
        {a2, np2, SPAN_IN_USE, false},
        {hole, 5, SPAN_FREE, true},
    };
    LAYOUT(h, w2);
    ga_span_info s;
    memset(&s, 0, sizeof s);
    CHECK(ga_span_of(h, B + ARENA_64, &s) && s.base == hole);
    ga_mem_stats st = stats_of(h);
    CHECK(st.heap_sys == 2 * ARENA_64);
    CHECK(st.heap_inuse == (13 + np2) * GO_PAGE);

    /* 100 MiB: curArena (one arena minus one page) is too small, so
     * sysAlloc maps the whole ask, two arenas at 0xc008000000, which
     * extend curArena again; the grown span coalesces with the released
     * remainder below it and the object starts there. */
    ga_addr a3 = MALLOC(h, 100 * MiB);
    CHECK_MSG(a3 == hole, "a3 = 0x%" PRIx64, a3);
    ga_addr end3 = a3 + 100 * MiB;
    CHECK(head_hint(h, NULL) == B + 4 * ARENA_64);
    CUR_ARENA(h, end3 + 5 * GO_PAGE, B + 4 * ARENA_64);
    span_want w3[] = {
        {B, 13, SPAN_IN_USE, false},
        {a2, np2, SPAN_IN_USE, false},
        {a3, 100 * MiB / GO_PAGE, SPAN_IN_USE, false},
        {end3, 5, SPAN_FREE, true},
    };
    LAYOUT(h, w3);
    st = stats_of(h);
    CHECK(st.heap_sys == 4 * ARENA_64 && ga_arenas(h, NULL, 0) == 4);

    /* Free everything and release it: one released span below curArena,
     * which never becomes a span by itself. */
    FREE(h, a1);
    FREE(h, a2);
    FREE(h, a3);
    SCAVENGE(h, UINT64_MAX);
    ga_addr top = end3 + 5 * GO_PAGE;
    span_want one[] = {{B, (top - B) / GO_PAGE, SPAN_FREE, true}};
    LAYOUT(h, one);
    st = stats_of(h);
    CHECK(st.heap_released == 4 * ARENA_64 && st.heap_idle == 4 * ARENA_64);

    /* 3 arenas fit neither the free span (164 MiB + 8 KiB) nor curArena
     * (92 MiB - 8 KiB): go1.13.8 maps three more arenas and grows into
     * them; the new span coalesces with the released span below, and
     * the object starts at B.  (go1.13.0 had all four arenas as one free
     * span and needed no growth: test_growth_arenas.) */
    CHECK(top - B == 164 * MiB + GO_PAGE);
    ga_addr a4 = MALLOC(h, 3 * ARENA_64);
    CHECK(a4 == B);
    st = stats_of(h);
    CHECK_MSG(st.heap_sys == 7 * ARENA_64, "heap_sys %" PRIu64, st.heap_sys);
    CUR_ARENA(h, top + 3 * ARENA_64, B + 7 * ARENA_64);
    ga_heap_free(h);
}

/* New space that does not adjoin curArena replaces it; what was left of
 * the old curArena becomes a free span (growAddSpan, which scavenges
 * first). */
static void
test_cur_arena_discontiguous(void)
{
    ga_heap *h = VIRT("linux", "amd64");
    if (h == NULL) {
        return;
    }
    const ga_addr B = 0xc000000000;
    const uint64_t ppa = ARENA_64 / GO_PAGE;
    ga_addr a = MALLOC(h, 100000); /* 13 pages at B */
    ga_addr g = MALLOC(h, 40000);  /* 5 pages */
    FREE(h, g);                    /* unscavenged, 5 pages */
    /* Someone maps the next arena: the hint at B + 64 MiB collides and is
     * discarded; the next hint, 1 TiB up, is used. */
    CHECK(ga_block_range(h, B + ARENA_64, GO_PAGE) == GA_OK);
    ga_addr far = B + TiB;
    ga_addr b = MALLOC(h, ARENA_64); /* does not fit curArena's rest */
    CHECK_MSG(b == far, "b = 0x%" PRIx64, b);
    /* The old rest [B+18p, B+64MiB) is a free scavenged span now; its
     * growAddSpan scavenged min(rest, ...) first, releasing g's hole,
     * which then coalesced with it.  The new arena is used up. */
    span_want want[] = {
        {a, 13, SPAN_IN_USE, false},
        {B + 13 * GO_PAGE, ppa - 13, SPAN_FREE, true},
        {far, ppa, SPAN_IN_USE, false},
    };
    LAYOUT(h, want);
    CUR_ARENA(h, far + ARENA_64, far + ARENA_64);
    ga_mem_stats st = stats_of(h);
    CHECK(st.heap_sys == 2 * ARENA_64 &&
          st.heap_released == (ppa - 13) * GO_PAGE &&
          st.heap_idle == st.heap_released);
    /* The next growth takes a new arena above it, which adjoins the
     * (empty) curArena. */
    ga_addr c = MALLOC(h, 40000);
    CHECK(c == B + 13 * GO_PAGE); /* first fit: the old rest */
    ga_addr d = MALLOC(h, ARENA_64);
    CHECK_MSG(d == far + ARENA_64, "d = 0x%" PRIx64, d);
    CUR_ARENA(h, far + 2 * ARENA_64, far + 2 * ARENA_64);
    ga_heap_free(h);
}

int
main(void)
{
    CHECK_RUN(test_first_growth_virtual());
    CHECK_RUN(test_first_growth_os());
    CHECK_RUN(test_growth_arenas());
    CHECK_RUN(test_growth_cur_arena());
    CHECK_RUN(test_cur_arena_discontiguous());
    int failed = check_summary("arena");
    return failed > 255 ? 255 : failed;
}
