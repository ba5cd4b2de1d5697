/* Tests for the treap of free spans (csrc/treap.c).
 *
 * Go's TestTreapFilter and TestTreap scenarios on fake spans (structs
 * only, no memory behind them), run over several priority seeds and
 * with and without 2 MiB huge pages (the randomized test is
 * test_treap_random.c).
 * Go 1.13: src/runtime/treap_test.go, export_test.go (Treap wrappers).
 * Differs from Go: the expected span types are recomputed here from
 * first principles rather than through the code under test.
 * Locking: single-threaded.
 */
#include "treap_helpers.h"

/* ---- TestTreapFilter ---------------------------------------------- */

static void
test_filter(void)
{
    static const struct {
        uint8_t mask, match;
        treap_iter_filter want;
    } cases[] = {
        {0, 0, 0xF},
        {TREAP_ITER_SCAV, 0, 0x5},
        {TREAP_ITER_SCAV, TREAP_ITER_SCAV, 0xA},
        {TREAP_ITER_SCAV | TREAP_ITER_HUGE, TREAP_ITER_HUGE, 0x4},
        {TREAP_ITER_SCAV | TREAP_ITER_HUGE, 0, 0x1},
        {0, TREAP_ITER_SCAV, 0x0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        treap_iter_filter f = treap_filter(cases[i].mask, cases[i].match);
        CHECK_MSG(f == cases[i].want, "mask %u match %u: got %#x, want %#x",
                  cases[i].mask, cases[i].match, f, cases[i].want);
    }
}

/* mspan_treap_filter is one-hot on the span's type. */
static void
test_span_filter(void)
{
    mspan *spans[NSPANS];
    make_spans(spans);
    for (size_t i = 0; i < NSPANS; i++) {
        for (int h = 0; h < 2; h++) {
            uint64_t huge = h ? HUGE_2M : 0;
            treap_iter_filter f = mspan_treap_filter(spans[i], huge);
            CHECK_MSG(f == 1u << ref_type(spans[i], huge),
                      "span %#" PRIx64 " huge %d: filter %#x",
                      spans[i]->start_addr, h, f);
            CHECK(mspan_huge_pages(spans[i], huge) ==
                  ref_huge_pages(spans[i], huge));
        }
    }
    free_spans(spans);
}

/* ---- TestTreap ---------------------------------------------------- */

/* TypeCountsSanity: 8 spans, 6 unscavenged, 2 scavenged. */
static void
test_type_counts(void)
{
    mspan *spans[NSPANS];
    int counts[4][4] = {{0}};

    make_spans(spans);
    for (size_t i = 0; i < NSPANS; i++) {
        for (unsigned mask = 0; mask < 4; mask++) {
            for (unsigned match = 0; match < 4; match++) {
                counts[mask][match] += ref_matches(spans[i], 0, mask, match);
            }
        }
    }
    CHECK(counts[0][0] == (int)NSPANS);
    CHECK(counts[TREAP_ITER_SCAV][0] == 6);
    CHECK(counts[TREAP_ITER_SCAV][TREAP_ITER_SCAV] == 2);
    free_spans(spans);
}

/* Insert, FindTrivial: one span in and out again. */
static void
test_insert_find_trivial(uint64_t seed, uint64_t huge)
{
    fixture fx;
    mspan *spans[NSPANS];

    make_spans(spans);
    fixture_init(&fx, seed, huge);
    CHECK(mtreap_insert(&fx.tr, spans[0]));
    TREAP_OK(&fx.tr);
    CHECK(mtreap_size(&fx.tr) == 1);
    treap_iter i = mtreap_find(&fx.tr, 1);
    CHECK(treap_iter_valid(i) && treap_iter_span(i) == spans[0]);
    CHECK(treap_iter_valid(mtreap_find(&fx.tr, 2)));
    CHECK(!treap_iter_valid(mtreap_find(&fx.tr, 3)));
    mtreap_remove_span(&fx.tr, spans[0]);
    TREAP_OK(&fx.tr);
    CHECK(mtreap_size(&fx.tr) == 0);
    CHECK(!treap_iter_valid(mtreap_find(&fx.tr, 1)));
    CHECK(!treap_iter_valid(mtreap_start(&fx.tr, 0, 0)));
    CHECK(!treap_iter_valid(mtreap_end(&fx.tr, 0, 0)));
    fixture_release(&fx);
    free_spans(spans);
}

/* Insert all, then remove in a seed-dependent order. */
static void
test_insert_remove(uint64_t seed, uint64_t huge)
{
    fixture fx;
    mspan *spans[NSPANS];
    uint64_t rs = seed * 2 + 1;

    make_spans(spans);
    fixture_init(&fx, seed, huge);
    insert_all(&fx, spans);
    CHECK(mtreap_size(&fx.tr) == NSPANS);
    for (size_t i = NSPANS; i > 1; i--) {
        size_t j = (size_t)rnd_below(&rs, i);
        mspan *tmp = spans[i - 1];
        spans[i - 1] = spans[j];
        spans[j] = tmp;
    }
    for (size_t i = 0; i < NSPANS; i++) {
        mtreap_remove_span(&fx.tr, spans[i]);
        TREAP_OK(&fx.tr);
        CHECK(mtreap_size(&fx.tr) == NSPANS - 1 - i);
    }
    CHECK(fx.tr.treap == NULL && fx.tr.unscav_huge_pages == 0);
    fixture_release(&fx);
    free_spans(spans);
}

/* FindFirstFit: Find(5) is the 8-page span at 0xc0010000, the lowest
 * address that fits, not the exact fit at 0xc0040000. */
static void
test_find_first_fit(uint64_t seed, uint64_t huge)
{
    static const struct {
        uint64_t n;
        ga_addr want; /* 0 = no fit */
    } cases[] = {
        {1, 0xc0000000}, {2, 0xc0000000}, {3, 0xc0010000},    {5, 0xc0010000},
        {8, 0xc0010000}, {9, 0xc0060000}, {5000, 0xc0060000}, {5001, 0},
    };
    fixture fx;
    mspan *spans[NSPANS];

    make_spans(spans);
    fixture_init(&fx, seed, huge);
    insert_all(&fx, spans);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        treap_iter i = mtreap_find(&fx.tr, cases[k].n);
        ga_addr got = treap_iter_valid(i) ? treap_iter_span(i)->start_addr : 0;
        CHECK_MSG(got == cases[k].want,
                  "seed %" PRIu64 " find(%" PRIu64 "): got %#" PRIx64
                  ", want %#" PRIx64,
                  seed, cases[k].n, got, cases[k].want);
    }
    remove_all(&fx, spans);
    fixture_release(&fx);
    free_spans(spans);
}

