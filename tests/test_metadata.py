"""The heap's metadata runs out: nothing breaks (issue 11, item 4).

A heap's arena metadata lives in process memory on either backing: per
arena a heapArena with its page -> span map and page bitmaps (66 KiB per
64 MiB arena on linux/amd64) and, once, the arena index's L2 map.  A
growth whose metadata cannot be had raises OutOfMemoryError and leaves
the heap exactly as it was (design §10.2): when the process is out of
memory (fault injection with fail_metadata, or a real RLIMIT_AS in a child
process), and, up front, when the metadata would pass metadata_limit
(default: half the machine's RAM), before the machine swaps.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import goalloc
from helpers import ARENA, state

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PER_ARENA = 8192 * 8 + 2 * 1024   # span map + two page bitmaps (amd64)
L2_MAP = (1 << 22) * 8            # the arena index's L2 map (amd64)


def first_growth(h: goalloc.Heap) -> None:
    h.alloc(40_000)


# name: (before, op, how many metadata allocations at least can fail)
OPS = {
    "first large": (None, lambda h: h.alloc(100_000), 3),
    "first small": (None, lambda h: h.alloc(48), 4),
    "first tiny": (None, lambda h: h.alloc(5, noscan=True), 4),
    "small after a growth": (first_growth, lambda h: h.alloc(48), 1),
    "three more arenas": (first_growth, lambda h: h.alloc(3 * ARENA + 1),
                          1),
}


@pytest.mark.parametrize("op", sorted(OPS))
def test_each_metadata_allocation_fails_cleanly(backing, release, op):
    """The n-th metadata allocation of the op fails, for every n the op
    reaches: OutOfMemoryError naming the reason, the heap unchanged and
    sound, and the op works once the fault is gone."""
    before_fn, fn, least = OPS[op]
    failures = 0
    for n in range(1, 60):
        with goalloc.Heap(backing=backing, release=release,
                          metadata_limit=0) as h:
            if before_fn is not None:
                before_fn(h)
            before = state(h)
            h.fail_metadata(n)
            try:
                fn(h)
            except goalloc.OutOfMemoryError as e:
                failures += 1
                assert "out of process memory" in str(e), str(e)
                assert state(h) == before
                h.verify()
                h.fail_metadata(0)
                fn(h)
                h.verify()
                continue
            h.verify()
            break
    else:
        pytest.fail("the op kept failing")
    assert failures >= least


def test_alloc_many_keeps_what_it_allocated(backing):
    """alloc_many out of metadata part way: OutOfMemoryError with .index
    and .addresses (documented: those stay allocated), the failing size
    changed nothing, and the heap is sound."""
    with goalloc.Heap(backing=backing, metadata_limit=0) as h:
        first_growth(h)
        h.fail_metadata(1)                 # the 48-byte span's bitmaps
        with pytest.raises(goalloc.OutOfMemoryError) as ei:
            h.alloc_many([40_000, 48, 3 * ARENA])
        e = ei.value
        assert e.index == 1 and len(e.addresses) == 1
        assert "out of process memory for span bitmaps" in str(e)
        h.verify()
        h.free_many(e.addresses)
        h.fail_metadata(0)
        assert len(h.alloc_many([40_000, 48, 3 * ARENA])) == 3
        h.verify()


def test_fail_metadata_arguments(heap):
    before = state(heap)
    with pytest.raises(TypeError):
        heap.fail_metadata("1")
    with pytest.raises(ValueError):
        heap.fail_metadata(-1)
    with pytest.raises(ValueError):
        heap.fail_metadata(2**64)
    assert state(heap) == before
    heap.fail_metadata(0)                  # disarmed: nothing fails
    heap.alloc(3 * ARENA)
    heap.verify()


def test_metadata_bytes_and_limit(backing):
    with goalloc.Heap(backing=backing,
                      metadata_limit=L2_MAP + 2 * PER_ARENA + 1024) as h:
        info = h.info()
        assert (info.metadata_bytes, info.metadata_limit) == (
            0, L2_MAP + 2 * PER_ARENA + 1024)
        h.alloc(100_000)
        one = h.info().metadata_bytes
        assert L2_MAP + PER_ARENA <= one < L2_MAP + PER_ARENA + 256
        before = state(h)
        with pytest.raises(goalloc.OutOfMemoryError,
                           match="past metadata_limit"):
            h.alloc(2 * ARENA)            # three arenas' worth: refused
        assert state(h) == before
        h.alloc(ARENA)                    # two fit
        assert h.info().metadata_bytes == L2_MAP + 2 * (one - L2_MAP)
        h.verify()


def test_default_metadata_limit_is_half_the_ram():
    ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    with goalloc.Heap(backing="virtual") as h:
        assert h.info().metadata_limit == ram // 2
    with goalloc.Heap(backing="virtual", metadata_limit=0) as h:
        assert h.info().metadata_limit == 0


@pytest.mark.parametrize("bad,exc", [(-1, ValueError), (2**64, ValueError),
                                     ("1", TypeError), (1.5, TypeError)])
def test_bad_metadata_limit(bad, exc):
    with pytest.raises(exc, match="metadata_limit"):
        goalloc.Heap(metadata_limit=bad)


def test_a_terabyte_heap_is_refused_up_front(backing):
    """16 TiB of virtual heap would need 17 GB of metadata: with a limit
    below that the growth is refused before anything is made."""
    with goalloc.Heap(backing=backing, metadata_limit=1 << 30) as h:
        p = h.alloc(100_000)
        before = state(h)
        with pytest.raises(goalloc.OutOfMemoryError,
                           match=r"cannot allocate 17592186044417-byte "
                                 r"block: .*metadata_limit"):
            h.alloc(2**44 + 1)
        assert state(h) == before
        h.free(p)
        h.verify()


CHILD = textwrap.dedent("""
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))
    sys.path.insert(0, WORKTREE)
    import goalloc
    out = []
    for backing in ("virtual", "os"):
        for release in ("go1.13.8", "go1.13.0"):
            for limit in (0, None):
                h = goalloc.Heap(backing=backing, release=release,
                                 metadata_limit=limit)
                p = h.alloc(100_000)
                before = (h.digest(), h.stats(), h.info(), h.spans())
                try:
                    h.alloc(2**44 + 1)
                    err = None
                except Exception as e:
                    err = [type(e).__name__, str(e)]
                same = before == (h.digest(), h.stats(), h.info(), h.spans())
                h.verify()
                q = h.alloc(3 << 30)      # still grows, inside the limit
                h.free(q)
                h.free(p)
                h.verify()
                h.close()
                out.append([backing, release, limit, err, same])
    print(json.dumps(out))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="RLIMIT_AS as Linux applies it")
def test_rlimit_as_child_process():
    """The issue's case: Heap(backing="virtual").alloc(2**44 + 1) under a
    4 GiB address-space limit raised HeapCorruptionError and killed the
    heap.  In a child python with RLIMIT_AS 4 GiB: OutOfMemoryError, the
    heap unchanged and still growing; with metadata_limit=0 it is the
    process allocator (or, on the os backing, the kernel) that refuses."""
    code = CHILD.replace("AS_LIMIT", str(4 << 30)).replace("WORKTREE",
                                                           repr(ROOT))
    # without the sanitizer run's LD_PRELOAD: ASan's runtime cannot map
    # its shadow memory under a 4 GiB RLIMIT_AS, and the child imports the
    # source tree's (plain) build anyway
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(rows) == 8
    for backing, release, limit, err, same in rows:
        assert err is not None and err[0] == "OutOfMemoryError", (
            backing, release, limit, err)
        assert "cannot allocate 17592186044417-byte block" in err[1]
        assert same, (backing, release, limit)
        if backing == "virtual":
            want = ("out of process memory for arena metadata"
                    if limit == 0 else "metadata_limit")
            assert want in err[1], err
