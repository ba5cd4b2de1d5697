/* Frees racing on several threads: two threads free the same objects
 * (tiny, small and large, exactly one free of each may succeed), a P
 * drops tiny blocks while another thread frees their objects, and a
 * prober frees odd addresses near the newest objects while three Ps
 * allocate and free (spans being made or sent home must refuse them).
 * The suite also builds this file under ThreadSanitizer (make
 * test-c-tsan), which checks every access pair.
 * Go 1.13: none: Go has no explicit free (design §6).
 * Differs from Go: all of it.
 * Locking: check.h's counters are used by the main thread only; threads
 *          count their failures in their own structs.
 */
#define _POSIX_C_SOURCE 200809L /* barriers, fork, sysconf */

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "goalloc.h"
#include "threads.h"

/* ---- Two threads free the same objects at once ------------------- */

typedef struct racer {
    ga_heap *h;
    int p;
    const ga_addr *objs;
    size_t n;
    pthread_barrier_t *barrier;
    uint64_t ok, double_free, other;
} racer;

static void *
race_worker(void *arg)
{
    racer *r = arg;
    pthread_barrier_wait(r->barrier);
    for (size_t i = 0; i < r->n; i++) {
        ga_status st = ga_free_p(r->h, r->p, r->objs[i]);
        if (st == GA_OK) {
            r->ok++;
        }
        else if (st == GA_EDOUBLEFREE || st == GA_ENOTOBJECT) {
            r->double_free++; /* ENOTOBJECT: its span went home first */
        }
        else {
            r->other++;
        }
    }
    return NULL;
}

/* The objects live in spans P 0 caches, so P 0's lock-free free races
 * with P 1's locked one; nothing allocates meanwhile, so no slot is
 * handed out again between the two frees. */
static void
run_double_free_race(uint64_t size, bool noscan)
{
    ga_heap *h = open_heap(GA_BACKING_OS, 2);
    if (h == NULL) {
        return;
    }
    size_t n = (size_t)check_scaled(2000);
    ga_addr *objs = calloc(n, sizeof(*objs));
    for (size_t i = 0; i < n; i++) {
        CHECK(ga_malloc(h, 0, size, noscan, &objs[i]) == GA_OK);
    }
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    racer r[2] = {{h, 0, objs, n, &barrier, 0, 0, 0},
                  {h, 1, objs, n, &barrier, 0, 0, 0}};
    const thread_job jobs[] = {{race_worker, &r[0]}, {race_worker, &r[1]}};
    CHECK(run_threads(jobs, 2));
    CHECK_MSG(r[0].ok + r[1].ok == n &&
                  r[0].double_free + r[1].double_free == n &&
                  r[0].other + r[1].other == 0,
              "size %" PRIu64 ": ok %" PRIu64 "+%" PRIu64 " double %" PRIu64
              "+%" PRIu64 " other %" PRIu64 "+%" PRIu64 " of %zu",
              size, r[0].ok, r[1].ok, r[0].double_free, r[1].double_free,
              r[0].other, r[1].other, n);
    char msg[300];
    CHECK_MSG(ga_verify(h, msg, sizeof(msg)), "%s", msg);
    CHECK(ga_flush(h) == GA_OK);
    ga_mem_stats ms;
    ga_read_mem_stats(h, &ms);
    CHECK_MSG(ms.heap_objects == 0, "size %" PRIu64 ": heap_objects %" PRIu64,
              size, ms.heap_objects);
    pthread_barrier_destroy(&barrier);
    free(objs);
    ga_heap_free(h);
}

/* ---- Two threads free one large object at once ------------------- */

/* Exactly one frees it, the other gets GA_EDOUBLEFREE, and the heap
 * stays sound.  cf_main and cf_worker, released by one store, free
 * together; in a forked child (run_child), as a wrong free may abort. */
static struct {
    ga_heap *h;
    ga_addr obj;
    atomic_int gen;
    atomic_int done;
    ga_status res;
    int rounds;
    int rc; /* cf_main's verdict */
} cf;

static void *
cf_worker(void *arg)
{
    (void)arg;
    for (int g = 1; g <= cf.rounds; g++) {
        while (atomic_load(&cf.gen) < g) {
            sched_yield();
        }
        cf.res = ga_free(cf.h, cf.obj);
        atomic_store(&cf.done, g);
    }
    return NULL;
}

/* cf_main allocates the object of each round, releases the worker and
 * frees it too.  On a failure it releases the worker for every round
 * left, so that the join does not wait forever. */
static void *
cf_main(void *arg)
{
    (void)arg;
    for (int g = 1; g <= cf.rounds && cf.rc == 0; g++) {
        if (ga_malloc(cf.h, 0, 100000, false, &cf.obj) != GA_OK) {
            cf.rc = 11;
            break;
        }
        atomic_store(&cf.gen, g);
        ga_status mine = ga_free(cf.h, cf.obj);
        while (atomic_load(&cf.done) < g) {
            sched_yield();
        }
        ga_status theirs = cf.res;
        if (!((mine == GA_OK && theirs == GA_EDOUBLEFREE) ||
              (theirs == GA_OK && mine == GA_EDOUBLEFREE))) {
            cf.rc = 1;
        }
    }
    atomic_store(&cf.gen, cf.rounds);
    return NULL;
}

