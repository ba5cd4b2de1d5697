/* goalloc._core: the CPython binding of the C core.
 *
 * One Heap object owns one ga_heap.  Arguments are checked here, before
 * the core sees them; ga_status codes become goalloc's exceptions here
 * and nowhere else.  Records cross as tuples and dicts; the Python
 * package (goalloc/) turns them into typed, immutable records.
 * Go 1.13: none (this is goalloc's surface).
 * Differs from Go: n/a.
 * Locking: every method first converts all its arguments to C values
 *          (conversion can run Python code: __index__, __bool__, __len__,
 *          and that code may close the heap or call it from another
 *          thread), then takes the heap (acquire_heap), which marks it
 *          busy until the method returns (release_heap).  While it is
 *          busy, any other call raises HeapBusyError: from another thread
 *          (replay and the bulk calls release the GIL around their C
 *          loop), and from Python code the call itself runs (a progress
 *          callback, a finalizer run by the cyclic GC while a result is
 *          built).  So the core never sees two callers at once, and a
 *          heap is never freed under a call.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goalloc.h"
#include "sizeclasses.h"

/* ---- Module state ------------------------------------------------- */

/* set_errorf is PyErr_Format with C's printf (PyErr_Format has no %llx). */
static void
set_errorf(PyObject *type, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    PyErr_SetString(type, buf);
}

typedef struct core_state {
    PyTypeObject *heap_type;
    PyTypeObject *mapping_type;
    PyTypeObject *view_type;
    PyObject *goalloc_error;
    PyObject *invalid_free_error;
    PyObject *double_free_error;
    PyObject *out_of_memory_error;
    PyObject *heap_closed_error;
    PyObject *heap_corruption_error;
    PyObject *heap_busy_error;
} core_state;

static core_state *
get_core_state(PyObject *module)
{
    return (core_state *)PyModule_GetState(module);
}

/* A Mapping keeps a closed heap's memory mapped while views of it
 * exist: the heap hands its ranges over at close, and the Mapping unmaps
 * them when the last reference (heap or view) goes. */
typedef struct MappingObject {
    PyObject_HEAD
    mem_range *ranges; /* owned once the heap is closed */
    size_t nranges;
} MappingObject;

/* A ViewExporter exports [addr, addr+len) of a live object as a
 * writable buffer; memoryview() of it is what Heap.view returns. */
typedef struct ViewExporter {
    PyObject_HEAD
    PyObject *mapping;
    void *addr;
    Py_ssize_t len;
} ViewExporter;

typedef struct HeapObject {
    PyObject_HEAD
    ga_heap *heap;
    PyObject *module;  /* strong ref: keeps the exceptions alive */
    PyObject *mapping; /* MappingObject, made at the first view() */
    ga_backing backing;
    /* The call that holds the heap ("replaying a trace", "running
     * alloc"), or NULL; busy_thread is the thread that made it.  Read and
     * written with the GIL held (acquire_heap, release_heap). */
    const char *busy;
    unsigned long busy_thread;
} HeapObject;

static core_state *
heap_state(HeapObject *self)
{
    return get_core_state(self->module);
}

/* ---- Errors ------------------------------------------------------- */

/* status_error is the one map from ga_status to goalloc's exceptions:
 * it returns the exception type for status s (borrowed) and writes its
 * message into msg; addr and size give context. */
static PyObject *
status_error(HeapObject *self, ga_status s, uint64_t addr, uint64_t size,
             char *msg, size_t len)
{
    core_state *st = heap_state(self);
    unsigned long long a = addr, n = size;
    switch (s) {
    case GA_ENOMEM: {
        /* why the heap refused to grow, when it says */
        const char *why = self->heap ? ga_oom_reason(self->heap) : NULL;
        snprintf(msg, len,
                 "runtime: out of memory: cannot allocate %llu-byte block%s%s",
                 n, why ? ": " : "", why ? why : "");
        return st->out_of_memory_error;
    }
    case GA_EINVAL:
        snprintf(msg, len, "argument out of range");
        return PyExc_ValueError;
    case GA_EFOREIGN:
        snprintf(msg, len,
                 "free of 0x%llx: not an address in this heap's arenas", a);
        return st->invalid_free_error;
    case GA_ENOTOBJECT:
        snprintf(msg, len, "free of 0x%llx: not the start of a live object",
                 a);
        return st->invalid_free_error;
    case GA_EDOUBLEFREE:
        snprintf(msg, len, "free of 0x%llx: object already freed", a);
        return st->double_free_error;
    case GA_EUNSUPPORTED:
        snprintf(msg, len, "not supported by this heap");
        return PyExc_NotImplementedError;
    case GA_EPOISONED:
        snprintf(msg, len, "%s",
                 self->heap ? ga_poisoned(self->heap) : "heap poisoned");
        return st->heap_corruption_error;
    default:
        snprintf(msg, len, "goalloc error %d", (int)s);
        return st->goalloc_error;
    }
}

/* set_error_from_status raises the exception for status s; addr and size
 * give context.  Always returns NULL. */
static PyObject *
set_error_from_status(HeapObject *self, ga_status s, uint64_t addr,
                      uint64_t size)
{
    char msg[512];
    PyErr_SetString(status_error(self, s, addr, size, msg, sizeof(msg)),
                    msg);
    return NULL;
}

/* raise_at raises type(msg) with the attribute index set (the position
 * in a bulk call's array) and, when given, addresses.  msg and addresses
 * are stolen; NULL msg means its making failed.  Always returns NULL. */
static PyObject *
raise_at(PyObject *type, PyObject *msg, Py_ssize_t index,
         PyObject *addresses)
{
    PyObject *exc = msg ? PyObject_CallOneArg(type, msg) : NULL;
    PyObject *i = exc ? PyLong_FromSsize_t(index) : NULL;
    if (i == NULL || PyObject_SetAttrString(exc, "index", i) < 0 ||
        (addresses != NULL &&
         PyObject_SetAttrString(exc, "addresses", addresses) < 0)) {
        goto done;
    }
    PyErr_SetObject(type, exc);
done:
    Py_XDECREF(i);
    Py_XDECREF(exc);
    Py_XDECREF(msg);
    Py_XDECREF(addresses);
    return NULL;
}

/* ---- The call protocol -------------------------------------------- */

/* raise_busy raises HeapBusyError for a call made while the heap is busy,
 * naming who holds it. */
static void
raise_busy(HeapObject *self, const char *prefix)
{
    if (self->busy_thread == PyThread_get_thread_ident()) {
        PyErr_Format(heap_state(self)->heap_busy_error,
                     "%sthe heap is %s: this call came from Python code that "
                     "call ran (a callback, __index__, a finalizer)",
                     prefix, self->busy);
    }
    else {
        PyErr_Format(heap_state(self)->heap_busy_error,
                     "%sthe heap is %s in another thread", prefix,
                     self->busy);
    }
}

/* live_heap returns the heap if it is idle, open and healthy, or NULL
 * with HeapBusyError, HeapClosedError or HeapCorruptionError set. */
static ga_heap *
live_heap(HeapObject *self)
{
    if (self->busy != NULL) {
        raise_busy(self, "");
        return NULL;
    }
    if (self->heap == NULL) {
        PyErr_SetString(heap_state(self)->heap_closed_error,
                        "the heap is closed");
        return NULL;
    }
    const char *poison = ga_poisoned(self->heap);
    if (poison != NULL) {
        PyErr_Format(heap_state(self)->heap_corruption_error, "%s", poison);
        return NULL;
    }
    return self->heap;
}

/* acquire_heap takes the heap for a call whose arguments are all
 * converted (a method with arguments checks live_heap first too, so that
 * a closed, busy or poisoned heap is reported before a bad argument): it returns the heap marked busy doing `what` (a phrase after
 * "the heap is"), or NULL with the exception live_heap sets.  No Python
 * code may run between a method's last conversion and this call. */
static ga_heap *
acquire_heap(HeapObject *self, const char *what)
{
    ga_heap *h = live_heap(self);
    if (h != NULL) {
        self->busy = what;
        self->busy_thread = PyThread_get_thread_ident();
    }
    return h;
}

/* release_heap ends the call acquire_heap began; returns result, so that
 * a method can end with `return release_heap(self, result);`. */
static PyObject *
release_heap(HeapObject *self, PyObject *result)
{
    self->busy = NULL;
    return result;
}

/* read_heap runs fn on the acquired heap: the body of every method
 * without arguments. */
static PyObject *
read_heap(HeapObject *self, const char *what,
          PyObject *(*fn)(HeapObject *self, ga_heap *h))
{
    ga_heap *h = acquire_heap(self, what);
    if (h == NULL) {
        return NULL;
    }
    return release_heap(self, fn(self, h));
}

/* ---- Argument helpers --------------------------------------------- */

/* as_u64 converts an int argument; negative or too large values set
 * ValueError (or err_type when given).  Returns false on error. */
static bool
as_u64(PyObject *o, const char *what, uint64_t *out, PyObject *err_type)
{
    if (!PyLong_Check(o)) {
        /* integers of other types (NumPy's) convert through __index__ */
        if (!PyIndex_Check(o)) {
            PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s",
                         what, Py_TYPE(o)->tp_name);
            return false;
        }
        PyObject *i = PyNumber_Index(o);
        if (i == NULL) {
            return false;
        }
        bool ok = as_u64(i, what, out, err_type);
        Py_DECREF(i);
        return ok;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow == 0 && v == -1 && PyErr_Occurred()) {
        return false;
    }
    if (overflow == 0 && v >= 0) {
        *out = (uint64_t)v;
        return true;
    }
    if (overflow > 0) {
        unsigned long long u = PyLong_AsUnsignedLongLong(o);
        if (!(u == (unsigned long long)-1 && PyErr_Occurred())) {
            *out = u;
            return true;
        }
        PyErr_Clear();
    }
    PyErr_Format(err_type ? err_type : PyExc_ValueError,
                 "%s out of range: %R", what, o);
    return false;
}

