/* goalloc's public C facade.  See malloc.c for the overview.
 *
 * Everything outside csrc/ (the CPython binding, the C tests, fuzzers and
 * benchmarks) uses the allocator through this header alone.  Every call
 * validates its arguments before it changes anything and reports misuse
 * as a ga_status; a broken internal invariant (Go's throw) poisons the
 * heap, and every later call returns GA_EPOISONED.
 * Go 1.13: runtime.mallocinit, mallocgc, ReadMemStats, debug.FreeOSMemory
 *          and the introspection Go's export_test.go offers.
 * Differs from Go: free() is explicit (design §6); many heaps may live
 *          in one process; addresses are ga_addr integers.
 * Locking: each call takes the locks Go takes (the heap lock, the
 *          mcentral locks).  Several threads may allocate and free at
 *          once: each thread runs as its own P (one thread per P at a
 *          time) for ga_malloc and ga_free_p; ga_free runs as no P and
 *          may be called from any thread.  Any thread may free any object,
 *          wherever it was allocated; ga_scavenge takes the heap lock.
 *          The calls that look at or change the whole heap (ga_flush,
 *          introspection, statistics, ga_verify, ga_digest,
 *          ga_heap_free) stop the world in Go; here the caller makes sure
 *          that no other call on the heap runs meanwhile.
 */
#ifndef GOALLOC_H
#define GOALLOC_H

#include "ga.h"
#include "mstats.h"

typedef enum ga_status {
    GA_OK = 0,
    GA_ENOMEM,       /* the OS, sys_limit or metadata_limit refused,
                      * or the process is out of memory for metadata
                      * (ga_oom_reason says which); nothing changed */
    GA_EINVAL,       /* an argument is out of range (not a P or a size,
                      * which have their own statuses) */
    GA_EFOREIGN,     /* the address is not in this heap's arenas */
    GA_ENOTOBJECT,   /* in the heap, but not the start of an object */
    GA_EDOUBLEFREE,  /* the object was already freed */
    GA_EUNSUPPORTED, /* not available with this heap's options */
    GA_EPOISONED,    /* an invariant broke earlier; the heap is dead */
    GA_EBADP,        /* p is not a P of this heap (0 <= p < procs) */
    GA_ETOOLARGE,    /* size exceeds the platform's maxAlloc */
} ga_status;

const char *ga_status_name(ga_status s);

/* Who frees objects: the caller, explicitly (ga_free, design §6), or
 * Go's collector, from what the caller drops (ga_drop, design §14). */
typedef enum ga_collector {
    GA_COLLECTOR_FREE = 0,
    GA_COLLECTOR_GC = 1,
} ga_collector;

typedef struct ga_options {
    const char *goos;        /* "linux" */
    const char *goarch;      /* "amd64" */
    bool race;               /* race-detector hint layout */
    ga_backing backing;      /* GA_BACKING_OS or GA_BACKING_VIRTUAL */
    int procs;               /* number of Ps (mcaches), >= 1 */
    uint64_t scavenge_goal;  /* retained-bytes goal; see ga_options_init */
    uint64_t sys_limit;      /* max heap_sys; 0 = unlimited */
    uint64_t binary_end;     /* 32-bit ports: end of the Go binary/brk */
    uint64_t seed;           /* treap priorities */
    bool skip_zeroing;       /* deviation, off by default: hand out dirty
                              * memory as malloc does, instead of Go's
                              * zeroing (needzero), to measure its cost */
    ga_release release;      /* GA_RELEASE_GO1_13_8 (default) or _0; set
                              * it with ga_options_set_release */
    ga_collector collector;  /* GA_COLLECTOR_FREE (explicit free, the
                              * default) or GA_COLLECTOR_GC (design §14) */
    int gogc;                /* GOGC, < 0 = off: the pacer's (next_gc in
                              * MemStats; GC mode's cycles) */
    bool bgscavenge;         /* GC mode: the background scavenger runs
                              * on the simulated clock (default true;
                              * design §14.11) */
    int bgsweep;             /* GC mode: < 0 (default): the background
                              * sweeper sweeps everything right after
                              * each cycle; K >= 0: K spans after each
                              * allocation that refills or is large
                              * (design §14.4) */
    bool zero_on_request;    /* deviation, off by default (os backing):
                              * malloc's contract.  Memory is handed out
                              * dirty and zeroed only by ga_calloc, and
                              * only where its span may hold old data
                              * (Go's needzero, which in-use spans then
                              * keep instead of clearing it) */
    uint64_t metadata_limit; /* the most real memory the arena metadata
                              * (66 KiB per 64 MiB arena on linux/amd64,
                              * plus the arena index) may take; growth
                              * past it is GA_ENOMEM.  0 = no limit; the
                              * default is half the machine's RAM */
} ga_options;

