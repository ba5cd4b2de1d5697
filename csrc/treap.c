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
#include "treap.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/* treap_throw reports a broken treap invariant with Go's throw string
 * through the owner's hook (the heap's throw), which does not return;
 * without a hook it prints and aborts. */
static GA_NORETURN GA_NOINLINE void
treap_throw(const mtreap *root, const char *s)
{
    if (root->throw_fn != NULL) {
        root->throw_fn(root->throw_arg, s);
    }
    fprintf(stderr, "fatal error: %s\n", s);
    abort();
}

/* ---- Filters ------------------------------------------------------ */

treap_iter_filter
treap_filter(uint8_t mask, uint8_t match)
{
    treap_iter_filter allow = 0;

    for (unsigned t = 0; t < (1u << TREAP_ITER_BITS); t++) {
        if ((t & mask) == match) {
            allow |= (treap_iter_filter)(1u << t);
        }
    }
    return allow;
}

treap_iter_filter
mspan_treap_filter(const mspan *s, uint64_t huge_page_size)
{
    unsigned have = 0;

    if (s->scavenged) {
        have |= TREAP_ITER_SCAV;
    }
    if (mspan_huge_pages(s, huge_page_size) > 0) {
        have |= TREAP_ITER_HUGE;
    }
    return (treap_iter_filter)(1u << have);
}

static inline bool
filter_matches(treap_iter_filter f, treap_iter_filter types)
{
    return (f & types) != 0;
}

/* The huge pages a span contributes to unscav_huge_pages. */
static uint64_t
unscav_huge_pages_of(const mtreap *root, const mspan *s)
{
    return s->scavenged ? 0 : mspan_huge_pages(s, root->huge_page_size);
}

/* ---- Priorities --------------------------------------------------- */

/* Go draws priorities from fastrand; a per-treap xorshift64* keeps
 * heaps independent and runs reproducible for a given seed. */
static uint32_t
next_priority(mtreap *root)
{
    uint64_t x = root->rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    root->rng = x;
    return (uint32_t)((x * UINT64_C(0x2545F4914F6CDD1D)) >> 32);
}

void
mtreap_init(mtreap *root, fixalloc *nodes, uint64_t huge_page_size,
            uint64_t seed)
{
    /* One splitmix64 step spreads nearby seeds apart; xorshift must
     * never start from 0, where it would stay forever. */
    uint64_t z = seed + UINT64_C(0x9E3779B97F4A7C15);

    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    z ^= z >> 31;

    root->treap = NULL;
    root->unscav_huge_pages = 0;
    root->huge_page_size = huge_page_size;
    root->rng = z != 0 ? z : UINT64_C(0x9E3779B97F4A7C15);
    root->alloc = nodes;
    root->throw_fn = NULL;
    root->throw_arg = NULL;
}

/* ---- Structure maintenance ---------------------------------------- */

/* update_invariants recomputes t's max_pages and types from its own
 * span and its children.  Returns true if either changed, so callers
 * walking towards the root can stop at the first unchanged node: the
 * ancestors' aggregates depend on t only through these two values. */
static bool
update_invariants(treap_node *t)
{
    uint64_t max = t->span->npages;
    treap_iter_filter types = t->span_filter;

    if (t->left != NULL) {
        types |= t->left->types;
        if (t->left->max_pages > max) {
            max = t->left->max_pages;
        }
    }
    if (t->right != NULL) {
        types |= t->right->types;
        if (t->right->max_pages > max) {
            max = t->right->max_pages;
        }
    }
    bool changed = max != t->max_pages || types != t->types;
    t->max_pages = max;
    t->types = types;
    return changed;
}

static void
update_path(treap_node *t)
{
    while (t != NULL && update_invariants(t)) {
        t = t->parent;
    }
}

/* replace_child makes repl take old's place under parent p (or as the
 * root when p is NULL). */
static void
replace_child(mtreap *root, treap_node *p, treap_node *old, treap_node *repl)
{
    repl->parent = p;
    if (p == NULL) {
        root->treap = repl;
    }
    else if (p->left == old) {
        p->left = repl;
    }
    else if (p->right == old) {
        p->right = repl;
    }
    else {
        treap_throw(root, "large span treap rotate");
    }
}

/* rotate_left turns (x a (y b c)) into (y (x a b) c).  Only x and y
 * change subtrees, so only they need their aggregates recomputed, x
 * first since it is now y's child. */
static void
rotate_left(mtreap *root, treap_node *x)
{
    treap_node *p = x->parent;
    treap_node *y = x->right;
    treap_node *b = y->left;

    x->right = b;
    if (b != NULL) {
        b->parent = x;
    }
    y->left = x;
    x->parent = y;
    replace_child(root, p, x, y);
    update_invariants(x);
    update_invariants(y);
}

