/* Memory allocator: the overview, and the facade of goalloc.h.
 *
 * This is Go 1.13's allocator (src/runtime/malloc.go and friends), one
 * heap per ga_heap, told in our own words.
 *
 * The pieces, from the top:
 *   mcache    per P: one current span per span class, and the tiny block.
 *   mcentral  per span class (134 = 67 size classes x scan/noscan): the
 *             in-use spans that may have free slots, and the full ones.
 *   mheap     the page heap: every free run of 8 KiB pages is a free
 *             mspan in one treap ordered by address.
 *   arenas    the heap's address space, reserved and mapped in aligned
 *             arenas (64 MiB on linux/amd64), with a heap_arena each that
 *             maps every page to its span.
 *   hints     where the next arena should go: 0x00c000000000 upward on
 *             linux/amd64, a different formula per platform.
 *   fixalloc  off-heap metadata (spans, caches, treap nodes, hints).
 *
 * mallocinit (ga_heap_new) reserves nothing: it checks the platform,
 * initialises the fixallocs and the 134 mcentrals (mheap_init), makes an
 * mcache for m0 (P 0) and lays out the arena hints (arena_init_hints).
 *
 * Allocating size bytes (mallocgc):
 *   0            the heap's zerobase address, shared by all.
 *   tiny         size < 16 and noscan: packed into the P's 16-byte block.
 *   small        size <= 32 KiB: the class's span in the P's mcache hands
 *                out its next free slot (next_free_fast: one ctz on the
 *                64-bit allocCache); when the span is full, mcache_refill
 *                asks the mcentral for a span with free slots, and the
 *                mcentral asks the mheap for a fresh one.
 *   large        > 32 KiB: a span of its own straight from the mheap.
 * Only the fast paths (a small slot from the allocCache, a tiny object
 * packed into the current block) run outside a protected call: they
 * cannot throw, and setjmp would cost as much as the allocation itself.
 * The mheap takes the lowest-addressed free span that is big enough
 * (first fit), carves its low end, and when nothing fits grows.  Address
 * space comes in whole arenas at the hints: a hint whose reservation
 * lands elsewhere is discarded; when all fail, the OS picks an aligned
 * region and two new hints extend it down and up.  Which Go 1.13 point
 * release the heap follows (ga_release, decisions §1) decides how it
 * grows: go1.13.8 (the default) cuts a span of the pages asked for off
 * the current arena (curArena) and maps new arenas only when that is too
 * small; go1.13.0 turns each new arena into one free span.  Fresh memory
 * counts as released (untouched) until allocated.
 *
 * Freeing (explicit in goalloc, decisions §4; Go frees by sweeping): a
 * slot of a span the freeing P caches is marked freed without a lock
 * (the P's free hint skips spanOf for runs of frees into one span); any
 * other small object is freed under its mcentral's lock alone, which
 * pins the span while the mcentral owns it; the span leaves for the
 * mheap when its last object goes and no P caches it.  A large object's
 * span goes back to the mheap at once, under the heap lock, where it
 * coalesces with free neighbours of the same scavenged state.  The
 * scavenger returns free pages to the OS from the top of the address
 * space down.
 *
 * What goalloc leaves out: GC marking and sweeping, write barriers,
 * stacks (manual spans), finalizers and profiling specials, the heap
 * bitmap (accounted in gc_sys, not allocated), the background scavenger;
 * the scavenger goal keeps the value it has before the first GC.
 *
 * Go 1.13: src/runtime/malloc.go (mallocinit, mallocgc, largeAlloc).
 * Differs from Go: see the list above and each file's header.
 * Locking: facade calls take the heap lock where Go does; frees of small
 *          objects take only their mcentral's lock (mcentral.h), frees
 *          into the P's own cached spans none.
 */
#include "goalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "malloc.h"
#include "mbitmap.h"
#include "mheap.h"
#include "scavenge.h"
#include "sizeclasses.h"
#include "tiny.h"

/* Go's zerobase: the one address every 0-byte allocation gets.  Like
 * Go's (a uintptr in malloc.go), it is word-aligned and shared by the
 * whole process; it is never written. */
static const uintptr_t ga_zerobase;

const char *
ga_status_name(ga_status s)
{
    static const char *const names[] = {
        "GA_OK",         "GA_ENOMEM",      "GA_EINVAL",
        "GA_EFOREIGN",   "GA_ENOTOBJECT",  "GA_EDOUBLEFREE",
        "GA_EUNSUPPORTED", "GA_EPOISONED",
    };
    if ((unsigned)s < sizeof(names) / sizeof(names[0])) {
        return names[s];
    }
    return "GA_E?";
}

/* Go's pacing at gcinit (mgc.go) and the scavenger's margin
 * (mgcscavenge.go). */
#define DEFAULT_HEAP_MINIMUM ((uint64_t)4 << 20)
#define GCINIT_TRIGGER_RATIO (7 / 8.0)
#define RETAIN_EXTRA_PERCENT 10