/* ga_options_init sets Go's defaults: linux/amd64, os backing, one P,
 * release go1.13.8 and the scavenger goal that release has before its
 * first GC, which goalloc (no GC) keeps: 0; metadata_limit is half the
 * machine's physical memory (ga_default_metadata_limit). */
void ga_options_init(ga_options *o);
/* ga_default_metadata_limit: half the machine's physical memory (0 if
 * the OS does not say), so that a heap refuses a growth whose metadata
 * would make the machine swap. */
uint64_t ga_default_metadata_limit(void);
/* ga_options_set_release selects release r and the scavenger goal Go
 * has with it and GOGC=100 (ga_release_scavenge_goal); set scavenge_goal
 * after it to override the goal. */
void ga_options_set_release(ga_options *o, ga_release r);
/* ga_gogc_scavenge_goal is the scavenger goal go1.13.0 has right after
 * gcinit with GOGC=gogc: next_gc (heapminimum = 4 MiB * GOGC/100 bounds
 * it from below) plus 10 %, rounded up to the OS page.  gogc < 0 is
 * GOGC=off, where the goal wraps to about 1.6 EiB and allocations never
 * scavenge. */
uint64_t ga_gogc_scavenge_goal(int gogc);
/* ga_release_scavenge_goal is the goal release r has with GOGC=gogc
 * until a GC completes: go1.13.0's ga_gogc_scavenge_goal(gogc); 0 for
 * go1.13.8, whose gcPaceScavenger sets no goal before the first GC. */
uint64_t ga_release_scavenge_goal(ga_release r, int gogc);
/* ga_release_name is "go1.13.8" or "go1.13.0" (NULL if r is unknown). */
const char *ga_release_name(ga_release r);
/* ga_release_parse reads "go1.13.8", "go1.13.0" or "go1.13" (Go's tag
 * and runtime.Version() for 1.13.0); false for anything else. */
bool ga_release_parse(const char *s, ga_release *out);

typedef struct mheap ga_heap;

/* ga_heap_new runs mallocinit for a fresh heap.  Returns NULL and writes
 * the reason into err (a ValueError-style message when status is
 * GA_EINVAL) on failure. */
ga_heap *ga_heap_new(const ga_options *o, ga_status *status, char *err,
                     size_t errlen);
void ga_heap_free(ga_heap *h);
/* ga_heap_free_keep_mappings frees h but leaves its heap memory mapped
 * (for memory views that outlive the heap); the caller owns *ranges and
 * gives them to ga_unmap_ranges when the last view is gone. */
void ga_heap_free_keep_mappings(ga_heap *h, mem_range **ranges, size_t *n);
/* ga_unmap_ranges unmaps (os backing) and frees the ranges a heap left
 * mapped (ga_heap_free_keep_mappings). */
void ga_unmap_ranges(mem_range *ranges, size_t n);

/* ga_malloc allocates size bytes through P p (mallocgc).  size 0 yields
 * the heap's zerobase address.  GA_EBADP when p is not a P of h,
 * GA_ETOOLARGE when size exceeds maxAlloc (h's p is checked first),
 * GA_ENOMEM when the heap cannot grow; nothing changes then. */
ga_status ga_malloc(ga_heap *h, int p, uint64_t size, bool noscan,
                    ga_addr *out);
/* ga_malloc_check makes ga_malloc's checks of its arguments alone and
 * returns the status ga_malloc would refuse them with (GA_EPOISONED,
 * GA_EBADP, GA_ETOOLARGE), or GA_OK: for a caller that must refuse a
 * whole batch before it allocates any of it. */
ga_status ga_malloc_check(ga_heap *h, int p, uint64_t size);
/* ga_alloc is ga_malloc for C programs on the os backing: a pointer, or
 * NULL on any failure. */
void *ga_alloc(ga_heap *h, int p, size_t size, bool noscan);
/* ga_calloc is ga_malloc for calloc on a zero_on_request heap: the
 * object's size bytes are zeroed when its span may hold old data
 * (needzero), and left alone when the span is known zero (fresh from
 * the OS).  On any other heap it is ga_malloc, which zeroes as Go does. */