/* rotate_right turns (y (x a b) c) into (x a (y b c)). */
static void
rotate_right(mtreap *root, treap_node *y)
{
    treap_node *p = y->parent;
    treap_node *x = y->left;
    treap_node *b = x->right;

    y->left = b;
    if (b != NULL) {
        b->parent = y;
    }
    x->right = y;
    y->parent = x;
    replace_child(root, p, y, x);
    update_invariants(y);
    update_invariants(x);
}

/* ---- Insert and remove -------------------------------------------- */

/* mtreap_insert adds s as a leaf in address order, then rotates it up
 * while its parent has a larger priority, restoring the min-heap. */
bool
mtreap_insert(mtreap *root, mspan *s)
{
    ga_addr base = mspan_base(s);
    treap_node *last = NULL;
    treap_node **pt = &root->treap;

    while (*pt != NULL) {
        last = *pt;
        if (last->key < base) {
            pt = &last->right;
        }
        else if (last->key > base) {
            pt = &last->left;
        }
        else {
            treap_throw(root, "inserting span already in treap");
        }
    }

    /* Allocate before touching anything, so failure changes nothing. */
    treap_node *t = fixalloc_alloc(root->alloc);
    if (t == NULL) {
        return false;
    }
    t->left = NULL;
    t->right = NULL;
    t->parent = last;
    t->key = base;
    t->span = s;
    t->priority = next_priority(root);
    t->span_filter = mspan_treap_filter(s, root->huge_page_size);
    t->max_pages = s->npages;
    t->types = t->span_filter;
    *pt = t;
    root->unscav_huge_pages += unscav_huge_pages_of(root, s);

    update_path(last);
    while (t->parent != NULL && t->parent->priority > t->priority) {
        if (t->parent->left == t) {
            rotate_right(root, t->parent);
        }
        else {
            rotate_left(root, t->parent);
        }
    }
    return true;
}

/* remove_node rotates t down, always lifting the child with the smaller
 * priority so the heap order holds, until t is a leaf it can unlink. */
static void
remove_node(mtreap *root, treap_node *t)
{
    if (mspan_base(t->span) != t->key) {
        treap_throw(root, "span and treap node base addresses do not match");
    }
    root->unscav_huge_pages -= unscav_huge_pages_of(root, t->span);

    while (t->left != NULL || t->right != NULL) {
        if (t->right == NULL ||
            (t->left != NULL && t->left->priority < t->right->priority)) {
            rotate_right(root, t);
        }
        else {
            rotate_left(root, t);
        }
    }

    treap_node *p = t->parent;
    if (p == NULL) {
        root->treap = NULL;
    }
    else {
        if (p->left == t) {
            p->left = NULL;
        }
        else {
            p->right = NULL;
        }
        update_path(p);
    }
    fixalloc_free(root->alloc, t);
}

/* mtreap_erase consumes i: a caller walking on must step to the next
 * or previous position before erasing. */
void
mtreap_erase(mtreap *root, treap_iter i)
{
    remove_node(root, i.t);
}

/* Keys are unique, so the search by base address meets s exactly; a
 * span that is not in the treap is a broken invariant, not an error. */
void
mtreap_remove_span(mtreap *root, mspan *s)
{
    ga_addr base = mspan_base(s);
    treap_node *t = root->treap;

    while (t != NULL && t->span != s) {
        t = t->key < base ? t->right : t->left;
    }
    if (t == NULL) {
        treap_throw(root, "removing span not in treap");
    }
    remove_node(root, t);
}

/* ---- Find and mutate ---------------------------------------------- */

/* mtreap_find walks down preferring, in order, the left subtree if it
 * can satisfy the request, this node, then the right subtree: the first
 * node that fits in that order is the lowest-addressed fit. */
treap_iter
mtreap_find(const mtreap *root, uint64_t npages)
{
    treap_node *t = root->treap;

    while (t != NULL) {
        if (t->left != NULL && t->left->max_pages >= npages) {
            t = t->left;
        }
        else if (t->span->npages >= npages) {
            break;
        }
        else if (t->right != NULL && t->right->max_pages >= npages) {
            t = t->right;
        }
        else {
            t = NULL;
        }
    }
    return (treap_iter){TREAP_FILTER_ALL, t};
}

