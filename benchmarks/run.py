#!/usr/bin/env python3
"""goalloc's allocator benchmark suite: the one command.

    python3 benchmarks/run.py                 # full suite, 5 rounds (~10 min)
    python3 benchmarks/run.py --smoke         # every workload, tiny, 1 round
    python3 benchmarks/run.py --out FILE.md   # also write the markdown there

It builds benchmarks/allocbench.c once per allocator with the system C
compiler (goalloc's C core; glibc malloc; mimalloc, jemalloc and tcmalloc
where their development packages are installed), and benchmarks/go/main.go
with `go build` where a Go toolchain is installed, and again with a Go 1.13
toolchain where one is (--go113, default $GOROOT113 or /work/go113).  The
goalloc-malloc column is the glibc driver, which calls plain malloc and
free, run with goalloc's malloc replacement preloaded
(goalloc/_gomalloc*.so, what `goalloc run` gives a program): goalloc under
the malloc contract, the preload's per-call work (thread to P, guard,
checks) included.  It never installs anything: it says what is missing and
the apt-get line that would add it.

goalloc has three columns: explicit free (goalloc), and GC mode (design
§14), where every "free" is a drop and Go 1.13's collector frees, with
GOGC=100 (goalloc-gc) and GOGC=off (goalloc-gc-off).  GC mode is
single-threaded (design §14.8), so the GC columns run workloads 1-5 only.
The Go columns: the installed Go with GOGC=off (go), and Go 1.13 with
GOGC=100 and off (go1.13, go1.13-off).  Under GOGC=off nothing is ever
freed, so the live-set rows stop after a 2 GiB allocation budget there.

Every (allocator, workload) runs in a process of its own, so its RSS
high-water mark is that run's peak RSS.  (The drivers read it as VmHWM from
/proc/self/status: getrusage's ru_maxrss is the same mark, but it also keeps
the parent's RSS at fork time across execve, here that of this Python.)
Rounds are interleaved: round r runs every workload on every allocator
before round r+1 starts, so slow drift of the machine hits all columns
alike.  Per figure the report gives the median
over rounds with min-max, the ratio to glibc (the median of the per-round
ratios to glibc's figure of the same round) and the peak RSS.

Exit status: 0 when every run succeeded (a workload an allocator cannot run
is reported as n/a, not an error), 1 when a build or a run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
DRIVER = BENCH / "allocbench.c"
GO_MAIN = BENCH / "go" / "main.go"

# allocator -> (macro, link flags, probe program, package that provides it)
C_ALLOCATORS = {
    "goalloc": ("ALLOC_GOALLOC", [], None, None),
    "glibc": ("ALLOC_GLIBC", [], None, None),
    "mimalloc": (
        "ALLOC_MIMALLOC",
        ["-lmimalloc"],
        "#include <mimalloc.h>\n"
        "int main(void){mi_free(mi_malloc(8));return 0;}\n",
        "libmimalloc-dev",
    ),
    "jemalloc": (
        "ALLOC_JEMALLOC",
        ["-ljemalloc"],
        (
            "#include <stddef.h>\n#include <jemalloc/jemalloc.h>\n"
            "int main(void){const char *v;size_t n=sizeof v;"
            'return mallctl("version",&v,&n,NULL,0);}\n'
        ),
        "libjemalloc-dev",
    ),
    "tcmalloc": (
        "ALLOC_TCMALLOC",
        ["-ltcmalloc_minimal"],
        (
            "#include <gperftools/tcmalloc.h>\n"
            "int main(void){tc_free(tc_malloc(8));return 0;}\n"
        ),
        "libgoogle-perftools-dev",
    ),
}
ORDER = [
    "goalloc",
    "goalloc-gc",
    "goalloc-gc-off",
    "goalloc-malloc",
    "glibc",
    "mimalloc",
    "jemalloc",
    "tcmalloc",
    "go",
    "go1.13",
    "go1.13-off",
]
# the column that is the glibc driver under LD_PRELOAD of goalloc's library
PRELOADED = "goalloc-malloc"
GO_WORKLOADS = {"pair16", "batch", "live", "livelog", "mt-pair16"}
# GC mode takes one call at a time (design §14.8): no threaded workloads
GC_WORKLOADS = {"pair16", "batch", "live", "livelog", "large"}
# column -> (the build it runs, its own driver arguments, the workloads it
# runs: None is all); the budget argument is filled in per job
VARIANTS: dict[str, tuple[str, list[str], set[str] | None]] = {
    "goalloc": ("goalloc", [], None),
    "goalloc-gc": ("goalloc", ["collector=gc", "gogc=100"], GC_WORKLOADS),
    "goalloc-gc-off": (
        "goalloc",
        ["collector=gc", "gogc=off", "budget"],
        GC_WORKLOADS,
    ),
    "go": ("go", [], GO_WORKLOADS),
    "go1.13": ("go1.13", ["-gogc=100"], GO_WORKLOADS),
    "go1.13-off": ("go1.13", ["-gogc=-1"], GO_WORKLOADS),
}
GO_COLUMNS = {"go", "go1.13", "go1.13-off"}


def runs(a: str, workload: str) -> bool:
    """Whether column a runs this workload at all (else its cell is –)."""
    only = VARIANTS.get(a, (a, [], None))[2]
    return only is None or workload in only

# The targets for goalloc, as ratios to glibc (<=) ...
TIME_TARGETS = [
    ("pair16", "16 B alloc+free pair", 0.6),
    ("batch", "random-order batch", 0.3),
    ("live", "8 B..32 KiB mixed live set", 0.3),
    ("livelog", "log-uniform live set", 0.3),
    ("large", "large blocks", 0.75),
]
# ... and goalloc as a program's malloc (issue 14's target for the column)
MALLOC_TARGETS = [("pair16", "16 B alloc+free pair, malloc contract", 0.7)]
RSS_TARGET = 1.2  # ... peak RSS <= 1.2x the better of mimalloc and tcmalloc
SCALING_TARGET = 1.7  # ... and 2 threads on 2 Ps >= 1.7x 1 thread


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---- the workloads ----------------------------------------------------


def fmt_count(n: int) -> str:
    for div, suf in ((1_000_000, "M"), (1_000, "k")):
        if n >= div and n % (div // 10) == 0:
            v = n / div
            return f"{v:g}{suf}"
    return str(n)


def plan(smoke: bool, threads: list[int], scale: float = 1.0) -> list[dict]:
    """The jobs of one round: label, workload, driver arguments."""
    if smoke:
        n = {
            "pair16": 200_000,
            "batch": 20_000,
            "live": 20_000,
            "livelog": 20_000,
            "large": 200,
            "mtpair": 200_000,
            "mtlive": 20_000,
            "prodcons": 100_000,
            "spin": 10_000_000,
        }
        live = {"live": 1_000, "large": 16, "mtlive": 200}
        budget = 64 << 20
    else:
        n = {
            "pair16": 20_000_000,
            "batch": 1_000_000,
            "live": 10_000_000,
            "livelog": 10_000_000,
            "large": 50_000,
            "mtpair": 10_000_000,
            "mtlive": 1_000_000,
            "prodcons": 5_000_000,
            "spin": 100_000_000,
        }
        live = {"live": 10_000, "large": 64, "mtlive": 1_000}
        budget = 2 << 30
    if scale != 1.0:
        n = {k: max(1, round(v * scale)) for k, v in n.items()}
    procs = max(threads)
    jobs = [
        {
            "key": "pair16",
            "workload": "pair16",
            "n": n["pair16"],
            "label": f"1. 16 B alloc+free pair ×{fmt_count(n['pair16'])}",
        },
        {
            "key": "batch",
            "workload": "batch",
            "n": n["batch"],
            "label": f"2. {fmt_count(n['batch'])} × 8..1024 B, "
            "freed in random order",
        },
        {
            "key": "live",
            "workload": "live",
            "n": n["live"],
            "live": live["live"],
            "label": f"3. live set {fmt_count(live['live'])} × 8 B..32 KiB "
            "uniform, "
            f"{fmt_count(n['live'])} replacements",
        },
        {
            "key": "livelog",
            "workload": "livelog",
            "n": n["livelog"],
            "live": live["live"],
            "label": f"4. live set {fmt_count(live['live'])} × 8 B..32 KiB "
            "log-uniform, "
            f"{fmt_count(n['livelog'])} replacements",
        },
        {
            "key": "large",
            "workload": "large",
            "n": n["large"],
            "live": live["large"],
            "label": f"5. live set {live['large']} × 64 KiB..1 MiB, "
            f"{fmt_count(n['large'])} replacements, pages written",
        },
    ]
    for t in threads:
        # the machine's own 1-vs-N-thread ceiling, next to what it bounds
        jobs.append(
            {
                "key": f"spin/{t}",
                "workload": "spin",
                "n": n["spin"],
                "threads": t,
                "procs": procs,
                "machine": True,
                "label": "spin (no allocation), "
                f"{t} thread{'s' if t > 1 else ''}",
            }
        )
    for t in threads:
        jobs.append(
            {
                "key": f"mt-pair16/{t}",
                "workload": "mt-pair16",
                "n": n["mtpair"],
                "threads": t,
                "procs": procs,
                "label": f"6a. pair16, {t} thread{'s' if t > 1 else ''} "
                f"on {procs} Ps, {fmt_count(n['mtpair'])} each",
            }
        )
    for t in threads:
        jobs.append(
            {
                "key": f"mt-live/{t}",
                "workload": "mt-live",
                "n": n["mtlive"],
                "live": live["mtlive"],
                "threads": t,
                "procs": procs,
                "label": f"6b. live set {fmt_count(live['mtlive'])} "
                "per thread, "
                f"{t} thread{'s' if t > 1 else ''}, "
                f"{fmt_count(n['mtlive'])} replacements each",
            }
        )
    jobs.append(
        {
            "key": "prodcons",
            "workload": "prodcons",
            "n": n["prodcons"],
            "label": f"6c. producer→consumer, {fmt_count(n['prodcons'])} × "
            "8..1024 B freed on the other thread",
        }
    )
    for j in jobs:
        j["budget"] = budget
    return jobs


def driver_args(job: dict) -> list[str]:
    args = [job["workload"], f"n={job['n']}"]
    for k in ("live", "threads", "procs"):
        if k in job:
            args.append(f"{k}={job[k]}")
    return args


def go_args(job: dict) -> list[str]:
    args = [f"-n={job['n']}"]
    if "live" in job:
        args.append(f"-live={job['live']}")
    if "threads" in job:
        args += [f"-threads={job['threads']}", f"-procs={job['procs']}"]
    args.append(f"-budget={job['budget']}")
    return args + [job["workload"]]


# ---- building ----------------------------------------------------------


def run_quiet(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, capture_output=True, text=True, check=False, **kw
    )


def compiler() -> str:
    cc = os.environ.get("CC") or "cc"
    if shutil.which(cc) is None:
        for alt in ("gcc", "clang"):
            if shutil.which(alt):
                return alt
        sys.exit(
            "run.py: no C compiler found (set CC, or: apt-get install -y gcc)"
        )
    return cc


def probe(cc: str, src: str, libs: list[str], tmp: Path) -> bool:
    c = tmp / "probe.c"
    c.write_text(src)
    r = run_quiet([cc, str(c), "-o", str(tmp / "probe"), *libs])
    return r.returncode == 0


def build_c(cc: str, name: str, out: Path) -> tuple[bool, str]:
    macro, libs, _, _ = C_ALLOCATORS[name]
    cmd = [
        cc,
        "-std=c11",
        "-O2",
        "-g",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-fno-builtin-malloc",
        "-fno-builtin-free",
        f"-D{macro}",
    ]
    srcs = [str(DRIVER)]
    if name == "goalloc":
        # as `make bench-c`: every csrc/*.c (the core; the binding is in
        # csrc/python/), -O2
        core = sorted(p for p in (ROOT / "csrc").glob("*.c"))
        cmd.append(f"-I{ROOT / 'csrc'}")
        srcs += [str(p) for p in core]
    cmd += [*srcs, "-o", str(out), *libs, "-lpthread", "-lm"]
    r = run_quiet(cmd)
    return r.returncode == 0, (r.stderr or "") + " ".join(cmd)


def build_go(
    tmp: Path, go: str | None, goroot: str | None = None, name: str = "go"
) -> tuple[str | None, str]:
    """Builds benchmarks/go/main.go with the toolchain go (GOROOT goroot
    when given, for a toolchain that is not the installed one)."""
    if go is None:
        return None, "go not found"
    env = dict(os.environ)
    if goroot is not None:
        env["GOROOT"] = goroot
        env["GOPATH"] = str(tmp / f"gopath-{name}")
        env["GOCACHE"] = str(tmp / f"gocache-{name}")
    env.setdefault("GOTOOLCHAIN", "local")  # never download a toolchain
    env.setdefault("GOPROXY", "off")  # standard library only
    env["GOFLAGS"] = ""
    if not (
        env.get("GOCACHE") or env.get("XDG_CACHE_HOME") or env.get("HOME")
    ):
        env["GOCACHE"] = str(tmp / "gocache")
    out = tmp / f"gobench-{name}"
    r = run_quiet(
        [go, "build", "-o", str(out), GO_MAIN.name],
        cwd=str(GO_MAIN.parent),
        env=env,
    )
    if r.returncode != 0:
        return None, r.stderr.strip()
    return str(out), ""


def preload_library() -> str | None:
    """goalloc's malloc replacement: this checkout's (built in place by
    `setup.py build_ext --inplace`), else the installed package's."""
    here = sorted((ROOT / "goalloc").glob("_gomalloc*.so"))
    if here:
        return str(here[0])
    try:
        from goalloc.preload import preload_path
    except ImportError:
        return None
    try:
        return preload_path()
    except FileNotFoundError:
        return None


