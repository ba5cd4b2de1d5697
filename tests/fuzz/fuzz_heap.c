/* libFuzzer harness over the C facade (csrc/goalloc.h).
 *
 * Each input is a heap's options followed by a sequence of operations,
 * run against a simple model: the objects that are live (address,
 * requested size, usable size) and every address the heap ever handed
 * out.  After every operation the harness calls ga_verify; it aborts
 * (__builtin_trap) when
 *   - ga_verify fails, or the heap got poisoned;
 *   - a call returned a status the model contradicts (docs/misuse.md);
 *   - a rejected call (any status but GA_OK) changed ga_digest;
 *   - a new object overlaps a live one, is misaligned, has the wrong
 *     usable size, or (os backing) is not zeroed;
 *   - (os backing) a live object's bytes changed behind its owner's back;
 *   - the heap's list of live objects or its requested-bytes counter
 *     disagree with the model, or freeing everything leaves anything in
 *     use.
 * The encoding is in docs/fuzzing.md; set GOALLOC_FUZZ_VERBOSE=1 to see
 * every decoded operation.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goalloc.h"
#include "sizeclasses.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_OPS 256
/* ga_verify visits every page of the heap: an input stops taking new
 * operations once its checks have visited this many pages (a 4 GiB 32-bit
 * heap has 524288), which keeps each input near a second or less. */
#define PAGE_BUDGET ((uint64_t)8 << 20)
#define HEADER_BYTES 4
#define MIB ((uint64_t)1 << 20)
/* Bytes checked (zero on allocation) and filled at each end of an
 * object on the os backing. */
#define EDGE_BYTES 4096
/* Bytes of the fill pattern checked again at each end when freeing. */
#define PATTERN_CHECK 64

enum {
    OP_TINY,       /* noscan, 1..15 bytes */
    OP_SMALL,      /* 1..32 KiB */
    OP_CLASS,      /* a size class's size, -1, +0 or +1 */
    OP_LARGE,      /* 32 KiB + 1 .. the backing's cap */
    OP_ZERO,       /* size 0: the zerobase */
    OP_HUGE,       /* maxAlloc and beyond, or beyond sys_limit */
    OP_BAD_P,      /* p out of range */
    OP_FREE_LIVE,  /* a live object of the model */
    OP_FREE_SEEN,  /* any address the heap ever handed out */
    OP_FREE_INNER, /* an address inside (or just past) a live object */
    OP_FREE_OTHER, /* foreign, random, or near the heap's own addresses */
    OP_FREE_ZEROBASE,
    OP_SCAVENGE,
    OP_FLUSH,
    OP_FAIL_RESERVES,
    OP_BLOCK_RANGE,
    OP_CHECK, /* compare ga_live_objects and counters with the model */
    NUM_OPS,
    /* GC mode only (the free ops above drop instead) */
    OP_GC = NUM_OPS,
    OP_FREE_OS_MEMORY,
    OP_SET_GC_PERCENT,
    OP_GC_FREE, /* ga_free on a GC-mode heap: GA_EUNSUPPORTED */
    NUM_GC_OPS
};

static const char *const op_names[NUM_GC_OPS] = {
    "tiny",      "small",      "class",          "large",
    "zero",      "huge",       "bad_p",          "free_live",
    "free_seen", "free_inner", "free_other",     "free_zerobase",
    "scavenge",  "flush",      "fail_reserves",  "block_range",
    "check",     "gc",         "free_os_memory", "set_gc_percent",
    "gc_free",
};

/* GC mode's GOGC (byte 2, bits 4-6) and background_sweep (byte 0, bits
 * 6-7) choices. */
static const int gogcs[8] = {100, 50, 200, 0, -1, 10, 25, 400};
static const int bgsweeps[4] = {-1, 0, 1, 4};

/* Platforms a virtual heap may model (the os backing is linux/amd64). */
static const struct {
    const char *goos, *goarch;
    bool race;
} platforms[] = {
    {"linux", "amd64", false},   {"linux", "amd64", true},
    {"linux", "386", false},     {"linux", "arm64", false},
    {"darwin", "arm64", false},  {"aix", "ppc64", false},
    {"windows", "amd64", false}, {"linux", "mips", false},
    {"linux", "arm", false},     {"linux", "s390x", false},
    {"linux", "ppc64le", true},  {"openbsd", "arm64", false},
};
#define NUM_PLATFORMS (sizeof(platforms) / sizeof(platforms[0]))

typedef struct obj {
    ga_addr a;
    uint64_t size; /* requested */
    uint64_t ext;  /* usable size (ga_object_extent) */
    uint8_t fill;  /* os backing: the byte its ends were filled with */
    bool tiny;     /* in a 16-byte tiny block (noscan, < 16 bytes) */
} obj;

typedef struct reader {
    const uint8_t *d;
    size_t n, i;
} reader;

typedef struct fuzz {
    ga_heap *h;
    ga_heap_info info;
    bool os;
    int procs;
    uint64_t sys_limit;
    uint64_t large_cap;
    bool is32;              /* a 32-bit port: a 4 GiB address space */
    bool fail_armed;        /* fail_reserves was set: any growth may fail */
    bool blocked;           /* a range was blocked: growth may fail */
    int op;                 /* index of the current operation */
    uint64_t pages_checked; /* pages ga_verify has visited so far */
    int kind;
    obj live[MAX_OPS];
    size_t nlive;
    bool gc;              /* collector=gc: frees are drops (docs/fuzzing.md) */
    int gogc;             /* GC mode: the GOGC the heap should have */
    obj dropped[MAX_OPS]; /* GC mode: dropped, maybe not collected yet */
    size_t ndropped;
    ga_addr seen[MAX_OPS]; /* every address handed out (not zerobase) */
    size_t nseen;
} fuzz;

static int verbose = -1;

