/* What the files of the binding (csrc/python/) share: the module state,
 * the object types, the call protocol, the exception table's indexes and
 * the helpers each file lends the others.
 *
 * The binding's layout: _coremodule.c (the module), heap.c (the Heap
 * type and the call protocol), records.c (the records' Python values and
 * field lists), introspect.c, bulk.c, replay.c, view.c, faults.c,
 * errors.c, args.c.  Only these files include Python.h.
 * Go 1.13: none (goalloc's Python surface).
 */
#ifndef GOALLOC_PY_CORE_H
#define GOALLOC_PY_CORE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "goalloc.h"

/* goalloc's exceptions, in the order of the table in errors.c (a base
 * comes before what derives from it). */
typedef enum core_exc {
    EXC_GOALLOC,         /* GoallocError(Exception) */
    EXC_INVALID_FREE,    /* InvalidFreeError(GoallocError, ValueError) */
    EXC_DOUBLE_FREE,     /* DoubleFreeError(InvalidFreeError) */
    EXC_OUT_OF_MEMORY,   /* OutOfMemoryError(GoallocError, MemoryError) */
    EXC_HEAP_CLOSED,     /* HeapClosedError(GoallocError, RuntimeError) */
    EXC_HEAP_BUSY,       /* HeapBusyError(GoallocError, RuntimeError) */
    EXC_HEAP_CORRUPTION, /* HeapCorruptionError(GoallocError, RuntimeError) */
    EXC_WRONG_COLLECTOR, /* WrongCollectorError(GoallocError, TypeError) */
    EXC_COUNT
} core_exc;

typedef struct core_state {
    PyTypeObject *heap_type;
    PyTypeObject *mapping_type;
    PyTypeObject *view_type;
    PyObject *exc[EXC_COUNT];
} core_state;

static inline core_state *
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

/* p_fits: a P argument that the facade can take (an int).  Any other is
 * no P of any heap: the caller has its GA_EBADP without asking. */
static inline bool
p_fits(long p)
{
    return p >= INT_MIN && p <= INT_MAX;
}

static inline core_state *
heap_state(HeapObject *self)
{
    return get_core_state(self->module);
}

static inline PyObject *
heap_exc(HeapObject *self, core_exc e)
{
    return heap_state(self)->exc[e];
}

/* _coremodule.c */
PyObject *find_core_module(PyTypeObject *type);

/* heap.c: the Heap type and the call protocol */
extern PyType_Spec heap_spec;
ga_heap *live_heap(HeapObject *self);
ga_heap *acquire_heap(HeapObject *self, const char *what);
PyObject *release_heap(HeapObject *self, PyObject *result);
PyObject *read_heap(HeapObject *self, const char *what,
                    PyObject *(*fn)(HeapObject *self, ga_heap *h));

/* errors.c */
int add_exceptions(PyObject *module, core_state *st);
void set_errorf(PyObject *type, const char *fmt, ...);
PyObject *status_error(HeapObject *self, ga_status s, uint64_t addr,
                       uint64_t size, long p, char *msg, size_t len);
PyObject *set_error_from_status(HeapObject *self, ga_status s, uint64_t addr,
                                uint64_t size);
PyObject *raise_at(PyObject *type, PyObject *msg, Py_ssize_t index,
                   PyObject *addresses);

/* args.c */
bool as_u64(PyObject *o, const char *what, uint64_t *out, PyObject *err_type);
const char *str_arg(PyObject *o, const char *what);
const char *optional_str(PyObject *o, const char *what, const char *dflt);
int opt_u64(PyObject *o, const char *what, uint64_t *out);
bool get_column(PyObject *o, Py_buffer *b, Py_ssize_t itemsize, Py_ssize_t n,
                bool writable, const char *what);
bool parse_alloc_kw(const char *fname, PyObject *const *kwargs,
                    PyObject *kwnames, bool *noscan, long *p);

