"""mallocinit through Python: hint tables, platform constants, bad options.

Expected hint lists are computed here from the formulas of Go 1.13's
mallocinit (design §4.2), not copied from goalloc's output.
"""
from __future__ import annotations

import pytest

import goalloc
from helpers import (
    ARENA,
    ASAN,
    GO_HEAP_START,
    KiB,
    MiB,
    check_first_arena,
    check_stat_identities,
    default_hints,
)

# ---- Expected hint tables (design §4.2) --------------------------------


def hints_darwin_arm64() -> list[int]:
    return [(i << 40) | (0x0013 << 28) for i in range(0x80)]


def hints_arm64() -> list[int]:
    return [(i << 40) | (0x0040 << 32) for i in range(0x80)]


def hints_aix() -> list[int]:
    # i = 0 is skipped: the list starts at 1<<40 | 0xa0<<52.
    return [(i << 40) | (0xA0 << 52) for i in range(1, 0x80)]


def hints_race() -> list[int]:
    # i<<32 | 0xc0<<32, skipped when >= 0x00e000000000.  OR, not ADD:
    # i in 0x40..0x5f gives the same addresses as i in 0..0x1f.
    out = []
    for i in range(0x80):
        p = (i << 32) | (0x00C0 << 32)
        if p < 0x00E000000000:
            out.append(p)
    return out


HINT_TABLES = [
    # (goos, goarch, race, expected addresses)
    ("linux", "amd64", False, default_hints()),
    ("darwin", "arm64", False, hints_darwin_arm64()),
    ("linux", "arm64", False, hints_arm64()),
    ("android", "arm64", False, hints_arm64()),
    ("aix", "ppc64", False, hints_aix()),
    ("linux", "amd64", True, hints_race()),
    ("windows", "amd64", True, hints_race()),
    # race is checked after arm64: race on arm64 keeps the arm64 table.
    ("linux", "arm64", True, hints_arm64()),
    ("windows", "amd64", False, default_hints()),
    ("darwin", "amd64", False, default_hints()),
    ("linux", "ppc64le", False, default_hints()),
    ("linux", "s390x", False, default_hints()),
    ("linux", "mips64", False, default_hints()),
    ("freebsd", "amd64", False, default_hints()),
]


@pytest.mark.parametrize("goos,goarch,race,expected", HINT_TABLES,
                         ids=[f"{o}-{a}{'-race' if r else ''}"
                              for o, a, r, _ in HINT_TABLES])
def test_hint_table_64bit(goos, goarch, race, expected):
    with goalloc.Heap(goos=goos, goarch=goarch, race=race,
                      backing="virtual") as h:
        hints = h.hints()
        assert [x.addr for x in hints] == expected
        assert all(x.down is False for x in hints)
        assert all(isinstance(x, goalloc.ArenaHint) for x in hints)
        ab = h.info().heap_arena_bytes
        # design §11.1: every hint is a multiple of the arena size.
        assert all(x.addr % ab == 0 for x in hints)
        # nothing is reserved by mallocinit
        assert h.arenas() == []
        assert h.spans() == []


def test_hint_table_shapes():
    # The counts and the extremes, spelled out as in design §4.2.
    assert len(default_hints()) == 128
    assert default_hints()[0] == 0x0000_00C0_0000_0000
    assert default_hints()[-1] == 0x0000_7FC0_0000_0000
    assert hints_darwin_arm64()[0] == 0x0000_0001_3000_0000
    assert hints_darwin_arm64()[-1] == 0x0000_7F01_3000_0000
    assert hints_arm64()[-1] == 0x0000_7F40_0000_0000
    assert len(hints_aix()) == 127
    assert hints_aix()[0] == 0x0A00_0100_0000_0000
    assert hints_aix()[-1] == 0x0A00_7F00_0000_0000
    race = hints_race()
    assert len(race) == 64
    assert race[:32] == [a << 32 for a in range(0xC0, 0xE0)]
    assert race[32:] == race[:32]          # the duplicates
    assert len(set(race)) == 32


def test_default_linux_amd64_heap_hints_ascending(backing):
    with goalloc.Heap(backing=backing) as h:
        addrs = [x.addr for x in h.hints()]
        assert addrs == sorted(addrs)
        assert addrs == default_hints()