/* str_arg returns the UTF-8 of str o; ValueError if it holds a NUL
 * ("linux\x00evil" must not pass for "linux" in C). */
static const char *
str_arg(PyObject *o, const char *what)
{
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(o, &len);
    if (s != NULL && strlen(s) != (size_t)len) {
        PyErr_Format(PyExc_ValueError, "%s must not contain NUL: %R", what,
                     o);
        return NULL;
    }
    return s;
}

static const char *
optional_str(PyObject *o, const char *what, const char *dflt)
{
    if (o == NULL || o == Py_None) {
        return dflt;
    }
    if (!PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be a str", what);
        return NULL;
    }
    return str_arg(o, what);
}

/* ---- Heap: construction ------------------------------------------- */

static struct PyModuleDef core_module;

/* find_core_module finds _core through type or the base it derives
 * from (Python subclasses of Heap are not tied to a module). */
static PyObject *
find_core_module(PyTypeObject *type)
{
    for (PyTypeObject *t = type; t != NULL; t = t->tp_base) {
        if (!(t->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
            continue;
        }
        PyObject *m = PyType_GetModule(t);
        if (m != NULL && PyModule_GetDef(m) == &core_module) {
            return m;
        }
        PyErr_Clear();
    }
    PyErr_SetString(PyExc_TypeError, "not a goalloc._core.Heap type");
    return NULL;
}

static int
parse_backing(PyObject *o, const char *goos, const char *goarch,
              ga_backing *out)
{
    if (o == NULL || o == Py_None) {
        bool native = strcmp(goos, "linux") == 0 &&
                      strcmp(goarch, "amd64") == 0;
#if defined(__linux__) && defined(__x86_64__)
        *out = native ? GA_BACKING_OS : GA_BACKING_VIRTUAL;
#else
        (void)native;
        *out = GA_BACKING_VIRTUAL;
#endif
        return 0;
    }
    if (!PyUnicode_Check(o)) {
        PyErr_SetString(PyExc_TypeError, "backing must be a str");
        return -1;
    }
    const char *b = str_arg(o, "backing");
    if (b == NULL) {
        return -1;
    }
    if (strcmp(b, "os") == 0) {
        *out = GA_BACKING_OS;
    }
    else if (strcmp(b, "virtual") == 0) {
        *out = GA_BACKING_VIRTUAL;
    }
    else {
        PyErr_Format(PyExc_ValueError,
                     "unknown backing %R (expected 'os' or 'virtual')", o);
        return -1;
    }
    return 0;
}

static int
opt_u64(PyObject *o, const char *what, uint64_t *out)
{
    if (o == NULL || o == Py_None) {
        return 0;
    }
    return as_u64(o, what, out, NULL) ? 0 : -1;
}

/* parse_release: release="go1.13.8" (the default), "go1.13.0" or its
 * alias "go1.13"; a str with an embedded NUL is no release name. */
static int
parse_release(PyObject *o, ga_release *out)
{
    *out = GA_RELEASE_GO1_13_8;
    if (o == NULL || o == Py_None) {
        return 0;
    }
    if (!PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError, "release must be a str, not %.100s",
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(o, &n);
    if (s == NULL) {
        return -1;
    }
    if (strlen(s) != (size_t)n || !ga_release_parse(s, out)) {
        PyErr_Format(PyExc_ValueError,
                     "unknown release %R (expected 'go1.13.8', 'go1.13.0' "
                     "or its alias 'go1.13')", o);
        return -1;
    }
    return 0;
}

/* parse_gogc: gogc=N (Go's GOGC, an int32; negative or "off" = off)
 * sets the scavenger goal Go has with it until the first GC, in the
 * heap's release; it and scavenge_goal are two ways to say one thing, so
 * not both. */
static int
parse_gogc(PyObject *gogc_o, PyObject *goal_o, ga_release release,
           uint64_t *goal)
{
    if (gogc_o == NULL || gogc_o == Py_None) {
        return 0;
    }
    if (goal_o != NULL && goal_o != Py_None) {
        PyErr_SetString(PyExc_TypeError,
                        "give gogc or scavenge_goal, not both");
        return -1;
    }
    long gogc;
    if (PyUnicode_Check(gogc_o) &&
        PyUnicode_CompareWithASCIIString(gogc_o, "off") == 0) {
        gogc = -1;
    }
    else if (PyLong_Check(gogc_o)) {
        gogc = PyLong_AsLong(gogc_o);
        if ((gogc == -1 && PyErr_Occurred()) || gogc > INT32_MAX ||
            gogc < INT32_MIN) {
            PyErr_Clear();
            PyErr_SetString(PyExc_ValueError,
                            "gogc must fit Go's int32 GOGC (or be \"off\")");
            return -1;
        }
    }
    else {
        PyErr_SetString(PyExc_TypeError, "gogc must be an int or \"off\"");
        return -1;
    }
    *goal = ga_release_scavenge_goal(release, (int)gogc);
    return 0;
}

static PyObject *
heap_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"goos",          "goarch",    "race",
                             "backing",       "procs",     "scavenge_goal",
                             "sys_limit",     "binary_end", "seed", "gogc",
                             "release",       "metadata_limit", NULL};
    PyObject *goos_o = NULL, *goarch_o = NULL, *backing_o = NULL;
    PyObject *goal_o = NULL, *limit_o = NULL, *bend_o = NULL, *seed_o = NULL;
    PyObject *procs_o = NULL, *gogc_o = NULL, *release_o = NULL;
    PyObject *meta_o = NULL;
    int race = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$OOpOOOOOOOOO", kwlist,
                                     &goos_o, &goarch_o, &race, &backing_o,
                                     &procs_o, &goal_o, &limit_o, &bend_o,
                                     &seed_o, &gogc_o, &release_o,
                                     &meta_o)) {
        return NULL;
    }
    ga_options o;
    ga_options_init(&o);
    ga_release release;
    if (parse_release(release_o, &release) < 0) {
        return NULL;
    }
    /* the release first: it sets the default scavenger goal */
    ga_options_set_release(&o, release);
    o.goos = optional_str(goos_o, "goos", "linux");
    o.goarch = optional_str(goarch_o, "goarch", "amd64");
    if (o.goos == NULL || o.goarch == NULL) {
        return NULL;
    }
    o.race = race != 0;
    if (parse_backing(backing_o, o.goos, o.goarch, &o.backing) < 0) {
        return NULL;
    }
    if (procs_o != NULL) {
        if (!PyLong_Check(procs_o)) {
            PyErr_SetString(PyExc_TypeError, "procs must be an int");
            return NULL;
        }
        long procs = PyLong_AsLong(procs_o);
        if (procs == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            procs = 0;
        }
        if (procs < 1 || procs > 1024) {
            PyErr_SetString(PyExc_ValueError,
                            "procs must be between 1 and 1024");
            return NULL;
        }
        o.procs = (int)procs;
    }
    if (parse_gogc(gogc_o, goal_o, o.release, &o.scavenge_goal) < 0 ||
        opt_u64(goal_o, "scavenge_goal", &o.scavenge_goal) < 0 ||
        opt_u64(limit_o, "sys_limit", &o.sys_limit) < 0 ||
        opt_u64(meta_o, "metadata_limit", &o.metadata_limit) < 0 ||
        opt_u64(bend_o, "binary_end", &o.binary_end) < 0 ||
        opt_u64(seed_o, "seed", &o.seed) < 0) {
        return NULL;
    }

    PyObject *module = find_core_module(type);
    if (module == NULL) {
        return NULL;
    }
    core_state *st = get_core_state(module);
    ga_status status;
    char err[256];
    ga_heap *h = ga_heap_new(&o, &status, err, sizeof(err));
    if (h == NULL) {
        PyObject *exc = status == GA_EINVAL ? PyExc_ValueError
                        : status == GA_ENOMEM ? st->out_of_memory_error
                                              : st->heap_corruption_error;
        PyErr_SetString(exc, err);
        return NULL;
    }
    HeapObject *self = (HeapObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        ga_heap_free(h);
        return NULL;
    }
    self->heap = h;
    self->backing = o.backing;
    self->module = Py_NewRef(module);
    return (PyObject *)self;
}

/* heap_release frees the heap; if views were made, its memory stays
 * mapped until the Mapping goes. */
static void
heap_release(HeapObject *self)
{
    if (self->heap == NULL) {
        return;
    }
    if (self->mapping != NULL) {
        MappingObject *m = (MappingObject *)self->mapping;
        ga_heap_free_keep_mappings(self->heap, &m->ranges, &m->nranges);
    }
    else {
        ga_heap_free(self->heap);
    }
    self->heap = NULL;
    Py_CLEAR(self->mapping);
}

static void
heap_dealloc(HeapObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    heap_release(self);
    Py_CLEAR(self->module);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static int
heap_traverse(HeapObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->module);
    Py_VISIT(self->mapping);
    return 0;
}

/* ---- Heap: allocation --------------------------------------------- */

