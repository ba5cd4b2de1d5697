"""python -m goalloc: the tour, replay, diff, capture and demo commands.

Each command runs in a subprocess, as a user would run it.  Errors are
one line on stderr ("goalloc: error: ..."), exit status 2 for a bad
command line and 1 otherwise, and never a traceback.
"""
from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

import goalloc
from goalloc import Trace, workloads

# The subprocess imports the same goalloc as this process (the ASan run
# imports it from its build directory).
PKG_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(goalloc.__file__)))

HAVE_PLOTS = (importlib.util.find_spec("matplotlib") is not None
              and importlib.util.find_spec("goalloc.plot") is not None)
HAVE_CAPTURE = importlib.util.find_spec("goalloc.capture") is not None


def run(*args: str, cwd=None, timeout: float = 300,
        env_extra=None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(env_extra or {})
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
                 "10. plots", "11. one GC cycle"):
        assert step in text, step
    # the cycle starts at Go's trigger: heapminimum for GOGC=100
    assert "at heap_live = 4,194,304 B a refill met the trigger" in text
    assert "0x00c000000000" in text or os.environ.get("GOALLOC_ASAN")
    assert "heap_alloc" in text and "external" in text
    assert "verify(): every invariant holds" in text
    # the progress bar (tqdm): drawn in place on stderr, up to 100%
    lines = bar_lines(r.stderr)
    assert lines[0].startswith("   replay:   0%")
    assert lines[-1].startswith("   replay: 100%") and "20.0k/20.0k" in \
        lines[-1]
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


# ---- the progress bar (tqdm) ---------------------------------------------

def bar_lines(stream_text: str) -> list[str]:
    """What each redraw put on the line (split at the \\r of the
    redraws and the final newline)."""
    return [x for x in stream_text.replace("\n", "\r").split("\r") if x]


def draw(bar, total=1_000_000, steps=(0, 1, 5000, 333_333, 999_999,
                                      1_000_000)):
    for done in steps:
        bar(done, total)
    bar.close()


def test_progress_bar_is_tqdm_and_ends_at_100():
    pytest.importorskip("tqdm")
    from goalloc.__main__ import progress_bar
    out = io.StringIO()
    bar = progress_bar("   replay", True, out)
    draw(bar)
    lines = bar_lines(out.getvalue())
    assert lines[0].startswith("   replay:   0%|")
    assert lines[-1].startswith("   replay: 100%|")
    assert "1.00M/1.00M" in lines[-1] and "ops/s" in lines[-1]
    assert out.getvalue().endswith("\n")      # close() ends the line
    off = io.StringIO()
    draw(progress_bar("   replay", False, off))
    assert off.getvalue() == ""
    quiet = io.StringIO()           # by default: only on a terminal
    draw(progress_bar("   replay", None, quiet))
    assert quiet.getvalue() == ""


def test_progress_bar_reads_the_width_of_its_own_terminal(monkeypatch):
    """A terminal of 50 columns behind stderr (a pty), COLUMNS unset, and
    stdout not a terminal: the bar fits the pty's width (one column short:
    a line reaching the last column wraps on many terminals), and follows
    a resize."""
    pytest.importorskip("tqdm")
    import fcntl
    import termios

    from goalloc.__main__ import progress_bar
    monkeypatch.delenv("COLUMNS", raising=False)
    master, slave = os.openpty()
    try:
        class Tty(io.StringIO):
            def fileno(self):
                return slave

            def isatty(self):
                return True

        for columns in (120, 50, 30):
            fcntl.ioctl(slave, termios.TIOCSWINSZ,
                        struct.pack("HHHH", 24, columns, 0, 0))
            out = Tty()
            bar = progress_bar("   replay", None, out)
            draw(bar)
            lines = bar_lines(out.getvalue())
            assert len(lines) >= 2, out.getvalue()
            assert max(len(line) for line in lines) == columns - 1
    finally:
        os.close(master)
        os.close(slave)


def test_progress_without_tqdm(monkeypatch, capsys):
    """No tqdm: no bar, a note when one was asked for; progress=True in
    the API says which extra to install, before anything runs."""
    from goalloc.__main__ import progress_bar
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    draw(progress_bar("replay", None))
    assert capsys.readouterr().err == ""
    draw(progress_bar("replay", True))
    err = capsys.readouterr().err
    assert "no progress bar" in err and "goalloc[progress]" in err
    with goalloc.Heap(backing="virtual") as h:
        with pytest.raises(ImportError, match=r"goalloc\[progress\]"):
            h.replay(workloads.go_mix(1000, live=100, seed=1),
                     progress=True)
        assert h.stats().mallocs == 0


