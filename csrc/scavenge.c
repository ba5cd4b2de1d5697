/* The scavenger: returning free pages to the OS.  See scavenge.h.
 *
 * The scavenger and the page heap (mheap.c) call each other, as Go's
 * mheap methods do: the heap scavenges when it grows, the scavenger
 * coalesces what it releases (mheap_coalesce).  This is the one cycle
 * between files that tools/check_layers.py allows (see mheap.c).
 * Go 1.13: src/runtime/mheap.go (scavengeLocked, scavengeSplit,
 *          scavengeIfNeededLocked, scavengeAll, (*mspan).scavenge).
 * Differs from Go: no background pacing; see scavenge.h.
 * Locking: the caller holds the heap lock; ga_scavenge takes it.
 */
#include "scavenge.h"

#include "arith.h"
#include "goalloc.h"
#include "internal.h"

struct split {
    mheap *h;
    mspan *n;
    ga_addr base;
};

/* split_top moves [base, end) of s into the new span c->n. */
static void
split_top(mspan *s, void *arg)
{
    struct split *c = arg;
    ga_addr end = mspan_end(s);
    uint64_t npages = (end - c->base) / PAGE_SIZE;
    mspan_init(c->n, c->base, npages);
    s->npages -= npages;
    set_span(c->h, c->base - 1, s);
    set_span(c->h, c->base, c->n);
    set_span(c->h, end - 1, c->n);
    c->n->needzero = s->needzero;
    c->n->state = s->state;
}

/* scavenge_split cuts about size bytes off the top of the span at t and
 * returns the new top span, or NULL when the whole span should go. */
static mspan *
scavenge_split(mheap *h, treap_iter t, uint64_t size)
{
    mspan *s = treap_iter_span(t);
    ga_addr start, end;
    mspan_phys_page_bounds(s, h->plat.phys_page_size, &start, &end);
    if (end <= start || end - start <= size) {
        return NULL;
    }
    uint64_t align = h->plat.phys_page_size > PAGE_SIZE
                         ? h->plat.phys_page_size
                         : PAGE_SIZE;
    ga_addr base = round_down(end - size, align);
    if (base <= start) {
        return NULL;
    }
    uint64_t huge = h->plat.phys_huge_page_size;
    if (huge > PAGE_SIZE && round_down(base, huge) >= start) {
        /* Do not break a huge page apart. */
        base = round_down(base, huge);
    }
    if (base == start) {
        return NULL;
    }
    if (base < start) {
        throw(h, "bad span split base");
    }
    mspan *n = fixalloc_alloc(&h->spanalloc);
    if (n == NULL) {
        throw(h, "runtime: cannot allocate memory");
    }
    struct split c = {h, n, base};
    mtreap_mutate(&h->free, t, split_top, &c);
    return n;
}

/* mspan_scavenge releases s's physical pages (Go's (*mspan).scavenge). */
static uint64_t
mspan_scavenge(mheap *h, mspan *s)
{
    ga_addr start, end;
    mspan_phys_page_bounds(s, h->plat.phys_page_size, &start, &end);
    if (end <= start) {
        return 0;
    }
    uint64_t released = end - start;
    h->stats.heap_released += released;
    s->scavenged = true;
    sys_unused(&h->mem, start, released);
    return released;
}

uint64_t
mheap_scavenge_locked(mheap *h, uint64_t nbytes)
{
    GA_ASSERT(mheap_owned(h));
    uint64_t released = 0;
    const uint8_t mask = TREAP_ITER_SCAV | TREAP_ITER_HUGE;
    const uint8_t matches[2] = {TREAP_ITER_HUGE, 0};
    for (int pass = 0; pass < 2; pass++) {
        treap_iter t = mtreap_end(&h->free, mask, matches[pass]);
        while (released < nbytes && treap_iter_valid(t)) {
            mspan *s = treap_iter_span(t);
            ga_addr start, end;
            mspan_phys_page_bounds(s, h->plat.phys_page_size, &start, &end);
            if (start >= end) {
                t = treap_iter_prev(t);
                continue;
            }
            treap_iter prev = treap_iter_prev(t);
            mspan *piece = scavenge_split(h, t, nbytes - released);
            if (piece != NULL) {
                s = piece;
            }
            else {
                mtreap_erase(&h->free, t);
            }
            released += mspan_scavenge(h, s);
            /* Coalesce now, so no two released spans stay adjacent. */
            mheap_coalesce(h, s);
            t = prev;
            if (!mtreap_insert(&h->free, s)) {
                throw(h, "runtime: cannot allocate memory");
            }
        }
    }
    h->scavenged_total += released;
    return released;
}

void
mheap_scavenge_if_needed_locked(mheap *h, uint64_t size)
{
    GA_ASSERT(mheap_owned(h));
    uint64_t r = heap_retained(h);
    if (r + size > h->scavenge_goal) {
        uint64_t todo = size;
        uint64_t overage = r + size - h->scavenge_goal;
        if (overage < todo) {
            todo = overage;
        }
        mheap_scavenge_locked(h, todo);
    }
}

/* ga_scavenge is scavengeLocked for the facade (scavengeAll when nbytes is
 * UINT64_MAX), in a protected call. */
ga_status
ga_scavenge(ga_heap *h, uint64_t nbytes, uint64_t *released)
{
    if (heap_poisoned(h) != NULL) {
        return GA_EPOISONED;
    }
    protect_frame pf; /* a throw lands here (throw.h) */
    protect_push(&pf);
    if (setjmp(pf.jb) != 0) {
        protect_pop(&pf);
        return GA_EPOISONED;
    }
    mheap_lock(h);
    /* scavengeLocked splits at most one span: room for it first */
    bool room = fixalloc_reserve(&h->spanalloc, 1) &&
                fixalloc_reserve(&h->treapalloc, 1);
    if (room) {
        *released = mheap_scavenge_locked(h, nbytes);
    }
    mheap_debug_check_locked(h, "ga_scavenge");
    mheap_unlock(h);
    protect_pop(&pf);
    return room ? GA_OK : GA_ENOMEM;
}