/* gcinit_next_gc is next_gc after gcinit with GOGC=gcpercent: gcinit
 * fakes heap_marked from the default heapminimum (4 MiB, whatever GOGC
 * is), then setGCPercent scales heapminimum by GOGC/100 and runs
 * gcSetTriggerRatio(7/8).  Sweeping is done at gcinit, so heapminimum is
 * the trigger's only floor.  GOGC=off (-1) leaves goal and trigger ^0. */
static uint64_t
gcinit_next_gc(int64_t gcpercent)
{
    uint64_t heap_marked = (uint64_t)((double)DEFAULT_HEAP_MINIMUM /
                                      (1 + GCINIT_TRIGGER_RATIO));
    if (gcpercent < 0) {
        return UINT64_MAX;
    }
    uint64_t heapminimum = DEFAULT_HEAP_MINIMUM * (uint64_t)gcpercent / 100;
    uint64_t goal = heap_marked + heap_marked * (uint64_t)gcpercent / 100;
    /* the trigger ratio keeps a margin below GOGC/100 */
    double ratio = GCINIT_TRIGGER_RATIO;
    double max_ratio = 0.95 * (double)gcpercent / 100;
    if (ratio > max_ratio) {
        ratio = max_ratio;
    }
    uint64_t trigger = (uint64_t)((double)heap_marked * (1 + ratio));
    if (trigger < heapminimum) {
        trigger = heapminimum;
    }
    /* a trigger raised past the goal pushes the goal up too */
    return trigger > goal ? trigger : goal;
}

/* The scavenger goal Go 1.13.0's gcPaceScavenger sets after gcinit:
 * next_gc plus retainExtraPercent, rounded up to the OS page, in uint64
 * arithmetic, which with GOGC=off wraps to about 1.6 EiB: no allocation
 * ever scavenges. */
uint64_t
ga_gogc_scavenge_goal(int gogc)
{
    const uint64_t phys_page = 4096;
    int64_t gcpercent = gogc < 0 ? -1 : gogc; /* setGCPercent */
    uint64_t next_gc = gcinit_next_gc(gcpercent);
    uint64_t goal = next_gc + next_gc / (100 / RETAIN_EXTRA_PERCENT);
    return ga_round_up(goal, phys_page); /* wraps as Go's uint64 does */
}

uint64_t
ga_release_scavenge_goal(ga_release r, int gogc)
{
    /* go1.13.8's gcPaceScavenger returns before it sets a goal while
     * last_next_gc is 0, i.e. until the first GC completes, and mheap_
     * starts zeroed; GOGC only matters from the first GC on. */
    return r == GA_RELEASE_GO1_13_0 ? ga_gogc_scavenge_goal(gogc) : 0;
}

const char *
ga_release_name(ga_release r)
{
    switch (r) {
    case GA_RELEASE_GO1_13_8:
        return "go1.13.8";
    case GA_RELEASE_GO1_13_0:
        return "go1.13.0";
    }
    return NULL;
}

bool
ga_release_parse(const char *s, ga_release *out)
{
    if (strcmp(s, "go1.13.8") == 0) {
        *out = GA_RELEASE_GO1_13_8;
    }
    else if (strcmp(s, "go1.13.0") == 0 || strcmp(s, "go1.13") == 0) {
        *out = GA_RELEASE_GO1_13_0;
    }
    else {
        return false;
    }
    return true;
}

void
ga_options_set_release(ga_options *o, ga_release r)
{
    o->release = r;
    o->scavenge_goal = ga_release_scavenge_goal(r, 100);
}

uint64_t
ga_default_metadata_limit(void)
{
    return mem_host_phys_memory() / 2;
}

void
ga_options_init(ga_options *o)
{
    memset(o, 0, sizeof(*o));
    o->goos = "linux";
    o->goarch = "amd64";
    o->race = false;
    o->backing = GA_BACKING_OS;
    o->procs = 1;
    ga_options_set_release(o, GA_RELEASE_GO1_13_8);
    o->sys_limit = 0;
    o->binary_end = 0x08200000;
    o->seed = 0x2545F4914F6CDD1DULL;
    o->skip_zeroing = false;
    o->metadata_limit = ga_default_metadata_limit();
}

/* ---- mallocinit -------------------------------------------------- */

static bool
fail(ga_status *status, ga_status s, char *err, size_t errlen,
     const char *msg)
{
    *status = s;
    snprintf(err, errlen, "%s", msg);
    return false;
}

