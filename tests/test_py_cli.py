"""python -m goalloc: the tour, replay, capture and demo commands.

Each command runs in a subprocess, as a user would run it.  Errors are
one line on stderr ("goalloc: error: ..."), exit status 2 for a bad
command line and 1 otherwise, and never a traceback.
"""
from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys

import pytest

import goalloc
from goalloc import Trace, workloads

# The subprocess imports the same goalloc as this process (the ASan run
# imports it from its build directory).
PKG_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(goalloc.__file__)))

HAVE_PLOTS = (importlib.util.find_spec("matplotlib") is not None
              and importlib.util.find_spec("goalloc.plot") is not None)
HAVE_CAPTURE = importlib.util.find_spec("goalloc.capture") is not None


def run(*args: str, cwd=None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = PKG_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["MPLBACKEND"] = "Agg"
    env.pop("GOALLOC_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "goalloc", *args], cwd=cwd,
                          env=env, capture_output=True, text=True,
                          timeout=timeout)


def assert_one_line_error(r: subprocess.CompletedProcess, status: int,
                          *words: str) -> str:
    assert r.returncode == status, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    lines = r.stderr.strip("\n").split("\n")
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("goalloc: error: "), r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def trace_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("traces")
    t = workloads.go_mix(20_000, live=1000, seed=5, procs=2)
    text, binary = d / "mix.trace", d / "mix.gatrace"
    t.save(text)
    t.save(binary)
    return t, text, binary


# ---- tour ------------------------------------------------------------------

def test_tour_writes_its_pngs(tmp_path):
    out = tmp_path / "pngs"
    r = run("tour", "--ops", "20000", "--live", "1000", "--outdir", str(out),
            "--progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    text = r.stdout
    for step in ("1. mallocinit", "2. arena hints", "3. the mheap",
                 "4. 134 mcentrals", "5. m0's mcache", "6. a first allocation",
                 "7. a workload", "8. MemStats", "9. fragmentation",
                 "10. plots"):
        assert step in text, step
    assert "0x00c000000000" in text or os.environ.get("GOALLOC_ASAN")
    assert "heap_alloc" in text and "external" in text
    assert "verify(): every invariant holds" in text
    # the progress bar: redrawn in place on stderr (text mode turns its
    # \r into \n), up to 100%
    assert r.stderr.count("replay [") > 10 and "100.0%" in r.stderr
    if HAVE_PLOTS:
        pngs = [line.strip() for line in text.splitlines()
                if line.strip().endswith(".png")]
        assert pngs
        for p in pngs:
            path = p if os.path.isabs(p) else os.path.join(tmp_path, p)
            assert os.path.getsize(path) > 1000
            with open(path, "rb") as f:
                assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        assert {os.path.dirname(os.path.join(tmp_path, p)) for p in pngs} \
            == {str(out)}
    else:
        assert "plots not written" in text


def test_tour_on_the_virtual_backing_quietly(tmp_path):
    r = run("tour", "--ops", "5000", "--live", "500", "--procs", "2",
            "--backing", "virtual", "--outdir", str(tmp_path), "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert "virtual backing" in r.stdout
    assert "procs=2" in r.stdout
    assert r.stderr == ""          # no progress bar when not a terminal


# ---- replay ------------------------------------------------------------------

@pytest.mark.parametrize("which", ["text", "binary"])
def test_replay_writes_csv_and_json(tmp_path, trace_files, which):
    trace, text, binary = trace_files
    path = text if which == "text" else binary
    with goalloc.Heap(backing="virtual", procs=2) as h:
        expect = h.replay(trace, sample_every=1000)
    r = run("replay", str(path), "--sample-every", "1000", "--out",
            str(tmp_path / "tl.csv"), "--backing", "virtual")
    assert r.returncode == 0, r.stderr
    assert "20,000 ops" in r.stdout and "ops/s" in r.stdout
    assert "2 P" in r.stdout                 # procs from the trace
    with open(tmp_path / "tl.csv", newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    assert header[:2] == ["op", "heap_alloc"]
    assert len(rows) == 1 + len(expect) == 1 + 21
    assert [int(r_[1]) for r_ in rows[1:]] == expect.heap_alloc.tolist()

    r = run("replay", str(path), "--sample-every", "1000", "--out",
            str(tmp_path / "tl.json"), "--backing", "virtual")
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "tl.json").read_text())
    assert doc["schema"] == "goalloc.timeline/1"
    assert doc["nops"] == len(trace)
    assert doc["columns"]["heap_alloc"] == expect.heap_alloc.tolist()
    assert doc["columns"]["op"] == expect.op.tolist()


def test_replay_defaults_and_plots(tmp_path, trace_files):
    _, _, binary = trace_files
    r = run("replay", str(binary), "--plots", str(tmp_path / "p"),
            "--procs", "4")
    assert r.returncode == 0, r.stderr
    assert "4 P" in r.stdout
    assert "1001 samples" in r.stdout           # about 1000 by default
    assert "fragmentation" in r.stdout and "internal" in r.stdout
    if HAVE_PLOTS:
        pngs = sorted(os.listdir(tmp_path / "p"))
        assert pngs and all(p.startswith("mix-") and p.endswith(".png")
                            for p in pngs)
        for p in pngs:
            assert str(tmp_path / "p" / p) in r.stdout
    else:
        assert "plots not written" in r.stdout


def test_replay_of_sparse_ids(tmp_path):
    t = Trace.from_ops([("alloc", 1 << 62, 100), ("alloc", 7, 3, True),
                        ("free", 1 << 62), ("alloc", (1 << 64) - 1, 50_000)])
    t.save(tmp_path / "sparse.trace")
    r = run("replay", str(tmp_path / "sparse.trace"), "--backing", "virtual",
            "--out", str(tmp_path / "s.csv"))
    assert r.returncode == 0, r.stderr
    assert "renumbered" in r.stdout
    bad = Trace.from_ops([("alloc", 1 << 62, 100), ("free", 1 << 40)])
    bad.save(tmp_path / "bad.trace")
    r = run("replay", str(tmp_path / "bad.trace"), "--backing", "virtual")
    assert_one_line_error(r, 1, "op 1", f"id {1 << 40} in the file")


# ---- help ------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["--help"], ["-h"], ["tour", "--help"], ["replay", "--help"],
    ["demo", "--help"],
    *([["capture", "--help"]] if HAVE_CAPTURE else []),
])
def test_help(args):
    r = run(*args)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: python -m goalloc")
    assert r.stderr == ""
    if args[0] in ("--help", "-h"):
        for cmd in ("tour", "replay", "demo"):
            assert cmd in r.stdout
        if HAVE_CAPTURE:
            assert "capture" in r.stdout


