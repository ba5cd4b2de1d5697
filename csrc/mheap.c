/* The page heap.  See mheap.h and malloc.c for the overview.
 *
 * Span allocation (first fit on the treap, low end carved), growth
 * (go1.13.8: into curArena; go1.13.0: by whole arenas), freeing with
 * coalescing, and the released-bytes bookkeeping that goes with
 * scavenged spans.  The page heap calls nothing above it (the mcentrals
 * call it), but for one cycle that Go's design has: the page heap and
 * its scavenger (scavenge.c) call each other, as the methods of Go's
 * mheap do in mheap.go: growing scavenges (scavengeIfNeededLocked) and
 * scavenging coalesces what it releases (coalesce).  tools/
 * check_layers.py allows this cycle and no other.
 * Go 1.13: src/runtime/mheap.go (init, recordspan, alloc_m, alloc,
 *          allocSpanLocked, grow, growAddSpan, freeSpanLocked, coalesce)
 *          of go1.13.8 and go1.13.0, mgcsweepbuf.go (gcSweepBuf.push).
 * Differs from Go: no sweeper, no page reclaimer, no huge-page advice;
 *          sweepSpans' pushes are only accounted; mallocinit, not
 *          mheap_init, initialises the mcentrals.
 * Locking: functions named _locked need h->lock; mheap_alloc takes it.
 *          (Go's freeSpan, which takes it to free, is
 *          mcentral_release_to_heap for small spans; a large object's
 *          free holds it already, free.c.)
 */
#include "mheap.h"

#include <string.h>

#include "arith.h"
#include "internal.h"
#include "scavenge.h"
#include "sizeclasses.h"

static void
treap_throw_hook(void *arg, const char *msg)
{
    throw(arg, msg);
}

/* ---- mspan structs ----------------------------------------------- */

/* recordspan: the first time a struct is carved from fresh memory it
 * joins allspans.  Go's slice grows to max(64 KiB of pointers, 1.5x) and
 * the old array is freed; only the other_sys charge is modelled. */
static void
recordspan(void *arg, void *p)
{
    mheap *h = arg;
    mspan *s = p;
    if (h->nallspans >= h->allspans_cap) {
        uint64_t n = (64 << 10) / h->plat.ptr_size;
        if (n < h->allspans_cap * 3 / 2) {
            n = h->allspans_cap * 3 / 2;
        }
        h->stats.other_sys += n * h->plat.ptr_size;
        h->stats.other_sys -= h->allspans_cap * h->plat.ptr_size;
        h->allspans_cap = n;
    }
    s->allnext = h->allspans;
    h->allspans = s;
    h->nallspans++;
}

/* new_span takes a span struct from spanalloc, where the caller
 * reserved room (fixalloc_reserve): running out here is a broken
 * invariant, as running out of metadata memory is fatal in Go. */
static mspan *
new_span(mheap *h)
{
    mspan *s = fixalloc_alloc(&h->spanalloc);
    if (s == NULL) {
        throw(h, "runtime: cannot allocate memory");
    }
    return s;
}

static void
treap_insert(mheap *h, mspan *s)
{
    if (!mtreap_insert(&h->free, s)) {
        throw(h, "runtime: cannot allocate memory");
    }
}