/* Iterate: for every mask/match pair, forwards from start and backwards
 * from end visit exactly the matching spans, in strict address order. */
static void
test_iterate(uint64_t seed, uint64_t huge)
{
    fixture fx;
    mspan *spans[NSPANS];

    make_spans(spans);
    fixture_init(&fx, seed, huge);
    insert_all(&fx, spans);
    for (unsigned mask = 0; mask < 4; mask++) {
        for (unsigned match = 0; match < 4; match++) {
            size_t want = 0;
            for (size_t k = 0; k < NSPANS; k++) {
                want += ref_matches(spans[k], huge, mask, match);
            }

            size_t n = 0;
            ga_addr last = 0;
            for (treap_iter i = mtreap_start(&fx.tr, mask, match);
                 treap_iter_valid(i); i = treap_iter_next(i)) {
                mspan *s = treap_iter_span(i);
                CHECK_MSG(n == 0 || s->start_addr > last,
                          "forward %u/%u: %#" PRIx64 " after %#" PRIx64, mask,
                          match, s->start_addr, last);
                CHECK(ref_matches(s, huge, mask, match));
                last = s->start_addr;
                n++;
            }
            CHECK_MSG(n == want, "forward %u/%u: %zu spans, want %zu", mask,
                      match, n, want);

            n = 0;
            for (treap_iter i = mtreap_end(&fx.tr, mask, match);
                 treap_iter_valid(i); i = treap_iter_prev(i)) {
                mspan *s = treap_iter_span(i);
                CHECK_MSG(n == 0 || s->start_addr < last,
                          "backward %u/%u: %#" PRIx64 " after %#" PRIx64, mask,
                          match, s->start_addr, last);
                CHECK(ref_matches(s, huge, mask, match));
                last = s->start_addr;
                n++;
            }
            CHECK_MSG(n == want, "backward %u/%u: %zu spans, want %zu", mask,
                      match, n, want);
        }
    }
    remove_all(&fx, spans);
    fixture_release(&fx);
    free_spans(spans);
}