/* parse_alloc_kw parses alloc's keywords, noscan (any truth value) and p
 * (an int; out-of-range values become -1, refused later), for alloc and
 * the bulk calls alike. */
static bool
parse_alloc_kw(const char *fname, PyObject *const *kwargs,
               PyObject *kwnames, bool *noscan, long *p)
{
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        PyObject *val = kwargs[i];
        if (PyUnicode_CompareWithASCIIString(key, "noscan") == 0) {
            int t = PyObject_IsTrue(val);
            if (t < 0) {
                return false;
            }
            *noscan = t != 0;
        }
        else if (PyUnicode_CompareWithASCIIString(key, "p") == 0) {
            if (!PyLong_Check(val)) {
                PyErr_SetString(PyExc_TypeError, "p must be an int");
                return false;
            }
            int overflow = 0;
            *p = PyLong_AsLongAndOverflow(val, &overflow);
            if (overflow != 0) {
                PyErr_Format(PyExc_ValueError,
                             "p=%R is not a P of this heap", val);
                return false;
            }
        }
        else {
            PyErr_Format(PyExc_TypeError,
                         "%s() got an unexpected keyword argument %R", fname,
                         key);
            return false;
        }
    }
    return true;
}

/* bad_p raises alloc's ValueError if p is not a P of h; false if p is
 * fine. */
static bool
bad_p(ga_heap *h, long p)
{
    ga_heap_info info;
    ga_heap_info_get(h, &info);
    if (p >= 0 && p < info.procs) {
        return false;
    }
    PyErr_Format(PyExc_ValueError, "p=%ld is not a P of this heap (procs=%d)",
                 p, info.procs);
    return true;
}

/* too_large_msg writes alloc's message for a size beyond maxAlloc. */
static void
too_large_msg(ga_heap *h, uint64_t size, char *msg, size_t len)
{
    ga_heap_info info;
    ga_heap_info_get(h, &info);
    snprintf(msg, len, "size %llu exceeds maxAlloc (%llu) of %s/%s",
             (unsigned long long)size, (unsigned long long)info.max_alloc,
             info.goos, info.goarch);
}

static PyObject *
heap_alloc(HeapObject *self, PyObject *const *args, Py_ssize_t nargs,
           PyObject *kwnames)
{
    if (live_heap(self) == NULL) { /* its state first; taken below */
        return NULL;
    }
    if (nargs != 1) {
        PyErr_Format(PyExc_TypeError,
                     "alloc() takes 1 positional argument (%zd given)",
                     nargs);
        return NULL;
    }
    bool noscan = false;
    long p = 0;
    if (!parse_alloc_kw("alloc", args + nargs, kwnames, &noscan, &p)) {
        return NULL;
    }
    uint64_t size;
    if (!as_u64(args[0], "size", &size, NULL)) {
        return NULL;
    }
    ga_heap *h = acquire_heap(self, "running alloc");
    if (h == NULL) {
        return NULL;
    }
    if (p < 0 || p > INT32_MAX) {
        bad_p(h, p);
        return release_heap(self, NULL);
    }
    ga_addr a;
    ga_status s = ga_malloc(h, (int)p, size, noscan, &a);
    if (s == GA_OK) {
        return release_heap(self, PyLong_FromUnsignedLongLong(a));
    }
    if (s == GA_EINVAL) {
        if (!bad_p(h, p)) {
            char msg[256];
            too_large_msg(h, size, msg, sizeof(msg));
            PyErr_SetString(PyExc_ValueError, msg);
        }
        return release_heap(self, NULL);
    }
    return release_heap(self, set_error_from_status(self, s, 0, size));
}

static PyObject *
heap_free(HeapObject *self, PyObject *arg)
{
    if (live_heap(self) == NULL) { /* its state first; taken below */
        return NULL;
    }
    uint64_t addr;
    if (!as_u64(arg, "address", &addr, heap_state(self)->invalid_free_error)) {
        return NULL;
    }
    ga_heap *h = acquire_heap(self, "running free");
    if (h == NULL) {
        return NULL;
    }
    /* Every call on a Heap is serialised (the call protocol), so the
     * binding runs as every P at once. */
    ga_status s = ga_free_p(h, GA_ALL_PS, addr);
    if (s != GA_OK) {
        return release_heap(self, set_error_from_status(self, s, addr, 0));
    }
    return release_heap(self, Py_NewRef(Py_None));
}

static PyObject *
heap_scavenge(HeapObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (live_heap(self) == NULL) { /* its state first; taken below */
        return NULL;
    }
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "scavenge() takes at most 1 argument");
        return NULL;
    }
    uint64_t n = UINT64_MAX;
    if (nargs == 1 && args[0] != Py_None &&
        !as_u64(args[0], "nbytes", &n, NULL)) {
        return NULL;
    }
    ga_heap *h = acquire_heap(self, "running scavenge");
    if (h == NULL) {
        return NULL;
    }
    uint64_t released = 0;
    ga_status s = ga_scavenge(h, n, &released);
    if (s != GA_OK) {
        return release_heap(self, set_error_from_status(self, s, 0, 0));
    }
    return release_heap(self, PyLong_FromUnsignedLongLong(released));
}

/* ---- Heap: introspection ------------------------------------------ */

/* FETCH_ALL declares buf (a PyMem array of type, NULL when out of memory)
 * and n, filled by the ga_* listing call fn made twice: to count, then to
 * fill.  The call protocol keeps the heap still in between. */
#define FETCH_ALL(h, fn, type, buf, n)                                        \
    size_t n = fn((h), NULL, 0);                                              \
    type *buf = PyMem_Calloc(n ? n : 1, sizeof(type));                        \
    if (buf != NULL) {                                                        \
        n = fn((h), buf, n);                                                  \
    }

/* list_of builds a list of item(buf, i) for i < n; NULL on error. */
static PyObject *
list_of(const void *buf, size_t n, PyObject *(*item)(const void *, size_t))
{
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list != NULL && i < n; i++) {
        PyObject *t = item(buf, i);
        if (t == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, t);
    }
    return list;
}

static PyObject *
hint_item(const void *buf, size_t i)
{
    const ga_hint_info *x = (const ga_hint_info *)buf + i;
    return Py_BuildValue("(KO)", (unsigned long long)x->addr,
                         x->down ? Py_True : Py_False);
}

static PyObject *
arena_item(const void *buf, size_t i)
{
    const ga_arena_info *x = (const ga_arena_info *)buf + i;
    return Py_BuildValue("(KKKK)", (unsigned long long)x->base,
                         (unsigned long long)x->index,
                         (unsigned long long)x->l1, (unsigned long long)x->l2);
}

static const char *const state_names[] = {"dead", "inuse", "manual", "free"};

static PyObject *
span_tuple(const ga_span_info *s)
{
    return Py_BuildValue("(KKsOiiOKKKKKO)", (unsigned long long)s->base,
                         (unsigned long long)s->npages,
                         state_names[s->state & 3],
                         s->scavenged ? Py_True : Py_False, s->spanclass,
                         s->sizeclass, s->noscan ? Py_True : Py_False,
                         (unsigned long long)s->elemsize,
                         (unsigned long long)s->nelems,
                         (unsigned long long)s->alloc_count,
                         (unsigned long long)s->freeindex,
                         (unsigned long long)s->limit,
                         s->needzero ? Py_True : Py_False);
}

static PyObject *
span_item(const void *buf, size_t i)
{
    return span_tuple((const ga_span_info *)buf + i);
}

