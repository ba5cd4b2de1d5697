/* The Heap type: one ga_heap per object, and the call protocol that
 * keeps the C core from ever seeing two callers, or a freed heap.
 *
 * Every method first converts all its arguments to C values (conversion
 * can run Python code: __index__, __bool__, __len__, and that code may
 * close the heap or call it from another thread), then takes the heap
 * (acquire_heap), which marks it busy until the method returns
 * (release_heap).  While it is busy, any other call raises HeapBusyError:
 * from another thread (replay and the bulk calls release the GIL around
 * their C loop), and from Python code the call itself runs (a progress
 * callback, a finalizer run by the cyclic GC while a result is built).
 * The GIL makes the check-and-take atomic.
 * Go 1.13: mallocinit (Heap()), mallocgc (alloc), mheap.scavengeLocked
 *          (scavenge), flushallmcaches (flush).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "core.h"
#include <string.h>

/* raise_busy raises HeapBusyError for a call made while the heap is busy,
 * naming who holds it. */
static void
raise_busy(HeapObject *self, const char *prefix)
{
    if (self->busy_thread == PyThread_get_thread_ident()) {
        PyErr_Format(heap_exc(self, EXC_HEAP_BUSY),
                     "%sthe heap is %s: this call came from Python code that "
                     "call ran (a callback, __index__, a finalizer)",
                     prefix, self->busy);
    }
    else {
        PyErr_Format(heap_exc(self, EXC_HEAP_BUSY),
                     "%sthe heap is %s in another thread", prefix, self->busy);
    }
}

/* live_heap returns the heap if it is idle, open and healthy, or NULL
 * with HeapBusyError, HeapClosedError or HeapCorruptionError set. */
ga_heap *
live_heap(HeapObject *self)
{
    if (self->busy != NULL) {
        raise_busy(self, "");
        return NULL;
    }
    if (self->heap == NULL) {
        PyErr_SetString(heap_exc(self, EXC_HEAP_CLOSED), "the heap is closed");
        return NULL;
    }
    const char *poison = ga_poisoned(self->heap);
    if (poison != NULL) {
        PyErr_Format(heap_exc(self, EXC_HEAP_CORRUPTION), "%s", poison);
        return NULL;
    }
    return self->heap;
}

/* acquire_heap takes the heap for a call whose arguments are all
 * converted (a method with arguments checks live_heap first too, so that
 * a closed, busy or poisoned heap is reported before a bad argument): it
 * returns the heap marked busy doing `what` (a phrase after "the heap is"), or
 * NULL with the exception live_heap sets.  No Python code may run between a
 * method's last conversion and this call. */
ga_heap *
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
PyObject *
release_heap(HeapObject *self, PyObject *result)
{
    self->busy = NULL;
    return result;
}

/* read_heap runs fn on the acquired heap: the body of every method
 * without arguments. */
PyObject *
read_heap(HeapObject *self, const char *what,
          PyObject *(*fn)(HeapObject *self, ga_heap *h))
{
    ga_heap *h = acquire_heap(self, what);
    if (h == NULL) {
        return NULL;
    }
    return release_heap(self, fn(self, h));
}

static PyObject *
heap_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"goos",
                             "goarch",
                             "race",
                             "backing",
                             "procs",
                             "scavenge_goal",
                             "sys_limit",
                             "binary_end",
                             "seed",
                             "gogc",
                             "release",
                             "metadata_limit",
                             "collector",
                             "background_sweep",
                             "background_scavenge",
                             NULL};
    PyObject *goos_o = NULL, *goarch_o = NULL, *backing_o = NULL;
    PyObject *goal_o = NULL, *limit_o = NULL, *bend_o = NULL, *seed_o = NULL;
    PyObject *procs_o = NULL, *gogc_o = NULL, *release_o = NULL;
    PyObject *meta_o = NULL, *coll_o = NULL, *bg_o = NULL;
    int race = 0;
    PyObject *bgscav_o = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$OOpOOOOOOOOOOOO", kwlist,
                                     &goos_o, &goarch_o, &race, &backing_o,
                                     &procs_o, &goal_o, &limit_o, &bend_o,
                                     &seed_o, &gogc_o, &release_o, &meta_o,
                                     &coll_o, &bg_o, &bgscav_o)) {
        return NULL;
    }
    ga_options o;
    if (parse_options(&o,
                      &(heap_option_args){goos_o, goarch_o, race, backing_o,
                                          procs_o, goal_o, limit_o, bend_o,
                                          seed_o, gogc_o, release_o, meta_o,
                                          coll_o, bg_o, bgscav_o}) < 0) {
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
        PyObject *exc = status == GA_EINVAL   ? PyExc_ValueError
                        : status == GA_ENOMEM ? st->exc[EXC_OUT_OF_MEMORY]
                                              : st->exc[EXC_HEAP_CORRUPTION];
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

static PyObject *
heap_alloc(HeapObject *self, PyObject *const *args, Py_ssize_t nargs,
           PyObject *kwnames)
{
    if (live_heap(self) == NULL) { /* its state first; taken below */
        return NULL;
    }
    if (nargs != 1) {
        PyErr_Format(PyExc_TypeError,
                     "alloc() takes 1 positional argument (%zd given)", nargs);
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
    ga_addr a;
    ga_status s = p_fits(p) ? ga_malloc(h, (int)p, size, noscan, &a)
                            : GA_EBADP;
    if (s == GA_OK) {
        return release_heap(self, PyLong_FromUnsignedLongLong(a));
    }
    char msg[512];
    PyErr_SetString(status_error(self, s, 0, size, p, msg, sizeof(msg)), msg);
    return release_heap(self, NULL);
}

static PyObject *
heap_free(HeapObject *self, PyObject *arg)
{
    if (live_heap(self) == NULL) { /* its state first; taken below */
        return NULL;
    }
    uint64_t addr;
    if (!as_u64(arg, "address", &addr, heap_exc(self, EXC_INVALID_FREE))) {
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
        PyErr_SetString(PyExc_TypeError,
                        "scavenge() takes at most 1 argument");
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
verify_of(HeapObject *self, ga_heap *h)
{
    char msg[512];
    if (!ga_verify(h, msg, sizeof(msg))) {
        PyErr_SetString(heap_exc(self, EXC_HEAP_CORRUPTION), msg);
        return NULL;
    }
    Py_RETURN_NONE;
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
    {"drop", (PyCFunction)heap_drop, METH_O,
     "drop(addr): the program loses its last reference to the object at "
     "addr (collector='gc'); a GC cycle and a sweep free it later."},
    {"gc", (PyCFunction)heap_gc, METH_NOARGS,
     "gc(): runtime.GC: a whole cycle, then every span swept."},
    {"free_os_memory", (PyCFunction)heap_free_os_memory, METH_NOARGS,
     "free_os_memory(): debug.FreeOSMemory: gc(), then every free page back "
     "to the OS."},
    {"set_gc_percent", (PyCFunction)heap_set_gc_percent, METH_O,
     "set_gc_percent(gogc): debug.SetGCPercent; returns the old GOGC (-1: "
     "off)."},
    {"_gc_state", (PyCFunction)heap_gc_state, METH_NOARGS, NULL},
    {"_gc_cycles", (PyCFunction)heap_gc_cycles, METH_NOARGS, NULL},
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

PyType_Spec heap_spec = {
    .name = "goalloc._core.Heap",
    .basicsize = sizeof(HeapObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = heap_slots,
};
