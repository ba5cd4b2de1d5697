/* Invariant walkers behind ga_verify.  See malloc.c for the overview.
 *
 * mheap_check walks the whole heap: the page heap (check_pages.c), then
 * the object layer, which holds only while no other call on the heap
 * runs: small spans (bitmaps, the mcentral list each must be on, cached
 * or not, requested sizes, tiny blocks), large spans, every mcache, and
 * the statistics recomputed from the objects as Go's ReadMemStatsSlow
 * does.  The first broken invariant is reported by name.
 * Go 1.13: the checks of export_test.go (ReadMemStatsSlow) and
 *          mcache/mcentral throws ("bad sweepgen in refill", ...).
 * Differs from Go: Go checks these in tests only; goalloc offers them as
 *          h.verify().
 * Locking: the caller holds the heap lock and runs alone on the heap.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "goalloc.h"
#include "mbitmap.h"
#include "internal.h"
#include "mheap.h"
#include "sizeclasses.h"
#include "tiny.h"

typedef struct check_ctx {
    mheap *h;
    char *msg;
    size_t msglen;
    bool ok;
    /* sums over the span walk */
    uint64_t nlarge;
    uint64_t large_bytes;
    uint64_t nsmall_spans;
    uint64_t live[NUM_SIZE_CLASSES]; /* live small objects per class */
    uint64_t requested;              /* requested bytes of live objects */
    uint64_t span_meta;              /* goalloc's bitmap blocks */
    uint64_t tiny_meta;              /* tiny block marks */
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

