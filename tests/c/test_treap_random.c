/* The treap of free spans (csrc/treap.c), randomized: inserts, erases
 * and in-place changes of fake spans in 96 slots, every invariant
 * checked after each operation, find() compared with a brute-force first
 * fit and the filtered iterators with the reference model.
 * Go 1.13: src/runtime/treap_test.go (the scenarios are test_treap.c's).
 * Differs from Go: Go's treap tests are not randomized.
 * Locking: single-threaded.
 */
#include "treap_helpers.h"

/* ---- Randomized --------------------------------------------------- */

/* Spans live in disjoint slots of SLOT_PAGES pages, so any base/size
 * change inside a slot keeps the address order the treap relies on. */
#define NSLOTS 96
#define SLOT_PAGES 1024
#define SLOT_BASE ((ga_addr)0xc000000000)

typedef struct model {
    fixture fx;
    mspan *slot[NSLOTS]; /* NULL = slot empty */
    size_t n;
    uint64_t rs;
} model;

static ga_addr
slot_base(size_t k)
{
    return SLOT_BASE + (ga_addr)k * SLOT_PAGES * PAGE_SIZE;
}

/* Mostly small spans, sometimes big enough to hold huge pages. */
static uint64_t
random_npages(uint64_t *rs)
{
    switch (rnd_below(rs, 4)) {
    case 0:
        return 1 + rnd_below(rs, 4);
    case 1:
        return 1 + rnd_below(rs, 64);
    default:
        return 1 + rnd_below(rs, SLOT_PAGES);
    }
}

static void
random_insert(model *m, size_t k)
{
    uint64_t np = random_npages(&m->rs);
    uint64_t off = rnd_below(&m->rs, SLOT_PAGES - np + 1);
    mspan *s = make_span(slot_base(k) + off * PAGE_SIZE, np,
                         rnd_below(&m->rs, 3) == 0);
    CHECK(mtreap_insert(&m->fx.tr, s));
    m->slot[k] = s;
    m->n++;
}

static treap_iter
iter_at(const model *m, const mspan *s)
{
    treap_iter i = mtreap_start(&m->fx.tr, 0, 0);
    while (treap_iter_valid(i) && treap_iter_span(i) != s) {
        i = treap_iter_next(i);
    }
    return i;
}

static void
random_erase(model *m, size_t k)
{
    mspan *s = m->slot[k];
    if (rnd_below(&m->rs, 2) == 0) {
        mtreap_remove_span(&m->fx.tr, s);
    }
    else {
        treap_iter i = iter_at(m, s);
        if (CHECK(treap_iter_valid(i))) {
            mtreap_erase(&m->fx.tr, i);
        }
    }
    free(s);
    m->slot[k] = NULL;
    m->n--;
}

typedef struct move_args {
    ga_addr base;
    uint64_t npages;
    bool scav;
} move_args;

static void
move_span(mspan *s, void *arg)
{
    const move_args *a = arg;
    s->start_addr = a->base;
    s->npages = a->npages;
    s->scavenged = a->scav;
}

/* random_mutate usually shrinks from the low end (allocation), and
 * sometimes moves, grows or (un)scavenges the span within its slot. */
static void
random_mutate(model *m, size_t k)
{
    mspan *s = m->slot[k];
    move_args a = {s->start_addr, s->npages, s->scavenged};

    if (rnd_below(&m->rs, 2) == 0 && s->npages > 1) {
        uint64_t take = 1 + rnd_below(&m->rs, s->npages - 1);
        a.base += take * PAGE_SIZE;
        a.npages -= take;
    }
    else {
        a.npages = random_npages(&m->rs);
        a.base = slot_base(k) +
                 rnd_below(&m->rs, SLOT_PAGES - a.npages + 1) * PAGE_SIZE;
        a.scav = rnd_below(&m->rs, 2) == 0;
    }
    treap_iter i = iter_at(m, s);
    if (CHECK(treap_iter_valid(i))) {
        mtreap_mutate(&m->fx.tr, i, move_span, &a);
    }
}

/* compare_model checks size, unscav_huge_pages and find(n) against a
 * brute-force scan of the slots, which are in address order. */