/* Prev/Next: i.prev().next() == i and i.next().prev() == i, for every
 * position under every filter (Go checks the third position only). */
static void
test_prev_next(uint64_t seed, uint64_t huge)
{
    fixture fx;
    mspan *spans[NSPANS];

    make_spans(spans);
    fixture_init(&fx, seed, huge);
    insert_all(&fx, spans);

    treap_iter i = mtreap_start(&fx.tr, 0, 0);
    i = treap_iter_next(treap_iter_next(i));
    CHECK(treap_iter_span(i)->start_addr == 0xc0010000);
    treap_iter p = treap_iter_prev(i);
    treap_iter n = treap_iter_next(i);
    CHECK(treap_iter_valid(p) && treap_iter_valid(n));
    CHECK(treap_iter_next(p).t == i.t);
    CHECK(treap_iter_prev(n).t == i.t);

    for (unsigned mask = 0; mask < 4; mask++) {
        for (unsigned match = 0; match < 4; match++) {
            for (i = mtreap_start(&fx.tr, mask, match); treap_iter_valid(i);
                 i = treap_iter_next(i)) {
                p = treap_iter_prev(i);
                n = treap_iter_next(i);
                CHECK(!treap_iter_valid(p) || treap_iter_next(p).t == i.t);
                CHECK(!treap_iter_valid(n) || treap_iter_prev(n).t == i.t);
            }
        }
    }
    remove_all(&fx, spans);
    fixture_release(&fx);
    free_spans(spans);
}

/* EraseOne: after erasing the fourth span its neighbours link up. */
static void
test_erase_one(uint64_t seed, uint64_t huge)
{
    fixture fx;
    mspan *spans[NSPANS];

    make_spans(spans);
    fixture_init(&fx, seed, huge);
    insert_all(&fx, spans);

    treap_iter i = mtreap_start(&fx.tr, 0, 0);
    for (int k = 0; k < 3; k++) {
        i = treap_iter_next(i);
    }
    mspan *s = treap_iter_span(i);
    treap_iter n = treap_iter_next(i);
    treap_iter p = treap_iter_prev(i);
    mtreap_erase(&fx.tr, i);
    TREAP_OK(&fx.tr);
    CHECK(s->start_addr == 0xc0022000);
    CHECK(treap_iter_span(treap_iter_prev(n)) == treap_iter_span(p));
    CHECK(treap_iter_span(treap_iter_next(p)) == treap_iter_span(n));
    CHECK(mtreap_size(&fx.tr) == NSPANS - 1);
    CHECK(mtreap_insert(&fx.tr, s));
    TREAP_OK(&fx.tr);
    remove_all(&fx, spans);
    fixture_release(&fx);
    free_spans(spans);
}

/* EraseAll: erasing everything through an iterator empties the treap;
 * also from the end backwards and through a filtered iterator. */
