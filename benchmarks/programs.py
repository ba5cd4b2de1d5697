#!/usr/bin/env python3
"""Real programs under each allocator: goalloc's malloc replacement and
glibc, mimalloc, jemalloc and tcmalloc, each by LD_PRELOAD.

    python3 benchmarks/programs.py                 # 5 rounds
    python3 benchmarks/programs.py --rounds 1 --smoke
    python3 benchmarks/programs.py --out FILE.md --json FILE.json

Workloads: python3 running a pure-Python allocation-heavy script
(benchmarks/programs/pyalloc.py, PYTHONMALLOC=malloc), sqlite3 building
and querying a 200k-row database, gcc compiling a 3000-line C file (-O2),
the multithreaded program of the tests (tests/preload/mtalloc.c) at 1
and 2 threads, and redis-server (on the allocator) driven by
redis-benchmark (on glibc), pipelined.  Debian links redis-server with
jemalloc: its "glibc" run preloads benchmarks/programs/glibcmalloc.c,
glibc's own malloc, and the others' preloads override jemalloc's.
Each run is wall time and peak RSS (/usr/bin/time's %M: the largest
RSS of the process and the processes it waited for; redis-server's
VmHWM); redis adds throughput
(the geometric mean of redis-benchmark's requests per second over its
tests).  Rounds are interleaved (round r runs every workload on every
allocator before round r+1), so that the machine's drift hits all
columns alike; the report gives medians, min-max and the median of the
per-round ratios to glibc.  It installs nothing: an allocator whose
library is missing is left out, with the apt-get line that adds it.
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LIBS = {
    "mimalloc": ("libmimalloc.so.2", "libmimalloc2.0"),
    "jemalloc": ("libjemalloc.so.2", "libjemalloc2"),
    "tcmalloc": ("libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
}
ORDER = ["glibc", "goalloc", "mimalloc", "jemalloc", "tcmalloc"]

SQL = """
CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT, price REAL, tag TEXT);
WITH RECURSIVE c(x) AS (VALUES(1) UNION ALL SELECT x + 1 FROM c
                        WHERE x < {rows})
INSERT INTO item SELECT x, printf('item-%08d-%s', x,
                                  substr('abcdefghijklmnop', x % 13, 7)),
       (x * 7919 % 100000) / 100.0, 'tag' || (x % 97) FROM c;
CREATE INDEX item_name ON item(name);
SELECT tag, count(*), round(avg(price), 3) FROM item GROUP BY tag
  ORDER BY 2 DESC LIMIT 3;
UPDATE item SET name = upper(name) WHERE id % 5 = 0;
SELECT count(*) FROM item a JOIN item b ON a.id = b.id + 1
  WHERE a.tag = b.tag;
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def find_lib(name: str) -> str | None:
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib",
              "/usr/local/lib"):
        hits = sorted(glob.glob(os.path.join(d, name)))
        if hits:
            return hits[0]
    return None


def allocators() -> dict[str, str | None]:
    """allocator -> the library to preload (None: glibc's own)."""
    from goalloc.preload import preload_path

    out: dict[str, str | None] = {"glibc": None, "goalloc": preload_path()}
    for name, (lib, pkg) in LIBS.items():
        path = find_lib(lib)
        if path is None:
            log(f"{name}: {lib} not found (apt-get install {pkg}); left out")
        else:
            out[name] = path
    return out


def env_for(lib: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_PRELOAD", "GOALLOC_STATS", "GOALLOC_PROCS")}
    if lib is not None:
        env["LD_PRELOAD"] = lib
    env.update(extra)
    return env


def timed(cmd: list[str], env: dict[str, str], stdin: str | None = None,
          cwd: str | None = None,
          ok_status: tuple[int, ...] = (0,)) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in bytes, stdout) of cmd, from
    /usr/bin/time."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        p = subprocess.run(["/usr/bin/time", "-o", t.name, "-f", "%e %M",
                            *cmd], env=env, input=stdin, text=True,
                           capture_output=True, cwd=cwd, timeout=600)
        if p.returncode not in ok_status:
            raise RuntimeError(f"{cmd}: exit {p.returncode}: "
                               f"{p.stderr[-2000:]}")
        wall, kib = t.read().split()[-2:]
    return float(wall), int(kib) * 1024, p.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def vm_hwm(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def glibc_shim(tmp: str) -> str:
    """benchmarks/programs/glibcmalloc.c built: glibc's malloc preloaded
    (redis-server is linked with jemalloc)."""
    out = os.path.join(tmp, "glibcmalloc.so")
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC",
                    str(ROOT / "benchmarks" / "programs" / "glibcmalloc.c"),
                    "-o", out, "-ldl"], check=True)
    return out


