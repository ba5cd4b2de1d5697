"""The generated size-class table is up to date and is Go 1.13's.

Runs tools/mksizeclasses.py (no goalloc import) and pins its rows to the
table of Go 1.13's src/runtime/sizeclasses.go (design §3.3), as printed
below.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "tools" / "mksizeclasses.py"
PAGE_SIZE = 8192

FIELDS = (
    "class",
    "size",
    "span_bytes",
    "objects",
    "tail_waste",
    "max_waste",
    "div_shift",
    "div_shift2",
    "div_mul",
    "base_mask",
)

# Go 1.13 sizeclasses.go: class, bytes/obj, bytes/span, objects,
# tail waste, max waste, then class_to_divmagic (divShift, divShift2,
# divMul, baseMask).
GO113_TABLE = [
    ( 1,     8,  8192, 1024,   0, "87.50%",  3,  0,   1, 65528),
    ( 2,    16,  8192,  512,   0, "43.75%",  4,  0,   1, 65520),
    ( 3,    32,  8192,  256,   0, "46.88%",  5,  0,   1, 65504),
    ( 4,    48,  8192,  170,  32, "31.52%",  4, 11, 683,     0),
    ( 5,    64,  8192,  128,   0, "23.44%",  6,  0,   1, 65472),
    ( 6,    80,  8192,  102,  32, "19.07%",  4, 10, 205,     0),
    ( 7,    96,  8192,   85,  32, "15.95%",  5,  9, 171,     0),
    ( 8,   112,  8192,   73,  16, "13.56%",  4, 11, 293,     0),
    ( 9,   128,  8192,   64,   0, "11.72%",  7,  0,   1, 65408),
    (10,   144,  8192,   56, 128, "11.82%",  4, 13, 911,     0),
    (11,   160,  8192,   51,  32, "9.73%",  5, 10, 205,     0),
    (12,   176,  8192,   46,  96, "9.59%",  4, 12, 373,     0),
    (13,   192,  8192,   42, 128, "9.25%",  6,  9, 171,     0),
    (14,   208,  8192,   39,  80, "8.12%",  4, 13, 631,     0),
    (15,   224,  8192,   36, 128, "8.15%",  5, 11, 293,     0),
    (16,   240,  8192,   34,  32, "6.62%",  4, 13, 547,     0),
    (17,   256,  8192,   32,   0, "5.86%",  8,  0,   1, 65280),
    (18,   288,  8192,   28, 128, "12.16%",  5,  9,  57,     0),
    (19,   320,  8192,   25, 192, "11.80%",  6,  9, 103,     0),
    (20,   352,  8192,   23,  96, "9.88%",  5, 12, 373,     0),
    (21,   384,  8192,   21, 128, "9.51%",  7,  7,  43,     0),
    (22,   416,  8192,   19, 288, "10.71%",  5, 10,  79,     0),
    (23,   448,  8192,   18, 128, "8.37%",  6, 10, 147,     0),
    (24,   480,  8192,   17,  32, "6.82%",  5, 11, 137,     0),
    (25,   512,  8192,   16,   0, "6.05%",  9,  0,   1, 65024),
    (26,   576,  8192,   14, 128, "12.33%",  6,  9,  57,     0),
    (27,   640,  8192,   12, 512, "15.48%",  7,  9, 103,     0),
    (28,   704,  8192,   11, 448, "13.93%",  6, 11, 187,     0),
    (29,   768,  8192,   10, 512, "13.94%",  8,  7,  43,     0),
    (30,   896,  8192,    9, 128, "15.52%",  7,  8,  37,     0),
    (31,  1024,  8192,    8,   0, "12.40%", 10,  0,   1, 64512),
    (32,  1152,  8192,    7, 128, "12.41%",  7,  9,  57,     0),
    (33,  1280,  8192,    6, 512, "15.55%",  8,  6,  13,     0),
    (34,  1408, 16384,   11, 896, "14.00%",  7, 11, 187,     0),
    (35,  1536,  8192,    5, 512, "14.00%",  9,  5,  11,     0),
    (36,  1792, 16384,    9, 256, "15.57%",  8,  8,  37,     0),
    (37,  2048,  8192,    4,   0, "12.45%", 11,  0,   1, 63488),
    (38,  2304, 16384,    7, 256, "12.46%",  8,  9,  57,     0),
    (39,  2688,  8192,    3, 128, "15.59%",  7, 10,  49,     0),
    (40,  3072, 24576,    8,   0, "12.47%", 10,  5,  11,     0),
    (41,  3200, 16384,    5, 384, "6.22%",  7, 10,  41,     0),
    (42,  3456, 24576,    7, 384, "8.83%",  7,  9,  19,     0),
    (43,  4096,  8192,    2,   0, "15.60%", 12,  0,   1, 61440),
    (44,  4864, 24576,    5, 256, "16.65%",  8,  9,  27,     0),
    (45,  5376, 16384,    3, 256, "10.92%",  8, 10,  49,     0),
    (46,  6144, 24576,    4,   0, "12.48%", 11,  5,  11,     0),
    (47,  6528, 32768,    5, 128, "6.23%",  7, 13, 161,     0),
    (48,  6784, 40960,    6, 256, "4.36%",  7, 13, 155,     0),
    (49,  6912, 49152,    7, 768, "3.37%",  8,  9,  19,     0),
    (50,  8192,  8192,    1,   0, "15.61%", 13,  0,   1, 57344),
    (51,  9472, 57344,    6, 512, "14.28%",  8, 12, 111,     0),
    (52,  9728, 49152,    5, 512, "3.64%",  9,  9,  27,     0),
    (53, 10240, 40960,    4,   0, "4.99%", 11,  6,  13,     0),
    (54, 10880, 32768,    3, 128, "6.24%",  7, 14, 193,     0),
    (55, 12288, 24576,    2,   0, "11.45%", 12,  3,   3,     0),
    (56, 13568, 40960,    3, 256, "9.99%",  8, 13, 155,     0),
    (57, 14336, 57344,    4,   0, "5.35%", 11,  8,  37,     0),
    (58, 16384, 16384,    1,   0, "12.49%", 14,  0,   1, 49152),
    (59, 18432, 73728,    4,   0, "11.11%", 11,  8,  29,     0),
    (60, 19072, 57344,    3, 128, "3.57%",  7, 13,  55,     0),
    (61, 20480, 40960,    2,   0, "6.87%", 12,  5,   7,     0),
    (62, 21760, 65536,    3, 256, "6.25%",  8, 14, 193,     0),
    (63, 24576, 24576,    1,   0, "11.45%", 13,  3,   3,     0),
    (64, 27264, 81920,    3, 128, "10.00%",  7, 14,  77,     0),
    (65, 28672, 57344,    2,   0, "4.91%", 12,  7,  19,     0),
    (66, 32768, 32768,    1,   0, "12.50%", 15,  0,   1, 32768),
]


def run_generator(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GENERATOR), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def load_generator(monkeypatch):
    """Import tools/mksizeclasses.py for this test only."""
    spec = importlib.util.spec_from_file_location("mksizeclasses", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # for dataclasses
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def json_rows() -> list[dict]:
    result = run_generator("--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_committed_file_is_up_to_date():
    result = run_generator("--check")
    assert result.returncode == 0, result.stderr


def test_stdout_matches_committed_file():
    result = run_generator("--stdout")
    assert result.returncode == 0, result.stderr
    committed = (ROOT / "csrc" / "sizeclasses.c").read_text()
    assert result.stdout == committed


def test_check_reports_a_stale_file(tmp_path, monkeypatch, capsys):
    gen = load_generator(monkeypatch)
    stale = tmp_path / "sizeclasses.c"
    text = gen.render_c(gen.make_classes())
    stale.write_text(text.replace("27264", "27392"))
    monkeypatch.setattr(gen, "OUTPUT", stale)
    assert gen.main(["--check"]) == 1
    assert "27392" in capsys.readouterr().err
    stale.write_text(text)
    assert gen.main(["--check"]) == 0


def test_table_has_66_real_classes(json_rows):
    assert len(GO113_TABLE) == 66
    assert [r["class"] for r in json_rows] == list(range(1, 67))
    assert json_rows[0]["size"] == 8
    assert json_rows[-1]["size"] == 32768


def as_go_row(row: dict) -> tuple:
    """A --json row in the shape of GO113_TABLE."""
    return (
        row["class"],
        row["size"],
        row["npages"] * PAGE_SIZE,
        row["objects"],
        row["tail_waste"],
        f"{row['max_waste'] * 100:.2f}%",
        row["div_shift"],
        row["div_shift2"],
        row["div_mul"],
        row["base_mask"],
    )


@pytest.mark.parametrize("want", GO113_TABLE, ids=lambda r: f"class{r[0]}")
def test_row_matches_go113(json_rows, want):
    got = as_go_row(json_rows[want[0] - 1])
    mismatched = {
        name: (g, w)
        for name, g, w in zip(FIELDS, got, want, strict=True) if g != w
    }
    assert not mismatched, f"class {want[0]}: (got, want) {mismatched}"


def test_rows_are_self_consistent(json_rows):
    for row in json_rows:
        span = row["npages"] * PAGE_SIZE
        assert row["objects"] == span // row["size"]
        assert row["tail_waste"] == span - row["objects"] * row["size"]
        assert row["tail_waste"] <= span // 8
        assert 0 < row["max_waste"] < 1
