/* The small-object fast path through the facade: 16-byte alloc+free
 * pairs on one P, and 16-byte allocations alone, in ns per operation.
 * Each figure is the median of ROUNDS rounds, with min and max, so the
 * machine's noise shows.  Build: make bench-c  (see benchmarks/README).
 *
 * bench_fastpath --bulk FILE [ROUNDS [cpu]] is the pure C cost of a
 * bulk call (benchmarks/bench_python.py writes FILE): on a fresh heap per
 * round, ga_malloc of every size into an address array, then ga_free of
 * the addresses in the file's order.  An untimed round comes first, so
 * that the process is as warm as the Python one it is compared with (the
 * heap's metadata lands on pages the C library already has).  "cpu"
 * times with the thread's CPU clock instead of the wall clock (on a
 * loaded machine: time spent descheduled does not count).  FILE is
 * little-endian uint64s: n, noscan, n sizes, n indices (the free order).
 * Prints two lines, "alloc MEDIAN MIN MAX" and "free MEDIAN MIN MAX", in
 * ns per op.
 *
 * bench_fastpath --keep SIZE NOSCAN N is one allocation-only run on a
 * fresh heap with Go's GOGC=off scavenger goal: N objects of SIZE bytes
 * through P 0, all kept live, the way benchmarks/go/keep measures Go's
 * mallocgc (benchmarks/bench_keep.py runs both, one process per run).
 * After the timed loop the first byte of every object is written, so
 * that every heap page is resident, and the run reports how much the
 * process's RSS grew per object.  Prints one line: "keep NS_PER_ALLOC
 * RSS_BYTES_PER_OBJECT CPU_NS_PER_ALLOC", the last from the process's
 * CPU time (user + system, getrusage), which time spent descheduled on
 * a loaded machine does not inflate. */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "goalloc.h"

#define ROUNDS 7

static clockid_t bench_clock = CLOCK_MONOTONIC;

static double
now_ns(void)
{
    struct timespec ts;
    clock_gettime(bench_clock, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static ga_heap *
new_heap_gogc(int gogc)
{
    ga_options o;
    ga_options_init(&o);
    o.scavenge_goal = ga_gogc_scavenge_goal(gogc);
    ga_status st;
    char err[256];
    ga_heap *h = ga_heap_new(&o, &st, err, sizeof(err));
    if (h == NULL) {
        fprintf(stderr, "ga_heap_new: %s\n", err);
        exit(1);
    }
    return h;
}

static ga_heap *
new_heap(void)
{
    return new_heap_gogc(100);
}

/* pair: alloc 16 bytes and free it at once, n times.  The free runs as
 * P fp: P 0 frees into its own cached span without a lock; GA_NO_P
 * (ga_free) takes the heap and mcentral locks. */
static double
run_pair(long n, int fp)
{
    ga_heap *h = new_heap();
    ga_addr a;
    ga_malloc(h, 0, 16, false, &a); /* warm: the first span */
    ga_free_p(h, fp, a);
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        if (ga_malloc(h, 0, 16, false, &a) != GA_OK || ga_free_p(h, fp, a)) {
            fprintf(stderr, "failed at %ld\n", i);
            exit(1);
        }
    }
    double t = (now_ns() - t0) / (double)n;
    ga_heap_free(h);
    return t;
}

/* alloc: n 16-byte allocations, then free them all (timed apart). */
static double
run_alloc(long n, double *free_ns)
{
    ga_heap *h = new_heap();
    ga_addr *v = malloc((size_t)n * sizeof(*v));
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        ga_malloc(h, 0, 16, false, &v[i]);
    }
    double t1 = now_ns();
    for (long i = 0; i < n; i++) {
        ga_free_p(h, 0, v[i]);
    }
    *free_ns = (now_ns() - t1) / (double)n;
    free(v);
    ga_heap_free(h);
    return (t1 - t0) / (double)n;
}

static void
report(const char *name, double *r)
{
    qsort(r, ROUNDS, sizeof(*r), cmp_double);
    printf("| %-28s | %8.2f | %8.2f | %8.2f |\n", name, r[ROUNDS / 2], r[0],
           r[ROUNDS - 1]);
}

static uint64_t *
read_u64s(FILE *f, uint64_t n)
{
    uint64_t *v = malloc((n ? n : 1) * sizeof(*v));
    if (v == NULL || fread(v, sizeof(*v), n, f) != n) {
        fprintf(stderr, "--bulk: short file\n");
        exit(1);
    }
    return v;
}

static void
report_line(const char *name, double *r, int rounds)
{
    qsort(r, (size_t)rounds, sizeof(*r), cmp_double);
    printf("%s %.3f %.3f %.3f\n", name, r[rounds / 2], r[0], r[rounds - 1]);
}