ga_status ga_calloc(ga_heap *h, int p, uint64_t size, bool noscan,
                    ga_addr *out);
/* ga_usable_size is malloc_usable_size: the bytes of the slot of the
 * live object that starts at addr (elemsize; a large object's whole
 * span), without a lock.  The caller owns the object, as malloc's
 * contract asks, so the span cannot change meanwhile; an address that
 * starts no slot is GA_ENOTOBJECT, one outside the arenas GA_EFOREIGN,
 * and the zerobase has 0 bytes.  Whether the slot is live is not
 * checked (ga_free_p checks it); a tiny object's size is
 * ga_object_extent's. */
ga_status ga_usable_size(ga_heap *h, ga_addr addr, uint64_t *size);
/* ga_free frees the object that starts at addr (design §6.1), from any
 * thread: a small object under its size class's mcentral lock, anything
 * else (large objects, errors) under the heap lock. */
ga_status ga_free(ga_heap *h, ga_addr addr);
/* ga_free_p is ga_free by a thread running as P p: a slot of a span p's
 * mcache holds is freed without a lock (Go's fast paths stay per P).
 * p may be GA_NO_P (= ga_free) or GA_ALL_PS: the caller runs as every P
 * at once, because no other call on the heap runs meanwhile (the Python
 * binding, replay); any other p outside the heap's Ps is GA_EBADP. */
#define GA_NO_P (-1)
#define GA_ALL_PS (-2)
ga_status ga_free_p(ga_heap *h, int p, ga_addr addr);
/* ga_flush releases every P's cached spans and tiny block (Go's
 * flushallmcaches, as ReadMemStats and a GC do). */
ga_status ga_flush(ga_heap *h);
/* ga_scavenge returns up to nbytes of free memory to the OS, top-down
 * (mheap.scavengeLocked); UINT64_MAX means all (scavengeAll). */
ga_status ga_scavenge(ga_heap *h, uint64_t nbytes, uint64_t *released);

/* ---- GC mode (design §14) ----------------------------------------- */

/* ga_drop: the program drops its last reference to the object at addr
 * (GC mode).  It stays allocated until a cycle finds it unreachable and
 * a sweep frees its slot.  GA_EFOREIGN, GA_ENOTOBJECT, GA_EDOUBLEFREE
 * (dropped already, or collected) as ga_free; GA_EUNSUPPORTED on an
 * explicit-free heap.  The zero-size address is never an object to
 * drop (GA_ENOTOBJECT). */
ga_status ga_drop(ga_heap *h, ga_addr addr);
/* ga_gc is runtime.GC: a whole cycle, then every span swept.
 * GA_EUNSUPPORTED on an explicit-free heap. */
ga_status ga_gc(ga_heap *h);
/* ga_free_os_memory is debug.FreeOSMemory: ga_gc, then every free page
 * back to the OS.  GA_EUNSUPPORTED on an explicit-free heap. */
ga_status ga_free_os_memory(ga_heap *h);
/* ga_set_gc_percent is debug.SetGCPercent: GOGC becomes gogc (< 0:
 * off), *old gets the previous value; the pacing is redone at once. */
ga_status ga_set_gc_percent(ga_heap *h, int gogc, int *old);

/* ---- Go's size classes -------------------------------------------- */

/* One row of Go 1.13's size-class table (sizeclasses.go); class 0 stands
 * for large objects. */
typedef struct ga_size_class {
    uint64_t size;    /* object size (class_to_size) */
    uint64_t npages;  /* pages per span (class_to_allocnpages) */
    uint64_t objects; /* objects per span (0 for class 0) */
    uint64_t tail;    /* bytes of a span after its last object */
    /* the division magic that turns an offset into an object index */
    unsigned div_shift;
    unsigned div_shift2;
    unsigned div_mul;
    unsigned base_mask;
} ga_size_class;

/* ga_size_class_get fills *out with class c's row; false when c is not
 * a class (0 <= c < NUM_SIZE_CLASSES). */
bool ga_size_class_get(int c, ga_size_class *out);
/* ga_size_to_class is mallocgc's lookup: the size class of a request of
 * size bytes, 1 <= size <= MAX_SMALL_SIZE; 0 (large) for any other. */
int ga_size_to_class(uint64_t size);

/* ---- Introspection ------------------------------------------------ */

