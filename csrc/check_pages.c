/* The page heap's invariant walker.  See malloc.c for the overview.
 *
 * mheap_check_pages walks the page heap and checks the invariants of
 * design §11 that hold whenever the heap lock is free to take: hints and
 * arenas, span coverage and the span map, page-in-use bits, free spans
 * (coalesced, off every list) against the treap, go1.13.8's curArena,
 * and the page counters (heap_sys, heap_inuse, heap_idle, heap_released,
 * pagesInUse) with the fixallocs' accounting.  It reads nothing that a
 * P changes without the heap lock, so debug builds (GA_DEBUG >= 2) run
 * it after each span allocation and free while other Ps run.  check.c
 * adds the object layer for ga_verify.
 * Go 1.13: checkTreapNode, validateInvariants (mgclarge.go) and the
 *          checks of export_test.go (ReadMemStatsSlow's page part,
 *          CountPagesInUse).
 * Differs from Go: Go checks these in tests only; goalloc offers them as
 *          h.verify() and runs them in debug builds.
 * Locking: the caller holds the heap lock.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"
#include "mheap.h"

typedef struct pages_ctx {
    mheap *h;
    char *msg;
    size_t msglen;
    bool ok;
    /* sums over the span walk */
    uint64_t free_bytes;
    uint64_t inuse_bytes;
    uint64_t manual_bytes;
    uint64_t released;
    uint64_t ungrown; /* bytes of go1.13.8's curArena */
    uint64_t pages_in_use;
    uint64_t nfree;
    uint64_t nspans;
    const mspan *prev;
} pages_ctx;

static bool
failf(pages_ctx *c, const char *fmt, ...)
{
    if (c->ok) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->msg, c->msglen, fmt, ap);
        va_end(ap);
    }
    c->ok = false;
    return false;
}

/* eq: a == b, or a failure naming what. */
static bool
eq(pages_ctx *c, uint64_t a, uint64_t b, const char *what)
{
    return a == b || failf(c, "%s (%" PRIu64 " != %" PRIu64 ")", what, a, b);
}

static bool
check_hints_and_arenas(pages_ctx *c)
{
    mheap *h = c->h;
    uint64_t nhints = 0;
    for (arena_hint *a = h->arena_hints; a != NULL; a = a->next) {
        if ((a->addr & (h->plat.heap_arena_bytes - 1)) != 0) {
            return failf(c,
                         "arena hint 0x%" PRIx64
                         " is not a multiple of the arena size",
                         a->addr);
        }
        nhints++;
    }
    if (h->arena_hint_alloc.inuse != nhints * h->plat.sizeof_arena_hint) {
        return failf(c,
                     "arenaHintAlloc.inuse %" PRIu64 " != %" PRIu64
                     " hints x %" PRIu64,
                     h->arena_hint_alloc.inuse, nhints,
                     h->plat.sizeof_arena_hint);
    }
    for (uint64_t i = 0; i < h->nall_arenas; i++) {
        uint64_t idx = h->all_arenas[i];
        if (idx >> arena_bits(&h->plat) != 0 ||
            heap_arena_of(h, arena_base(&h->plat, idx)) == NULL) {
            return failf(c,
                         "allArenas lists arena 0x%" PRIx64
                         " but the arena map has no entry",
                         idx);
        }
        for (uint64_t j = 0; j < i; j++) {
            if (h->all_arenas[j] == idx) {
                return failf(c, "allArenas lists arena 0x%" PRIx64 " twice",
                             idx);
            }
        }
    }
    return true;
}

/* page_run_ok: every page of the run of npages pages from base is in a
 * mapped arena, maps to want in the span map (when map_all; else only
 * the run's first and last pages are looked at) and has its pageInUse
 * bit clear, but the first page's, which is first_in_use.  Reads each
 * arena's arrays directly, a byte of pageInUse bits at a time where it
 * can: debug builds run this walk after every span operation.  The
 * per-page loops below only say which page is wrong. */
static bool
page_run_ok(const mheap *h, ga_addr base, uint64_t npages, const mspan *want,
            bool map_all, bool first_in_use)
{
    uint64_t per_arena = h->plat.pages_per_arena;
    uint64_t done = 0;
    while (done < npages) {
        ga_addr a = base + done * PAGE_SIZE;
        const heap_arena *ha = heap_arena_of(h, a);
        if (ha == NULL) {
            return false;
        }
        uint64_t pi = page_index(h, a);
        uint64_t n = per_arena - pi < npages - done ? per_arena - pi
                                                    : npages - done;
        for (uint64_t k = 0; k < n; k++) {
            bool end = done + k == 0 || done + k == npages - 1;
            if ((map_all || end) &&
                __atomic_load_n(&ha->spans[pi + k], __ATOMIC_RELAXED) !=
                    want) {
                return false;
            }
        }
        for (uint64_t k = 0; k < n;) {
            uint64_t q = pi + k;
            if (q % 8 == 0 && n - k >= 8 && done + k != 0) {
                if (ha->page_in_use[q / 8] != 0) {
                    return false;
                }
                k += 8;
                continue;
            }
            bool bit = (ha->page_in_use[q / 8] >> (q % 8)) & 1;
            if (bit != (first_in_use && done + k == 0)) {
                return false;
            }
            k++;
        }
        done += n;
    }
    return true;
}

