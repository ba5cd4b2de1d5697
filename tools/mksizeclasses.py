#!/usr/bin/env python3
"""Generate csrc/sizeclasses.c, the Go 1.13 size-class tables.

This is our own port of the rule that Go 1.13's
src/runtime/mksizeclasses.go uses to build src/runtime/sizeclasses.go.

The rule
--------
1. Candidate sizes run from 8 to 32768 (MAX_SMALL_SIZE) in steps of an
   alignment that starts at 8.  Each time the size reaches a power of
   two the alignment grows: from 2048 on it is 256, from 128 on it is
   size/8, from 16 on it is 16.  (Go 1.15 changed "16" to "32" here,
   which is what adds the 24-byte class; this generator is Go 1.13.)
2. Each candidate gets the smallest span of whole 8 KiB pages whose
   tail (span bytes mod size) is at most 1/8 of the span.
3. A candidate whose page count and objects per span both equal those
   of the previous class replaces that class's size (the larger size
   costs nothing); otherwise it starts a new class.
4. Each class then grows to the largest multiple of 128 bytes that
   still fits the same number of objects in its span (8448 -> 9472).
5. There must be 67 classes counting class 0, the "large object" class.
6. Division magic, so that offset / size needs no divide for every
   offset 0..span bytes: shift = trailing zero bits of the size,
   d = size >> shift, and shift2 is the smallest k for which
   mul = ceil(2**k / d) gives ((off >> shift) * mul) >> k == off // size
   for all those offsets; mul must stay below 2**16 and
   mul * (max offset >> shift) below 2**32.  Power-of-two sizes get
   shift2 = 0, mul = 1 and base_mask = 65536 - size (as a uint16).
7. size_to_class8[i] is the smallest class whose size is >= i*8 and
   size_to_class128[i] the smallest whose size is >= 1024 + i*128.

The "max waste" column is Go's: every object one byte larger than the
previous class, plus the tail, as a fraction of the span.

Usage
-----
    tools/mksizeclasses.py            write csrc/sizeclasses.c
    tools/mksizeclasses.py --stdout   print it instead
    tools/mksizeclasses.py --check    exit 1 if the committed file differs
    tools/mksizeclasses.py --json     print the table as JSON rows
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import itertools
import json
import sys
from pathlib import Path

PAGE_SIZE = 8192
MAX_SMALL_SIZE = 32768
SMALL_SIZE_DIV = 8
SMALL_SIZE_MAX = 1024
LARGE_SIZE_DIV = 128
NUM_SIZE_CLASSES = 67  # including class 0

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "csrc" / "sizeclasses.c"


@dataclasses.dataclass(frozen=True)
class DivMagic:
    """One class_to_divmagic entry (see csrc/sizeclasses.h)."""

    shift: int = 0
    shift2: int = 0
    mul: int = 0
    base_mask: int = 0


@dataclasses.dataclass
class SizeClass:
    """A size class: object size in bytes and span length in pages."""

    size: int
    npages: int

    @property
    def span_bytes(self) -> int:
        return self.npages * PAGE_SIZE

    @property
    def objects(self) -> int:
        return self.span_bytes // self.size

    @property
    def tail_waste(self) -> int:
        return self.span_bytes - self.objects * self.size


# ---- The table ---------------------------------------------------------


def is_pow2(x: int) -> bool:
    return x > 0 and x & (x - 1) == 0


def candidate_sizes():
    """Yield the candidate sizes 8..32768 of rule step 1."""
    align = 8
    size = align
    while size <= MAX_SMALL_SIZE:
        if is_pow2(size):
            if size >= 2048:
                align = 256
            elif size >= 128:
                align = size // 8
            elif size >= 16:
                align = 16
        assert is_pow2(align), "incorrect alignment"
        yield size
        size += align


def span_pages(size: int) -> int:
    """Smallest page count whose tail for size is at most 1/8 of it."""
    span = PAGE_SIZE
    while span % size > span // 8:
        span += PAGE_SIZE
    return span // PAGE_SIZE


def grow_to_128(c: SizeClass) -> None:
    """Rule step 4: the largest 128-multiple size with the same count."""
    bigger = (c.span_bytes // c.objects) & ~(LARGE_SIZE_DIV - 1)
    if bigger > c.size:
        c.size = bigger


def make_classes() -> list[SizeClass]:
    """The real size classes 1..66, in order (index 0 is class 1)."""
    classes: list[SizeClass] = []
    for size in candidate_sizes():
        c = SizeClass(size, span_pages(size))
        prev = classes[-1] if classes else None
        same_span = prev is not None and prev.npages == c.npages
        if same_span and prev.objects == c.objects:
            prev.size = size
        else:
            classes.append(c)
    for c in classes:
        grow_to_128(c)
    if len(classes) + 1 != NUM_SIZE_CLASSES:
        raise SystemExit(f"number of size classes changed: {len(classes)}")
    return classes


# ---- Division magic ----------------------------------------------------


def trailing_zeros(x: int) -> int:
    return (x & -x).bit_length() - 1


def div_magic(c: SizeClass) -> DivMagic:
    """Rule step 6 for class c.

    Why testing q = off >> shift suffices: off // size equals
    (off >> shift) // d, and q takes every value 0..max_off >> shift as
    off runs over 0..max_off, so checking all q checks all offsets.
    """
    shift = trailing_zeros(c.size)
    d = c.size >> shift
    max_q = c.span_bytes >> shift
    base_mask = 0
    if is_pow2(c.size):
        if c.span_bytes >= 1 << 16:
            raise SystemExit(f"span too big for power-of-two size {c.size}")
        base_mask = (1 << 16) - c.size
    for shift2 in itertools.count():
        mul = -(-(1 << shift2) // d)  # ceil(2**shift2 / d)
        if all((q * mul) >> shift2 == q // d for q in range(max_q + 1)):
            break
    if mul >= 1 << 16 or mul * max_q >= 1 << 32:
        raise SystemExit(f"magic multiplier too large for size {c.size}")
    return DivMagic(shift, shift2, mul, base_mask)


# ---- Size -> class lookup ----------------------------------------------


def smallest_class(classes: list[SizeClass], size: int) -> int:
    """The smallest class number whose size is >= size (0 for size 0)."""
    if size == 0:
        return 0
    return next(i for i, c in enumerate(classes, 1) if c.size >= size)


def size_to_class8(classes: list[SizeClass]) -> list[int]:
    n = SMALL_SIZE_MAX // SMALL_SIZE_DIV + 1
    return [smallest_class(classes, i * SMALL_SIZE_DIV) for i in range(n)]


def size_to_class128(classes: list[SizeClass]) -> list[int]:
    n = (MAX_SMALL_SIZE - SMALL_SIZE_MAX) // LARGE_SIZE_DIV + 1
    return [
        smallest_class(classes, SMALL_SIZE_MAX + i * LARGE_SIZE_DIV)
        for i in range(n)
    ]


# ---- Rows (the "header comment" of Go's sizeclasses.go) ----------------


def rows(classes: list[SizeClass]) -> list[dict]:
    """One dict per real class, as printed by --json."""
    out = []
    prev_size = 0
    for number, c in enumerate(classes, 1):
        waste = (c.size - prev_size - 1) * c.objects + c.tail_waste
        m = div_magic(c)
        out.append(
            {
                "class": number,
                "size": c.size,
                "npages": c.npages,
                "objects": c.objects,
                "tail_waste": c.tail_waste,
                "max_waste": waste / c.span_bytes,
                "div_shift": m.shift,
                "div_shift2": m.shift2,
                "div_mul": m.mul,
                "base_mask": m.base_mask,
            }
        )
        prev_size = c.size
    return out


# ---- C output ----------------------------------------------------------

HEADER = """\
/* Size-class tables.  See malloc.c for the overview.
 *
 * GENERATED by tools/mksizeclasses.py from the Go 1.13 rule; DO NOT EDIT.
 * Regenerate with `python3 tools/mksizeclasses.py`.
 * Go 1.13: src/runtime/sizeclasses.go (made by mksizeclasses.go).
 * Differs from Go: nothing; the values are Go 1.13's.
 * Locking: read-only tables.
 */
