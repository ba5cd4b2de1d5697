/* The collector's state, as the allocator sees it.  See mgc.c.
 *
 * A heap made with collector GA_COLLECTOR_GC is driven by Go 1.13's
 * collector cycle: objects the program drops (ga_drop) stay allocated
 * until a cycle finds them unreachable and a sweep frees their slots.
 * This header holds the state that cycle keeps (Go's gcController,
 * memstats' pacing fields, mheap_'s sweep and reclaim fields, work's
 * counters) and the calls the allocator makes into it.  mgc.c runs the
 * cycle and the pacer, mgcmark.c marks, mgcsweep.c sweeps.
 * Go 1.13: src/runtime/mgc.go (gcinit, gcStart, gcMarkTermination,
 *          gcSetTriggerRatio, gcControllerState), mgcsweep.go, mheap.go
 *          (sweepgen, sweepdone, pagesSwept, reclaimIndex).
 * Differs from Go: the cycle runs atomically where it starts (design
 *          §14.2): what Go does with GODEBUG=gcstoptheworld=1.
 * Locking: a heap in GC mode is driven by one thread at a time (design
 *          §14.8); the state below is read and written by that thread.
 */
#ifndef GA_MGC_H
#define GA_MGC_H

#include "goalloc.h"

struct mheap;
struct mspan;
struct mcache;

/* Go's gcSweepBuf, as an intrusive LIFO stack through mspan.sweep_link
 * (design §14.5): swept in-use spans of this cycle, or the unswept ones
 * of the last.  The accounting fields model Go's blocks and spine. */
typedef struct gc_sweep_buf {
    struct mspan *top;
    uint64_t index;     /* entries pushed and not popped */
    uint64_t spine_len; /* blocks of 512 entries ever made */
    uint64_t spine_cap;
} gc_sweep_buf;

/* Go's gcBitsArenas, accounted (design §14.6): the 64 KiB arenas that
 * mark and alloc bits come from, by epoch.  The bits themselves live in
 * each span's block; these counts give GCSys as Go's would be. */
typedef struct gc_bits_arenas {
    uint64_t next;     /* arenas that this sweep phase takes bits from */
    uint64_t current;  /* the arenas of the current mark bits */
    uint64_t previous; /* the arenas of the allocation bits before */
    uint64_t free;     /* arenas to reuse before asking the OS */
} gc_bits_arenas;

typedef struct gcstate {
    bool enabled;      /* collector GA_COLLECTOR_GC */
    int64_t gcpercent; /* GOGC; -1 = off */
    int64_t bgsweep;   /* spans the background sweeper sweeps per call; -1:
                        * all of them right after each cycle (design
                        * §14.4) */
    uint64_t heapminimum;
    double trigger_ratio;
    uint64_t gc_trigger;
    uint64_t next_gc;
    uint64_t heap_marked;
    uint64_t last_next_gc; /* go1.13.8's gcPaceScavenger inputs */
    uint64_t last_heap_inuse;
    uint64_t bytes_marked; /* work.bytesMarked of the running cycle */
    bool running;          /* a cycle is in progress (no re-entry) */

    /* sweeping (mheap_) */
    bool sweepdone;
    uint64_t pages_swept;
    double sweep_pages_per_byte;
    uint64_t sweep_heap_live_basis;
    uint64_t pages_swept_basis;
    uint64_t reclaim_index; /* next page of allArenas to reclaim; 1<<63
                             * once past the end */
    uint64_t reclaim_credit;
    gc_sweep_buf sweep_spans[2];
    gc_bits_arenas bits;

    /* the background scavenger's pacing (gcPaceScavenger, bgscavenge;
     * design §14.11), on the simulated clock */
    bool bgscavenge;              /* the option: it runs (GC mode) */
    double scavenge_bytes_per_ns; /* 0: parked */
    uint64_t scavenge_retained_basis;
    uint64_t scavenge_time_basis;

    /* statistics */
    uint64_t numgc;
    uint64_t numforcedgc;
    uint64_t last_gc_ns;
    uint64_t pause_total_ns;
    uint64_t nbgsweep; /* spans swept by gcStart and the background */
    uint64_t scavenged_at_cycle; /* mheap.scavenged_total at the last
                                  * cycle's end */
    ga_gc_cycle *cycles;         /* the completed cycles' records */
    uint64_t ncycles;
    uint64_t cycles_cap;
} gcstate;