def test_replay_progress_true_draws_a_tqdm_bar(capsys):
    """progress=True: tqdm.auto's bar (text outside a notebook) on
    stderr, closed when the replay ends; the callback API is unchanged."""
    pytest.importorskip("tqdm")
    trace = workloads.go_mix(20_000, live=1000, seed=1)
    with goalloc.Heap(backing="virtual") as h:
        tl = h.replay(trace, progress=True, sample_every=1000)
    err = capsys.readouterr().err
    assert "replay: 100%" in err and "20.0k/20.0k" in err
    assert err.endswith("\n")
    calls = []
    with goalloc.Heap(backing="virtual") as h:
        tl2 = h.replay(trace, progress=lambda d, n: calls.append((d, n)),
                       sample_every=1000)
        h3 = goalloc.Heap(backing="virtual")
        tl3 = h3.replay(trace, progress=False, sample_every=1000)
        h3.close()
    assert calls[-1] == (20_000, 20_000) and len(calls) >= 100
    assert tl.equals(tl2) and tl.equals(tl3)
    assert capsys.readouterr().err == ""


def test_tour_progress_bar_in_80_columns(tmp_path):
    r = run("tour", "--ops", "20000", "--live", "1000", "--outdir",
            str(tmp_path), "--progress", "--backing", "virtual",
            env_extra={"COLUMNS": "80", "LINES": "24"})
    assert r.returncode == 0, r.stderr
    lines = bar_lines(r.stderr)
    assert "100%" in lines[-1]
    assert max(len(line) for line in lines) <= 79


def test_tour_on_the_virtual_backing_quietly(tmp_path):
    r = run("tour", "--ops", "5000", "--live", "500", "--procs", "2",
            "--backing", "virtual", "--outdir", str(tmp_path), "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert "virtual backing" in r.stdout
    assert "procs=2" in r.stdout
    assert r.stderr == ""          # no progress bar when not a terminal


# ---- replay ----------------------------------------------------------

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
    ["demo", "--help"], ["diff", "--help"], ["capture", "--help"],
])
def test_help(args):
    r = run(*args)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: python -m goalloc")
    assert r.stderr == ""
    if args[0] in ("--help", "-h"):
        for cmd in ("tour", "replay", "diff", "capture", "demo", "--version"):
            assert cmd in r.stdout
    if args[0] == "capture":
        # one argparse tree: the capture options are the subcommand's own
        assert r.stdout.startswith("usage: python -m goalloc capture "
                                   "[options] [--] CMD")
        for option in ("--output", "--raw", "--procs", "--python-malloc",
                       "--timeout", "--text"):
            assert option in r.stdout


def test_version():
    r = run("--version")
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.strip() == f"python -m goalloc {goalloc.__version__}"


def test_capture_is_a_subcommand_of_the_one_parser():
    """No words are handed around the parser: 'capture' is parsed by
    build_parser() like every command."""
    from goalloc.__main__ import build_parser
    args = build_parser().parse_args(
        ["capture", "-o", "x", "--procs", "3", "--", "ls", "-l"])
    assert args.output == "x" and args.procs == 3
    assert args.command[-2:] == ["ls", "-l"]
    assert callable(args.func)


def test_demo_still_works():
    r = run("demo", "--backing", "virtual")
    assert r.returncode == 0, r.stderr
    assert "mallocinit" in r.stdout and "every invariant holds" in r.stdout


# ---- errors ----------------------------------------------------------

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
    assert_one_line_error(r, 2, ".csv, .json or .npz")
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


def test_capture_errors_are_one_line():
    r = run("capture", "--frobnicate")
    assert_one_line_error(r, 2, "--frobnicate")
    r = run("capture")
    assert_one_line_error(r, 2)


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="the capture shim is Linux-only")
def test_capture_through_the_command_line(tmp_path):
    prog = "import sys; xs = [bytearray(n) for n in range(1, 3000, 7)]"
    r = run("capture", "-o", str(tmp_path / "cap"), "--python-malloc",
            "--procs", "2", "--", sys.executable, "-c", prog, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    made = [f for f in os.listdir(tmp_path) if f.startswith("cap.")]
    assert made and all(f.endswith(".gatrace") for f in made)
    assert any(str(tmp_path / f) in r.stdout for f in made)
    t = Trace.load(tmp_path / made[0])
    assert len(t) > 400
    # the command's exit status is passed on
    r = run("capture", "-o", str(tmp_path / "c2"), sys.executable, "-c",
            "raise SystemExit(4)", cwd=tmp_path)
    assert r.returncode == 4


# ---- replay: the peak, --json, --snapshot; diff ---------------------------

def test_replay_reports_the_peak(trace_files):
    trace, _, binary = trace_files
    with goalloc.Heap(backing="virtual", procs=2) as h:
        tl = h.replay(trace, sample_every=20)
    r = run("replay", str(binary), "--backing", "virtual")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("peak"))
    assert lines.index("final heap:") > i
    peak = {line.split()[0]: line.split()[1] for line in lines[i + 2:i + 9]}
    k = int(np.argmax(tl.heap_inuse))
    assert peak["heap_inuse"] == f"{int(tl.heap_inuse[k]):,}"
    assert f"{int(tl.op[k]) + 1:,}" in lines[i + 3]
    assert peak["retained"] == \
        f"{int((tl.heap_sys - tl.heap_released).max()):,}"
    assert peak["live_objects"] == f"{int(tl.live_objects.max()):,}"
    # the peak is not the end: this trace frees most of what it allocates
    assert tl.heap_inuse.max() > tl.heap_inuse[-1]