void
mheap_init(mheap *h)
{
    const platform *p = &h->plat;
    mstats *st = &h->stats;
    h->lookup.base_offset = p->arena_base_offset;
    h->lookup.shift = (uint8_t)p->log_heap_arena_bytes;
    h->lookup.bits = (uint8_t)arena_bits(p);
    h->lookup.l2_bits = (uint8_t)p->arena_l2_bits;
    h->lookup.l2_mask = ((uint64_t)1 << p->arena_l2_bits) - 1;
    h->lookup.page_mask = p->pages_per_arena - 1; /* a power of two */
    persistent_alloc_init(&h->pa, &st->other_sys, p->ptr_size);
    fixalloc_init(&h->treapalloc, p->sizeof_treap_node, sizeof(treap_node),
                  NULL, NULL, &st->other_sys, &h->pa);
    fixalloc_init(&h->spanalloc, p->sizeof_mspan, sizeof(mspan), recordspan, h,
                  &st->mspan_sys, &h->pa);
    fixalloc_init(&h->cachealloc, p->sizeof_mcache, sizeof(mcache), NULL, NULL,
                  &st->mcache_sys, &h->pa);
    /* Specials (finalizers, profiles) are never made, but Go sets their
     * fixallocs up; they charge nothing until first used. */
    fixalloc_init(&h->specialfinalizeralloc, p->sizeof_special_finalizer,
                  sizeof(void *), NULL, NULL, &st->other_sys, &h->pa);
    fixalloc_init(&h->specialprofilealloc, p->sizeof_special_profile,
                  sizeof(void *), NULL, NULL, &st->other_sys, &h->pa);
    fixalloc_init(&h->arena_hint_alloc, p->sizeof_arena_hint,
                  sizeof(arena_hint), NULL, NULL, &st->other_sys, &h->pa);
    /* Don't zero mspan allocations: a recycled span keeps its sweepgen. */
    h->spanalloc.zero = false;
    fixalloc *all[] = {&h->treapalloc,          &h->spanalloc,
                       &h->cachealloc,          &h->specialfinalizeralloc,
                       &h->specialprofilealloc, &h->arena_hint_alloc};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        all[i]->meta = &h->meta;
    }
    mtreap_init(&h->free, &h->treapalloc, p->phys_huge_page_size, h->seed);
    h->free.throw_fn = treap_throw_hook;
    h->free.throw_arg = h;
}

/* ---- Coalescing -------------------------------------------------- */

/* merge folds other (adjacent to s, free, same scavenged state) into s.
 * s is not in the treap; other is. */
static void
merge(mheap *h, mspan *s, mspan *other, bool other_before)
{
    s->npages += other->npages;
    s->needzero |= other->needzero;
    if (other_before) {
        s->start_addr = other->start_addr;
        set_span(h, mspan_base(s), s);
    }
    else {
        set_span(h, mspan_end(s) - 1, s);
    }
    mtreap_remove_span(&h->free, other);
    other->state = MSPAN_DEAD;
    fixalloc_free(&h->spanalloc, other);
}

void
mheap_coalesce(mheap *h, mspan *s)
{
    /* Go's realign only matters when OS pages exceed runtime pages; with
     * 4 KiB OS pages neighbours of mixed scavenged state stay apart. */
    mspan *before = span_of(h, mspan_base(s) - 1);
    if (before != NULL && before->state == MSPAN_FREE &&
        before->scavenged == s->scavenged) {
        merge(h, s, before, true);
    }
    mspan *after = span_of(h, mspan_end(s));
    if (after != NULL && after->state == MSPAN_FREE &&
        after->scavenged == s->scavenged) {
        merge(h, s, after, false);
    }
}

/* ---- Growth ------------------------------------------------------ */

/* cur_arena_fits: go1.13.8 grows into what is left of curArena, without
 * new address space, when the request fits there. */
static bool
cur_arena_fits(const mheap *h, uint64_t npages)
{
    ga_addr nbase = round_up(h->cur_arena.base + npages * PAGE_SIZE,
                             h->plat.phys_page_size);
    return h->release == GA_RELEASE_GO1_13_8 && nbase <= h->cur_arena.end;
}

bool
mheap_can_grow(mheap *h, uint64_t npages)
{
    if (h->sys_limit == 0 || cur_arena_fits(h, npages)) {
        return true;
    }
    /* sysAlloc maps the whole ask in whole arenas, also when part of it
     * could have come from curArena (the new space may not adjoin it). */
    uint64_t ask = round_up(npages * PAGE_SIZE, h->plat.heap_arena_bytes);
    return h->stats.heap_sys + ask <= h->sys_limit ||
           mheap_refuse(h, "the heap would grow past sys_limit");
}

/* add_free_span makes [v, v+size) of fresh memory, still in the Prepared
 * state and already counted idle and released, a free span marked
 * scavenged (so that allocating it makes it Ready), and coalesces it. */
