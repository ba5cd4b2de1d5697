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
    # goalloc runs every workload, the cross-thread frees of 6b/6c too
    times = report.split("### Peak RSS")[0]
    rows = [line for line in times.splitlines()
            if line.startswith(("| 6b.", "| 6c."))]
    assert len(rows) >= 3
    for row in rows:
        goalloc_cell = row.split("|")[2]
        assert "n/a" not in goalloc_cell and "[" in goalloc_cell, row