typedef struct ga_mem_stats {
#define GA_X(name, doc) uint64_t name;
    MSTATS_FIELDS(GA_X)
#undef GA_X
    struct {
        uint64_t size;
        uint64_t mallocs;
        uint64_t frees;
    } by_size[NUM_SIZE_CLASSES];
} ga_mem_stats;

/* ga_read_mem_stats fills *out as ReadMemStats does.  Go flushes every
 * mcache first; goalloc counts the slots cached spans have not handed
 * out instead, which gives the same numbers and leaves the caches as they
 * were (ga_flush flushes them). */
ga_status ga_read_mem_stats(ga_heap *h, ga_mem_stats *out);

/* ---- Records -------------------------------------------------------
 *
 * Each record the facade hands out is defined once, as a list
 * X(name, kind, doc) of its fields: the C struct is made from it, and so
 * are the binding's Python values of it and the field lists that
 * goalloc._core exports (SPAN_FIELDS, ...), from which the Python
 * package derives its records, NumPy dtypes and snapshot schema, or
 * against which a test checks them.  kind picks the field's C type
 * (GA_FIELD_TYPE_<kind>) and the Python value the binding makes of it
 * (the comment on each).
 */
#define GA_FIELD_TYPE_U64 uint64_t       /* int */
#define GA_FIELD_TYPE_ADDR ga_addr       /* int, an address */
#define GA_FIELD_TYPE_INT int            /* int */
#define GA_FIELD_TYPE_UINT unsigned      /* int */
#define GA_FIELD_TYPE_BOOL bool          /* bool */
#define GA_FIELD_TYPE_STR const char *   /* str */
#define GA_FIELD_TYPE_STATE int          /* str: a GA_SPAN_STATES name */
#define GA_FIELD_TYPE_BACKING ga_backing /* str: "os" or "virtual" */
#define GA_FIELD_TYPE_RELEASE ga_release /* str: ga_release_name */
#define GA_FIELD_TYPE_F64 double         /* float */
/* GA_FIELD declares a field of a record's struct. */
#define GA_FIELD(name, kind, doc) GA_FIELD_TYPE_##kind name;

/* X(name, value): the states of ga_span_info.state, Go's mSpanState
 * (the core's mspan_state has these values). */
#define GA_SPAN_STATES(X)                                                     \
    X(dead, 0)                                                                \
    X(inuse, 1)                                                               \
    X(manual, 2)                                                              \
    X(free, 3)

/* Go's arenaHint: where the heap tries to grow next. */
#define GA_HINT_FIELDS(X)                                                     \
    X(addr, ADDR, "where the next arena is tried")                            \
    X(down, BOOL, "the arena goes below addr (32-bit and collisions)")

typedef struct ga_hint_info {
    GA_HINT_FIELDS(GA_FIELD)
} ga_hint_info;

/* A mapped arena, an entry of Go's mheap_.allArenas. */
#define GA_ARENA_FIELDS(X)                                                    \
    X(base, ADDR, "first address of the arena")                               \
    X(index, U64, "Go's arenaIdx: (base + arenaBaseOffset) / heapArenaBytes") \
    X(l1, U64, "index into the arena map's first level (arenaIdx.l1)")        \
    X(l2, U64, "index into the arena map's second level (arenaIdx.l2)")

typedef struct ga_arena_info {
    GA_ARENA_FIELDS(GA_FIELD)
} ga_arena_info;

/* An mspan.  A span that is not in use reports 0 (false) for everything
 * from spanclass to limit. */
#define GA_SPAN_FIELDS(X)                                                     \
    X(base, ADDR, "first address of the span (startAddr)")                    \
    X(npages, U64, "length in 8 KiB pages")                                   \
    X(state, STATE, "mSpanState: inuse, free or manual")                      \
    X(scavenged, BOOL, "a free span whose pages went back to the OS")         \
    X(spanclass, INT, "sizeclass << 1 | noscan; 0 for a large object")        \
    X(sizeclass, INT, "the size class, 0 for a large object")                 \
    X(noscan, BOOL, "its objects hold no pointers")                           \
    X(elemsize, U64, "bytes of each object")                                  \
    X(nelems, U64, "objects the span holds")                                  \
    X(alloc_count, U64, "objects allocated (allocCount)")                     \
    X(freeindex, U64, "slot where the search for a free slot resumes")        \
    X(limit, ADDR, "end of the span's objects")                               \
    X(needzero, BOOL, "its memory must be zeroed before it is handed out")    \
    X(sweepgen, U64,                                                          \
      "Go's sweepgen, against the heap's sg (gc_state): sg-2 unswept, sg-1 "  \
      "being swept, sg swept, sg+1 cached since before the sweep, sg+3 "      \
      "cached")

