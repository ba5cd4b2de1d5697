/* allocbench: one workload, one allocator, one process.
 *
 * The allocator is chosen at compile time (benchmarks/run.py builds one
 * binary per allocator):
 *   -DALLOC_GOALLOC   goalloc's C core through goalloc.h (ga_malloc and
 *                     ga_free_p on the os backing; one P per thread).
 *                     collector=gc runs it in GC mode (design §14): a
 *                     "free" is ga_drop and Go 1.13's collector, paced by
 *                     gogc=, frees; single-threaded workloads only (a GC-
 *                     mode heap takes one call at a time, design §14.8)
 *   -DALLOC_GLIBC     malloc/free of the C library
 *   -DALLOC_MIMALLOC  mi_malloc/mi_free (-lmimalloc)
 *   -DALLOC_JEMALLOC  malloc/free with -ljemalloc linked first (Debian's
 *                     jemalloc is built unprefixed and replaces malloc)
 *   -DALLOC_TCMALLOC  tc_malloc/tc_free (-ltcmalloc_minimal)
 *
 * Usage: allocbench-ALLOC WORKLOAD [key=value ...]   (or --info)
 * Workloads (ops = what ns/op divides by):
 *   pair16    n pairs of a 16-byte alloc and its free
 *   batch     n objects of 8..1024 bytes (uniform), then all freed in a
 *             random order; op = one alloc + one free
 *   live      a live set of `live` objects, then n random replacements
 *             (free a random slot, allocate a new size into it); sizes
 *             uniform in [8 B, 32 KiB]; op = one replacement
 *   livelog   the same with sizes log-uniform in [8 B, 32 KiB]
 *   large     a live set of `live` blocks of 64 KiB..1 MiB (uniform),
 *             n replacements
 *   mt-pair16 `threads` threads, each with its own P, each doing pair16
 *   mt-live   `threads` threads, each with its own P and its own live set
 *             of `live` objects, each doing n replacements (uniform sizes)
 *   prodcons  one producer allocates n objects of 8..1024 bytes and hands
 *             them through a lock-free ring to one consumer that frees them
 *   spin      `threads` threads that only compute (no allocation): how
 *             well the machine itself runs 1 vs 2 threads, the ceiling of
 *             every allocator's scaling
 * Multi-threaded figures: ns/op is wall time / ops per thread (flat when
 * the allocator scales perfectly), mops is the aggregate throughput.
 *
 * Every size, slot index and order comes from a fixed-seed PRNG and is
 * generated before the clock starts, in memory mapped straight from the
 * OS (not from the allocator under test).  Every new object gets its
 * first byte written, live-set objects also one byte in every further
 * 4 KiB page, as a program that uses its memory would (so peak RSS
 * reflects the live set, not which allocator leaves untouched pages
 * unmapped), and the first byte is read back before the free, so nothing
 * can be optimised away.
 *
 * budget=BYTES (live, livelog, large) stops the timed replacements once
 * they have asked for BYTES, as benchmarks/go/main.go does under GOGC=off:
 * for goalloc's GC mode with gogc=off, where nothing is ever collected
 * and the full workloads would need ~160 GB.  The JSON then says
 * "truncated": true and "ops" is the replacements run.
 *
 * Output: one line of JSON.  maxrss_kib is getrusage's ru_maxrss at the
 * end and hwm_kib the same high-water mark from /proc/self/status (VmHWM)
 * without what ru_maxrss inherits across execve from the parent; base_kib
 * is VmHWM just before the timed part (the driver's own arrays, resident
 * by then); peak_kib = hwm_kib - base_kib is what the allocator added to
 * the high-water mark.  Exit status 0 on success, 2 for
 * a workload this allocator cannot run (the JSON says why), 1 on error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#if defined(ALLOC_GOALLOC)
#include "goalloc.h"
#define ALLOC_NAME "goalloc"
#elif defined(ALLOC_GLIBC)
#include <gnu/libc-version.h>
#define ALLOC_NAME "glibc"
#elif defined(ALLOC_MIMALLOC)
#include <mimalloc.h>
#define ALLOC_NAME "mimalloc"
#elif defined(ALLOC_JEMALLOC)
#include <jemalloc/jemalloc.h>
#define ALLOC_NAME "jemalloc"
#elif defined(ALLOC_TCMALLOC)
#include <gperftools/tcmalloc.h>
#define ALLOC_NAME "tcmalloc"
#else
#error                                                                        \
    "define one of ALLOC_GOALLOC ALLOC_GLIBC ALLOC_MIMALLOC ALLOC_JEMALLOC ALLOC_TCMALLOC"
#endif

#define OS_PAGE 4096
#define GA_BENCH_UNUSED __attribute__((unused))

/* ---- the allocator under test ------------------------------------ */