static void
test_erase_all(uint64_t seed, uint64_t huge)
{
    fixture fx;
    mspan *spans[NSPANS];

    make_spans(spans);
    fixture_init(&fx, seed, huge);

    insert_all(&fx, spans);
    for (treap_iter i = mtreap_start(&fx.tr, 0, 0); treap_iter_valid(i);) {
        treap_iter n = treap_iter_next(i);
        mtreap_erase(&fx.tr, i);
        TREAP_OK(&fx.tr);
        i = n;
    }
    CHECK(mtreap_size(&fx.tr) == 0 && fx.tr.unscav_huge_pages == 0);

    insert_all(&fx, spans);
    for (treap_iter i = mtreap_end(&fx.tr, 0, 0); treap_iter_valid(i);) {
        treap_iter p = treap_iter_prev(i);
        mtreap_erase(&fx.tr, i);
        TREAP_OK(&fx.tr);
        i = p;
    }
    CHECK(mtreap_size(&fx.tr) == 0);

    /* Only the unscavenged spans go; the two scavenged ones stay. */
    insert_all(&fx, spans);
    for (treap_iter i = mtreap_start(&fx.tr, TREAP_ITER_SCAV, 0);
         treap_iter_valid(i);) {
        treap_iter n = treap_iter_next(i);
        mtreap_erase(&fx.tr, i);
        TREAP_OK(&fx.tr);
        i = n;
    }
    CHECK(mtreap_size(&fx.tr) == 2);
    CHECK(fx.tr.unscav_huge_pages == 0);
    for (treap_iter i = mtreap_start(&fx.tr, 0, 0); treap_iter_valid(i);
         i = treap_iter_next(i)) {
        CHECK(treap_iter_span(i)->scavenged);
    }
    for (size_t k = 0; k < NSPANS; k++) {
        if (spans[k]->scavenged) {
            mtreap_remove_span(&fx.tr, spans[k]);
            TREAP_OK(&fx.tr);
        }
    }
    CHECK(mtreap_size(&fx.tr) == 0);
    fixture_release(&fx);
    free_spans(spans);
}

/* ---- Mutate and huge pages ---------------------------------------- */

typedef struct shrink_args {
    uint64_t pages; /* taken from the low end */
    int scav;       /* -1 = leave, else the new scavenged value */
} shrink_args;

/* shrink takes pages off the low end, as allocation from a free span
 * does, and optionally changes the scavenged state. */
static void
shrink(mspan *s, void *arg)
{
    const shrink_args *a = arg;
    s->start_addr += a->pages * PAGE_SIZE;
    s->npages -= a->pages;
    if (a->scav >= 0) {
        s->scavenged = a->scav != 0;
    }
}

static uint64_t
ref_unscav_huge(mspan *spans[NSPANS], uint64_t huge)
{
    uint64_t n = 0;
    for (size_t k = 0; k < NSPANS; k++) {
        n += spans[k]->scavenged ? 0 : ref_huge_pages(spans[k], huge);
    }
    return n;
}

static void
test_mutate(uint64_t seed, uint64_t huge)
{
    fixture fx;
    mspan *spans[NSPANS];

    make_spans(spans);
    fixture_init(&fx, seed, huge);
    insert_all(&fx, spans);
    CHECK(fx.tr.unscav_huge_pages == ref_unscav_huge(spans, huge));

    /* Shrink every span with more than one page by one page. */
    for (size_t k = 0; k < NSPANS; k++) {
        if (spans[k]->npages < 2) {
            continue;
        }
        treap_iter i = mtreap_find(&fx.tr, 1);
        while (treap_iter_span(i) != spans[k]) {
            i = treap_iter_next(i);
        }
        shrink_args a = {1, -1};
        mtreap_mutate(&fx.tr, i, shrink, &a);
        TREAP_OK(&fx.tr);
        CHECK(i.t->key == spans[k]->start_addr);
    }
    /* 0xc0010000 now has 7 pages and 0xc0022000 6: find(7) moves. */
    treap_iter i = mtreap_find(&fx.tr, 7);
    CHECK(treap_iter_span(i)->start_addr == 0xc0012000);
    i = mtreap_find(&fx.tr, 8);
    CHECK(treap_iter_span(i) == spans[NSPANS - 1]);

    /* Carve the big span as allocation would, across huge pages. */
    uint64_t steps[] = {255, 1, 256, 1000, 3000};
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        shrink_args a = {steps[k], -1};
        mtreap_mutate(&fx.tr, i, shrink, &a);
        TREAP_OK(&fx.tr);
        CHECK(fx.tr.unscav_huge_pages == ref_unscav_huge(spans, huge));
    }
    CHECK(spans[NSPANS - 1]->npages == 4999 - 4512);

    /* Scavenging in place drops its huge pages from the count, and
     * un-scavenging restores them. */
    shrink_args scav = {0, 1};
    mtreap_mutate(&fx.tr, i, shrink, &scav);
    TREAP_OK(&fx.tr);
    CHECK(fx.tr.unscav_huge_pages == 0);
    scav.scav = 0;
    mtreap_mutate(&fx.tr, i, shrink, &scav);
    TREAP_OK(&fx.tr);
    CHECK(fx.tr.unscav_huge_pages == ref_unscav_huge(spans, huge));

    remove_all(&fx, spans);
    fixture_release(&fx);
    free_spans(spans);
}