static PyObject *
hints_of(HeapObject *Py_UNUSED(self), ga_heap *h)
{
    FETCH_ALL(h, ga_hints, ga_hint_info, buf, n);
    if (buf == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *list = list_of(buf, n, hint_item);
    PyMem_Free(buf);
    return list;
}

static PyObject *
arenas_of(HeapObject *Py_UNUSED(self), ga_heap *h)
{
    FETCH_ALL(h, ga_arenas, ga_arena_info, buf, n);
    if (buf == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *list = list_of(buf, n, arena_item);
    PyMem_Free(buf);
    return list;
}

static PyObject *
spans_of(HeapObject *Py_UNUSED(self), ga_heap *h)
{
    FETCH_ALL(h, ga_spans, ga_span_info, buf, n);
    if (buf == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *list = list_of(buf, n, span_item);
    PyMem_Free(buf);
    return list;
}

static PyObject *
heap_span_of(HeapObject *self, PyObject *arg)
{
    if (live_heap(self) == NULL) { /* its state first; taken below */
        return NULL;
    }
    uint64_t addr;
    if (!as_u64(arg, "address", &addr, NULL)) {
        return NULL;
    }
    ga_heap *h = acquire_heap(self, "running span_of");
    if (h == NULL) {
        return NULL;
    }
    ga_span_info s;
    if (!ga_span_of(h, addr, &s)) {
        return release_heap(self, Py_NewRef(Py_None));
    }
    return release_heap(self, span_tuple(&s));
}

static int
dict_set_u64(PyObject *d, const char *key, uint64_t v)
{
    PyObject *o = PyLong_FromUnsignedLongLong(v);
    if (o == NULL) {
        return -1;
    }
    int r = PyDict_SetItemString(d, key, o);
    Py_DECREF(o);
    return r;
}

static PyObject *
stats_of(HeapObject *self, ga_heap *h)
{
    ga_mem_stats ms;
    ga_status s = ga_read_mem_stats(h, &ms);
    if (s != GA_OK) {
        return set_error_from_status(self, s, 0, 0);
    }
    PyObject *d = PyDict_New();
    if (d == NULL) {
        return NULL;
    }
#define GA_X(name, doc)                                                       \
    if (dict_set_u64(d, #name, ms.name) < 0) {                                \
        goto error;                                                           \
    }
    MSTATS_FIELDS(GA_X)
#undef GA_X
    PyObject *by = PyTuple_New(NUM_SIZE_CLASSES);
    if (by == NULL) {
        goto error;
    }
    for (int i = 0; i < NUM_SIZE_CLASSES; i++) {
        PyObject *t = Py_BuildValue("(KKK)",
                                    (unsigned long long)ms.by_size[i].size,
                                    (unsigned long long)ms.by_size[i].mallocs,
                                    (unsigned long long)ms.by_size[i].frees);
        if (t == NULL) {
            Py_DECREF(by);
            goto error;
        }
        PyTuple_SET_ITEM(by, i, t);
    }
    if (PyDict_SetItemString(d, "by_size", by) < 0) {
        Py_DECREF(by);
        goto error;
    }
    Py_DECREF(by);
    return d;
error:
    Py_DECREF(d);
    return NULL;
}

static PyObject *
info_of(HeapObject *Py_UNUSED(self), ga_heap *h)
{
    ga_heap_info i;
    ga_heap_info_get(h, &i);
    return Py_BuildValue(
        "{s:s,s:s,s:O,s:s,s:i,s:I,s:K,s:K,s:K,s:K,s:K,s:I,s:I,s:K,s:K,s:K,"
        "s:K,s:K,s:K,s:s,s:K,s:K,s:K,s:K,s:K,s:K}",
        "goos", i.goos, "goarch", i.goarch, "race",
        i.race ? Py_True : Py_False, "backing",
        i.backing == GA_BACKING_OS ? "os" : "virtual", "procs", i.procs,
        "ptr_size", i.ptr_size, "page_size", (unsigned long long)i.page_size,
        "heap_arena_bytes", (unsigned long long)i.heap_arena_bytes,
        "phys_page_size", (unsigned long long)i.phys_page_size,
        "phys_huge_page_size", (unsigned long long)i.phys_huge_page_size,
        "max_alloc", (unsigned long long)i.max_alloc, "arena_l1_bits",
        i.arena_l1_bits, "arena_l2_bits", i.arena_l2_bits,
        "arena_base_offset", (unsigned long long)i.arena_base_offset,
        "zerobase", (unsigned long long)i.zerobase, "pages_in_use",
        (unsigned long long)i.pages_in_use, "scavenge_goal",
        (unsigned long long)i.scavenge_goal, "unscav_huge_pages",
        (unsigned long long)i.unscav_huge_pages, "nallspans",
        (unsigned long long)i.nallspans, "release", ga_release_name(i.release),
        "cur_arena_base", (unsigned long long)i.cur_arena_base,
        "cur_arena_end", (unsigned long long)i.cur_arena_end,
        "metadata_bytes", (unsigned long long)i.metadata_bytes,
        "metadata_limit", (unsigned long long)i.metadata_limit,
        "span_meta_bytes", (unsigned long long)i.span_meta_bytes,
        "tiny_meta_bytes", (unsigned long long)i.tiny_meta_bytes);
}

static PyObject *
verify_of(HeapObject *self, ga_heap *h)
{
    char msg[512];
    if (!ga_verify(h, msg, sizeof(msg))) {
        PyErr_SetString(heap_state(self)->heap_corruption_error, msg);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
heap_close(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->busy != NULL) {
        raise_busy(self, "cannot close: ");
        return NULL;
    }
    heap_release(self);
    Py_RETURN_NONE;
}

static PyObject *
heap_enter(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    /* closed, busy or poisoned: `with heap:` raises like any call */
    if (live_heap(self) == NULL) {
        return NULL;
    }
    return Py_NewRef(self);
}

static PyObject *
heap_exit(HeapObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    return heap_close(self, NULL);
}

static PyObject *
heap_get_closed(HeapObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->heap == NULL);
}

/* ---- Heap: small objects ------------------------------------------ */

static PyObject *
flush_of(HeapObject *self, ga_heap *h)
{
    ga_status s = ga_flush(h);
    if (s != GA_OK) {
        return set_error_from_status(self, s, 0, 0);
    }
    Py_RETURN_NONE;
}

static PyObject *
addr_tuple(const ga_addr *a, size_t n)
{
    PyObject *t = PyTuple_New((Py_ssize_t)n);
    for (size_t i = 0; t != NULL && i < n; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(a[i]);
        if (v == NULL) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, (Py_ssize_t)i, v);
    }
    return t;
}

static PyObject *
central_list(ga_heap *h, int spc, int which)
{
    size_t n = ga_central_spans(h, spc, which, NULL, 0);
    ga_addr *buf = PyMem_Calloc(n ? n : 1, sizeof(*buf));
    if (buf == NULL) {
        return PyErr_NoMemory();
    }
    n = ga_central_spans(h, spc, which, buf, n); /* count, then fill */
    PyObject *t = addr_tuple(buf, n);
    PyMem_Free(buf);
    return t;
}

static PyObject *
centrals_of(HeapObject *Py_UNUSED(self), ga_heap *h)
{
    PyObject *list = PyList_New(NUM_SPAN_CLASSES);
    for (int i = 0; list != NULL && i < NUM_SPAN_CLASSES; i++) {
        ga_central_info ci;
        ga_central_info_get(h, i, &ci);
        PyObject *ne = central_list(h, i, 0);
        PyObject *em = ne ? central_list(h, i, 1) : NULL;
        PyObject *t = em ? Py_BuildValue("(iNNKK)", i, ne, em,
                                         (unsigned long long)ci.nmalloc,
                                         (unsigned long long)ci.nsmallfree)
                         : NULL;
        if (t == NULL) {
            Py_XDECREF(ne);
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, t);
    }
    return list;
}

static PyObject *
caches_of(HeapObject *Py_UNUSED(self), ga_heap *h)
{
    ga_heap_info info;
    ga_heap_info_get(h, &info);
    PyObject *list = PyList_New(info.procs);
    for (int p = 0; list != NULL && p < info.procs; p++) {
        ga_cache_info ci;
        ga_cache_info_get(h, p, &ci);
        PyObject *alloc = addr_tuple(ci.alloc, NUM_SPAN_CLASSES);
        PyObject *t = alloc ? Py_BuildValue("(iKKKN)", p,
                                            (unsigned long long)ci.tiny,
                                            (unsigned long long)ci.tinyoffset,
                                            (unsigned long long)
                                                ci.local_tinyallocs,
                                            alloc)
                            : NULL;
        if (t == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, p, t);
    }
    return list;
}

static PyObject *
heap_span_objects(HeapObject *self, PyObject *arg)
{
    if (live_heap(self) == NULL) { /* its state first; taken below */
        return NULL;
    }
    uint64_t base;
    if (!as_u64(arg, "base", &base, NULL)) {
        return NULL;
    }
    ga_heap *h = acquire_heap(self, "running span_objects");
    if (h == NULL) {
        return NULL;
    }
    uint8_t states[MAX_OBJS_PER_SPAN];
    uint16_t marks[MAX_OBJS_PER_SPAN];
    size_t n = ga_span_objects(h, base, states, marks, MAX_OBJS_PER_SPAN);
    release_heap(self, NULL); /* the rest reads the copies */
    if (n == 0) {
        set_errorf(PyExc_ValueError,
                     "0x%llx is not the base of an in-use small span",
                     (unsigned long long)base);
        return NULL;
    }
    PyObject *m = PyTuple_New((Py_ssize_t)n);
    for (size_t i = 0; m != NULL && i < n; i++) {
        PyObject *v = PyLong_FromLong(marks[i]);
        if (v == NULL) {
            Py_CLEAR(m);
            break;
        }
        PyTuple_SET_ITEM(m, (Py_ssize_t)i, v);
    }
    if (m == NULL) {
        return NULL;
    }
    return Py_BuildValue("(y#N)", (const char *)states, (Py_ssize_t)n, m);
}

/* object_view returns a memoryview of the first n bytes (all of them
 * when whole) of the live object at addr; the heap is acquired. */
static PyObject *
object_view(HeapObject *self, ga_heap *h, uint64_t addr, bool whole,
            uint64_t n)
{
    if (self->backing != GA_BACKING_OS) {
        PyErr_SetString(PyExc_ValueError,
                        "view() needs backing='os': a virtual heap has no "
                        "memory behind its addresses");
        return NULL;
    }
    uint64_t extent;
    ga_status s = ga_object_extent(h, addr, &extent);
    if (s != GA_OK) {
        if (s == GA_EPOISONED) {
            return set_error_from_status(self, s, addr, 0);
        }
        set_errorf(PyExc_ValueError,
                   "0x%llx is not the start of a live object",
                   (unsigned long long)addr);
        return NULL;
    }
    if (whole) {
        n = extent;
    }
    else if (n > extent) {
        PyErr_Format(PyExc_ValueError,
                     "n=%llu exceeds the object's %llu usable bytes",
                     (unsigned long long)n, (unsigned long long)extent);
        return NULL;
    }
    core_state *st = heap_state(self);
    if (self->mapping == NULL) {
        self->mapping = PyObject_CallNoArgs((PyObject *)st->mapping_type);
        if (self->mapping == NULL) {
            return NULL;
        }
    }
    ViewExporter *v = PyObject_New(ViewExporter, st->view_type);
    if (v == NULL) {
        return NULL;
    }
    v->mapping = Py_NewRef(self->mapping);
    v->addr = (void *)(uintptr_t)addr;
    v->len = (Py_ssize_t)n;
    PyObject *mv = PyMemoryView_FromObject((PyObject *)v);
    Py_DECREF(v);
    return mv;
}

static PyObject *
heap_view(HeapObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (live_heap(self) == NULL) { /* its state first; taken below */
        return NULL;
    }
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "view(addr, n=None)");
        return NULL;
    }
    uint64_t addr, n = 0;
    bool whole = nargs < 2 || args[1] == Py_None;
    if (!as_u64(args[0], "addr", &addr, NULL) ||
        (!whole && !as_u64(args[1], "n", &n, NULL))) {
        return NULL;
    }
    ga_heap *h = acquire_heap(self, "making a view");
    if (h == NULL) {
        return NULL;
    }
    PyObject *mv = object_view(self, h, addr, whole, n);
    return release_heap(self, mv);
}

/* ---- Experiments --------------------------------------------------- */

static PyObject *
counters_tuple(const ga_heap_counters *c)
{
    return Py_BuildValue(
        "(KKKKKKKK)", (unsigned long long)c->heap_alloc,
        (unsigned long long)c->heap_inuse, (unsigned long long)c->heap_idle,
        (unsigned long long)c->heap_released, (unsigned long long)c->heap_sys,
        (unsigned long long)c->live_objects,
        (unsigned long long)c->requested_live,
        (unsigned long long)c->largest_free);
}

static PyObject *
digest_of(HeapObject *Py_UNUSED(self), ga_heap *h)
{
    return PyLong_FromUnsignedLongLong(ga_digest(h));
}

static PyObject *
counters_of(HeapObject *self, ga_heap *h)
{
    ga_heap_counters c;
    ga_status s = ga_heap_counters_get(h, &c);
    if (s != GA_OK) {
        return set_error_from_status(self, s, 0, 0);
    }
    return counters_tuple(&c);
}

/* get_column takes a C-contiguous buffer of n items of itemsize bytes. */
static bool
get_column(PyObject *o, Py_buffer *b, Py_ssize_t itemsize, Py_ssize_t n,
           bool writable, const char *what)
{
    int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(o, b, flags) < 0) {
        return false;
    }
    Py_ssize_t align = itemsize < 8 ? itemsize : 8; /* fields are <= 8 */
    if ((uintptr_t)b->buf % (uintptr_t)align != 0) {
        PyErr_Format(PyExc_ValueError, "%s: the buffer is not aligned to %zd",
                     what, align);
        PyBuffer_Release(b);
        return false;
    }
    if (b->len != itemsize * n) {
        PyErr_Format(PyExc_ValueError,
                     "%s: expected %zd bytes (%zd items of %zd), got %zd",
                     what, itemsize * n, n, itemsize, b->len);
        PyBuffer_Release(b);
        return false;
    }
    return true;
}