#if defined(ALLOC_GOALLOC)
static ga_heap *the_heap;
static bool the_gc; /* GC mode: bench_free drops */

static void
alloc_init(int procs, int gogc, bool zero, const char *release, bool gc)
{
    ga_options o;
    ga_options_init(&o);
    ga_release r;
    if (!ga_release_parse(release, &r)) {
        fprintf(stderr, "unknown release %s\n", release);
        exit(1);
    }
    ga_options_set_release(&o, r);
    o.procs = procs < 1 ? 1 : procs;
    o.scavenge_goal = ga_release_scavenge_goal(r, gogc);
    o.skip_zeroing = !zero;
    if (gc) {
        o.collector = GA_COLLECTOR_GC;
        o.gogc = gogc; /* < 0 is off: no cycle ever starts */
    }
    the_gc = gc;
    ga_status st;
    char err[256];
    the_heap = ga_heap_new(&o, &st, err, sizeof(err));
    if (the_heap == NULL) {
        fprintf(stderr, "ga_heap_new: %s: %s\n", ga_status_name(st), err);
        exit(1);
    }
}

static void
alloc_fini(void)
{
    ga_heap_free(the_heap);
}

/* The error paths live out of line, so that the wrappers below inline
 * to the bare call and a test: the driver adds nothing to the fast path. */
static __attribute__((noinline, cold, noreturn)) void
ga_failed(const char *what, uint64_t arg, ga_status st)
{
    const char *why = ga_poisoned(the_heap);
    fprintf(stderr, "%s(%#llx): %s%s%s\n", what, (unsigned long long)arg,
            ga_status_name(st), why != NULL ? ": " : "",
            why != NULL ? why : "");
    exit(1);
}

/* noscan=false: every size takes mallocgc's small-object path (the tiny
 * allocator serves noscan objects < 16 B only), as bench_fastpath does. */
static inline __attribute__((always_inline)) void *
bench_alloc(int p, size_t n)
{
    ga_addr a;
    ga_status st = ga_malloc(the_heap, p, n, false, &a);
    if (__builtin_expect(st != GA_OK, 0)) {
        ga_failed("ga_malloc", n, st);
    }
    return (void *)(uintptr_t)a;
}

/* The thread runs as P p: a free into a span p caches takes no lock.
 * In GC mode the program drops its reference instead (ga_drop; the
 * collector frees the object at a later cycle's sweep). */
static inline __attribute__((always_inline)) void
bench_free(int p, void *x)
{
    ga_status st = the_gc ? ga_drop(the_heap, (ga_addr)(uintptr_t)x)
                          : ga_free_p(the_heap, p, (ga_addr)(uintptr_t)x);
    if (__builtin_expect(st != GA_OK, 0)) {
        ga_failed(the_gc ? "ga_drop" : "ga_free_p", (uint64_t)(uintptr_t)x,
                  st);
    }
}

static void
alloc_version(char *buf, size_t n)
{
    snprintf(buf, n, "goalloc C core (Go 1.13 allocator)");
}

#else /* the malloc-like allocators */

static void
alloc_init(int procs, int gogc, bool zero, const char *release, bool gc)
{
    (void)procs;
    (void)gogc;
    (void)zero;
    (void)release;
    (void)gc;
}
static void
alloc_fini(void)
{
}