/* eq: a == b, or a failure naming what. */
static bool
eq(check_ctx *c, uint64_t a, uint64_t b, const char *what)
{
    return a == b || failf(c, "%s (%" PRIu64 " != %" PRIu64 ")", what, a, b);
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
    uint64_t next = 0; /* first byte after the previous object */
    uint32_t ends = 0; /* the end marks these objects make */
    for (uint64_t off = 0; off < TINY_SIZE; off++) {
        if ((starts & TINY_START(off)) == 0) {
            continue;
        }
        uint64_t size = tiny_size_at(m, off);
        if (off < next) {
            return failf(c,
                         "tiny block 0x%" PRIx64
                         ": the object at offset %" PRIu64
                         " overlaps another or has no end",
                         block, off);
        }
        next = off + size;
        ends |= TINY_END(off + size - 1);
    }
    if (ends != (m & TINY_ENDS)) {
        return failf(c,
                     "tiny block 0x%" PRIx64 " has end marks 0x%x for "
                     "objects ending at 0x%x",
                     block, m & TINY_ENDS, ends);
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
        return failf(c,
                     "tiny block 0x%" PRIx64
                     " has freed marks where no object started",
                     block);
    }
    if ((m & TINY_FULL_DROPPED) != 0 && !full) {
        return failf(c,
                     "tiny block 0x%" PRIx64 " is marked full and "
                     "dropped but has room",
                     block);
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
            return failf(c,
                         "dead tiny block slot %" PRIu64 " of span 0x%" PRIx64
                         " has live marks",
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
        return failf(c,
                     "tiny block 0x%" PRIx64
                     " has no live object but was not freed",
                     block);
    }
    for (uint64_t off = 0; off < TINY_SIZE; off++) {
        if (objs & TINY_START(off)) {
            c->requested += tiny_size_at(m, off);
        }
    }
    return true;
}

/* unswept_ok: in GC mode a span not swept since the last cycle is at
 * sg - 2 until one of the sweepers gets to it (sg - 1 and sg + 1 last
 * only within a call). */
static bool
unswept_ok(const mheap *h, const mspan *s)
{
    return h->gc.enabled && !h->gc.sweepdone && s->sweepgen == h->sweepgen - 2;
}

/* gc_tiny_requested: the requested bytes of every object a tiny block
 * of an allocated slot holds, dropped or not (GC mode: they count until
 * the block is swept). */
static uint64_t
gc_tiny_requested(tiny_block b)
{
    uint32_t m = tiny_marks_load(b);
    uint64_t bytes = 0;
    for (uint32_t st = m & TINY_OFFSETS; st != 0; st &= st - 1) {
        bytes += tiny_size_at(m, (uint64_t)__builtin_ctz(st));
    }
    return bytes;
}

/* check_gc_small_span: GC mode's own invariants of small span s: mark
 * bits are clear from its sweep to the next cycle, and mark only
 * allocated slots before it (design §14.6); only allocated slots are
 * dropped. */
static bool
check_gc_small_span(check_ctx *c, const mspan *s)
{
    bool unswept = unswept_ok(c->h, s);
    if (s->mark_bits == NULL) {
        return failf(c, "span 0x%" PRIx64 " has no mark bits in GC mode",
                     mspan_base(s));
    }
    for (uint64_t w = 0; w * 64 < s->nelems; w++) {
        uint64_t alloc = mspan_allocated_word(s, w);
        uint64_t marks = load64_le(s->mark_bits + w * 8);
        if (unswept ? (marks & ~alloc) != 0 : marks != 0) {
            return failf(c, "span 0x%" PRIx64 " has %s", mspan_base(s),
                         unswept ? "marks on slots not allocated"
                                 : "mark bits set after its sweep");
        }
        if ((load64_le(s->freed_bits + w * 8) & ~alloc) != 0) {
            return failf(c,
                         "span 0x%" PRIx64 " has a dropped slot that is "
                         "not allocated",
                         mspan_base(s));
        }
    }
    return true;
}

/* check_small_span: bitmaps, and the list the span must be on: cached
 * spans (SWEEPGEN_CACHED) on their mcentral's empty list; uncached full
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
    bool cached = mspan_is_cached(s, h->sweepgen);
    if (h->gc.enabled && !check_gc_small_span(c, s)) {
        return false;
    }
    if (!cached && s->sweepgen != h->sweepgen && !unswept_ok(h, s)) {
        return failf(c, "span 0x%" PRIx64 " has sweepgen %u", mspan_base(s),
                     s->sweepgen);
    }
    if (!cached && s->remote_frees != 0) {
        return failf(c,
                     "uncached span 0x%" PRIx64 " has %u unswept remote frees",
                     mspan_base(s), s->remote_frees);
    }
    mspan_list *want = cached || s->alloc_count == s->nelems ? &mc->empty
                                                             : &mc->nonempty;
    if (s->list != want) {
        return failf(c,
                     "span 0x%" PRIx64 " (allocCount %" PRIu64 " of %" PRIu64
                     ", %s) is not on its mcentral's %s list",
                     mspan_base(s), mspan_alloc_count(s), s->nelems,
                     cached ? "cached" : "uncached",
                     want == &mc->empty ? "empty" : "nonempty");
    }
    if (!cached && s->alloc_count == 0) {
        return failf(c,
                     "uncached span 0x%" PRIx64
                     " has no live object but was not freed",
                     mspan_base(s));
    }
    if (s->tiny_marks != NULL && s->spanclass != TINY_SPAN_CLASS) {
        return failf(c, "span 0x%" PRIx64 " of class %d has tiny marks",
                     mspan_base(s), s->spanclass);
    }
    c->span_meta += mspan_block_bytes(c->h, s->spanclass, s->nelems);
    if (s->tiny_marks != NULL) {
        c->tiny_meta += tiny_table_bytes(s);
    }
    for (uint64_t i = 0; i < s->nelems; i++) {
        /* in GC mode a dropped object is allocated until swept */
        bool live = mspan_is_allocated(s, i) &&
                    (h->gc.enabled || !bit_get(s->freed_bits, i));
        tiny_block b = tiny_block_of(s, i);
        if (b.marks != NULL && h->gc.enabled) {
            c->requested += live ? gc_tiny_requested(b) : 0;
            continue;
        }
        if (b.marks != NULL) {
            if (!check_tiny_block(c, s, i, b, live)) {
                return false;
            }
            continue;
        }
        uint64_t req = mspan_req_load(s, i);
        if (live && (req == 0 || req > s->elemsize)) {
            return failf(c,
                         "span 0x%" PRIx64 " slot %" PRIu64
                         ": requested size %" PRIu64 " of a %" PRIu64
                         "-byte slot%s",
                         mspan_base(s), i, req, s->elemsize,
                         req == 0 ? " with no tiny marks" : "");
        }
        if (live) {
            c->requested += req;
        }
    }
    c->nsmall_spans++;
    c->live[span_class_sizeclass(s->spanclass)] += mspan_alloc_count(s);
    return true;
}

/* check_large_span: one object of at most npages pages, not on a list,
 * swept. */
static bool
check_large_span(check_ctx *c, mspan *s)
{
    mheap *h = c->h;
    if (s->list != NULL || (s->sweepgen != h->sweepgen && !unswept_ok(h, s))) {
        return failf(c, "in-use span 0x%" PRIx64 " has bad list/sweepgen",
                     mspan_base(s));
    }
    if (!h->gc.enabled && (s->dropped || s->marked)) {
        return failf(c,
                     "large span 0x%" PRIx64 " is dropped or marked "
                     "without a collector",
                     mspan_base(s));
    }
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
    return true;
}

