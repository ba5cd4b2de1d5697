"""Fixtures: a fresh heap per test, on both address-space backends."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import goalloc  # noqa: E402
from helpers import heap_is_poisoned  # noqa: E402


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
