#!/usr/bin/env python3
"""goalloc's malloc against Go's mallocgc on allocation-only loops (issue 11).

Each run is a fresh process that allocates N objects of one case, keeps
every one live and reports ns per allocation and the RSS it grew per object
(the object's own bytes plus whatever metadata came with it):

  goalloc  build/bench/bench_fastpath --keep SIZE NOSCAN N   (GOGC=off goal)
  go       benchmarks/go/keep/main.go SIZE NOSCAN N          (GC off)

Rounds are interleaved: round r runs every case on every side before round
r+1, and the order of the sides alternates from round to round.  A figure
is the median over rounds with [min-max]; "goalloc / go" is the median of
the per-round ratios.  The Go side is built with the `go` command given by
--go (default: `go` on PATH; GOPATH mode, standard library only) and is
left out with --no-go or when there is no such command.  --driver runs
another bench_fastpath binary (e.g. one built from an older commit).

  python3 benchmarks/bench_keep.py [--rounds 7] [--go /path/to/go]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (label, size, noscan, objects per run)
CASES = [
    ("8 B noscan (tiny)", 8, 1, 4_000_000),
    ("16 B noscan", 16, 1, 4_000_000),
    ("16 B pointerful", 16, 0, 4_000_000),
    ("128 B pointerful", 128, 0, 1_000_000),
    ("1 KiB pointerful", 1024, 0, 200_000),
    ("32 KiB pointerful", 32768, 0, 8_000),
    ("100 KB pointerful", 100000, 0, 2_000),
]


def build_driver() -> Path:
    subprocess.run(["make", "-s", "build/bench/bench_fastpath"], cwd=ROOT,
                   check=True)
    return ROOT / "build" / "bench" / "bench_fastpath"


def build_go(go: str, outdir: Path) -> tuple[Path, str]:
    env = dict(os.environ, GO111MODULE="off", GOTOOLCHAIN="local",
               GOPROXY="off", GOFLAGS="", CGO_ENABLED="0")
    env.pop("GOROOT", None)
    version = subprocess.run([go, "version"], capture_output=True, text=True,
                             env=env, check=True).stdout.strip()
    src = outdir / "keep.go"   # outside any GOPATH: built as one file
    shutil.copy(ROOT / "benchmarks" / "go" / "keep" / "main.go", src)
    out = outdir / "keep"
    subprocess.run([go, "build", "-o", str(out), str(src)], cwd=outdir,
                   env=env, check=True)
    return out, version


def run_one(cmd: list[str]) -> tuple[float, float]:
    env = dict(os.environ, GOGC="off")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env,
                         timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"{cmd} failed: {out.stderr}")
    word, ns, rss = out.stdout.split()
    assert word == "keep", out.stdout
    return float(ns), float(rss)


def fmt(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} [{min(xs):.2f}–{max(xs):.2f}]"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--go", default="go", help="the go command")
    ap.add_argument("--no-go", action="store_true")
    ap.add_argument("--driver", type=Path, help="bench_fastpath to run")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply every case's object count")
    ap.add_argument("--cases", default="",
                    help="comma-separated case numbers (1-based)")
    args = ap.parse_args()
    cases = CASES
    if args.cases:
        cases = [CASES[int(i) - 1] for i in args.cases.split(",")]
    driver = args.driver or build_driver()
    sides = {"goalloc": lambda s, ns, n: [str(driver), "--keep", str(s),
                                         str(ns), str(n)]}
    tmp = tempfile.TemporaryDirectory()
    go_version = None
    if not args.no_go and shutil.which(args.go):
        gobin, go_version = build_go(args.go, Path(tmp.name))
        sides["go"] = lambda s, ns, n: [str(gobin), str(s), str(ns), str(n)]
    res = {(c[0], side): [] for c in cases for side in sides}
    names = list(sides)
    for r in range(args.rounds):
        order = names if r % 2 == 0 else names[::-1]
        for label, size, noscan, n in cases:
            n = max(1, int(n * args.scale))
            for side in order:
                res[label, side].append(run_one(sides[side](size, noscan, n)))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    print(f"goalloc: {driver}" + (f"; go: {go_version}" if go_version else
                                  "; go: not run"))
    print(f"{args.rounds} interleaved rounds, one process per run; "
          "median [min–max]\n")
    head = "| case | goalloc ns/alloc |"
    rule = "|---|---|"
    if "go" in sides:
        head += " go ns/alloc | goalloc / go |"
        rule += "---|---|"
    head += " RSS B/object goalloc |" + (" go |" if "go" in sides else "")
    rule += "---|" + ("---|" if "go" in sides else "")
    print(head)
    print(rule)
    for label, _, _, _ in cases:
        ga = res[label, "goalloc"]
        row = f"| {label} | {fmt([t for t, _ in ga])} |"
        if "go" in sides:
            go = res[label, "go"]
            ratios = [a[0] / b[0] for a, b in zip(ga, go)]
            row += (f" {fmt([t for t, _ in go])} |"
                    f" {statistics.median(ratios):.2f}×"
                    f" [{min(ratios):.2f}–{max(ratios):.2f}] |")
        row += f" {statistics.median(m for _, m in ga):.1f} |"
        if "go" in sides:
            row += f" {statistics.median(m for _, m in res[label, 'go']):.1f} |"
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
