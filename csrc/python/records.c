/* The facade's records in Python: the values the introspection calls
 * return, and the field lists goalloc._core exports.
 *
 * Each record is defined once, as an X-macro list of its fields in
 * goalloc.h (GA_SPAN_FIELDS, ...; MSTATS_FIELDS in mstats.h).  Here the
 * same lists make the tuples and dicts the Heap methods return, and the
 * tuples _core.SPAN_FIELDS, _core.HEAP_INFO_FIELDS, ... of (name, type,
 * doc), from which goalloc derives its NumPy dtypes and snapshot schema
 * and against which a test checks goalloc's typed records.  A field
 * added to a list in goalloc.h thus reaches Python without another edit
 * here.
 * Go 1.13: none (goalloc's Python surface).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "core.h"

/* ---- Python values of fields, by kind (goalloc.h) ------------------ */

/* The Python type of each kind, as _core's field lists name it. */
#define PYTYPE_U64 "int"
#define PYTYPE_ADDR "int"
#define PYTYPE_INT "int"
#define PYTYPE_UINT "int"
#define PYTYPE_BOOL "bool"
#define PYTYPE_STR "str"
#define PYTYPE_STATE "str"
#define PYTYPE_BACKING "str"
#define PYTYPE_RELEASE "str"
#define PYTYPE_F64 "float"

#define GA_STATE_NAME(name, value) [value] = #name,
static const char *const span_state_names[] = {GA_SPAN_STATES(GA_STATE_NAME)};
#undef GA_STATE_NAME
enum { NUM_SPAN_STATES = sizeof(span_state_names) / sizeof(char *) };

static PyObject *
py_U64(uint64_t v)
{
    return PyLong_FromUnsignedLongLong(v);
}

static PyObject *
py_ADDR(ga_addr v)
{
    return PyLong_FromUnsignedLongLong(v);
}

static PyObject *
py_INT(int v)
{
    return PyLong_FromLong(v);
}

static PyObject *
py_UINT(unsigned v)
{
    return PyLong_FromUnsignedLong(v);
}

static PyObject *
py_BOOL(bool v)
{
    return Py_NewRef(v ? Py_True : Py_False);
}

static PyObject *
py_STR(const char *v)
{
    return PyUnicode_FromString(v);
}

static PyObject *
py_STATE(int v)
{
    if (v < 0 || v >= NUM_SPAN_STATES) {
        return PyErr_Format(PyExc_SystemError, "span state %d", v);
    }
    return PyUnicode_FromString(span_state_names[v]);
}

static PyObject *
py_F64(double v)
{
    return PyFloat_FromDouble(v);
}

static PyObject *
py_BACKING(ga_backing v)
{
    return PyUnicode_FromString(v == GA_BACKING_OS ? "os" : "virtual");
}

static PyObject *
py_RELEASE(ga_release v)
{
    const char *name = ga_release_name(v);
    if (name == NULL) {
        return PyErr_Format(PyExc_SystemError, "release %d", (int)v);
    }
    return PyUnicode_FromString(name);
}

/* ---- Tuples and dicts of records ------------------------------------ */

/* put stores v (stolen) as item (*i)++ of the tuple *t; if v is NULL
 * (its making failed) or *t is (an earlier item's did), it clears *t. */
static void
put(PyObject **t, Py_ssize_t *i, PyObject *v)
{
    if (*t == NULL || v == NULL) {
        Py_XDECREF(v);
        Py_CLEAR(*t);
        return;
    }
    PyTuple_SET_ITEM(*t, (*i)++, v);
}

/* PUT_FIELD puts field `name` of the record r into the tuple t at i; it
 * stops at the first failure (t is then NULL). */
