"""tools/check_layers.py fails on what it is there to catch.

Each test copies csrc/ (and the tool's view of the repository) into a
temporary directory, breaks one rule there, and runs the tool on the
copy: a call cycle between two files, a header include cycle, a C file
over 600 lines, an allowed cycle whose file header does not say so, and
an allowed cycle that is gone.  The tree as it is passes.  Needs gcc and
nm (binutils), as the tool does.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "check_layers.py"

pytestmark = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("nm") is None,
    reason="check_layers.py needs gcc and nm")


def run(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), "--root", str(root),
                           "--release-only", *args],
                          capture_output=True, text=True)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "csrc", tmp_path / "csrc",
                    ignore=shutil.ignore_patterns("*.o", "*.so"))
    return tmp_path


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_the_tree_passes(tree):
    r = run(tree)
    assert r.returncode == 0, r.stderr
    assert "mheap.c <-> csrc/scavenge.c" in r.stdout


def test_a_call_cycle_fails(tree):
    # fixalloc.c (the bottom) calls mheap.c's mheap_can_grow, and mheap.c
    # calls fixalloc.c: a cycle the allow-list does not know
    append(tree / "csrc" / "fixalloc.c", """
struct mheap;
_Bool mheap_can_grow(struct mheap *h, uint64_t npages);
_Bool fixalloc_calls_up(struct mheap *h);
_Bool
fixalloc_calls_up(struct mheap *h)
{
    return mheap_can_grow(h, 1);
}
""")
    r = run(tree)
    assert r.returncode == 1
    assert "calls: cycle" in r.stderr
    assert "csrc/fixalloc.c" in r.stderr and "csrc/mheap.c" in r.stderr


def test_a_header_cycle_fails(tree):
    ga = tree / "csrc" / "ga.h"
    ga.write_text(ga.read_text().replace(
        "#include <stdint.h>", '#include <stdint.h>\n#include "mspan.h"', 1))
    r = run(tree)
    assert r.returncode == 1
    assert "includes: cycle csrc/ga.h <-> csrc/mspan.h" in r.stderr


def test_a_long_file_fails(tree):
    append(tree / "csrc" / "mspan.c", "\n" * 601)
    r = run(tree)
    assert r.returncode == 1
    assert "csrc/mspan.c:" in r.stderr and "more than 600" in r.stderr


def test_an_allowed_cycle_must_be_said_in_the_headers(tree):
    scav = tree / "csrc" / "scavenge.c"
    scav.write_text(scav.read_text().replace("check_layers", "the tool"))
    r = run(tree)
    assert r.returncode == 1
    assert "csrc/scavenge.c: its header does not say" in r.stderr


def test_an_allowed_cycle_that_is_gone_fails(tree):
    # scavenge.c stops calling mheap.c: the cycle is gone, and the tool
    # asks for the allow-list entry to go too
    scav = tree / "csrc" / "scavenge.c"
    text = scav.read_text().replace("mheap_coalesce(h, s);",
                                    "(void)0; /* no coalesce */")
    assert text != scav.read_text()
    scav.write_text(text)
    r = run(tree)
    assert r.returncode == 1
    assert "is no cycle any more" in r.stderr
