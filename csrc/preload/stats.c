/* gomalloc's exit snapshot: the process's heap as a goalloc.snapshot/1
 * JSON document (goalloc/snapshot.py defines the schema and loads it).
 *
 * The same keys and values as goalloc.snapshot.snapshot(heap) writes for
 * a Heap in Python, made from the same facade calls (the field lists of
 * goalloc.h), so goalloc.snapshot.load_json reads it and the plots and
 * metrics work on a real program's final heap.  It is written with
 * open(2) and write(2) from a buffer on the stack, with the world stopped
 * and the guard set (runtime.c), so the heap it describes does not change
 * while it is written and nothing here allocates from it; the span list
 * comes from glibc's malloc.  A file that cannot be written gives one
 * line on stderr and changes nothing else (the exit status included).
 * Go 1.13: runtime.ReadMemStats and the introspection of export_test.go.
 * Differs from Go: Go has no such dump.
 * Locking: the caller has stopped the world.
 */
#define _GNU_SOURCE
#include "gomalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef GOALLOC_VERSION
#define GOALLOC_VERSION "unknown"
#endif

typedef struct jw {
    int fd;
    bool failed;
    int err;
    size_t n;
    char buf[1 << 16];
} jw;

static void
jw_flush(jw *w)
{
    size_t off = 0;
    while (off < w->n && !w->failed) {
        ssize_t k = write(w->fd, w->buf + off, w->n - off);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            w->failed = true;
            w->err = k < 0 ? errno : EIO;
        }
        else {
            off += (size_t)k;
        }
    }
    w->n = 0;
}

static void
jw_str(jw *w, const char *s)
{
    for (; *s != '\0'; s++) {
        if (w->n == sizeof w->buf) {
            jw_flush(w);
        }
        w->buf[w->n++] = *s;
    }
}

static void
jw_u64(jw *w, uint64_t v)
{
    char d[24];
    int i = (int)sizeof d - 1;
    d[i] = '\0';
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    jw_str(w, d + i);
}

static void
jw_i64(jw *w, int64_t v)
{
    if (v < 0) {
        jw_str(w, "-");
        jw_u64(w, (uint64_t)0 - (uint64_t)v);
        return;
    }
    jw_u64(w, (uint64_t)v);
}

/* jw_ratio: a finite double, or null for NaN (as the Python writer). */
static void
jw_ratio(jw *w, double x)
{
    if (isnan(x)) {
        jw_str(w, "null");
        return;
    }
    char d[40];
    snprintf(d, sizeof d, "%.17g", x);
    jw_str(w, d);
    if (strpbrk(d, ".eE") == NULL) {
        jw_str(w, ".0"); /* a float, as json.dumps writes it */
    }
}

static void
jw_bool(jw *w, bool b)
{
    jw_str(w, b ? "true" : "false");
}

/* jw_qstr: a JSON string of known-safe characters (names, versions). */
static void
jw_qstr(jw *w, const char *s)
{
    jw_str(w, "\"");
    jw_str(w, s);
    jw_str(w, "\"");
}

static void
jw_key(jw *w, const char *k, bool *first)
{
    jw_str(w, *first ? "\"" : ", \"");
    *first = false;
    jw_str(w, k);
    jw_str(w, "\": ");
}

static const char *
state_name(int state)
{
#define GM_X(name, value)                                                     \
    if (state == (value)) {                                                   \
        return #name;                                                         \
    }
    GA_SPAN_STATES(GM_X)
#undef GM_X
    return "dead";
}

/* The writers of one field of a record, by its kind (goalloc.h). */
#define GM_PUT_U64(w, v) jw_u64(w, v)
#define GM_PUT_ADDR(w, v) jw_u64(w, v)
#define GM_PUT_INT(w, v) jw_i64(w, v)
#define GM_PUT_UINT(w, v) jw_u64(w, v)
#define GM_PUT_BOOL(w, v) jw_bool(w, v)
#define GM_PUT_STR(w, v) jw_qstr(w, v)
#define GM_PUT_STATE(w, v) jw_qstr(w, state_name(v))
#define GM_PUT_BACKING(w, v)                                                  \
    jw_qstr(w, (v) == GA_BACKING_OS ? "os" : "virtual")
