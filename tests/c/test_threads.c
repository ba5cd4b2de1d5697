/* Threads: N Ps on N threads at once, frees on every thread.
 *
 * The stress test runs 8 threads, each as its own P, allocating tiny,
 * small and large objects, writing a tag into each, and freeing a third
 * of them itself (its P's lock-free path), a third as no P (ga_free) and
 * handing a third to the next thread, which frees them as its own P (a
 * remote free into a span another P may be caching).  Between rounds
 * every thread waits at a barrier while one verifies the whole heap
 * (Go's stop-the-world).  A tag found changed means two live objects
 * overlapped.  Then two threads race to free the same objects: exactly
 * one free of each may succeed.  Then one P packs tiny objects while
 * another thread frees them, racing the P's drops of its blocks.  Last,
 * a prober frees odd addresses near
 * the newest objects while three Ps allocate and free: spans being made
 * or sent home must refuse them.  The suite also builds this file under
 * ThreadSanitizer (make test-c-tsan), which checks every access pair.
 * Go 1.13: the runtime's own concurrency (per-P mcaches, mcentral and
 *          heap locks); Go has no explicit free, so the free races are
 *          goalloc's (design §6).
 * Differs from Go: nothing to differ from; this is a test.
 * Locking: check.h's counters are used by the main thread only; worker
 *          threads count their failures in their own struct.
 */
#define _POSIX_C_SOURCE 200809L /* pthread barriers under -std=c11 */

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "goalloc.h"

#define NTHREADS 8
#define NROUNDS 4
#define MAILBOX 4096

typedef struct obj {
    ga_addr a;
    uint64_t size;
    uint8_t tag;
} obj;

/* A mailbox of objects another thread allocated, for its owner to free. */
typedef struct mailbox {
    pthread_mutex_t lock;
    obj items[MAILBOX];
    size_t n;
} mailbox;

typedef struct worker {
    int p;
    ga_heap *h;
    uint64_t rng;
    int ops;
    mailbox *inbox;  /* this thread's */
    mailbox *outbox; /* the next thread's */
    pthread_barrier_t *barrier;
    bool tags; /* os backing: objects are real memory */
    obj *live;
    size_t nlive;
    uint64_t allocs, frees, remote_frees;
    int failures;
    char first[200];
} worker;

static void
fail(worker *w, const char *what, ga_addr a, ga_status st)
{
    if (w->failures++ == 0) {
        snprintf(w->first, sizeof(w->first), "P%d: %s 0x%" PRIx64 ": %s", w->p,
                 what, a, ga_status_name(st));
    }
}

static uint64_t
rnd(worker *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return w->rng;
}

static uint64_t
pick_size(worker *w, bool *noscan)
{
    uint64_t r = rnd(w) % 100;
    *noscan = (rnd(w) & 1) != 0;
    if (r < 35) {
        *noscan = true;
        return 1 + rnd(w) % 15; /* tiny */
    }
    if (r < 85) {
        return 16 + rnd(w) % 1024;
    }
    if (r < 99) {
        return 1024 + rnd(w) % (32768 - 1024);
    }
    return 32769 + rnd(w) % 200000; /* large */
}

static size_t
tag_len(uint64_t size)
{
    return size < 16 ? (size_t)size : 16;
}

static void
write_tag(const obj *o)
{
    memset((void *)(uintptr_t)o->a, o->tag, tag_len(o->size));
}

static bool
tag_intact(const obj *o)
{
    const uint8_t *b = (const uint8_t *)(uintptr_t)o->a;
    for (size_t i = 0; i < tag_len(o->size); i++) {
        if (b[i] != o->tag) {
            return false;
        }
    }
    return true;
}

/* free_obj frees o as P p (or GA_NO_P) after checking its tag. */
static void
free_obj(worker *w, const obj *o, int p)
{
    if (w->tags && !tag_intact(o)) {
        fail(w, "tag overwritten (two live objects overlap) at", o->a, GA_OK);
    }
    ga_status st = ga_free_p(w->h, p, o->a);
    if (st != GA_OK) {
        fail(w, "free", o->a, st);
    }
    w->frees++;
}