static void
add_free_span(mheap *h, ga_addr v, uint64_t size)
{
    mspan *s = new_span(h);
    mspan_init(s, v, size / PAGE_SIZE);
    set_spans(h, mspan_base(s), s->npages, s);
    s->state = MSPAN_FREE;
    s->scavenged = true;
    mheap_coalesce(h, s);
    treap_insert(h, s);
}

/* grow_add_span is go1.13.8's growAddSpan: the heap grows into [v,
 * v+size), so it first scavenges as much free memory, if the retained
 * heap would otherwise exceed the goal; this is go1.13.8's only
 * synchronous scavenging. */
static void
grow_add_span(mheap *h, ga_addr v, uint64_t size)
{
    mheap_scavenge_if_needed_locked(h, size);
    add_free_span(h, v, size);
}

/* grow_whole_arena is go1.13.0's grow: the whole sysAlloc result (the
 * ask rounded up to arenas) becomes one free span. */
static bool
grow_whole_arena(mheap *h, uint64_t npage)
{
    uint64_t size;
    ga_addr v = mheap_sys_alloc(h, npage * PAGE_SIZE, &size);
    if (v == 0) {
        return false;
    }
    /* Fresh memory is untouched: it counts as released. */
    h->stats.heap_idle += size;
    h->stats.heap_released += size;
    add_free_span(h, v, size);
    return true;
}

/* grow_cur_arena is go1.13.8's grow: a span of the pages asked for,
 * rounded up to the physical page, is cut off the bottom of curArena;
 * only when curArena is too small does sysAlloc map new arenas for the
 * whole ask.  New space that adjoins curArena extends it; other new
 * space replaces it, and what was left of the old curArena becomes a
 * free span. */
static bool
grow_cur_arena(mheap *h, uint64_t npage)
{
    uint64_t ask = npage * PAGE_SIZE;
    uint64_t phys = h->plat.phys_page_size;
    ga_addr nbase = round_up(h->cur_arena.base + ask, phys);
    if (nbase > h->cur_arena.end) {
        uint64_t asize;
        ga_addr av = mheap_sys_alloc(h, ask, &asize);
        if (av == 0) {
            return false;
        }
        if (av == h->cur_arena.end) {
            h->cur_arena.end = av + asize;
        }
        else {
            /* As in Go, before the new space counts as released: the
             * scavenger sees heap_sys with it, heap_released without. */
            uint64_t rest = h->cur_arena.end - h->cur_arena.base;
            if (rest != 0) {
                grow_add_span(h, h->cur_arena.base, rest);
            }
            h->cur_arena.base = av;
            h->cur_arena.end = av + asize;
        }
        /* Mapped but untouched: idle and released, though not a span. */
        h->stats.heap_released += asize;
        h->stats.heap_idle += asize;
        nbase = round_up(h->cur_arena.base + ask, phys);
    }
    ga_addr v = h->cur_arena.base;
    h->cur_arena.base = nbase;
    grow_add_span(h, v, nbase - v);
    return true;
}

/* grow adds at least npage pages of fresh (scavenged) free memory. */
static bool
grow(mheap *h, uint64_t npage)
{
    if (!mheap_can_grow(h, npage)) {
        return false;
    }
    return h->release == GA_RELEASE_GO1_13_0 ? grow_whole_arena(h, npage)
                                             : grow_cur_arena(h, npage);
}

/* ---- Allocation -------------------------------------------------- */

struct carve {
    mheap *h;
    mspan *n;
    uint64_t npage;
};

/* carve_low takes the low npage pages of the free span s into c->n; the
 * remainder keeps s (and its treap node). */
