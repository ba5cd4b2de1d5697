/* Invariant walkers behind ga_verify.  See malloc.c for the overview.
 *
 * mheap_check walks the whole heap and checks the invariants of facts §5
 * that apply: hints and arenas, span coverage and the span map, the
 * treap against the free spans, page-in-use bits, go1.13.8's curArena,
 * the statistics identities and the fixalloc accounting.  The first broken invariant is
 * reported by name.
 * Go 1.13: checkTreapNode, validateInvariants (mgclarge.go) and the
 *          checks of export_test.go (ReadMemStatsSlow, CountPagesInUse).
 * Differs from Go: Go checks these in tests only; goalloc offers them as
 *          h.verify().
 * Locking: the caller holds the heap lock.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "goalloc.h"
#include "mbitmap.h"
#include "mheap.h"
#include "sizeclasses.h"
#include "tiny.h"

typedef struct check_ctx {
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
    uint64_t nlarge;
    uint64_t large_bytes;
    uint64_t nsmall_spans;
    uint64_t live[NUM_SIZE_CLASSES]; /* live small objects per class */
    uint64_t requested;              /* requested bytes of live objects */
    uint64_t span_meta;              /* goalloc's bitmap blocks */
    uint64_t tiny_meta;              /* tiny block marks */
    const mspan *prev;
} check_ctx;

static bool
failf(check_ctx *c, const char *fmt, ...)
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