#include "sizeclasses.h"
"""


def comment_table(table: list[dict]) -> str:
    lines = [
        "/* class  bytes/obj  bytes/span  objects  tail waste  max waste",
    ]
    for r in table:
        lines.append(
            f" * {r['class']:5d}  {r['size']:9d}  "
            f"{r['npages'] * PAGE_SIZE:10d}  {r['objects']:7d}  "
            f"{r['tail_waste']:10d}  {r['max_waste'] * 100:8.2f}%"
        )
    lines.append(" */")
    return "\n".join(lines) + "\n"


def c_array(decl: str, values: list[int], width: int, per_line: int) -> str:
    """A C array definition, per_line values a line, each line led by
    the index of its first value."""
    lines = [f"{decl} = {{"]
    for i in range(0, len(values), per_line):
        cells = " ".join(f"{v:>{width}d}," for v in values[i : i + per_line])
        lines.append(f"    /* {i:3d} */ {cells}")
    lines.append("};")
    return "\n".join(lines) + "\n"


def c_divmagic(magics: list[DivMagic]) -> str:
    lines = [
        "/* {shift, shift2, mul, base_mask} per class. */",
        "const div_magic class_to_divmagic[NUM_SIZE_CLASSES] = {",
    ]
    for number, m in enumerate(magics):
        cell = f"{{{m.shift}, {m.shift2}, {m.mul}, {m.base_mask}}},"
        lines.append(f"    {cell:<22}/* {number:2d} */")
    lines.append("};")
    return "\n".join(lines) + "\n"


def render_c(classes: list[SizeClass]) -> str:
    """The complete text of csrc/sizeclasses.c."""
    table = rows(classes)
    sizes = [0] + [c.size for c in classes]
    pages = [0] + [c.npages for c in classes]
    magics = [DivMagic()] + [div_magic(c) for c in classes]
    parts = [
        HEADER,
        "/* clang-format off */",
        comment_table(table),
        c_array(
            "const uint16_t class_to_size[NUM_SIZE_CLASSES]", sizes, 5, 8
        ),
        c_array(
            "const uint8_t class_to_allocnpages[NUM_SIZE_CLASSES]",
            pages,
            2,
            16,
        ),
        c_divmagic(magics),
        "/* size_to_class8[i]: smallest class with size >= i*8. */",
        c_array(
            "const uint8_t size_to_class8[SIZE_TO_CLASS8_LEN]",
            size_to_class8(classes),
            2,
            16,
        ),
        "/* size_to_class128[i]: smallest class with size >= 1024 + i*128. */",
        c_array(
            "const uint8_t size_to_class128[SIZE_TO_CLASS128_LEN]",
            size_to_class128(classes),
            2,
            16,
        ),
        "/* clang-format on */\n",
    ]
    return "\n".join(parts)


# ---- Command line ------------------------------------------------------


def check(text: str) -> int:
    """Compare text with the committed file; 0 if equal, else 1."""
    try:
        old = OUTPUT.read_text()
    except FileNotFoundError:
        sys.stderr.write(f"{OUTPUT} is missing; run tools/mksizeclasses.py\n")
        return 1
    if old == text:
        return 0
    diff = difflib.unified_diff(
        old.splitlines(keepends=True),
        text.splitlines(keepends=True),
        fromfile=f"{OUTPUT} (committed)",
        tofile=f"{OUTPUT} (generated)",
    )
    sys.stderr.write(f"{OUTPUT} is out of date; run tools/mksizeclasses.py\n")
    sys.stderr.writelines(diff)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check",
        action="store_true",
        help="exit 1 (with a diff) if csrc/sizeclasses.c is out of date",
    )
    mode.add_argument(
        "--stdout", action="store_true", help="write the C file to stdout"
    )
    mode.add_argument(
        "--json",
        action="store_true",
        help="print the table as a JSON list of rows",
    )
    args = parser.parse_args(argv)

    classes = make_classes()
    if args.json:
        json.dump(rows(classes), sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    text = render_c(classes)
    if args.check:
        return check(text)
    if args.stdout:
        sys.stdout.write(text)
        return 0
    OUTPUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