typedef struct ga_span_info {
    GA_SPAN_FIELDS(GA_FIELD)
} ga_span_info;

/* Each list call writes at most cap records and returns how many exist,
 * so a caller can size its buffer and call again. */
size_t ga_hints(ga_heap *h, ga_hint_info *out, size_t cap);
size_t ga_arenas(ga_heap *h, ga_arena_info *out, size_t cap);
size_t ga_spans(ga_heap *h, ga_span_info *out, size_t cap);
/* ga_span_of is Go's spanOf: the span whose page holds addr, if the
 * address is in a mapped arena.  Free spans' interior pages are reported
 * through the span that covers them. */
bool ga_span_of(ga_heap *h, ga_addr addr, ga_span_info *out);

/* ga_central_spans lists the span bases on mcentral spc's nonempty
 * (which == 0) or empty (which == 1) list, in list order. */
size_t ga_central_spans(ga_heap *h, int spc, int which, ga_addr *out,
                        size_t cap);
/* An mcentral's counters (its span lists: ga_central_spans). */
#define GA_CENTRAL_FIELDS(X)                                                  \
    X(nmalloc, U64,                                                           \
      "objects allocated, as Go keeps it: a span's free "                     \
      "slots count as allocated while an mcache holds it")                    \
    X(nsmallfree, U64, "objects freed")

typedef struct ga_central_info {
    GA_CENTRAL_FIELDS(GA_FIELD)
} ga_central_info;
void ga_central_info_get(ga_heap *h, int spc, ga_central_info *out);

/* A P's mcache (its cached spans: ga_cache_info.alloc). */
#define GA_CACHE_FIELDS(X)                                                    \
    X(tiny, ADDR, "the current 16-byte tiny block, 0 if none")                \
    X(tinyoffset, U64, "the first free byte of the tiny block")               \
    X(local_tinyallocs, U64,                                                  \
      "tiny requests packed into a block since this P last took a span "      \
      "(Go's alloc_m moves them into memstats.tinyallocs) or since flush")

typedef struct ga_cache_info {
    GA_CACHE_FIELDS(GA_FIELD)
    ga_addr alloc[NUM_SPAN_CLASSES]; /* span base, 0 = emptymspan */
} ga_cache_info;
/* ga_cache_info_get describes P p's mcache; false if p is out of range. */
bool ga_cache_info_get(ga_heap *h, int p, ga_cache_info *out);

/* Slot states reported by ga_span_objects. */
enum {
    GA_SLOT_FREE = 0,    /* free: the allocator may hand it out */
    GA_SLOT_LIVE = 1,    /* allocated and not freed */
    GA_SLOT_FREED = 2,   /* freed, reusable once the span is swept */
    GA_SLOT_DROPPED = 3, /* GC mode: dropped, not yet collected */
};
/* ga_span_objects writes one state per slot of the in-use span starting
 * at base and returns nelems; 0 (nothing written) if there is no such
 * span.  Tiny marks, if out_marks is not NULL, get the live-offset mask
 * of each 16-byte block. */
size_t ga_span_objects(ga_heap *h, ga_addr base, uint8_t *out,
                       uint16_t *out_marks, size_t cap);

/* ga_object_extent finds the live object that starts at addr and its
 * usable size (elemsize; for large objects up to limit; for tiny objects
 * the requested size, as the rest of the block may go to others).
 * GA_EFOREIGN outside the heap's arenas, GA_ENOTOBJECT for any other
 * address that starts no live object. */
ga_status ga_object_extent(ga_heap *h, ga_addr addr, uint64_t *size);

/* The platform and options a heap models, and the state of its page
 * heap that no other record shows. */