static bool
check_hints_and_arenas(check_ctx *c)
{
    mheap *h = c->h;
    uint64_t nhints = 0;
    for (arena_hint *a = h->arena_hints; a != NULL; a = a->next) {
        if ((a->addr & (h->plat.heap_arena_bytes - 1)) != 0) {
            return failf(c, "arena hint 0x%" PRIx64
                            " is not a multiple of the arena size", a->addr);
        }
        nhints++;
    }
    if (h->arena_hint_alloc.inuse != nhints * h->plat.sizeof_arena_hint) {
        return failf(c, "arenaHintAlloc.inuse %" PRIu64 " != %" PRIu64
                        " hints x %" PRIu64,
                     h->arena_hint_alloc.inuse, nhints,
                     h->plat.sizeof_arena_hint);
    }
    for (uint64_t i = 0; i < h->nall_arenas; i++) {
        uint64_t idx = h->all_arenas[i];
        if (idx >> arena_bits(&h->plat) != 0 ||
            heap_arena_of(h, arena_base(&h->plat, idx)) == NULL) {
            return failf(c, "allArenas lists arena 0x%" PRIx64
                            " but the arena map has no entry", idx);
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

/* check_span_pages: every page of an in-use or manual span maps to it;
 * a free span's first and last pages do.  pageInUse is set exactly at
 * the first page of in-use spans. */
static bool
check_span_pages(check_ctx *c, mspan *s)
{
    mheap *h = c->h;
    bool all = s->state != MSPAN_FREE;
    for (uint64_t i = 0; i < s->npages; i++) {
        ga_addr a = mspan_base(s) + i * PAGE_SIZE;
        bool end_page = i == 0 || i == s->npages - 1;
        if ((all || end_page) && span_of(h, a) != s) {
            return failf(c, "spanOf(0x%" PRIx64 ") is not the %s span at 0x%"
                            PRIx64, a, mspan_state_names[s->state],
                         mspan_base(s));
        }
        bool want = i == 0 && s->state == MSPAN_IN_USE;
        if (arena_page_in_use(h, a) != want) {
            return failf(c, "pageInUse bit of page 0x%" PRIx64 " is %d",
                         a, !want);
        }
    }
    return true;
}

/* tiny_current_of: the P packing into the block at block, or -1. */
static int
tiny_current_of(const mheap *h, ga_addr block)
{
    for (int p = 0; p < h->nprocs; p++) {
        if (h->caches[p]->tiny == block) {
            return p;
        }
    }
    return -1;
}

/* check_tiny_objects: the objects a block's marks record start at
 * offset 0, do not overlap, and the recorded ends are theirs. */
static bool
check_tiny_objects(check_ctx *c, ga_addr block, uint32_t m)
{
    uint32_t starts = m & TINY_OFFSETS;
    if ((starts & TINY_START(0)) == 0) {
        return failf(c, "tiny block 0x%" PRIx64 " has no object at offset 0",
                     block);
    }
    uint64_t next = 0;  /* first byte after the previous object */
    uint32_t ends = 0;  /* the end marks these objects make */
    for (uint64_t off = 0; off < TINY_SIZE; off++) {
        if ((starts & TINY_START(off)) == 0) {
            continue;
        }
        uint64_t size = tiny_size_at(m, off);
        if (off < next) {
            return failf(c, "tiny block 0x%" PRIx64 ": the object at offset %"
                            PRIu64 " overlaps another or has no end",
                         block, off);
        }
        next = off + size;
        ends |= TINY_END(off + size - 1);
    }
    if (ends != (m & TINY_ENDS)) {
        return failf(c, "tiny block 0x%" PRIx64 " has end marks 0x%x for "
                        "objects ending at 0x%x", block, m & TINY_ENDS, ends);
    }
    return true;
}

/* check_tiny_drop: freed holds started offsets only, and the drop is
 * marked exactly as the drop marks it (every spare offset, or
 * TINY_FULL_DROPPED when there is none). */
static bool
check_tiny_drop(check_ctx *c, ga_addr block, uint32_t m, uint32_t f)
{
    uint32_t starts = m & TINY_OFFSETS;
    uint32_t spare = f & ~starts & TINY_OFFSETS;
    bool full = starts == TINY_OFFSETS;
    if (spare != 0 && spare != (~starts & TINY_OFFSETS)) {
        return failf(c, "tiny block 0x%" PRIx64
                        " has freed marks where no object started", block);
    }
    if ((m & TINY_FULL_DROPPED) != 0 && !full) {
        return failf(c, "tiny block 0x%" PRIx64 " is marked full and "
                        "dropped but has room", block);
    }
    return true;
}

/* check_tiny_block: slot i of s was last used as a tiny block.  A live
 * block holds consistent marks; it is some P's current block (not
 * dropped) or it is dropped and has a live object; a dead one has
 * none.  Live objects add their requested sizes. */
static bool
check_tiny_block(check_ctx *c, const mspan *s, uint64_t i, tiny_block b,
                 bool live)
{
    ga_addr block = mspan_slot_addr(s, i);
    uint32_t m = tiny_marks_load(b);
    uint32_t f = tiny_freed_load(b);
    uint32_t objs = m & ~f & TINY_OFFSETS;
    if (!live) {
        if (objs != 0) {
            return failf(c, "dead tiny block slot %" PRIu64
                            " of span 0x%" PRIx64 " has live marks",
                         i, mspan_base(s));
        }
        return true;
    }
    if (!check_tiny_objects(c, block, m) || !check_tiny_drop(c, block, m, f)) {
        return false;
    }
    int p = tiny_current_of(c->h, block);
    bool dropped = tiny_is_dropped(m, f);
    if ((p >= 0) == dropped) {
        return failf(c, "tiny block 0x%" PRIx64 " is %s but %s", block,
                     p >= 0 ? "a P's current block" : "no P's",
                     dropped ? "marked dropped" : "not marked dropped");
    }
    if (p < 0 && objs == 0) {
        return failf(c, "tiny block 0x%" PRIx64
                        " has no live object but was not freed", block);
    }
    for (uint64_t off = 0; off < TINY_SIZE; off++) {
        if (objs & TINY_START(off)) {
            c->requested += tiny_size_at(m, off);
        }
    }
    return true;
}

/* check_small_span: bitmaps, and the list the span must be on: cached
 * spans on their mcentral's empty list with sweepgen h+3; uncached full
 * spans on empty, uncached spans with free slots on nonempty. */
static bool
check_small_span(check_ctx *c, mspan *s)
{
    mheap *h = c->h;
    char buf[200];
    if (!mspan_check_bits(s, buf, sizeof(buf))) {
        return failf(c, "%s", buf);
    }
    mcentral *mc = &h->central[s->spanclass];
    bool cached = s->sweepgen == h->sweepgen + 3;
    if (!cached && s->sweepgen != h->sweepgen) {
        return failf(c, "span 0x%" PRIx64 " has sweepgen %u", mspan_base(s),
                     s->sweepgen);
    }
    if (!cached && s->remote_frees != 0) {
        return failf(c, "uncached span 0x%" PRIx64 " has %u unswept remote frees",
                     mspan_base(s), s->remote_frees);
    }
    mspan_list *want = cached || s->alloc_count == s->nelems ? &mc->empty
                                                            : &mc->nonempty;
    if (s->list != want) {
        return failf(c, "span 0x%" PRIx64 " (allocCount %" PRIu64 " of %" PRIu64
                        ", %s) is not on its mcentral's %s list",
                     mspan_base(s), mspan_alloc_count(s), s->nelems,
                     cached ? "cached" : "uncached",
                     want == &mc->empty ? "empty" : "nonempty");
    }
    if (!cached && s->alloc_count == 0) {
        return failf(c, "uncached span 0x%" PRIx64
                        " has no live object but was not freed",
                     mspan_base(s));
    }
    if (s->tiny_marks != NULL && s->spanclass != TINY_SPAN_CLASS) {
        return failf(c, "span 0x%" PRIx64 " of class %d has tiny marks",
                     mspan_base(s), s->spanclass);
    }
    c->span_meta += mspan_bits_bytes(s->spanclass, s->nelems);
    if (s->tiny_marks != NULL) {
        c->tiny_meta += s->nelems * TINY_TABLE_BYTES_PER_SLOT;
    }
    for (uint64_t i = 0; i < s->nelems; i++) {
        bool live = mspan_is_allocated(s, i) && !bit_get(s->freed_bits, i);
        tiny_block b = tiny_block_of(s, i);
        if (b.marks != NULL) {
            if (!check_tiny_block(c, s, i, b, live)) {
                return false;
            }
            continue;
        }
        uint64_t req = mspan_req_load(s, i);
        if (live && (req == 0 || req > s->elemsize)) {
            return failf(c, "span 0x%" PRIx64 " slot %" PRIu64
                            ": requested size %" PRIu64 " of a %" PRIu64
                            "-byte slot%s", mspan_base(s), i, req,
                         s->elemsize, req == 0 ? " with no tiny marks" : "");
        }
        if (live) {
            c->requested += req;
        }
    }
    c->nsmall_spans++;
    c->live[span_class_sizeclass(s->spanclass)] += mspan_alloc_count(s);
    return true;
}

static bool
check_in_use_span(check_ctx *c, mspan *s)
{
    mheap *h = c->h;
    if (s->scavenged) {
        return failf(c, "in-use span 0x%" PRIx64 " is scavenged",
                     mspan_base(s));
    }
    if (span_class_sizeclass(s->spanclass) != 0) {
        return check_small_span(c, s);
    }
    if (s->list != NULL || s->sweepgen != h->sweepgen) {
        return failf(c, "in-use span 0x%" PRIx64 " has bad list/sweepgen",
                     mspan_base(s));
    }
    {
        c->nlarge++;
        c->large_bytes += s->elemsize;
        c->requested += s->limit - mspan_base(s);
        if (s->nelems != 1 || s->elemsize != s->npages * PAGE_SIZE ||
            s->alloc_count != 1 || s->freeindex != 1 ||
            s->limit <= mspan_base(s) || s->limit > mspan_end(s) ||
            s->limit + PAGE_SIZE <= mspan_end(s)) {
            return failf(c, "large span 0x%" PRIx64 " has bad fields",
                         mspan_base(s));
        }
    }
    return true;
}

static bool
check_one_span(void *arg, mspan *s)
{
    check_ctx *c = arg;
    mheap *h = c->h;
    c->nspans++;
    if (!check_span_pages(c, s)) {
        return false;
    }
    uint64_t bytes = s->npages * PAGE_SIZE;
    switch (s->state) {
    case MSPAN_FREE:
        if (s->list != NULL || s->next != NULL || s->prev != NULL) {
            return failf(c, "free span 0x%" PRIx64 " is on a span list",
                         mspan_base(s));
        }
        if (c->prev != NULL && c->prev->state == MSPAN_FREE &&
            c->prev->scavenged == s->scavenged &&
            mspan_end(c->prev) == mspan_base(s)) {
            return failf(c, "adjacent free spans 0x%" PRIx64 " and 0x%"
                            PRIx64 " were not coalesced",
                         mspan_base(c->prev), mspan_base(s));
        }
        c->free_bytes += bytes;
        c->released += mspan_released(h, s);
        c->nfree++;
        break;
    case MSPAN_IN_USE:
        c->inuse_bytes += bytes;
        c->pages_in_use += s->npages;
        if (!check_in_use_span(c, s)) {
            return false;
        }
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

#define EQ(a, b, what)                                                        \
    if ((a) != (b)) {                                                         \
        return failf(c, "%s (%" PRIu64 " != %" PRIu64 ")", what,              \
                     (uint64_t)(a), (uint64_t)(b));                          \
    }

/* check_ungrown: go1.13.8's curArena, met between the spans, has no
 * span and no in-use page (Go never setSpans it before growing into it). */
static bool
check_ungrown(void *arg, ga_addr base, uint64_t size)
{
    check_ctx *c = arg;
    mheap *h = c->h;
    for (ga_addr a = base; a < base + size; a += PAGE_SIZE) {
        if (heap_arena_of(h, a) == NULL) {
            return failf(c, "curArena page 0x%" PRIx64 " is not in a mapped "
                            "arena", a);
        }
        if (span_of(h, a) != NULL || arena_page_in_use(h, a)) {
            return failf(c, "curArena page 0x%" PRIx64 " belongs to a span",
                         a);
        }
    }
    c->ungrown += size;
    return true;
}

/* check_cur_arena: curArena is a physical-page aligned range that ends on
 * an arena boundary (go1.13.8), and empty at 0 under go1.13.0; the walk
 * must have met all of it. */
static bool
check_cur_arena(check_ctx *c)
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
        return failf(c, "curArena [0x%" PRIx64 ", 0x%" PRIx64
                        ") is misaligned", base, end);
    }
    EQ(c->ungrown, end - base, "curArena bytes met by the walk != its size");
    return true;
}

/* Every treap span is a real free span; with equal counts the two sets
 * are the same. */
static bool
check_treap_spans(check_ctx *c)
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
            return failf(c, "treap holds span 0x%" PRIx64
                            " that is not a free span of the heap",
                         mspan_base(s));
        }
        n++;
    }
    if (n != c->nfree) {
        return failf(c, "treap holds %" PRIu64 " spans, the heap has %" PRIu64
                        " free spans", n, c->nfree);
    }
    if (h->treapalloc.inuse != n * h->plat.sizeof_treap_node) {
        return failf(c, "treapalloc.inuse does not match the treap size");
    }
    return true;
}