/* options.c: the Heap's keyword arguments, as given (NULL: absent) */
typedef struct heap_option_args {
    PyObject *goos, *goarch;
    int race;
    PyObject *backing, *procs, *scavenge_goal, *sys_limit, *binary_end;
    PyObject *seed, *gogc, *release, *metadata_limit, *collector;
    PyObject *background_sweep, *background_scavenge;
} heap_option_args;
/* parse_options fills *o from a; -1 with an exception set if one is
 * bad. */
int parse_options(ga_options *o, const heap_option_args *a);

/* records.c */
int add_record_fields(PyObject *module);
PyObject *hint_tuple(const ga_hint_info *r);
PyObject *arena_tuple(const ga_arena_info *r);
PyObject *span_tuple(const ga_span_info *r);
PyObject *counters_tuple(const ga_heap_counters *r);
PyObject *central_tuple(int spc, PyObject *nonempty, PyObject *empty,
                        const ga_central_info *r);
PyObject *cache_tuple(int p, const ga_cache_info *r, PyObject *alloc);
PyObject *heap_info_dict(const ga_heap_info *r);
PyObject *mem_stats_dict(const ga_mem_stats *r);
PyObject *gc_state_dict(const ga_gc_state *r);
PyObject *gc_cycle_tuple(const ga_gc_cycle *r);
void span_row(const ga_span_info *r, uint64_t *row);
extern const size_t span_row_words;

/* introspect.c */
PyObject *heap_hints(HeapObject *self, PyObject *ignored);
PyObject *heap_arenas(HeapObject *self, PyObject *ignored);
PyObject *heap_spans(HeapObject *self, PyObject *ignored);
PyObject *heap_span_of(HeapObject *self, PyObject *arg);
PyObject *heap_stats(HeapObject *self, PyObject *ignored);
PyObject *heap_info(HeapObject *self, PyObject *ignored);
PyObject *heap_centrals(HeapObject *self, PyObject *ignored);
PyObject *heap_caches(HeapObject *self, PyObject *ignored);
PyObject *heap_span_objects(HeapObject *self, PyObject *arg);
PyObject *heap_digest(HeapObject *self, PyObject *ignored);
PyObject *heap_counters(HeapObject *self, PyObject *ignored);
PyObject *heap_span_table(HeapObject *self, PyObject *ignored);
PyObject *heap_object_table(HeapObject *self, PyObject *ignored);
PyObject *heap_page_table(HeapObject *self, PyObject *ignored);

/* view.c */
extern PyType_Spec mapping_spec;
extern PyType_Spec view_spec;
PyObject *heap_view(HeapObject *self, PyObject *const *args, Py_ssize_t nargs);

/* bulk.c */
PyObject *heap_alloc_many(HeapObject *self, PyObject *const *args,
                          Py_ssize_t nargs, PyObject *kwnames);
PyObject *heap_free_many(HeapObject *self, PyObject *const *args,
                         Py_ssize_t nargs);

/* replay.c */
PyObject *heap_replay(HeapObject *self, PyObject *args);

/* faults.c */
PyObject *heap_block_range(HeapObject *self, PyObject *const *args,
                           Py_ssize_t nargs);
PyObject *heap_fail_reserves(HeapObject *self, PyObject *arg);
PyObject *heap_fail_metadata(HeapObject *self, PyObject *arg);
PyObject *heap_throw(HeapObject *self, PyObject *arg);

/* gc.c: GC mode (design §14) */
PyObject *heap_drop(HeapObject *self, PyObject *arg);
PyObject *heap_gc(HeapObject *self, PyObject *ignored);
PyObject *heap_free_os_memory(HeapObject *self, PyObject *ignored);
PyObject *heap_set_gc_percent(HeapObject *self, PyObject *arg);
PyObject *heap_gc_state(HeapObject *self, PyObject *ignored);
PyObject *heap_gc_cycles(HeapObject *self, PyObject *ignored);

#endif
