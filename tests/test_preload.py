"""goalloc's malloc replacement (goalloc.preload, csrc/preload/): the C
contract against glibc's, bad pointers, threads and fork, the exit
snapshot and the command line.  Real programs: test_preload_programs.py."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import goalloc
from goalloc import snapshot
from goalloc.preload import preload_env, preload_path
from helpers import ASAN
from preload_helpers import (
    PRELOAD_SRC,
    ROOT,
    compile_c,
    goalloc_env,
    linux_x86_64,
    plain_env,
    run,
)

# The sanitizer run's pytest has ASan preloaded and an ASan-built _core,
# which neither the library nor a clean subprocess can load alongside;
# this file tests the plain library, which the plain run has tested.
pytestmark = [linux_x86_64, pytest.mark.skipif(
    ASAN, reason="tests the plain library; the plain pytest run has run it")]

GO_HEAP = 0x00C000000000


@pytest.fixture(scope="module")
def bins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("preload-bin")
    return {name: compile_c(PRELOAD_SRC / f"{name}.c", d / name)
            for name in ("contract", "mtalloc")}


# the package under test, from any directory
PACKAGE_ROOT = str(Path(goalloc.__file__).resolve().parent.parent)


def goalloc_cli(*args: str, env: dict[str, str] | None = None,
                cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = plain_env() if env is None else env
    env["PYTHONPATH"] = PACKAGE_ROOT
    return subprocess.run([sys.executable, "-m", "goalloc", *args], env=env,
                          capture_output=True, text=True, timeout=300,
                          cwd=ROOT if cwd is None else cwd)


def test_preload_path_is_the_built_library() -> None:
    p = goalloc_cli("preload-path")
    assert p.returncode == 0, p.stderr
    path = p.stdout.strip()
    assert path == preload_path() and os.path.isfile(path)
    assert os.path.basename(path).startswith("_gomalloc")
    syms = subprocess.run(["nm", "-D", "--defined-only", path],
                          capture_output=True, text=True, check=True).stdout
    exported = {line.split()[-1] for line in syms.splitlines()}
    for name in ("malloc", "free", "calloc", "realloc", "reallocarray",
                 "memalign", "posix_memalign", "aligned_alloc", "valloc",
                 "pvalloc", "malloc_usable_size", "malloc_trim", "mallopt"):
        assert name in exported, name
    # the core stays hidden: no ga_* symbol clashes with a program's
    assert not [s for s in exported if s.startswith("ga_")]


def test_run_puts_the_program_on_the_go_heap(bins: dict[str, Path]) -> None:
    p = goalloc_cli("run", "--", str(bins["contract"]), "where")
    assert p.returncode == 0, p.stderr
    addr = int(p.stdout, 16)
    assert GO_HEAP <= addr < GO_HEAP + (64 << 20)   # the first arena
    glibc = run([str(bins["contract"]), "where"], on_goalloc=False)
    assert not GO_HEAP <= int(glibc.stdout, 16) < GO_HEAP + (64 << 20)


def test_run_command_line_errors() -> None:
    p = goalloc_cli("run")
    assert p.returncode == 2 and "no command" in p.stderr
    p = goalloc_cli("run", "--", "goalloc-no-such-command")
    assert p.returncode == 127
    assert p.stderr.strip() == ("goalloc: error: goalloc-no-such-command: "
                                "command not found")
    p = goalloc_cli("run", "--procs", "0", "--", "true")
    assert p.returncode == 2 and "--procs" in p.stderr


def test_run_keeps_the_exit_status_and_arguments() -> None:
    p = goalloc_cli("run", "--procs", "3", "--", "sh", "-c",
                    'echo "$GOALLOC_PROCS:$1"; exit 7', "sh", "a b")
    assert p.returncode == 7
    assert p.stdout == "3:a b\n"


def test_contract_matches_glibc(bins: dict[str, Path]) -> None:
    """Every edge case of the C interface prints the same under goalloc
    as under the host glibc: NULL and errno cases, realloc(p, 0),
    alignment, usable sizes, calloc's zeroes, posix_memalign's codes."""
    glibc = run([str(bins["contract"])], on_goalloc=False).stdout.decode()
    ours = run([str(bins["contract"])], on_goalloc=True).stdout.decode()
    assert "failures: 0" in glibc
    assert ours == glibc


@pytest.mark.parametrize("procs", [1, 2, 5])
def test_contract_with_any_number_of_ps(bins: dict[str, Path],
                                        procs: int) -> None:
    ours = run([str(bins["contract"])], on_goalloc=True, procs=procs)
    assert b"failures: 0" in ours.stdout


MISUSE = {
    "double": "free(): double free detected",
    "interior": "free(): invalid pointer (not the start of a live object)",
    "foreign": "free(): invalid pointer (not from goalloc's heap)",
    "realloc-foreign": "realloc(): invalid pointer (not from goalloc's heap)",
}


@pytest.mark.parametrize("how", sorted(MISUSE))
def test_bad_pointer_aborts_naming_it(bins: dict[str, Path], how: str) -> None:
    """As glibc: a message on stderr, then abort(); goalloc's names the
    address."""
    glibc = run([str(bins["contract"]), how], on_goalloc=False, check=False)
    assert glibc.returncode == -signal.SIGABRT
    ours = run([str(bins["contract"]), how], on_goalloc=True, check=False)
    assert ours.returncode == -signal.SIGABRT
    addr = int(ours.stdout.decode().split()[0], 16)
    assert b"survived" not in ours.stdout
    assert ours.stderr.decode() == f"goalloc: {MISUSE[how]} 0x{addr:016x}\n"


@pytest.mark.parametrize("threads,procs", [(4, 2), (8, 1), (3, 8)])
def test_threads_and_fork(bins: dict[str, Path], threads: int,
                          procs: int) -> None:
    """Blocks allocated on one thread and freed on another, more threads
    than Ps (or fewer), and a fork while the threads allocate: the child
    allocates on its main thread and on a new one."""
    cmd = [str(bins["mtalloc"]), str(threads), "20000", "fork"]
    glibc = run(cmd, on_goalloc=False).stdout
    ours = run(cmd, on_goalloc=True, procs=procs).stdout
    assert b" 0 errors" in glibc and b"exit status 0" in glibc
    assert ours == glibc


PY_HEAP = ("import json; d = {str(i): [i] * (i % 7) for i in range(50000)}; "
           "print(len(json.dumps(d)))")


def test_stats_snapshot_loads(tmp_path: Path) -> None:
    """--stats: the command's final heap as a goalloc.snapshot/1 file that
    the loader validates, with the program's objects in it."""
    out = tmp_path / "heap.json"
    p = goalloc_cli("run", "--procs", "3", "--stats", str(out), "--",
                    "env", "PYTHONMALLOC=malloc", "/usr/bin/python3", "-c",
                    PY_HEAP)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    doc = snapshot.load_json(out)
    assert doc["info"]["backing"] == "os" and doc["info"]["procs"] == 3
    assert doc["arenas"][0]["base"] == GO_HEAP
    st = doc["stats"]
    assert st["mallocs"] > 50000 and st["mallocs"] >= st["frees"]
    assert st["heap_objects"] == st["mallocs"] - st["frees"]
    assert st["heap_alloc"] > 0
    assert any(s["state"] == "inuse" for s in doc["spans"])
    assert sum(b["mallocs"] for b in st["by_size"]) > 0
    frag = doc["fragmentation"]
    assert frag["heap_alloc"] == st["heap_alloc"]
    assert 0 <= frag["internal"] < 1
    # the document is exactly what the schema says, nothing is NaN
    json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(c))