def detect_and_build(
    args, tmp: Path
) -> tuple[dict[str, list[str]], list[str], bool]:
    """Returns {allocator: argv prefix}, lines about what is missing, ok."""
    cc = compiler()
    bindir = Path(args.build_dir)
    bindir.mkdir(parents=True, exist_ok=True)
    wanted = args.allocators or ORDER
    cmds: dict[str, list[str]] = {}
    missing: list[str] = []
    pkgs: list[str] = []
    ok = True
    builds = []  # each build once, in ORDER, if some wanted column runs it
    for name in ORDER:
        base = VARIANTS.get(name, (name, [], None))[0]
        # goalloc-malloc is the glibc driver, once it is built (below)
        if name in wanted and name != PRELOADED and base not in builds:
            builds.append(base)
    for name in builds:
        if name == "go":
            if args.no_go:
                continue
            if shutil.which("go") is None:
                missing.append("go: no Go toolchain (column skipped)")
                pkgs.append("golang-go")
                continue
            exe, err = build_go(tmp, shutil.which("go"))
            if exe is None:
                missing.append(
                    f"go: `go build` failed, column skipped: {err[:300]}"
                )
            else:
                cmds["go"] = [exe]
            continue
        if name == "go1.13":
            if args.no_go:
                continue
            go113 = go113_toolchain(args.go113)
            if go113 is None:
                missing.append(
                    f"go1.13: no Go 1.13 toolchain at {args.go113} "
                    "(columns skipped; --go113 GOROOT)"
                )
                continue
            exe, err = build_go(tmp, go113, args.go113, "go1.13")
            if exe is None:
                missing.append(
                    f"go1.13: `go build` failed, columns skipped: {err[:300]}"
                )
            else:
                cmds["go1.13"] = [exe]
            continue
        _, libs, src, pkg = C_ALLOCATORS[name]
        if src is not None and not probe(cc, src, libs, tmp):
            missing.append(
                f"{name}: headers or library not found (column skipped)"
            )
            pkgs.append(pkg or name)
            continue
        out = bindir / f"allocbench-{name}"
        built, err = build_c(cc, name, out)
        if not built:
            missing.append(f"{name}: build failed:\n{err}")
            ok = False
            continue
        cmds[name] = [str(out)]
    if PRELOADED in wanted and "glibc" in cmds:
        lib = preload_library()
        if lib is None:
            missing.append(
                f"{PRELOADED}: goalloc's malloc replacement is not built "
                "(python3 setup.py build_ext --inplace; column skipped)"
            )
        else:
            cmds[PRELOADED] = ["env", f"LD_PRELOAD={lib}", *cmds["glibc"]]
    if pkgs:
        missing.append(
            "to add the missing columns: sudo apt-get install -y "
            + " ".join(pkgs)
        )
    # the columns: every wanted one whose build exists
    cols = {}
    for name in ORDER:
        base, extra, _ = VARIANTS.get(name, (name, [], None))
        if name in wanted and base in cmds:
            cols[name] = cmds[base] + (
                extra if base in GO_COLUMNS else []
            )
    return cols, missing, ok


