#!/usr/bin/env python3
"""Write the seed corpus of tests/fuzz/fuzz_heap.c into tests/fuzz/corpus.

Each seed is a heap header and a few dozen operations in the harness's
encoding (docs/fuzzing.md); together they reach every operation on both
backings.  The output is deterministic: rerunning rewrites the same files.

    python3 tests/fuzz/mkcorpus.py [outdir]
"""
import os
import random
import struct
import sys

# opcodes: the harness takes the op byte modulo NUM_OPS (17)
TINY, SMALL, CLASS, LARGE, ZERO, HUGE, BAD_P = range(7)
FREE_LIVE, FREE_SEEN, FREE_INNER, FREE_OTHER, FREE_ZEROBASE = range(7, 12)
SCAVENGE, FLUSH, FAIL_RESERVES, BLOCK_RANGE, CHECK = range(12, 17)
# GC mode only (there the op byte is taken modulo 21, and the free ops
# drop)
GC, FREE_OS_MEMORY, SET_GC_PERCENT, GC_FREE = range(17, 21)

# GC mode's background_sweep choices (b0 bits 6-7) and GOGC choices
# (b2 bits 4-6)
BG_EAGER, BG_0, BG_1, BG_4 = range(4)
GOGC_100, GOGC_50, GOGC_200, GOGC_0, GOGC_OFF, GOGC_10, GOGC_25 = range(7)

# platform indices (b1 % 16; 12..15 mean linux/amd64)
LINUX_AMD64, LINUX_AMD64_RACE, LINUX_386, LINUX_ARM64 = 0, 1, 2, 3
DARWIN_ARM64, AIX_PPC64, WINDOWS_AMD64, LINUX_MIPS = 4, 5, 6, 7

# sys_limit choice (b2 & 3): unlimited, 64 MiB, 512 MiB, 2 GiB
UNLIMITED, LIMIT_64M, LIMIT_512M, LIMIT_2G = range(4)


def header(os_backing=False, procs=1, platform=LINUX_AMD64, limit=LIMIT_512M,
           goal=0, seed=0, go1130=False, gc=False, bg=BG_EAGER,
           gogc=GOGC_100):
    """go1130: b0 bit 4, release go1.13.0 (else the default go1.13.8);
    gc: b0 bit 5, collector=gc with background_sweep bg (b0 bits 6-7) and
    GOGC gogc (b2 bits 4-6)."""
    b0 = (3 if os_backing else 0) | ((procs - 1) << 2) | (0x10 if go1130
                                                          else 0)
    b2 = limit | (goal << 2)
    if gc:
        b0 |= 0x20 | (bg << 6)
        b2 |= gogc << 4
    return bytes([b0, platform, b2, seed])


def u16(v):
    return struct.pack("<H", v & 0xFFFF)


def u24(v):
    return struct.pack("<I", v & 0xFFFFFF)[:3]


def tiny(size, p=0):
    return bytes([TINY, (size - 1) % 15, p])


def small(size, noscan=False, p=0):
    return bytes([SMALL]) + u16(size - 1) + bytes([(p << 1) | noscan])


def klass(c, delta=0, noscan=False, p=0):
    return bytes([CLASS, c - 1, ((delta + 1) << 6) | (p << 1) | noscan])


def large(extra, noscan=False, p=0, pages=False):
    """32 KiB + 1 + extra bytes (rounded to whole pages if pages)."""
    return bytes([LARGE]) + u24(extra) + bytes(
        [(0x80 if pages else 0) | (p << 1) | noscan])


def zero(p=0):
    return bytes([ZERO, p << 1])


def huge(kind, arg=b"", noscan=False):
    return bytes([HUGE, kind]) + arg + bytes([noscan])


def bad_p(b, size=100):
    return bytes([BAD_P, b]) + u16(size)


def free_live(i):
    return bytes([FREE_LIVE]) + u16(i)


def free_seen(i):
    return bytes([FREE_SEEN]) + u16(i)


def free_inner(i, off):
    return bytes([FREE_INNER]) + u16(i) + u24(off)


def free_other(kind, arg=b""):
    return bytes([FREE_OTHER, kind]) + arg


def scavenge(kind, arg=b""):
    return bytes([SCAVENGE, kind]) + arg


def block(which, arenas, lenb, arg=b""):
    return bytes([BLOCK_RANGE, which, arenas & 0xFF, lenb]) + arg