#if defined(ALLOC_MIMALLOC)
#define BENCH_MALLOC mi_malloc
#define BENCH_FREE mi_free
#elif defined(ALLOC_TCMALLOC)
#define BENCH_MALLOC tc_malloc
#define BENCH_FREE tc_free
#else
#define BENCH_MALLOC malloc
#define BENCH_FREE free
#endif

static inline __attribute__((always_inline)) void *
bench_alloc(int p, size_t n)
{
    (void)p;
    return BENCH_MALLOC(n);
}

static inline __attribute__((always_inline)) void
bench_free(int p, void *x)
{
    (void)p;
    BENCH_FREE(x);
}

static void
alloc_version(char *buf, size_t n)
{
#if defined(ALLOC_GLIBC)
    snprintf(buf, n, "glibc %s", gnu_get_libc_version());
#elif defined(ALLOC_MIMALLOC)
    int v = mi_version();
    snprintf(buf, n, "mimalloc %d.%d.%d", v / 100, (v / 10) % 10, v % 10);
#elif defined(ALLOC_JEMALLOC)
    const char *v = NULL;
    size_t sz = sizeof(v);
    if (mallctl("version", &v, &sz, NULL, 0) != 0 || v == NULL) {
        /* not linked ahead of glibc: refuse to report glibc as jemalloc */
        fprintf(stderr, "jemalloc is not the active malloc\n");
        exit(1);
    }
    snprintf(buf, n, "jemalloc %s", v);
#elif defined(ALLOC_TCMALLOC)
    int major = 0, minor = 0;
    const char *patch = "";
    const char *v = tc_version(&major, &minor, &patch);
    snprintf(buf, n, "%s", v != NULL ? v : "tcmalloc ?");
#endif
}
#endif

/* ---- helpers ----------------------------------------------------- */

static double
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static long
maxrss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* VmHWM: the high-water mark of this process's own address space.  It is
 * what ru_maxrss reports, except that ru_maxrss also keeps the high-water
 * mark of the address space execve replaced, i.e. the RSS of the parent
 * (a Python interpreter, say) at fork time.  -1 if /proc is missing. */
static long
hwm_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    long v = -1;
    char line[256];
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmHWM:", 6) == 0) {
            v = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

static long
peak_kib(void)
{
    long h = hwm_kib();
    return h >= 0 ? h : maxrss_kib();
}

/* Driver memory comes straight from the OS, populated, so it neither
 * goes through nor perturbs the allocator under test. */
static void *
os_alloc(size_t n)
{
    n = (n + OS_PAGE - 1) & ~(size_t)(OS_PAGE - 1);
    if (n == 0) {
        n = OS_PAGE;
    }
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) {
        fprintf(stderr, "mmap %zu: %s\n", n, strerror(errno));
        exit(1);
    }
    return p;
}

/* splitmix64: small, fast, and the same sequence everywhere. */
typedef struct rng {
    uint64_t s;
} rng;

static uint64_t
rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* uniform in [lo, hi] */
static uint32_t
rng_uniform(rng *r, uint32_t lo, uint32_t hi)
{
    return lo + (uint32_t)(rng_next(r) % ((uint64_t)hi - lo + 1));
}

/* log-uniform in [lo, hi]: ln(size) uniform */
static uint32_t
rng_loguniform(rng *r, uint32_t lo, uint32_t hi)
{
    double u = (double)(rng_next(r) >> 11) * 0x1.0p-53;
    double x = exp(log((double)lo) + u * (log((double)hi + 1) - log(lo)));
    uint32_t v = (uint32_t)x;
    return v < lo ? lo : (v > hi ? hi : v);
}

static void
die_null(size_t n)
{
    fprintf(stderr, "allocation of %zu bytes failed\n", n);
    exit(1);
}

/* ---- parameters and result --------------------------------------- */

typedef struct params {
    const char *workload;
    long n;      /* ops (per thread) */
    long live;   /* live-set size */
    int threads; /* mt-*: threads */
    int procs;   /* goalloc: Ps in the heap (default: threads) */
    uint64_t seed;
    int gogc;            /* goalloc: the GOGC whose scavenger goal the heap has
                          * (Go's default 100; -1 = off, as the Go column runs) */
    bool zero;           /* goalloc: Go's zeroing of reused memory (default on;
                          * zero=0 is the skip_zeroing deviation) */
    const char *release; /* goalloc: go1.13.8 (default) or go1.13.0 */
    bool gc;             /* goalloc: GC mode (collector=gc) */
    long long budget;    /* live sets: stop the timed part after this many
                          * bytes asked for (0: no budget) */
} params;