/* mallocinit's sanity checks, before anything is built. */
static bool
check_platform(const ga_platform *p, ga_status *status, char *err,
               size_t errlen)
{
    uint64_t bitmap = p->heap_arena_bytes / (p->ptr_size * 8 / 2);
    if (class_to_size[TINY_SIZE_CLASS] != TINY_SIZE) {
        return fail(status, GA_EPOISONED, err, errlen, "bad TinySizeClass");
    }
    if (!ga_is_pow2(bitmap)) {
        return fail(status, GA_EPOISONED, err, errlen,
                    "heapArenaBitmapBytes not a power of 2");
    }
    if (p->phys_page_size < MIN_PHYS_PAGE_SIZE ||
        !ga_is_pow2(p->phys_page_size)) {
        return fail(status, GA_EINVAL, err, errlen,
                    "physical page size must be a power of 2 >= 4096");
    }
    if (p->phys_huge_page_size != 0 && !ga_is_pow2(p->phys_huge_page_size)) {
        return fail(status, GA_EINVAL, err, errlen,
                    "physical huge page size must be a power of 2");
    }
    return true;
}

static bool
check_options(const ga_options *o, ga_status *status, char *err,
              size_t errlen)
{
    if (o->procs < 1 || o->procs > 1024) {
        return fail(status, GA_EINVAL, err, errlen,
                    "procs must be between 1 and 1024");
    }
    if (o->backing != GA_BACKING_OS && o->backing != GA_BACKING_VIRTUAL) {
        return fail(status, GA_EINVAL, err, errlen, "unknown backing");
    }
    if (ga_release_name(o->release) == NULL) {
        return fail(status, GA_EINVAL, err, errlen, "unknown release");
    }
    if (o->backing == GA_BACKING_OS &&
        (strcmp(o->goos, "linux") != 0 || strcmp(o->goarch, "amd64") != 0)) {
        return fail(status, GA_EINVAL, err, errlen,
                    "backing='os' maps real memory and models linux/amd64 "
                    "only; use backing='virtual' for other platforms");
    }
    return true;
}

static uint64_t
host_huge_page_size(void)
{
    uint64_t size = 0;
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size",
                    "r");
    if (f != NULL) {
        unsigned long long v = 0;
        if (fscanf(f, "%llu", &v) == 1) {
            size = v;
        }
        fclose(f);
    }
    return size;
}

static bool
make_caches(mheap *h)
{
    h->caches = calloc((size_t)h->nprocs, sizeof(*h->caches));
    if (h->caches == NULL) {
        return false;
    }
    for (int i = 0; i < h->nprocs; i++) {
        h->caches[i] = allocmcache(h);
        if (h->caches[i] == NULL) {
            return false;
        }
    }
    return true;
}

/* init_protected makes the Ps' mcaches and the arena hints inside a
 * protected call, as a throw there must not abort the process. */
static bool
init_protected(mheap *h, ga_status *status, char *err, size_t errlen)
{
    protect_frame pf;
    protect_push(&pf);
    if (setjmp(pf.jb) != 0) {
        protect_pop(&pf);
        return fail(status, GA_EPOISONED, err, errlen, heap_poisoned(h));
    }
    bool ok = make_caches(h);
    if (!ok) {
        fail(status, GA_ENOMEM, err, errlen, "out of memory making mcaches");
    }
    else if (!arena_init_hints(h, err, errlen)) {
        *status = GA_ENOMEM;
        ok = false;
    }
    protect_pop(&pf);
    return ok;
}

ga_heap *
ga_heap_new(const ga_options *o, ga_status *status, char *err,
            size_t errlen)
{
    *status = GA_OK;
    /* cache-line aligned, for the padding inside (sizeof is a multiple) */
    mheap *h = aligned_alloc(GA_CACHE_LINE, sizeof(*h));
    if (h == NULL) {
        fail(status, GA_ENOMEM, err, errlen, "out of memory");
        return NULL;
    }
    memset(h, 0, sizeof(*h));
    if (!ga_platform_init(&h->plat, o->goos, o->goarch, o->race, err,
                          errlen)) {
        *status = GA_EINVAL;
        free(h);
        return NULL;
    }
    if (o->backing == GA_BACKING_OS) {
        h->plat.phys_huge_page_size = host_huge_page_size();
    }
    if (!check_options(o, status, err, errlen) ||
        !check_platform(&h->plat, status, err, errlen)) {
        free(h);
        return NULL;
    }
    heap_lock_init(&h->lock);
    pthread_mutex_init(&h->gcbits_lock, NULL);
    mem_init(&h->mem, o->backing, h->plat.phys_page_size,
             h->plat.addr_space_end);
    h->nprocs = o->procs;
    h->sys_limit = o->sys_limit;
    h->scavenge_goal = o->scavenge_goal;
    h->release = o->release;
    h->meta_limit = o->metadata_limit;
    h->binary_end = o->binary_end;
    h->seed = o->seed;
    h->zero_memory = o->backing == GA_BACKING_OS && !o->skip_zeroing;
    h->zerobase = o->backing == GA_BACKING_OS
                      ? (ga_addr)(uintptr_t)&ga_zerobase
                      : 0x00000000005a0000; /* a .bss-like address */
    /* The emptymspan sentinel: no slots, so it always looks full. */
    h->emptymspan.state = MSPAN_DEAD;

    mheap_init(h);
    if (!init_protected(h, status, err, errlen)) {
        ga_heap_free(h);
        return NULL;
    }
    /* Go's zerobase lies in the binary, which no heap mapping can cover.
     * The virtual backing's simulated one must stay off the heap too: a
     * 32-bit heap that fills its address space would otherwise place an
     * object there, which ga_free takes for the zerobase. */
    if (h->mem.kind == GA_BACKING_VIRTUAL &&
        !mem_block(&h->mem,
                   ga_round_down(h->zerobase, h->plat.phys_page_size),
                   h->plat.phys_page_size)) {
        fail(status, GA_ENOMEM, err, errlen, "out of memory");
        ga_heap_free(h);
        return NULL;
    }
    return h;
}