/* The arguments of _replay, converted.  The buffers are held (and
 * released by replay_args_release) for the whole call. */
enum { REPLAY_NBUF = 9 };
typedef struct replay_args {
    Py_buffer b[REPLAY_NBUF]; /* kind id size noscan p addr_of live samples
                                 sample_ops */
    int got;                  /* buffers held */
    Py_ssize_t n, nids, ncap; /* ops, ids, sample slots */
    uint64_t every, chunk;
    PyObject *progress;       /* borrowed; NULL for none */
} replay_args;

static void
replay_args_release(replay_args *ra)
{
    for (int i = 0; i < ra->got; i++) {
        PyBuffer_Release(&ra->b[i]);
    }
    ra->got = 0;
}

/* replay_args_get converts everything _replay is given before the heap is
 * touched (a column's __len__ or buffer export may run Python code). */
static bool
replay_args_get(replay_args *ra, PyObject *cols, PyObject *addr_o,
                PyObject *live_o, PyObject *samples_o, PyObject *ops_o,
                PyObject *every_o, PyObject *chunk_o, PyObject *progress_o)
{
    static const Py_ssize_t sizes[5] = {1, 8, 8, 1, 2};
    static const char *const names[5] = {"kind", "id", "size", "noscan", "p"};
    ra->got = 0;
    if (!PyTuple_Check(cols) || PyTuple_GET_SIZE(cols) != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "_replay: columns must be a tuple of 5 arrays");
        return false;
    }
    if (!as_u64(every_o, "sample_every", &ra->every, NULL) ||
        !as_u64(chunk_o, "chunk", &ra->chunk, NULL)) {
        return false;
    }
    if (progress_o == Py_None) {
        ra->progress = NULL;
    }
    else if (!PyCallable_Check(progress_o)) {
        PyErr_Format(PyExc_TypeError,
                     "progress must be callable (or None), not %.100s",
                     Py_TYPE(progress_o)->tp_name);
        return false;
    }
    else {
        ra->progress = progress_o;
    }
    ra->n = PyObject_Length(PyTuple_GET_ITEM(cols, 0));
    ra->nids = ra->n < 0 ? -1 : PyObject_Length(live_o);
    ra->ncap = ra->nids < 0 ? -1 : PyObject_Length(ops_o);
    if (ra->ncap < 0) {
        return false;
    }
    for (; ra->got < 5; ra->got++) {
        if (!get_column(PyTuple_GET_ITEM(cols, ra->got), &ra->b[ra->got],
                        sizes[ra->got], ra->n, false, names[ra->got])) {
            return false;
        }
    }
    struct {
        PyObject *o;
        Py_ssize_t itemsize, n;
        const char *name;
    } out[4] = {
        {addr_o, 8, ra->nids, "addr_of"},
        {live_o, 1, ra->nids, "live"},
        {samples_o, (Py_ssize_t)sizeof(ga_heap_counters), ra->ncap, "samples"},
        {ops_o, 8, ra->ncap, "sample_ops"},
    };
    for (int i = 0; i < 4; i++, ra->got++) {
        if (!get_column(out[i].o, &ra->b[ra->got], out[i].itemsize, out[i].n,
                        true, out[i].name)) {
            return false;
        }
    }
    /* every sample the replay can take must fit: one per sample_every ops
     * and the last */
    uint64_t need = (ra->every ? (uint64_t)ra->n / ra->every : 0) + 1;
    if ((uint64_t)ra->ncap < need) {
        PyErr_Format(PyExc_ValueError,
                     "samples: room for %zd samples, the replay takes up to "
                     "%llu", ra->ncap, (unsigned long long)need);
        return false;
    }
    return true;
}

/* replay_chunks applies the whole trace, chunk ops at a time without the
 * GIL, calling progress(done, n) between chunks; the heap is acquired for
 * all of it, so neither other threads nor progress can touch it.  Returns
 * false with an exception set if progress raised. */
static bool
replay_chunks(ga_heap *h, const replay_args *ra, ga_replay_result *res)
{
    const Py_buffer *b = ra->b;
    ga_trace_view t = {
        .n = (size_t)ra->n,
        .kind = b[0].buf,
        .id = b[1].buf,
        .size = b[2].buf,
        .noscan = b[3].buf,
        .p = b[4].buf,
    };
    ga_replay_state st = {(uint64_t)ra->nids, b[5].buf, b[6].buf};
    ga_heap_counters *samples = b[7].buf;
    uint64_t *sample_ops = b[8].buf;
    size_t n = (size_t)ra->n, chunk = ra->chunk ? ra->chunk : n;
    size_t nsamples = 0;
    *res = (ga_replay_result){0};
    for (size_t start = 0; start < n; start += chunk) {
        size_t stop = n - start > chunk ? start + chunk : n;
        Py_BEGIN_ALLOW_THREADS
        ga_replay(h, &t, start, stop, ra->every, stop == n, &st,
                  samples + nsamples, sample_ops + nsamples,
                  (size_t)ra->ncap - nsamples, res);
        Py_END_ALLOW_THREADS
        nsamples += res->nsamples;
        res->nsamples = nsamples;
        if (res->reason != GA_REPLAY_OK) {
            break;
        }
        if (ra->progress != NULL) {
            PyObject *r = PyObject_CallFunction(ra->progress, "nn",
                                                (Py_ssize_t)res->next,
                                                ra->n);
            if (r == NULL) {
                return false;
            }
            Py_DECREF(r);
        }
    }
    return true;
}

/* _replay((kind, id, size, noscan, p), addr_of, live, samples, sample_ops,
 *         sample_every, chunk, progress)
 * applies the whole trace (see replay_chunks); returns (next, reason,
 * status, nsamples).  The Python layer (goalloc/trace.py) prepares the
 * columns and the output arrays; a TraceError it raises from reason. */
static PyObject *
heap_replay(HeapObject *self, PyObject *args)
{
    if (live_heap(self) == NULL) { /* its state first; taken below */
        return NULL;
    }
    PyObject *cols, *addr_o, *live_o, *samples_o, *ops_o;
    PyObject *every_o, *chunk_o, *progress_o;
    if (!PyArg_ParseTuple(args, "OOOOOOOO:_replay", &cols, &addr_o, &live_o,
                          &samples_o, &ops_o, &every_o, &chunk_o,
                          &progress_o)) {
        return NULL;
    }
    replay_args ra;
    PyObject *result = NULL;
    if (!replay_args_get(&ra, cols, addr_o, live_o, samples_o, ops_o,
                         every_o, chunk_o, progress_o)) {
        goto done;
    }
    ga_heap *h = acquire_heap(self, "replaying a trace");
    if (h == NULL) {
        goto done;
    }
    ga_replay_result res;
    bool ok = replay_chunks(h, &ra, &res);
    release_heap(self, NULL);
    if (ok) {
        result = Py_BuildValue("(nisn)", (Py_ssize_t)res.next, res.reason,
                               ga_status_name(res.status),
                               (Py_ssize_t)res.nsamples);
    }
done:
    replay_args_release(&ra);
    return result;
}