#define GA_HEAP_INFO_FIELDS(X)                                                \
    X(goos, STR, "the Go platform's GOOS")                                    \
    X(goarch, STR, "the Go platform's GOARCH")                                \
    X(race, BOOL, "race-detector hint layout")                                \
    X(backing, BACKING, "os (real mappings) or virtual (simulated)")          \
    X(procs, INT, "number of Ps, each with its mcache")                       \
    X(ptr_size, UINT, "bytes of a pointer")                                   \
    X(page_size, U64, "Go's _PageSize")                                       \
    X(heap_arena_bytes, U64, "bytes of an arena")                             \
    X(phys_page_size, U64, "the OS page size")                                \
    X(phys_huge_page_size, U64, "the OS huge page size, 0 if none")           \
    X(max_alloc, U64, "the largest request mallocgc takes (maxAlloc)")        \
    X(arena_l1_bits, UINT, "bits of the arena map's first level")             \
    X(arena_l2_bits, UINT, "bits of the arena map's second level")            \
    X(arena_base_offset, ADDR, "arenaBaseOffset")                             \
    X(zerobase, ADDR, "the address of every zero-byte object")                \
    X(pages_in_use, U64, "pages of in-use spans (pagesInUse)")                \
    X(scavenge_goal, U64, "retained bytes above which growth scavenges")      \
    X(unscav_huge_pages, U64,                                                 \
      "huge pages of free spans not scavenged (free.unscavHugePages)")        \
    X(nallspans, U64, "mspan structs ever created (allspans)")                \
    X(release, RELEASE, "whose page heap: go1.13.8 or go1.13.0")              \
    /* go1.13.8's curArena: [base, end) is mapped, counted in heap_sys,       \
     * heap_idle and heap_released, and not yet a span (base == end: no       \
     * such room; always so for go1.13.0) */                                  \
    X(cur_arena_base, ADDR, "start of curArena (go1.13.8)")                   \
    X(cur_arena_end, ADDR, "end of curArena (go1.13.8)")                      \
    X(metadata_bytes, U64,                                                    \
      "real memory taken by the arena metadata (heap_arena structs with "     \
      "their span maps and page bits, the arena index's L2 maps)")            \
    X(metadata_limit, U64, "the limit of metadata_bytes, 0 for none")         \
    /* goalloc's own metadata, which no MemStats field counts (Go has none    \
     * of it) */                                                              \
    X(span_meta_bytes, U64,                                                   \
      "per small span: the alloc, freed and used bitmaps and the requested "  \
      "sizes (the alloc bitmap, Go's gcBits, also counts in gc_sys)")         \
    X(tiny_meta_bytes, U64,                                                   \
      "the tiny class's block marks: 6 bytes per slot of each span that "     \
      "has served a tiny block")

typedef struct ga_heap_info {
    GA_HEAP_INFO_FIELDS(GA_FIELD)
} ga_heap_info;

void ga_heap_info_get(ga_heap *h, ga_heap_info *out);

/* The collector's state (GC mode; an explicit-free heap reports the
 * pacing Go has before its first cycle). */
#define GA_GC_STATE_FIELDS(X)                                                 \
    X(enabled, BOOL, "the heap runs Go's collector (collector='gc')")         \
    X(gogc, INT, "GOGC; -1 is off")                                           \
    X(phase, STR,                                                             \
      "off: swept; sweep: the last cycle's spans are being swept (Go's "      \
      "gcphase is _GCoff in both; a cycle runs within one call)")             \
    X(sweepgen, U64, "mheap_.sweepgen: +2 per cycle")                         \
    X(heap_live, U64, "bytes Go counts live for pacing (heap_live)")          \
    X(heap_marked, U64, "bytes marked by the last cycle (heap_marked)")       \
    X(gc_trigger, U64, "heap_live at which the next cycle starts")            \
    X(next_gc, U64, "the heap goal (next_gc)")                                \
    X(trigger_ratio, F64, "the pacer's trigger ratio (triggerRatio)")         \
    X(heapminimum, U64, "the trigger's floor: 4 MiB * GOGC/100")              \
    X(pages_swept, U64, "pages swept in this sweep phase (pagesSwept)")       \
    X(pages_in_use, U64, "pages of in-use spans (pagesInUse)")                \
    X(sweep_pages_per_byte, F64,                                              \
      "proportional sweep: pages to sweep per byte allocated")                \
    X(reclaim_credit, U64, "pages the reclaimer freed beyond what was asked") \
    X(scavenge_goal, U64,                                                     \
      "retained bytes above which growth scavenges (gcPaceScavenger)")        \
    X(heap_retained, U64, "heap_sys - heap_released")                         \
    X(scavenge_bytes_per_ns, F64,                                             \
      "the background scavenger's pace (0: parked), design §14.11")           \
    X(num_gc, U64, "completed cycles")                                        \
    X(background_sweep, INT,                                                  \
      "background sweeper: -1 sweeps all after each cycle, K spans per "      \
      "refill or large allocation")                                           \
    X(clock_ns, U64, "the simulated clock: 1 s + one ns per byte requested")

