/* Tests of the graded internal checks (GA_DEBUG, csrc/throw.h).
 *
 * The same file runs in every build and checks what that build promises:
 * in a release build (GA_DEBUG=0, make test-c) GA_ASSERT evaluates
 * nothing and a broken page-heap invariant goes unnoticed until ga_verify
 * looks; at GA_DEBUG >= 1 a broken GA_ASSERT aborts with its text and
 * place; at GA_DEBUG >= 2 (make test-c-debug) the next span allocation
 * or free finds the broken invariant and throws, naming it.  The heap is
 * broken on purpose through its internals (mheap.h), as a bug would.
 * Go 1.13: none (Go's validateInvariants runs in its tests only).
 * Differs from Go: n/a.
 * Locking: single-threaded; the abort runs in a forked child.
 */
#define _POSIX_C_SOURCE 200809L /* fork, pipe */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "goalloc.h"
#include "mheap.h"

static ga_heap *
new_heap(void)
{
    ga_options o;
    ga_options_init(&o);
    o.backing = GA_BACKING_VIRTUAL;
    ga_status st;
    char err[256];
    ga_heap *h = ga_heap_new(&o, &st, err, sizeof(err));
    if (!CHECK_MSG(h != NULL, "%s", err)) {
        exit(1);
    }
    return h;
}

/* A page-heap invariant broken behind the heap's back (heap_idle one
 * page off, as a missed update would leave it): release builds allocate
 * on, GA_DEBUG=2 stops at the next span allocation. */
static void
test_broken_invariant(void)
{
    ga_heap *h = new_heap();
    ga_addr a = 0;
    CHECK(ga_malloc(h, 0, 100000, false, &a) == GA_OK);
    h->stats.heap_idle += PAGE_SIZE;
    ga_status st = ga_malloc(h, 0, 100000, false, &a);
#if GA_DEBUG >= 2
    CHECK_MSG(st == GA_EPOISONED, "%s", ga_status_name(st));
    const char *why = ga_poisoned(h);
    CHECK_MSG(why != NULL &&
                  strstr(why, "GA_DEBUG: after mheap_alloc: heap_sys != "
                              "heap_inuse + heap_idle") != NULL,
              "%s", why ? why : "(not poisoned)");
#else
    /* the release build does not look: the allocation goes through, and
     * only ga_verify finds the broken invariant */
    CHECK_MSG(st == GA_OK, "%s", ga_status_name(st));
    char msg[300] = "";
    CHECK_MSG(!ga_verify(h, msg, sizeof(msg)) &&
                  strstr(msg, "heap_inuse + heap_idle") != NULL,
              "%s", msg);
    h->stats.heap_idle -= PAGE_SIZE;
    CHECK_MSG(ga_verify(h, msg, sizeof(msg)), "%s", msg);
#endif
    ga_heap_free(h);
}

/* The same after a free: a span that goes back to the heap. */
static void
test_broken_invariant_on_free(void)
{
    ga_heap *h = new_heap();
    ga_addr a = 0, b = 0;
    CHECK(ga_malloc(h, 0, 100000, false, &a) == GA_OK);
    CHECK(ga_malloc(h, 0, 100000, false, &b) == GA_OK);
    h->pages_in_use++;
    ga_status st = ga_free(h, a);
#if GA_DEBUG >= 2
    CHECK_MSG(st == GA_EPOISONED, "%s", ga_status_name(st));
    const char *why = ga_poisoned(h);
    CHECK_MSG(why != NULL && strstr(why, "after mheap_free_span_locked: "
                                         "pagesInUse") != NULL,
              "%s", why ? why : "(not poisoned)");
#else
    CHECK_MSG(st == GA_OK, "%s", ga_status_name(st));
    h->pages_in_use--;
    char msg[300];
    CHECK_MSG(ga_verify(h, msg, sizeof(msg)), "%s", msg);
#endif
    ga_heap_free(h);
}

static int evaluated;

static bool
side_effect(void)
{
    evaluated++;
    return true;
}

/* GA_ASSERT evaluates its condition in debug builds only. */
static void
test_assert_evaluates(void)
{
    evaluated = 0;
    GA_ASSERT(side_effect());
    CHECK_MSG(evaluated == (GA_DEBUG >= 1),
              "evaluated %d times at "
              "GA_DEBUG=%d",
              evaluated, GA_DEBUG);
}

#if GA_DEBUG >= 1
/* A broken GA_ASSERT aborts, printing the condition: here the removal
 * of a span from a list it is not on (a forked child does it). */
static void
test_assert_aborts(void)
{
    int fds[2];
    if (!CHECK(pipe(fds) == 0)) {
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        mspan s;
        memset(&s, 0, sizeof(s));
        mspan_list l, other;
        mspan_list_init(&l);
        mspan_list_init(&other);
        mspan_list_insert(&other, &s);
        mspan_list_remove(&l, &s);
        _exit(0);
    }
    close(fds[1]);
    char out[512] = "";
    size_t n = 0;
    ssize_t r;
    while (n + 1 < sizeof(out) &&
           (r = read(fds[0], out + n, sizeof(out) - 1 - n)) > 0) {
        n += (size_t)r;
    }
    out[n] = '\0';
    close(fds[0]);
    int ws = 0;
    waitpid(pid, &ws, 0);
    CHECK_MSG(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGABRT,
              "the child was not aborted (status 0x%x)", ws);
    CHECK_MSG(strstr(out, "assertion failed: mspan_list_of(s) == l") != NULL &&
                  strstr(out, "mspan.c") != NULL,
              "stderr: %s", out);
}
#endif

int
main(void)
{
    test_broken_invariant();
    test_broken_invariant_on_free();
    test_assert_evaluates();
#if GA_DEBUG >= 1
    test_assert_aborts();
#endif
    printf("debug: GA_DEBUG=%d\n", GA_DEBUG);
    int failed = check_summary("debug");
    return failed > 255 ? 255 : failed;
}