typedef struct result {
    double ns_per_op;
    double seconds;
    double mops;     /* aggregate throughput, million ops per second */
    double alloc_ns; /* batch: the two phases apart */
    double free_ns;
    uint64_t check; /* sum of the bytes read back */
    long ops;       /* ops per thread */
    bool truncated; /* the budget stopped the run before n ops */
} result;

static long base_kib;

static void
mark_base(void)
{
    base_kib = peak_kib();
}

/* ---- single-threaded workloads ------------------------------------- */

static void
run_pair16(const params *pp, result *res)
{
    long n = pp->n;
    uint64_t check = 0;
    /* warm: the first span / arena / thread cache */
    void *w = bench_alloc(0, 16);
    if (w == NULL) {
        die_null(16);
    }
    bench_free(0, w);
    mark_base();
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        volatile unsigned char *p = bench_alloc(0, 16);
        if (__builtin_expect(p == NULL, 0)) {
            die_null(16);
        }
        p[0] = (unsigned char)i;
        check += p[0];
        bench_free(0, (void *)p);
    }
    double t = now_ns() - t0;
    res->seconds = t / 1e9;
    res->ns_per_op = t / (double)n;
    res->mops = (double)n / t * 1e3;
    res->check = check;
    res->ops = n;
}

static void
run_batch(const params *pp, result *res)
{
    long n = pp->n;
    rng r = {pp->seed};
    uint16_t *size = os_alloc((size_t)n * sizeof(*size));
    uint32_t *order = os_alloc((size_t)n * sizeof(*order));
    unsigned char **obj = os_alloc((size_t)n * sizeof(*obj));
    for (long i = 0; i < n; i++) {
        size[i] = (uint16_t)rng_uniform(&r, 8, 1024);
        order[i] = (uint32_t)i;
    }
    for (long i = n - 1; i > 0; i--) { /* Fisher-Yates */
        long j = (long)(rng_next(&r) % (uint64_t)(i + 1));
        uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    uint64_t check = 0;
    mark_base();
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        unsigned char *p = bench_alloc(0, size[i]);
        if (__builtin_expect(p == NULL, 0)) {
            die_null(size[i]);
        }
        p[0] = (unsigned char)i;
        obj[i] = p;
    }
    double t1 = now_ns();
    for (long i = 0; i < n; i++) {
        unsigned char *p = obj[order[i]];
        check += p[0];
        bench_free(0, p);
    }
    double t2 = now_ns();
    res->seconds = (t2 - t0) / 1e9;
    res->ns_per_op = (t2 - t0) / (double)n;
    res->alloc_ns = (t1 - t0) / (double)n;
    res->free_ns = (t2 - t1) / (double)n;
    res->mops = (double)n / (t2 - t0) * 1e3;
    res->check = check;
    res->ops = n;
}

typedef enum { DIST_UNIFORM, DIST_LOG } dist;

/* A live set with random replacements; shared by live, livelog, large
 * and each thread of mt-live.  Pre-generated: the initial sizes, then per
 * replacement a slot and a new size. */
typedef struct liveset {
    long live, n;
    uint32_t *init_size;
    uint32_t *slot;
    uint32_t *size;
    unsigned char **obj;
    int p;
    uint64_t check;
} liveset;