static bool
free_span_bits(void *arg, mspan *s)
{
    if (s->state == MSPAN_IN_USE && s->alloc_bits != NULL) {
        mspan_free_bits(arg, s);
    }
    return true;
}

void
ga_heap_free(ga_heap *h)
{
    if (h == NULL) {
        return;
    }
    if (h->arenas != NULL) {
        ga_walk_spans(h, free_span_bits, h);
    }
    mem_destroy(&h->mem);
    arena_release(h);
    free(h->caches);
    fixalloc_release(&h->spanalloc);
    fixalloc_release(&h->cachealloc);
    fixalloc_release(&h->treapalloc);
    fixalloc_release(&h->specialfinalizeralloc);
    fixalloc_release(&h->specialprofilealloc);
    fixalloc_release(&h->arena_hint_alloc);
    for (int i = 0; i < NUM_SPAN_CLASSES; i++) {
        mcentral_destroy(&h->central[i]);
    }
    heap_lock_destroy(&h->lock);
    pthread_mutex_destroy(&h->gcbits_lock);
    free(h);
}

void
ga_heap_free_keep_mappings(ga_heap *h, mem_range **ranges, size_t *n)
{
    *ranges = h->mem.reserved.r;
    *n = h->mem.reserved.n;
    memset(&h->mem.reserved, 0, sizeof(h->mem.reserved));
    ga_heap_free(h);
}

/* ---- Allocation -------------------------------------------------- */

/* large_alloc: a span of its own for a > 32 KiB object (largeAlloc),
 * allocated for the calling P's mcache c. */
static ga_status
large_alloc(mheap *h, mcache *c, uint64_t size, bool noscan, ga_addr *out)
{
    uint64_t npages = size >> PAGE_SHIFT;
    if ((size & PAGE_MASK) != 0) {
        npages++;
    }
    mheap_lock(h);
    bool room = mheap_has_room(h, npages);
    mheap_unlock(h);
    if (!room) {
        return GA_ENOMEM;
    }
    mspan *s = mheap_alloc(h, c, npages, make_span_class(0, noscan), size,
                           true);
    if (s == NULL) {
        return GA_ENOMEM;
    }
    /* initSpan takes the one-slot span's mark and alloc bits from the
     * gcBits arenas (goalloc only accounts them: nelems is 1) */
    mspan_charge_gc_bits(h, 1);
    *out = mspan_base(s);
    return GA_OK;
}

/* small_slot_rare finishes what small_slot_done leaves to it: a slot of
 * a span with tiny marks forgets the tiny block it may have been, and
 * dirty memory is zeroed (needzero).  Out of line, so that the fast path
 * saves no registers. */
static GA_NOINLINE ga_addr
small_slot_rare(mheap *h, mspan *s, uint64_t i, uint64_t size)
{
    ga_addr v = mspan_slot_addr(s, i);
    mspan_req_store(s, i, size);
    if (s->tiny_marks != NULL) {
        tiny_slot_clear(s, i);
    }
    if (s->needzero && h->zero_memory) {
        memset((void *)(uintptr_t)v, 0, (size_t)s->elemsize);
    }
    return v;
}

/* small_slot_done finishes the allocation of slot i of s: the requested
 * size is recorded (internal waste), and small_slot_rare does the rest
 * when there is more to do. */
static inline ga_addr
small_slot_done(mheap *h, mcache *c, mspan *s, uint64_t i, uint64_t size)
{
    c->local_requested += size;
    if (GA_LIKELY(!s->needzero && s->tiny_marks == NULL)) {
        mspan_req_store(s, i, size);
        return mspan_slot_addr(s, i);
    }
    return small_slot_rare(h, s, i, size);
}

GA_NOINLINE ga_status
free_dropped_protected(mheap *h, const tiny_dropped *d)
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
    tiny_free_dropped(h, d);
    protect_pop(&pf);
    return GA_OK;
}

