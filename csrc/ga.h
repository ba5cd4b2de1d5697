/* goalloc-wide constants and helpers.  See malloc.c for the overview.
 *
 * The numbers Go 1.13 fixes for every platform (page size, size-class
 * limits, fixalloc and persistentalloc chunk sizes) and the compiler
 * hints.  goalloc.h includes it: everything here is a Go constant or is
 * prefixed (GA_, ga_); arith.h holds the internal helpers, throw.h the
 * assertions (GA_ASSERT, GA_DEBUG).
 * Go 1.13: src/runtime/malloc.go, sizeclasses.go, mfixalloc.go constants.
 * Differs from Go: platform-dependent numbers (arena size, address bits)
 * are per-heap values in struct platform, not compile-time constants.
 * Locking: nothing here holds state.
 */
#ifndef GA_H
#define GA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Addresses of the simulated platform.  Always 64 bits wide, so that a
 * heap can model aix/ppc64 or a 32-bit target on this host alike. */
typedef uint64_t ga_addr;

/* Which Go 1.13 point release's page heap a heap runs (design §5.8,
 * "Which Go 1.13").  go1.13.3 backported three Go
 * 1.14 changes, and every later 1.13 release (checked up to go1.13.12)
 * has the same allocator as go1.13.8; go1.13.1 and go1.13.2 have
 * go1.13.0's.  The zero value is the default. */
typedef enum ga_release {
    GA_RELEASE_GO1_13_8 = 0, /* grow by the pages asked for inside
                              * curArena; scavenge only on growth; the
                              * scavenger goal is 0 before the first GC */
    GA_RELEASE_GO1_13_0 = 1, /* grow by whole arenas; scavenge when an
                              * allocation takes released memory; the
                              * goal is next_gc + 10% from gcinit on */
} ga_release;

/* Where a heap's memory comes from (mem.h): real mmap'd memory, or a
 * simulated address space in which no memory is touched. */
typedef enum ga_backing {
    GA_BACKING_OS = 0,
    GA_BACKING_VIRTUAL = 1,
} ga_backing;

/* An address range [base, end), as the OS layer records what it holds
 * (and the facade hands over, ga_heap_free_keep_mappings). */
typedef struct mem_range {
    ga_addr base;
    ga_addr end;
} mem_range;

#define PAGE_SHIFT 13
#define PAGE_SIZE ((ga_addr)1 << PAGE_SHIFT)
#define PAGE_MASK (PAGE_SIZE - 1)

#define MAX_SMALL_SIZE 32768
#define SMALL_SIZE_DIV 8
#define SMALL_SIZE_MAX 1024
#define LARGE_SIZE_DIV 128
#define NUM_SIZE_CLASSES 67
#define NUM_SPAN_CLASSES (NUM_SIZE_CLASSES << 1)
#define TINY_SIZE 16
#define TINY_SIZE_CLASS 2
#define MAX_OBJS_PER_SPAN (PAGE_SIZE / 8)

#define FIX_ALLOC_CHUNK 16384
#define PERSISTENT_CHUNK_SIZE 262144
#define PERSISTENT_MAX_BLOCK 65536
#define MIN_PHYS_PAGE_SIZE 4096

/* The cache line: metadata that different threads write (span structs,
 * mcaches, mcentrals, the heap lock) is kept on lines of its own. */
#define GA_CACHE_LINE 64

#if defined(__GNUC__)
#define GA_LIKELY(x) __builtin_expect(!!(x), 1)
#define GA_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define GA_NOINLINE __attribute__((noinline))
#define GA_ALWAYS_INLINE inline __attribute__((always_inline))
#define GA_NORETURN __attribute__((noreturn))
#define GA_UNUSED __attribute__((unused))
#else
#define GA_LIKELY(x) (x)
#define GA_UNLIKELY(x) (x)
#define GA_NOINLINE
#define GA_ALWAYS_INLINE inline
#define GA_NORETURN
#define GA_UNUSED
#endif

#endif
