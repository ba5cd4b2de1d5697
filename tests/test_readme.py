"""The README's quick start, run literally, as a newcomer would run it.

The README's first command (install, then the guided tour) is read from
README.md and run with bash, unchanged, in the root of a fresh copy of the
repository and a fresh virtual environment, so that a change to either the
README or the packaging is tested.  (Issue 11: `pip install '.[plot]' &&
python -m goalloc tour` failed with "No module named 'goalloc._core'",
because Python imported the unbuilt source folder goalloc/ from the current
directory instead of the installed package.)

The copy holds the files git tracks, as they are in the working tree: what
a clone of this commit holds, plus uncommitted edits (a new file counts once
it is `git add`ed); no build products come along.  The venv is made without
--system-site-packages, like a user's: pip takes numpy and matplotlib from
the package index (its wheel cache makes later runs quick; about 15 s here
for the whole install), and nothing installed on the machine, such as an
editable goalloc, can stand in for the install under test.

The README's second command, `bash tools/test.sh`, is the suite that runs
this file (CI's .ci/run), so it cannot run from in here; the test checks
that .ci/run runs exactly it.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What the caller's environment must not lend the newcomer's shell: a path
# to another goalloc, the ASan run's preloaded runtime, pip redirections.
SCRUB = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH",
         "PYTHONUSERBASE", "LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS",
         "MPLBACKEND", "VIRTUAL_ENV", "CONDA_PREFIX", "PIP_USER",
         "PIP_TARGET", "PIP_PREFIX", "PIP_REQUIRE_VIRTUALENV")


def quick_start_blocks(readme: str) -> list[str]:
    """The fenced code blocks of the README's "## Quick start" section."""
    m = re.search(r"^## Quick start\n(.*?)(?=^## )", readme, re.M | re.S)
    assert m, "README.md has no '## Quick start' section"
    return re.findall(r"^```[^\n]*\n(.*?)^```", m.group(1), re.M | re.S)


def readme_blocks() -> list[str]:
    return quick_start_blocks((ROOT / "README.md").read_text())


def fresh_copy(dest: Path) -> None:
    """The files git tracks, from the working tree, into dest."""
    names = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"],
                           check=True, capture_output=True).stdout
    for name in names.decode().split("\0"):
        src = ROOT / name
        if not name or not os.path.lexists(src):  # deleted, not committed
            continue
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / name, follow_symlinks=False)


def newcomer_env(venv: Path) -> dict[str, str]:
    """os.environ as `source VENV/bin/activate` leaves it, less SCRUB."""
    env = {k: v for k, v in os.environ.items()
           if k not in SCRUB and not k.startswith("GOALLOC_")}
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = str(venv / "bin") + os.pathsep + env.get("PATH", "")
    return env


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
    env = newcomer_env(venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True,
                   env=env, capture_output=True)
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