static int
concurrent_free_child(void)
{
    cf.h = open_heap(GA_BACKING_VIRTUAL, 2);
    if (cf.h == NULL) {
        return 10;
    }
    cf.rounds = check_scaled(20000);
    const thread_job jobs[] = {{cf_main, NULL}, {cf_worker, NULL}};
    if (!run_threads(jobs, 2)) {
        return 13;
    }
    char msg[256];
    int rc = cf.rc != 0 ? cf.rc : ga_verify(cf.h, msg, sizeof msg) ? 0 : 2;
    ga_heap_free(cf.h);
    return rc;
}

static void
test_concurrent_double_free(void)
{
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
        printf("threads: concurrent double free skipped (one CPU)\n");
        return;
    }
    /* The race hits within a few rounds when both threads run; a busy
     * machine can keep them apart, so a second child gets a chance. */
    int rc = run_child(concurrent_free_child);
    if (rc == 0) {
        rc = run_child(concurrent_free_child);
    }
    CHECK_MSG(rc == 0,
              "two threads freeing one large object: %s (status %d); both "
              "passed classify_locked before either freed, and the second "
              "free threw \"mheap.freeSpanLocked - invalid span state\"",
              rc >= 128 ? "the process died"
                        : "wrong statuses or a broken "
                          "heap",
              rc);
}

/* Tiny blocks dropped while other threads free their objects: P 0 packs
 * tiny objects (so it drops a block every few allocations) and hands each
 * to a consumer that frees it as no P, often while P 0 still packs into
 * its block or is dropping it.  Each block must be freed exactly once,
 * by the drop or by the free of its last object: afterwards every count
 * is back to zero and verify holds.  Under ThreadSanitizer this checks
 * the drop/free protocol's accesses (tiny.c). */
#define TINY_RING 256

static struct {
    _Atomic ga_addr ring[TINY_RING];
    atomic_size_t head; /* written by the producer */
    atomic_size_t tail; /* written by the consumer */
    atomic_int bad;
} tr;

static void *
tiny_consumer(void *arg)
{
    ga_heap *h = arg;
    size_t n = (size_t)check_scaled(200000);
    for (size_t i = 0; i < n; i++) {
        while (atomic_load(&tr.head) == i) {
            sched_yield();
        }
        ga_addr a = atomic_load(&tr.ring[i % TINY_RING]);
        if (ga_free(h, a) != GA_OK) {
            atomic_fetch_add(&tr.bad, 1);
        }
        atomic_store(&tr.tail, i + 1);
    }
    return NULL;
}

/* tiny_producer allocates as P 0 and posts each object to the ring. */
static void *
tiny_producer(void *arg)
{
    ga_heap *h = arg;
    size_t n = (size_t)check_scaled(200000);
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < n; i++) {
        while (i - atomic_load(&tr.tail) >= TINY_RING) {
            sched_yield();
        }
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        ga_addr a = 0;
        if (ga_malloc(h, 0, 1 + (rng >> 33) % 15, true, &a) != GA_OK) {
            atomic_fetch_add(&tr.bad, 1);
        }
        atomic_store(&tr.ring[i % TINY_RING], a);
        atomic_store(&tr.head, i + 1);
    }
    return NULL;
}

static void
run_tiny_drop_race(void)
{
    ga_heap *h = open_heap(GA_BACKING_OS, 1);
    if (h == NULL) {
        return;
    }
    atomic_store(&tr.head, 0);
    atomic_store(&tr.tail, 0);
    atomic_store(&tr.bad, 0);
    const thread_job jobs[] = {{tiny_producer, h}, {tiny_consumer, h}};
    CHECK(run_threads(jobs, 2));
    size_t n = (size_t)check_scaled(200000);
    CHECK_MSG(atomic_load(&tr.bad) == 0, "%d failed calls",
              atomic_load(&tr.bad));
    char msg[300];
    CHECK_MSG(ga_verify(h, msg, sizeof(msg)), "%s", msg);
    CHECK(ga_flush(h) == GA_OK);
    ga_mem_stats ms;
    ga_read_mem_stats(h, &ms);
    CHECK_MSG(ms.heap_objects == 0 && ms.mallocs == n && ms.frees == n &&
                  ms.heap_inuse == 0,
              "heap_objects %" PRIu64 " mallocs %" PRIu64 " frees %" PRIu64
              " heap_inuse %" PRIu64,
              ms.heap_objects, ms.mallocs, ms.frees, ms.heap_inuse);
    CHECK_MSG(ga_verify(h, msg, sizeof(msg)), "%s", msg);
    printf("threads(tiny drop race): %zu tiny objects freed on another "
           "thread\n",
           n);
    ga_heap_free(h);
}