static bool
check_one_span(void *arg, mspan *s)
{
    check_ctx *c = arg;
    if (s->state != MSPAN_IN_USE) {
        return true;
    }
    return span_class_sizeclass(s->spanclass) != 0 ? check_small_span(c, s)
                                                   : check_large_span(c, s);
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
                !mspan_is_cached(s, h->sweepgen)) {
                return failf(c, "mcache %d holds a bad span for class %d", p,
                             i);
            }
        }
        if (mc->tinyoffset > TINY_SIZE) {
            return failf(c, "mcache %d: tinyoffset %" PRIu64 " > 16", p,
                         mc->tinyoffset);
        }
        if (mc->tiny != 0) {
            mspan *s = span_of(h, mc->tiny);
            if (s != mc->tiny_span || s == NULL || s->state != MSPAN_IN_USE ||
                s->spanclass != TINY_SPAN_CLASS ||
                (mc->tiny & (TINY_SIZE - 1)) != 0 || mc->tiny >= s->limit) {
                return failf(c,
                             "mcache %d: tiny block 0x%" PRIx64
                             " is not a slot of a 16-byte noscan span",
                             p, mc->tiny);
            }
            uint64_t i = (mc->tiny - mspan_base(s)) / TINY_SIZE;
            if (!mspan_is_allocated(s, i) ||
                (!h->gc.enabled && bit_get(s->freed_bits, i))) {
                return failf(c,
                             "mcache %d: tiny block 0x%" PRIx64 " is not live",
                             p, mc->tiny);
            }
            tiny_block b = tiny_block_of(s, i);
            if (b.marks == NULL || b.marks != mc->tiny_marks) {
                return failf(c,
                             "mcache %d: tiny block 0x%" PRIx64
                             " has no marks, or not the P's",
                             p, mc->tiny);
            }
            /* the last object of the block ends at tinyoffset or before */
            uint32_t m = tiny_marks_load(b) | TINY_START(0);
            uint32_t last = 31 - (uint32_t)__builtin_clz(m & TINY_OFFSETS);
            if (mc->tinyoffset < last + tiny_size_at(m, last)) {
                return failf(c,
                             "mcache %d: tinyoffset %" PRIu64
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
                if (mspan_is_cached(s, h->sweepgen)) {
                    ncached--;
                }
            }
        }
    }
    if (ncached != 0) {
        return failf(c, "a span is cached by two Ps, or cached but not on "
                        "its mcentral's empty list");
    }
    return eq(c, on_lists, c->nsmall_spans,
              "spans on mcentral lists != small spans");
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
        if (!eq(c, ms.by_size[k].mallocs - ms.by_size[k].frees, c->live[k],
                "by_size mallocs - frees != live objects of the class")) {
            return false;
        }
    }
    bool ok =
        eq(c, ms.heap_alloc, alloc, "heap_alloc != bytes of live objects") &&
        eq(c, mheap_requested_live_locked(h), c->requested,
           "requested bytes counters != requested sizes of live objects") &&
        eq(c, h->span_meta_bytes, c->span_meta,
           "span_meta_bytes != the bitmap blocks of the small spans") &&
        eq(c, h->tiny_meta_bytes, c->tiny_meta,
           "tiny_meta_bytes != the tiny marks of the spans that have them") &&
        eq(c, ms.alloc, ms.heap_alloc, "alloc != heap_alloc") &&
        eq(c, ms.heap_objects, objects, "heap_objects != live objects") &&
        eq(c, ms.mallocs - ms.frees, ms.heap_objects,
           "mallocs - frees != heap_objects") &&
        eq(c, ms.sys,
           ms.heap_sys + ms.stack_sys + ms.mspan_sys + ms.mcache_sys +
               ms.buck_hash_sys + ms.gc_sys + ms.other_sys,
           "sys != the sum of the *_sys fields");
    if (ok && (ms.total_alloc < ms.alloc || ms.lookups != 0)) {
        return failf(c, "total_alloc < alloc, or lookups != 0");
    }
    return ok;
}

bool
mheap_check(mheap *h, char *msg, size_t msglen)
{
    if (!mheap_check_pages(h, msg, msglen)) {
        return false;
    }
    check_ctx c = {0};
    c.h = h;
    c.msg = msg;
    c.msglen = msglen;
    c.ok = true;
    if (!mheap_walk_spans(h, check_one_span, &c)) {
        if (c.ok) {
            failf(&c, "the mapped arenas are not covered span by span");
        }
        return false;
    }
    return eq(&c, h->nlargealloc - h->nlargefree, c.nlarge,
              "nlargealloc - nlargefree != large spans") &&
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