FREE_ZB = bytes([FREE_ZEROBASE])
FLUSH_ = bytes([FLUSH])
CHECK_ = bytes([CHECK])


def mix(rng, n, procs, large_max=200000):
    """A random mix of allocations and frees (the bulk of most seeds)."""
    out = b""
    for _ in range(n):
        r = rng.random()
        p = rng.randrange(procs)
        if r < 0.2:
            out += tiny(rng.randint(1, 15), p)
        elif r < 0.4:
            out += small(rng.randint(1, 32768), rng.random() < 0.5, p)
        elif r < 0.5:
            out += klass(rng.randint(1, 66), rng.randint(-1, 1),
                         rng.random() < 0.5, p)
        elif r < 0.55:
            out += large(rng.randrange(large_max), rng.random() < 0.5, p,
                         rng.random() < 0.3)
        elif r < 0.85:
            out += free_live(rng.randrange(65536))
        elif r < 0.92:
            out += free_seen(rng.randrange(65536))
        else:
            out += CHECK_
    return out


def gc_mix(rng, n, procs, large_max=200000):
    """A random mix for a GC-mode heap: allocations, drops (the free
    ops), refused drops and frees, and collector calls."""
    out = b""
    for _ in range(n):
        r = rng.random()
        p = rng.randrange(procs)
        if r < 0.2:
            out += tiny(rng.randint(1, 15), p)
        elif r < 0.4:
            out += small(rng.randint(1, 32768), rng.random() < 0.5, p)
        elif r < 0.5:
            out += klass(rng.randint(1, 66), rng.randint(-1, 1),
                         rng.random() < 0.5, p)
        elif r < 0.56:
            out += large(rng.randrange(large_max), rng.random() < 0.5, p,
                         rng.random() < 0.3)
        elif r < 0.8:
            out += free_live(rng.randrange(65536))
        elif r < 0.85:
            out += free_seen(rng.randrange(65536))
        elif r < 0.87:
            out += free_inner(rng.randrange(65536), rng.randrange(1 << 24))
        elif r < 0.92:
            out += bytes([GC])
        elif r < 0.93:
            out += bytes([FREE_OS_MEMORY])
        elif r < 0.95:
            out += bytes([SET_GC_PERCENT, rng.randrange(256)])
        elif r < 0.97:
            out += bytes([GC_FREE]) + u16(rng.randrange(65536))
        else:
            out += CHECK_
    return out