static void
liveset_gen(liveset *ls, long live, long n, dist d, uint32_t lo, uint32_t hi,
            uint64_t seed, int p)
{
    rng r = {seed};
    ls->live = live;
    ls->n = n;
    ls->p = p;
    ls->check = 0;
    ls->init_size = os_alloc((size_t)live * sizeof(uint32_t));
    ls->slot = os_alloc((size_t)n * sizeof(uint32_t));
    ls->size = os_alloc((size_t)n * sizeof(uint32_t));
    ls->obj = os_alloc((size_t)live * sizeof(void *));
    for (long i = 0; i < live; i++) {
        ls->init_size[i] = d == DIST_LOG ? rng_loguniform(&r, lo, hi)
                                         : rng_uniform(&r, lo, hi);
    }
    for (long i = 0; i < n; i++) {
        ls->slot[i] = (uint32_t)(rng_next(&r) % (uint64_t)live);
        ls->size[i] = d == DIST_LOG ? rng_loguniform(&r, lo, hi)
                                    : rng_uniform(&r, lo, hi);
    }
}

static inline unsigned char *
liveset_new(liveset *ls, uint32_t sz, long i)
{
    unsigned char *p = bench_alloc(ls->p, sz);
    if (__builtin_expect(p == NULL, 0)) {
        die_null(sz);
    }
    /* the first byte, and one byte in every later 4 KiB page */
    p[0] = (unsigned char)i;
    for (uint32_t off = OS_PAGE - ((uintptr_t)p & (OS_PAGE - 1)); off < sz;
         off += OS_PAGE) {
        ((volatile unsigned char *)p)[off] = (unsigned char)i;
    }
    return p;
}

static void
liveset_fill(liveset *ls)
{
    for (long i = 0; i < ls->live; i++) {
        ls->obj[i] = liveset_new(ls, ls->init_size[i], i);
    }
}

static void
liveset_run(liveset *ls)
{
    uint64_t check = 0;
    for (long i = 0; i < ls->n; i++) {
        uint32_t k = ls->slot[i];
        check += ls->obj[k][0];
        bench_free(ls->p, ls->obj[k]);
        ls->obj[k] = liveset_new(ls, ls->size[i], i);
    }
    ls->check = check;
}

static void
liveset_drain(liveset *ls)
{
    for (long i = 0; i < ls->live; i++) {
        bench_free(ls->p, ls->obj[i]);
    }
}

static void
run_live(const params *pp, result *res, dist d, uint32_t lo, uint32_t hi)
{
    liveset ls;
    liveset_gen(&ls, pp->live, pp->n, d, lo, hi, pp->seed, 0);
    if (pp->budget > 0) { /* the same cut as benchmarks/go/main.go's */
        long long total = 0;
        for (long i = 0; i < ls.n; i++) {
            total += ls.size[i];
            if (total > pp->budget) {
                ls.n = i + 1;
                res->truncated = ls.n < pp->n;
                break;
            }
        }
    }
    mark_base();
    liveset_fill(&ls); /* untimed, but counted in the peak RSS */
    double t0 = now_ns();
    liveset_run(&ls);
    double t = now_ns() - t0;
    liveset_drain(&ls);
    res->seconds = t / 1e9;
    res->ns_per_op = t / (double)ls.n;
    res->mops = (double)ls.n / t * 1e3;
    res->check = ls.check;
    res->ops = ls.n;
}

/* ---- multi-threaded workloads -------------------------------------- */

typedef enum { MT_PAIR16, MT_LIVE, MT_SPIN } mt_mode;

typedef struct worker {
    _Alignas(64) pthread_t tid; /* one worker per cache line or more */
    int p;
    const params *pp;
    pthread_barrier_t *start, *done;
    double t_start, t_end;
    uint64_t check;
    liveset ls;
    mt_mode mode;
} worker;

/* spin: the same thread choreography with no allocator at all, n rounds
 * of splitmix64 in registers.  Its 1-to-2-thread ratio is what the machine
 * itself delivers, the ceiling for every allocator's scaling. */
static uint64_t
spin_loop(long n, uint64_t seed)
{
    rng r = {seed};
    uint64_t x = 0;
    for (long i = 0; i < n; i++) {
        x ^= rng_next(&r);
    }
    return x & 0xFF;
}