#define PUT_FIELD(name, kind, doc)                                            \
    if (t != NULL) {                                                          \
        put(&t, &i, py_##kind(r->name));                                      \
    }
#define COUNT_FIELD(name, kind, doc) +1

PyObject *
hint_tuple(const ga_hint_info *r)
{
    Py_ssize_t i = 0;
    PyObject *t = PyTuple_New(0 GA_HINT_FIELDS(COUNT_FIELD));
    GA_HINT_FIELDS(PUT_FIELD)
    return t;
}

PyObject *
arena_tuple(const ga_arena_info *r)
{
    Py_ssize_t i = 0;
    PyObject *t = PyTuple_New(0 GA_ARENA_FIELDS(COUNT_FIELD));
    GA_ARENA_FIELDS(PUT_FIELD)
    return t;
}

PyObject *
span_tuple(const ga_span_info *r)
{
    Py_ssize_t i = 0;
    PyObject *t = PyTuple_New(0 GA_SPAN_FIELDS(COUNT_FIELD));
    GA_SPAN_FIELDS(PUT_FIELD)
    return t;
}

PyObject *
counters_tuple(const ga_heap_counters *r)
{
    Py_ssize_t i = 0;
    PyObject *t = PyTuple_New(0 GA_COUNTER_FIELDS(COUNT_FIELD));
    GA_COUNTER_FIELDS(PUT_FIELD)
    return t;
}

/* central_tuple is goalloc.Central's tuple: span class spc, its
 * nonempty and empty lists (stolen) and its counters. */
PyObject *
central_tuple(int spc, PyObject *nonempty, PyObject *empty,
              const ga_central_info *r)
{
    Py_ssize_t i = 0;
    PyObject *t = PyTuple_New(3 GA_CENTRAL_FIELDS(COUNT_FIELD));
    if (t != NULL) {
        put(&t, &i, py_INT(spc));
    }
    put(&t, &i, nonempty);
    put(&t, &i, empty);
    GA_CENTRAL_FIELDS(PUT_FIELD)
    return t;
}

/* cache_tuple is goalloc.Cache's tuple: P p, its fields, then the span
 * base cached for each span class (alloc, stolen; 0: none). */
PyObject *
cache_tuple(int p, const ga_cache_info *r, PyObject *alloc)
{
    Py_ssize_t i = 0;
    PyObject *t = PyTuple_New(2 GA_CACHE_FIELDS(COUNT_FIELD));
    if (t != NULL) {
        put(&t, &i, py_INT(p));
    }
    GA_CACHE_FIELDS(PUT_FIELD)
    put(&t, &i, alloc);
    return t;
}

/* dict_put sets d[key] = v (stolen), or clears d if v or the setting
 * fails. */
static void
dict_put(PyObject **d, const char *key, PyObject *v)
{
    if (v == NULL || PyDict_SetItemString(*d, key, v) < 0) {
        Py_CLEAR(*d);
    }
    Py_XDECREF(v);
}

PyObject *
heap_info_dict(const ga_heap_info *r)
{
    PyObject *d = PyDict_New();
#define PUT_KEY(name, kind, doc)                                              \
    if (d != NULL) {                                                          \
        dict_put(&d, #name, py_##kind(r->name));                              \
    }
    GA_HEAP_INFO_FIELDS(PUT_KEY)
#undef PUT_KEY
    return d;
}

PyObject *
gc_state_dict(const ga_gc_state *r)
{
    PyObject *d = PyDict_New();
#define PUT_KEY(name, kind, doc)                                              \
    if (d != NULL) {                                                          \
        dict_put(&d, #name, py_##kind(r->name));                              \
    }
    GA_GC_STATE_FIELDS(PUT_KEY)
#undef PUT_KEY
    return d;
}

PyObject *
gc_cycle_tuple(const ga_gc_cycle *r)
{
    Py_ssize_t i = 0;
    PyObject *t = PyTuple_New(0 GA_GC_CYCLE_FIELDS(COUNT_FIELD));
    GA_GC_CYCLE_FIELDS(PUT_FIELD)
    return t;
}

PyObject *
mem_stats_dict(const ga_mem_stats *r)
{
    PyObject *d = PyDict_New();
#define PUT_KEY(name, doc)                                                    \
    if (d != NULL) {                                                          \
        dict_put(&d, #name, py_U64(r->name));                                 \
    }
    MSTATS_FIELDS(PUT_KEY)
#undef PUT_KEY
    PyObject *by = d ? PyTuple_New(NUM_SIZE_CLASSES) : NULL;
    for (int c = 0; by != NULL && c < NUM_SIZE_CLASSES; c++) {
        PyObject *t = Py_BuildValue("(KKK)",
                                    (unsigned long long)r->by_size[c].size,
                                    (unsigned long long)r->by_size[c].mallocs,
                                    (unsigned long long)r->by_size[c].frees);
        if (t == NULL) {
            Py_CLEAR(by);
            break;
        }
        PyTuple_SET_ITEM(by, c, t);
    }
    if (d != NULL) {
        dict_put(&d, "by_size", by);
    }
    return d;
}

#undef PUT_FIELD

/* span_row writes span r as the row of SPAN_FIELDS.size uint64 words
 * that Heap._span_table returns (goalloc.arrays.SPAN_DTYPE). */
void
span_row(const ga_span_info *r, uint64_t *row)
{
    size_t i = 0;
#define PUT_WORD(name, kind, doc) row[i++] = (uint64_t)r->name;
    GA_SPAN_FIELDS(PUT_WORD)
#undef PUT_WORD
}

const size_t span_row_words = 0 GA_SPAN_FIELDS(COUNT_FIELD);

/* Heap._object_table hands out ga_live_object structs as they are, one
 * uint64 word a field (goalloc.arrays.OBJECT_DTYPE). */
_Static_assert(sizeof(ga_live_object) ==
                   sizeof(uint64_t) * (0 GA_LIVE_OBJECT_FIELDS(COUNT_FIELD)),
               "ga_live_object is not one uint64 a field");
/* ... and a replay's samples are ga_heap_counters structs, likewise
 * (goalloc.trace.COUNTER_FIELDS). */
_Static_assert(sizeof(ga_heap_counters) ==
                   sizeof(uint64_t) * (0 GA_COUNTER_FIELDS(COUNT_FIELD)),
               "ga_heap_counters is not one uint64 a field");

#undef COUNT_FIELD

/* ---- The field lists _core exports ---------------------------------- */

typedef struct field_def {
    const char *name;
    const char *type; /* the Python type of the value */
    const char *doc;
} field_def;

#define FIELD_DEF(name, kind, doc) {#name, PYTYPE_##kind, doc},
#define MSTATS_DEF(name, doc) {#name, "int", doc},

static const field_def hint_fields[] = {GA_HINT_FIELDS(FIELD_DEF)};
static const field_def arena_fields[] = {GA_ARENA_FIELDS(FIELD_DEF)};
static const field_def span_fields[] = {GA_SPAN_FIELDS(FIELD_DEF)};
static const field_def central_fields[] = {
    {"spanclass", "int", "the span class: sizeclass << 1 | noscan"},
    {"nonempty", "tuple[int, ...]", "bases of its spans with a free slot"},
    {"empty", "tuple[int, ...]",
     "bases of its full spans and of the spans an mcache holds"},
    GA_CENTRAL_FIELDS(FIELD_DEF)};
/* (clang-format would glue the X-macro to the brace after it) */
/* clang-format off */
static const field_def cache_fields[] = {
    {"p", "int", "the P"},
    GA_CACHE_FIELDS(FIELD_DEF)
    {"alloc", "tuple[int, ...]",
     "per span class, the base of the span it holds, 0 for none"},
};
/* clang-format on */
static const field_def heap_info_fields[] = {GA_HEAP_INFO_FIELDS(FIELD_DEF)};
static const field_def mstats_fields[] = {MSTATS_FIELDS(MSTATS_DEF)};
static const field_def counter_fields[] = {GA_COUNTER_FIELDS(FIELD_DEF)};
static const field_def object_fields[] = {GA_LIVE_OBJECT_FIELDS(FIELD_DEF)};
static const field_def gc_state_fields[] = {GA_GC_STATE_FIELDS(FIELD_DEF)};
static const field_def gc_cycle_fields[] = {GA_GC_CYCLE_FIELDS(FIELD_DEF)};

#undef FIELD_DEF
#undef MSTATS_DEF

/* fields_tuple makes ((name, type, doc), ...) of the n fields f. */
static PyObject *
fields_tuple(const field_def *f, size_t n)
{
    PyObject *t = PyTuple_New((Py_ssize_t)n);
    for (size_t i = 0; t != NULL && i < n; i++) {
        PyObject *item = Py_BuildValue("(sss)", f[i].name, f[i].type,
                                       f[i].doc);
        if (item == NULL) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, (Py_ssize_t)i, item);
    }
    return t;
}

/* add_ref adds v (stolen) to module as name; -1 on failure. */
static int
add_ref(PyObject *module, const char *name, PyObject *v)
{
    int r = v == NULL ? -1 : PyModule_AddObjectRef(module, name, v);
    Py_XDECREF(v);
    return r;
}

static int
add_span_states(PyObject *module)
{
    PyObject *t = PyTuple_New(NUM_SPAN_STATES);
    for (Py_ssize_t i = 0; t != NULL && i < NUM_SPAN_STATES; i++) {
        PyObject *s = PyUnicode_FromString(span_state_names[i]);
        if (s == NULL) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, i, s);
    }
    return add_ref(module, "SPAN_STATES", t);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* add_record_fields adds the field lists of every record, the span
 * state names (indexed by value) and the slot and page codes to module. */
int
add_record_fields(PyObject *module)
{
    static const struct {
        const char *name;
        const field_def *fields;
        size_t n;
    } lists[] = {
        {"HINT_FIELDS", hint_fields, N(hint_fields)},
        {"ARENA_FIELDS", arena_fields, N(arena_fields)},
        {"SPAN_FIELDS", span_fields, N(span_fields)},
        {"CENTRAL_FIELDS", central_fields, N(central_fields)},
        {"CACHE_FIELDS", cache_fields, N(cache_fields)},
        {"HEAP_INFO_FIELDS", heap_info_fields, N(heap_info_fields)},
        {"MSTATS_FIELDS", mstats_fields, N(mstats_fields)},
        {"COUNTER_FIELDS", counter_fields, N(counter_fields)},
        {"OBJECT_FIELDS", object_fields, N(object_fields)},
        {"GC_STATE_FIELDS", gc_state_fields, N(gc_state_fields)},
        {"GC_CYCLE_FIELDS", gc_cycle_fields, N(gc_cycle_fields)},
    };
    for (size_t i = 0; i < N(lists); i++) {
        if (add_ref(module, lists[i].name,
                    fields_tuple(lists[i].fields, lists[i].n)) < 0) {
            return -1;
        }
    }
    static const struct {
        const char *name;
        int value;
    } codes[] = {
        {"SLOT_FREE", GA_SLOT_FREE},     {"SLOT_LIVE", GA_SLOT_LIVE},
        {"SLOT_FREED", GA_SLOT_FREED},   {"SLOT_DROPPED", GA_SLOT_DROPPED},
        {"PAGE_FREE", GA_PAGE_FREE},     {"PAGE_RELEASED", GA_PAGE_RELEASED},
        {"PAGE_MANUAL", GA_PAGE_MANUAL}, {"PAGE_LARGE", GA_PAGE_LARGE},
    };
    for (size_t i = 0; i < N(codes); i++) {
        if (PyModule_AddIntConstant(module, codes[i].name, codes[i].value) <
            0) {
            return -1;
        }
    }
    return add_span_states(module);
}