static bool
check_stats(check_ctx *c)
{
    mheap *h = c->h;
    const mstats *st = &h->stats;
    uint64_t mapped = h->nall_arenas * h->plat.heap_arena_bytes;
    EQ(st->heap_sys, st->heap_inuse + st->heap_idle,
       "heap_sys != heap_inuse + heap_idle");
    EQ(st->heap_idle, c->free_bytes + c->ungrown,
       "heap_idle != bytes of free spans + curArena");
    EQ(st->heap_inuse, c->inuse_bytes, "heap_inuse != bytes of in-use spans");
    EQ(st->heap_sys, mapped - c->manual_bytes,
       "heap_sys != mapped arena bytes - manual spans");
    /* ReadMemStatsSlow (go1.13.8) counts curArena as released too. */
    EQ(st->heap_released, c->released + c->ungrown,
       "heap_released != released bytes of free spans + curArena");
    if (st->heap_released > st->heap_idle) {
        return failf(c, "heap_released > heap_idle");
    }
    EQ(h->pages_in_use, c->pages_in_use,
       "pagesInUse != pages of in-use spans");
    EQ(h->spanalloc.inuse, c->nspans * h->plat.sizeof_mspan,
       "spanalloc.inuse != live spans x sizeof(mspan)");
    EQ(h->cachealloc.inuse, (uint64_t)h->nprocs * h->plat.sizeof_mcache,
       "cachealloc.inuse != Ps x sizeof(mcache)");
    EQ(h->nlargealloc - h->nlargefree, c->nlarge,
       "nlargealloc - nlargefree != large spans");
    uint64_t n = 0;
    for (mspan *s = h->allspans; s != NULL; s = s->allnext) {
        n++;
    }
    EQ(n, h->nallspans, "allspans chain length != nallspans");
    if (h->spanalloc.inuse > st->mspan_sys ||
        h->cachealloc.inuse > st->mcache_sys) {
        return failf(c, "fixalloc inuse exceeds its sys");
    }
    return true;
}