# 32-bit path (design §4.2).  With binary_end = 0x08200000:
#   p = round_up(0x08200000 + 256 KiB, 4 MiB)
#     = round_up(0x08240000, 0x00400000) = 0x08400000
# mallocinit then asks sysReserveAligned(p, 512 MiB, 4 MiB), which
# reserves 512 MiB + 4 MiB at p.  The simulated address space grants it
# exactly at p; p is already 4 MiB aligned, so Go keeps all of it
# (size + align = 516 MiB, design §4.3), mheap_.arena = [p, p + 516 MiB)
# and the single up-hint goes to its end:
#   0x08400000 + 0x20400000 = 0x28800000.
def expected_hint_32(binary_end: int) -> tuple[int, int]:
    arena = 4 * MiB
    p = -(-(binary_end + 256 * KiB) // arena) * arena
    return p, p + 512 * MiB + arena


@pytest.mark.parametrize("goarch", ["386", "arm", "mips", "mipsle"])
def test_hint_32bit_single_up_hint(goarch):
    p, hint = expected_hint_32(0x08200000)
    assert (p, hint) == (0x08400000, 0x28800000)
    with goalloc.Heap(goos="linux", goarch=goarch, backing="virtual",
                      binary_end=0x08200000) as h:
        assert h.hints() == [goalloc.ArenaHint(hint, False)]
        assert h.arenas() == []
        # The first arena comes from the pre-reserved region at p, not
        # from the hint, which stays where it is.
        a = h.alloc(100_000)
        assert a == p
        assert [x.base for x in h.arenas()] == [p]
        assert h.hints() == [goalloc.ArenaHint(hint, False)]
        assert h.stats().heap_sys == 4 * MiB
        h.verify()


def test_hint_32bit_other_binary_end():
    p, hint = expected_hint_32(0x10000000)
    assert (p, hint) == (0x10400000, 0x30800000)
    with goalloc.Heap(goos="linux", goarch="386", backing="virtual",
                      binary_end=0x10000000) as h:
        assert h.hints() == [goalloc.ArenaHint(hint, False)]


def test_32bit_defaults_binary_end_to_0x08200000():
    with goalloc.Heap(goos="linux", goarch="arm", backing="virtual") as h:
        assert h.hints() == [goalloc.ArenaHint(0x28800000, False)]


# ---- info(): platform constants (design §3.2) ---------------------------

INFO_TABLE = [
    # goos, goarch, arena bytes, l1 bits, l2 bits, base offset, max_alloc,
    # ptr size
    ("linux", "amd64", 64 * MiB, 0, 22, 1 << 47, 1 << 48, 8),
    ("linux", "arm64", 64 * MiB, 0, 22, 0, 1 << 48, 8),
    ("darwin", "arm64", 64 * MiB, 0, 22, 0, 1 << 48, 8),
    ("windows", "amd64", 4 * MiB, 6, 48 - 22 - 6, 1 << 47, 1 << 48, 8),
    ("aix", "ppc64", 256 * MiB, 12, 60 - 28 - 12, 0, 1 << 60, 8),
    ("linux", "386", 4 * MiB, 0, 32 - 22, 0, 2**32 - 1, 4),
    ("linux", "arm", 4 * MiB, 0, 32 - 22, 0, 2**32 - 1, 4),
    # mips and mipsle: heapAddrBits 31, so maxAlloc 2^31 - 1 (malloc.go)
    ("linux", "mips", 4 * MiB, 0, 31 - 22, 0, 2**31 - 1, 4),
    ("linux", "mipsle", 4 * MiB, 0, 31 - 22, 0, 2**31 - 1, 4),
    # mips64, mips64le, ppc64, s390x are 64-bit: heapAddrBits 48
    ("linux", "mips64", 64 * MiB, 0, 22, 0, 1 << 48, 8),
    ("linux", "mips64le", 64 * MiB, 0, 22, 0, 1 << 48, 8),
    ("linux", "ppc64le", 64 * MiB, 0, 22, 0, 1 << 48, 8),
    ("linux", "s390x", 64 * MiB, 0, 22, 0, 1 << 48, 8),
    ("freebsd", "arm", 4 * MiB, 0, 32 - 22, 0, 2**32 - 1, 4),
    ("windows", "386", 4 * MiB, 0, 32 - 22, 0, 2**32 - 1, 4),
]


@pytest.mark.parametrize("goos,goarch,ab,l1,l2,off,maxalloc,ptr", INFO_TABLE,
                         ids=[f"{r[0]}-{r[1]}" for r in INFO_TABLE])
def test_info_platform_constants(goos, goarch, ab, l1, l2, off, maxalloc,
                                 ptr):
    with goalloc.Heap(goos=goos, goarch=goarch, backing="virtual") as h:
        i = h.info()
        assert i.goos == goos and i.goarch == goarch
        assert i.heap_arena_bytes == ab
        assert i.arena_l1_bits == l1
        assert i.arena_l2_bits == l2
        assert i.arena_base_offset == off
        assert i.max_alloc == maxalloc
        assert i.ptr_size == ptr
        assert i.page_size == 8192
        assert i.phys_page_size == 4096
        assert i.backing == "virtual"
        assert i.race is False


def test_info_linux_amd64_defaults(backing):
    with goalloc.Heap(backing=backing) as h:
        i = h.info()
        assert (i.goos, i.goarch, i.race, i.backing) == (
            "linux", "amd64", False, backing)
        assert i.procs == 1
        assert i.heap_arena_bytes == ARENA
        assert (i.arena_l1_bits, i.arena_l2_bits) == (0, 22)
        assert i.arena_base_offset == 2**47
        assert i.max_alloc == 2**48
        # the default release, and its scavenger goal before the first
        # GC: go1.13.8's gcPaceScavenger sets none while last_next_gc is
        # 0, so mheap_.scavengeRetainedGoal keeps its zero value
        assert i.release == "go1.13.8"
        assert i.scavenge_goal == 0
        assert (i.cur_arena_base, i.cur_arena_end) == (0, 0)
        assert i.pages_in_use == 0
        assert i.nallspans == 0
        assert i.unscav_huge_pages == 0
        assert i.zerobase != 0


def test_info_go1_13_0_goal(backing):
    with goalloc.Heap(backing=backing, release="go1.13.0") as h:
        i = h.info()
        assert i.release == "go1.13.0"
        # Go's goal right after gcinit with GOGC=100: next_gc =
        # heapminimum (4 MiB) / (1 + 7/8) * 2, plus 10 %, rounded up to
        # the OS page (design §3.6: next_gc ~ 4,473,924).
        next_gc = int(4 * MiB / (1 + 7 / 8) * 2)
        assert next_gc == 4_473_924
        goal = -(-(next_gc + next_gc // 10) // 4096) * 4096
        assert i.scavenge_goal == goal == 4_923_392
        assert (i.cur_arena_base, i.cur_arena_end) == (0, 0)


@pytest.mark.parametrize("name,canonical", [
    (None, "go1.13.8"), ("go1.13.8", "go1.13.8"), ("go1.13.0", "go1.13.0"),
    ("go1.13", "go1.13.0"),   # Go's tag, and runtime.Version(), of 1.13.0
])
def test_release_names(name, canonical):
    with goalloc.Heap(backing="virtual", release=name) as h:
        assert h.info().release == canonical


def test_default_backing():
    # os by default for linux/amd64 on this (Linux x86-64) host ...
    with goalloc.Heap() as h:
        assert h.info().backing == "os"
    # ... and virtual for any platform this machine cannot map.
    with goalloc.Heap(goos="darwin", goarch="arm64") as h:
        assert h.info().backing == "virtual"


def test_scavenge_goal_option():
    with goalloc.Heap(backing="virtual", scavenge_goal=0) as h:
        assert h.info().scavenge_goal == 0


@pytest.mark.parametrize("gogc,goal", [
    (100, 4_923_392),             # the default: next_gc 4,473,924
    (0, 2_461_696),               # next_gc = heap_marked = 2,236,962
    (50, 3_694_592),              # next_gc 3,355,443
    (92, 4_726_784),              # trigger ratio capped at 0.874
    (114, 5_267_456),             # last GOGC whose goal beats heapminimum
    (115, 5_308_416),             # next_gc = heapminimum = 4,823,449
    (200, 9_228_288),             # next_gc = heapminimum = 8 MiB
    (1000, 46_137_344),           # next_gc = heapminimum = 40 MiB
    (2**31 - 1, 99_079_191_756_800),
    ("off", 0x199999999999A000),  # ^0 + ^0/10 wraps: about 1.6 EiB
    (-1, 0x199999999999A000),
    (-2**31, 0x199999999999A000),
])
def test_gogc_sets_go_s_scavenge_goal(gogc, goal):
    # gcinit: heap_marked = uint64(4 MiB / (1 + 7/8)) = 2,236,962 for any
    # GOGC; setGCPercent: heapminimum = 4 MiB * GOGC / 100;
    # gcSetTriggerRatio(7/8): next_gc = max(heap_marked * (1 + GOGC/100),
    # trigger), trigger being at least heapminimum; gcPaceScavenger
    # (go1.13.0): goal = next_gc * 1.1 rounded up to 4 KiB
    with goalloc.Heap(backing="virtual", gogc=gogc,
                      release="go1.13.0") as h:
        assert h.info().scavenge_goal == goal


def test_gogc_200_scavenges_later_than_the_old_formula():
    # With GOGC=200 Go's goal is 9,228,288 bytes (next_gc = heapminimum =
    # 8 MiB).  3 MiB of large objects and a freed 1 MiB hole retain 4 MiB;
    # a 2 MiB object from the released tail is counted twice by
    # scavengeIfNeededLocked (heap_released already lost it): 8 MiB, above
    # heap_marked * 3 * 1.1 (7,385,088) but not above Go's goal, so the
    # hole is not scavenged and heap_released only loses the 2 MiB taken.
    with goalloc.Heap(backing="virtual", gogc=200, release="go1.13.0") as h:
        keep = [h.alloc(1 << 20) for _ in range(3)]
        h.free(h.alloc(1 << 20))
        before = h.stats().heap_released
        keep.append(h.alloc(2 << 20))
        st = h.stats()
        assert st.heap_sys - st.heap_released == 6 << 20
        assert st.heap_released == before - (2 << 20)


@pytest.mark.parametrize("gogc", [100, 0, 200, "off", -1])
def test_gogc_before_the_first_gc_of_go1_13_8(gogc):
    # go1.13.8's gcPaceScavenger returns before setting a goal until a
    # GC has completed, whatever GOGC is; goalloc has no GC
    with goalloc.Heap(backing="virtual", gogc=gogc) as h:
        assert h.info().scavenge_goal == 0
    # an explicit scavenge_goal (goalloc's knob) applies to either release
    for release in ("go1.13.8", "go1.13.0"):
        with goalloc.Heap(backing="virtual", scavenge_goal=12345,
                          release=release) as h:
            assert h.info().scavenge_goal == 12345


def test_gogc_off_never_scavenges_on_allocation():
    # a large object freed and its pages taken again: with Go's default
    # goal the second growth of the heap scavenges the free hole; with
    # GOGC=off nothing is ever released by an allocation
    released = {}
    for gogc in (100, "off"):
        with goalloc.Heap(backing="virtual", gogc=gogc,
                          release="go1.13.0") as h:
            blocks = [h.alloc(1 << 20) for _ in range(16)]
            for b in blocks[::2]:
                h.free(b)
            before = h.stats().heap_released
            h.alloc(40 << 20)        # from the released tail of the arena
            released[gogc] = h.stats().heap_released - (before - (40 << 20))
    assert released["off"] == 0 and released[100] > 0


def test_arena_index_of_first_arena(backing):
    # arenaIndex(0xc000000000) = (p + 2^47) / 64 MiB = 0x203000 (design §3.2)
    with goalloc.Heap(backing=backing) as h:
        initial = h.hints()
        h.alloc(100_000)
        arenas = h.arenas()
        check_first_arena(backing, initial, h.hints(), arenas, ARENA)
        a = arenas[0]
        assert a.idx == (a.base + 2**47) // ARENA
        assert (a.l1, a.l2) == (0, a.idx)
        if a.base == GO_HEAP_START:
            assert a.idx == 0x203000


def test_arena_index_windows_has_l1_level():
    with goalloc.Heap(goos="windows", goarch="amd64", backing="virtual") as h:
        h.alloc(100_000)
        [a] = h.arenas()
        assert a.base == GO_HEAP_START
        idx = (GO_HEAP_START + 2**47) >> 22
        assert a.idx == idx
        assert a.l1 == idx >> 20 and a.l2 == idx & (2**20 - 1)
        # The head hint moved up by one 4 MiB arena.
        assert h.hints()[0] == goalloc.ArenaHint(GO_HEAP_START + 4 * MiB,
                                                 False)
        assert h.stats().heap_sys == 4 * MiB


def test_arena_index_aix():
    with goalloc.Heap(goos="aix", goarch="ppc64", backing="virtual") as h:
        h.alloc(100_000)
        [a] = h.arenas()
        assert a.base == hints_aix()[0]
        idx = a.base >> 28
        assert a.idx == idx
        assert a.l1 == idx >> 20 and a.l2 == idx & (2**20 - 1)
        assert h.stats().heap_sys == 256 * MiB


# ---- Rejected options ---------------------------------------------------

BAD_OPTIONS = [
    (dict(goos="plan10", goarch="amd64"), ValueError, "unknown"),
    (dict(goos="linux", goarch="sparc64"), ValueError, "unknown"),
    (dict(goos="js", goarch="wasm"), ValueError, "wasm"),
    (dict(goos="nacl", goarch="amd64p32"), ValueError, "nacl"),
    (dict(goos="linux", goarch="386", race=True), ValueError, "race"),
    (dict(goos="linux", goarch="mips64", race=True), ValueError, "race"),
    (dict(goos="darwin", goarch="arm64", backing="os"), ValueError, "os"),
    (dict(goos="linux", goarch="386", backing="os"), ValueError, "os"),
    (dict(backing="disk"), ValueError, "disk"),
    (dict(backing=1), TypeError, "backing"),
    (dict(procs=0), ValueError, "procs"),
    (dict(procs=-1), ValueError, "procs"),
    (dict(procs=1025), ValueError, "procs"),
    (dict(procs=2**70), ValueError, "procs"),
    (dict(procs="2"), TypeError, "procs"),
    (dict(procs=2.0), TypeError, "procs"),
    (dict(goos=3), TypeError, "goos"),
    (dict(goarch=b"amd64"), TypeError, "goarch"),
    (dict(sys_limit="big"), TypeError, "sys_limit"),
    (dict(sys_limit=-1), ValueError, "sys_limit"),
    (dict(scavenge_goal=-1), ValueError, "scavenge_goal"),
    (dict(binary_end=1.5), TypeError, "binary_end"),
    (dict(seed=2**64), ValueError, "seed"),
    (dict(gogc=2**31), ValueError, "gogc"),
    (dict(gogc="on"), TypeError, "gogc"),
    (dict(gogc=1.5), TypeError, "gogc"),
    (dict(gogc=100, scavenge_goal=0), TypeError, "gogc"),
    (dict(release=1), TypeError, "release"),
    (dict(release=b"go1.13.8"), TypeError, "release"),
    (dict(release="go1.14"), ValueError, "release"),
    (dict(release="go1.13.1"), ValueError, "release"),
    (dict(release="GO1.13.8"), ValueError, "release"),
    (dict(release=""), ValueError, "release"),
    (dict(release="go1.13.8\0"), ValueError, "release"),
    (dict(release="go1.13\0.8"), ValueError, "release"),
]


@pytest.mark.parametrize("kwargs,exc,word", BAD_OPTIONS,
                         ids=[repr(k) for k, _, _ in BAD_OPTIONS])
def test_bad_options(kwargs, exc, word):
    with pytest.raises(exc) as ei:
        goalloc.Heap(**kwargs)
    assert type(ei.value) is exc  # the plain built-in, not a subclass
    assert word in str(ei.value)


def test_positional_options_refused():
    with pytest.raises(TypeError):
        goalloc.Heap("linux", "amd64")
    with pytest.raises(TypeError):
        goalloc.Heap(bogus=1)


def test_procs_bounds_accepted():
    with goalloc.Heap(backing="virtual", procs=1024) as h:
        assert h.info().procs == 1024


# ---- Initial statistics -----------------------------------------------

MCACHE = 1736            # sizeof(mcache) on amd64 (design §3.4)
FIXALLOC_CHUNK = 16384   # _FixAllocChunk
PERSISTENT_CHUNK = 262144


@pytest.mark.parametrize("procs", [1, 2, 9, 10, 18, 19])
def test_initial_stats(backing, procs):
    with goalloc.Heap(backing=backing, procs=procs) as h:
        st = h.stats()
        for f in ("alloc", "total_alloc", "mallocs", "frees", "heap_alloc",
                  "heap_sys", "heap_idle", "heap_inuse", "heap_released",
                  "heap_objects", "stack_inuse", "stack_sys", "mspan_inuse",
                  "mspan_sys", "buck_hash_sys", "gc_sys", "lookups"):
            assert getattr(st, f) == 0, f
        # One mcache per P from cachealloc; 16384 // 1736 = 9 per chunk.
        assert FIXALLOC_CHUNK // MCACHE == 9
        assert st.mcache_inuse == procs * MCACHE
        assert st.mcache_sys == -(-procs // 9) * FIXALLOC_CHUNK
        # The fixalloc chunks (mcaches, arena hints) come out of one
        # 256 KiB persistentalloc chunk charged to other_sys; the mcache
        # part is moved over to mcache_sys (design §3.5).
        assert st.sys == PERSISTENT_CHUNK
        assert st.other_sys == PERSISTENT_CHUNK - st.mcache_sys
        check_stat_identities(st)
        assert len(st.by_size) == 67
        sizes = [c.size for c in goalloc.size_classes()]
        assert [b.size for b in st.by_size] == sizes
        assert all(b.mallocs == 0 and b.frees == 0 for b in st.by_size)
        assert h.info().procs == procs


# ---- Several heaps in one process ---------------------------------------


def test_several_heaps_on_os_do_not_overlap():
    h1 = goalloc.Heap(backing="os")
    h2 = goalloc.Heap(backing="os")
    try:
        init1, init2 = h1.hints(), h2.hints()
        assert init1 == init2  # each heap runs its own mallocinit
        h1.alloc(100_000)
        check_first_arena("os", init1, h1.hints(), h1.arenas(), ARENA)
        a1 = h1.arenas()[0].base
        p2 = h2.alloc(100_000)
        a2 = h2.arenas()[0].base
        assert a2 != a1
        assert a2 + ARENA <= a1 or a1 + ARENA <= a2  # no overlap
        assert p2 == a2
        # h2 walks the same hint list: h1's hint is taken, so h2 drops
        # it and lands at a later initial hint.
        addrs = [x.addr for x in init2]
        k1, k2 = addrs.index(a1), addrs.index(a2)
        assert k2 > k1
        assert h2.hints()[0] == goalloc.ArenaHint(a2 + ARENA, False)
        assert h2.hints()[1:] == init2[k2 + 1:]
        if not ASAN:
            assert a1 == GO_HEAP_START
            assert a2 == default_hints()[1] == 0x01C000000000
        h1.verify()
        h2.verify()
        # Writes through one heap do not show in the other.
        import ctypes
        p1 = h1.arenas()[0].base
        ctypes.memset(p1, 0x11, 4096)
        ctypes.memset(p2, 0x22, 4096)
        assert ctypes.string_at(p1, 4096) == b"\x11" * 4096
        assert ctypes.string_at(p2, 4096) == b"\x22" * 4096
    finally:
        h1.close()
        h2.close()


def test_several_virtual_heaps_are_independent():
    hs = [goalloc.Heap(backing="virtual") for _ in range(3)]
    try:
        for h in hs:
            assert h.alloc(100_000) == GO_HEAP_START
            h.verify()
    finally:
        for h in hs:
            h.close()


def test_closing_returns_address_space_on_os():
    # A closed heap's arenas are unmapped: the next heap gets the same
    # first arena again.
    with goalloc.Heap(backing="os") as h1:
        h1.alloc(100_000)
        a1 = h1.arenas()[0].base
    with goalloc.Heap(backing="os") as h2:
        h2.alloc(100_000)
        assert h2.arenas()[0].base == a1