static void
compare_model(model *m, int step)
{
    uint64_t huge = m->fx.huge, unscav = 0, maxp = 0;
    for (size_t k = 0; k < NSLOTS; k++) {
        const mspan *s = m->slot[k];
        if (s != NULL) {
            unscav += s->scavenged ? 0 : ref_huge_pages(s, huge);
            maxp = s->npages > maxp ? s->npages : maxp;
        }
    }
    CHECK_MSG(mtreap_size(&m->fx.tr) == m->n, "step %d", step);
    CHECK_MSG(m->fx.tr.unscav_huge_pages == unscav, "step %d", step);

    uint64_t probes[] = {1,
                         2,
                         1 + rnd_below(&m->rs, 64),
                         1 + rnd_below(&m->rs, SLOT_PAGES),
                         maxp,
                         maxp + 1};
    for (size_t p = 0; p < sizeof probes / sizeof probes[0]; p++) {
        const mspan *want = NULL;
        for (size_t k = 0; k < NSLOTS && want == NULL; k++) {
            if (m->slot[k] != NULL && m->slot[k]->npages >= probes[p]) {
                want = m->slot[k];
            }
        }
        treap_iter i = mtreap_find(&m->fx.tr, probes[p]);
        const mspan *got = treap_iter_valid(i) ? treap_iter_span(i) : NULL;
        CHECK_MSG(got == want, "step %d find(%" PRIu64 ")", step, probes[p]);
    }
}

/* compare_filtered walks one random filter both ways and checks that
 * the visited spans are exactly the matching slots, in order. */
static void
compare_filtered(model *m, int step)
{
    unsigned mask = (unsigned)rnd_below(&m->rs, 4);
    unsigned match = (unsigned)rnd_below(&m->rs, 4);
    treap_iter fwd = mtreap_start(&m->fx.tr, (uint8_t)mask, (uint8_t)match);
    treap_iter bwd = mtreap_end(&m->fx.tr, (uint8_t)mask, (uint8_t)match);
    size_t kb = NSLOTS;

    for (size_t k = 0; k < NSLOTS; k++) {
        const mspan *s = m->slot[k];
        if (s == NULL || !ref_matches(s, m->fx.huge, mask, match)) {
            continue;
        }
        if (!CHECK_MSG(treap_iter_valid(fwd) && treap_iter_span(fwd) == s,
                       "step %d forward %u/%u", step, mask, match)) {
            return;
        }
        fwd = treap_iter_next(fwd);
    }
    CHECK_MSG(!treap_iter_valid(fwd), "step %d forward extra", step);

    while (kb-- > 0) {
        const mspan *s = m->slot[kb];
        if (s == NULL || !ref_matches(s, m->fx.huge, mask, match)) {
            continue;
        }
        if (!CHECK_MSG(treap_iter_valid(bwd) && treap_iter_span(bwd) == s,
                       "step %d backward %u/%u", step, mask, match)) {
            return;
        }
        bwd = treap_iter_prev(bwd);
    }
    CHECK_MSG(!treap_iter_valid(bwd), "step %d backward extra", step);
}

static void
test_random_ops(uint64_t seed, uint64_t huge, int steps)
{
    model m;

    memset(m.slot, 0, sizeof m.slot);
    m.n = 0;
    m.rs = seed * UINT64_C(0x9E3779B97F4A7C15) + 1;
    fixture_init(&m.fx, seed, huge);
    for (int step = 0; step < steps; step++) {
        size_t k = (size_t)rnd_below(&m.rs, NSLOTS);
        unsigned op = (unsigned)rnd_below(&m.rs, 10);
        if (m.slot[k] == NULL) {
            random_insert(&m, k);
        }
        else if (op < 4) {
            random_erase(&m, k);
        }
        else {
            random_mutate(&m, k);
        }
        if (!TREAP_OK(&m.fx.tr)) {
            break;
        }
        compare_model(&m, step);
        if (step % 8 == 0) {
            compare_filtered(&m, step);
        }
    }
    for (size_t k = 0; k < NSLOTS; k++) {
        if (m.slot[k] != NULL) {
            random_erase(&m, k);
            TREAP_OK(&m.fx.tr);
        }
    }
    CHECK(m.fx.tr.treap == NULL && m.fx.tr.unscav_huge_pages == 0);
    CHECK(m.fx.fa.inuse == 0);
    fixture_release(&m.fx);
}

int
main(void)
{
    /* the first four of test_treap.c's priority seeds */
    static const uint64_t seeds[] = {0, 1, 2, 3};
    for (size_t s = 0; s < 4; s++) {
        CHECK_RUN(test_random_ops(seeds[s], HUGE_2M, 2000));
        CHECK_RUN(test_random_ops(seeds[s] + 100, 0, 2000));
    }
    return check_summary("treap_random") != 0;
}