def gc_seeds(rng):
    """Seeds of GC-mode heaps: every background_sweep choice, GOGC
    settings, both backings."""
    s = {}
    s["gc_virtual_mix"] = (header(procs=2, gc=True) + gc_mix(rng, 150, 2) +
                           CHECK_)
    s["gc_virtual_lazy"] = (header(procs=1, gc=True, bg=BG_0) +
                            gc_mix(rng, 150, 1, 2000000) + CHECK_)
    s["gc_virtual_bg1_gogc50"] = (header(procs=3, gc=True, bg=BG_1,
                                         gogc=GOGC_50, seed=3) +
                                  gc_mix(rng, 150, 3, 1000000))
    s["gc_virtual_bg4_gogc0"] = (header(procs=2, gc=True, bg=BG_4,
                                        gogc=GOGC_0, limit=LIMIT_64M) +
                                 gc_mix(rng, 150, 2, 1000000))
    s["gc_os_mix"] = (header(os_backing=True, procs=2, gc=True, bg=BG_0) +
                      gc_mix(rng, 150, 2, 60000) +
                      bytes([FREE_OS_MEMORY]) + CHECK_)
    s["gc_linux_386"] = (header(platform=LINUX_386, procs=2, gc=True,
                                bg=BG_1, gogc=GOGC_25) +
                         gc_mix(rng, 120, 2, 4000000))
    s["gc_go1130"] = (header(procs=2, gc=True, bg=BG_0, go1130=True,
                             gogc=GOGC_10) + gc_mix(rng, 120, 2, 1000000))
    # tiny blocks: the current block survives a cycle; a block dies with
    # its last object; drops twice, interior drops
    t = header(procs=1, gc=True, bg=BG_0)
    for i in range(30):
        t += tiny(1 + i % 15)
    for i in range(0, 30, 2):
        t += free_live(i) + free_seen(i) + free_inner(i, 1)
    t += bytes([GC]) + CHECK_ + free_seen(3) + bytes([GC])
    for _ in range(20):
        t += free_live(0)
    s["gc_tiny"] = t + bytes([GC]) + free_seen(0) + free_seen(5) + CHECK_
    # large objects: dropped, collected, their pages reused; drops after
    t = header(procs=1, gc=True, bg=BG_0, limit=LIMIT_64M)
    for i in range(12):
        t += large(i * 300000, pages=i % 2 == 1)
    for i in range(0, 12, 2):
        t += free_live(i)
    t += bytes([GC])
    for i in range(6):
        t += free_seen(i) + large(i * 250000) + free_seen(i + 6)
    s["gc_large_reuse"] = t + bytes([FREE_OS_MEMORY]) + CHECK_
    # GOGC off, then on; the heap grows past where a cycle would start
    t = header(procs=2, gc=True, bg=BG_0, gogc=GOGC_OFF, limit=UNLIMITED)
    for i in range(30):
        t += large(5000000 + i, p=i % 2) + klass(10 + i % 40, p=i % 2)
    t += bytes([SET_GC_PERCENT, 0]) + small(100) + large(100)
    t += bytes([SET_GC_PERCENT, 0x80 | 0x7F]) + bytes([SET_GC_PERCENT, 3])
    s["gc_gogc_off_on"] = t + gc_mix(rng, 60, 2, 3000000) + CHECK_
    # refused calls: free, drops of the zerobase, of foreign and interior
    # addresses, of dropped and collected objects
    t = header(procs=1, gc=True) + small(64) + large(5000) + tiny(3)
    t += bytes([GC_FREE]) + u16(0) + bytes([GC_FREE]) + u16(2)
    t += FREE_ZB + zero() + free_other(0, struct.pack("<Q", 0xDEADBEEF000))
    t += free_other(4, u16(1) + u16(8)) + free_inner(1, 8192)
    t += free_live(0) + free_seen(0) + bytes([GC]) + free_seen(0)
    t += bytes([GC_FREE]) + u16(0) + bytes([FLUSH]) + bytes([SCAVENGE, 2])
    s["gc_refused"] = t + CHECK_
    return s