def go113_toolchain(goroot: str) -> str | None:
    """GOROOT/bin/go if it is a Go 1.13 toolchain, else None."""
    go = Path(goroot) / "bin" / "go"
    if not go.is_file():
        return None
    env = dict(os.environ, GOROOT=goroot)
    r = run_quiet([str(go), "version"], env=env)
    if r.returncode != 0 or " go1.13" not in r.stdout:
        return None
    return str(go)


# ---- running -----------------------------------------------------------


def run_one(cmd: list[str], timeout: float) -> tuple[str, Any]:
    """('ok', result) | ('na', reason) | ('fail', message)."""
    try:
        r = run_quiet(cmd, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "fail", f"timed out after {timeout:.0f} s"
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    data = None
    if lines:
        try:
            data = json.loads(lines[-1])
        except json.JSONDecodeError:
            data = None
    if r.returncode == 2 and data and "na" in data:
        return "na", data["na"]
    if r.returncode != 0 or data is None or "ns_per_op" not in data:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        return "fail", f"exit {r.returncode}: " + " | ".join(tail)
    return "ok", data


def versions(cmds: dict[str, list[str]]) -> dict[str, str]:
    out = {}
    for name, cmd in cmds.items():
        if name == PRELOADED:
            # the glibc driver would name glibc: say what serves it
            out[name] = ("goalloc malloc replacement (LD_PRELOAD of "
                         f"{Path(cmd[1].split('=', 1)[1]).name})")
            continue
        flag = "-info" if name in GO_COLUMNS else "--info"
        r = run_quiet([*cmd, flag])
        try:
            out[name] = json.loads(r.stdout.strip().splitlines()[-1])[
                "version"
            ]
        except (IndexError, KeyError, json.JSONDecodeError):
            out[name] = "?"
        if name == "goalloc-gc":
            out[name] += ", GC mode, GOGC=100"
        elif name == "goalloc-gc-off":
            out[name] += ", GC mode, GOGC=off"
    return out


def run_all(args, cmds, jobs):
    allocs = [a for a in ORDER if a in cmds]
    res: dict[tuple[str, str], list[Any]] = {}
    na: dict[tuple[str, str], str] = {}
    fails: list[str] = []
    total = args.rounds * sum(
        1
        if j.get("machine")
        else sum(1 for a in allocs if runs(a, j["workload"]))
        for j in jobs
    )
    done = 0
    t_start = time.time()
    for r in range(args.rounds):
        # rotate the order within a round, so no allocator always runs first
        order = allocs[r % len(allocs) :] + allocs[: r % len(allocs)]
        for job in jobs:
            for a in ["machine"] if job.get("machine") else order:
                if a != "machine" and not runs(a, job["workload"]):
                    continue
                key = (job["key"], a)
                res.setdefault(key, [None] * args.rounds)
                if key in na:
                    continue
                exe = cmds["glibc"] if a == "machine" else cmds[a]
                cmd = exe + (
                    go_args(job) if a in GO_COLUMNS else driver_args(job)
                )
                if a == "goalloc":
                    cmd.append(f"gogc={args.goalloc_gogc}")
                # the goalloc driver's own options (goalloc-malloc is the
                # glibc driver under goalloc's preloaded library)
                if VARIANTS.get(a, ("",))[0] == "goalloc":
                    cmd.append(f"release={args.goalloc_release}")
                    if args.goalloc_nozero:
                        cmd.append("zero=0")
                    for x in VARIANTS[a][1]:
                        # GOGC=off never frees: the Go column's budget
                        cmd.append(
                            f"budget={job['budget']}" if x == "budget" else x
                        )
                status, val = run_one(cmd, args.timeout)
                done += 1
                if status == "ok":
                    res[key][r] = val
                    msg = f"{val['ns_per_op']:.1f} ns/op"
                elif status == "na":
                    na[key] = val
                    msg = "n/a"
                else:
                    fails.append(f"round {r + 1}, {a}, {job['key']}: {val}")
                    msg = f"FAILED: {val}"
                log(
                    f"[{done}/{total} {time.time() - t_start:6.0f}s] "
                    f"round {r + 1} "
                    f"{job['key']:<12} {a:<9} {msg}"
                )
            # Every driver writes and reads back the same bytes for the same
            # job, so the checksums must agree: a mismatch means an allocator
            # handed out overlapping memory.
            checks = {
                a: res[(job["key"], a)][r]["check"]
                for a in order
                if res.get((job["key"], a))
                and res[(job["key"], a)][r]
                and not res[(job["key"], a)][r].get("truncated")
            }
            if len(set(checks.values())) > 1:
                fails.append(
                    f"round {r + 1}, {job['key']}: checksums differ: {checks}"
                )
                log(f"run.py: checksum mismatch in {job['key']}: {checks}")
    return res, na, fails


# ---- the report --------------------------------------------------------


def med(xs):
    return statistics.median(xs) if xs else None


def fmt_ns(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def summarize(res, jobs, allocs, rounds):
    """Per (job, alloc): median/min/max ns, median ratio to glibc, RSS."""
    s = {}
    for job in jobs:
        base = res.get((job["key"], "glibc"), [None] * rounds)
        for a in allocs:
            runs = res.get((job["key"], a))
            if not runs:
                continue
            ok = [x for x in runs if x]
            if not ok:
                continue
            ns = [x["ns_per_op"] for x in ok]
            ratios = [
                x["ns_per_op"] / b["ns_per_op"]
                for x, b in zip(runs, base, strict=False)
                if x and b
            ]
            s[(job["key"], a)] = {
                "ns": med(ns),
                "lo": min(ns),
                "hi": max(ns),
                "ratio": med(ratios),
                "peak": med([x["peak_kib"] / 1024 for x in ok]),
                "maxrss": med([x["maxrss_kib"] / 1024 for x in ok]),
                "mops": med([x["mops"] for x in ok]),
                "runs": runs,
                "truncated": any(x.get("truncated") for x in ok),
                "ops": ok[0]["ops"],
            }
    return s


def machine() -> list[str]:
    def first(cmd):
        try:
            return run_quiet(cmd).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"

    model = "?"
    try:
        for ln in run_quiet(["lscpu"]).stdout.splitlines():
            if ln.startswith("Model name:"):
                model = ln.split(":", 1)[1].strip()
    except OSError:
        pass
    mem = "?"
    try:
        for ln in Path("/proc/meminfo").read_text().splitlines():
            if ln.startswith("MemTotal:"):
                mem = f"{int(ln.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return [
        f"CPU: {model}, {os.cpu_count()} logical CPUs; memory {mem}",
        f"kernel: {platform.system()} {platform.release()}",
        f"C compiler: {first([compiler(), '--version'])}",
    ]


def render(args, jobs, allocs, s, na, vers, missing, fails, threads) -> str:
    L: list[str] = []
    mode = "smoke (tiny sizes; numbers mean nothing)" if args.smoke else "full"
    L.append(
        f"## Results ({mode}, {args.rounds} "
        f"round{'s' if args.rounds > 1 else ''})"
    )
    L.append("")
    L += [f"- {m}" for m in machine()]
    L.append(
        "- allocators: "
        + "; ".join(f"{a}: {vers.get(a, '?')}" for a in allocs)
    )
    if "goalloc" in allocs:
        L.append(
            f"- goalloc's heap: release {args.goalloc_release}, with the "
            f"scavenger goal it has with GOGC={args.goalloc_gogc} before a "
            f"GC (the Go column runs GOGC=off)"
            + (
                "; without Go's zeroing of reused memory (skip_zeroing)"
                if getattr(args, "goalloc_nozero", False)
                else ""
            )
        )
    if PRELOADED in allocs:
        L.append(
            f"- {PRELOADED}: the glibc driver (plain malloc and free) with "
            "goalloc's malloc replacement preloaded, as `goalloc run` starts "
            "a program: the malloc contract (no zeroing but calloc's), a "
            "thread runs as a P, plus the replacement's guard and checks"
        )
    for m in missing:
        L.append(f"- missing: {m}")
    L.append("")
    notes: dict[str, int] = {}

    def note(text: str) -> str:
        if text not in notes:
            notes[text] = len(notes) + 1
        return f"n/a [{notes[text]}]"

    L.append("### Time per operation")
    L.append("")
    L.append(
        "ns/op: median over rounds [min–max]; ×glibc: median of the "
        "per-round ratios to glibc (lower is better).  Multi-threaded "
        "rows: wall time / ops per thread."
    )
    L.append("")
    L.append("| workload | " + " | ".join(allocs) + " |")
    L.append("|---|" + "---|" * len(allocs))
    for job in jobs:
        if job.get("machine"):
            continue
        cells = []
        for a in allocs:
            k = (job["key"], a)
            if k in na:
                cells.append(note(f"{a}: {na[k]}"))
            elif k in s:
                x = s[k]
                c = f"{fmt_ns(x['ns'])} [{fmt_ns(x['lo'])}–{fmt_ns(x['hi'])}]"
                if x["ratio"] is not None and a != "glibc":
                    c += f" ×{x['ratio']:.2f}"
                if x["truncated"]:
                    c += f" ({fmt_count(x['ops'])} ops)"
                cells.append(c)
            elif not runs(a, job["workload"]):
                cells.append("–")
            else:
                cells.append("failed")
        L.append(f"| {job['label']} | " + " | ".join(cells) + " |")
    L.append("")
    for text, i in notes.items():
        L.append(f"[{i}] {text}  ")
    if "go" in allocs or "go1.13-off" in allocs:
        L.append("")
        L.append(
            "go, go1.13-off: the installed Go runtime and Go 1.13 with "
            'GOGC=off, so nothing is ever freed ("free" drops a reference) '
            "and memory only grows; the live-set rows stop after a 2 GiB "
            "allocation budget (ops shown). Their RSS is not comparable."
        )
    if "go1.13" in allocs:
        L.append("")
        L.append(
            "go1.13: Go 1.13 with GOGC=100 and GOMAXPROCS=1 (the "
            "threaded row: GOMAXPROCS=threads): its collector frees what "
            "was dropped, with its background mark worker and sweeper on "
            "the same P."
        )
    if "goalloc-gc" in allocs or "goalloc-gc-off" in allocs:
        L.append("")
        L.append(
            "goalloc-gc, goalloc-gc-off: goalloc in GC mode (design §14), "
            "a free is ga_drop, GOGC=100 and off; single-threaded workloads "
            "only (design §14.8). goalloc-gc-off never collects, so its "
            "live-set rows stop after the same 2 GiB budget (ops shown)."
        )
    L.append("")

    L.append("### Peak RSS")
    L.append("")
    L.append(
        "MiB the run added to its peak RSS once the driver's own arrays "
        "were resident (median over rounds).  The peak is the kernel's "
        "RSS high-water mark of the process (VmHWM, i.e. ru_maxrss "
        "without the parent's RSS that ru_maxrss keeps across execve)."
    )
    L.append("")
    L.append("| workload | " + " | ".join(allocs) + " |")
    L.append("|---|" + "---|" * len(allocs))
    for job in jobs:
        if job.get("machine"):
            continue
        cells = []
        for a in allocs:
            k = (job["key"], a)
            if k in s:
                cells.append(f"{s[k]['peak']:.1f}")
            elif k in na:
                cells.append("n/a")
            else:
                cells.append("–")
        L.append(f"| {job['label']} | " + " | ".join(cells) + " |")
    L.append("")

    L.append("### Thread scaling (workload 1)")
    L.append("")
    if 1 not in threads or 2 not in threads:
        L.append(
            "needs 1 and 2 threads (this machine has "
            f"{os.cpu_count()} CPU(s)): not measured"
        )
    else:
        P = max(threads)
        L.append(
            f"Aggregate throughput, Mops/s (median); 2 / 1: median of the "
            f"per-round ratios; {P} Ps for goalloc, GOMAXPROCS={P} for go.  "
            "The machine row runs the same threads with no allocation at "
            "all: its ratio is the most any allocator can show here, and "
            "÷ machine is each round's ratio divided by that round's "
            "machine ratio (median)."
        )
        L.append("")
        L.append("| allocator | 1 thread | 2 threads | 2 / 1 | ÷ machine |")
        L.append("|---|---|---|---|---|")
        m = scaling(s, "machine")
        if m:
            L.append(
                f"| machine (spin, no allocation) | {m['m1']:.0f} | "
                f"{m['m2']:.0f} | {m['ratio']:.2f}× | 1 |"
            )
        for a in allocs:
            x = scaling(s, a)
            if x:
                rel = f"{x['rel']:.2f}" if x["rel"] is not None else "–"
                L.append(
                    f"| {a} | {x['m1']:.1f} | {x['m2']:.1f} | "
                    f"{x['ratio']:.2f}× | {rel} |"
                )
    L.append("")

    if "goalloc" in allocs:
        L += render_targets(s, na, threads)
    if fails:
        L.append("### Failed runs")
        L.append("")
        L += [f"- {f}" for f in fails]
        L.append("")
    return "\n".join(L)


def scaling(s, a):
    """Workload 1 with 1 and 2 threads: throughputs, the median of the
    per-round 2/1 ratios, and the median of those ratios over the same
    round's machine ratio (spin)."""
    if a == "machine":
        k1, k2 = ("spin/1", a), ("spin/2", a)
    else:
        k1, k2 = ("mt-pair16/1", a), ("mt-pair16/2", a)
    if k1 not in s or k2 not in s:
        return None
    rs = [
        b["mops"] / x["mops"] if x and b else None
        for x, b in zip(s[k1]["runs"], s[k2]["runs"], strict=False)
    ]
    out = {
        "m1": s[k1]["mops"],
        "m2": s[k2]["mops"],
        "ratio": med([r for r in rs if r is not None]),
        "rel": None,
    }
    if (
        a != "machine"
        and ("spin/1", "machine") in s
        and ("spin/2", "machine") in s
    ):
        ms = [
            b["mops"] / x["mops"] if x and b else None
            for x, b in zip(
                s[("spin/1", "machine")]["runs"],
                s[("spin/2", "machine")]["runs"],
                strict=False,
            )
        ]
        rel = [
            r / q for r, q in zip(rs, ms, strict=False) if r is not None and q
        ]
        out["rel"] = med(rel)
    return out


def render_targets(s, na, threads) -> list[str]:
    L = [
        "### goalloc against the issue's targets",
        "",
        "| target | goal | goalloc today | met? |",
        "|---|---|---|---|",
    ]
    for key, name, goal in TIME_TARGETS:
        x = s.get((key, "goalloc"))
        if x is None or x["ratio"] is None:
            L.append(f"| {name} | ≤ {goal}× glibc | not measured | – |")
            continue
        L.append(
            f"| {name} | ≤ {goal}× glibc | {x['ratio']:.2f}× | "
            f"{'yes' if x['ratio'] <= goal else 'no'} |"
        )
    for key, name, goal in MALLOC_TARGETS:
        x = s.get((key, PRELOADED))
        if x is None or x["ratio"] is None:
            L.append(f"| {name} | ≤ {goal}× glibc | not measured | – |")
            continue
        L.append(
            f"| {name} ({PRELOADED}) | ≤ {goal}× glibc | {x['ratio']:.2f}× | "
            f"{'yes' if x['ratio'] <= goal else 'no'} |"
        )
    refs = ("mimalloc", "tcmalloc")
    for key, name, _ in TIME_TARGETS:
        if key == "pair16":
            continue  # one live object: no memory to speak of
        g = s.get((key, "goalloc"))
        best = [s[(key, a)]["peak"] for a in refs if (key, a) in s]
        if g is None or not best:
            L.append(
                f"| peak RSS, {name} | ≤ {RSS_TARGET}× "
                "min(mimalloc, tcmalloc) | needs mimalloc or tcmalloc | – |"
            )
            continue
        b = min(best)
        if b < 1.0:
            L.append(
                f"| peak RSS, {name} | ≤ {RSS_TARGET}× "
                "min(mimalloc, tcmalloc) "
                f"| {g['peak']:.1f} / {b:.1f} MiB: too small to compare | – |"
            )
            continue
        r = g["peak"] / b
        L.append(
            f"| peak RSS, {name} | ≤ {RSS_TARGET}× min(mimalloc, tcmalloc) | "
            f"{g['peak']:.1f} / {b:.1f} MiB = {r:.2f}× | "
            f"{'yes' if r <= RSS_TARGET else 'no'} |"
        )
    x, m = scaling(s, "goalloc"), scaling(s, "machine")
    if x is None:
        L.append(
            f"| 2-thread scaling, 2 Ps | ≥ {SCALING_TARGET}× "
            "| not measured | – |"
        )
    else:
        got = f"{x['ratio']:.2f}×"
        verdict = "yes" if x["ratio"] >= SCALING_TARGET else "no"
        if m is not None:
            got += (f" (machine ceiling {m['ratio']:.2f}×, "
                    f"÷ machine {x['rel']:.2f})")
            if verdict == "no" and m["ratio"] < SCALING_TARGET:
                verdict = ("cannot tell here: the machine itself scales "
                           f"{m['ratio']:.2f}×")
        L.append(
            f"| 2-thread scaling, 2 Ps | ≥ {SCALING_TARGET}× | {got} "
            f"| {verdict} |"
        )
    L.append("")
    return L


# ---- main ----------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes, 1 round, every workload and allocator",
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="interleaved rounds (default 5; --smoke: 1)",
    )
    ap.add_argument("--out", help="write the markdown report to this file")
    ap.add_argument("--json", help="write every raw result to this file")
    ap.add_argument(
        "--allocators",
        type=lambda v: v.split(","),
        help="comma-separated subset of " + ",".join(ORDER),
    )
    ap.add_argument(
        "--workloads",
        type=lambda v: v.split(","),
        help="comma-separated subset of pair16,batch,live,livelog,"
        "large,mt-pair16,mt-live,prodcons",
    )
    ap.add_argument(
        "--threads",
        type=lambda v: [int(t) for t in v.split(",")],
        help="thread counts of workload 6 "
        "(default 1,2,4.. up to the CPU count)",
    )
    ap.add_argument(
        "--no-go", action="store_true", help="skip the Go columns"
    )
    ap.add_argument(
        "--go113",
        default=os.environ.get("GOROOT113", "/work/go113"),
        help="GOROOT of a Go 1.13 toolchain for the go1.13 columns "
        "(default $GOROOT113 or /work/go113; absent: no such columns)",
    )
    ap.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every workload's op count (not the live sets) by "
        "this, e.g. 0.1 for a shorter full run",
    )
    ap.add_argument(
        "--goalloc-nozero",
        action="store_true",
        help="goalloc without Go's zeroing of reused memory (the "
        "skip_zeroing deviation), to measure what zeroing costs",
    )
    ap.add_argument(
        "--goalloc-release",
        default="go1.13.8",
        help="whose page heap goalloc runs: go1.13.8 (the default) or "
        "go1.13.0 (what the results in BENCHMARKS.md before the release "
        "option measured)",
    )
    ap.add_argument(
        "--goalloc-gogc",
        default="100",
        help="the GOGC whose scavenger goal goalloc's heap gets (default 100, "
        "Go's; with go1.13.0, 'off' as the Go column runs: no allocation "
        "ever scavenges; go1.13.8's goal is 0 before a GC whatever GOGC is)",
    )
    ap.add_argument("--build-dir", default=str(ROOT / "build" / "bench"))
    ap.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds per run (default 900; --smoke: 60)",
    )
    ap.add_argument(
        "--from-json",
        metavar="FILE",
        help="render the report from a --json file; run nothing",
    )
    args = ap.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.smoke else 5
    if args.timeout is None:
        args.timeout = 60.0 if args.smoke else 900.0
    if args.allocators:
        bad = set(args.allocators) - set(ORDER)
        if bad:
            ap.error(f"unknown allocators: {','.join(sorted(bad))}")
        if "glibc" not in args.allocators:
            args.allocators.append("glibc")  # every ratio needs it
    if args.threads is None:
        ncpu = os.cpu_count() or 1
        args.threads = sorted(
            {1, ncpu} | {t for t in (2, 4, 8, 16) if t <= ncpu}
        )
    jobs = plan(args.smoke, args.threads, args.scale)
    if args.workloads:
        jobs = [j for j in jobs if j["workload"] in args.workloads]
        if not jobs:
            ap.error("no workload selected")

    if args.from_json:
        raw = json.loads(Path(args.from_json).read_text())
        args.rounds, args.smoke = raw["rounds"], raw["smoke"]
        args.goalloc_gogc = raw.get("goalloc_gogc", "100")
        args.goalloc_release = raw.get("goalloc_release", "go1.13.0")
        args.goalloc_nozero = raw.get("goalloc_nozero", False)
        jobs, vers, fails = raw["jobs"], raw["versions"], raw["failures"]

        def split(k: str) -> tuple[str, str]:
            a, b = k.split("|", 1)
            return a, b

        res = {split(k): v for k, v in raw["results"].items()}
        na = {split(k): v for k, v in raw["na"].items()}
        allocs = [a for a in ORDER if a in vers]
        threads = sorted(
            {j["threads"] for j in jobs if j["workload"] == "mt-pair16"}
        )
        s = summarize(res, jobs, allocs + ["machine"], args.rounds)
        md = render(
            args,
            jobs,
            allocs,
            s,
            na,
            vers,
            raw.get("missing", []),
            fails,
            threads or args.threads,
        )
        print(md)
        if args.out:
            Path(args.out).write_text(md + "\n")
        return 0

    with tempfile.TemporaryDirectory(prefix="goalloc-bench-") as tmpdir:
        cmds, missing, ok = detect_and_build(args, Path(tmpdir))
        for m in missing:
            log(f"run.py: {m}")
        if "glibc" not in cmds or "goalloc" not in cmds:
            log("run.py: the goalloc and glibc drivers must build; giving up")
            return 1
        vers = versions(cmds)
        allocs = [a for a in ORDER if a in cmds]
        log(
            f"run.py: {args.rounds} round(s) of {len(jobs)} workloads on "
            + ", ".join(f"{a} ({vers[a]})" for a in allocs)
        )
        res, na, fails = run_all(args, cmds, jobs)

    s = summarize(res, jobs, allocs + ["machine"], args.rounds)
    md = render(args, jobs, allocs, s, na, vers, missing, fails, args.threads)
    print(md)
    if args.out:
        Path(args.out).write_text(md + "\n")
        log(f"run.py: wrote {args.out}")
    if args.json:
        raw = {
            "rounds": args.rounds,
            "smoke": args.smoke,
            "goalloc_gogc": args.goalloc_gogc,
            "goalloc_release": args.goalloc_release,
            "goalloc_nozero": args.goalloc_nozero,
            "versions": vers,
            "missing": missing,
            "jobs": jobs,
            "na": {f"{k[0]}|{k[1]}": v for k, v in na.items()},
            "results": {f"{k[0]}|{k[1]}": v for k, v in res.items()},
            "failures": fails,
        }
        Path(args.json).write_text(json.dumps(raw, indent=1) + "\n")
        log(f"run.py: wrote {args.json}")
    if fails or not ok:
        log(f"run.py: {len(fails)} run(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