/* ---- Heap: bulk calls --------------------------------------------- */

/* alloc_many and free_many (goalloc/heap.py) convert their input into a
 * fresh C-contiguous uint64 array that no one else holds and call these.
 * The loops run without the GIL, the heap marked busy, and stop at the
 * first call the facade refuses; that call changed nothing. */

/* alloc_loop replaces each size in v[] by the address allocated for it;
 * v[i..] keep their sizes from the first refusal i on. */
static size_t
alloc_loop(ga_heap *h, int p, bool noscan, uint64_t *v, size_t n,
           ga_status *status)
{
    ga_status s = GA_OK;
    size_t i = 0;
    for (; i < n; i++) {
        ga_addr a;
        s = ga_malloc(h, p, v[i], noscan, &a);
        if (GA_UNLIKELY(s != GA_OK)) {
            break;
        }
        v[i] = a;
    }
    *status = s;
    return i;
}

static size_t
free_loop(ga_heap *h, const ga_addr *addr, size_t n, ga_status *status)
{
    ga_status s = GA_OK;
    size_t i = 0;
    for (; i < n; i++) {
        s = ga_free_p(h, GA_ALL_PS, addr[i]); /* busy: every P is ours */
        if (GA_UNLIKELY(s != GA_OK)) {
            break;
        }
    }
    *status = s;
    return i;
}

/* head_copy returns seq[:k].copy() (a NumPy array's first k items). */
static PyObject *
head_copy(PyObject *seq, size_t k)
{
    PyObject *stop = PyLong_FromSize_t(k);
    PyObject *slice = stop ? PySlice_New(NULL, stop, NULL) : NULL;
    PyObject *view = slice ? PyObject_GetItem(seq, slice) : NULL;
    PyObject *copy = view ? PyObject_CallMethod(view, "copy", NULL) : NULL;
    Py_XDECREF(stop);
    Py_XDECREF(slice);
    Py_XDECREF(view);
    return copy;
}

/* _alloc_many(v, bad=None, /, *, noscan=False, p=0): v[i] = alloc(v[i],
 * noscan=noscan, p=p) for i in order: v, a uint64 array, holds the sizes
 * and gets the addresses in their place.  bad, when given, is the int
 * that follows the sizes in the caller's input and is no uint64.  A bad
 * p, a size beyond maxAlloc or bad (ValueError with .index) is refused
 * before anything is allocated.  A refusal inside the loop (out of
 * memory) raises alloc's exception with .index and .addresses =
 * v[:index].copy(), which stay allocated. */
static PyObject *
heap_alloc_many(HeapObject *self, PyObject *const *args, Py_ssize_t nargs,
                PyObject *kwnames)
{
    if (live_heap(self) == NULL) { /* its state first; taken below */
        return NULL;
    }
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError,
                        "_alloc_many(v, bad=None, /, *, noscan=False, p=0)");
        return NULL;
    }
    PyObject *bad = nargs == 2 && args[1] != Py_None ? args[1] : NULL;
    bool noscan = false;
    long p = 0;
    if (!parse_alloc_kw("alloc_many", args + nargs, kwnames, &noscan, &p)) {
        return NULL;
    }
    Py_ssize_t n = PyObject_Length(args[0]);
    if (n < 0) {
        return NULL;
    }
    Py_buffer vb;
    if (!get_column(args[0], &vb, 8, n, true, "v")) {
        return NULL;
    }
    uint64_t *v = vb.buf;
    PyObject *result = NULL;
    ga_heap *h = acquire_heap(self, "running alloc_many");
    if (h == NULL) {
        goto done;
    }
    if (bad_p(h, p)) {
        goto done;
    }
    char msg[512];
    ga_heap_info info;
    ga_heap_info_get(h, &info);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (v[i] > info.max_alloc) {
            too_large_msg(h, v[i], msg, sizeof(msg));
            raise_at(PyExc_ValueError,
                     PyUnicode_FromFormat(
                         "sizes[%zd]: %s; nothing was allocated", i, msg),
                     i, NULL);
            goto done;
        }
    }
    if (bad != NULL) { /* alloc(bad) refuses it (as_u64) */
        raise_at(PyExc_ValueError,
                 PyUnicode_FromFormat("sizes[%zd]: size out of range: %R; "
                                      "nothing was allocated",
                                      n, bad),
                 n, NULL);
        goto done;
    }
    ga_status s;
    size_t k;
    Py_BEGIN_ALLOW_THREADS
    k = alloc_loop(h, (int)p, noscan, v, (size_t)n, &s);
    Py_END_ALLOW_THREADS
    if (k == (size_t)n) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    PyObject *type = status_error(self, s, 0, v[k], msg, sizeof(msg));
    PyObject *addresses = head_copy(args[0], k);
    if (addresses != NULL) {
        raise_at(type,
                 PyUnicode_FromFormat("%s (sizes[%zu]; the %zu objects "
                                      "allocated before it stay allocated: "
                                      ".addresses)",
                                      msg, k, k),
                 (Py_ssize_t)k, addresses);
    }
done:
    if (h != NULL) {
        release_heap(self, NULL);
    }
    PyBuffer_Release(&vb);
    return result;
}

/* _free_many(addrs, bad=None, /): free(addrs[i]) for i in order, as that
 * many free() calls.  addrs is a uint64 array.  bad, when given, is the
 * int that follows the addresses in the caller's input and is no uint64
 * (negative, or >= 2**64): free() refuses it after the others.  The first
 * refused address raises free()'s exception with .index; the frees
 * before it stay done. */
static PyObject *
heap_free_many(HeapObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (live_heap(self) == NULL) { /* its state first; taken below */
        return NULL;
    }
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "_free_many(addrs, bad=None, /)");
        return NULL;
    }
    PyObject *bad = nargs == 2 && args[1] != Py_None ? args[1] : NULL;
    Py_ssize_t n = PyObject_Length(args[0]);
    if (n < 0) {
        return NULL;
    }
    Py_buffer ab;
    if (!get_column(args[0], &ab, 8, n, false, "addrs")) {
        return NULL;
    }
    const ga_addr *addr = ab.buf;
    PyObject *result = NULL;
    ga_status s;
    size_t k;
    ga_heap *h = acquire_heap(self, "running free_many");
    if (h == NULL) {
        PyBuffer_Release(&ab);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    k = free_loop(h, addr, (size_t)n, &s);
    Py_END_ALLOW_THREADS
    if (k < (size_t)n) {
        char msg[512];
        PyObject *type = status_error(self, s, addr[k], 0, msg, sizeof(msg));
        raise_at(type,
                 PyUnicode_FromFormat("%s (addrs[%zu]; the %zu frees before "
                                      "it stay done)",
                                      msg, k, k),
                 (Py_ssize_t)k, NULL);
    }
    else if (bad != NULL) {
        /* the exception free(bad) raises (as_u64) */
        raise_at(heap_state(self)->invalid_free_error,
                 PyUnicode_FromFormat("address out of range: %R (addrs[%zu]; "
                                      "the %zu frees before it stay done)",
                                      bad, k, k),
                 (Py_ssize_t)k, NULL);
    }
    else {
        result = Py_NewRef(Py_None);
    }
    release_heap(self, NULL);
    PyBuffer_Release(&ab);
    return result;
}

/* ---- Bulk views as bytes (NumPy views them in goalloc/arrays.py) --- */

static PyObject *
span_table_of(HeapObject *Py_UNUSED(self), ga_heap *h)
{
    FETCH_ALL(h, ga_spans, ga_span_info, buf, n);
    if (buf == NULL) {
        return PyErr_NoMemory();
    }
    enum { NF = 13 };
    PyObject *out = PyBytes_FromStringAndSize(NULL,
                                              (Py_ssize_t)(n * NF * 8));
    if (out != NULL) {
        uint64_t *w = (uint64_t *)(void *)PyBytes_AS_STRING(out);
        for (size_t i = 0; i < n; i++, w += NF) {
            const ga_span_info *s = &buf[i];
            uint64_t row[NF] = {s->base,      s->npages,      (uint64_t)s->state,
                                s->scavenged, (uint64_t)s->spanclass,
                                (uint64_t)s->sizeclass, s->noscan,
                                s->elemsize,  s->nelems,      s->alloc_count,
                                s->freeindex, s->limit,       s->needzero};
            memcpy(w, row, sizeof(row));
        }
    }
    PyMem_Free(buf);
    return out;
}

static PyObject *
object_table_of(HeapObject *Py_UNUSED(self), ga_heap *h)
{
    size_t n = ga_live_objects(h, NULL, 0);
    PyObject *out = PyBytes_FromStringAndSize(
        NULL, (Py_ssize_t)(n * sizeof(ga_live_object)));
    if (out != NULL) {
        ga_live_objects(h, (ga_live_object *)(void *)PyBytes_AS_STRING(out),
                        n);
    }
    return out;
}

static PyObject *
page_table_of(HeapObject *Py_UNUSED(self), ga_heap *h)
{
    size_t n = ga_page_map(h, NULL, 0);
    PyObject *out = PyBytes_FromStringAndSize(NULL,
                                              (Py_ssize_t)(n * sizeof(int16_t)));
    if (out != NULL) {
        ga_page_map(h, (int16_t *)(void *)PyBytes_AS_STRING(out), n);
    }
    return out;
}