GA_NOINLINE ga_status
malloc_slow(mheap *h, mcache *c, uint64_t size, bool noscan, ga_addr *out)
{
    if (size > h->plat.max_alloc) {
        return GA_EINVAL;
    }
    if (heap_poisoned(h) != NULL) {
        return GA_EPOISONED;
    }
    protect_frame pf; /* a throw lands here (throw.h) */
    protect_push(&pf);
    if (setjmp(pf.jb) != 0) {
        protect_pop(&pf);
        return GA_EPOISONED;
    }
    ga_status st = GA_OK;
    ga_addr v = 0;
    if (size == 0) {
        v = h->zerobase;
    }
    else if (noscan && size < TINY_SIZE) {
        v = tiny_alloc(h, c, size);
        st = v != 0 ? GA_OK : GA_ENOMEM;
    }
    else if (size <= MAX_SMALL_SIZE) {
        span_class spc = make_span_class(size_to_class((size_t)size), noscan);
        mspan *s;
        if (mcache_next_free(h, c, spc, &s) != 0) {
            v = small_slot_done(h, c, s, mspan_last_slot(s), size);
        }
        st = v != 0 ? GA_OK : GA_ENOMEM;
    }
    else {
        st = large_alloc(h, c, size, noscan, &v);
    }
    protect_pop(&pf);
    *out = v;
    return st;
}

ga_status
ga_malloc(ga_heap *h, int p, uint64_t size, bool noscan, ga_addr *out)
{
    if (GA_UNLIKELY(heap_poisoned(h) != NULL)) {
        return GA_EPOISONED;
    }
    if (GA_UNLIKELY(p < 0 || p >= h->nprocs)) {
        return GA_EINVAL;
    }
    mcache *c = h->caches[p];
    /* The fast paths: no lock, no protected call.  (A small size is
     * below every platform's maxAlloc.) */
    if (GA_LIKELY(size - 1 < MAX_SMALL_SIZE)) {
        if (GA_LIKELY(size >= TINY_SIZE || !noscan)) {
            /* one ctz on the class's allocCache */
            mspan *s = c->alloc[make_span_class(size_to_class((size_t)size),
                                                noscan)];
            uint64_t i = next_free_fast(s);
            if (GA_LIKELY(i != NO_SLOT)) {
                *out = small_slot_done(h, c, s, i, size);
                return GA_OK;
            }
        }
        else {
            /* packed into the P's current tiny block, if it has room */
            ga_addr v = tiny_alloc_fast(c, size);
            if (GA_LIKELY(v != 0)) {
                *out = v;
                return GA_OK;
            }
            return tiny_new_block(h, c, size, out);
        }
    }
    return malloc_slow(h, c, size, noscan, out);
}

void *
ga_alloc(ga_heap *h, int p, size_t size, bool noscan)
{
    ga_addr a = 0;
    if (h->mem.kind != GA_BACKING_OS ||
        ga_malloc(h, p, size, noscan, &a) != GA_OK) {
        return NULL;
    }
    return (void *)(uintptr_t)a;
}

/* ---- Freeing ----------------------------------------------------- */

/* classify_locked finds what addr is: a live large object (*large), a
 * small slot (*small, *slot), or an error.  Inside a free span, a
 * page-aligned address whose large object was freed (and whose page was
 * not handed out since) is a double free. */
static ga_status
classify_locked(mheap *h, ga_addr addr, mspan **large, mspan **small)
{
    *large = NULL;
    *small = NULL;
    mspan *s = span_of(h, addr);
    if (s == NULL) {
        /* In a mapped arena but in no span: go1.13.8's curArena. */
        return heap_arena_of(h, addr) != NULL ? GA_ENOTOBJECT : GA_EFOREIGN;
    }
    bool covers = mspan_base(s) <= addr && addr < mspan_end(s);
    if (!covers || s->state != MSPAN_IN_USE) {
        if (!covers || s->state == MSPAN_FREE) {
            bool freed = (addr & PAGE_MASK) == 0 && arena_page_freed(h, addr);
            return freed ? GA_EDOUBLEFREE : GA_ENOTOBJECT;
        }
        return GA_ENOTOBJECT; /* manual span */
    }
    if (span_class_sizeclass(s->spanclass) == 0) {
        if (addr != mspan_base(s)) {
            return GA_ENOTOBJECT;
        }
        *large = s;
        return GA_OK;
    }
    if (addr >= s->limit) {
        return GA_ENOTOBJECT; /* the span's tail waste */
    }
    *small = s;
    return GA_OK;
}

/* large_free_locked frees a live large object's span; the caller holds
 * the heap lock since classifying it, so two frees cannot both pass. */
static void
large_free_locked(mheap *h, mspan *s)
{
    h->nlargefree++;
    h->largefree += s->elemsize;
    h->large_requested_freed += s->limit - mspan_base(s);
    heap_live_add(h, -(int64_t)s->elemsize);
    h->stats.heap_objects--;
    s->alloc_count = 0;
    s->needzero = 1;
    ga_addr base = mspan_base(s);
    mheap_free_span_locked(h, s, true, true);
    arena_set_page_freed(h, base);
}

/* dead_slot_status: freeing slot i at offset off, which is not live.
 * Inside a block that was a tiny block, an offset where a tiny object
 * started is a double free. */
