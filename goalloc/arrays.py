"""Bulk introspection as NumPy arrays: spans, live objects, pages.

One C call fills a flat buffer and NumPy views it, so a heap with 100k
spans or millions of objects costs no Python loop.

The rows are the C core's records (csrc/goalloc.h), one uint64 a field,
so the dtypes are made from the field lists _core exports.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import _core

# Span states by value: span_array()["state"] indexes this.
SPAN_STATES: tuple[str, ...] = _core.SPAN_STATES

# goalloc.Span's fields (bools and the state as integers).
SPAN_DTYPE = np.dtype([(name, np.uint64) for name, _, _ in _core.SPAN_FIELDS])

# addr, size (usable bytes), requested, spanclass.
OBJECT_DTYPE = np.dtype([(name, np.uint64)
                         for name, _, _ in _core.OBJECT_FIELDS])

# page_array() codes other than a size class.
PAGE_FREE: int = _core.PAGE_FREE
PAGE_RELEASED: int = _core.PAGE_RELEASED
PAGE_MANUAL: int = _core.PAGE_MANUAL
PAGE_LARGE: int = _core.PAGE_LARGE


def span_array(heap: Any) -> np.ndarray:
    """Every span in address order; ``state`` indexes SPAN_STATES."""
    return np.frombuffer(heap._span_table(), dtype=SPAN_DTYPE)


def object_array(heap: Any) -> np.ndarray:
    """Every live object in address order: addr, usable size, requested
    size, span class and dropped (tiny objects one by one).  On a GC-mode
    heap the objects the program dropped are listed too, with dropped
    1, until a sweep frees them."""
    return np.frombuffer(heap._object_table(), dtype=OBJECT_DTYPE)


def page_array(heap: Any) -> np.ndarray:
    """One int16 per page of every mapped arena, arenas in address order:
    PAGE_FREE, PAGE_RELEASED, PAGE_MANUAL, PAGE_LARGE (0), or the size
    class 1..66 of the in-use span holding it.  The rest of go1.13.8's
    curArena, mapped but no span yet, is PAGE_RELEASED, as MemStats
    counts it."""
    return np.frombuffer(heap._page_table(), dtype=np.int16)
