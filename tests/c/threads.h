/* Helpers of the threaded tests (test_threads.c, test_threads_free.c).
 *
 * run_threads starts a set of jobs, each a function and its argument, on
 * threads of their own and joins them all: every threaded scenario is one
 * call of it, so no test repeats the pthread create/join loop.
 * run_child runs a scenario in a forked child, so that a bug that aborts
 * the process shows up as a failed check instead of ending the run.
 * open_heap opens a heap with Go's default options but the backing and
 * the number of Ps.
 * Go 1.13: none (Go's tests run goroutines).
 * Differs from Go: n/a; this is a test helper.
 * Locking: check.h's counters belong to the main thread: run_threads'
 *          jobs count their failures in their own structs.
 */
#ifndef GA_TESTS_THREADS_H
#define GA_TESTS_THREADS_H

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "goalloc.h"

/* The most jobs one run_threads call takes. */
#define THREADS_MAX 16

typedef struct thread_job {
    void *(*fn)(void *);
    void *arg;
} thread_job;

/* run_threads runs jobs[0 .. n) at once, one thread each, and returns
 * when all have returned.  False when a thread could not be started (the
 * jobs that did start are still joined; a job that waits for one that
 * never started would hang, so scenarios whose jobs wait on each other
 * must not rely on a partial start). */
static inline bool
run_threads(const thread_job *jobs, int n)
{
    pthread_t t[THREADS_MAX];
    if (n <= 0 || n > THREADS_MAX) {
        return false;
    }
    int started = 0;
    while (started < n && pthread_create(&t[started], NULL, jobs[started].fn,
                                         jobs[started].arg) == 0) {
        started++;
    }
    for (int i = 0; i < started; i++) {
        pthread_join(t[i], NULL);
    }
    return started == n;
}

/* run_child runs fn in a child process with stderr silenced (unless
 * GOALLOC_TEST_CHILD_STDERR is set, for a sanitizer report).  Returns
 * its exit status, 128 + the signal that killed it, or -1. */
static inline int
run_child(int (*fn)(void))
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        int fd = getenv("GOALLOC_TEST_CHILD_STDERR") == NULL
                     ? open("/dev/null", O_WRONLY)
                     : -1;
        if (fd >= 0) {
            dup2(fd, 2);
        }
        _exit(fn());
    }
    int ws = 0;
    if (waitpid(pid, &ws, 0) != pid) {
        return -1;
    }
    if (WIFSIGNALED(ws)) {
        return 128 + WTERMSIG(ws);
    }
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

static inline void
busy_wait_ns(long ns)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        clock_gettime(CLOCK_MONOTONIC, &t1);
    } while ((t1.tv_sec - t0.tv_sec) * 1000000000L +
                 (t1.tv_nsec - t0.tv_nsec) <
             ns);
}

/* open_heap: a heap with Go's default options (linux/amd64, go1.13.8)
 * but procs Ps on backing; NULL (a failed check) if it cannot be made. */
static inline ga_heap *
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

#endif