/* ---- Mapping and view exporter types ------------------------------ */

static PyObject *
mapping_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)args;
    (void)kwds;
    MappingObject *m = (MappingObject *)type->tp_alloc(type, 0);
    if (m != NULL) {
        m->ranges = NULL;
        m->nranges = 0;
    }
    return (PyObject *)m;
}

static void
mapping_dealloc(MappingObject *m)
{
    PyTypeObject *tp = Py_TYPE(m);
    if (m->ranges != NULL) {
        ga_unmap_ranges(m->ranges, m->nranges);
    }
    tp->tp_free((PyObject *)m);
    Py_DECREF(tp);
}

static PyType_Slot mapping_slots[] = {
    {Py_tp_new, mapping_new},
    {Py_tp_dealloc, mapping_dealloc},
    {0, NULL},
};

static PyType_Spec mapping_spec = {
    .name = "goalloc._core._Mapping",
    .basicsize = sizeof(MappingObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = mapping_slots,
};

static int
view_getbuffer(ViewExporter *v, Py_buffer *view, int flags)
{
    return PyBuffer_FillInfo(view, (PyObject *)v, v->addr, v->len, 0, flags);
}

static void
view_dealloc(ViewExporter *v)
{
    PyTypeObject *tp = Py_TYPE(v);
    Py_CLEAR(v->mapping);
    PyObject_Free(v);
    Py_DECREF(tp);
}

static PyType_Slot view_slots[] = {
    {Py_bf_getbuffer, view_getbuffer},
    {Py_tp_dealloc, view_dealloc},
    {0, NULL},
};

static PyType_Spec view_spec = {
    .name = "goalloc._core._ViewExporter",
    .basicsize = sizeof(ViewExporter),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = view_slots,
};

/* ---- Fault injection ---------------------------------------------- */

static PyObject *
heap_block_range(HeapObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (live_heap(self) == NULL) { /* its state first; taken below */
        return NULL;
    }
    uint64_t addr, len;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "block_range(addr, length)");
        return NULL;
    }
    if (!as_u64(args[0], "addr", &addr, NULL) ||
        !as_u64(args[1], "length", &len, NULL)) {
        return NULL;
    }
    ga_heap *h = acquire_heap(self, "running block_range");
    if (h == NULL) {
        return NULL;
    }
    ga_status s = ga_block_range(h, addr, len);
    release_heap(self, NULL);
    if (s != GA_OK) {
        set_errorf(PyExc_ValueError,
                   "cannot block [0x%llx, +0x%llx): in use or empty",
                   (unsigned long long)addr, (unsigned long long)len);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
heap_fail_reserves(HeapObject *self, PyObject *arg)
{
    if (live_heap(self) == NULL) { /* its state first; taken below */
        return NULL;
    }
    uint64_t n;
    if (!as_u64(arg, "n", &n, NULL)) {
        return NULL;
    }
    if (n > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "n out of range");
        return NULL;
    }
    ga_heap *h = acquire_heap(self, "running fail_reserves");
    if (h == NULL) {
        return NULL;
    }
    ga_status s = ga_fail_reserves(h, (int)n);
    release_heap(self, NULL);
    if (s == GA_EUNSUPPORTED) {
        PyErr_SetString(PyExc_ValueError,
                        "fail_reserves needs backing='virtual'");
        return NULL;
    }
    if (s != GA_OK) {
        return set_error_from_status(self, s, 0, 0);
    }
    Py_RETURN_NONE;
}

static PyObject *
heap_fail_metadata(HeapObject *self, PyObject *arg)
{
    if (live_heap(self) == NULL) { /* its state first; taken below */
        return NULL;
    }
    uint64_t n;
    if (!as_u64(arg, "n", &n, NULL)) {
        return NULL;
    }
    ga_heap *h = acquire_heap(self, "running fail_metadata");
    if (h == NULL) {
        return NULL;
    }
    ga_status s = ga_fail_metadata(h, n);
    if (s != GA_OK) {
        return release_heap(self, set_error_from_status(self, s, 0, 0));
    }
    return release_heap(self, Py_NewRef(Py_None));
}

static PyObject *
heap_throw(HeapObject *self, PyObject *arg)
{
    if (live_heap(self) == NULL) { /* its state first; taken below */
        return NULL;
    }
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "_throw(msg): msg must be a str");
        return NULL;
    }
    const char *msg = str_arg(arg, "msg");
    if (msg == NULL) {
        return NULL;
    }
    ga_heap *h = acquire_heap(self, "running _throw");
    if (h == NULL) {
        return NULL;
    }
    ga_status s = ga_test_throw(h, msg);
    return release_heap(self, set_error_from_status(self, s, 0, 0));
}

/* ---- Methods without arguments ----------------------------------- */

static PyObject *
heap_hints(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "listing hints", hints_of);
}

static PyObject *
heap_arenas(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "listing arenas", arenas_of);
}

static PyObject *
heap_spans(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "listing spans", spans_of);
}

static PyObject *
heap_stats(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "reading MemStats", stats_of);
}

static PyObject *
heap_info(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "reading info", info_of);
}

static PyObject *
heap_verify(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "running verify", verify_of);
}

static PyObject *
heap_flush(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "running flush", flush_of);
}

static PyObject *
heap_centrals(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "listing mcentrals", centrals_of);
}

static PyObject *
heap_caches(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "listing mcaches", caches_of);
}

static PyObject *
heap_digest(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "computing a digest", digest_of);
}

static PyObject *
heap_counters(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "reading counters", counters_of);
}

static PyObject *
heap_span_table(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "listing spans", span_table_of);
}

static PyObject *
heap_object_table(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "listing objects", object_table_of);
}

static PyObject *
heap_page_table(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "listing pages", page_table_of);
}

