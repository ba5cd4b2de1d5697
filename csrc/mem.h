/* The OS layer: Go's sysReserve/sysMap/sysUsed/sysUnused/sysFree.
 *
 * Heap memory moves through Go's states: None -> Reserved (sys_reserve,
 * address space only) -> Prepared (sys_map, accounted in a MemStats
 * field) -> Ready (sys_used) and back to Prepared (sys_unused, the
 * scavenger's madvise).  Two backends implement it:
 *   os       real mmap/madvise at real addresses (mem_linux.c);
 *   virtual  a simulated address space, deterministic, no memory touched,
 *            with fault injection (mem_sim.c).
 * Go 1.13: src/runtime/mem_linux.go, malloc.go (sysReserveAligned).
 * Differs from Go: sys_reserve reports failure as 0; a "foreign" range
 *          can be blocked to drive the hint-collision paths.
 * Locking: the caller holds the heap lock.
 */
#ifndef GA_MEM_H
#define GA_MEM_H

#include "ga.h"

/* A growable, address-ordered set of disjoint ranges. */
typedef struct mem_range_set {
    mem_range *r;
    size_t n;
    size_t cap;
} mem_range_set;

typedef struct mem_backend {
    ga_backing kind;
    uint64_t phys_page_size;
    ga_addr space_end;      /* end of the modelled user address space */
    ga_addr mmap_top;       /* virtual: where "anywhere" mappings start */
    mem_range_set reserved; /* every range this heap holds */
    mem_range_set blocked;  /* foreign ranges (fault injection) */
    int fail_reserves;      /* virtual: refuse this many sys_reserves */
    uint64_t reserve_calls; /* sys_reserve calls made, for tests */
    uint64_t mapped_bytes;  /* bytes in the Prepared/Ready states */
    uint64_t madvised;      /* bytes passed to sys_unused */
    bool use_madv_free;     /* os: MADV_FREE works here */
} mem_backend;

void mem_init(mem_backend *m, ga_backing kind, uint64_t phys_page_size,
              ga_addr space_end);
/* mem_destroy releases every range the heap still holds. */
void mem_destroy(mem_backend *m);

/* sys_reserve asks for n bytes of address space at v (a hint, as Linux
 * mmap without MAP_FIXED).  Returns the address obtained, which may
 * differ from v, or 0 when the OS refuses. */
ga_addr sys_reserve(mem_backend *m, ga_addr v, uint64_t n);
/* sys_map makes a reserved range usable and adds n to *stat.  Returns
 * false when the OS refuses (Go throws "runtime: out of memory"). */
bool sys_map(mem_backend *m, ga_addr v, uint64_t n, uint64_t *stat);
void sys_used(mem_backend *m, ga_addr v, uint64_t n);
void sys_unused(mem_backend *m, ga_addr v, uint64_t n);
/* sys_free returns [v, v+n) to the OS and takes n from *stat. */
void sys_free(mem_backend *m, ga_addr v, uint64_t n, uint64_t *stat);
/* sys_reserve_aligned reserves size bytes aligned to align; it may hand
 * back size+align bytes when the OS's answer happens to be aligned.
 * Returns 0 on failure; *got receives the size obtained. */
ga_addr sys_reserve_aligned(mem_backend *m, ga_addr v, uint64_t size,
                            uint64_t align, uint64_t *got);

/* mem_host_phys_memory: the machine's physical memory in bytes (0 if
 * the OS does not say). */
uint64_t mem_host_phys_memory(void);
/* mem_host_huge_page_size: the host's transparent huge page size (Go's
 * physHugePageSize, read from /sys as osinit does), 0 if it has none. */
uint64_t mem_host_huge_page_size(void);

/* mem_block marks [addr, addr+len) as taken by someone else: the os
 * backend maps it PROT_NONE, the virtual one records it.  Returns false
 * if the range is already in use. */
bool mem_block(mem_backend *m, ga_addr addr, uint64_t len);

/* linear_alloc is Go's linearAlloc: a bump allocator over a reserved
 * region [next, end) that maps what it hands out (32-bit ports reserve
 * their first arenas and the heapArenas' room this way at mallocinit). */
typedef struct linear_alloc {
    ga_addr next;
    ga_addr mapped;
    ga_addr end;
} linear_alloc;

void linear_alloc_init(linear_alloc *l, ga_addr base, uint64_t size);
/* linear_alloc_peek is where linear_alloc_alloc would put size bytes
 * aligned to align, or 0 when the region is exhausted. */
ga_addr linear_alloc_peek(const linear_alloc *l, uint64_t size,
                          uint64_t align);
/* linear_alloc_alloc bumps size bytes aligned to align and maps what it
 * newly covers, charging stat.  0 when the region is exhausted or the OS
 * will not map it. */
ga_addr linear_alloc_alloc(mem_backend *m, linear_alloc *l, uint64_t size,
                           uint64_t align, uint64_t *stat);

struct meta_alloc;
/* mem_ranges_room makes s hold extra more ranges without growing (its
 * array comes from the heap's metadata allocator, meta).  False, with s
 * unchanged, when the process is out of memory. */
bool mem_ranges_room(mem_range_set *s, size_t extra, struct meta_alloc *meta);

/* Range-set helpers shared by both backends. */
bool mem_ranges_overlap(const mem_range_set *s, ga_addr base, ga_addr end);
bool mem_ranges_add(mem_range_set *s, ga_addr base, ga_addr end);
void mem_ranges_remove(mem_range_set *s, ga_addr base, ga_addr end);
bool mem_ranges_contain(const mem_range_set *s, ga_addr base, ga_addr end);
void mem_ranges_free(mem_range_set *s);
/* mem_unmap_ranges unmaps (os backing) and frees a detached range list
 * (ga_unmap_ranges). */
void mem_unmap_ranges(mem_range *ranges, size_t n);

#endif