static void
post(worker *w, const obj *o)
{
    mailbox *m = w->outbox;
    pthread_mutex_lock(&m->lock);
    bool room = m->n < MAILBOX;
    if (room) {
        m->items[m->n++] = *o;
    }
    pthread_mutex_unlock(&m->lock);
    if (!room) {
        free_obj(w, o, w->p);
    }
}

static void
drain_inbox(worker *w)
{
    mailbox *m = w->inbox;
    obj batch[64];
    size_t k;
    do {
        pthread_mutex_lock(&m->lock);
        k = m->n < 64 ? m->n : 64;
        m->n -= k;
        memcpy(batch, &m->items[m->n], k * sizeof(obj));
        pthread_mutex_unlock(&m->lock);
        for (size_t i = 0; i < k; i++) {
            free_obj(w, &batch[i], w->p);
            w->remote_frees++;
        }
    } while (k == 64);
}

static void
one_op(worker *w, size_t cap)
{
    if (w->nlive < cap && (rnd(w) % 100 < 55 || w->nlive == 0)) {
        obj o;
        bool noscan;
        o.size = pick_size(w, &noscan);
        o.tag = (uint8_t)(1 + rnd(w) % 255);
        ga_status st = ga_malloc(w->h, w->p, o.size, noscan, &o.a);
        if (st != GA_OK) {
            fail(w, "malloc", 0, st);
            return;
        }
        if (w->tags) {
            write_tag(&o);
        }
        w->live[w->nlive++] = o;
        w->allocs++;
        return;
    }
    size_t i = rnd(w) % w->nlive;
    obj o = w->live[i];
    w->live[i] = w->live[--w->nlive];
    switch (rnd(w) % 3) {
    case 0:
        free_obj(w, &o, w->p);
        break;
    case 1:
        free_obj(w, &o, GA_NO_P);
        break;
    default:
        post(w, &o);
    }
}

static void *
stress_worker(void *arg)
{
    worker *w = arg;
    size_t cap = 2000;
    w->live = calloc(cap, sizeof(obj));
    for (int round = 0; round < NROUNDS; round++) {
        for (int k = 0; k < w->ops; k++) {
            one_op(w, cap);
            if (k % 128 == 0) {
                drain_inbox(w);
            }
        }
        /* stop the world: everyone waits while P 0 verifies */
        pthread_barrier_wait(w->barrier);
        if (w->p == 0) {
            char msg[300];
            if (!ga_verify(w->h, msg, sizeof(msg))) {
                fail(w, msg, 0, GA_OK);
            }
        }
        pthread_barrier_wait(w->barrier);
    }
    /* free what is left, then the mail that others sent */
    while (w->nlive > 0) {
        obj o = w->live[--w->nlive];
        post(w, &o);
    }
    pthread_barrier_wait(w->barrier);
    drain_inbox(w);
    free(w->live);
    return NULL;
}

/* open_heap: a heap with Go's default options but procs Ps on backing;
 * NULL (a failed check) if it cannot be made. */
static ga_heap *
open_heap(ga_backing backing, int procs)
{
    ga_options o;
    ga_options_init(&o);
    o.procs = procs;
    o.backing = backing;
    ga_status st;
    char err[200];
    ga_heap *h = ga_heap_new(&o, &st, err, sizeof(err));
    CHECK_MSG(h != NULL, "%s", err);
    return h;
}

