"""Heap.alloc_many and Heap.free_many: the input conversion.

Each call turns its input into one fresh C-contiguous uint64 array that
nothing else holds (the C loop reads it without the GIL, so no other
thread may change it meanwhile), with NumPy, in one pass or two.  The
C binding (csrc/python/bulk.c: _alloc_many, _free_many) checks the rest,
runs the loop and raises every goalloc exception.
"""
from __future__ import annotations

import operator
from typing import Any

import numpy as np

_U64_MAX = (1 << 64) - 1


def uint64_column(values: Any, what: str) -> tuple[np.ndarray, int | None]:
    """(column, bad): values as a new uint64 array, up to the first value
    that is no uint64 (negative, or >= 2**64); bad is that value (an int),
    or None when every value is one.

    values: a 1-D NumPy array of any integer dtype, a buffer of integers
    (array.array, memoryview), or a sequence of ints (list, range, ...).
    TypeError for anything else (floats, bools, strings, a scalar);
    ValueError for 2-D and deeper input.
    """
    a: Any = values
    typed = isinstance(values, np.ndarray)
    if not typed:
        try:
            a = np.asarray(memoryview(values))
            typed = True
        except TypeError:  # not a buffer: a sequence
            try:
                a = np.asarray(values)
            except ValueError:
                # ragged nesting ([1, [2]]): NumPy cannot make an array
                # of it; the slow path names the first item that is no int
                return _int_objects(list(values), what)
    if a.ndim == 0:
        raise TypeError(f"{what} must be a 1-D array of integers, not "
                        f"{type(values).__name__}")
    if a.ndim != 1:
        raise ValueError(f"{what} must be 1-D, not {a.ndim}-D (shape "
                         f"{a.shape})")
    kind = a.dtype.kind
    if kind == "u":
        return a.astype(np.uint64, order="C"), None
    if kind == "i":
        if a.size and a.min() < 0:
            k = int(np.argmax(a < 0))
            return a[:k].astype(np.uint64, order="C"), int(a[k])
        return a.astype(np.uint64, order="C"), None
    if not typed and a.size == 0:  # [] and () are float64 to NumPy
        return np.empty(0, dtype=np.uint64), None
    if kind == "O" or (kind == "f" and not typed):
        # Python ints NumPy has no integer dtype for (beyond 2**64, or
        # negative mixed with >= 2**63: float64!), or no ints at all
        return _int_objects(a.tolist() if typed else list(values), what)
    hint = (" (np.zeros and np.ones make float64 unless given a dtype)"
            if kind == "f" else "")
    raise TypeError(f"{what} must hold integers, not {a.dtype}{hint}")


def _int_objects(items: list[Any], what: str) -> tuple[np.ndarray, int | None]:
    """The slow path: one Python int at a time."""
    ints: list[int] = []
    for i, v in enumerate(items):
        try:
            n = operator.index(v)
        except TypeError:
            raise TypeError(f"{what}[{i}] must be an int, not "
                            f"{type(v).__name__}") from None
        if not 0 <= n <= _U64_MAX:
            return np.array(ints, dtype=np.uint64), n
        ints.append(n)
    return np.array(ints, dtype=np.uint64), None
