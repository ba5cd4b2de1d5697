/* Heap._replay: a whole trace applied in C, chunk by chunk without the
 * GIL, with an optional progress callback between chunks.
 *
 * Every argument is converted into replay_args first; the heap is then
 * taken for all of the replay, progress calls included.
 * Go 1.13: none (goalloc's experiment driver; csrc/replay.c runs the ops).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "core.h"

/* The arguments of _replay, converted.  The buffers are held (and
 * released by replay_args_release) for the whole call. */
enum { REPLAY_NBUF = 9 };
typedef struct replay_args {
    Py_buffer b[REPLAY_NBUF]; /* kind id size noscan p addr_of live samples
                                 sample_ops */
    int got;                  /* buffers held */
    Py_ssize_t n, nids, ncap; /* ops, ids, sample slots */
    uint64_t every, chunk;
    PyObject *progress; /* borrowed; NULL for none */
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
                     "%llu",
                     ra->ncap, (unsigned long long)need);
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
                                                (Py_ssize_t)res->next, ra->n);
            if (r == NULL) {
                return false;
            }
            Py_DECREF(r);
        }
    }
    return true;
}

#define GA_X(name, what) [GA_REPLAY_##name] = what,
static const char *const reason_what[] = {GA_REPLAY_REASONS(GA_X)};
#undef GA_X

/* replay_failure says why a replay stopped: None if it did not, else
 * (type, what).  type is the exception of the heap's failure (the one
 * map from ga_status to exceptions, errors.c: OutOfMemoryError,
 * HeapCorruptionError), or None when the trace is at fault: a bad op, or
 * an op the heap refuses as bad input (a ValueError: a p beyond procs, a
 * size beyond maxAlloc), which goalloc/trace.py raises as TraceError.
 * what says why, in words (with the status's message). */
static PyObject *
replay_failure(HeapObject *self, const replay_args *ra,
               const ga_replay_result *res)
{
    if (res->reason == GA_REPLAY_OK) {
        return Py_NewRef(Py_None);
    }
    if (res->reason != GA_REPLAY_ALLOC_FAILED &&
        res->reason != GA_REPLAY_FREE_FAILED) {
        return Py_BuildValue("(Os)", Py_None, reason_what[res->reason]);
    }
    uint64_t id = ((const uint64_t *)ra->b[1].buf)[res->next];
    uint64_t size = ((const uint64_t *)ra->b[2].buf)[res->next];
    uint64_t addr = ((const uint64_t *)ra->b[5].buf)[id];
    long p = ((const uint16_t *)ra->b[4].buf)[res->next];
    char msg[512];
    PyObject *type = status_error(self, res->status, addr, size, p, msg,
                                  sizeof(msg));
    if (PyErr_GivenExceptionMatches(type, PyExc_ValueError)) {
        type = Py_None;
    }
    return Py_BuildValue("(ON)", type,
                         PyUnicode_FromFormat("%s (%s)",
                                              reason_what[res->reason], msg));
}

/* _replay((kind, id, size, noscan, p), addr_of, live, samples, sample_ops,
 *         sample_every, chunk, progress)
 * applies the whole trace (see replay_chunks); returns (next, failure,
 * nsamples), failure as replay_failure makes it.  The Python layer
 * (goalloc/trace.py) prepares the columns and the output arrays, and
 * raises the failure with the op's index. */
PyObject *
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
    if (!replay_args_get(&ra, cols, addr_o, live_o, samples_o, ops_o, every_o,
                         chunk_o, progress_o)) {
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
        result = Py_BuildValue("(nNn)", (Py_ssize_t)res.next,
                               replay_failure(self, &ra, &res),
                               (Py_ssize_t)res.nsamples);
    }
done:
    replay_args_release(&ra);
    return result;
}
