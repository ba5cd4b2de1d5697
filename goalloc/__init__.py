"""goalloc: Go 1.13's memory allocator, rebuilt in C, opened up to Python.

    >>> import goalloc
    >>> h = goalloc.Heap()                 # runtime.mallocinit
    >>> p = h.alloc(100_000)               # a 13-page large object
    >>> h.span_of(p).npages
    13
"""
from ._core import (
    DoubleFreeError,
    GoallocError,
    HeapBusyError,
    HeapClosedError,
    HeapCorruptionError,
    InvalidFreeError,
    OutOfMemoryError,
    MAX_SMALL_SIZE,
    NUM_SIZE_CLASSES,
    NUM_SPAN_CLASSES,
    PAGE_SIZE,
    TINY_SIZE,
)
from ._records import (
    SLOT_FREE,
    SLOT_FREED,
    SLOT_LIVE,
    Arena,
    ArenaHint,
    BySize,
    Cache,
    Central,
    HeapInfo,
    SizeClass,
    Span,
    SpanObjects,
)
from .fragmentation import Fragmentation
from .heap import Heap
from .sizeclasses import size_classes, size_to_class
from .stats import MemStats
from .timeline import Timeline
from .trace import Trace, TraceError

__version__ = "0.1.0"

__all__ = [
    "Arena", "ArenaHint", "BySize", "Cache", "Central", "DoubleFreeError",
    "GoallocError", "SLOT_FREE", "SLOT_FREED", "SLOT_LIVE", "SpanObjects",
    "Fragmentation", "Heap", "HeapBusyError", "HeapClosedError", "HeapCorruptionError", "HeapInfo",
    "InvalidFreeError", "MAX_SMALL_SIZE", "MemStats", "NUM_SIZE_CLASSES",
    "NUM_SPAN_CLASSES", "OutOfMemoryError", "PAGE_SIZE", "SizeClass", "Span",
    "TINY_SIZE", "Timeline", "Trace", "TraceError", "size_classes",
    "size_to_class", "__version__",
]