/* TestUnscavHugePages at the treap level: only the 5000-page span holds
 * 2 MiB pages (18 of them), and the scavenger's first pass, unscavenged
 * spans with a huge page from the top, finds exactly that span. */
static void
test_huge_pages(uint64_t seed)
{
    fixture fx;
    mspan *spans[NSPANS];

    make_spans(spans);
    fixture_init(&fx, seed, HUGE_2M);
    insert_all(&fx, spans);
    CHECK(ref_huge_pages(spans[NSPANS - 1], HUGE_2M) == 18);
    CHECK_MSG(fx.tr.unscav_huge_pages == 18, "got %" PRIu64,
              fx.tr.unscav_huge_pages);

    treap_iter i = mtreap_end(&fx.tr, TREAP_ITER_SCAV | TREAP_ITER_HUGE,
                              TREAP_ITER_HUGE);
    CHECK(treap_iter_valid(i) && treap_iter_span(i) == spans[NSPANS - 1]);
    CHECK(!treap_iter_valid(treap_iter_prev(i)));
    i = mtreap_end(&fx.tr, TREAP_ITER_SCAV | TREAP_ITER_HUGE, 0);
    CHECK(treap_iter_valid(i) && treap_iter_span(i)->start_addr == 0xc0040000);

    mtreap_remove_span(&fx.tr, spans[NSPANS - 1]);
    TREAP_OK(&fx.tr);
    CHECK(fx.tr.unscav_huge_pages == 0);
    CHECK(!treap_iter_valid(
        mtreap_start(&fx.tr, TREAP_ITER_HUGE, TREAP_ITER_HUGE)));
    CHECK(mtreap_insert(&fx.tr, spans[NSPANS - 1]));
    TREAP_OK(&fx.tr);
    CHECK(fx.tr.unscav_huge_pages == 18);

    remove_all(&fx, spans);
    fixture_release(&fx);
    free_spans(spans);
}

int
main(void)
{
    static const uint64_t seeds[] = {0,          1,          2,     3,   42,
                                     0xdeadbeef, UINT64_MAX, 12345, 777, 2019};
    static const uint64_t huges[] = {0, HUGE_2M};

    CHECK_RUN(test_filter());
    CHECK_RUN(test_span_filter());
    CHECK_RUN(test_type_counts());
    for (size_t h = 0; h < 2; h++) {
        for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
            CHECK_RUN(test_insert_find_trivial(seeds[s], huges[h]));
            CHECK_RUN(test_insert_remove(seeds[s], huges[h]));
            CHECK_RUN(test_find_first_fit(seeds[s], huges[h]));
            CHECK_RUN(test_iterate(seeds[s], huges[h]));
            CHECK_RUN(test_prev_next(seeds[s], huges[h]));
            CHECK_RUN(test_erase_one(seeds[s], huges[h]));
            CHECK_RUN(test_erase_all(seeds[s], huges[h]));
            CHECK_RUN(test_mutate(seeds[s], huges[h]));
        }
    }
    for (size_t s = 0; s < 4; s++) {
        CHECK_RUN(test_huge_pages(seeds[s]));
    }
    return check_summary("treap") != 0;
}
