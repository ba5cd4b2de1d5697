/* Threads: N Ps on N threads at once, on one heap.
 *
 * The stress test runs 8 threads, each as its own P, allocating tiny,
 * small and large objects, writing a tag into each, and freeing a third
 * of them itself (its P's lock-free path), a third as no P (ga_free) and
 * handing a third to the next thread, which frees them as its own P (a
 * remote free into a span another P may be caching).  Between rounds
 * every thread waits at a barrier while one verifies the whole heap
 * (Go's stop-the-world).  A tag found changed means two live objects
 * overlapped.  Then four threads on their own large objects, counted
 * exactly, and a throw while another thread is inside a call (both in
 * forked children, so that an abort cannot end the run).  The races of
 * frees are test_threads_free.c's.  The suite also builds this file
 * under ThreadSanitizer (make test-c-tsan), which checks every access
 * pair.
 * Go 1.13: the runtime's own concurrency (per-P mcaches, mcentral and
 *          heap locks); Go has no explicit free, so the free paths are
 *          goalloc's (design §6).
 * Differs from Go: nothing to differ from; this is a test.
 * Locking: check.h's counters are used by the main thread only; worker
 *          threads count their failures in their own struct.
 */
#define _POSIX_C_SOURCE 200809L /* barriers, fork, clock_gettime */

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
    thread_job jobs[NTHREADS];
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
        jobs[i] = (thread_job){stress_worker, &w[i]};
    }
    CHECK(run_threads(jobs, NTHREADS));
    uint64_t allocs = 0, frees = 0, remote = 0;
    for (int i = 0; i < NTHREADS; i++) {
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

/* ---- Threads on their own objects, each through its own P -------- */

/* Large objects only, in a forked child (run_child): the numbers of
 * mallocs and frees must come out exact. */
static struct {
    ga_heap *h;
    atomic_int bad;
} tw;

static void *
tw_worker(void *arg)
{
    int p = (int)(intptr_t)arg;
    uint64_t seed = 0x9E3779B97F4A7C15ULL * (uint64_t)(p + 1);
    ga_addr objs[16];
    for (int round = 0; round < 100; round++) {
        for (int i = 0; i < 16; i++) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            uint64_t size = 32769 + seed % ((uint64_t)2 << 20);
            if (ga_malloc(tw.h, p, size, (seed >> 40) & 1, &objs[i]) !=
                GA_OK) {
                atomic_fetch_add(&tw.bad, 1);
                return NULL;
            }
        }
        for (int i = 0; i < 16; i++) {
            if (ga_free(tw.h, objs[i]) != GA_OK) {
                atomic_fetch_add(&tw.bad, 1);
            }
        }
    }
    return NULL;
}

static int
threaded_workload_child(void)
{
    tw.h = open_heap(GA_BACKING_VIRTUAL, 4);
    if (tw.h == NULL) {
        return 10;
    }
    thread_job jobs[4];
    for (int k = 0; k < 4; k++) {
        jobs[k] = (thread_job){tw_worker, (void *)(intptr_t)k};
    }
    if (!run_threads(jobs, 4)) {
        return 13;
    }
    char msg[256];
    int rc = atomic_load(&tw.bad) != 0 ? 1 : 0;
    if (rc == 0 && !ga_verify(tw.h, msg, sizeof msg)) {
        rc = 2;
    }
    ga_mem_stats ms;
    if (rc == 0 && (ga_read_mem_stats(tw.h, &ms) != GA_OK ||
                    ms.heap_inuse != 0 || ms.heap_objects != 0 ||
                    ms.mallocs != 4 * 100 * 16 || ms.frees != ms.mallocs)) {
        rc = 3;
    }
    ga_heap_free(tw.h);
    return rc;
}

static void
test_threaded_workload(void)
{
    int rc = run_child(threaded_workload_child);
    CHECK_MSG(rc == 0, "4 threads on their own objects: status %d", rc);
}

/* ---- A throw while another thread is in a call ------------------- */

/* goalloc.h: "calls on one heap may come from several threads", and a
 * throw must poison the heap, never abort the process (design §10.3).
 * Thread A holds the heap lock for a few ms in ga_scavenge; thread B
 * calls ga_test_throw meanwhile, which must wait for the lock.  B must
 * get GA_EPOISONED and the process must live. */
static struct {
    ga_heap *h;
    atomic_int started;
    ga_status a;
    ga_status b;
} ct;

static void *
ct_scavenger(void *arg)
{
    (void)arg;
    uint64_t rel = 0;
    atomic_store(&ct.started, 1);
    ct.a = ga_scavenge(ct.h, UINT64_MAX, &rel);
    return NULL;
}

static void *
ct_thrower(void *arg)
{
    (void)arg;
    while (atomic_load(&ct.started) == 0) {
        sched_yield(); /* a loaded machine or a sanitizer: let A run */
    }
    busy_wait_ns(30000); /* A is inside ga_scavenge by now */
    ct.b = ga_test_throw(ct.h, "boom");
    return NULL;
}

#define CT_OBJECTS 40000

static int
concurrent_throw_child(void)
{
    static ga_addr objs[CT_OBJECTS];
    ct.h = open_heap(GA_BACKING_VIRTUAL, 2);
    if (ct.h == NULL) {
        return 10;
    }
    /* 20000 unscavenged free spans between in-use ones: a long scavenge
     * (fewer at a GOALLOC_TEST_SCALE below 1). */
    const int nobj = check_scaled(CT_OBJECTS);
    for (int i = 0; i < nobj; i++) {
        if (ga_malloc(ct.h, 0, 40000, false, &objs[i]) != GA_OK) {
            return 11;
        }
    }
    for (int i = 0; i < nobj; i += 2) {
        if (ga_free(ct.h, objs[i]) != GA_OK) {
            return 12;
        }
    }
    atomic_store(&ct.started, 0);
    const thread_job jobs[] = {{ct_scavenger, NULL}, {ct_thrower, NULL}};
    if (!run_threads(jobs, 2)) {
        return 13;
    }
    int rc = 0;
    if (ct.b != GA_EPOISONED || (ct.a != GA_OK && ct.a != GA_EPOISONED) ||
        ga_poisoned(ct.h) == NULL || strcmp(ga_poisoned(ct.h), "boom") != 0) {
        rc = 1;
    }
    ga_heap_free(ct.h);
    return rc;
}

static void
test_concurrent_throw(void)
{
    int died = 0, wrong = 0, last = 0;
    for (int i = 0; i < 6; i++) {
        int rc = run_child(concurrent_throw_child);
        if (rc >= 128 || rc < 0) {
            died++;
            last = rc;
        }
        else if (rc != 0) {
            wrong++;
            last = rc;
        }
    }
    CHECK_MSG(died == 0 && wrong == 0,
              "a throw while another thread was in a facade call: %d of 6 "
              "processes died (last status %d), %d misbehaved; the throw "
              "found h->throw_jmp cleared (or pointing into the other "
              "thread's frame) and aborted",
              died, last, wrong);
}

int
main(void)
{
    CHECK_RUN(run_stress(GA_BACKING_OS));
    CHECK_RUN(
        run_stress(GA_BACKING_VIRTUAL)); /* no memory behind it: no tags */
    CHECK_RUN(test_threaded_workload());
    CHECK_RUN(test_concurrent_throw());
    return check_summary("threads") != 0;
}