/* gc_init is gcinit: pacing for GOGC=gcpercent before the first cycle
 * (sweep done, heap_marked faked from heapminimum). */
void gc_init(struct mheap *h, int64_t gcpercent);
/* gc_initial_next_gc: next_gc after gcinit with GOGC=gcpercent. */
uint64_t gc_initial_next_gc(int64_t gcpercent);

/* gc_after_slow_alloc is mallocgc's epilogue in GC mode, after an
 * allocation that refilled an mcache or was large: the background
 * sweeper's share (design §14.4), then the trigger test: a cycle starts
 * when heap_live has reached gc_trigger.  May throw. */
void gc_after_slow_alloc(struct mheap *h);

/* gc_background_scavenge is bgscavenge's work up to now on the
 * simulated clock: it releases what its pace says should be gone by now
 * (design §14.11).  Called after each slow-path allocation. */
void gc_background_scavenge(struct mheap *h);

/* gc_clock_ns: the simulated clock (design §14.7): 1 s, plus one
 * nanosecond per byte the program has asked for. */
uint64_t gc_clock_ns(const struct mheap *h);

/* ---- mgcmark.c ------------------------------------------------------ */

/* gc_mark marks every object the program has not dropped and each P's
 * tiny block (gcMarkTinyAllocs), all at once; returns the bytes marked
 * (work.bytesMarked). */
uint64_t gc_mark(struct mheap *h);

/* ---- mgcsweepbuf.c ------------------------------------------------ */

/* sweep_buf_of: sweepSpans[sg/2%2] holds this cycle's swept in-use
 * spans, the other the last cycle's unswept ones. */
gc_sweep_buf *sweep_buf_of(struct mheap *h, bool unswept);
/* sweep_buf_push_locked is gcSweepBuf.push onto this cycle's swept
 * stack: its blocks' cost in gc_sys, and (GC mode) the link.  The heap
 * lock is held. */
void sweep_buf_push_locked(struct mheap *h, struct mspan *s);
/* sweep_buf_pop takes the top of the unswept stack, NULL if empty. */
struct mspan *sweep_buf_pop(struct mheap *h);

/* ---- mgcsweep.c --------------------------------------------------- */

/* sweep_span is (*mspan).sweep for a span at sg - 1 (the caller won it
 * from sg - 2).  preserve: cacheSpan holds the span, which must not go
 * back to the heap.  Returns whether it went back to the heap. */
bool sweep_span(struct mheap *h, struct mspan *s, bool preserve);
/* sweep_claim: s needs sweeping (sg - 2) and is now the caller's
 * (sg - 1): Go's CAS. */
bool sweep_claim(struct mheap *h, struct mspan *s);
/* sweepone sweeps one span off the unswept stack: its pages if it went
 * back to the heap, 0 if not, UINT64_MAX when none is left. */
uint64_t sweepone(struct mheap *h);
/* finish_sweep is finishsweep_m: sweep every span left. */
void finish_sweep(struct mheap *h);
/* deduct_sweep_credit: proportional sweep before taking span_bytes of
 * new spans (deductSweepCredit). */
void deduct_sweep_credit(struct mheap *h, uint64_t span_bytes,
                         uint64_t caller_pages);
/* mheap_reclaim: sweep until npages pages went back to the heap, or no
 * span is left to try (mheap.reclaim), before a span allocation. */
void mheap_reclaim(struct mheap *h, uint64_t npages);
/* gc_background_sweep: the background sweeper's share after a public
 * call (design §14.4). */
void gc_background_sweep(struct mheap *h);
#endif