static void *
worker_main(void *arg)
{
    worker *w = arg;
    if (w->mode == MT_LIVE) {
        liveset_fill(&w->ls);
    }
    else if (w->mode == MT_PAIR16) { /* warm this thread's cache / P */
        void *x = bench_alloc(w->p, 16);
        if (x == NULL) {
            die_null(16);
        }
        bench_free(w->p, x);
    }
    pthread_barrier_wait(w->start);
    w->t_start = now_ns();
    if (w->mode == MT_LIVE) {
        liveset_run(&w->ls);
        w->check = w->ls.check;
    }
    else if (w->mode == MT_SPIN) {
        w->check = spin_loop(w->pp->n, w->pp->seed);
    }
    else {
        uint64_t check = 0;
        long n = w->pp->n;
        for (long i = 0; i < n; i++) {
            volatile unsigned char *p = bench_alloc(w->p, 16);
            if (__builtin_expect(p == NULL, 0)) {
                die_null(16);
            }
            p[0] = (unsigned char)i;
            check += p[0];
            bench_free(w->p, (void *)p);
        }
        w->check = check;
    }
    w->t_end = now_ns();
    /* nobody tears down while another thread is still timed */
    pthread_barrier_wait(w->done);
    if (w->mode == MT_LIVE) {
        liveset_drain(&w->ls);
    }
    return NULL;
}

static void
run_mt(const params *pp, result *res, mt_mode mode)
{
    int nt = pp->threads;
    worker *ws = os_alloc((size_t)nt * sizeof(*ws));
    pthread_barrier_t start, done;
    pthread_barrier_init(&start, NULL, (unsigned)nt);
    pthread_barrier_init(&done, NULL, (unsigned)nt);
    for (int t = 0; t < nt; t++) {
        worker *w = &ws[t];
        w->p = t;
        w->pp = pp;
        w->start = &start;
        w->done = &done;
        w->mode = mode;
        if (mode == MT_LIVE) {
            liveset_gen(&w->ls, pp->live, pp->n, DIST_UNIFORM, 8, 32768,
                        pp->seed + (uint64_t)t * 0x1000193, t);
        }
    }
    mark_base();
    for (int t = 0; t < nt; t++) {
        if (pthread_create(&ws[t].tid, NULL, worker_main, &ws[t]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            exit(1);
        }
    }
    uint64_t check = 0;
    double t0 = 0, t1 = 0;
    for (int t = 0; t < nt; t++) {
        pthread_join(ws[t].tid, NULL);
        check += ws[t].check;
        if (t == 0 || ws[t].t_start < t0) {
            t0 = ws[t].t_start;
        }
        if (ws[t].t_end > t1) {
            t1 = ws[t].t_end;
        }
    }
    double t = t1 - t0;
    res->seconds = t / 1e9;
    res->ns_per_op = t / (double)pp->n;
    res->mops = (double)pp->n * nt / t * 1e3;
    res->check = check;
    res->ops = pp->n;
}

/* Producer/consumer: a single-producer single-consumer ring of pointers.
 * Objects are allocated on one thread and freed on the other. */
#define RING 4096
typedef struct ring {
    _Alignas(64) _Atomic unsigned long head; /* next slot to write */
    _Alignas(64) _Atomic unsigned long tail; /* next slot to read */
    _Alignas(64) void *slot[RING];
} ring;

typedef struct pc {
    ring *q;
    long n;
    uint16_t *size;
    uint64_t check;
} pc;

static void *
producer_main(void *arg)
{
    pc *c = arg;
    ring *q = c->q;
    unsigned long head = 0;
    for (long i = 0; i < c->n; i++) {
        unsigned char *p = bench_alloc(0, c->size[i]);
        if (__builtin_expect(p == NULL, 0)) {
            die_null(c->size[i]);
        }
        p[0] = (unsigned char)i;
        while (head - atomic_load_explicit(&q->tail, memory_order_acquire) ==
               RING) {
            /* full: spin */
        }
        q->slot[head % RING] = p;
        atomic_store_explicit(&q->head, ++head, memory_order_release);
    }
    return NULL;
}

static void *
consumer_main(void *arg)
{
    pc *c = arg;
    ring *q = c->q;
    unsigned long tail = 0;
    uint64_t check = 0;
    for (long i = 0; i < c->n; i++) {
        while (atomic_load_explicit(&q->head, memory_order_acquire) == tail) {
            /* empty: spin */
        }
        unsigned char *p = q->slot[tail % RING];
        atomic_store_explicit(&q->tail, ++tail, memory_order_release);
        check += p[0];
        bench_free(1, p);
    }
    c->check = check;
    return NULL;
}

static void
run_prodcons(const params *pp, result *res)
{
    rng r = {pp->seed};
    pc c;
    c.n = pp->n;
    c.q = os_alloc(sizeof(ring));
    c.size = os_alloc((size_t)pp->n * sizeof(uint16_t));
    for (long i = 0; i < pp->n; i++) {
        c.size[i] = (uint16_t)rng_uniform(&r, 8, 1024);
    }
    mark_base();
    pthread_t prod, cons;
    double t0 = now_ns();
    if (pthread_create(&cons, NULL, consumer_main, &c) != 0 ||
        pthread_create(&prod, NULL, producer_main, &c) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        exit(1);
    }
    pthread_join(prod, NULL);
    pthread_join(cons, NULL);
    double t = now_ns() - t0;
    res->seconds = t / 1e9;
    res->ns_per_op = t / (double)pp->n;
    res->mops = (double)pp->n / t * 1e3;
    res->check = c.check;
    res->ops = pp->n;
}

/* ---- main ---------------------------------------------------------- */

static void
usage(void)
{
    fprintf(stderr,
            "usage: allocbench-" ALLOC_NAME " --info\n"
            "       allocbench-" ALLOC_NAME
            " pair16|batch|live|livelog|large|mt-pair16|mt-live|prodcons|spin"
            " [n=OPS] [live=K] [threads=T] [procs=P] [seed=S] [gogc=N|off] "
            "[zero=0|1]"
            " [release=go1.13.8|go1.13.0] [collector=free|gc]"
            " [budget=BYTES]\n");
    exit(1);
}

static void
json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            putchar('\\');
        }
        putchar(*s);
    }
    putchar('"');
}