typedef struct ga_gc_state {
    GA_GC_STATE_FIELDS(GA_FIELD)
} ga_gc_state;
void ga_gc_state_get(ga_heap *h, ga_gc_state *out);

/* One completed cycle. */
#define GA_GC_CYCLE_FIELDS(X)                                                 \
    X(num, U64, "the cycle's number (NumGC once it ended)")                   \
    X(forced, BOOL, "started by gc() (runtime.GC), not by the heap trigger")  \
    X(heap_live_trigger, U64, "heap_live when it started")                    \
    X(gc_trigger, U64, "the trigger in force when it started")                \
    X(heap_marked, U64, "bytes it marked")                                    \
    X(next_gc, U64, "the goal it set")                                        \
    X(next_trigger, U64, "the trigger it set")                                \
    X(trigger_ratio, F64, "the trigger ratio it set")                         \
    X(pages_swept, U64, "pages swept in the sweep phase before it started")   \
    X(heap_released, U64,                                                     \
      "bytes the scavenger released between the previous cycle and its end")  \
    X(clock_ns, U64, "the simulated clock at its end (LastGC)")

typedef struct ga_gc_cycle {
    GA_GC_CYCLE_FIELDS(GA_FIELD)
} ga_gc_cycle;
/* ga_gc_cycles writes up to cap records, oldest first; returns how many
 * cycles have completed. */
size_t ga_gc_cycles(ga_heap *h, ga_gc_cycle *out, size_t cap);

/* ga_verify walks every invariant that applies (design §11) and returns
 * false with a message naming the first broken one. */
bool ga_verify(ga_heap *h, char *msg, size_t msglen);

/* ga_digest is a cheap 64-bit hash of all allocator metadata: hints,
 * arenas, every span with its slot bitmaps and tiny marks, the mcentral
 * lists, every mcache and the statistics.  Two heaps (or one heap at two
 * moments) with equal digests are, for every introspection call, equal. */
uint64_t ga_digest(ga_heap *h);

/* ga_poisoned returns the throw message if the heap is poisoned. */
const char *ga_poisoned(ga_heap *h);
/* ga_oom_reason says why the heap last refused to grow (GA_ENOMEM): a
 * static string, or NULL if it never did.  With several threads it may
 * name another thread's refusal. */
const char *ga_oom_reason(ga_heap *h);

/* ---- Experiments ---------------------------------------------------- */

/* The counters fragmentation metrics are computed from (one Timeline
 * sample).  requested_live is what callers asked for, summed over live
 * objects; heap_alloc is what they got (size-class rounded). */
#define GA_COUNTER_FIELDS(X)                                                  \
    X(heap_alloc, U64, "bytes of live objects, size-class rounded")           \
    X(heap_inuse, U64, "bytes of in-use spans")                               \
    X(heap_idle, U64, "bytes of free spans (and of curArena)")                \
    X(heap_released, U64, "idle bytes returned to the OS")                    \
    X(heap_sys, U64, "bytes of mapped arenas")                                \
    X(live_objects, U64, "live objects (heap_objects)")                       \
    X(requested_live, U64, "bytes requested by live objects")                 \
    X(largest_free, U64,                                                      \
      "bytes of the largest free span, or of the rest of go1.13.8's "         \
      "curArena if that is larger (it takes such a request without new "      \
      "address space alike)")                                                 \
    X(heap_live, U64, "the pacer's heap_live (GC mode; design §14)")          \
    X(heap_marked, U64, "bytes the last GC cycle marked")                     \
    X(gc_trigger, U64, "heap_live at which the next cycle starts")            \
    X(next_gc, U64, "the heap goal")                                          \
    X(num_gc, U64, "completed GC cycles")

typedef struct ga_heap_counters {
    GA_COUNTER_FIELDS(GA_FIELD)
} ga_heap_counters;

ga_status ga_heap_counters_get(ga_heap *h, ga_heap_counters *out);

/* Bulk views, for plots of large heaps: a live object. */
#define GA_LIVE_OBJECT_FIELDS(X)                                              \
    X(addr, ADDR, "where the object starts")                                  \
    X(size, U64,                                                              \
      "usable bytes: elemsize, limit - addr if large, the "                   \
      "requested size for tiny objects")                                      \
    X(requested, U64, "bytes the caller asked for")                           \
    X(spanclass, U64, "the span class of its span (0: large)")                \
    X(dropped, U64,                                                           \
      "1: GC mode, the program dropped it and no sweep has freed it yet")

