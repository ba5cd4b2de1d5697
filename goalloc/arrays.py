"""Bulk introspection as NumPy arrays: spans, live objects, pages.

One C call fills a flat buffer and NumPy views it, so a heap with 100k
spans or millions of objects costs no Python loop.
"""
from __future__ import annotations

from typing import Any

import numpy as np

SPAN_STATES = ("dead", "inuse", "manual", "free")

SPAN_DTYPE = np.dtype([(name, "<u8") for name in (
    "base", "npages", "state", "scavenged", "spanclass", "sizeclass",
    "noscan", "elemsize", "nelems", "alloc_count", "freeindex", "limit",
    "needzero")])

OBJECT_DTYPE = np.dtype([("addr", "<u8"), ("size", "<u8"),
                         ("requested", "<u8"), ("spanclass", "<u8")])

PAGE_FREE = -1
PAGE_RELEASED = -2
PAGE_MANUAL = -3
PAGE_LARGE = 0


def span_array(heap: Any) -> np.ndarray:
    """Every span in address order; ``state`` indexes SPAN_STATES."""
    return np.frombuffer(heap._span_table(), dtype=SPAN_DTYPE)


def object_array(heap: Any) -> np.ndarray:
    """Every live object in address order: addr, usable size, requested
    size and span class (tiny objects one by one)."""
    return np.frombuffer(heap._object_table(), dtype=OBJECT_DTYPE)


def page_array(heap: Any) -> np.ndarray:
    """One int16 per page of every mapped arena, arenas in address order:
    PAGE_FREE, PAGE_RELEASED, PAGE_MANUAL, PAGE_LARGE (0), or the size
    class 1..66 of the in-use span holding it.  The rest of go1.13.8's
    curArena, mapped but no span yet, is PAGE_RELEASED, as MemStats
    counts it."""
    return np.frombuffer(heap._page_table(), dtype=np.int16)
