/* Helpers of the treap tests (test_treap.c, test_treap_random.c).
 *
 * Go's spanDesc fixture, a treap with its own node allocator, fake spans
 * (structs only, no memory behind them), the invariant walker's check,
 * and a reference model of span types computed from first principles
 * rather than through the code under test.  Static inline: each test
 * file uses a part of them.
 * Go 1.13: src/runtime/treap_test.go, export_test.go.
 * Differs from Go: n/a; this is a test helper.
 * Locking: single-threaded.
 */
#ifndef GA_TESTS_TREAP_HELPERS_H
#define GA_TESTS_TREAP_HELPERS_H

#include "arith.h"
#include "check.h"
#include "fixalloc.h"
#include "mspan.h"
#include "treap.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define HUGE_2M ((uint64_t)2 << 20)
#define TREAP_NODE_GO_SIZE 56 /* Go's treapNode on amd64 */

/* ---- Fixture ------------------------------------------------------ */

/* Go's spanDesc. */
static const struct {
    ga_addr base;
    uint64_t npages;
    bool scav;
} span_desc[] = {
    {0xc0000000, 2, false}, {0xc0006000, 1, false},    {0xc0010000, 8, false},
    {0xc0022000, 7, false}, {0xc0034000, 4, true},     {0xc0040000, 5, false},
    {0xc0050000, 5, true},  {0xc0060000, 5000, false},
};
#define NSPANS (sizeof span_desc / sizeof span_desc[0])

/* One treap with its node allocator.  pa keeps a pointer to other_sys,
 * so a fixture must not move once set up. */
typedef struct fixture {
    persistent_alloc pa;
    uint64_t other_sys; /* Go charges treapalloc to other_sys */
    fixalloc fa;
    mtreap tr;
    uint64_t huge;
} fixture;

static inline void
fixture_init(fixture *fx, uint64_t seed, uint64_t huge)
{
    fx->other_sys = 0;
    fx->huge = huge;
    persistent_alloc_init(&fx->pa, &fx->other_sys, 8);
    fixalloc_init(&fx->fa, TREAP_NODE_GO_SIZE, sizeof(treap_node), NULL, NULL,
                  &fx->other_sys, &fx->pa);
    mtreap_init(&fx->tr, &fx->fa, huge, seed);
}

static inline void
fixture_release(fixture *fx)
{
    fixalloc_release(&fx->fa);
}

static inline mspan *
make_span(ga_addr base, uint64_t npages, bool scav)
{
    mspan *s = calloc(1, sizeof *s);
    if (s == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    mspan_init(s, base, npages);
    s->state = MSPAN_FREE;
    s->scavenged = scav;
    return s;
}

static inline void
make_spans(mspan *spans[NSPANS])
{
    for (size_t i = 0; i < NSPANS; i++) {
        spans[i] = make_span(span_desc[i].base, span_desc[i].npages,
                             span_desc[i].scav);
    }
}

static inline void
free_spans(mspan *spans[NSPANS])
{
    for (size_t i = 0; i < NSPANS; i++) {
        free(spans[i]);
    }
}

/* treap_ok runs the invariant walker; the caller's line is reported. */
#define TREAP_OK(tr) treap_ok_at((tr), __LINE__)

static inline bool
treap_ok_at(const mtreap *tr, int line)
{
    char msg[256];
    bool ok = mtreap_check(tr, msg, sizeof msg);
    return CHECK_MSG(ok, "line %d: %s", line, msg);
}

static inline void
insert_all(fixture *fx, mspan *spans[NSPANS])
{
    for (size_t i = 0; i < NSPANS; i++) {
        CHECK(mtreap_insert(&fx->tr, spans[i]));
        TREAP_OK(&fx->tr);
    }
    CHECK(fx->fa.inuse == NSPANS * TREAP_NODE_GO_SIZE);
}

static inline void
remove_all(fixture *fx, mspan *spans[NSPANS])
{
    for (size_t i = 0; i < NSPANS; i++) {
        mtreap_remove_span(&fx->tr, spans[i]);
        TREAP_OK(&fx->tr);
    }
    CHECK(fx->tr.treap == NULL);
    CHECK(fx->tr.unscav_huge_pages == 0);
    CHECK(fx->fa.inuse == 0); /* every node went back to treapalloc */
}

/* ---- Reference model ---------------------------------------------- */

/* ref_huge_pages counts whole aligned huge pages inside s by walking
 * the aligned slots, independently of mspan_huge_pages. */
static inline uint64_t
ref_huge_pages(const mspan *s, uint64_t huge)
{
    if (huge == 0) {
        return 0;
    }
    ga_addr end = s->start_addr + s->npages * PAGE_SIZE;
    uint64_t n = 0;
    for (ga_addr a = round_up(s->start_addr, huge); a + huge <= end;
         a += huge) {
        n++;
    }
    return n;
}

static inline unsigned
ref_type(const mspan *s, uint64_t huge)
{
    return (s->scavenged ? TREAP_ITER_SCAV : 0u) |
           (ref_huge_pages(s, huge) > 0 ? TREAP_ITER_HUGE : 0u);
}

static inline bool
ref_matches(const mspan *s, uint64_t huge, unsigned mask, unsigned match)
{
    return (ref_type(s, huge) & mask) == match;
}

/* A small test-local PRNG (xorshift64), so runs are reproducible. */
static inline uint64_t
rnd(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

static inline uint64_t
rnd_below(uint64_t *state, uint64_t n)
{
    return rnd(state) % n;
}

#endif
