/* Heap introspection for Python: records as tuples and dicts (made in
 * records.c), bulk tables as bytes (goalloc/arrays.py views them with
 * NumPy).
 *
 * Every method here takes no argument but span_of and span_objects;
 * those convert theirs first (the call protocol, heap.c).  The *_of
 * functions run on an acquired heap (read_heap).
 * Go 1.13: mheap_.arenaHints, allArenas, spanOf, mheap_.central,
 *          the mcaches, ReadMemStats (what each record mirrors).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "core.h"
#include <string.h>

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
    return hint_tuple((const ga_hint_info *)buf + i);
}

static PyObject *
arena_item(const void *buf, size_t i)
{
    return arena_tuple((const ga_arena_info *)buf + i);
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

PyObject *
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

static PyObject *
stats_of(HeapObject *self, ga_heap *h)
{
    ga_mem_stats ms;
    ga_status s = ga_read_mem_stats(h, &ms);
    if (s != GA_OK) {
        return set_error_from_status(self, s, 0, 0);
    }
    return mem_stats_dict(&ms);
}

static PyObject *
info_of(HeapObject *Py_UNUSED(self), ga_heap *h)
{
    ga_heap_info i;
    ga_heap_info_get(h, &i);
    return heap_info_dict(&i);
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
        PyObject *t = central_tuple(i, ne, em, &ci);
        if (t == NULL) {
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
        PyObject *t = cache_tuple(p, &ci,
                                  addr_tuple(ci.alloc, NUM_SPAN_CLASSES));
        if (t == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, p, t);
    }
    return list;
}

PyObject *
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

static PyObject *
span_table_of(HeapObject *Py_UNUSED(self), ga_heap *h)
{
    FETCH_ALL(h, ga_spans, ga_span_info, buf, n);
    if (buf == NULL) {
        return PyErr_NoMemory();
    }
    size_t nw = span_row_words;
    Py_ssize_t len = (Py_ssize_t)(n * nw * sizeof(uint64_t));
    PyObject *out = PyBytes_FromStringAndSize(NULL, len);
    if (out != NULL) {
        uint64_t *w = (uint64_t *)(void *)PyBytes_AS_STRING(out);
        for (size_t i = 0; i < n; i++) {
            span_row(&buf[i], w + i * nw);
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
    Py_ssize_t len = (Py_ssize_t)(n * sizeof(int16_t));
    PyObject *out = PyBytes_FromStringAndSize(NULL, len);
    if (out != NULL) {
        ga_page_map(h, (int16_t *)(void *)PyBytes_AS_STRING(out), n);
    }
    return out;
}

PyObject *
heap_hints(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "listing hints", hints_of);
}

PyObject *
heap_arenas(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "listing arenas", arenas_of);
}

PyObject *
heap_spans(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "listing spans", spans_of);
}

PyObject *
heap_stats(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "reading MemStats", stats_of);
}

PyObject *
heap_info(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "reading info", info_of);
}

PyObject *
heap_centrals(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "listing mcentrals", centrals_of);
}

PyObject *
heap_caches(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "listing mcaches", caches_of);
}

PyObject *
heap_digest(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "computing a digest", digest_of);
}

PyObject *
heap_counters(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "reading counters", counters_of);
}

PyObject *
heap_span_table(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "listing spans", span_table_of);
}

PyObject *
heap_object_table(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "listing objects", object_table_of);
}

PyObject *
heap_page_table(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "listing pages", page_table_of);
}