static uint8_t
rd8(reader *r)
{
    return r->i < r->n ? r->d[r->i++] : 0;
}

static uint64_t
rdn(reader *r, int nbytes)
{
    uint64_t v = 0;
    for (int k = 0; k < nbytes; k++) {
        v |= (uint64_t)rd8(r) << (8 * k);
    }
    return v;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3), noreturn))
#endif
static void
die(const fuzz *f, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr,
            "fuzz_heap: op %d (%s), %s backing, %s/%s, procs %d: ", f->op,
            f->kind >= 0 ? op_names[f->kind] : "setup",
            f->os ? "os" : "virtual", f->info.goos, f->info.goarch, f->procs);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    __builtin_trap();
}

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static void
trace(const char *fmt, ...)
{
    if (verbose <= 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

static void
verify(fuzz *f)
{
    char msg[512];
    if (ga_poisoned(f->h) != NULL) {
        die(f, "heap poisoned: %s", ga_poisoned(f->h));
    }
    if (!ga_verify(f->h, msg, sizeof(msg))) {
        die(f, "ga_verify: %s", msg);
    }
    ga_heap_counters c;
    if (ga_heap_counters_get(f->h, &c) == GA_OK) {
        f->pages_checked += c.heap_sys / PAGE_SIZE;
    }
}

static void
unchanged(fuzz *f, uint64_t before, ga_status st, const char *what)
{
    if (ga_digest(f->h) != before) {
        die(f, "%s returned %s but changed the heap", what,
            ga_status_name(st));
    }
}

static ga_heap_counters
counters(fuzz *f)
{
    ga_heap_counters c;
    ga_status st = ga_heap_counters_get(f->h, &c);
    if (st != GA_OK) {
        die(f, "ga_heap_counters_get: %s", ga_status_name(st));
    }
    return c;
}

static long
find_live(const fuzz *f, ga_addr a)
{
    for (size_t i = 0; i < f->nlive; i++) {
        if (f->live[i].a == a) {
            return (long)i;
        }
    }
    return -1;
}

static bool
was_seen(const fuzz *f, ga_addr a)
{
    for (size_t i = 0; i < f->nseen; i++) {
        if (f->seen[i] == a) {
            return true;
        }
    }
    return false;
}

/* ---- os backing: object contents ---------------------------------- */

static uint64_t
edge(uint64_t size)
{
    return size < EDGE_BYTES ? size : EDGE_BYTES;
}

static void
check_zero(fuzz *f, const obj *o)
{
    const uint8_t *p = (const uint8_t *)(uintptr_t)o->a;
    uint64_t e = edge(o->size);
    for (uint64_t i = 0; i < e; i++) {
        if (p[i] != 0 || p[o->size - 1 - i] != 0) {
            die(f,
                "new object 0x%" PRIx64 " (%" PRIu64 " bytes) is not zeroed",
                o->a, o->size);
        }
    }
}

static void
fill(const obj *o)
{
    uint8_t *p = (uint8_t *)(uintptr_t)o->a;
    uint64_t e = edge(o->size);
    memset(p, o->fill, e);
    memset(p + o->size - e, o->fill, e);
}

static void
check_fill(fuzz *f, const obj *o)
{
    const uint8_t *p = (const uint8_t *)(uintptr_t)o->a;
    uint64_t e = o->size < PATTERN_CHECK ? o->size : PATTERN_CHECK;
    for (uint64_t i = 0; i < e; i++) {
        if (p[i] != o->fill || p[o->size - 1 - i] != o->fill) {
            die(f,
                "live object 0x%" PRIx64 " (%" PRIu64
                " bytes) was overwritten",
                o->a, o->size);
        }
    }
}

/* ---- allocation ----------------------------------------------------- */

/* forget_collected: in GC mode a new object may take the place of
 * dropped ones, which a sweep must have freed: the model forgets them.
 * A tiny object at a block's start is a new block: every object of the
 * block's last use went with it. */
static void
forget_collected(fuzz *f, ga_addr a, uint64_t ext)
{
    for (size_t i = 0; i < f->ndropped;) {
        const obj *o = &f->dropped[i];
        if (a < o->a + o->ext && o->a < a + ext) {
            f->dropped[i] = f->dropped[--f->ndropped];
            continue;
        }
        i++;
    }
}

/* expected_ext is the usable size ga_object_extent must report. */
static uint64_t
expected_ext(uint64_t size, bool noscan)
{
    if (size > MAX_SMALL_SIZE) {
        return size;
    }
    if (noscan && size <= TINY_SIZE) {
        return size; /* tiny: the request; 16-byte noscan: 16, the class */
    }
    return class_to_size[size_to_class((size_t)size)];
}

static uint64_t
expected_align(uint64_t size, bool noscan)
{
    if (size > MAX_SMALL_SIZE) {
        return PAGE_SIZE;
    }
    if (noscan && size < TINY_SIZE) {
        return (size & 7) == 0   ? 8
               : (size & 3) == 0 ? 4
               : (size & 1) == 0 ? 2
                                 : 1;
    }
    return 8;
}

/* enomem_allowed: the heap may refuse size bytes only when growing it
 * would pass sys_limit (on 32-bit ports: or 1 GiB, as the 4 GiB address
 * space may be too fragmented for more), or after fault injection. */
static bool
enomem_allowed(fuzz *f, uint64_t size)
{
    if (f->fail_armed || f->blocked) {
        return true;
    }
    uint64_t limit = f->sys_limit;
    if (f->is32 && (limit == 0 || limit > 1024 * MIB)) {
        limit = 1024 * MIB;
    }
    if (limit == 0) {
        return false;
    }
    uint64_t need = size > MAX_SMALL_SIZE ? size : 1;
    uint64_t arena = f->info.heap_arena_bytes;
    uint64_t ask = (need + arena - 1) / arena * arena;
    return ask < need || counters(f).heap_sys + ask > limit;
}

static void check_gc_model(fuzz *f, bool exact);

/* refused_after_sweeping: on a GC-mode heap an allocation the heap
 * cannot back is refused after the sweeping it does first (the
 * proportional sweeper and the reclaimer run before a span is taken,
 * as in Go), which changes ga_digest: the sweeps' progress, and the
 * counters of the objects they freed.  Nothing else may change: the
 * heap did not grow, and the live objects are as they were. */
static void
refused_after_sweeping(fuzz *f, uint64_t sys_before)
{
    if (counters(f).heap_sys != sys_before) {
        die(f, "alloc returned GA_ENOMEM but grew the heap");
    }
    check_gc_model(f, false);
}

static void
do_alloc(fuzz *f, int p, uint64_t size, bool noscan)
{
    trace("  alloc p=%d size=%" PRIu64 " noscan=%d", p, size, noscan);
    bool bad_p = p < 0 || p >= f->procs;
    bool bad = bad_p || size > f->info.max_alloc;
    /* The digest is costly: take it only when the model allows the call
     * to be refused (a refusal it does not allow aborts anyway). */
    bool may_refuse = bad || size == 0 || enomem_allowed(f, size);
    uint64_t before = may_refuse ? ga_digest(f->h) : 0;
    uint64_t sys_before = may_refuse ? counters(f).heap_sys : 0;
    ga_addr a = 0;
    ga_status st = ga_malloc(f->h, p, size, noscan, &a);
    trace(" -> %s 0x%" PRIx64 "\n", ga_status_name(st), a);
    if (bad) {
        /* a bad P is reported before a size beyond maxAlloc */
        ga_status want = bad_p ? GA_EBADP : GA_ETOOLARGE;
        if (st != want) {
            die(f, "alloc(p=%d, size=%" PRIu64 "): %s, want %s", p, size,
                ga_status_name(st), ga_status_name(want));
        }
        unchanged(f, before, st, "alloc");
        return;
    }
    if (st == GA_ENOMEM) {
        if (!may_refuse) {
            die(f, "alloc(%" PRIu64 ") refused with room to grow", size);
        }
        if (f->gc) {
            refused_after_sweeping(f, sys_before);
        }
        else {
            unchanged(f, before, st, "alloc");
        }
        return;
    }
    if (st != GA_OK) {
        die(f, "alloc(p=%d, size=%" PRIu64 "): %s", p, size,
            ga_status_name(st));
    }
    if (size == 0) {
        if (a != f->info.zerobase) {
            die(f, "alloc(0) = 0x%" PRIx64 ", not the zerobase", a);
        }
        unchanged(f, before, st, "alloc(0)");
        return;
    }
    if (a == 0 || a == f->info.zerobase ||
        a % expected_align(size, noscan) != 0) {
        die(f, "alloc(%" PRIu64 ") = 0x%" PRIx64 ": bad address", size, a);
    }
    uint64_t ext = 0;
    st = ga_object_extent(f->h, a, &ext);
    if (st != GA_OK || ext != expected_ext(size, noscan)) {
        die(f,
            "alloc(%" PRIu64 ", noscan=%d) = 0x%" PRIx64 ": extent %s %" PRIu64
            ", want %" PRIu64,
            size, noscan, a, ga_status_name(st), ext,
            expected_ext(size, noscan));
    }
    for (size_t i = 0; i < f->nlive; i++) {
        const obj *o = &f->live[i];
        if (a < o->a + o->ext && o->a < a + ext) {
            die(f,
                "new object [0x%" PRIx64 ", +%" PRIu64
                ") overlaps live [0x%" PRIx64 ", +%" PRIu64 ")",
                a, ext, o->a, o->ext);
        }
    }
    if (f->gc) {
        bool new_block = noscan && size < TINY_SIZE && a % TINY_SIZE == 0;
        forget_collected(f, a, new_block ? TINY_SIZE : ext);
    }
    obj *o = &f->live[f->nlive++];
    o->a = a;
    o->size = size;
    o->ext = ext;
    o->fill = (uint8_t)(0x11 + 2 * f->op);
    o->tiny = noscan && size < TINY_SIZE;
    if (f->os) {
        check_zero(f, o);
        fill(o);
    }
    if (!was_seen(f, a)) {
        f->seen[f->nseen++] = a;
    }
}

/* ---- freeing -------------------------------------------------------- */

static void do_drop(fuzz *f, ga_addr a);

static void
do_free(fuzz *f, ga_addr a)
{
    if (f->gc) {
        do_drop(f, a); /* the free ops drop on a GC-mode heap */
        return;
    }
    long li = a == f->info.zerobase ? -1 : find_live(f, a);
    bool seen = was_seen(f, a);
    ga_span_info si;
    ga_heap_info hi;
    ga_heap_info_get(f->h, &hi);
    /* in an arena: a span's page, or go1.13.8's curArena, mapped but no
     * span yet (freeing there is "not an object", not "foreign") */
    bool in_arena = ga_span_of(f->h, a, &si) ||
                    (a >= hi.cur_arena_base && a < hi.cur_arena_end);
    if (li >= 0 && f->os) {
        check_fill(f, &f->live[li]);
    }
    trace("  free 0x%" PRIx64 " (%s)", a,
          a == f->info.zerobase ? "zerobase"
          : li >= 0             ? "live"
          : seen                ? "freed"
          : in_arena            ? "in arena"
                                : "foreign");
    /* a free the model expects to succeed needs no digest */
    uint64_t before = li >= 0 ? 0 : ga_digest(f->h);
    ga_status st = ga_free(f->h, a);
    trace(" -> %s\n", ga_status_name(st));
    if (a == f->info.zerobase) {
        if (st != GA_OK) {
            die(f, "free(zerobase): %s", ga_status_name(st));
        }
        unchanged(f, before, st, "free(zerobase)");
        return;
    }
    if (li >= 0) {
        /* Live, or (the known limit) a stale address whose slot was
         * handed out again: either way the object there is freed. */
        if (st != GA_OK) {
            die(f, "free of live 0x%" PRIx64 " (%" PRIu64 " bytes): %s", a,
                f->live[li].size, ga_status_name(st));
        }
        f->live[li] = f->live[--f->nlive];
        return;
    }
    if (st == GA_OK) {
        die(f, "free(0x%" PRIx64 ") of no live object succeeded", a);
    }
    unchanged(f, before, st, "free");
    if (seen) {
        if (st != GA_EDOUBLEFREE && st != GA_ENOTOBJECT) {
            die(f, "double free of 0x%" PRIx64 ": %s", a, ga_status_name(st));
        }
    }
    else if (st != (in_arena ? GA_ENOTOBJECT : GA_EFOREIGN)) {
        die(f, "free(0x%" PRIx64 "), never handed out, %s: %s", a,
            in_arena ? "in an arena" : "foreign", ga_status_name(st));
    }
}

/* ---- other operations ----------------------------------------------- */

static int
cmp_obj(const void *x, const void *y)
{
    const obj *a = x, *b = y;
    return a->a < b->a ? -1 : a->a > b->a;
}

static void check_counters(fuzz *f, uint64_t requested);

/* check_model compares the heap's own account with the model. */
static void
check_model(fuzz *f)
{
    if (f->gc) {
        check_gc_model(f, false);
        return;
    }
    static obj sorted[MAX_OPS];
    static ga_live_object got[MAX_OPS + 1];
    memcpy(sorted, f->live, f->nlive * sizeof(obj));
    qsort(sorted, f->nlive, sizeof(obj), cmp_obj);
    size_t n = ga_live_objects(f->h, got, MAX_OPS + 1);
    if (n != f->nlive) {
        die(f, "ga_live_objects lists %zu objects, the model %zu", n,
            f->nlive);
    }
    uint64_t requested = 0;
    for (size_t i = 0; i < n; i++) {
        if (got[i].addr != sorted[i].a || got[i].requested != sorted[i].size ||
            got[i].size != sorted[i].ext) {
            die(f,
                "live object %zu: heap 0x%" PRIx64 " %" PRIu64 "/%" PRIu64
                ", model 0x%" PRIx64 " %" PRIu64 "/%" PRIu64,
                i, got[i].addr, got[i].requested, got[i].size, sorted[i].a,
                sorted[i].size, sorted[i].ext);
        }
        requested += sorted[i].size;
    }
    check_counters(f, requested);
}

/* check_counters: requested_live is the requested bytes of the listed
 * objects; heap_sys keeps within sys_limit; the page counters add up. */
static void
check_counters(fuzz *f, uint64_t requested)
{
    ga_heap_counters c = counters(f);
    if (c.requested_live != requested) {
        die(f, "requested_live %" PRIu64 ", model %" PRIu64, c.requested_live,
            requested);
    }
    if (f->sys_limit != 0 && c.heap_sys > f->sys_limit) {
        die(f, "heap_sys %" PRIu64 " beyond sys_limit %" PRIu64, c.heap_sys,
            f->sys_limit);
    }
    if (c.heap_alloc > c.heap_inuse || c.heap_released > c.heap_idle ||
        c.heap_inuse + c.heap_idle != c.heap_sys) {
        die(f,
            "counters: alloc %" PRIu64 " inuse %" PRIu64 " idle %" PRIu64
            " released %" PRIu64 " sys %" PRIu64,
            c.heap_alloc, c.heap_inuse, c.heap_idle, c.heap_released,
            c.heap_sys);
    }
}

/* ---- GC mode ---------------------------------------------------------- */

/* block_of: the 16-byte tiny block a tiny object lives in. */
static ga_addr
block_of(const obj *o)
{
    return o->a & ~(ga_addr)(TINY_SIZE - 1);
}

static long
find_dropped(const fuzz *f, ga_addr a)
{
    for (size_t i = 0; i < f->ndropped; i++) {
        if (f->dropped[i].a == a) {
            return (long)i;
        }
    }
    return -1;
}

/* check_gc_model compares ga_live_objects with the model on a GC-mode
 * heap: the objects not dropped are listed exactly (dropped flag 0);
 * every object listed as dropped is one the model dropped.  Dropped
 * objects no longer listed were collected: the model forgets them; with
 * exact (right after ga_gc) none may be missing. */
static void
check_gc_model(fuzz *f, bool exact)
{
    static ga_live_object got[2 * MAX_OPS + 1];
    size_t n = ga_live_objects(f->h, got, 2 * MAX_OPS + 1);
    if (n > 2 * MAX_OPS) {
        die(f, "ga_live_objects lists %zu objects", n);
    }
    static bool listed[MAX_OPS];
    memset(listed, 0, sizeof(listed));
    size_t nlive = 0;
    uint64_t requested = 0;
    for (size_t i = 0; i < n; i++) {
        const ga_live_object *g = &got[i];
        requested += g->requested;
        long li = g->dropped ? find_dropped(f, g->addr)
                             : find_live(f, g->addr);
        const obj *o = li < 0       ? NULL
                       : g->dropped ? &f->dropped[li]
                                    : &f->live[li];
        if (o == NULL || g->requested != o->size || g->size != o->ext) {
            die(f,
                "ga_live_objects lists 0x%" PRIx64 " (%" PRIu64 "/%" PRIu64
                ", dropped %" PRIu64 "), which the model %s",
                g->addr, g->requested, g->size, g->dropped,
                o == NULL ? "does not have so" : "sizes differently");
        }
        if (g->dropped) {
            listed[li] = true;
        }
        else {
            nlive++;
        }
    }
    if (nlive != f->nlive) {
        die(f, "ga_live_objects lists %zu live objects, the model %zu", nlive,
            f->nlive);
    }
    for (size_t i = f->ndropped; i-- > 0;) {
        if (listed[i]) {
            continue;
        }
        if (exact) {
            die(f,
                "dropped 0x%" PRIx64 " was collected, yet in a P's tiny "
                "block or beside a live tiny object",
                f->dropped[i].a);
        }
        f->dropped[i] = f->dropped[--f->ndropped]; /* collected */
    }
    check_counters(f, requested);
}

/* check_live_bytes: (os backing) no live object's bytes changed. */
static void
check_live_bytes(fuzz *f)
{
    for (size_t i = 0; f->os && i < f->nlive; i++) {
        check_fill(f, &f->live[i]);
    }
}

/* do_drop is do_free's GC-mode twin (docs/misuse.md): the zerobase is
 * no object; a live object's start is dropped (it stays allocated); an
 * address handed out before (dropped, collected, or reused by a
 * 16-byte object) is GA_EDOUBLEFREE or GA_ENOTOBJECT; any other is
 * GA_ENOTOBJECT in the heap's arenas, else GA_EFOREIGN. */
static void
do_drop(fuzz *f, ga_addr a)
{
    long li = a == f->info.zerobase ? -1 : find_live(f, a);
    bool seen = was_seen(f, a);
    ga_span_info si;
    ga_heap_info hi;
    ga_heap_info_get(f->h, &hi);
    bool in_arena = ga_span_of(f->h, a, &si) ||
                    (a >= hi.cur_arena_base && a < hi.cur_arena_end);
    if (li >= 0 && f->os) {
        check_fill(f, &f->live[li]);
    }
    trace("  drop 0x%" PRIx64 " (%s)", a,
          a == f->info.zerobase ? "zerobase"
          : li >= 0             ? "live"
          : seen                ? "dropped"
          : in_arena            ? "in arena"
                                : "foreign");
    uint64_t before = li >= 0 ? 0 : ga_digest(f->h);
    ga_status st = ga_drop(f->h, a);
    trace(" -> %s\n", ga_status_name(st));
    if (li >= 0) {
        if (st != GA_OK) {
            die(f, "drop of live 0x%" PRIx64 ": %s", a, ga_status_name(st));
        }
        f->dropped[f->ndropped++] = f->live[li];
        f->live[li] = f->live[--f->nlive];
        return;
    }
    if (st == GA_OK) {
        die(f, "drop(0x%" PRIx64 ") of no live object succeeded", a);
    }
    unchanged(f, before, st, "drop");
    ga_status want = a == f->info.zerobase ? GA_ENOTOBJECT
                     : in_arena            ? GA_ENOTOBJECT
                                           : GA_EFOREIGN;
    if (seen ? st != GA_EDOUBLEFREE && st != GA_ENOTOBJECT : st != want) {
        die(f, "drop(0x%" PRIx64 "), %s: %s", a,
            seen       ? "dropped before"
            : in_arena ? "in an arena"
                       : "foreign",
            ga_status_name(st));
    }
}

/* do_gc_free: ga_free on a GC-mode heap is refused, whatever the
 * address, and changes nothing. */
static void
do_gc_free(fuzz *f, ga_addr a)
{
    uint64_t before = ga_digest(f->h);
    ga_status st = ga_free(f->h, a);
    trace("  free 0x%" PRIx64 " -> %s\n", a, ga_status_name(st));
    if (st != GA_EUNSUPPORTED) {
        die(f, "free(0x%" PRIx64 ") on a GC-mode heap: %s", a,
            ga_status_name(st));
    }
    unchanged(f, before, st, "free");
}

/* do_gc runs ga_gc (or ga_free_os_memory): afterwards exactly the live
 * objects are allocated, and of the dropped ones those in a block that
 * was some P's tiny block (gcMarkTinyAllocs) or holds a live tiny
 * object; free_os_memory leaves no free page unreleased. */
static void
do_gc(fuzz *f, bool os_memory)
{
    ga_addr cur[4] = {0};
    for (int p = 0; p < f->procs; p++) {
        ga_cache_info ci;
        if (ga_cache_info_get(f->h, p, &ci)) {
            cur[p] = ci.tiny;
        }
    }
    ga_heap_counters c0 = counters(f);
    ga_status st = os_memory ? ga_free_os_memory(f->h) : ga_gc(f->h);
    trace("  %s -> %s\n", os_memory ? "free_os_memory" : "gc",
          ga_status_name(st));
    if (st != GA_OK) {
        die(f, "%s: %s", os_memory ? "free_os_memory" : "gc",
            ga_status_name(st));
    }
    for (size_t i = f->ndropped; i-- > 0;) {
        const obj *d = &f->dropped[i];
        bool keep = false;
        for (int p = 0; d->tiny && p < f->procs; p++) {
            keep = keep || block_of(d) == cur[p];
        }
        for (size_t k = 0; d->tiny && k < f->nlive; k++) {
            keep = keep ||
                   (f->live[k].tiny && block_of(&f->live[k]) == block_of(d));
        }
        if (!keep) {
            f->dropped[i] = f->dropped[--f->ndropped];
        }
    }
    check_gc_model(f, true);
    check_live_bytes(f);
    ga_heap_counters c1 = counters(f);
    if (c1.num_gc != c0.num_gc + 1) {
        die(f, "num_gc %" PRIu64 " -> %" PRIu64, c0.num_gc, c1.num_gc);
    }
    if (os_memory && c1.heap_released != c1.heap_idle) {
        die(f, "free_os_memory left %" PRIu64 " idle bytes unreleased",
            c1.heap_idle - c1.heap_released);
    }
}

static void
do_set_gc_percent(fuzz *f, uint8_t b)
{
    int gogc = (b & 0x80)   ? (int8_t)b
               : (b & 0x40) ? 1 << (b % 31)
                            : gogcs[b % 8];
    int old = 0;
    ga_status st = ga_set_gc_percent(f->h, gogc, &old);
    trace("  set_gc_percent %d -> %s (old %d)\n", gogc, ga_status_name(st),
          old);
    if (st != GA_OK || old != f->gogc) {
        die(f, "set_gc_percent(%d): %s, old %d, want %d", gogc,
            ga_status_name(st), old, f->gogc);
    }
    f->gogc = gogc < 0 ? -1 : gogc;
    ga_gc_state gs;
    ga_gc_state_get(f->h, &gs);
    if (gs.gogc != f->gogc || (f->gogc < 0 && gs.gc_trigger != UINT64_MAX)) {
        die(f, "gc_state after set_gc_percent(%d): gogc %d trigger %" PRIu64,
            gogc, gs.gogc, gs.gc_trigger);
    }
}

static void
do_flush(fuzz *f)
{
    trace("  flush\n");
    ga_status st = ga_flush(f->h);
    if (st != GA_OK) {
        die(f, "flush: %s", ga_status_name(st));
    }
    for (int p = 0; p < f->procs; p++) {
        ga_cache_info ci;
        if (!ga_cache_info_get(f->h, p, &ci)) {
            die(f, "ga_cache_info_get(%d) failed", p);
        }
        if (ci.tiny != 0) {
            die(f, "P %d keeps its tiny block after a flush", p);
        }
        for (int i = 0; i < NUM_SPAN_CLASSES; i++) {
            if (ci.alloc[i] != 0) {
                die(f, "P %d keeps span class %d after a flush", p, i);
            }
        }
    }
}

static void
do_scavenge(fuzz *f, uint64_t nbytes)
{
    ga_heap_counters c0 = counters(f);
    uint64_t released = 0;
    ga_status st = ga_scavenge(f->h, nbytes, &released);
    trace("  scavenge %" PRIu64 " -> %s %" PRIu64 "\n", nbytes,
          ga_status_name(st), released);
    if (st != GA_OK) {
        die(f, "scavenge: %s", ga_status_name(st));
    }
    ga_heap_counters c1 = counters(f);
    if (c1.heap_released - c0.heap_released != released ||
        released > c0.heap_idle - c0.heap_released) {
        die(f,
            "scavenge(%" PRIu64 ") released %" PRIu64
            ", heap_released %" PRIu64 " -> %" PRIu64 ", idle %" PRIu64,
            nbytes, released, c0.heap_released, c1.heap_released,
            c0.heap_idle);
    }
    if (c1.heap_alloc != c0.heap_alloc || c1.heap_sys != c0.heap_sys ||
        c1.heap_inuse != c0.heap_inuse) {
        die(f, "scavenge changed heap_alloc, heap_inuse or heap_sys");
    }
}

static void
do_fail_reserves(fuzz *f, int n)
{
    uint64_t before = ga_digest(f->h);
    ga_status st = ga_fail_reserves(f->h, n);
    trace("  fail_reserves %d -> %s\n", n, ga_status_name(st));
    ga_status want = f->os ? GA_EUNSUPPORTED : n < 0 ? GA_EINVAL : GA_OK;
    if (st != want) {
        die(f, "fail_reserves(%d): %s, want %s", n, ga_status_name(st),
            ga_status_name(want));
    }
    if (st != GA_OK) {
        unchanged(f, before, st, "fail_reserves");
    }
    else if (n > 0) {
        f->fail_armed = true;
    }
}

static void
do_block_range(fuzz *f, reader *r)
{
    /* Only on the virtual backing: on os it maps real memory. */
    if (f->os) {
        return;
    }
    ga_hint_info hints[8];
    size_t nh = ga_hints(f->h, hints, 8);
    uint8_t which = rd8(r);
    int64_t arenas = (int8_t)rd8(r);
    uint64_t len = (uint64_t)(1 + rd8(r) % 4) * f->info.heap_arena_bytes;
    ga_addr base = nh > 0 ? hints[which % (nh < 8 ? nh : 8)].addr
                          : f->info.heap_arena_bytes * (which + 1u);
    ga_addr a = base + (uint64_t)arenas * f->info.heap_arena_bytes;
    if (which & 0x80) {
        len = rdn(r, 2) * PAGE_SIZE; /* may be 0: GA_EINVAL */
    }
    uint64_t before = ga_digest(f->h);
    ga_status st = ga_block_range(f->h, a, len);
    trace("  block 0x%" PRIx64 " +%" PRIu64 " -> %s\n", a, len,
          ga_status_name(st));
    if (st == GA_OK) {
        if (len == 0) {
            die(f, "block of 0 bytes accepted");
        }
        f->blocked = true;
        return;
    }
    if (st != GA_EINVAL) {
        die(f, "block_range: %s", ga_status_name(st));
    }
    unchanged(f, before, st, "block_range");
}

/* other_address picks an address that is not a live object's start
 * (usually): random, near the heap's arenas, hints or objects. */
static ga_addr
other_address(fuzz *f, reader *r)
{
    uint8_t kind = rd8(r);
    switch (kind % 6) {
    case 0:
        return rdn(r, 8);
    case 1: {
        ga_arena_info ar[4];
        size_t n = ga_arenas(f->h, ar, 4);
        uint64_t off = rdn(r, 4) * 8;
        if (n == 0) {
            return off;
        }
        return ar[(kind >> 3) % (n < 4 ? n : 4)].base + off;
    }
    case 2:
        return f->info.zerobase + (uint64_t)(int64_t)(int8_t)rd8(r);
    case 3: {
        ga_hint_info hi[4];
        size_t n = ga_hints(f->h, hi, 4);
        uint64_t off = (uint64_t)(int64_t)(int16_t)rdn(r, 2) * PAGE_SIZE;
        return (n == 0 ? 0 : hi[(kind >> 3) % (n < 4 ? n : 4)].addr) + off;
    }
    case 4: {
        size_t i = (size_t)rdn(r, 2);
        int64_t delta = (int16_t)rdn(r, 2);
        if (f->nseen == 0) {
            return (uint64_t)delta;
        }
        return f->seen[i % f->nseen] + (uint64_t)delta;
    }
    default:
        return 0;
    }
}

static uint64_t
huge_size_raw(fuzz *f, reader *r)
{
    uint64_t max = f->info.max_alloc;
    uint8_t kind = rd8(r);
    switch (kind % 7) {
    case 0:
        return max + 1 + rdn(r, 2);
    case 1:
        return UINT64_MAX - rdn(r, 1);
    case 2:
        /* maxAlloc itself: allowed, but more than any sys_limit */
        return f->sys_limit != 0 ? max : max + 1;
    case 3:
        return f->sys_limit != 0 ? f->sys_limit + 1 + rdn(r, 2) * PAGE_SIZE
                                 : max + 1;
    case 4:
        return (uint64_t)1 << (32 + rd8(r) % 32);
    case 5:
        return rdn(r, 8);
    default:
        return rdn(r, 2) * MIB;
    }
}

/* huge_size picks a size beyond maxAlloc, or one that sys_limit bounds:
 * on a 64-bit port without a limit, a huge request within maxAlloc
 * becomes one beyond it, as growing the heap that far would cost real
 * metadata memory (a 4 GiB 32-bit heap costs a few MiB). */
static uint64_t
huge_size(fuzz *f, reader *r)
{
    uint64_t s = huge_size_raw(f, r);
    uint64_t max = f->info.max_alloc;
    bool unbounded = f->sys_limit == 0 && !f->is32;
    return s <= max && unbounded ? max + 1 + (s & 0xffff) : s;
}

static int
pick_p(fuzz *f, uint8_t b)
{
    return b % f->procs;
}

static void
run_op(fuzz *f, reader *r, int kind)
{
    f->kind = kind;
    trace("op %d %s\n", f->op, op_names[kind]);
    switch (kind) {
    case OP_TINY: {
        uint8_t b = rd8(r);
        do_alloc(f, pick_p(f, rd8(r)), 1 + b % 15, true);
        break;
    }
    case OP_SMALL: {
        uint64_t size = 1 + rdn(r, 2) % MAX_SMALL_SIZE;
        uint8_t b = rd8(r);
        do_alloc(f, pick_p(f, b >> 1), size, b & 1);
        break;
    }
    case OP_CLASS: {
        uint8_t c = rd8(r);
        uint8_t b = rd8(r);
        uint64_t size = class_to_size[1 + c % (NUM_SIZE_CLASSES - 1)];
        size = size - 1 + (b >> 6) % 3;
        do_alloc(f, pick_p(f, (b >> 1) & 31), size, b & 1);
        break;
    }
    case OP_LARGE: {
        uint64_t size = MAX_SMALL_SIZE + 1 + rdn(r, 3) % f->large_cap;
        uint8_t b = rd8(r);
        if (b & 0x80) {
            /* whole pages, which large spans fill exactly */
            size = (size + PAGE_MASK) & ~PAGE_MASK;
        }
        do_alloc(f, pick_p(f, (b >> 1) & 63), size, b & 1);
        break;
    }
    case OP_ZERO: {
        uint8_t b = rd8(r);
        do_alloc(f, pick_p(f, b >> 1), 0, b & 1);
        break;
    }
    case OP_HUGE: {
        uint64_t size = huge_size(f, r);
        uint8_t b = rd8(r);
        do_alloc(f, pick_p(f, b >> 1), size, b & 1);
        break;
    }
    case OP_BAD_P: {
        uint8_t b = rd8(r);
        int p = (b & 1) ? -1 - (b >> 1) : f->procs + (b >> 1);
        if (b == 0xff) {
            p = (b & 2) ? INT32_MAX : INT32_MIN;
        }
        do_alloc(f, p, 1 + rdn(r, 2) % (2 * MAX_SMALL_SIZE), b & 2);
        break;
    }
    case OP_FREE_LIVE: {
        size_t i = (size_t)rdn(r, 2);
        if (f->nlive > 0) {
            do_free(f, f->live[i % f->nlive].a);
        }
        break;
    }
    case OP_FREE_SEEN: {
        size_t i = (size_t)rdn(r, 2);
        if (f->nseen > 0) {
            do_free(f, f->seen[i % f->nseen]);
        }
        break;
    }
    case OP_FREE_INNER: {
        size_t i = (size_t)rdn(r, 2);
        uint64_t off = rdn(r, 3);
        if (f->nlive > 0) {
            const obj *o = &f->live[i % f->nlive];
            /* inside the object, or up to 64 bytes past its usable end */
            do_free(f, o->a + 1 + off % (o->ext + 64));
        }
        break;
    }
    case OP_FREE_OTHER:
        do_free(f, other_address(f, r));
        break;
    case OP_FREE_ZEROBASE:
        do_free(f, f->info.zerobase);
        break;
    case OP_SCAVENGE: {
        uint8_t b = rd8(r);
        uint64_t n = b % 4 == 0   ? 0
                     : b % 4 == 1 ? rdn(r, 2) * 4096
                     : b % 4 == 2 ? UINT64_MAX
                                  : rdn(r, 4);
        do_scavenge(f, n);
        break;
    }
    case OP_FLUSH:
        do_flush(f);
        break;
    case OP_FAIL_RESERVES: {
        uint8_t b = rd8(r);
        do_fail_reserves(f, b == 0xff ? -1 : b % 4);
        break;
    }
    case OP_BLOCK_RANGE:
        do_block_range(f, r);
        break;
    case OP_GC:
        do_gc(f, false);
        break;
    case OP_FREE_OS_MEMORY:
        do_gc(f, true);
        break;
    case OP_SET_GC_PERCENT:
        do_set_gc_percent(f, rd8(r));
        break;
    case OP_GC_FREE: {
        size_t i = (size_t)rdn(r, 2);
        do_gc_free(f, f->nlive > 0   ? f->live[i % f->nlive].a
                      : f->nseen > 0 ? f->seen[i % f->nseen]
                                     : f->info.zerobase);
        break;
    }
    default:
        check_model(f);
        break;
    }
    verify(f);
}

/* ---- one input ------------------------------------------------------ */

static bool
setup(fuzz *f, reader *r)
{
    uint8_t b0 = rd8(r), b1 = rd8(r), b2 = rd8(r), b3 = rd8(r);
    ga_options o;
    ga_options_init(&o);
    /* the release first: it sets the default scavenger goal */
    ga_options_set_release(&o, (b0 & 0x10) ? GA_RELEASE_GO1_13_0
                                           : GA_RELEASE_GO1_13_8);
    f->os = (b0 & 3) == 3;
    f->procs = 1 + ((b0 >> 2) & 3);
    o.backing = f->os ? GA_BACKING_OS : GA_BACKING_VIRTUAL;
    o.procs = f->procs;
    if (!f->os) {
        unsigned i = b1 % 16u;
        if (i < NUM_PLATFORMS) {
            o.goos = platforms[i].goos;
            o.goarch = platforms[i].goarch;
            o.race = platforms[i].race;
        }
    }
    static const uint64_t limits[4] = {0, 64 * MIB, 512 * MIB, 2048 * MIB};
    f->sys_limit = limits[b2 & 3];
    if (f->os && f->sys_limit > 256 * MIB) {
        f->sys_limit = 256 * MIB;
    }
    o.sys_limit = f->sys_limit;
    switch ((b2 >> 2) & 3) {
    case 1:
        o.scavenge_goal = 0;
        break;
    case 2:
        o.scavenge_goal = 1 * MIB;
        break;
    case 3:
        o.scavenge_goal = UINT64_MAX;
        break;
    default:
        break;
    }
    o.seed = 0x9E3779B97F4A7C15ULL * (b3 + 1u);
    f->gc = (b0 & 0x20) != 0;
    f->gogc = 100;
    if (f->gc) {
        o.collector = GA_COLLECTOR_GC;
        o.bgsweep = bgsweeps[b0 >> 6];
        o.gogc = f->gogc = gogcs[(b2 >> 4) & 7];
    }
    f->large_cap = f->os ? 1 * MIB : 8 * MIB;
    ga_status st;
    char err[256];
    f->h = ga_heap_new(&o, &st, err, sizeof(err));
    if (f->h == NULL) {
        fprintf(stderr, "fuzz_heap: ga_heap_new(%s/%s%s, %s): %s: %s\n",
                o.goos, o.goarch, o.race ? " race" : "",
                f->os ? "os" : "virtual", ga_status_name(st), err);
        __builtin_trap();
    }
    ga_heap_info_get(f->h, &f->info);
    f->is32 = f->info.ptr_size == 4;
    trace("heap %s %s/%s race=%d %s procs=%d sys_limit=%" PRIu64
          " goal=%" PRIu64 " max_alloc=0x%" PRIx64 " zerobase=0x%" PRIx64 "\n",
          ga_release_name(f->info.release), f->info.goos, f->info.goarch,
          o.race, f->os ? "os" : "virtual", f->procs, f->sys_limit,
          f->info.scavenge_goal, f->info.max_alloc, f->info.zerobase);
    if (f->gc) {
        trace("collector gc gogc=%d background_sweep=%d\n", o.gogc, o.bgsweep);
    }
    return true;
}

/* teardown frees every live object (GC mode: drops them and collects
 * twice, the second time the first's tiny blocks), then checks the heap
 * is empty. */
static void
teardown(fuzz *f)
{
    f->kind = OP_CHECK;
    check_model(f);
    f->kind = OP_FREE_LIVE;
    while (f->nlive > 0) {
        do_free(f, f->live[f->nlive - 1].a);
    }
    if (f->gc) {
        f->kind = OP_GC;
        do_gc(f, false);
        do_gc(f, false);
        if (f->ndropped != 0) {
            die(f, "%zu dropped objects survive two cycles", f->ndropped);
        }
    }
    do_flush(f);
    ga_mem_stats ms;
    ga_status st = ga_read_mem_stats(f->h, &ms);
    if (st != GA_OK) {
        die(f, "ga_read_mem_stats: %s", ga_status_name(st));
    }
    if (ms.heap_objects != 0 || ms.heap_alloc != 0 || ms.heap_inuse != 0 ||
        ms.mallocs != ms.frees) {
        die(f,
            "everything freed, yet heap_objects %" PRIu64
            " heap_alloc %" PRIu64 " heap_inuse %" PRIu64 " mallocs %" PRIu64
            " frees %" PRIu64,
            ms.heap_objects, ms.heap_alloc, ms.heap_inuse, ms.mallocs,
            ms.frees);
    }
    verify(f);
    check_model(f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fuzz f;
    if (verbose < 0) {
        const char *v = getenv("GOALLOC_FUZZ_VERBOSE");
        verbose = v != NULL && *v != '\0' && *v != '0';
    }
    memset(&f, 0, sizeof(f));
    f.kind = -1;
    reader r = {data, size, 0};
    setup(&f, &r);
    verify(&f);
    for (f.op = 0;
         f.op < MAX_OPS && r.i < r.n && f.pages_checked < PAGE_BUDGET;
         f.op++) {
        run_op(&f, &r, rd8(&r) % (f.gc ? NUM_GC_OPS : NUM_OPS));
    }
    teardown(&f);
    ga_heap_free(f.h);
    return 0;
}