/* check_span_pages: every page of an in-use or manual span maps to it;
 * a free span's first and last pages do.  pageInUse is set exactly at
 * the first page of in-use spans. */
static bool
check_span_pages(pages_ctx *c, mspan *s)
{
    mheap *h = c->h;
    bool all = s->state != MSPAN_FREE;
    if (page_run_ok(h, mspan_base(s), s->npages, s, all,
                    s->state == MSPAN_IN_USE)) {
        return true;
    }
    for (uint64_t i = 0; i < s->npages; i++) {
        ga_addr a = mspan_base(s) + i * PAGE_SIZE;
        bool end_page = i == 0 || i == s->npages - 1;
        if ((all || end_page) && span_of(h, a) != s) {
            return failf(c,
                         "spanOf(0x%" PRIx64
                         ") is not the %s span at 0x%" PRIx64,
                         a, mspan_state_names[s->state], mspan_base(s));
        }
        bool want = i == 0 && s->state == MSPAN_IN_USE;
        if (arena_page_in_use(h, a) != want) {
            return failf(c, "pageInUse bit of page 0x%" PRIx64 " is %d", a,
                         !want);
        }
    }
    return failf(c, "the pages of span 0x%" PRIx64 " disagree with it",
                 mspan_base(s));
}

/* check_free_span: off every list, coalesced with a free neighbour of
 * the same scavenged state. */
static bool
check_free_span(pages_ctx *c, mspan *s)
{
    if (s->list != NULL || s->next != NULL || s->prev != NULL) {
        return failf(c, "free span 0x%" PRIx64 " is on a span list",
                     mspan_base(s));
    }
    if (c->prev != NULL && c->prev->state == MSPAN_FREE &&
        c->prev->scavenged == s->scavenged &&
        mspan_end(c->prev) == mspan_base(s)) {
        return failf(c,
                     "adjacent free spans 0x%" PRIx64 " and 0x%" PRIx64
                     " were not coalesced",
                     mspan_base(c->prev), mspan_base(s));
    }
    c->free_bytes += s->npages * PAGE_SIZE;
    c->released += mspan_released(s, c->h->plat.phys_page_size);
    c->nfree++;
    return true;
}

static bool
check_one_span(void *arg, mspan *s)
{
    pages_ctx *c = arg;
    c->nspans++;
    if (!check_span_pages(c, s)) {
        return false;
    }
    uint64_t bytes = s->npages * PAGE_SIZE;
    switch (s->state) {
    case MSPAN_FREE:
        if (!check_free_span(c, s)) {
            return false;
        }
        break;
    case MSPAN_IN_USE:
        if (s->scavenged) {
            return failf(c, "in-use span 0x%" PRIx64 " is scavenged",
                         mspan_base(s));
        }
        c->inuse_bytes += bytes;
        c->pages_in_use += s->npages;
        break;
    case MSPAN_MANUAL:
        c->manual_bytes += bytes;
        break;
    default:
        return failf(c, "span 0x%" PRIx64 " in the span map is dead",
                     mspan_base(s));
    }
    c->prev = s;
    return true;
}

/* check_ungrown: go1.13.8's curArena, met between the spans, has no
 * span and no in-use page (Go never setSpans it before growing into it). */
static bool
check_ungrown(void *arg, ga_addr base, uint64_t size)
{
    pages_ctx *c = arg;
    mheap *h = c->h;
    if (page_run_ok(h, base, size / PAGE_SIZE, NULL, true, false)) {
        c->ungrown += size;
        return true;
    }
    for (ga_addr a = base; a < base + size; a += PAGE_SIZE) {
        if (heap_arena_of(h, a) == NULL) {
            return failf(c,
                         "curArena page 0x%" PRIx64 " is not in a mapped "
                         "arena",
                         a);
        }
        if (span_of(h, a) != NULL || arena_page_in_use(h, a)) {
            return failf(c, "curArena page 0x%" PRIx64 " belongs to a span",
                         a);
        }
    }
    return failf(c,
                 "curArena [0x%" PRIx64 ", +%" PRIu64 ") disagrees with "
                 "the span map",
                 base, size);
}

/* check_cur_arena: curArena is a physical-page aligned range that ends on
 * an arena boundary (go1.13.8), and empty at 0 under go1.13.0; the walk
 * must have met all of it. */
