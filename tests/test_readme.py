"""The README's quick start, run literally, as a newcomer would run it.

The README's first command (install, then the guided tour) is read from
README.md and run with bash, unchanged, in the root of a fresh copy of the
repository and a fresh virtual environment, so that a change to either the
README or the packaging is tested.  (Issue 11: `pip install '.[plot]' &&
python -m goalloc tour` failed with "No module named 'goalloc._core'",
because Python imported the unbuilt source folder goalloc/ from the current
directory instead of the installed package.)

The copy and the venv are tests/freshenv.py's: the files git tracks, and a
venv without --system-site-packages, like a user's: pip takes numpy and
matplotlib from the package index (its wheel cache makes later runs quick;
about 15 s here for the whole install).

The README's second command, `bash tools/test.sh`, is the suite that runs
this file (CI's .ci/run), so it cannot run from in here; the test checks
that .ci/run runs exactly it.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from freshenv import ROOT, fresh_copy, make_venv, newcomer_env


def quick_start_blocks(readme: str) -> list[str]:
    """The fenced code blocks of the README's "## Quick start" section."""
    m = re.search(r"^## Quick start\n(.*?)(?=^## )", readme, re.M | re.S)
    assert m, "README.md has no '## Quick start' section"
    return re.findall(r"^```[^\n]*\n(.*?)^```", m.group(1), re.M | re.S)


def readme_blocks() -> list[str]:
    return quick_start_blocks((ROOT / "README.md").read_text())


class Newcomer:
    def __init__(self, clone: Path, venv: Path, command: str,
                 run: subprocess.CompletedProcess) -> None:
        self.clone, self.venv = clone, venv
        self.command, self.run = command, run
        self.env = newcomer_env(venv)

    def sh(self, command: str, cwd: Path) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", command], cwd=cwd, env=self.env,
                              capture_output=True, text=True, timeout=300,
                              stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def newcomer(tmp_path_factory) -> Newcomer:
    """A fresh copy and venv in which the README's first command ran."""
    tmp = tmp_path_factory.mktemp("newcomer")
    clone, venv = tmp / "goalloc", tmp / "venv"
    clone.mkdir()
    fresh_copy(clone)
    env = make_venv(venv)
    command = readme_blocks()[0].strip()
    run = subprocess.run(["bash", "-c", command], cwd=clone, env=env,
                         capture_output=True, text=True, timeout=900,
                         stdin=subprocess.DEVNULL)
    return Newcomer(clone, venv, command, run)


def test_readme_first_command_installs_and_tours(newcomer):
    """The README's first command, exactly as written, in a fresh clone's
    root and a fresh venv: it exits 0 and the tour prints its eleven steps
    (the last, one GC cycle) and the paths of the PNG files it wrote."""
    assert "\n" not in newcomer.command, "the first command is one line"
    assert newcomer.command.startswith("pip install "), newcomer.command
    r = newcomer.run
    assert r.returncode == 0, (newcomer.command, r.stdout[-3000:],
                               r.stderr[-3000:])
    assert "Traceback" not in r.stdout + r.stderr
    out = r.stdout
    for step in ("1. mallocinit", "7. a workload", "8. MemStats",
                 "9. fragmentation", "10. plots", "11. one GC cycle"):
        assert step in out, step
    assert "verify(): every invariant holds." in out
    m = re.search(r"^ *(\d+) PNG files in [\d.]+ s:\n((?: +\S+\.png\n)+)",
                  out, re.M)
    assert m, out[-2000:]
    paths = m.group(2).split()
    assert len(paths) == int(m.group(1)) >= 6
    for p in paths:
        data = (newcomer.clone / p).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000, p


def test_the_tour_ran_the_installed_package(newcomer):
    """The command ran goalloc from the venv, not from the copy's source
    folder (where pip builds nothing: the copy stays free of a built
    extension)."""
    r = newcomer.sh("python -c 'import goalloc; print(goalloc.__file__)'",
                    cwd=newcomer.clone.parent)
    assert r.returncode == 0, r.stderr
    site = Path(r.stdout.strip()).resolve()
    assert site.is_relative_to(newcomer.venv.resolve()), site
    assert not list((newcomer.clone / "goalloc").glob("_core*.so"))


def test_installed_command_names_itself(newcomer):
    r = newcomer.sh("goalloc --help", cwd=newcomer.clone)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: goalloc "), r.stdout[:200]
    for cmd in ("tour", "replay", "capture", "demo"):
        assert cmd in r.stdout


def test_python_m_goalloc_in_the_checkout_root_explains(newcomer):
    """`python -m goalloc` in the root of the checkout imports the source
    folder, which has no built extension: a one-line explanation naming
    the way out, not a ModuleNotFoundError traceback."""
    r = newcomer.sh("python -m goalloc tour", cwd=newcomer.clone)
    assert r.returncode == 1
    assert "Traceback" not in r.stdout + r.stderr
    assert r.stdout == ""
    lines = r.stderr.strip().split("\n")
    assert len(lines) == 1, r.stderr
    for words in ("goalloc._core", "source folder",
                  "installed command 'goalloc'", "pip install -e ."):
        assert words in lines[0], (words, lines[0])
    # and from any other directory it is the installed goalloc
    r = newcomer.sh("python -m goalloc demo --backing virtual",
                    cwd=newcomer.clone.parent)
    assert r.returncode == 0, r.stderr
    assert "every invariant holds" in r.stdout


def test_second_command_is_what_ci_runs():
    """`bash tools/test.sh` runs this very suite (and pip installs into the
    caller's environment), so it cannot run from here; .ci/run, which CI
    runs, must be exactly it."""
    blocks = readme_blocks()
    assert len(blocks) == 2, blocks
    assert blocks[1].strip() == "bash tools/test.sh"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert "bash tools/test.sh" in [line.strip() for line in ci]


def test_goalloc_run_from_the_fresh_install(newcomer):
    """The README's "Running a program on goalloc": `python -m goalloc run`
    works from the fresh install, and its --stats file loads."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the malloc replacement is Linux-only")
    r = newcomer.sh("python -m goalloc run --stats heap.json -- python3 -c "
                    "'print(sum(len(str(i)) for i in range(10**5)))'",
                    cwd=newcomer.clone.parent)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "488890\n" and r.stderr == ""
    r = newcomer.sh("python -c 'from goalloc import snapshot; "
                    "d = snapshot.load_json(\"heap.json\"); "
                    "print(d[\"arenas\"][0][\"base\"] == 0xc000000000, "
                    "d[\"stats\"][\"mallocs\"] > 0)'",
                    cwd=newcomer.clone.parent)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "True True\n"
