/* The small-object fast path through the facade: 16-byte alloc+free
 * pairs on one P, and 16-byte allocations alone, in ns per operation.
 * Each figure is the median of ROUNDS rounds, with min and max, so the
 * machine's noise shows.  Build: make bench-c  (see benchmarks/README). */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "goalloc.h"

#define ROUNDS 7

static double
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static ga_heap *
new_heap(void)
{
    ga_options o;
    ga_options_init(&o);
    ga_status st;
    char err[256];
    ga_heap *h = ga_heap_new(&o, &st, err, sizeof(err));
    if (h == NULL) {
        fprintf(stderr, "ga_heap_new: %s\n", err);
        exit(1);
    }
    return h;
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

int
main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 5000000;
    double pair[ROUNDS], pair_locked[ROUNDS], alloc[ROUNDS], frees[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        pair[r] = run_pair(n, 0);
        pair_locked[r] = run_pair(n, GA_NO_P);
        alloc[r] = run_alloc(n, &frees[r]);
    }
    printf("goalloc fast path, %ld ops per round, %d rounds (ns/op)\n\n", n,
           ROUNDS);
    printf("| %-28s | %8s | %8s | %8s |\n", "workload", "median", "min", "max");
    printf("|------------------------------|----------|----------|----------|\n");
    report("16 B alloc+free pair", pair);
    report("16 B pair, ga_free (locked)", pair_locked);
    report("16 B alloc (batch)", alloc);
    report("16 B free (batch)", frees);
    return 0;
}