def test_replay_json(tmp_path, trace_files):
    trace, text, _ = trace_files
    with goalloc.Heap(backing="virtual", procs=2) as h:
        tl = h.replay(trace, sample_every=100)
        st = h.stats()
        frag = h.fragmentation()
    r = run("replay", str(text), "--backing", "virtual", "--json",
            "--sample-every", "100", "--out", str(tmp_path / "tl.npz"),
            "--snapshot", str(tmp_path / "s.json"))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    doc = json.loads(r.stdout)          # nothing but the JSON on stdout
    assert doc["ops"] == len(trace) and doc["procs"] == 2
    assert doc["samples"] == len(tl) and doc["sample_every"] == 100
    assert doc["peak"]["heap_alloc"] == {
        "value": int(tl.heap_alloc.max()),
        "after_ops": int(tl.op[int(np.argmax(tl.heap_alloc))]) + 1}
    assert doc["peak"]["heap_sys"]["value"] == int(tl.heap_sys.max())
    assert doc["final"] == st.scalars()
    assert doc["fragmentation"]["span"] == frag.span
    assert doc["outputs"] == {"timeline": str(tmp_path / "tl.npz"),
                              "snapshot": str(tmp_path / "s.json")}
    assert goalloc.Timeline.load(tmp_path / "tl.npz").equals(tl)
    snap = goalloc.snapshot.load_json(tmp_path / "s.json")
    assert snap["stats"]["heap_inuse"] == st.heap_inuse


def test_diff_command(tmp_path, trace_files):
    trace, text, _ = trace_files
    trace[: len(trace) // 2].save(tmp_path / "half.trace")
    for name, path in (("full", text), ("half", tmp_path / "half.trace")):
        r = run("replay", str(path), "--backing", "virtual", "--procs", "2",
                "--snapshot", str(tmp_path / f"{name}.json"))
        assert r.returncode == 0, r.stderr
    a, b = str(tmp_path / "half.json"), str(tmp_path / "full.json")
    r = run("diff", a, b)
    assert r.returncode == 0, r.stderr
    expect = goalloc.snapshot.diff(goalloc.snapshot.load_json(a),
                                   goalloc.snapshot.load_json(b))
    assert expect
    assert r.stdout == f"{a} -> {b}\n{expect}\n"
    assert "heap_objects" in r.stdout and "size class" in r.stdout
    r = run("diff", a, b, "--json")
    assert json.loads(r.stdout) == json.loads(json.dumps(expect.to_dict()))
    assert run("diff", a, b, "--exit-code").returncode == 1
    same = run("diff", a, a, "--exit-code")
    assert same.returncode == 0 and "no difference" in same.stdout


def test_diff_errors(tmp_path, trace_files):
    _, text, _ = trace_files
    r = run("diff", str(tmp_path / "nope.json"), str(tmp_path / "x.json"))
    assert_one_line_error(r, 1, "No such file", "nope.json")
    r = run("diff", str(text), str(text))
    assert_one_line_error(r, 1)
    (tmp_path / "t.json").write_text('{"schema": "goalloc.timeline/1"}')
    r = run("diff", str(tmp_path / "t.json"), str(tmp_path / "t.json"))
    assert_one_line_error(r, 1, "not a goalloc snapshot")
    r = run("diff", str(tmp_path / "t.json"))
    assert_one_line_error(r, 2, "B")


def test_replay_in_gc_mode(tmp_path):
    """--collector gc replays the trace's frees as drops: the report
    counts the cycles Heap.replay runs on a GC-mode heap; --gogc off
    runs none; a bad --gogc is a usage error."""
    t = workloads.go_mix(150_000, live=3000, seed=1)
    path = tmp_path / "mix.gatrace"
    t.save(path)
    with goalloc.Heap(backing="virtual", collector="gc") as h:
        h.replay(t)
        cycles = h.stats().num_gc
    assert cycles > 3
    for extra, want in ((("--collector", "gc"), cycles),
                        (("--collector", "gc", "--gogc", "off"), 0),
                        ((), 0)):
        r = run("replay", str(path), "--backing", "virtual", "--json",
                *extra)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["final"]["num_gc"] == want, extra
    r = run("replay", str(path), "--gogc", "sometimes")
    assert r.returncode == 2 and "--gogc" in r.stderr
