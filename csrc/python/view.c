/* Heap.view: writable memoryviews of live objects (os backing), and the
 * two small types behind them.
 *
 * A _ViewExporter exports [addr, addr+len) of one object; it holds the
 * heap's _Mapping, which keeps the heap's memory mapped after close()
 * until the last view is gone.
 * Go 1.13: none (Go programs hold pointers, not views).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "core.h"

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

PyObject *
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

static PyType_Slot mapping_slots[] = {
    {Py_tp_new, mapping_new},
    {Py_tp_dealloc, mapping_dealloc},
    {0, NULL},
};

PyType_Spec mapping_spec = {
    .name = "goalloc._core._Mapping",
    .basicsize = sizeof(MappingObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = mapping_slots,
};

static PyType_Slot view_slots[] = {
    {Py_bf_getbuffer, view_getbuffer},
    {Py_tp_dealloc, view_dealloc},
    {0, NULL},
};

PyType_Spec view_spec = {
    .name = "goalloc._core._ViewExporter",
    .basicsize = sizeof(ViewExporter),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = view_slots,
};