static void
carve_low(mspan *s, void *arg)
{
    struct carve *c = arg;
    mheap *h = c->h;
    mspan *n = c->n;
    mspan_init(n, mspan_base(s), c->npage);
    s->npages -= c->npage;
    s->start_addr += c->npage * PAGE_SIZE;
    set_span(h, mspan_base(s) - 1, n);
    set_span(h, mspan_base(s), s);
    set_span(h, mspan_base(n), n);
    n->needzero = s->needzero;
    n->scavenged = s->scavenged;
    if (s->scavenged) {
        uint64_t rel = mspan_released(s, h->plat.phys_page_size);
        if (rel > 0) {
            h->stats.heap_released += rel;
        }
        else {
            s->scavenged = false;
        }
    }
}

/* mheap_has_room reports whether the heap has, or can grow, a free span
 * of npage pages: the check that lets a caller refuse before anything
 * moves. */
bool
mheap_has_room(mheap *h, uint64_t npage)
{
    return treap_iter_valid(mtreap_find(&h->free, npage)) ||
           mheap_can_grow(h, npage);
}

/* The most span structs and treap nodes one mheap_alloc_span_locked can
 * take.  go1.13.8: grow may add two spans (what was left of curArena and
 * the new pages), each after a scavenge that splits at most one span, and
 * the allocation carves one: 5 spans; the four additions insert a node
 * each (the carve keeps the node in place).  go1.13.0: grow 1, carve 1,
 * scavenge 1.  Merges only give structs and nodes back. */
#define SPANS_PER_ALLOC 5
#define NODES_PER_ALLOC 4

mspan *
mheap_alloc_span_locked(mheap *h, uint64_t npage, uint64_t *stat)
{
    GA_ASSERT(mheap_owned(h));
    /* Make the metadata real first: a growth must not fail half done. */
    if (!fixalloc_reserve(&h->spanalloc, SPANS_PER_ALLOC) ||
        !fixalloc_reserve(&h->treapalloc, NODES_PER_ALLOC)) {
        mheap_refuse(h, "out of process memory for span metadata");
        return NULL;
    }
    treap_iter t = mtreap_find(&h->free, npage);
    if (!treap_iter_valid(t)) {
        if (!grow(h, npage)) {
            return NULL;
        }
        t = mtreap_find(&h->free, npage);
        if (!treap_iter_valid(t)) {
            throw(h, "grew heap, but no adequate free span found");
        }
    }
    mspan *s = treap_iter_span(t);
    if (s->state != MSPAN_FREE) {
        throw(h, "candidate mspan for allocation is not free");
    }
    h->stats.heap_released -= mspan_released(s, h->plat.phys_page_size);
    if (s->npages > npage) {
        struct carve c = {h, new_span(h), npage};
        mtreap_mutate(&h->free, t, carve_low, &c);
        s = c.n;
    }
    else {
        mtreap_erase(&h->free, t);
    }
    if (s->scavenged) {
        sys_used(&h->mem, mspan_base(s), s->npages * PAGE_SIZE);
        s->scavenged = false;
        if (h->release == GA_RELEASE_GO1_13_0) {
            /* Taking scavenged memory grew the RSS: give some back (only
             * go1.13.0; go1.13.8 scavenges on growth instead).  The
             * manual state keeps s out of the scavenger's coalescing. */
            s->state = MSPAN_MANUAL;
            mheap_scavenge_if_needed_locked(h, s->npages * PAGE_SIZE);
            s->state = MSPAN_FREE;
        }
    }
    set_spans(h, mspan_base(s), npage, s);
    arena_clear_freed(h, mspan_base(s), npage);
    *stat += npage * PAGE_SIZE;
    h->stats.heap_idle -= npage * PAGE_SIZE;
    if (s->list != NULL) {
        throw(h, "still in list");
    }
    return s;
}

static void
set_span_class(mspan *s, span_class spc)
{
    mspan_spanclass_store(s, spc);
    int c = span_class_sizeclass(spc);
    if (c == 0) {
        s->elemsize = s->npages * PAGE_SIZE;
        s->div_shift = 0;
        s->div_mul = 0;
        s->div_shift2 = 0;
        s->base_mask = 0;
        return;
    }
    s->elemsize = class_to_size[c];
    const div_magic *m = &class_to_divmagic[c];
    s->div_shift = m->shift;
    s->div_mul = m->mul;
    s->div_shift2 = m->shift2;
    s->base_mask = m->base_mask;
}