# objects kept at exit: a daemon thread's frame, which CPython does not
# free when it finalizes
KEEP_AT_EXIT = ("import threading, time\n"
                "def keep(ready):\n"
                "    rows = [{'k': 'x' * (i % 300), 'v': [i] * (i % 9)}\n"
                "            for i in range(20000)]\n"
                "    big = [bytearray(40000) for _ in range(3)]\n"
                "    ready.set()\n"
                "    time.sleep(3600)\n"
                "ready = threading.Event()\n"
                "threading.Thread(target=keep, args=(ready,),"
                " daemon=True).start()\n"
                "ready.wait()\n")


def test_stats_snapshot_draws_and_adds_up(tmp_path: Path) -> None:
    """The C writer's document has what the plots need: live_by_class
    (what the objects asked for is the fragmentation's requested_live),
    and spans whose page map counts what MemStats counts; every heap plot
    draws from it."""
    plot = pytest.importorskip("goalloc.plot")
    pytest.importorskip("matplotlib")
    from goalloc.arrays import PAGE_FREE, PAGE_RELEASED
    out = tmp_path / "heap.json"
    p = goalloc_cli("run", "--stats", str(out), "--", "env",
                    "PYTHONMALLOC=malloc", "/usr/bin/python3", "-c",
                    KEEP_AT_EXIT)
    assert p.returncode == 0, p.stderr
    doc = snapshot.load_json(out)
    st, frag = doc["stats"], doc["fragmentation"]
    rows = doc["live_by_class"]
    assert [r["sizeclass"] for r in rows] == sorted(
        {r["sizeclass"] for r in rows})
    assert sum(r["requested"] for r in rows) == frag["requested_live"]
    assert sum(r["objects"] for r in rows) > 20000
    assert all(r["bytes"] >= r["requested"] for r in rows)
    large = next(r for r in rows if r["sizeclass"] == 0)
    assert large["objects"] >= 3 and large["requested"] >= 3 * 40000
    pages = plot._Source(doc).page_array()
    size = doc["info"]["page_size"]
    assert int((pages >= 0).sum()) * size == st["heap_inuse"]
    assert int((pages == PAGE_FREE).sum()) * size == \
        st["heap_idle"] - st["heap_released"]
    assert int((pages == PAGE_RELEASED).sum()) * size == st["heap_released"]
    paths = plot.save_all(doc, outdir=str(tmp_path))
    assert len(paths) == 4 and all(os.path.getsize(x) > 1000 for x in paths)