static bool
check_cur_arena(pages_ctx *c)
{
    mheap *h = c->h;
    ga_addr base = h->cur_arena.base;
    ga_addr end = h->cur_arena.end;
    if (h->release == GA_RELEASE_GO1_13_0 && (base != 0 || end != 0)) {
        return failf(c, "go1.13.0 heap has a curArena");
    }
    if (base > end || (base & (h->plat.phys_page_size - 1)) != 0 ||
        (base & PAGE_MASK) != 0 ||
        (end & (h->plat.heap_arena_bytes - 1)) != 0) {
        return failf(c,
                     "curArena [0x%" PRIx64 ", 0x%" PRIx64 ") is misaligned",
                     base, end);
    }
    return eq(c, c->ungrown, end - base,
              "curArena bytes met by the walk != its size");
}

/* Every treap span is a real free span; with equal counts the two sets
 * are the same. */
static bool
check_treap_spans(pages_ctx *c)
{
    mheap *h = c->h;
    char buf[200];
    if (!mtreap_check(&h->free, buf, sizeof(buf))) {
        return failf(c, "treap: %s", buf);
    }
    uint64_t n = 0;
    for (treap_iter t = mtreap_start(&h->free, 0, 0); treap_iter_valid(t);
         t = treap_iter_next(t)) {
        mspan *s = treap_iter_span(t);
        if (s->state != MSPAN_FREE || span_of(h, mspan_base(s)) != s) {
            return failf(c,
                         "treap holds span 0x%" PRIx64
                         " that is not a free span of the heap",
                         mspan_base(s));
        }
        n++;
    }
    if (n != c->nfree) {
        return failf(c,
                     "treap holds %" PRIu64 " spans, the heap has %" PRIu64
                     " free spans",
                     n, c->nfree);
    }
    if (h->treapalloc.inuse != n * h->plat.sizeof_treap_node) {
        return failf(c, "treapalloc.inuse does not match the treap size");
    }
    return true;
}

static uint64_t
allspans_length(const mheap *h)
{
    uint64_t n = 0;
    for (mspan *s = h->allspans; s != NULL; s = s->allnext) {
        n++;
    }
    return n;
}

/* check_page_stats: the page counters against the walk's sums, and the
 * span and mcache fixallocs against what exists. */
static bool
check_page_stats(pages_ctx *c)
{
    mheap *h = c->h;
    const mstats *st = &h->stats;
    uint64_t mapped = h->nall_arenas * h->plat.heap_arena_bytes;
    bool ok = eq(c, st->heap_sys, st->heap_inuse + st->heap_idle,
                 "heap_sys != heap_inuse + heap_idle") &&
              eq(c, st->heap_idle, c->free_bytes + c->ungrown,
                 "heap_idle != bytes of free spans + curArena") &&
              eq(c, st->heap_inuse, c->inuse_bytes,
                 "heap_inuse != bytes of in-use spans") &&
              eq(c, st->heap_sys, mapped - c->manual_bytes,
                 "heap_sys != mapped arena bytes - manual spans") &&
              /* ReadMemStatsSlow (go1.13.8) counts curArena as released too */
              eq(c, st->heap_released, c->released + c->ungrown,
                 "heap_released != released bytes of free spans + curArena");
    if (ok && st->heap_released > st->heap_idle) {
        return failf(c, "heap_released > heap_idle");
    }
    ok = ok &&
         eq(c, h->pages_in_use, c->pages_in_use,
            "pagesInUse != pages of in-use spans") &&
         eq(c, h->spanalloc.inuse, c->nspans * h->plat.sizeof_mspan,
            "spanalloc.inuse != live spans x sizeof(mspan)") &&
         eq(c, h->cachealloc.inuse,
            (uint64_t)h->nprocs * h->plat.sizeof_mcache,
            "cachealloc.inuse != Ps x sizeof(mcache)") &&
         eq(c, allspans_length(h), h->nallspans,
            "allspans chain length != nallspans");
    if (ok && (h->spanalloc.inuse > st->mspan_sys ||
               h->cachealloc.inuse > st->mcache_sys)) {
        return failf(c, "fixalloc inuse exceeds its sys");
    }
    return ok;
}

bool
mheap_check_pages(mheap *h, char *msg, size_t msglen)
{
    GA_ASSERT(mheap_owned(h));
    pages_ctx c = {0};
    c.h = h;
    c.msg = msg;
    c.msglen = msglen;
    c.ok = true;
    if (!check_hints_and_arenas(&c)) {
        return false;
    }
    if (!mheap_walk(h, check_one_span, check_ungrown, &c)) {
        if (c.ok) {
            failf(&c, "the mapped arenas are not covered span by span");
        }
        return false;
    }
    return check_cur_arena(&c) && check_treap_spans(&c) &&
           check_page_stats(&c);
}

#if GA_DEBUG >= 2
void
mheap_debug_check_locked(mheap *h, const char *what)
{
    char msg[200];
    if (!mheap_check_pages(h, msg, sizeof(msg))) {
        snprintf(h->throw_buf, sizeof(h->throw_buf), "GA_DEBUG: after %s: %s",
                 what, msg);
        throw(h, h->throw_buf);
    }
}
#endif
