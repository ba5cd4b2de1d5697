"""A fresh copy of the repository and a fresh venv, as a newcomer has them.

Shared by tests/test_readme.py (the README's quick start) and
tests/test_packaging.py (the sdist and the wheel).  The copy holds the
files git tracks, as they are in the working tree: what a clone of this
commit holds, plus uncommitted edits (a new file counts once it is `git
add`ed); no build products come along.  A venv is made without
--system-site-packages, like a user's, and its environment drops SCRUB,
so that nothing installed on the machine, such as an editable goalloc,
can stand in for the install under test.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What the caller's environment must not lend the newcomer's shell: a path
# to another goalloc, the ASan run's preloaded runtime, pip redirections.
SCRUB = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH",
         "PYTHONUSERBASE", "LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS",
         "MPLBACKEND", "VIRTUAL_ENV", "CONDA_PREFIX", "PIP_USER",
         "PIP_TARGET", "PIP_PREFIX", "PIP_REQUIRE_VIRTUALENV")


def tracked_files() -> list[str]:
    """The paths git tracks (relative, '/'-separated), that exist."""
    names = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"],
                           check=True, capture_output=True).stdout
    return [n for n in names.decode().split("\0")
            if n and os.path.lexists(ROOT / n)]  # deleted, not committed


def fresh_copy(dest: Path) -> None:
    """The files git tracks, from the working tree, into dest."""
    for name in tracked_files():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest / name, follow_symlinks=False)


def newcomer_env(venv: Path) -> dict[str, str]:
    """os.environ as `source VENV/bin/activate` leaves it, less SCRUB."""
    env = {k: v for k, v in os.environ.items()
           if k not in SCRUB and not k.startswith("GOALLOC_")}
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = str(venv / "bin") + os.pathsep + env.get("PATH", "")
    return env


def make_venv(venv: Path) -> dict[str, str]:
    """A fresh venv at venv; the environment that activates it."""
    env = newcomer_env(venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True,
                   env=env, capture_output=True)
    return env
