/* Test harness for the C tests in tests/c.
 *
 * CHECK(cond) and CHECK_MSG(cond, fmt, ...) count a pass or a failure;
 * a failure prints file:line and the expression, then carries on, so one
 * run reports every broken check.  Both are expressions yielding cond,
 * so a test can write `if (!CHECK(p != NULL)) return;`.  main ends with
 * `return check_summary("treap") != 0;`.
 * Modelled on mimalloc's test/testhelper.h.
 * Differs from Go: Go's tests use package testing; this is its C stand-in.
 * Locking: single-threaded test programs only (the counters are static).
 */
#ifndef GA_TESTS_CHECK_H
#define GA_TESTS_CHECK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* Failures printed in full; later ones are only counted, so a broken
 * randomized test does not bury the first, most useful message. */
#define CHECK_MAX_REPORTS 50

#if defined(__GNUC__)
#define CHECK_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CHECK_PRINTF(f, a)
#endif

static int check_passed;
static int check_failed;

static inline bool
check_pass(void)
{
    check_passed++;
    return true;
}

/* check_fail reports one failure; fmt == NULL means no message. */
static inline CHECK_PRINTF(4, 5) bool check_fail(const char *file, int line,
                                                 const char *expr,
                                                 const char *fmt, ...)
{
    if (++check_failed > CHECK_MAX_REPORTS) {
        if (check_failed == CHECK_MAX_REPORTS + 1) {
            fprintf(stderr, "(further failures are counted, not shown)\n");
        }
        return false;
    }
    fprintf(stderr, "%s:%d: CHECK failed: %s", file, line, expr);
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        fputs(": ", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    return false;
}

#define CHECK(cond)                                                           \
    ((cond) ? check_pass() : check_fail(__FILE__, __LINE__, #cond, NULL))

/* The format is part of the variadic arguments so that a message without
 * arguments stays valid ISO C. */
#define CHECK_MSG(cond, ...)                                                  \
    ((cond) ? check_pass()                                                    \
            : check_fail(__FILE__, __LINE__, #cond, __VA_ARGS__))

/* check_scaled(n) scales the round count n of a long randomized or
 * threaded test by GOALLOC_TEST_SCALE, a fraction in (0, 1] (default 1,
 * also for anything unparsable), rounding up, never below 1: make
 * test-c-valgrind runs the tests with 0.1.  The scale is read on every
 * call; it is set before the process starts. */
static inline int
check_scaled(int n)
{
    const char *e = getenv("GOALLOC_TEST_SCALE");
    double f = e != NULL ? strtod(e, NULL) : 1.0;
    if (!(f > 0.0 && f < 1.0)) {
        return n;
    }
    int m = (int)(n * f + 0.999999);
    return m < 1 ? 1 : m;
}

/* CHECK_RUN(call) runs one test (a call statement).  With
 * GOALLOC_TEST_VERBOSE set it prints "  call: N passed, M failed" for
 * that call alone, so that moving tests between files can be shown to
 * keep every test and every check (tools/ctest_counts.py sums them). */
#define CHECK_RUN(call)                                                       \
    do {                                                                      \
        int check_p0_ = check_passed, check_f0_ = check_failed;               \
        call;                                                                 \
        check_report_run(#call, check_passed - check_p0_,                     \
                         check_failed - check_f0_);                           \
    } while (0)

static inline void
check_report_run(const char *call, int passed, int failed)
{
    if (getenv("GOALLOC_TEST_VERBOSE") != NULL) {
        printf("  %s: %d passed, %d failed\n", call, passed, failed);
    }
}

/* check_summary prints "<name>: N passed, N failed" and returns the
 * number of failures. */
static inline int
check_summary(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
    fflush(stdout);
    return check_failed;
}

#endif