static ga_status
dead_slot_status(const mspan *s, uint64_t i, uint64_t off)
{
    if (off != 0) {
        tiny_block b = tiny_block_of(s, i);
        bool started = b.marks != NULL && tiny_started(b, off);
        return started ? GA_EDOUBLEFREE : GA_ENOTOBJECT;
    }
    bool was_used = bit_get_atomic(s->freed_bits, i) || bit_get(s->used_bits, i);
    return was_used ? GA_EDOUBLEFREE : GA_ENOTOBJECT;
}

/* small_free_central_locked frees addr in small span s under its
 * mcentral's lock, where the slot's state cannot change but for the
 * caching P's own frees (atomic). */
static ga_status
small_free_central_locked(mheap *h, mcentral *c, mspan *s, ga_addr addr,
                          bool *to_heap)
{
    uint64_t i = mspan_obj_index(s, addr);
    uint64_t off = addr - mspan_slot_addr(s, i);
    bool live = mspan_is_allocated(s, i) && !bit_get_atomic(s->freed_bits, i);
    if (!live) {
        return dead_slot_status(s, i, off);
    }
    tiny_block b = tiny_block_of(s, i);
    if (b.marks != NULL) {
        return tiny_free_locked(h, s, i, off, b, to_heap);
    }
    if (off != 0) {
        return GA_ENOTOBJECT;
    }
    return mcentral_free_slot_locked(h, c, s, i, mspan_req_load(s, i), to_heap)
               ? GA_OK
               : GA_EDOUBLEFREE;
}

/* small_free: the caller holds the heap lock, so s stays an in-use small
 * span; the mcentral lock is taken inside it (lock order heap ->
 * central).  small_free_pinned has handled spans their mcentral owns;
 * here s may also be one that is being made (no bitmaps yet, nothing
 * handed out) or that is on its way home (every slot dead). */
static ga_status
small_free(mheap *h, mspan *s, ga_addr addr)
{
    mcentral *c = &h->central[s->spanclass];
    bool to_heap = false;
    pthread_mutex_lock(&c->lock);
    ga_status st = !mcentral_owns(c, s) && s->alloc_bits == NULL
                       ? GA_ENOTOBJECT
                       : small_free_central_locked(h, c, s, addr, &to_heap);
    pthread_mutex_unlock(&c->lock);
    if (to_heap) {
        mcentral_release_to_heap(h, s, true);
    }
    return st;
}

/* small_free_pinned frees addr when it lies in a small span that its
 * mcentral owns: the span is pinned by that mcentral's lock alone (see
 * mcentral.h), so frees of small objects on different threads contend
 * only per size class.  Returns false, having changed nothing, when addr
 * is not in such a span (large objects, free spans, foreign addresses,
 * a span's tail): classify_locked decides those under the heap lock. */
static bool
small_free_pinned(mheap *h, ga_addr addr, ga_status *st)
{
    mspan *s = span_of(h, addr);
    if (s == NULL) {
        return false;
    }
    span_class spc = mspan_spanclass_load(s);
    if (spc >= NUM_SPAN_CLASSES || span_class_sizeclass(spc) == 0) {
        return false;
    }
    mcentral *c = &h->central[spc];
    bool to_heap = false;
    pthread_mutex_lock(&c->lock);
    bool pinned = mcentral_owns(c, s) && mspan_base(s) <= addr &&
                  addr < s->limit;
    if (pinned) {
        *st = small_free_central_locked(h, c, s, addr, &to_heap);
    }
    pthread_mutex_unlock(&c->lock);
    if (to_heap) {
        mcentral_release_to_heap(h, s, false);
    }
    return pinned;
}

/* free_slow frees what the fast path could not, inside a protected call
 * (returning a span to the mheap may throw): a small object under its
 * mcentral's lock, anything else classified under the heap lock. */
static GA_NOINLINE ga_status
free_slow(mheap *h, ga_addr addr)
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
    ga_status st = GA_OK;
    if (!small_free_pinned(h, addr, &st)) {
        mspan *large, *small;
        mheap_lock(h);
        st = classify_locked(h, addr, &large, &small);
        if (large != NULL) {
            large_free_locked(h, large);
        }
        else if (small != NULL) {
            st = small_free(h, small, addr);
        }
        mheap_unlock(h);
    }
    protect_pop(&pf);
    return st;
}

/* owner_cache: the mcache through which the caller may free a slot of s
 * without a lock, or NULL.  As P p, that is p's mcache when it caches s;
 * as every P at once (GA_ALL_PS: nothing else runs), any P that caches
 * s, whose counters then go to P 0. */
static inline mcache *
owner_cache(mheap *h, int p, const mspan *s)
{
    if (p >= 0) {
        mcache *c = h->caches[p];
        return c->alloc[mspan_spanclass_load(s)] == s ? c : NULL;
    }
    bool cached = s->state == MSPAN_IN_USE && s->sweepgen == h->sweepgen + 3;
    return cached ? h->caches[0] : NULL;
}