#define GM_PUT_RELEASE(w, v) jw_qstr(w, ga_release_name(v))
#define GM_FIELD(name, kind, doc)                                             \
    jw_key(w, #name, &first);                                                 \
    GM_PUT_##kind(w, r->name);

static void
put_info(jw *w, ga_heap *h)
{
    ga_heap_info info, *r = &info;
    ga_heap_info_get(h, &info);
    bool first = true;
    jw_str(w, "{");
    GA_HEAP_INFO_FIELDS(GM_FIELD)
    jw_str(w, "}");
}

static void
put_hints(jw *w, ga_heap *h)
{
    size_t n = ga_hints(h, NULL, 0);
    ga_hint_info *buf = __libc_malloc((n ? n : 1) * sizeof *buf);
    n = buf != NULL ? ga_hints(h, buf, n) : 0;
    jw_str(w, "[");
    for (size_t i = 0; i < n; i++) {
        const ga_hint_info *r = &buf[i];
        bool first = true;
        jw_str(w, i ? ", {" : "{");
        GA_HINT_FIELDS(GM_FIELD)
        jw_str(w, "}");
    }
    jw_str(w, "]");
    __libc_free(buf);
}

static void
put_arenas(jw *w, ga_heap *h)
{
    size_t n = ga_arenas(h, NULL, 0);
    ga_arena_info *a = __libc_malloc((n ? n : 1) * sizeof *a);
    n = a != NULL ? ga_arenas(h, a, n) : 0;
    jw_str(w, "[");
    for (size_t i = 0; i < n; i++) {
        /* the Python record calls index idx */
        jw_str(w, i ? ", {\"base\": " : "{\"base\": ");
        jw_u64(w, a[i].base);
        jw_str(w, ", \"idx\": ");
        jw_u64(w, a[i].index);
        jw_str(w, ", \"l1\": ");
        jw_u64(w, a[i].l1);
        jw_str(w, ", \"l2\": ");
        jw_u64(w, a[i].l2);
        jw_str(w, "}");
    }
    jw_str(w, "]");
    __libc_free(a);
}

static void
put_spans(jw *w, ga_heap *h)
{
    size_t n = ga_spans(h, NULL, 0);
    ga_span_info *s = __libc_malloc((n ? n : 1) * sizeof *s);
    n = s != NULL ? ga_spans(h, s, n) : 0;
    jw_str(w, "[");
    for (size_t i = 0; i < n; i++) {
        const ga_span_info *r = &s[i];
        bool first = true;
        jw_str(w, i ? ",\n{" : "\n{");
        GA_SPAN_FIELDS(GM_FIELD)
        jw_str(w, "}");
    }
    jw_str(w, "]");
    __libc_free(s);
}

static void
put_stats(jw *w, ga_heap *h)
{
    ga_mem_stats ms;
    if (ga_read_mem_stats(h, &ms) != GA_OK) {
        memset(&ms, 0, sizeof ms);
    }
    bool first = true;
    jw_str(w, "{");
#define GM_STAT(name, doc)                                                    \
    jw_key(w, #name, &first);                                                 \
    jw_u64(w, ms.name);
    MSTATS_FIELDS(GM_STAT)
#undef GM_STAT
    jw_str(w, ", \"by_size\": [");
    for (int c = 0; c < NUM_SIZE_CLASSES; c++) {
        jw_str(w, c ? ", {\"sizeclass\": " : "{\"sizeclass\": ");
        jw_u64(w, (uint64_t)c);
        jw_str(w, ", \"size\": ");
        jw_u64(w, ms.by_size[c].size);
        jw_str(w, ", \"mallocs\": ");
        jw_u64(w, ms.by_size[c].mallocs);
        jw_str(w, ", \"frees\": ");
        jw_u64(w, ms.by_size[c].frees);
        jw_str(w, "}");
    }
    jw_str(w, "]}");
}

static void
put_span_list(jw *w, ga_heap *h, int spc, int which)
{
    size_t n = ga_central_spans(h, spc, which, NULL, 0);
    ga_addr *b = __libc_malloc((n ? n : 1) * sizeof *b);
    n = b != NULL ? ga_central_spans(h, spc, which, b, n) : 0;
    jw_str(w, "[");
    for (size_t i = 0; i < n; i++) {
        jw_str(w, i ? ", " : "");
        jw_u64(w, b[i]);
    }
    jw_str(w, "]");
    __libc_free(b);
}

/* the mcentrals that hold a span or counted an allocation or free */
static void
put_centrals(jw *w, ga_heap *h)
{
    jw_str(w, "[");
    bool any = false;
    for (int spc = 0; spc < NUM_SPAN_CLASSES; spc++) {
        ga_central_info ci;
        ga_central_info_get(h, spc, &ci);
        size_t nonempty = ga_central_spans(h, spc, 0, NULL, 0);
        size_t empty = ga_central_spans(h, spc, 1, NULL, 0);
        if (!nonempty && !empty && !ci.nmalloc && !ci.nsmallfree) {
            continue;
        }
        jw_str(w, any ? ",\n{\"spanclass\": " : "\n{\"spanclass\": ");
        any = true;
        jw_u64(w, (uint64_t)spc);
        jw_str(w, ", \"nonempty\": ");
        put_span_list(w, h, spc, 0);
        jw_str(w, ", \"empty\": ");
        put_span_list(w, h, spc, 1);
        jw_str(w, ", \"nmalloc\": ");
        jw_u64(w, ci.nmalloc);
        jw_str(w, ", \"nfree\": ");
        jw_u64(w, ci.nsmallfree);
        jw_str(w, ", \"sizeclass\": ");
        jw_u64(w, (uint64_t)(spc >> 1));
        jw_str(w, ", \"noscan\": ");
        jw_bool(w, spc & 1);
        jw_str(w, "}");
    }
    jw_str(w, "]");
}

static void
put_caches(jw *w, ga_heap *h)
{
    ga_heap_info info;
    ga_heap_info_get(h, &info);
    jw_str(w, "[");
    for (int p = 0; p < info.procs; p++) {
        ga_cache_info ci, *r = &ci;
        if (!ga_cache_info_get(h, p, &ci)) {
            continue;
        }
        bool first = true;
        jw_str(w, p ? ",\n{" : "\n{");
        jw_key(w, "p", &first);
        jw_u64(w, (uint64_t)p);
        GA_CACHE_FIELDS(GM_FIELD)
        jw_str(w, ", \"alloc\": [");
        bool any = false;
        for (int spc = 0; spc < NUM_SPAN_CLASSES; spc++) {
            if (ci.alloc[spc] != 0) {
                jw_str(w, any ? ", {\"spanclass\": " : "{\"spanclass\": ");
                any = true;
                jw_u64(w, (uint64_t)spc);
                jw_str(w, ", \"base\": ");
                jw_u64(w, ci.alloc[spc]);
                jw_str(w, "}");
            }
        }
        jw_str(w, "]}");
    }
    jw_str(w, "]");
}

/* The objects ga_live_objects lists, summed by size class (0: large):
 * goalloc.snapshot.live_by_class, which size_class_waste draws.  The key
 * is left out when glibc cannot lend the list (it is optional). */
static void
put_live_by_class(jw *w, ga_heap *h)
{
    size_t n = ga_live_objects(h, NULL, 0);
    ga_live_object *o = __libc_malloc((n ? n : 1) * sizeof *o);
    if (o == NULL) {
        return;
    }
    n = ga_live_objects(h, o, n);
    struct {
        uint64_t objects, bytes, requested;
    } sum[NUM_SIZE_CLASSES] = {{0, 0, 0}};
    for (size_t i = 0; i < n; i++) {
        uint64_t c = o[i].spanclass >> 1;
        sum[c].objects++;
        sum[c].bytes += o[i].size;
        sum[c].requested += o[i].requested;
    }
    __libc_free(o);
    jw_str(w, ",\n\"live_by_class\": [");
    bool any = false;
    for (int c = 0; c < NUM_SIZE_CLASSES; c++) {
        if (sum[c].objects == 0) {
            continue;
        }
        jw_str(w, any ? ",\n{\"sizeclass\": " : "\n{\"sizeclass\": ");
        any = true;
        jw_u64(w, (uint64_t)c);
        jw_str(w, ", \"objects\": ");
        jw_u64(w, sum[c].objects);
        jw_str(w, ", \"bytes\": ");
        jw_u64(w, sum[c].bytes);
        jw_str(w, ", \"requested\": ");
        jw_u64(w, sum[c].requested);
        jw_str(w, "}");
    }
    jw_str(w, "]");
}

static double
ratio(uint64_t num, uint64_t den, double empty)
{
    return den > 0 ? (double)num / (double)den : empty;
}

/* goalloc.fragmentation's metrics, from the same counters */
static void
put_fragmentation(jw *w, ga_heap *h)
{
    ga_heap_counters c;
    if (ga_heap_counters_get(h, &c) != GA_OK) {
        memset(&c, 0, sizeof c);
    }
    uint64_t internal = c.heap_alloc - c.requested_live;
    uint64_t span = c.heap_inuse - c.heap_alloc;
    uint64_t page = c.heap_idle - c.heap_released;
    uint64_t external = c.heap_idle - c.largest_free;
    bool first = true;
    jw_str(w, "{");
#define GM_METRIC(name, bytes, den)                                           \
    jw_key(w, #name, &first);                                                 \
    jw_ratio(w, ratio(bytes, den, 0.0));                                      \
    jw_key(w, #name "_bytes", &first);                                        \
    jw_i64(w, (int64_t)(bytes));
    GM_METRIC(internal, internal, c.heap_alloc)
    GM_METRIC(span, span, c.heap_inuse)
    GM_METRIC(page, page, c.heap_sys)
    GM_METRIC(external, external, c.heap_idle)
#undef GM_METRIC
    jw_key(w, "overhead", &first);
    jw_ratio(w, ratio(c.heap_sys, c.requested_live, NAN));
    jw_key(w, "requested_live", &first);
    jw_u64(w, c.requested_live);
    jw_key(w, "heap_alloc", &first);
    jw_u64(w, c.heap_alloc);
    jw_str(w, "}");
}

/* expand_path: path with each %p replaced by the pid. */
static bool
expand_path(const char *path, char *out, size_t cap)
{
    char pid[24];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    size_t n = 0;
    for (const char *s = path; *s != '\0'; s++) {
        const char *add = s[0] == '%' && s[1] == 'p' ? pid : NULL;
        size_t len = add != NULL ? strlen(add) : 1;
        if (n + len >= cap) {
            return false;
        }
        memcpy(out + n, add != NULL ? add : s, len);
        n += len;
        s += add != NULL;
    }
    out[n] = '\0';
    return true;
}

void
gm_stats_fail_line(const char *path, int err)
{
    char line[4096 + 256];
    snprintf(line, sizeof line,
             "goalloc: cannot write the heap snapshot to %s: %s\n", path,
             strerror(err));
    ssize_t k = write(STDERR_FILENO, line, strlen(line));
    (void)k;
}

void
gm_write_stats(ga_heap *h, const char *path)
{
    char name[4096];
    if (!expand_path(path, name, sizeof name)) {
        gm_stats_fail_line(path, ENAMETOOLONG);
        return;
    }
    static jw w; /* 64 KiB: not on a stack that may be small */
    w.fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    w.failed = false;
    w.n = 0;
    if (w.fd < 0) {
        gm_stats_fail_line(name, errno);
        return;
    }
    jw_str(&w, "{\"schema\": \"goalloc.snapshot/1\", \"goalloc_version\": ");
    jw_qstr(&w, GOALLOC_VERSION);
    jw_str(&w, ", \"digest\": ");
    jw_u64(&w, ga_digest(h));
    jw_str(&w, ",\n\"info\": ");
    put_info(&w, h);
    jw_str(&w, ",\n\"hints\": ");
    put_hints(&w, h);
    jw_str(&w, ",\n\"arenas\": ");
    put_arenas(&w, h);
    jw_str(&w, ",\n\"spans\": ");
    put_spans(&w, h);
    jw_str(&w, ",\n\"stats\": ");
    put_stats(&w, h);
    jw_str(&w, ",\n\"centrals\": ");
    put_centrals(&w, h);
    jw_str(&w, ",\n\"caches\": ");
    put_caches(&w, h);
    jw_str(&w, ",\n\"fragmentation\": ");
    put_fragmentation(&w, h);
    put_live_by_class(&w, h);
    jw_str(&w, "}\n");
    jw_flush(&w);
    if (close(w.fd) != 0 && !w.failed) {
        w.failed = true;
        w.err = errno;
    }
    if (w.failed) {
        gm_stats_fail_line(name, w.err);
    }
}