static bool
check_caches(check_ctx *c)
{
    mheap *h = c->h;
    const mspan *e = &h->emptymspan;
    if (e->nelems != 0 || e->alloc_count != 0 || e->alloc_cache != 0 ||
        e->freeindex != 0) {
        return failf(c, "emptymspan is not empty");
    }
    uint64_t ncached = 0;
    for (int p = 0; p < h->nprocs; p++) {
        mcache *mc = h->caches[p];
        for (int i = 0; i < NUM_SPAN_CLASSES; i++) {
            mspan *s = mc->alloc[i];
            if (s == e) {
                continue;
            }
            ncached++;
            if (s->spanclass != i || s->state != MSPAN_IN_USE ||
                s->sweepgen != h->sweepgen + 3) {
                return failf(c, "mcache %d holds a bad span for class %d",
                             p, i);
            }
        }
        if (mc->tinyoffset > TINY_SIZE) {
            return failf(c, "mcache %d: tinyoffset %" PRIu64 " > 16", p,
                         mc->tinyoffset);
        }
        if (mc->tiny != 0) {
            mspan *s = span_of(h, mc->tiny);
            if (s != mc->tiny_span || s == NULL ||
                s->state != MSPAN_IN_USE || s->spanclass != TINY_SPAN_CLASS ||
                (mc->tiny & (TINY_SIZE - 1)) != 0 || mc->tiny >= s->limit) {
                return failf(c, "mcache %d: tiny block 0x%" PRIx64
                                " is not a slot of a 16-byte noscan span",
                             p, mc->tiny);
            }
            uint64_t i = (mc->tiny - mspan_base(s)) / TINY_SIZE;
            if (!mspan_is_allocated(s, i) || bit_get(s->freed_bits, i)) {
                return failf(c, "mcache %d: tiny block 0x%" PRIx64
                                " is not live", p, mc->tiny);
            }
            tiny_block b = tiny_block_of(s, i);
            if (b.marks == NULL || b.marks != mc->tiny_marks) {
                return failf(c, "mcache %d: tiny block 0x%" PRIx64
                                " has no marks, or not the P's", p, mc->tiny);
            }
            /* the last object of the block ends at tinyoffset or before */
            uint32_t m = tiny_marks_load(b) | TINY_START(0);
            uint32_t last = 31 - (uint32_t)__builtin_clz(m & TINY_OFFSETS);
            if (mc->tinyoffset < last + tiny_size_at(m, last)) {
                return failf(c, "mcache %d: tinyoffset %" PRIu64
                                " is not past every object of its block",
                             p, mc->tinyoffset);
            }
        }
    }
    /* Every cached span is held by exactly one P. */
    uint64_t on_lists = 0;
    for (int i = 0; i < NUM_SPAN_CLASSES; i++) {
        mcentral *mc = &h->central[i];
        for (int w = 0; w < 2; w++) {
            mspan_list *l = w ? &mc->empty : &mc->nonempty;
            for (mspan *s = l->first; s != NULL; s = s->next) {
                if (s->list != l || s->spanclass != i ||
                    s->state != MSPAN_IN_USE) {
                    return failf(c, "mcentral %d lists a bad span 0x%" PRIx64,
                                 i, mspan_base(s));
                }
                on_lists++;
                if (s->sweepgen == h->sweepgen + 3) {
                    ncached--;
                }
            }
        }
    }
    if (ncached != 0) {
        return failf(c, "a span is cached by two Ps, or cached but not on "
                        "its mcentral's empty list");
    }
    EQ(on_lists, c->nsmall_spans, "spans on mcentral lists != small spans");
    return true;
}

