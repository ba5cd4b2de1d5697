/* gomalloc: goalloc's core as the process's malloc (LD_PRELOAD).
 *
 * One Go heap per process (os backing: real memory at Go's arena hints,
 * 0x00c000000000 upward), made on the first call of the malloc family
 * (runtime.c), serves malloc, calloc, realloc, free and the aligned
 * calls (api.c); at exit the heap can be written as a goalloc.snapshot
 * JSON document (stats.c).  This header is what the three files share.
 *
 * Threads and Ps: the heap has procs Ps (GOALLOC_PROCS, default the CPUs
 * the process may run on, as Go's GOMAXPROCS).  A thread runs as one P
 * at a time and holds that P's lock while it calls the core; its first
 * call takes P (k mod procs) for the k-th thread, and when that P is busy
 * it takes any idle P (trylock) and keeps it, as a Go M picks up an idle
 * P; with none idle it waits for its own.  While the process has one
 * thread (glibc's __libc_single_threaded) no lock is taken at all.
 * Every core call happens with a P held, so holding every P stops the
 * world: fork (pthread_atfork) and the exit snapshot do that, and no
 * core lock can then be held by another thread.
 *
 * Recursion: the core's own metadata (span bitmaps, arena maps, fixalloc
 * chunks) comes from malloc, and glibc functions the core calls at start
 * (fopen) allocate too.  A per-thread guard, set around every core call,
 * sends any malloc-family call made meanwhile to glibc's own allocator
 * (__libc_malloc and friends), so the core never re-enters itself and
 * its metadata lives outside the Go heap, as Go's does (persistentalloc).
 * Thread-local variables use the initial-exec model (setup.py), so
 * reading them never calls __tls_get_addr, which may allocate.
 *
 * Go 1.13: runtime.mallocinit, mallocgc, getproccount (GOMAXPROCS).
 * Differs from Go: see each file; the malloc contract (dirty memory but
 *          for calloc) is the core's zero_on_request option (cmalloc.c).
 * Locking: one mutex per P, one for the table of over-aligned blocks.
 */
#ifndef GOMALLOC_H
#define GOMALLOC_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "goalloc.h"

#define GM_EXPORT __attribute__((visibility("default")))
#define GM_LIKELY(x) __builtin_expect(!!(x), 1)
#define GM_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* glibc's own allocator, under its second names. */
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t k, size_t n);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);
void *__libc_memalign(size_t align, size_t n);
void *__libc_valloc(size_t n);
void *__libc_pvalloc(size_t n);

enum { GM_UNINIT = 0, GM_INITIALIZING = 1, GM_READY = 2 };

/* A P's lock, on a cache line of its own. */
typedef struct gm_p {
    _Alignas(64) pthread_mutex_t mu;
} gm_p;

/* One entry of the table of over-aligned blocks: the address handed out
 * (inside a large object) and the object's start. */
typedef struct gm_aligned_entry {
    uintptr_t addr; /* 0: empty; 1: deleted */
    uintptr_t base;
} gm_aligned_entry;

typedef struct gm_state {
    int state; /* GM_UNINIT, GM_INITIALIZING, GM_READY (atomic) */
    ga_heap *h;
    int procs;
    unsigned next_p; /* the next thread's P, before mod procs (atomic) */
    gm_p *ps;
    uint64_t class_size[NUM_SIZE_CLASSES];
    bool aligned_alloc_checks; /* glibc >= 2.38: aligned_alloc refuses an
                                * alignment that is not a power of two */
    /* the table of over-aligned blocks (alignment > 8 KiB) */
    pthread_mutex_t aligned_mu;
    gm_aligned_entry *aligned;
    size_t aligned_cap, aligned_used;
    /* the exit snapshot */
    bool stats;
    int stats_pid; /* only this process writes it (0: any) */
    char stats_path[4096];
} gm_state;

extern gm_state gm;
extern __thread int gm_tls_p;
extern __thread int gm_tls_guard;

/* gm_init makes the heap (once, on whichever thread comes first; the
 * others wait) and returns it. */
ga_heap *gm_init(void);

static inline ga_heap *
gm_heap(void)
{
    if (GM_LIKELY(__atomic_load_n(&gm.state, __ATOMIC_ACQUIRE) == GM_READY)) {
        return gm.h;
    }
    return gm_init();
}

static inline bool
gm_ready(void)
{
    return __atomic_load_n(&gm.state, __ATOMIC_ACQUIRE) == GM_READY;
}

/* gm_acquire makes the calling thread run as a P and returns it; *locked
 * says whether a lock was taken (not while the process has one thread).
 * gm_release gives the P back. */
int gm_acquire(bool *locked);

static inline void
gm_release(int p, bool locked)
{
    if (locked) {
        pthread_mutex_unlock(&gm.ps[p].mu);
    }
}

/* gm_stop_the_world takes every P (in order) and the aligned table's
 * lock; gm_start_the_world gives them back. */
void gm_stop_the_world(void);
void gm_start_the_world(void);

/* gm_fatal writes "goalloc: WHAT: WHY 0xADDR" on stderr and aborts, as
 * glibc's malloc_printerr does. */
__attribute__((noreturn)) void gm_fatal(const char *what, const char *why,
                                        const void *addr);
/* gm_bad_pointer: the fatal message for a core status about a pointer
 * the program passed (free, realloc, malloc_usable_size). */
__attribute__((noreturn)) void gm_bad_pointer(const char *what, ga_status st,
                                              const void *addr);

/* The table of over-aligned blocks (runtime.c): put returns false when
 * the table cannot grow; take removes and returns the block's start (0
 * if addr is not in the table); find returns it and leaves it. */
bool gm_aligned_put(uintptr_t addr, uintptr_t base);
uintptr_t gm_aligned_take(uintptr_t addr);
uintptr_t gm_aligned_find(uintptr_t addr);

/* gm_write_stats writes the heap's snapshot to path (stats.c); the world
 * is stopped and the guard set. */
void gm_write_stats(ga_heap *h, const char *path);
/* gm_stats_fail_line: "goalloc: cannot write the heap snapshot to PATH:
 * REASON" on stderr. */
void gm_stats_fail_line(const char *path, int err);

#endif