def redis_run(env: dict[str, str], requests: int,
              tmp: str) -> dict[str, float]:
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly",
         "no", "--dir", tmp], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            p = subprocess.run(["redis-cli", "-p", str(port), "ping"],
                               capture_output=True, text=True)
            if p.stdout.strip() == "PONG":
                break
            time.sleep(0.05)
        t0 = time.perf_counter()
        out = subprocess.run(
            ["redis-benchmark", "-p", str(port), "-q", "-n", str(requests),
             "-r", "100000", "-d", "200", "-P", "16", "-t",
             "set,get,incr,lpush,lpop,sadd,hset,lrange_100"],
            env=env_for(None), capture_output=True, text=True, check=True,
            timeout=600).stdout
        wall = time.perf_counter() - t0
        rss = vm_hwm(server.pid)
        subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"],
                       capture_output=True)
        server.wait(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    rps = [float(line.split(": ")[1].split()[0])
           for line in out.replace("\r", "\n").splitlines()
           if "requests per second" in line and ": " in line]
    return {"wall": wall, "rss": rss,
            "rps": math.exp(statistics.fmean(math.log(r) for r in rps))}


def workloads(smoke: bool, tmp: str) -> list[dict[str, Any]]:
    mt = os.path.join(tmp, "mtalloc")
    subprocess.run(["gcc", "-O2", "-std=c11", "-pthread",
                    str(ROOT / "tests" / "preload" / "mtalloc.c"), "-o", mt],
                   check=True)
    rounds = "20000" if smoke else "150000"
    rows = 20000 if smoke else 200000
    return [
        {"name": "python3", "what": "pure-Python allocation churn",
         "cmd": ["/usr/bin/python3",
                 str(ROOT / "benchmarks" / "programs" / "pyalloc.py")],
         "env": {"PYTHONMALLOC": "malloc"}},
        {"name": "sqlite3", "what": f"{rows // 1000}k rows, index, joins",
         "cmd": ["sqlite3", os.path.join(tmp, "db.sqlite")],
         "stdin": SQL.format(rows=rows), "fresh": "db.sqlite"},
        {"name": "gcc", "what": "-O2 -S of tests/c/test_sysalloc.c",
         "cmd": ["gcc", "-O2", "-S", "-I", str(ROOT / "csrc"), "-I",
                 str(ROOT / "tests" / "c"),
                 str(ROOT / "tests" / "c" / "test_sysalloc.c"), "-o",
                 os.path.join(tmp, "out.s")]},
        {"name": "mtalloc-1", "what": "1 thread, cross-thread frees",
         "cmd": [mt, "1", rounds], "errors": True},
        {"name": "mtalloc-2", "what": "2 threads, cross-thread frees",
         "cmd": [mt, "2", rounds], "errors": True},
        {"name": "redis", "what": "redis-benchmark -P 16, 8 tests",
         "redis": 20000 if smoke else 200000},
    ]


def measure(rounds: int, smoke: bool) -> dict[str, Any]:
    allocs = allocators()
    res: dict[str, dict[str, list[dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        jobs = workloads(smoke, tmp)
        shim = glibc_shim(tmp)
        for r in range(rounds):
            for job in jobs:
                for name, lib in allocs.items():
                    if "redis" in job:
                        m = redis_run(env_for(lib or shim), job["redis"],
                                      tmp)
                    else:
                        if "fresh" in job:
                            path = os.path.join(tmp, job["fresh"])
                            if os.path.exists(path):
                                os.unlink(path)
                        wall, rss, out = timed(
                            job["cmd"], env_for(lib, **job.get("env", {})),
                            stdin=job.get("stdin"), cwd=tmp,
                            ok_status=(0, 1) if "errors" in job else (0,))
                        m = {"wall": wall, "rss": rss}
                        if "errors" in job:
                            # mtalloc's count of blocks read back wrong
                            m["errors"] = float(out.split(" errors")[0]
                                                .split()[-1])
                    res.setdefault(job["name"], {}).setdefault(
                        name, []).append(m)
                    log(f"round {r + 1}/{rounds} {job['name']:10s} "
                        f"{name:9s} " + " ".join(f"{k}={v:.4g}"
                                                 for k, v in m.items()))
        return {"allocators": list(allocs), "rounds": rounds,
                "jobs": [{k: v for k, v in j.items()
                          if k in ("name", "what")} for j in jobs],
                "results": res}


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def ratio(res: dict[str, list[dict[str, float]]], name: str,
          key: str) -> float:
    """The median over rounds of name's figure / glibc's in that round."""
    return med([a[key] / b[key] for a, b in zip(res[name], res["glibc"],
                                                 strict=True)])


def report(data: dict[str, Any]) -> str:
    allocs = [a for a in ORDER if a in data["allocators"]]
    lines = [
        f"Rounds: {data['rounds']} (interleaved). Wall time and peak RSS: "
        "median (min-max); x: median of the per-round ratios to glibc.",
        "",
        "| workload | allocator | wall s | x glibc | peak RSS MiB | x glibc "
        "| throughput |",
        "|---|---|---|---|---|---|---|",
    ]
    for job in data["jobs"]:
        res = data["results"][job["name"]]
        for a in allocs:
            walls = [m["wall"] for m in res[a]]
            rss = [m["rss"] / (1 << 20) for m in res[a]]
            thr = ""
            bad = sum(m.get("errors", 0) for m in res[a])
            if bad:
                thr = f"{bad:.0f} blocks read back wrong"
            if "rps" in res[a][0]:
                rps = [m["rps"] for m in res[a]]
                thr = (f"{med(rps) / 1000:.0f}k req/s "
                       f"(x{ratio(res, a, 'rps'):.2f})")
            lines.append(
                f"| {job['name']} ({job['what']}) | {a} | {med(walls):.3f} "
                f"({min(walls):.3f}-{max(walls):.3f}) | "
                f"{ratio(res, a, 'wall'):.2f} | {med(rss):.1f} "
                f"({min(rss):.1f}-{max(rss):.1f}) | "
                f"{ratio(res, a, 'rss'):.2f} | {thr} |")
    lines += ["", "| allocator | geomean wall x glibc (all but redis) | "
              "geomean peak RSS x glibc | redis throughput x glibc |",
              "|---|---|---|---|"]
    timed_jobs = [j["name"] for j in data["jobs"] if j["name"] != "redis"]
    for a in allocs:
        gw = math.exp(statistics.fmean(
            math.log(ratio(data["results"][j], a, "wall"))
            for j in timed_jobs))
        gr = math.exp(statistics.fmean(
            math.log(ratio(data["results"][j], a, "rss"))
            for j in [j["name"] for j in data["jobs"]]))
        rr = ratio(data["results"]["redis"], a, "rps")
        lines.append(f"| {a} | {gw:.2f} | {gr:.2f} | {rr:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--smoke", action="store_true",
                    help="small inputs (a check that everything runs)")
    ap.add_argument("--out", help="also write the markdown table here")
    ap.add_argument("--json", help="write the raw measurements here")
    args = ap.parse_args()
    for prog in ("/usr/bin/time", "sqlite3", "gcc", "redis-server",
                 "redis-benchmark", "redis-cli"):
        if shutil.which(prog) is None:
            log(f"missing {prog}: apt-get install time sqlite3 gcc "
                "redis-server redis-tools")
            return 1
    data = measure(args.rounds, args.smoke)
    text = report(data)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