def test_demo_still_works():
    r = run("demo", "--backing", "virtual")
    assert r.returncode == 0, r.stderr
    assert "mallocinit" in r.stdout and "every invariant holds" in r.stdout


# ---- errors ------------------------------------------------------------------

@pytest.mark.parametrize("args,words", [
    ([], ["COMMAND"]),
    (["bogus"], ["invalid choice"]),
    (["tour", "--ops", "-5"], ["--ops", ">= 0"]),
    (["tour", "--ops", "many"], ["--ops", "integer"]),
    (["tour", "--backing", "cloud"], ["--backing"]),
    (["tour", "--live", "0"], ["--live"]),
    (["replay"], ["FILE"]),
    (["replay", "x.trace", "--sample-every", "-1"], ["--sample-every"]),
    (["replay", "x.trace", "--frobnicate"], ["--frobnicate"]),
    (["demo", "--goos"], ["--goos"]),
])
def test_bad_command_lines(args, words):
    r = run(*args)
    assert_one_line_error(r, 2, *words)
    assert r.stdout == ""


def test_bad_options_found_late(tmp_path, trace_files):
    _, text, _ = trace_files
    r = run("replay", str(text), "--out", str(tmp_path / "tl.txt"))
    assert_one_line_error(r, 2, ".csv or .json")
    r = run("replay", str(text), "--procs", "1")
    assert_one_line_error(r, 2, "--procs", "2")


def test_bad_files(tmp_path):
    cases = {}
    cases["missing"] = (str(tmp_path / "nope.trace"), ["No such file",
                                                       "nope.trace"])
    cases["directory"] = (str(tmp_path), ["directory"])
    empty = tmp_path / "empty.trace"
    empty.write_text("")
    cases["empty"] = (str(empty), ["line 1"])
    bad_line = tmp_path / "badline.trace"
    bad_line.write_text("# goalloc trace v1\na 0 8 0 0\na 1 x 0 0\n")
    cases["bad line"] = (str(bad_line), ["line 3", "badline.trace"])
    binary = tmp_path / "trunc.gatrace"
    Trace.from_ops([("alloc", 0, 8)]).write_binary(binary)
    binary.write_bytes(binary.read_bytes()[:-3])
    cases["truncated"] = (str(binary), ["trunc.gatrace", "bytes"])
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 4)
    cases["garbage"] = (str(garbage), ["line 1"])
    for name, (path, words) in cases.items():
        r = run("replay", path, "--backing", "virtual")
        assert r.returncode == 1, name
        assert_one_line_error(r, 1, *words)


def test_bad_trace_contents(tmp_path):
    t = Trace.from_ops([("alloc", 0, 64), ("free", 0), ("free", 0),
                        ("alloc", 1, 8)])
    t.save(tmp_path / "double.trace")
    r = run("replay", str(tmp_path / "double.trace"), "--backing", "virtual",
            "--progress")
    # the progress bar ends its line before the error
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    last = r.stderr.strip("\n").split("\n")[-1]
    assert last.startswith("goalloc: error: replay stopped at op 2")
    t = Trace.from_ops([("alloc", 0, 1 << 62)])
    t.save(tmp_path / "huge.trace")
    r = run("replay", str(tmp_path / "huge.trace"), "--backing", "virtual")
    assert_one_line_error(r, 1, "op 0")


@pytest.mark.skipif(not HAVE_CAPTURE, reason="no goalloc.capture")
def test_capture_errors_are_one_line():
    r = run("capture", "--frobnicate")
    assert_one_line_error(r, 2, "--frobnicate")
    r = run("capture")
    assert_one_line_error(r, 2)