/* cached_span_of: the small span holding addr between its base and limit
 * (not one with tiny blocks: those are freed under the tiny class's
 * mcentral lock, tiny.h), if the caller may free into it without a
 * lock (owner_cache), with that mcache in *cp; else NULL.  A P's run of
 * frees into one span is answered by its free hint, without spanOf.
 * spanOf needs no lock: arena entries are published atomically. */
static inline mspan *
cached_span_of(mheap *h, int p, ga_addr addr, mcache **cp)
{
    if (p >= 0) {
        mcache *c = h->caches[p];
        if (addr - c->free_hint.base <
            c->free_hint.limit - c->free_hint.base) {
            *cp = c;
            return c->free_hint.span;
        }
    }
    mspan *s = span_of(h, addr);
    mcache *c = s != NULL && p != GA_NO_P ? owner_cache(h, p, s) : NULL;
    if (c == NULL || s->tiny_marks != NULL || addr < mspan_base(s) ||
        addr >= s->limit) {
        return NULL;
    }
    if (p >= 0) {
        c->free_hint.span = s;
        c->free_hint.base = mspan_base(s);
        c->free_hint.limit = s->limit;
    }
    *cp = c;
    return s;
}

ga_status
ga_free_p(ga_heap *h, int p, ga_addr addr)
{
    if (GA_UNLIKELY(heap_poisoned(h) != NULL)) {
        return GA_EPOISONED;
    }
    if (GA_UNLIKELY(p < GA_ALL_PS || p >= h->nprocs)) {
        return GA_EINVAL;
    }
    if (addr == h->zerobase) {
        return GA_OK;
    }
    /* The fast path: a live object at a slot start of a small span that
     * the caller's P caches (and that has no tiny blocks). */
    mcache *c;
    mspan *s = cached_span_of(h, p, addr, &c);
    if (GA_LIKELY(s != NULL)) {
        uint64_t i = mspan_obj_index(s, addr);
        if (mspan_slot_addr(s, i) == addr && mspan_is_allocated(s, i)) {
            /* The slot waits in freed_bits for the span's next sweep; a
             * free on another thread may set a bit of the same word, and
             * a bit already set is a double free. */
            if (bit_test_and_set(s->freed_bits, i)) {
                return GA_EDOUBLEFREE;
            }
            s->alloc_count--;
            c->local_nsmallfree[s->spanclass]++;
            /* this P wrote it: a plain load, after the locked instruction */
            c->local_requested_freed[s->spanclass] +=
                s->req_sizes[i & s->req_mask];
            return GA_OK;
        }
    }
    return free_slow(h, addr);
}

ga_status
ga_free(ga_heap *h, ga_addr addr)
{
    return ga_free_p(h, GA_NO_P, addr);
}

ga_status
ga_flush(ga_heap *h)
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
    for (int p = 0; p < h->nprocs; p++) {
        mcache_release_all(h, h->caches[p]);
    }
    protect_pop(&pf);
    return GA_OK;
}

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
    mheap_unlock(h);
    protect_pop(&pf);
    return room ? GA_OK : GA_ENOMEM;
}

/* ---- Statistics -------------------------------------------------- */

void
mheap_read_mem_stats_locked(mheap *h, ga_mem_stats *out)
{
    memset(out, 0, sizeof(*out));
    /* Go flushes every mcache (releaseAll and the local counters) to make
     * the counts exact; goalloc adds the local counters up and subtracts,
     * for every cached span, the slots cacheSpan counted but nobody was
     * handed yet: the same numbers, and the caches stay as they were. */
    uint64_t unused[NUM_SIZE_CLASSES] = {0};
    for (int p = 0; p < h->nprocs; p++) {
        mcache *c = h->caches[p];
        for (int i = 0; i < NUM_SPAN_CLASSES; i++) {
            if (c->alloc[i] != &h->emptymspan) {
                unused[span_class_sizeclass((span_class)i)] +=
                    mcentral_unused_slots(c->alloc[i]);
            }
        }
    }
    uint64_t tinyallocs = h->stats.tinyallocs;
    for (int p = 0; p < h->nprocs; p++) {
        tinyallocs += h->caches[p]->local_tinyallocs;
    }
    const mstats *st = &h->stats;
    uint64_t nmalloc = h->nlargealloc + tinyallocs;
    uint64_t nfree = h->nlargefree + tinyallocs;
    uint64_t total = h->largealloc;
    uint64_t freed = h->largefree;
    for (int c = 0; c < NUM_SIZE_CLASSES; c++) {
        uint64_t cm = 0;
        uint64_t cf = 0;
        if (c > 0) {
            cm = h->central[make_span_class(c, false)].nmalloc +
                 h->central[make_span_class(c, true)].nmalloc - unused[c];
            for (int noscan = 0; noscan < 2; noscan++) {
                uint64_t objects, bytes;
                mcentral_freed(h, make_span_class(c, noscan), &objects, &bytes);
                cf += objects;
            }
        }
        out->by_size[c].size = class_to_size[c];
        out->by_size[c].mallocs = cm;
        out->by_size[c].frees = cf;
        nmalloc += cm;
        nfree += cf;
        total += cm * class_to_size[c];
        freed += cf * class_to_size[c];
    }
    out->total_alloc = total;
    out->alloc = out->heap_alloc = total - freed;
    out->mallocs = nmalloc;
    out->frees = nfree;
    out->heap_objects = nmalloc - nfree;
    out->heap_sys = st->heap_sys;
    out->heap_idle = st->heap_idle;
    out->heap_inuse = st->heap_inuse;
    out->heap_released = st->heap_released;
    out->stack_inuse = st->stacks_inuse;
    out->stack_sys = st->stacks_sys + st->stacks_inuse;
    out->mspan_inuse = h->spanalloc.inuse;
    out->mspan_sys = st->mspan_sys;
    out->mcache_inuse = h->cachealloc.inuse;
    out->mcache_sys = st->mcache_sys;
    out->buck_hash_sys = st->buckhash_sys;
    out->gc_sys = heap_gc_sys(h);
    out->other_sys = st->other_sys;
    out->sys = st->heap_sys + st->stacks_sys + st->mspan_sys +
               st->mcache_sys + st->buckhash_sys + out->gc_sys +
               st->other_sys + st->stacks_inuse;
}

