"""Go 1.13's size classes, as the C core has them."""
from __future__ import annotations

from collections.abc import Sequence

from . import _core
from ._records import SizeClass


def _max_waste(rows: Sequence[Sequence[int]], c: int) -> float:
    # Go's header formula: every object one byte bigger than the previous
    # class, plus the tail.
    _, size, npages, objects, tail = rows[c][:5]
    prev = rows[c - 1][1] if c > 1 else 0
    span = npages * _core.PAGE_SIZE
    return ((size - prev - 1) * objects + tail) / span


def size_classes() -> list[SizeClass]:
    """All 67 classes; index 0 is class 0, which marks large objects."""
    rows = _core._size_classes()
    out = []
    for c, row in enumerate(rows):
        cls, size, npages, objects, tail, sh, sh2, mul, mask = row
        waste = _max_waste(rows, c) if c else 0.0
        out.append(SizeClass(cls, size, npages, objects, tail, waste,
                             sh, sh2, mul, mask))
    return out


def size_to_class(n: int) -> int:
    """The size class of an n-byte small request; 0 if n is 0 or large."""
    return _core.size_to_class(n)