void
mtreap_mutate(mtreap *root, treap_iter i, void (*fn)(mspan *, void *),
              void *arg)
{
    treap_node *t = i.t;
    mspan *s = t->span;

    /* fn may change size and scavenged state alike: take the span's
     * share out before and put the new one back after. */
    root->unscav_huge_pages -= unscav_huge_pages_of(root, s);
    fn(s, arg);
    root->unscav_huge_pages += unscav_huge_pages_of(root, s);

    /* The key is not part of any aggregate, so only max_pages and
     * types need to travel up; update_path stops once they settle. */
    t->key = mspan_base(s);
    t->span_filter = mspan_treap_filter(s, root->huge_page_size);
    update_path(t);
}

/* ---- Iteration ---------------------------------------------------- */

/* find_minimal returns the lowest-addressed node under t whose span
 * passes f, or NULL.  The types summaries guarantee that a subtree we
 * enter holds a match, so the walk never backtracks. */
static treap_node *
find_minimal(treap_node *t, treap_iter_filter f)
{
    if (t == NULL || !filter_matches(f, t->types)) {
        return NULL;
    }
    for (;;) {
        if (t->left != NULL && filter_matches(f, t->left->types)) {
            t = t->left;
        }
        else if (filter_matches(f, t->span_filter)) {
            return t;
        }
        else if (t->right != NULL && filter_matches(f, t->right->types)) {
            t = t->right;
        }
        else {
            /* Corrupt aggregates (Go throws "failed to find minimal node
             * matching filter"); mtreap_check reports them. */
            return NULL;
        }
    }
}

/* find_maximal is find_minimal with left and right swapped. */
static treap_node *
find_maximal(treap_node *t, treap_iter_filter f)
{
    if (t == NULL || !filter_matches(f, t->types)) {
        return NULL;
    }
    for (;;) {
        if (t->right != NULL && filter_matches(f, t->right->types)) {
            t = t->right;
        }
        else if (filter_matches(f, t->span_filter)) {
            return t;
        }
        else if (t->left != NULL && filter_matches(f, t->left->types)) {
            t = t->left;
        }
        else {
            return NULL; /* corrupt aggregates, as in find_minimal */
        }
    }
}

/* succ returns the next node after t in address order that passes f.
 * Either it is in t's right subtree, or we climb until we arrive at an
 * ancestor from its left side: that ancestor, then its right subtree,
 * are the next candidates, in that order. */
static treap_node *
succ(treap_node *t, treap_iter_filter f)
{
    if (t->right != NULL && filter_matches(f, t->right->types)) {
        return find_minimal(t->right, f);
    }
    for (treap_node *p = t->parent; p != NULL; t = p, p = p->parent) {
        if (p->left != t) {
            continue;
        }
        if (filter_matches(f, p->span_filter)) {
            return p;
        }
        if (p->right != NULL && filter_matches(f, p->right->types)) {
            return find_minimal(p->right, f);
        }
    }
    return NULL;
}

/* pred is succ mirrored. */
static treap_node *
pred(treap_node *t, treap_iter_filter f)
{
    if (t->left != NULL && filter_matches(f, t->left->types)) {
        return find_maximal(t->left, f);
    }
    for (treap_node *p = t->parent; p != NULL; t = p, p = p->parent) {
        if (p->right != t) {
            continue;
        }
        if (filter_matches(f, p->span_filter)) {
            return p;
        }
        if (p->left != NULL && filter_matches(f, p->left->types)) {
            return find_maximal(p->left, f);
        }
    }
    return NULL;
}

treap_iter
mtreap_start(const mtreap *root, uint8_t mask, uint8_t match)
{
    treap_iter_filter f = treap_filter(mask, match);
    return (treap_iter){f, find_minimal(root->treap, f)};
}

treap_iter
mtreap_end(const mtreap *root, uint8_t mask, uint8_t match)
{
    treap_iter_filter f = treap_filter(mask, match);
    return (treap_iter){f, find_maximal(root->treap, f)};
}

/* Stepping past either end leaves an invalid iterator, and stepping an
 * invalid one leaves it invalid (Go would dereference nil). */
treap_iter
treap_iter_next(treap_iter i)
{
    if (i.t != NULL) {
        i.t = succ(i.t, i.f);
    }
    return i;
}

treap_iter
treap_iter_prev(treap_iter i)
{
    if (i.t != NULL) {
        i.t = pred(i.t, i.f);
    }
    return i;
}

/* mtreap_size walks the whole treap in order: O(n), for tests and
 * introspection only, which is why the treap keeps no count. */
size_t
mtreap_size(const mtreap *root)
{
    size_t n = 0;

    for (treap_node *t = find_minimal(root->treap, TREAP_FILTER_ALL);
         t != NULL; t = succ(t, TREAP_FILTER_ALL)) {
        n++;
    }
    return n;
}