def seeds():
    rng = random.Random(6)
    s = {}
    s["virtual_mix"] = header(procs=2) + mix(rng, 120, 2) + CHECK_
    s["virtual_mix_4p"] = (header(procs=4, limit=UNLIMITED, seed=1) +
                           mix(rng, 150, 4) + FLUSH_ + mix(rng, 50, 4))
    s["os_mix"] = header(os_backing=True, procs=2) + mix(rng, 120, 2, 60000)
    s["os_mix_4p_scavenge"] = (header(os_backing=True, procs=4,
                                      limit=UNLIMITED, goal=1) +
                               mix(rng, 80, 4, 60000) + scavenge(2) +
                               mix(rng, 60, 4, 60000) + scavenge(1, u16(50)) +
                               FLUSH_ + CHECK_)
    # tiny objects: packing, frees, double frees, interior addresses
    t = header(procs=1)
    for i in range(40):
        t += tiny(1 + i % 15)
    for i in range(0, 40, 3):
        t += free_live(i) + free_seen(i) + free_inner(i, i)
    s["virtual_tiny"] = t + FLUSH_ + CHECK_
    s["os_tiny"] = header(os_backing=True, procs=3) + t[4:]
    # large objects: free, double free, reuse of the same address
    t = header(procs=1, limit=LIMIT_64M)
    for i in range(10):
        t += large(i * 40000, pages=i % 2 == 1)
    for i in range(10):
        t += free_live(0) + free_seen(i)
    for i in range(10):
        t += large(i * 40000) + free_seen(i) + free_seen(i)
    s["virtual_large_reuse"] = t + scavenge(2) + CHECK_
    # small objects freed and handed out again: the known limit
    t = header(procs=2, limit=LIMIT_64M)
    for i in range(30):
        t += klass(5 + i % 3)
    for _ in range(30):
        t += free_live(0)
    t += FLUSH_
    for i in range(30):
        t += klass(5 + i % 3) + free_seen(i)
    s["virtual_small_reuse"] = t + CHECK_
    # sizes beyond maxAlloc and sys_limit, bad Ps, zero-byte objects
    t = header(procs=2, limit=LIMIT_64M)
    t += huge(0, u16(0)) + huge(1, b"\x00") + huge(2) + huge(3, u16(7))
    t += huge(4, b"\x10") + huge(5, struct.pack("<Q", 1 << 62))
    t += huge(6, u16(100)) + huge(6, u16(3))
    t += bad_p(0) + bad_p(1) + bad_p(2 * 5) + bad_p(0xFF, 40000)
    t += zero() + zero(1) + FREE_ZB + free_live(0) + small(100) + FREE_ZB
    s["virtual_huge_badp_zero"] = t + CHECK_
    s["os_huge_badp_zero"] = header(os_backing=True, procs=2,
                                    limit=LIMIT_64M) + t[4:]
    # foreign, random, near-arena and near-hint addresses
    t = header(procs=1) + small(64) + large(5000) + tiny(3)
    t += free_other(0, struct.pack("<Q", 0xDEADBEEF000))
    t += free_other(1 | (0 << 3), u16(8) + u16(0))
    t += free_other(2, b"\x08") + free_other(3, u16(3))
    t += free_other(4, u16(1) + u16(8)) + free_other(4, u16(0) + u16(0xFFF8))
    t += free_other(5) + free_inner(1, 8192) + free_inner(0, 63)
    s["virtual_foreign"] = t + CHECK_
    s["os_foreign"] = header(os_backing=True) + t[4:]
    # fault injection: refused reservations and blocked ranges
    t = header(procs=2, limit=UNLIMITED)
    t += bytes([FAIL_RESERVES, 2]) + large(100000) + small(10)
    t += bytes([FAIL_RESERVES, 0xFF]) + block(0, 1, 2) + block(0, 0, 1)
    t += block(0x80, -3, 0, u16(0)) + block(1, 4, 0)
    t += large(3000000) + small(5000) + mix(rng, 30, 2)
    s["virtual_faults"] = t + CHECK_
    s["os_faults"] = header(os_backing=True) + bytes([FAIL_RESERVES, 1]) + \
        small(10)
    # other platforms
    s["linux_386"] = header(platform=LINUX_386, procs=3) + mix(rng, 100, 3)
    # a 32-bit heap without sys_limit filling most of its 4 GiB
    t = header(platform=LINUX_386, limit=UNLIMITED, procs=2)
    for mib in (1000, 1000, 1000, 500, 300):
        t += huge(6, u16(mib))
    s["linux_386_3gib"] = t + mix(rng, 60, 2, 8000000) + free_live(2) + \
        huge(6, u16(900)) + CHECK_
    s["aix_ppc64"] = header(platform=AIX_PPC64, limit=LIMIT_2G) + \
        mix(rng, 60, 1, 3000000)
    s["darwin_arm64"] = (header(platform=DARWIN_ARM64, procs=2) +
                         mix(rng, 50, 2) + huge(2) + CHECK_)
    s["linux_amd64_race"] = header(platform=LINUX_AMD64_RACE, procs=2,
                                   goal=3) + mix(rng, 60, 2) + scavenge(2)
    s["windows_amd64"] = header(platform=WINDOWS_AMD64) + mix(rng, 40, 1) + \
        bytes([SCAVENGE, 3]) + struct.pack("<I", 1 << 20)
    s["linux_mips"] = header(platform=LINUX_MIPS, procs=4) + mix(rng, 60, 4)
    # go1.13.0's page heap (whole-arena growth, scavenging on allocation)
    s["go1130_virtual_mix"] = (header(procs=2, go1130=True) +
                               mix(rng, 120, 2) + scavenge(2) + CHECK_)
    s["go1130_os_mix_scavenge"] = (header(os_backing=True, procs=2, goal=1,
                                          go1130=True) +
                                   mix(rng, 100, 2, 60000) + scavenge(2) +
                                   mix(rng, 40, 2, 60000) + CHECK_)
    t = header(procs=1, limit=LIMIT_64M, go1130=True)
    for i in range(10):
        t += large(i * 40000, pages=i % 2 == 1)
    for i in range(10):
        t += free_live(0) + free_seen(i)
    s["go1130_virtual_large_reuse"] = t + scavenge(2) + CHECK_
    s["go1130_linux_386"] = (header(platform=LINUX_386, procs=2, go1130=True)
                             + mix(rng, 80, 2, 8000000) + CHECK_)
    s.update(gc_seeds(random.Random(13)))
    return s


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(seeds().items()):
        assert len(data) <= 1024, name
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"{len(seeds())} seeds in {out}")


if __name__ == "__main__":
    main()
