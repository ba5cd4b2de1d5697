/* Heap creation: mallocinit and the heap's options.  See malloc.c for
 * the overview.
 *
 * ga_heap_new is mallocinit for one heap: it checks the options and the
 * platform, initialises the fixallocs (mheap_init) and the mcentrals,
 * makes an mcache per P and lays out the arena hints; it reserves no
 * address space.  The options default to Go's: linux/amd64, one P,
 * go1.13.8 and the scavenger goal that release has before its first GC.
 * ga_heap_free gives everything back.
 * Go 1.13: src/runtime/malloc.go (mallocinit, zerobase), mheap.go
 *          ((*mheap).init), mcache.go (allocmcache), mgc.go (gcinit, in
 *          mgc.c), mgcscavenge.go (gcPaceScavenger's goal).
 * Differs from Go: many heaps per process, each with its own options
 *          (platform, Ps, release, limits); a heap can be freed.
 * Locking: ga_heap_new and ga_heap_free run before and after every other
 *          call on the heap.
 */
#include "goalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arith.h"
#include "mbitmap.h"
#include "mheap.h"
#include "sizeclasses.h"

/* Go's zerobase: the one address every 0-byte allocation gets.  Like
 * Go's (a uintptr in malloc.go), it is word-aligned and shared by the
 * whole process; it is never written.  A heap on the os backing hands
 * out its address (h->zerobase). */
static const uintptr_t zerobase;

/* The scavenger's margin (mgcscavenge.go). */
#define RETAIN_EXTRA_PERCENT 10

/* The scavenger goal Go 1.13.0's gcPaceScavenger sets after gcinit:
 * next_gc plus retainExtraPercent, rounded up to the OS page, in uint64
 * arithmetic, which with GOGC=off wraps to about 1.6 EiB: no allocation
 * ever scavenges. */
uint64_t
ga_gogc_scavenge_goal(int gogc)
{
    const uint64_t phys_page = 4096;
    int64_t gcpercent = gogc < 0 ? -1 : gogc; /* setGCPercent */
    uint64_t next_gc = gc_initial_next_gc(gcpercent);
    uint64_t goal = next_gc + next_gc / (100 / RETAIN_EXTRA_PERCENT);
    return round_up(goal, phys_page); /* wraps as Go's uint64 does */
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
    o->zero_on_request = false;
    o->metadata_limit = ga_default_metadata_limit();
    o->collector = GA_COLLECTOR_FREE;
    o->gogc = 100;
    o->bgsweep = -1;
    o->bgscavenge = true;
}

/* ---- mallocinit -------------------------------------------------- */

static bool
fail(ga_status *status, ga_status s, char *err, size_t errlen, const char *msg)
{
    *status = s;
    snprintf(err, errlen, "%s", msg);
    return false;
}

/* mallocinit's sanity checks, before anything is built. */
static bool
check_platform(const platform *p, ga_status *status, char *err, size_t errlen)
{
    uint64_t bitmap = p->heap_arena_bytes / (p->ptr_size * 8 / 2);
    if (class_to_size[TINY_SIZE_CLASS] != TINY_SIZE) {
        return fail(status, GA_EPOISONED, err, errlen, "bad TinySizeClass");
    }
    if (!is_pow2(bitmap)) {
        return fail(status, GA_EPOISONED, err, errlen,
                    "heapArenaBitmapBytes not a power of 2");
    }
    if (p->phys_page_size < MIN_PHYS_PAGE_SIZE ||
        !is_pow2(p->phys_page_size)) {
        return fail(status, GA_EINVAL, err, errlen,
                    "physical page size must be a power of 2 >= 4096");
    }
    if (p->phys_huge_page_size != 0 && !is_pow2(p->phys_huge_page_size)) {
        return fail(status, GA_EINVAL, err, errlen,
                    "physical huge page size must be a power of 2");
    }
    return true;
}

static bool
check_options(const ga_options *o, ga_status *status, char *err, size_t errlen)
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
    if (o->collector != GA_COLLECTOR_FREE && o->collector != GA_COLLECTOR_GC) {
        return fail(status, GA_EINVAL, err, errlen, "unknown collector");
    }
    if (o->backing == GA_BACKING_OS &&
        (strcmp(o->goos, "linux") != 0 || strcmp(o->goarch, "amd64") != 0)) {
        return fail(status, GA_EINVAL, err, errlen,
                    "backing='os' maps real memory and models linux/amd64 "
                    "only; use backing='virtual' for other platforms");
    }
    return true;
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
    else if (!arena_index_init(h) || !arena_init_hints(h)) {
        fail(status, GA_ENOMEM, err, errlen,
             "out of memory laying out the arena hints");
        ok = false;
    }
    protect_pop(&pf);
    return ok;
}

ga_heap *
ga_heap_new(const ga_options *o, ga_status *status, char *err, size_t errlen)
{
    *status = GA_OK;
    /* cache-line aligned, for the padding inside (sizeof is a multiple) */
    mheap *h = aligned_alloc(GA_CACHE_LINE, sizeof(*h));
    if (h == NULL) {
        fail(status, GA_ENOMEM, err, errlen, "out of memory");
        return NULL;
    }
    memset(h, 0, sizeof(*h));
    if (!platform_init(&h->plat, o->goos, o->goarch, o->race, err, errlen)) {
        *status = GA_EINVAL;
        free(h);
        return NULL;
    }
    if (o->backing == GA_BACKING_OS) {
        h->plat.phys_huge_page_size = mem_host_huge_page_size();
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
    h->zero_memory = o->backing == GA_BACKING_OS && !o->skip_zeroing &&
                     !o->zero_on_request;
    h->keep_needzero = o->backing == GA_BACKING_OS && o->zero_on_request;
    h->zerobase = o->backing == GA_BACKING_OS
                      ? (ga_addr)(uintptr_t)&zerobase
                      : 0x00000000005a0000; /* a .bss-like address */
    /* The emptymspan sentinel: no slots, so it always looks full. */
    h->emptymspan.state = MSPAN_DEAD;
    /* gcinit: the pacing of the first cycle (GC mode), and NextGC as Go
     * reports it before one (both modes) */
    h->gc.enabled = o->collector == GA_COLLECTOR_GC;
    h->gc.bgsweep = o->bgsweep < 0 ? -1 : o->bgsweep;
    h->gc.bgscavenge = o->bgscavenge;
    gc_init(h, o->gogc);

    mheap_init(h);
    for (int i = 0; i < NUM_SPAN_CLASSES; i++) {
        mcentral_init(&h->central[i], (span_class)i);
    }
    if (!init_protected(h, status, err, errlen)) {
        ga_heap_free(h);
        return NULL;
    }
    /* Go's zerobase lies in the binary, which no heap mapping can cover.
     * The virtual backing's simulated one must stay off the heap too: a
     * 32-bit heap that fills its address space would otherwise place an
     * object there, which ga_free takes for the zerobase. */
    if (h->mem.kind == GA_BACKING_VIRTUAL &&
        !mem_block(&h->mem, round_down(h->zerobase, h->plat.phys_page_size),
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
        mheap_walk_spans(h, free_span_bits, h);
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
    free(h->gc.cycles);
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

void
ga_unmap_ranges(mem_range *ranges, size_t n)
{
    mem_unmap_ranges(ranges, n);
}