TWO_CHILDREN = ("import subprocess; subprocess.run(['cat', '/dev/null']); "
                "subprocess.run(['cat', '/dev/null'])")


def test_stats_from_the_environment_per_process(tmp_path: Path) -> None:
    """GOALLOC_STATS by hand: %p is the pid, so each process (python and
    the two programs it starts) writes its own; GOALLOC_STATS_PID keeps
    all but one process from writing."""
    pattern = str(tmp_path / "snap.%p.json")
    env = goalloc_env(GOALLOC_STATS=pattern)
    subprocess.run(["/usr/bin/python3", "-c", TWO_CHILDREN], env=env,
                   check=True, timeout=60)
    files = sorted(tmp_path.glob("snap.*.json"))
    assert len(files) == 3, files
    for f in files:
        snapshot.load_json(f)
    other = tmp_path / "other"
    other.mkdir()
    env = goalloc_env(GOALLOC_STATS=str(other / "s.%p"),
                      GOALLOC_STATS_PID="1")
    subprocess.run(["/usr/bin/python3", "-c", TWO_CHILDREN], env=env,
                   check=True, timeout=60)
    assert list(other.iterdir()) == []


@pytest.mark.parametrize("status", [0, 3])
def test_stats_bad_path_one_line_same_status(tmp_path: Path,
                                             status: int) -> None:
    """Said once, at start-up, even by a shell (whose exit is _exit)."""
    bad = tmp_path / "missing-dir" / "heap.json"
    p = goalloc_cli("run", "--stats", str(bad), "--", "sh", "-c",
                    f"exit {status}")
    assert p.returncode == status
    assert p.stderr == (f"goalloc: cannot write the heap snapshot to {bad}: "
                        f"No such file or directory\n")


def test_stats_path_is_absolute(tmp_path: Path) -> None:
    """A relative --stats path is the caller's directory's, whatever
    directory the program moves to."""
    sub = tmp_path / "elsewhere"
    sub.mkdir()
    p = goalloc_cli("run", "--stats", "rel.json", "--", "/usr/bin/python3",
                    "-c", f"import os; os.chdir({str(sub)!r})",
                    cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    snapshot.load_json(tmp_path / "rel.json")
    assert not (sub / "rel.json").exists()


def test_preload_env_keeps_other_preloads() -> None:
    env = preload_env({"LD_PRELOAD": "/x/a.so:/x/b.so", "GOALLOC_PROCS": "9"})
    assert env["LD_PRELOAD"] == f"{preload_path()} /x/a.so /x/b.so"
    assert "GOALLOC_PROCS" not in env
    with pytest.raises(ValueError):
        preload_env({}, procs=0)
