"""Shared helpers of the small/tiny-object tests, and their self-checks.

The Go numbers here are written from Go 1.13's rules as docs/design.md
states them (design §3.3, design §4.8), never read back from goalloc, so a
test that compares against them is an independent check.
"""
from __future__ import annotations

import goalloc
from helpers import PAGE

# Go 1.13 size classes (design §3.3): class -> (bytes/obj, pages/span).
GO113_CLASSES = {
    1: (8, 1), 2: (16, 1), 3: (32, 1), 4: (48, 1), 5: (64, 1), 6: (80, 1),
    7: (96, 1), 8: (112, 1), 9: (128, 1), 10: (144, 1), 11: (160, 1),
    12: (176, 1), 13: (192, 1), 14: (208, 1), 15: (224, 1), 16: (240, 1),
    17: (256, 1), 18: (288, 1), 19: (320, 1), 20: (352, 1), 21: (384, 1),
    22: (416, 1), 23: (448, 1), 24: (480, 1), 25: (512, 1), 26: (576, 1),
    27: (640, 1), 28: (704, 1), 29: (768, 1), 30: (896, 1), 31: (1024, 1),
    32: (1152, 1), 33: (1280, 1), 34: (1408, 2), 35: (1536, 1),
    36: (1792, 2), 37: (2048, 1), 38: (2304, 2), 39: (2688, 1),
    40: (3072, 3), 41: (3200, 2), 42: (3456, 3), 43: (4096, 1),
    44: (4864, 3), 45: (5376, 2), 46: (6144, 3), 47: (6528, 4),
    48: (6784, 5), 49: (6912, 6), 50: (8192, 1), 51: (9472, 7),
    52: (9728, 6), 53: (10240, 5), 54: (10880, 4), 55: (12288, 3),
    56: (13568, 5), 57: (14336, 7), 58: (16384, 2), 59: (18432, 9),
    60: (19072, 7), 61: (20480, 5), 62: (21760, 8), 63: (24576, 3),
    64: (27264, 10), 65: (28672, 7), 66: (32768, 4),
}

TINY_SPAN_CLASS = 5   # class 2 (16 bytes) noscan: tinySpanClass
TINY = 16             # maxTinySize, the tiny block size


def class_size(c: int) -> int:
    return GO113_CLASSES[c][0]


def class_npages(c: int) -> int:
    return GO113_CLASSES[c][1]


def class_nelems(c: int) -> int:
    """Objects per span: span bytes // object size (design §3.3)."""
    size, npages = GO113_CLASSES[c]
    return npages * PAGE // size


def class_of(size: int) -> int:
    """Smallest class whose size >= size (design §3.3), by linear search."""
    for c in range(1, 67):
        if GO113_CLASSES[c][0] >= size:
            return c
    raise ValueError(size)


def spanclass(c: int, noscan: bool) -> int:
    return c << 1 | int(noscan)


def tiny_align(off: int, size: int) -> int:
    """mallocgc's tiny alignment of offset off for a size-byte request."""
    if size % 8 == 0:
        a = 8
    elif size % 4 == 0:
        a = 4
    elif size % 2 == 0:
        a = 2
    else:
        a = 1
    return (off + a - 1) // a * a


def full_snapshot(h: goalloc.Heap):
    """Everything the heap shows, small-object state included.

    stats() comes first: should it ever move per-P counters again (Go's
    ReadMemStats does; test_stats_does_not_touch_caches in
    test_py_small_badinput.py checks goalloc's does not), that would not
    be blamed on the call under test.
    """
    stats = h.stats()
    spans = h.spans()
    objs = {s.base: h.span_objects(s.base) for s in spans
            if s.state == "inuse" and s.sizeclass != 0}
    return (stats, h.hints(), h.arenas(), spans, h.centrals(), h.caches(),
            objs, h.info())


# ---- self-checks -----------------------------------------------------------


def test_table_matches_goalloc():
    rows = goalloc.size_classes()
    assert len(rows) == 67
    for c in range(1, 67):
        r = rows[c]
        assert (r.sizeclass, r.size, r.npages) == (c, *GO113_CLASSES[c])
        assert r.objects == class_nelems(c)


def test_tiny_align_rule():
    # design §4.8, spelled out for a few cases
    assert [tiny_align(3, s) for s in (1, 2, 4, 8)] == [3, 4, 4, 8]
    assert [tiny_align(9, s) for s in (3, 6, 12, 5)] == [9, 10, 12, 9]
    assert tiny_align(0, 8) == 0 and tiny_align(16, 2) == 16
