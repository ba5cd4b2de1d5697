/* Platforms: the GOOS/GOARCH choices mallocinit depends on.
 *
 * A heap models one Go 1.13 target.  Its platform fixes the pointer size,
 * the heap address bits, the arena size, the two-level arena index, the
 * arena-hint formula and the sizes of Go's metadata structs (which the
 * fixallocs charge to MemStats).
 * Go 1.13: src/runtime/malloc.go (heapAddrBits, maxAlloc,
 *          logHeapArenaBytes, arenaL1Bits, arenaL2Bits, arenaBaseOffset),
 *          mheap.go (heapArena), runtime/internal/sys (GOOS, GOARCH).
 * Differs from Go: constants become per-heap values; struct sizes are
 *          computed from Go's field layouts instead of unsafe.Sizeof.
 * Locking: immutable after platform_init.
 */
#ifndef GA_PLATFORM_H
#define GA_PLATFORM_H

#include "ga.h"

/* Which branch of mallocinit's hint switch a platform takes. */
typedef enum arena_hint_kind {
    HINTS_DARWIN_ARM64,
    HINTS_ARM64,
    HINTS_AIX,
    HINTS_RACE,
    HINTS_DEFAULT,
    HINTS_32BIT,
} arena_hint_kind;

typedef struct platform {
    char goos[16];
    char goarch[16];
    bool race;
    arena_hint_kind hint_kind;

    unsigned ptr_size;             /* sys.PtrSize: 4 or 8 */
    unsigned heap_addr_bits;       /* heapAddrBits */
    unsigned log_heap_arena_bytes; /* logHeapArenaBytes */
    unsigned arena_l1_bits;        /* arenaL1Bits */
    unsigned arena_l2_bits;        /* arenaL2Bits */
    ga_addr arena_base_offset;     /* 2^47 on amd64, else 0 */
    ga_addr heap_arena_bytes;      /* heapArenaBytes */
    uint64_t pages_per_arena;      /* heapArenaBytes / PAGE_SIZE */
    uint64_t max_alloc;            /* maxAlloc: largest allocation */
    ga_addr addr_space_end;        /* end of the user address space */
    uint64_t phys_page_size;       /* physPageSize */
    uint64_t phys_huge_page_size;  /* physHugePageSize (0: none) */
    uint64_t cache_line_size;      /* internal/cpu.CacheLineSize */

    /* unsafe.Sizeof of Go's structs on this platform, for accounting */
    uint64_t sizeof_mspan;
    uint64_t sizeof_mcache;
    uint64_t sizeof_treap_node;
    uint64_t sizeof_arena_hint;
    uint64_t sizeof_heap_arena;
    uint64_t sizeof_special_finalizer;
    uint64_t sizeof_special_profile;
} platform;

/* platform_init fills p for goos/goarch/race.  Returns false and
 * writes a reason into err for an unknown or unsupported platform. */
bool platform_init(platform *p, const char *goos, const char *goarch,
                   bool race, char *err, size_t errlen);

/* arenaIndex and its inverse (arenaBase), modulo 2^64 as in Go. */
static inline uint64_t
arena_index(const platform *p, ga_addr addr)
{
    return (addr + p->arena_base_offset) >> p->log_heap_arena_bytes;
}

static inline ga_addr
arena_base(const platform *p, uint64_t idx)
{
    return (idx << p->log_heap_arena_bytes) - p->arena_base_offset;
}

static inline unsigned
arena_bits(const platform *p)
{
    return p->arena_l1_bits + p->arena_l2_bits;
}

#endif