ga_status
ga_read_mem_stats(ga_heap *h, ga_mem_stats *out)
{
    if (heap_poisoned(h) != NULL) {
        return GA_EPOISONED;
    }
    mheap_lock(h);
    mheap_read_mem_stats_locked(h, out);
    mheap_unlock(h);
    return GA_OK;
}

/* ---- Fault injection and test hooks ------------------------------ */

ga_status
ga_block_range(ga_heap *h, ga_addr addr, uint64_t len)
{
    if (heap_poisoned(h) != NULL) {
        return GA_EPOISONED;
    }
    if (len == 0) {
        return GA_EINVAL;
    }
    mheap_lock(h);
    bool ok = mem_block(&h->mem, addr, len);
    mheap_unlock(h);
    return ok ? GA_OK : GA_EINVAL;
}

ga_status
ga_fail_reserves(ga_heap *h, int n)
{
    if (heap_poisoned(h) != NULL) {
        return GA_EPOISONED;
    }
    if (h->mem.kind != GA_BACKING_VIRTUAL || n < 0) {
        return h->mem.kind != GA_BACKING_VIRTUAL ? GA_EUNSUPPORTED
                                                  : GA_EINVAL;
    }
    mheap_lock(h);
    h->mem.fail_reserves = n;
    mheap_unlock(h);
    return GA_OK;
}

ga_status
ga_test_throw(ga_heap *h, const char *msg)
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
    snprintf(h->throw_buf, sizeof(h->throw_buf), "%s", msg);
    mheap_lock(h);
    throw(h, h->throw_buf);
}

const char *
ga_poisoned(ga_heap *h)
{
    return heap_poisoned(h);
}

const char *
ga_oom_reason(ga_heap *h)
{
    return __atomic_load_n(&h->oom_reason, __ATOMIC_RELAXED);
}

ga_status
ga_fail_metadata(ga_heap *h, uint64_t n)
{
    if (heap_poisoned(h) != NULL) {
        return GA_EPOISONED;
    }
    __atomic_store_n(&h->meta.fail_at, n, __ATOMIC_RELAXED);
    return GA_OK;
}

/* ---- Experiments ------------------------------------------------- */

uint64_t
mheap_requested_live_locked(mheap *h)
{
    uint64_t asked = h->large_requested;
    uint64_t freed = h->large_requested_freed;
    for (int p = 0; p < h->nprocs; p++) {
        asked += h->caches[p]->local_requested;
    }
    for (int i = 0; i < NUM_SPAN_CLASSES; i++) {
        uint64_t objects, bytes;
        mcentral_freed(h, (span_class)i, &objects, &bytes);
        freed += bytes;
    }
    return asked - freed;
}

ga_status
ga_heap_counters_get(ga_heap *h, ga_heap_counters *out)
{
    if (heap_poisoned(h) != NULL) {
        return GA_EPOISONED;
    }
    ga_mem_stats ms;
    mheap_lock(h);
    mheap_read_mem_stats_locked(h, &ms);
    out->heap_alloc = ms.heap_alloc;
    out->heap_inuse = ms.heap_inuse;
    out->heap_idle = ms.heap_idle;
    out->heap_released = ms.heap_released;
    out->heap_sys = ms.heap_sys;
    out->live_objects = ms.heap_objects;
    out->requested_live = mheap_requested_live_locked(h);
    out->largest_free = h->free.treap ? h->free.treap->max_pages * PAGE_SIZE
                                      : 0;
    /* go1.13.8's curArena takes a request as large as what is left of it
     * without new address space, as a free span of that size would. */
    uint64_t rest = h->cur_arena.end - h->cur_arena.base;
    if (rest > out->largest_free) {
        out->largest_free = rest;
    }
    mheap_unlock(h);
    return GA_OK;
}