static PyMethodDef heap_methods[] = {
    {"alloc", (PyCFunction)(void (*)(void))heap_alloc,
     METH_FASTCALL | METH_KEYWORDS,
     "alloc($self, size, /, *, noscan=False, p=0)\n--\n\n"
     "Allocate size bytes like runtime.mallocgc; return the address."},
    {"free", (PyCFunction)heap_free, METH_O,
     "free($self, addr, /)\n--\n\nFree the object that starts at addr."},
    {"scavenge", (PyCFunction)(void (*)(void))heap_scavenge, METH_FASTCALL,
     "scavenge($self, nbytes=None, /)\n--\n\n"
     "Return free pages to the OS top-down (mheap.scavengeLocked); "
     "None releases all. Returns the bytes released."},
    {"_hints", (PyCFunction)heap_hints, METH_NOARGS, NULL},
    {"_arenas", (PyCFunction)heap_arenas, METH_NOARGS, NULL},
    {"_spans", (PyCFunction)heap_spans, METH_NOARGS, NULL},
    {"_span_of", (PyCFunction)heap_span_of, METH_O, NULL},
    {"_stats", (PyCFunction)heap_stats, METH_NOARGS, NULL},
    {"_info", (PyCFunction)heap_info, METH_NOARGS, NULL},
    {"verify", (PyCFunction)heap_verify, METH_NOARGS,
     "verify($self, /)\n--\n\n"
     "Walk every invariant; raise HeapCorruptionError naming a broken one."},
    {"close", (PyCFunction)heap_close, METH_NOARGS,
     "close($self, /)\n--\n\nRelease the heap; later calls raise "
     "HeapClosedError."},
    {"__enter__", (PyCFunction)heap_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))heap_exit, METH_FASTCALL, NULL},
    {"block_range", (PyCFunction)(void (*)(void))heap_block_range,
     METH_FASTCALL,
     "block_range($self, addr, length, /)\n--\n\n"
     "Occupy [addr, addr+length) as a foreign mapping would."},
    {"fail_reserves", (PyCFunction)heap_fail_reserves, METH_O,
     "fail_reserves($self, n, /)\n--\n\n"
     "Make the next n OS reservations fail (virtual backing)."},
    {"fail_metadata", (PyCFunction)heap_fail_metadata, METH_O,
     "fail_metadata($self, n, /)\n--\n\n"
     "Make the n-th allocation of heap metadata from now on fail, as if "
     "the process were out of memory (0 disarms it)."},
    {"_throw", (PyCFunction)heap_throw, METH_O, NULL},
    {"flush", (PyCFunction)heap_flush, METH_NOARGS,
     "flush($self, /)\n--\n\n"
     "Give every P's cached spans and tiny block back "
     "(flushallmcaches)."},
    {"_centrals", (PyCFunction)heap_centrals, METH_NOARGS, NULL},
    {"_counters", (PyCFunction)heap_counters, METH_NOARGS, NULL},
    {"digest", (PyCFunction)heap_digest, METH_NOARGS,
     "digest($self, /)\n--\n\n"
     "A cheap 64-bit hash of all allocator metadata (hints, arenas, spans "
     "and their bitmaps, mcentrals, mcaches, statistics)."},
    {"_span_table", (PyCFunction)heap_span_table, METH_NOARGS, NULL},
    {"_object_table", (PyCFunction)heap_object_table, METH_NOARGS, NULL},
    {"_page_table", (PyCFunction)heap_page_table, METH_NOARGS, NULL},
    {"_replay", (PyCFunction)heap_replay, METH_VARARGS, NULL},
    {"_alloc_many", (PyCFunction)(void (*)(void))heap_alloc_many,
     METH_FASTCALL | METH_KEYWORDS, NULL},
    {"_free_many", (PyCFunction)(void (*)(void))heap_free_many, METH_FASTCALL,
     NULL},
    {"_caches", (PyCFunction)heap_caches, METH_NOARGS, NULL},
    {"_span_objects", (PyCFunction)heap_span_objects, METH_O, NULL},
    {"view", (PyCFunction)(void (*)(void))heap_view, METH_FASTCALL,
     "view($self, addr, n=None, /)\n--\n\n"
     "A writable memoryview of a live object's bytes (backing 'os')."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef heap_getset[] = {
    {"closed", (getter)heap_get_closed, NULL, "True once close() ran.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot heap_slots[] = {
    {Py_tp_new, heap_new},
    {Py_tp_dealloc, heap_dealloc},
    {Py_tp_traverse, heap_traverse},
    {Py_tp_methods, heap_methods},
    {Py_tp_getset, heap_getset},
    {Py_tp_doc, "A Go 1.13 heap (mallocinit on construction)."},
    {0, NULL},
};

static PyType_Spec heap_spec = {
    .name = "goalloc._core.Heap",
    .basicsize = sizeof(HeapObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = heap_slots,
};

/* ---- Module functions --------------------------------------------- */

static PyObject *
core_size_classes(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    (void)module;
    PyObject *list = PyList_New(NUM_SIZE_CLASSES);
    for (int c = 0; list != NULL && c < NUM_SIZE_CLASSES; c++) {
        unsigned long long size = class_to_size[c];
        unsigned long long npages = class_to_allocnpages[c];
        unsigned long long objects = c ? class_objects(c) : 0;
        unsigned long long span = npages * PAGE_SIZE;
        unsigned long long tail = c ? span - objects * size : 0;
        const div_magic *m = &class_to_divmagic[c];
        PyObject *t = Py_BuildValue("(iKKKKiiii)", c, size, npages, objects,
                                    tail, m->shift, m->shift2, m->mul,
                                    m->base_mask);
        if (t == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, c, t);
    }
    return list;
}

static PyObject *
core_size_to_class(PyObject *module, PyObject *arg)
{
    (void)module;
    uint64_t n;
    if (!as_u64(arg, "size", &n, NULL)) {
        return NULL;
    }
    if (n == 0 || n > MAX_SMALL_SIZE) {
        return PyLong_FromLong(0);
    }
    return PyLong_FromLong(size_to_class((size_t)n));
}

static PyMethodDef core_methods[] = {
    {"_size_classes", core_size_classes, METH_NOARGS, NULL},
    {"size_to_class", core_size_to_class, METH_O,
     "size_to_class(size, /)\n--\n\n"
     "The size class mallocgc uses for a small request; 0 for sizes that "
     "are zero or large (> 32768)."},
    {NULL, NULL, 0, NULL},
};

/* ---- Module init -------------------------------------------------- */

static PyObject *
new_exception(PyObject *module, const char *name, const char *doc,
              PyObject *bases)
{
    PyObject *e = PyErr_NewExceptionWithDoc(name, doc, bases, NULL);
    if (e == NULL) {
        return NULL;
    }
    const char *short_name = strrchr(name, '.') + 1;
    if (PyModule_AddObjectRef(module, short_name, e) < 0) {
        Py_DECREF(e);
        return NULL;
    }
    return e;
}

static PyObject *
bases2(PyObject *a, PyObject *b)
{
    return PyTuple_Pack(2, a, b);
}

static int
add_exceptions(PyObject *module, core_state *st)
{
    st->goalloc_error = new_exception(
        module, "goalloc.GoallocError", "Base of goalloc's errors.",
        PyExc_Exception);
    if (st->goalloc_error == NULL) {
        return -1;
    }
    PyObject *b = bases2(st->goalloc_error, PyExc_ValueError);
    st->invalid_free_error =
        b ? new_exception(module, "goalloc.InvalidFreeError",
                          "free() of an address that is not a live object.",
                          b)
          : NULL;
    Py_XDECREF(b);
    if (st->invalid_free_error == NULL) {
        return -1;
    }
    st->double_free_error = new_exception(
        module, "goalloc.DoubleFreeError",
        "free() of an object that was already freed.",
        st->invalid_free_error);
    b = bases2(st->goalloc_error, PyExc_MemoryError);
    st->out_of_memory_error =
        b && st->double_free_error
            ? new_exception(module, "goalloc.OutOfMemoryError",
                            "The OS (or the simulated limit) refused.", b)
            : NULL;
    Py_XDECREF(b);
    if (st->out_of_memory_error == NULL) {
        return -1;
    }
    b = bases2(st->goalloc_error, PyExc_RuntimeError);
    st->heap_closed_error =
        b ? new_exception(module, "goalloc.HeapClosedError",
                          "The heap was closed.", b)
          : NULL;
    st->heap_busy_error =
        b && st->heap_closed_error
            ? new_exception(module, "goalloc.HeapBusyError",
                            "The heap is running a replay or a bulk call "
                            "(alloc_many, free_many) in another thread.",
                            b)
            : NULL;
    st->heap_corruption_error =
        b && st->heap_busy_error
            ? new_exception(module, "goalloc.HeapCorruptionError",
                            "An internal invariant broke (Go's throw); the "
                            "heap is poisoned.",
                            b)
            : NULL;
    Py_XDECREF(b);
    return st->heap_corruption_error == NULL ? -1 : 0;
}

static int
add_constants(PyObject *module)
{
    PyObject *names = PyTuple_New(0);
    if (names == NULL) {
        return -1;
    }
#define GA_X(name, doc)                                                       \
    {                                                                         \
        PyObject *item = Py_BuildValue("(ss)", #name, doc);                   \
        if (item == NULL || _PyTuple_Resize(&names,                           \
                                            PyTuple_GET_SIZE(names) + 1) <    \
                                0) {                                          \
            Py_XDECREF(item);                                                 \
            Py_XDECREF(names);                                                \
            return -1;                                                        \
        }                                                                     \
        PyTuple_SET_ITEM(names, PyTuple_GET_SIZE(names) - 1, item);           \
    }
    MSTATS_FIELDS(GA_X)
#undef GA_X
    int r = PyModule_AddObjectRef(module, "MSTATS_FIELDS", names);
    Py_DECREF(names);
    if (r < 0) {
        return -1;
    }
    if (PyModule_AddIntConstant(module, "PAGE_SIZE", (long)PAGE_SIZE) < 0 ||
        PyModule_AddIntConstant(module, "MAX_SMALL_SIZE", MAX_SMALL_SIZE) <
            0 ||
        PyModule_AddIntConstant(module, "NUM_SIZE_CLASSES",
                                NUM_SIZE_CLASSES) < 0 ||
        PyModule_AddIntConstant(module, "NUM_SPAN_CLASSES",
                                NUM_SPAN_CLASSES) < 0 ||
        PyModule_AddIntConstant(module, "TINY_SIZE", TINY_SIZE) < 0) {
        return -1;
    }
    return 0;
}

static int
core_exec(PyObject *module)
{
    core_state *st = get_core_state(module);
    st->heap_type =
        (PyTypeObject *)PyType_FromModuleAndSpec(module, &heap_spec, NULL);
    if (st->heap_type == NULL) {
        return -1;
    }
    if (PyModule_AddType(module, st->heap_type) < 0) {
        return -1;
    }
    st->mapping_type =
        (PyTypeObject *)PyType_FromModuleAndSpec(module, &mapping_spec, NULL);
    st->view_type =
        st->mapping_type
            ? (PyTypeObject *)PyType_FromModuleAndSpec(module, &view_spec,
                                                       NULL)
            : NULL;
    if (st->view_type == NULL) {
        return -1;
    }
    if (add_exceptions(module, st) < 0) {
        return -1;
    }
    return add_constants(module);
}

static int
core_traverse(PyObject *module, visitproc visit, void *arg)
{
    core_state *st = get_core_state(module);
    Py_VISIT(st->heap_type);
    Py_VISIT(st->mapping_type);
    Py_VISIT(st->view_type);
    Py_VISIT(st->goalloc_error);
    Py_VISIT(st->invalid_free_error);
    Py_VISIT(st->double_free_error);
    Py_VISIT(st->out_of_memory_error);
    Py_VISIT(st->heap_closed_error);
    Py_VISIT(st->heap_corruption_error);
    Py_VISIT(st->heap_busy_error);
    return 0;
}

static int
core_clear(PyObject *module)
{
    core_state *st = get_core_state(module);
    Py_CLEAR(st->heap_type);
    Py_CLEAR(st->mapping_type);
    Py_CLEAR(st->view_type);
    Py_CLEAR(st->goalloc_error);
    Py_CLEAR(st->invalid_free_error);
    Py_CLEAR(st->double_free_error);
    Py_CLEAR(st->out_of_memory_error);
    Py_CLEAR(st->heap_closed_error);
    Py_CLEAR(st->heap_corruption_error);
    Py_CLEAR(st->heap_busy_error);
    return 0;
}

static void
core_free(void *module)
{
    core_clear((PyObject *)module);
}

static PyModuleDef_Slot core_slots[] = {
    {Py_mod_exec, core_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "goalloc._core",
    .m_doc = "The C core of goalloc: Go 1.13's allocator.",
    .m_size = sizeof(core_state),
    .m_methods = core_methods,
    .m_slots = core_slots,
    .m_traverse = core_traverse,
    .m_clear = core_clear,
    .m_free = core_free,
};

PyMODINIT_FUNC PyInit__core(void);

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModuleDef_Init(&core_module);
}
