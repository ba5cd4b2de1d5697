"""Fixtures: a fresh heap per test, on both address-space backends."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import goalloc  # noqa: E402
from helpers import heap_is_poisoned  # noqa: E402
from misuse import BACKINGS, World, World1P  # noqa: E402


@pytest.fixture(params=("virtual", "os"))
def backing(request) -> str:
    """Both backends (design §5.6): the same test runs on each."""
    return request.param


@pytest.fixture
def heap(backing):
    """A fresh linux/amd64 heap; verified and closed after the test.

    A test may close the heap itself or poison it on purpose (_throw,
    race-mode collisions); only a live, healthy heap is verified.
    """
    h = goalloc.Heap(backing=backing)
    try:
        yield h
        if not h.closed and not heap_is_poisoned(h):
            h.verify()
    finally:
        h.close()


@pytest.fixture(params=("go1.13.8", "go1.13.0"))
def release(request) -> str:
    """Both page heaps goalloc models (design §5.8): the
    default go1.13.8 and go1.13.0."""
    return request.param


@pytest.fixture
def rheap(backing, release):
    """The heap fixture of the given release (verified and closed after
    the test likewise)."""
    h = goalloc.Heap(backing=backing, release=release)
    try:
        yield h
        if not h.closed and not heap_is_poisoned(h):
            h.verify()
    finally:
        h.close()


@pytest.fixture
def grown(heap):
    """The heap fixture with one live large object; (heap, its address)."""
    return heap, heap.alloc(100_000)


@pytest.fixture(params=[(b, r) for b in BACKINGS
                        for r in ("go1.13.8", "go1.13.0")],
                ids=lambda p: "-".join(p))
def world(request):
    """misuse.World: a heap in a realistic state on three Ps, on both
    backings and both releases; closed after the test."""
    backing, release = request.param
    w = World(backing, release=release)
    try:
        yield w
    finally:
        w.close()


@pytest.fixture
def world1p(rheap):
    """misuse.World1P on the rheap fixture (verified and closed after the
    test)."""
    return World1P(rheap)
