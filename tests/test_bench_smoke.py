"""The allocator benchmark suite builds and runs (a seconds-long smoke
version), so it never rots.  Nothing here is timed: the suite's numbers
are not asserted, only that every run finished and the report is there."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_suite_smoke(tmp_path):
    out = tmp_path / "smoke.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke",
         "--no-go", "--build-dir", str(tmp_path / "bench"), "--out",
         str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = out.read_text()
    assert "goalloc" in report and "glibc" in report
    if any((ROOT / "goalloc").glob("_gomalloc*.so")):
        # the malloc-contract column: the glibc driver under LD_PRELOAD
        assert "goalloc-malloc" in report.split("### Peak RSS")[0]
        assert "malloc contract (goalloc-malloc)" in report
    # goalloc runs every workload, the cross-thread frees of 6b/6c too
    times = report.split("### Peak RSS")[0]
    rows = [line for line in times.splitlines()
            if line.startswith(("| 6b.", "| 6c."))]
    assert len(rows) >= 3
    for row in rows:
        goalloc_cell = row.split("|")[2]
        assert "n/a" not in goalloc_cell and "[" in goalloc_cell, row
    # GC mode (design §14) runs workloads 1-5 with GOGC=100 and off, and
    # no threaded workload (design §14.8)
    header = next(line for line in times.splitlines()
                  if line.startswith("| workload |"))
    cols = [c.strip() for c in header.split("|")]
    gc, off = cols.index("goalloc-gc"), cols.index("goalloc-gc-off")
    for line in times.splitlines():
        if not line.startswith("| ") or line.startswith("| workload"):
            continue
        cells = [c.strip() for c in line.split("|")]
        single = line.startswith(("| 1.", "| 2.", "| 3.", "| 4.", "| 5."))
        for i in (gc, off):
            if single:
                assert "[" in cells[i], line
            else:
                assert cells[i] == "–", line


def test_python_bench_smoke():
    """benchmarks/bench_python.py, per call and bulk (with the pure C
    figures of bench_fastpath --bulk when make can build it), on a few
    thousand objects."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_python.py"),
         "--n", "3000", "--rounds", "5"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout
    assert "h.free(h.alloc(16))" in out
    assert out.count("| alloc_many |") == 4 and out.count("| free_many |") == 4
    assert "Target (issue 5)" in out