static void
zero_span(mheap *h, mspan *s)
{
    if (h->zero_memory) {
        memset((void *)(uintptr_t)mspan_base(s), 0,
               (size_t)(s->npages * PAGE_SIZE));
    }
}

/* init_small_limit: limit = base + size x objects per span, the count
 * by div magic as Go's mcentral.grow computes it. */
static void
init_small_limit(mspan *s)
{
    uint64_t n = ((s->npages * PAGE_SIZE) >> s->div_shift) * s->div_mul >>
                 s->div_shift2;
    s->limit = mspan_base(s) + s->elemsize * n;
}

/* init_large_object: the span is one object of size bytes, handed out. */
static void
init_large_object(mheap *h, mspan *s, uint64_t size)
{
    s->limit = mspan_base(s) + size;
    s->nelems = 1;
    s->alloc_cache = ~(uint64_t)0;
    s->freeindex = 1;
    s->alloc_count = 1;
    h->stats.heap_objects++;
    h->largealloc += s->elemsize;
    h->nlargealloc++;
    h->large_requested += size;
    heap_live_add(h, (int64_t)(s->npages * PAGE_SIZE));
}

mspan *
mheap_alloc(mheap *h, mcache *c, uint64_t npages, span_class spc,
            uint64_t large_size, bool needzero)
{
    GA_ASSERT(npages > 0 &&
              (large_size > 0) == (span_class_sizeclass(spc) == 0));
    mheap_lock(h);
    mspan *s = mheap_alloc_span_locked(h, npages, &h->stats.heap_inuse);
    if (s != NULL) {
        /* alloc_m transfers the cache's stats to the global ones (Go does
         * it before allocSpanLocked; goalloc only once the span is had,
         * so that a failed allocation changes nothing). */
        h->stats.tinyallocs += c->local_tinyallocs;
        c->local_tinyallocs = 0;
        sweep_buf_push_locked(h, s); /* add to the swept in-use list */
        s->sweepgen = h->sweepgen;
        s->state = MSPAN_IN_USE;
        s->alloc_count = 0;
        s->marked = false;
        s->dropped = false;
        set_span_class(s, spc);
        arena_set_page_in_use(h, mspan_base(s), true);
        h->pages_in_use += npages;
        if (large_size > 0) {
            init_large_object(h, s, large_size);
        }
        else {
            init_small_limit(s);
        }
    }
    mheap_debug_check_locked(h, "mheap_alloc");
    mheap_unlock(h);
    if (s != NULL) {
        if (needzero && s->needzero) {
            zero_span(h, s);
        }
        /* zero_on_request: the span stays dirty until ga_calloc zeroes
         * the part of it that it hands out */
        if (!h->keep_needzero) {
            s->needzero = 0;
        }
    }
    return s;
}

/* ---- Freeing ----------------------------------------------------- */

void
mheap_free_span_locked(mheap *h, mspan *s, bool acctinuse, bool acctidle)
{
    GA_ASSERT(mheap_owned(h));
    switch (s->state) {
    case MSPAN_MANUAL:
        if (s->alloc_count != 0) {
            throw(h, "mheap.freeSpanLocked - invalid stack free");
        }
        break;
    case MSPAN_IN_USE:
        if (s->alloc_count != 0 || s->sweepgen != h->sweepgen) {
            throw(h, "mheap.freeSpanLocked - invalid free");
        }
        h->pages_in_use -= s->npages;
        arena_set_page_in_use(h, mspan_base(s), false);
        break;
    default:
        throw(h, "mheap.freeSpanLocked - invalid span state");
    }
    if (acctinuse) {
        h->stats.heap_inuse -= s->npages * PAGE_SIZE;
    }
    if (acctidle) {
        h->stats.heap_idle += s->npages * PAGE_SIZE;
    }
    s->state = MSPAN_FREE;
    mheap_coalesce(h, s);
    treap_insert(h, s);
    mheap_debug_check_locked(h, "mheap_free_span_locked");
}