/* check_slow_stats recomputes MemStats from the spans, as Go's
 * ReadMemStatsSlow does, and compares. */
static bool
check_slow_stats(check_ctx *c)
{
    mheap *h = c->h;
    ga_mem_stats ms;
    mheap_read_mem_stats_locked(h, &ms);
    uint64_t alloc = c->large_bytes;
    uint64_t objects = c->nlarge;
    for (int k = 1; k < NUM_SIZE_CLASSES; k++) {
        alloc += c->live[k] * class_to_size[k];
        objects += c->live[k];
        EQ(ms.by_size[k].mallocs - ms.by_size[k].frees, c->live[k],
           "by_size mallocs - frees != live objects of the class");
    }
    EQ(ms.heap_alloc, alloc, "heap_alloc != bytes of live objects");
    EQ(mheap_requested_live_locked(h), c->requested,
       "requested bytes counters != requested sizes of live objects");
    EQ(h->span_meta_bytes, c->span_meta,
       "span_meta_bytes != the bitmap blocks of the small spans");
    EQ(h->tiny_meta_bytes, c->tiny_meta,
       "tiny_meta_bytes != the tiny marks of the spans that have them");
    EQ(ms.alloc, ms.heap_alloc, "alloc != heap_alloc");
    EQ(ms.heap_objects, objects, "heap_objects != live objects");
    EQ(ms.mallocs - ms.frees, ms.heap_objects,
       "mallocs - frees != heap_objects");
    EQ(ms.sys, ms.heap_sys + ms.stack_sys + ms.mspan_sys + ms.mcache_sys +
                   ms.buck_hash_sys + ms.gc_sys + ms.other_sys,
       "sys != the sum of the *_sys fields");
    if (ms.total_alloc < ms.alloc || ms.lookups != 0) {
        return failf(c, "total_alloc < alloc, or lookups != 0");
    }
    return true;
}

bool
mheap_check(mheap *h, char *msg, size_t msglen)
{
    check_ctx c = {0};
    c.h = h;
    c.msg = msg;
    c.msglen = msglen;
    c.ok = true;
    if (!check_hints_and_arenas(&c)) {
        return false;
    }
    if (!ga_walk_heap(h, check_one_span, check_ungrown, &c)) {
        if (c.ok) {
            failf(&c, "the mapped arenas are not covered span by span");
        }
        return false;
    }
    return check_cur_arena(&c) && check_treap_spans(&c) && check_stats(&c) &&
           check_caches(&c) && check_slow_stats(&c);
}

bool
ga_verify(ga_heap *h, char *msg, size_t msglen)
{
    if (heap_poisoned(h) != NULL) {
        snprintf(msg, msglen, "heap poisoned: %s", heap_poisoned(h));
        return false;
    }
    mheap_lock(h);
    bool ok = mheap_check(h, msg, msglen);
    mheap_unlock(h);
    return ok;
}