static int
run_bulk(const char *path, int rounds)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    uint64_t head[2];
    if (fread(head, sizeof(head[0]), 2, f) != 2) {
        fprintf(stderr, "--bulk: short file\n");
        return 1;
    }
    uint64_t n = head[0];
    bool noscan = head[1] != 0;
    uint64_t *size = read_u64s(f, n), *order = read_u64s(f, n);
    fclose(f);
    ga_addr *addr = malloc((n ? n : 1) * sizeof(*addr));
    ga_addr *freeing = malloc((n ? n : 1) * sizeof(*freeing));
    double *ta = malloc((size_t)rounds * sizeof(*ta));
    double *tf = malloc((size_t)rounds * sizeof(*tf));
    if (addr == NULL || freeing == NULL || ta == NULL || tf == NULL) {
        return 1;
    }
    memset(addr, 0, n * sizeof(*addr)); /* no page faults in the loops */
    for (int r = -1; r < rounds; r++) { /* round -1: warm-up, untimed */
        ga_heap *h = new_heap();
        double t0 = now_ns();
        for (uint64_t i = 0; i < n; i++) {
            if (ga_malloc(h, 0, size[i], noscan, &addr[i]) != GA_OK) {
                fprintf(stderr, "alloc %llu failed\n", (unsigned long long)i);
                return 1;
            }
        }
        double t1 = now_ns();
        for (uint64_t i = 0; i < n; i++) {
            freeing[i] = addr[order[i]];
        }
        double t2 = now_ns();
        for (uint64_t i = 0; i < n; i++) {
            if (ga_free(h, freeing[i]) != GA_OK) {
                fprintf(stderr, "free %llu failed\n", (unsigned long long)i);
                return 1;
            }
        }
        double t3 = now_ns();
        if (r >= 0) {
            ta[r] = (t1 - t0) / (double)(n ? n : 1);
            tf[r] = (t3 - t2) / (double)(n ? n : 1);
        }
        ga_heap_free(h);
    }
    report_line("alloc", ta, rounds);
    report_line("free", tf, rounds);
    free(size);
    free(order);
    free(addr);
    free(freeing);
    free(ta);
    free(tf);
    return 0;
}

/* rss_bytes: the process's resident set now (VmRSS). */
static long
rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = atol(line + 6);
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return kib * 1024;
}

/* cpu_ns: the CPU time the process has used (user + system). */
static double
cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
            (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec)) *
           1e3;
}

static int
run_keep(uint64_t size, bool noscan, long n)
{
    ga_addr *keep = malloc((size_t)n * sizeof(*keep));
    if (keep == NULL || size == 0 || n <= 0) {
        fprintf(stderr, "--keep: bad arguments\n");
        return 1;
    }
    memset(keep, 1, (size_t)n * sizeof(*keep)); /* resident before timing */
    ga_heap *h = new_heap_gogc(-1);
    long rss0 = rss_bytes();
    double c0 = cpu_ns();
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        if (ga_malloc(h, 0, size, noscan, &keep[i]) != GA_OK) {
            fprintf(stderr, "alloc %ld failed\n", i);
            return 1;
        }
    }
    double t = (now_ns() - t0) / (double)n;
    double cpu = (cpu_ns() - c0) / (double)n;
    for (long i = 0; i < n; i++) {
        *(volatile uint8_t *)(uintptr_t)keep[i] = 1;
    }
    long grown = rss_bytes() - rss0;
    printf("keep %.3f %.3f %.3f\n", t, (double)grown / (double)n, cpu);
    ga_heap_free(h);
    free(keep);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--keep") == 0) {
        return run_keep(strtoull(argv[2], NULL, 0), atoi(argv[3]) != 0,
                        atol(argv[4]));
    }
    if (argc > 2 && strcmp(argv[1], "--bulk") == 0) {
        int rounds = argc > 3 ? atoi(argv[3]) : ROUNDS;
        if (argc > 4 && strcmp(argv[4], "cpu") == 0) {
            bench_clock = CLOCK_THREAD_CPUTIME_ID;
        }
        return run_bulk(argv[2], rounds > 0 ? rounds : ROUNDS);
    }
    long n = argc > 1 ? atol(argv[1]) : 5000000;
    double pair[ROUNDS], pair_locked[ROUNDS], alloc[ROUNDS], frees[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        pair[r] = run_pair(n, 0);
        pair_locked[r] = run_pair(n, GA_NO_P);
        alloc[r] = run_alloc(n, &frees[r]);
    }
    printf("goalloc fast path, %ld ops per round, %d rounds (ns/op)\n\n", n,
           ROUNDS);
    printf("| %-28s | %8s | %8s | %8s |\n", "workload", "median", "min",
           "max");
    printf(
        "|------------------------------|----------|----------|----------|\n");
    report("16 B alloc+free pair", pair);
    report("16 B pair, ga_free (locked)", pair_locked);
    report("16 B alloc (batch)", alloc);
    report("16 B free (batch)", frees);
    return 0;
}