typedef struct ga_live_object {
    GA_LIVE_OBJECT_FIELDS(GA_FIELD)
} ga_live_object;
/* ga_live_objects lists live objects in address order (tiny objects
 * one by one), and on a GC-mode heap the dropped ones that are still
 * allocated (flagged); returns how many exist. */
size_t ga_live_objects(ga_heap *h, ga_live_object *out, size_t cap);

/* Page codes of ga_page_map. */
enum {
    GA_PAGE_FREE = -1,     /* free, backed by memory */
    GA_PAGE_RELEASED = -2, /* free and released to the OS, or the
                            * rest of go1.13.8's curArena (mapped,
                            * counted idle and released, no span yet) */
    GA_PAGE_MANUAL = -3,
    GA_PAGE_LARGE = 0, /* in a large object's span */
    /* 1..66: in a span of that size class */
};
/* ga_page_map writes one code per page of every mapped arena, arenas in
 * address order; returns the number of pages. */
size_t ga_page_map(ga_heap *h, int16_t *out, size_t cap);

/* A trace as parallel columns: op i allocates (kind 0) size[i] bytes as
 * object id[i] through P p[i], or frees (kind 1) object id[i]. */
enum { GA_OP_ALLOC = 0, GA_OP_FREE = 1 };
typedef struct ga_trace_view {
    size_t n;
    const uint8_t *kind;
    const uint64_t *id;
    const uint64_t *size;
    const uint8_t *noscan;
    const uint16_t *p;
} ga_trace_view;

/* X(name, what): why a replay stopped early, GA_REPLAY_<name>. */
#define GA_REPLAY_REASONS(X)                                                  \
    X(OK, "every op applied")                                                 \
    X(BAD_KIND, "kind is neither alloc nor free")                             \
    X(UNKNOWN_ID, "free of an id that is not live")                           \
    X(LIVE_ID, "alloc of an id that is still live")                           \
    X(ID_RANGE, "id out of range")                                            \
    X(ALLOC_FAILED, "allocation failed") /* ga_malloc's status says why */    \
    X(FREE_FAILED, "free failed")        /* ga_free's status says why */

enum {
#define GA_X(name, what) GA_REPLAY_##name,
    GA_REPLAY_REASONS(GA_X)
#undef GA_X
};

typedef struct ga_replay_state {
    uint64_t nids;
    ga_addr *addr_of; /* per id: the address of its latest allocation */
    uint8_t *live;    /* per id: 1 while allocated */
} ga_replay_state;

typedef struct ga_replay_result {
    size_t next;      /* index of the first op not applied */
    int reason;       /* GA_REPLAY_* */
    ga_status status; /* the facade's status when reason says so */
    size_t nsamples;  /* samples written */
} ga_replay_result;

/* ga_replay applies ops [start, stop) of t in C.  After op k it samples
 * the counters when (k + 1) % sample_every == 0 (sample_every > 0), and
 * after op stop-1 when sample_last; samples go to samples[] with the op
 * index in sample_ops[], at most sample_cap of them.  It stops at the
 * first bad op, which is not applied: the heap stays consistent. */
void ga_replay(ga_heap *h, const ga_trace_view *t, size_t start, size_t stop,
               uint64_t sample_every, bool sample_last, ga_replay_state *st,
               ga_heap_counters *samples, uint64_t *sample_ops,
               size_t sample_cap, ga_replay_result *res);

/* ---- Fault injection (tests, notebooks) --------------------------- */

/* ga_block_range makes [addr, addr+len) unavailable to the heap, as if
 * another mapping were there (Go's MapNextArenaHint). */
ga_status ga_block_range(ga_heap *h, ga_addr addr, uint64_t len);
/* ga_fail_reserves makes the next n OS reservations fail (virtual). */
ga_status ga_fail_reserves(ga_heap *h, int n);
/* ga_fail_metadata makes the n-th allocation of heap metadata from now
 * on fail, as if the process were out of memory (heap_arenas, arena
 * index maps, fixalloc chunks, span bitmaps, range sets; either
 * backing); 0 disarms it.  The call that hits it returns GA_ENOMEM and
 * leaves the heap as it was. */
ga_status ga_fail_metadata(ga_heap *h, uint64_t n);

/* ---- Hooks for tests ---------------------------------------------- */

/* ga_test_throw makes the heap throw msg, as an internal check would. */
ga_status ga_test_throw(ga_heap *h, const char *msg);

#endif
