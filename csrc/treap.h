/* The treap of free spans.  See malloc.c for the overview.
 *
 * Every free span of the heap (scavenged or not) sits in one treap keyed
 * by its base address: a binary search tree in address order that is a
 * min-heap on random priorities (Aragon & Seidel, 1989).  Each node also
 * knows the largest span in its subtree (max_pages) and the OR of the
 * subtree's type filters (scavenged? holds a huge page?), so that
 * find(n) is address-ordered first fit and iterators can skip subtrees.
 * Go 1.13: src/runtime/mgclarge.go (mTreap, treapNode, treapIter, find,
 *          insert, erase, removeSpan, mutate, start, end, treapFilter).
 * Differs from Go: priorities come from a per-heap PRNG; nodes come from
 *          the heap's treapalloc fixalloc passed in at init.
 * Locking: the caller holds the heap lock.
 */
#ifndef GA_TREAP_H
#define GA_TREAP_H

#include "ga.h"
#include "mspan.h"
#include "fixalloc.h"

/* Span types a filter can select (Go's treapIterType). */
enum {
    TREAP_ITER_SCAV = 1 << 0, /* span is scavenged */
    TREAP_ITER_HUGE = 1 << 1, /* span holds >= 1 whole huge page */
    TREAP_ITER_BITS = 2,
};

/* A filter is a 4-bit set of accepted types: bit t set <=> type t passes
 * (Go's treapIterFilter).  A span's own filter is 1 << (its type). */
typedef uint8_t treap_iter_filter;
#define TREAP_FILTER_ALL ((treap_iter_filter)0xF)

treap_iter_filter treap_filter(uint8_t mask, uint8_t match);

typedef struct treap_node {
    struct treap_node *right;
    struct treap_node *left;
    struct treap_node *parent;
    ga_addr key; /* == span->start_addr */
    mspan *span;
    uint64_t max_pages;            /* largest npages in this subtree */
    uint32_t priority;             /* min-heap order: parent <= children */
    treap_iter_filter types;       /* OR of the subtree's span filters */
    treap_iter_filter span_filter; /* this span's own filter, cached at
                                    * insert/mutate: iterators have no
                                    * huge_page_size to recompute it */
} treap_node;

typedef struct mtreap {
    treap_node *treap;          /* root */
    uint64_t unscav_huge_pages; /* huge pages in unscavenged spans */
    uint64_t huge_page_size;    /* physHugePageSize; 0 = none */
    uint64_t rng;               /* PRNG state for priorities */
    fixalloc *alloc;            /* treapalloc */
    /* Go's throw for broken treap invariants; NULL: print and abort */
    void (*throw_fn)(void *arg, const char *msg);
    void *throw_arg;
} mtreap;

/* An iterator: a node and the filter it walks with (Go's treapIter).
 * t == NULL means past either end. */
typedef struct treap_iter {
    treap_iter_filter f;
    treap_node *t;
} treap_iter;

void mtreap_init(mtreap *root, fixalloc *nodes, uint64_t huge_page_size,
                 uint64_t seed);

/* mspan_treap_filter is the one-hot filter of span s. */
treap_iter_filter mspan_treap_filter(const mspan *s, uint64_t huge_page_size);

/* mtreap_insert adds free span s (not yet in the treap).  Returns false,
 * leaving the treap unchanged, when no node could be allocated. */
bool mtreap_insert(mtreap *root, mspan *s);
/* mtreap_erase removes the node i points at and frees it. */
void mtreap_erase(mtreap *root, treap_iter i);
/* mtreap_remove_span removes span s, which must be in the treap. */
void mtreap_remove_span(mtreap *root, mspan *s);
/* mtreap_find returns the lowest-addressed span with >= npages pages
 * (filter TREAP_FILTER_ALL), or an invalid iterator. */
treap_iter mtreap_find(const mtreap *root, uint64_t npages);
/* mtreap_mutate lets fn change the span's base and size in place; the
 * span must keep its order relative to its neighbours.  Keys, max_pages,
 * types and unscav_huge_pages are brought up to date afterwards. */
void mtreap_mutate(mtreap *root, treap_iter i, void (*fn)(mspan *, void *),
                   void *arg);

/* Iteration in address order over the spans whose type passes the
 * filter treap_filter(mask, match). */
treap_iter mtreap_start(const mtreap *root, uint8_t mask, uint8_t match);
treap_iter mtreap_end(const mtreap *root, uint8_t mask, uint8_t match);
treap_iter treap_iter_next(treap_iter i);
treap_iter treap_iter_prev(treap_iter i);

static inline bool
treap_iter_valid(treap_iter i)
{
    return i.t != NULL;
}

static inline mspan *
treap_iter_span(treap_iter i)
{
    return i.t->span;
}

/* Size and walking helpers for introspection and checks. */
size_t mtreap_size(const mtreap *root);

/* mtreap_check walks every invariant of the treap (Go's checkTreapNode
 * and validateInvariants, plus unscav_huge_pages).  Returns false and
 * writes a message naming the broken invariant into msg. */
bool mtreap_check(const mtreap *root, char *msg, size_t msglen);

#endif
