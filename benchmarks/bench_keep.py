#!/usr/bin/env python3
"""goalloc's malloc against Go's mallocgc on allocation-only loops (issue 11).

Each run is a fresh process that allocates N objects of one case, keeps
every one live and reports ns per allocation (CPU time of the process,
user + system, which time spent descheduled on a loaded machine does not
inflate; --clock wall for wall time) and the RSS it grew per object (the
object's own bytes plus whatever metadata came with it):

  goalloc  build/bench/bench_fastpath --keep SIZE NOSCAN N   (GOGC=off goal)
  go       benchmarks/go/keep/main.go SIZE NOSCAN N          (GC off)

Rounds are interleaved: round r runs every case on every side before round
r+1, and the order of the sides alternates from round to round.  A figure
is the median over rounds with [min-max]; "goalloc / go" is the median of
the per-round ratios.  The Go side is built with the `go` command given by
--go (default: `go` on PATH; GOPATH mode, standard library only) and is
left out with --no-go or when there is no such command.  --driver
NAME=PATH adds another bench_fastpath binary as a column of its own (e.g.
one built from an older commit), interleaved with the others.

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


CLOCK = "cpu"


def keep_cmd(driver: Path):
    return lambda size, noscan, n: [str(driver), "--keep", str(size),
                                    str(noscan), str(n)]


def run_one(cmd: list[str]) -> tuple[float, float]:
    env = dict(os.environ, GOGC="off")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env,
                         timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"{cmd} failed: {out.stderr}")
    word, wall, rss, cpu = out.stdout.split()
    assert word == "keep", out.stdout
    return float(cpu if CLOCK == "cpu" else wall), float(rss)


def fmt(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} [{min(xs):.2f}–{max(xs):.2f}]"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--go", default="go", help="the go command")
    ap.add_argument("--no-go", action="store_true")
    ap.add_argument("--driver", action="append", default=[],
                    metavar="NAME=PATH",
                    help="another bench_fastpath binary, as column NAME")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply every case's object count")
    ap.add_argument("--cases", default="",
                    help="comma-separated case numbers (1-based)")
    args = ap.parse_args()
    cases = CASES
    if args.cases:
        cases = [CASES[int(i) - 1] for i in args.cases.split(",")]
    global CLOCK
    CLOCK = args.clock
    driver = build_driver()
    sides = {"goalloc": keep_cmd(driver)}
    for d in args.driver:
        name, _, path = d.partition("=")
        sides[name] = keep_cmd(Path(path))
    tmp = tempfile.TemporaryDirectory()
    go_version = None
    if not args.no_go and shutil.which(args.go):
        gobin, go_version = build_go(args.go, Path(tmp.name))
        sides["go"] = lambda s, ns, n: [str(gobin), str(s), str(ns), str(n)]
    res = {(c[0], side): [] for c in cases for side in sides}
    names = list(sides)
    for r in range(args.rounds):
        k = r % len(names)
        order = names[k:] + names[:k]
        for label, size, noscan, n in cases:
            n = max(1, int(n * args.scale))
            for side in order:
                res[label, side].append(run_one(sides[side](size, noscan, n)))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    print(f"goalloc: {driver}" + "".join(f"; {d}" for d in args.driver) +
          (f"; go: {go_version}" if go_version else "; go: not run"))
    print(f"{args.rounds} interleaved rounds, one process per run; "
          f"{args.clock} ns per allocation, median [min–max]; ratios: "
          "median of the per-round ratios to go\n")
    head, rule = "| case |", "|---|"
    for side in names:
        head += f" {side} ns |" + (f" {side} / go |" if side != "go" and
                                   "go" in sides else "")
        rule += "---|" + ("---|" if side != "go" and "go" in sides else "")
    head += "".join(f" RSS B/obj {side} |" for side in names)
    rule += "---|" * len(names)
    print(head)
    print(rule)
    for label, _, _, _ in cases:
        row = f"| {label} |"
        for side in names:
            runs = res[label, side]
            row += f" {fmt([t for t, _ in runs])} |"
            if side != "go" and "go" in sides:
                go = res[label, "go"]
                ratios = [a[0] / b[0]
                          for a, b in zip(runs, go, strict=False)]
                row += (f" {statistics.median(ratios):.2f}×"
                        f" [{min(ratios):.2f}–{max(ratios):.2f}] |")
        for side in names:
            mem = statistics.median(m for _, m in res[label, side])
            row += f" {mem:.1f} |"
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