static void
run_stress(ga_backing backing)
{
    ga_heap *h = open_heap(backing, NTHREADS);
    if (h == NULL) {
        return;
    }
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, NTHREADS);
    mailbox *boxes = calloc(NTHREADS, sizeof(mailbox));
    worker w[NTHREADS];
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        pthread_mutex_init(&boxes[i].lock, NULL);
    }
    for (int i = 0; i < NTHREADS; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].p = i;
        w[i].h = h;
        w[i].rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1);
        w[i].ops = check_scaled(4000);
        w[i].inbox = &boxes[i];
        w[i].outbox = &boxes[(i + 1) % NTHREADS];
        w[i].barrier = &barrier;
        w[i].tags = backing == GA_BACKING_OS;
        CHECK(pthread_create(&t[i], NULL, stress_worker, &w[i]) == 0);
    }
    uint64_t allocs = 0, frees = 0, remote = 0;
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(t[i], NULL);
        CHECK_MSG(w[i].failures == 0, "%d failures, first: %s", w[i].failures,
                  w[i].first);
        allocs += w[i].allocs;
        frees += w[i].frees;
        remote += w[i].remote_frees;
    }
    CHECK_MSG(allocs == frees && remote > 0,
              "allocs %" PRIu64 " frees %" PRIu64 " remote %" PRIu64, allocs,
              frees, remote);
    char msg[300];
    CHECK_MSG(ga_verify(h, msg, sizeof(msg)), "%s", msg);
    ga_mem_stats ms;
    ga_read_mem_stats(h, &ms);
    CHECK_MSG(ms.mallocs - ms.frees == ms.heap_objects,
              "heap_objects %" PRIu64 " mallocs %" PRIu64 " frees %" PRIu64,
              ms.heap_objects, ms.mallocs, ms.frees);
    /* the Ps' current tiny blocks go with the flush */
    CHECK(ga_flush(h) == GA_OK);
    ga_read_mem_stats(h, &ms);
    CHECK_MSG(ms.heap_inuse == 0 && ms.heap_objects == 0,
              "heap_inuse %" PRIu64 " heap_objects %" PRIu64
              " after all frees",
              ms.heap_inuse, ms.heap_objects);
    CHECK_MSG(ga_verify(h, msg, sizeof(msg)), "%s", msg);
    printf("threads(%s): %d threads, %" PRIu64 " allocs, %" PRIu64
           " frees (%" PRIu64 " on another thread)\n",
           backing == GA_BACKING_OS ? "os" : "virtual", NTHREADS, allocs,
           frees, remote);
    for (int i = 0; i < NTHREADS; i++) {
        pthread_mutex_destroy(&boxes[i].lock);
    }
    free(boxes);
    pthread_barrier_destroy(&barrier);
    ga_heap_free(h);
}

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
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        CHECK(pthread_create(&t[i], NULL, race_worker, &r[i]) == 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
    }
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
    pthread_t t;
    CHECK(pthread_create(&t, NULL, tiny_consumer, h) == 0);
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
    pthread_join(t, NULL);
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
    atomic_int stop;
    atomic_int bad; /* a worker's failed call, or a probe that succeeded */
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
    return NULL;
}

static void *
prober(void *arg)
{
    (void)arg;
    uint64_t rng = 0x2545F4914F6CDD1DULL;
    /* Yield often: on one CPU (or under valgrind, which runs one thread
     * at a time) a spinning prober would starve the workers. */
    for (int n = 0; !atomic_load(&pb.stop); n++) {
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
    atomic_store(&pb.stop, 0);
    atomic_store(&pb.bad, 0);
    atomic_store(&pb.probes, 0);
    pthread_t t[PROBE_WORKERS], pt;
    CHECK(pthread_create(&pt, NULL, prober, NULL) == 0);
    for (int i = 0; i < PROBE_WORKERS; i++) {
        CHECK(pthread_create(&t[i], NULL, probe_worker, (void *)(intptr_t)i) ==
              0);
    }
    for (int i = 0; i < PROBE_WORKERS; i++) {
        pthread_join(t[i], NULL);
    }
    atomic_store(&pb.stop, 1);
    pthread_join(pt, NULL);
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
    CHECK_RUN(run_stress(GA_BACKING_OS));
    CHECK_RUN(
        run_stress(GA_BACKING_VIRTUAL)); /* no memory behind it: no tags */
    CHECK_RUN(run_double_free_race(8, true));     /* tiny */
    CHECK_RUN(run_double_free_race(48, false));   /* small */
    CHECK_RUN(run_double_free_race(40000, true)); /* large */
    CHECK_RUN(run_tiny_drop_race());
    CHECK_RUN(run_bogus_frees(GA_BACKING_OS));
    CHECK_RUN(run_bogus_frees(GA_BACKING_VIRTUAL));
    return check_summary("threads") != 0;
}