int
main(int argc, char **argv)
{
    char version[128];
    if (argc < 2) {
        usage();
    }
    if (strcmp(argv[1], "--info") == 0) {
        alloc_init(1, 100, true, "go1.13.8", false);
        alloc_version(version, sizeof(version));
        printf("{\"alloc\": \"%s\", \"version\": ", ALLOC_NAME);
        json_string(version);
        printf("}\n");
        alloc_fini();
        return 0;
    }
    params pp = {argv[1], -1,   -1,         1,     0, 0x5EED5EED12345678ULL,
                 100,     true, "go1.13.8", false, 0};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "n=", 2) == 0) {
            pp.n = (long)strtod(a + 2, NULL);
        }
        else if (strncmp(a, "live=", 5) == 0) {
            pp.live = (long)strtod(a + 5, NULL);
        }
        else if (strncmp(a, "threads=", 8) == 0) {
            pp.threads = atoi(a + 8);
        }
        else if (strncmp(a, "procs=", 6) == 0) {
            pp.procs = atoi(a + 6);
        }
        else if (strncmp(a, "seed=", 5) == 0) {
            pp.seed = strtoull(a + 5, NULL, 0);
        }
        else if (strncmp(a, "gogc=", 5) == 0) {
            pp.gogc = strcmp(a + 5, "off") == 0 ? -1 : atoi(a + 5);
        }
        else if (strncmp(a, "zero=", 5) == 0) {
            pp.zero = atoi(a + 5) != 0;
        }
        else if (strncmp(a, "release=", 8) == 0) {
            pp.release = a + 8;
        }
        else if (strcmp(a, "collector=gc") == 0 ||
                 strcmp(a, "collector=free") == 0) {
            pp.gc = strcmp(a, "collector=gc") == 0;
        }
        else if (strncmp(a, "budget=", 7) == 0) {
            pp.budget = (long long)strtod(a + 7, NULL);
        }
        else {
            usage();
        }
    }
    const char *w = pp.workload;
    bool known = false;
    static const char *const names[] = {"pair16",  "batch",    "live",
                                        "livelog", "large",    "mt-pair16",
                                        "mt-live", "prodcons", "spin"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        known |= strcmp(w, names[i]) == 0;
    }
    if (!known || pp.threads < 1) {
        usage();
    }
    if (strcmp(w, "prodcons") == 0) {
        pp.threads = 2;
    }
    /* defaults: the full-size workloads of BENCHMARKS.md */
    if (pp.n < 0) {
        pp.n = strcmp(w, "pair16") == 0      ? 20000000
               : strcmp(w, "batch") == 0     ? 1000000
               : strcmp(w, "large") == 0     ? 100000
               : strcmp(w, "mt-pair16") == 0 ? 10000000
               : strcmp(w, "mt-live") == 0   ? 1000000
               : strcmp(w, "prodcons") == 0  ? 5000000
               : strcmp(w, "spin") == 0      ? 100000000
                                             : 10000000;
    }
    if (pp.live < 0) {
        pp.live = strcmp(w, "large") == 0     ? 64
                  : strcmp(w, "mt-live") == 0 ? 1000
                                              : 10000;
    }
    if (pp.n < 1 || pp.live < 1) {
        usage();
    }
    int procs = pp.procs > 0 ? pp.procs : pp.threads;
    if (procs < pp.threads) {
        fprintf(stderr, "procs must be >= threads\n");
        return 1;
    }
    if (pp.gc && (strncmp(w, "mt-", 3) == 0 || strcmp(w, "prodcons") == 0 ||
                  strcmp(w, "spin") == 0)) {
        /* design §14.8: a GC-mode heap takes one call at a time */
        printf("{\"alloc\": \"%s\", \"workload\": \"%s\", \"na\": "
               "\"GC mode is single-threaded (design §14.8)\"}\n",
               ALLOC_NAME, w);
        return 2;
    }
    alloc_init(strcmp(w, "prodcons") == 0 ? 2 : procs, pp.gogc, pp.zero,
               pp.release, pp.gc);
    alloc_version(version, sizeof(version));

    result res;
    memset(&res, 0, sizeof(res));
    if (strcmp(w, "pair16") == 0) {
        run_pair16(&pp, &res);
    }
    else if (strcmp(w, "batch") == 0) {
        run_batch(&pp, &res);
    }
    else if (strcmp(w, "live") == 0) {
        run_live(&pp, &res, DIST_UNIFORM, 8, 32768);
    }
    else if (strcmp(w, "livelog") == 0) {
        run_live(&pp, &res, DIST_LOG, 8, 32768);
    }
    else if (strcmp(w, "large") == 0) {
        run_live(&pp, &res, DIST_UNIFORM, 64 << 10, 1 << 20);
    }
    else if (strcmp(w, "mt-pair16") == 0) {
        run_mt(&pp, &res, MT_PAIR16);
    }
    else if (strcmp(w, "mt-live") == 0) {
        run_mt(&pp, &res, MT_LIVE);
    }
    else if (strcmp(w, "spin") == 0) {
        run_mt(&pp, &res, MT_SPIN);
    }
    else {
        run_prodcons(&pp, &res);
    }
    long maxrss = maxrss_kib();
    long hwm = peak_kib();
    alloc_fini();

    printf("{\"alloc\": \"%s\", \"version\": ", ALLOC_NAME);
    json_string(version);
    printf(", \"workload\": \"%s\", \"threads\": %d, \"procs\": %d, "
           "\"ops\": %ld, \"live\": %ld, \"seconds\": %.6f, "
           "\"ns_per_op\": %.3f, \"mops\": %.4f, \"alloc_ns\": %.3f, "
           "\"free_ns\": %.3f, \"maxrss_kib\": %ld, \"hwm_kib\": %ld, "
           "\"base_kib\": %ld, \"peak_kib\": %ld, \"check\": %llu, "
           "\"truncated\": %s}\n",
           w, pp.threads, procs, res.ops, pp.live, res.seconds, res.ns_per_op,
           res.mops, res.alloc_ns, res.free_ns, maxrss, hwm, base_kib,
           hwm - base_kib, (unsigned long long)res.check,
           res.truncated ? "true" : "false");
    return 0;
}