/* Bogus frees while spans are made: a prober frees odd addresses (never
 * an object: no tiny objects here) on pages near the workers' newest
 * objects while they allocate and free through their own Ps.  Some land
 * in spans that are being made or sent home, where the free must not
 * read bitmaps that are not there yet or any more.  Every probe must be
 * refused, and the heap must stay sound. */
#define PROBE_WORKERS 3

static struct {
    ga_heap *h;
    _Atomic ga_addr newest;
    atomic_int running; /* workers not done yet: the prober stops at 0 */
    atomic_int bad;     /* a worker's failed call, or a probe that succeeded */
    atomic_int probes;
} pb;

static void *
probe_worker(void *arg)
{
    int p = (int)(intptr_t)arg;
    uint64_t rng = 0xD1B54A32D192ED03ULL * (uint64_t)(p + 1);
    ga_addr live[64] = {0};
    for (int i = 0; i < check_scaled(40000); i++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t k = (rng >> 33) % 64;
        if (live[k] != 0 && ga_free_p(pb.h, p, live[k]) != GA_OK) {
            atomic_fetch_add(&pb.bad, 1);
        }
        /* 16 B .. 64 KiB, scan: small classes of every span size, and
         * some large objects */
        uint64_t size = (uint64_t)16 << ((rng >> 40) % 13);
        size += (rng >> 20) % size;
        if (ga_malloc(pb.h, p, size, false, &live[k]) != GA_OK) {
            atomic_fetch_add(&pb.bad, 1);
            live[k] = 0;
        }
        atomic_store(&pb.newest, live[k]);
    }
    for (size_t k = 0; k < 64; k++) {
        if (live[k] != 0 && ga_free_p(pb.h, p, live[k]) != GA_OK) {
            atomic_fetch_add(&pb.bad, 1);
        }
    }
    atomic_fetch_sub(&pb.running, 1);
    return NULL;
}

static void *
prober(void *arg)
{
    (void)arg;
    uint64_t rng = 0x2545F4914F6CDD1DULL;
    /* Yield often: on one CPU (or under valgrind, which runs one thread
     * at a time) a spinning prober would starve the workers. */
    for (int n = 0; atomic_load(&pb.running) > 0; n++) {
        if (n % 16 == 0) {
            sched_yield();
        }
        ga_addr near = atomic_load(&pb.newest);
        if (near == 0) {
            continue;
        }
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        int64_t page = (int64_t)((rng >> 33) % 33) - 16;
        ga_addr a = (near & ~(ga_addr)8191) + (ga_addr)(page * 8192) + 1 +
                    8 * ((rng >> 20) % 1024);
        ga_status st = ga_free(pb.h, a);
        if (st != GA_ENOTOBJECT && st != GA_EFOREIGN) {
            atomic_fetch_add(&pb.bad, 1);
        }
        atomic_fetch_add(&pb.probes, 1);
    }
    return NULL;
}

static void
run_bogus_frees(ga_backing backing)
{
    pb.h = open_heap(backing, PROBE_WORKERS);
    if (pb.h == NULL) {
        return;
    }
    atomic_store(&pb.newest, 0);
    atomic_store(&pb.running, PROBE_WORKERS);
    atomic_store(&pb.bad, 0);
    atomic_store(&pb.probes, 0);
    thread_job jobs[PROBE_WORKERS + 1] = {{prober, NULL}};
    for (int i = 0; i < PROBE_WORKERS; i++) {
        jobs[i + 1] = (thread_job){probe_worker, (void *)(intptr_t)i};
    }
    CHECK(run_threads(jobs, PROBE_WORKERS + 1));
    CHECK_MSG(atomic_load(&pb.bad) == 0, "%d failed calls or accepted probes",
              atomic_load(&pb.bad));
    char msg[300];
    CHECK_MSG(ga_verify(pb.h, msg, sizeof(msg)), "%s", msg);
    CHECK(ga_flush(pb.h) == GA_OK);
    ga_mem_stats ms;
    ga_read_mem_stats(pb.h, &ms);
    CHECK_MSG(ms.heap_inuse == 0 && ms.heap_objects == 0,
              "heap_inuse %" PRIu64 " after all frees", ms.heap_inuse);
    printf("threads(bogus frees, %s): %d probes refused\n",
           backing == GA_BACKING_OS ? "os" : "virtual",
           atomic_load(&pb.probes));
    ga_heap_free(pb.h);
}

int
main(void)
{
    CHECK_RUN(run_double_free_race(8, true));     /* tiny */
    CHECK_RUN(run_double_free_race(48, false));   /* small */
    CHECK_RUN(run_double_free_race(40000, true)); /* large */
    CHECK_RUN(test_concurrent_double_free());
    CHECK_RUN(run_tiny_drop_race());
    CHECK_RUN(run_bogus_frees(GA_BACKING_OS));
    CHECK_RUN(run_bogus_frees(GA_BACKING_VIRTUAL));
    return check_summary("threads_free") != 0;
}
