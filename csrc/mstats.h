/* Memory statistics.  See malloc.c for the overview.
 *
 * mstats holds the counters the allocator updates as it goes (Go's
 * memstats); ga_read_mem_stats turns them into Go's MemStats, computing
 * the derived fields exactly as updatememstats does.  MSTATS_FIELDS is
 * the one list of MemStats' scalar fields: it expands to the public C
 * struct, the binding's dict and, through a test, the Python dataclass.
 * Go 1.13: src/runtime/mstats.go (mstats, MemStats, updatememstats,
 *          readmemstats_m).
 * Differs from Go: by_size reports all 67 classes (Go: 61); the GC
 *          fields come from the collector (GC mode; an explicit-free heap
 *          reports Go's values before its first cycle); the clock and
 *          pauses are simulated (design §14.7), PauseNs, PauseEnd and
 *          GCCPUFraction are left out.
 * Locking: the heap lock guards mstats.
 */
#ifndef GA_MSTATS_H
#define GA_MSTATS_H

#include "ga.h"

/* X(name, doc): MemStats' scalar fields, in Go's order. */
#define MSTATS_FIELDS(X)                                                      \
    X(alloc, "bytes of allocated heap objects (= heap_alloc)")                \
    X(total_alloc, "cumulative bytes allocated for heap objects")             \
    X(sys, "total bytes obtained from the OS")                                \
    X(lookups, "pointer lookups by the runtime (always 0)")                   \
    X(mallocs, "cumulative count of heap objects allocated")                  \
    X(frees, "cumulative count of heap objects freed")                        \
    X(heap_alloc, "bytes of allocated heap objects")                          \
    X(heap_sys, "bytes of heap memory obtained from the OS")                  \
    X(heap_idle, "bytes in idle (unused) spans")                              \
    X(heap_inuse, "bytes in in-use spans")                                    \
    X(heap_released, "bytes of physical memory returned to the OS")           \
    X(heap_objects, "number of allocated heap objects")                       \
    X(stack_inuse, "bytes in stack spans")                                    \
    X(stack_sys, "bytes of stack memory obtained from the OS")                \
    X(mspan_inuse, "bytes of allocated mspan structures")                     \
    X(mspan_sys, "bytes obtained from the OS for mspan structures")           \
    X(mcache_inuse, "bytes of allocated mcache structures")                   \
    X(mcache_sys, "bytes obtained from the OS for mcache structures")         \
    X(buck_hash_sys, "bytes of profiling bucket hash tables")                 \
    X(gc_sys, "bytes of garbage collection metadata")                         \
    X(other_sys, "bytes of miscellaneous off-heap runtime allocations")       \
    X(next_gc, "the heap size the next GC cycle aims for")                    \
    X(last_gc, "when the last cycle ended, simulated ns (0: none yet)")       \
    X(pause_total_ns, "stop-the-world pause, simulated ns (always 0)")        \
    X(num_gc, "completed GC cycles")                                          \
    X(num_forced_gc, "GC cycles the program forced (gc())")

/* The counters the allocator keeps up to date (Go's mstats). */
typedef struct mstats {
    uint64_t heap_sys;
    uint64_t heap_inuse;
    uint64_t heap_idle;
    uint64_t heap_released;
    uint64_t heap_objects; /* large objects; recomputed when read */
    uint64_t heap_live;
    uint64_t stacks_inuse;
    uint64_t stacks_sys;
    uint64_t mspan_sys;
    uint64_t mcache_sys;
    uint64_t buckhash_sys;
    uint64_t gc_sys;
    uint64_t other_sys;
    uint64_t tinyallocs;
} mstats;

#endif
