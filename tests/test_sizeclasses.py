"""goalloc.size_classes() / size_to_class() against the generator.

The reference is tools/mksizeclasses.py --json, run as a separate
process (it does not import goalloc), plus the lookup rule of design §3.3:
the class of n is the smallest class whose size is >= n.
"""
from __future__ import annotations

import bisect
import json
import subprocess
import sys
from pathlib import Path

import pytest

import goalloc
from helpers import GO113_CLASSES, class_nelems

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def generated() -> list[dict]:
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "mksizeclasses.py"), "--json"],
        check=True, capture_output=True, text=True).stdout
    rows = json.loads(out)
    assert [r["class"] for r in rows] == list(range(1, 67))
    return rows


def test_table_shape():
    rows = goalloc.size_classes()
    assert len(rows) == 67 == goalloc.NUM_SIZE_CLASSES
    assert all(isinstance(r, goalloc.SizeClass) for r in rows)
    assert [r.sizeclass for r in rows] == list(range(67))
    assert rows[0] == goalloc.SizeClass(0, 0, 0, 0, 0, 0.0, 0, 0, 0, 0)
    assert rows[-1].size == 32768 == goalloc.MAX_SMALL_SIZE
    assert goalloc.NUM_SPAN_CLASSES == 134
    assert goalloc.PAGE_SIZE == 8192 and goalloc.TINY_SIZE == 16


def test_table_equals_generator(generated):
    rows = goalloc.size_classes()[1:]
    for r, g in zip(rows, generated, strict=True):
        assert (r.sizeclass, r.size, r.npages, r.objects, r.tail_waste,
                r.div_shift, r.div_shift2, r.div_mul, r.base_mask) == (
            g["class"], g["size"], g["npages"], g["objects"],
            g["tail_waste"], g["div_shift"], g["div_shift2"], g["div_mul"],
            g["base_mask"]), r.sizeclass
        assert r.max_waste == g["max_waste"], r.sizeclass


def test_table_static_invariants():
    # design §3.3
    rows = goalloc.size_classes()[1:]
    sizes = [r.size for r in rows]
    assert sizes == sorted(set(sizes))
    for r in rows:
        span = r.npages * 8192
        assert r.objects == span // r.size
        assert r.tail_waste == span - r.objects * r.size
        assert r.tail_waste <= span / 8
        assert r.size % 8 == 0
        if r.size >= 16:
            assert r.size % 16 == 0
        if r.size >= 1024:
            assert r.size % 128 == 0
        assert 1 <= r.npages <= 10


def test_size_to_class_every_small_size(generated):
    sizes = [g["size"] for g in generated]   # classes 1..66
    got = [goalloc.size_to_class(n) for n in range(1, 32769)]
    want = [bisect.bisect_left(sizes, n) + 1 for n in range(1, 32769)]
    assert got == want
    # spot checks from design §3.3
    assert goalloc.size_to_class(1) == 1
    assert goalloc.size_to_class(8) == 1
    assert goalloc.size_to_class(9) == 2
    assert goalloc.size_to_class(1016) == 31
    assert goalloc.size_to_class(1017) == 31
    assert goalloc.size_to_class(1024) == 31
    assert goalloc.size_to_class(1025) == 32
    assert goalloc.size_to_class(32768) == 66


def test_size_to_class_zero_and_large():
    assert goalloc.size_to_class(0) == 0
    assert goalloc.size_to_class(32769) == 0
    assert goalloc.size_to_class(10**9) == 0
    assert goalloc.size_to_class(2**64 - 1) == 0


def test_size_to_class_bad_input():
    with pytest.raises(TypeError):
        goalloc.size_to_class("1")
    with pytest.raises(TypeError):
        goalloc.size_to_class(1.0)
    with pytest.raises(ValueError):
        goalloc.size_to_class(-1)
    with pytest.raises(ValueError):
        goalloc.size_to_class(2**64)


# ---- the table in tests/helpers.py, from Go's rules (design §3.3) --------


def test_table_matches_goalloc():
    rows = goalloc.size_classes()
    assert len(rows) == 67
    for c in range(1, 67):
        r = rows[c]
        assert (r.sizeclass, r.size, r.npages) == (c, *GO113_CLASSES[c])
        assert r.objects == class_nelems(c)
