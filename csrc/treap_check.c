/* The treap's invariant walker.  See treap.h.
 *
 * mtreap_check walks every node and checks what Go's checkTreapNode and
 * validateInvariants check (order by address, heap order on priorities,
 * max_pages and the type filters of every subtree), plus the parent
 * links, the cached span filters and unscav_huge_pages, recomputed.
 * Go 1.13: src/runtime/mgclarge.go (checkTreapNode, validateInvariants).
 * Differs from Go: the first broken invariant is reported as a message
 *          instead of a throw, so that tests and ga_verify can name it.
 * Locking: the caller holds the heap lock.
 */
#include "treap.h"

#include <inttypes.h>
#include <stdio.h>

typedef struct check_ctx {
    const mtreap *root;
    char *msg;
    size_t msglen;
    uint64_t unscav_huge_pages; /* recomputed sum */
} check_ctx;

static bool
check_fail(check_ctx *c, const treap_node *t, const char *what)
{
    if (c->msg != NULL && c->msglen > 0) {
        if (t != NULL) {
            snprintf(c->msg, c->msglen, "treap node key=%#" PRIx64 ": %s",
                     t->key, what);
        }
        else {
            snprintf(c->msg, c->msglen, "treap: %s", what);
        }
    }
    return false;
}

/* check_own verifies what a node must satisfy on its own and against
 * its parent: span list links, key, cached filter, heap order. */
static bool
check_own(check_ctx *c, const treap_node *t, const treap_node *parent)
{
    const mspan *s = t->span;

    if (s == NULL) {
        return check_fail(c, t, "treap node with nil span found");
    }
    if (s->next != NULL || s->prev != NULL || s->list != NULL) {
        return check_fail(c, t,
                          "span may be on an mSpanList while "
                          "simultaneously in the treap");
    }
    if (mspan_base(s) != t->key) {
        return check_fail(c, t,
                          "why does span.base() and treap.key do "
                          "not match?");
    }
    if (t->parent != parent) {
        return check_fail(c, t, "parent link does not match the tree");
    }
    if (parent != NULL && parent->priority > t->priority) {
        return check_fail(c, t, "priority heap order violated in treap");
    }
    if (t->span_filter != mspan_treap_filter(s, c->root->huge_page_size)) {
        return check_fail(c, t,
                          "span filter is stale (span changed "
                          "outside mutate)");
    }
    return true;
}

/* check_node walks t's subtree in post order.  Every key must lie
 * strictly between the keys of lo and hi (NULL = unbounded), which
 * checks the whole BST order, not just parent against child.  On
 * success *max and *types hold the subtree's recomputed aggregates. */
static bool
check_node(check_ctx *c, const treap_node *t, const treap_node *parent,
           const treap_node *lo, const treap_node *hi, uint64_t *max,
           treap_iter_filter *types)
{
    *max = 0;
    *types = 0;
    if (t == NULL) {
        return true;
    }
    if (!check_own(c, t, parent)) {
        return false;
    }
    if ((lo != NULL && t->key <= lo->key) ||
        (hi != NULL && t->key >= hi->key)) {
        return check_fail(c, t, "found out-of-order spans in treap");
    }

    uint64_t lmax, rmax;
    treap_iter_filter ltypes, rtypes;
    if (!check_node(c, t->left, t, lo, t, &lmax, &ltypes) ||
        !check_node(c, t->right, t, t, hi, &rmax, &rtypes)) {
        return false;
    }

    uint64_t m = t->span->npages;
    m = lmax > m ? lmax : m;
    m = rmax > m ? rmax : m;
    if (m != t->max_pages) {
        return check_fail(c, t, "maxPages invariant violated in treap");
    }
    if ((t->span_filter | ltypes | rtypes) != t->types) {
        return check_fail(c, t, "types invariant violated in treap");
    }
    if (!t->span->scavenged) {
        c->unscav_huge_pages += mspan_huge_pages(t->span,
                                                 c->root->huge_page_size);
    }
    *max = m;
    *types = t->types;
    return true;
}

bool
mtreap_check(const mtreap *root, char *msg, size_t msglen)
{
    check_ctx c = {root, msg, msglen, 0};
    uint64_t max;
    treap_iter_filter types;

    if (msg != NULL && msglen > 0) {
        msg[0] = '\0';
    }
    if (!check_node(&c, root->treap, NULL, NULL, NULL, &max, &types)) {
        return false;
    }
    if (c.unscav_huge_pages != root->unscav_huge_pages) {
        char what[96];
        snprintf(what, sizeof what,
                 "unscavHugePages=%" PRIu64 ", want %" PRIu64,
                 root->unscav_huge_pages, c.unscav_huge_pages);
        return check_fail(&c, NULL, what);
    }
    return true;
}
