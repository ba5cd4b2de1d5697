"""goalloc: Go 1.13's memory allocator, rebuilt in C, opened up to Python.

    >>> import goalloc
    >>> h = goalloc.Heap()                 # runtime.mallocinit
    >>> p = h.alloc(100_000)               # a 13-page large object
    >>> h.span_of(p).npages
    13
"""
import os as _os

try:
    from ._core import (
        MAX_SMALL_SIZE,
        NUM_SIZE_CLASSES,
        NUM_SPAN_CLASSES,
        PAGE_SIZE,
        TINY_SIZE,
        DoubleFreeError,
        GoallocError,
        HeapBusyError,
        HeapClosedError,
        HeapCorruptionError,
        InvalidFreeError,
        OutOfMemoryError,
        WrongCollectorError,
    )
except ModuleNotFoundError as _e:
    if _e.name != __name__ + "._core":
        raise
    # The usual cause: the root of a source checkout is the current
    # directory (python -m goalloc, pytest, a notebook started there), so
    # Python imports the source folder goalloc/, where pip never builds the
    # extension, instead of the installed package.  Say so instead of
    # "No module named 'goalloc._core'".  name= makes `python -m goalloc`
    # print this as a one-line error instead of a traceback.
    raise ImportError(
        f"goalloc's C extension (goalloc._core) is not built in "
        f"{_os.path.dirname(_os.path.abspath(__file__))}: Python imported "
        f"goalloc's source folder (the current directory or PYTHONPATH "
        f"comes first on sys.path), not the installed package.  Run the "
        f"installed command 'goalloc' instead of 'python -m goalloc', or "
        f"run from another directory, or build the extension in place "
        f"with 'pip install -e .' or 'python setup.py build_ext --inplace'",
        name=__name__) from None

from . import (
    attribution,  # goalloc.attribution.read_memray, site_table
    snapshot,  # goalloc.snapshot.diff, .export_json, ...
)
from ._options import Backing, Collector, Goarch, Goos, Release
from ._records import (
    SLOT_DROPPED,
    SLOT_FREE,
    SLOT_FREED,
    SLOT_LIVE,
    Arena,
    ArenaHint,
    BySize,
    Cache,
    Central,
    GCCycle,
    GCState,
    HeapInfo,
    SizeClass,
    Span,
    SpanObjects,
)
from .comparison import compare
from .fragmentation import Fragmentation
from .heap import Heap
from .sizeclasses import size_classes, size_to_class
from .stats import MemStats
from .sweeps import SweepError, sweep
from .tables import class_table, to_pandas
from .timeline import Timeline, TimelineError
from .trace import Trace, TraceError

__version__ = "0.1.0"

__all__ = [
    "Arena", "ArenaHint", "attribution", "Backing", "BySize", "Cache",
    "Central", "Collector", "DoubleFreeError", "Goarch", "Goos", "Release",
    "GCCycle", "GCState", "GoallocError", "SLOT_DROPPED", "SLOT_FREE",
    "SLOT_FREED", "SLOT_LIVE", "SpanObjects",
    "Fragmentation", "Heap", "HeapBusyError", "HeapClosedError",
    "HeapCorruptionError", "HeapInfo",
    "InvalidFreeError", "MAX_SMALL_SIZE", "MemStats", "NUM_SIZE_CLASSES",
    "NUM_SPAN_CLASSES", "OutOfMemoryError", "PAGE_SIZE", "SizeClass", "Span",
    "TINY_SIZE", "Timeline", "TimelineError", "Trace", "TraceError",
    "WrongCollectorError", "class_table", "compare", "size_classes",
    "snapshot", "size_to_class", "sweep", "SweepError", "to_pandas",
    "__version__",
]
