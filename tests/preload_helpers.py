"""Running programs on goalloc's malloc replacement and on glibc, for
tests/test_preload.py and tests/test_preload_programs.py."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from goalloc.preload import preload_env, preload_path

ROOT = Path(__file__).resolve().parent.parent
PRELOAD_SRC = ROOT / "tests" / "preload"

# The sanitizer run (tools/asan_pytest.sh) preloads ASan into pytest; the
# programs here get an environment without it.
_SANITIZER_VARS = ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS",
                   "GOALLOC_PROCS", "GOALLOC_STATS", "GOALLOC_STATS_PID")

linux_x86_64 = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.uname().machine != "x86_64",
    reason="the malloc replacement is built for Linux x86-64 (glibc)")


def plain_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SANITIZER_VARS}
    env.update(extra)
    return env


def goalloc_env(procs: int | None = None, stats: str | None = None,
                **extra: str) -> dict[str, str]:
    env = preload_env(plain_env(), procs=procs, stats=stats)
    assert env["LD_PRELOAD"] == preload_path()
    env.update(extra)
    return env


def run(cmd: list[str], *, on_goalloc: bool, timeout: float = 300,
        procs: int | None = None, check: bool = True,
        **kw: object) -> subprocess.CompletedProcess[bytes]:
    """cmd on goalloc (LD_PRELOAD) or on glibc, output captured."""
    env = kw.pop("env", None)
    if env is None:
        env = goalloc_env(procs=procs) if on_goalloc else plain_env()
    p = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout,
                       **kw)  # type: ignore[call-overload]
    if check and p.returncode != 0:
        where = "goalloc" if on_goalloc else "glibc"
        raise AssertionError(f"{cmd} on {where}: exit {p.returncode}\n"
                             f"{p.stderr.decode(errors='replace')[-3000:]}")
    return p


def need(program: str) -> str:
    """The path of a program the checks need: tools/test.sh installs
    them; without one the check fails (it is not skipped)."""
    path = shutil.which(program)
    assert path is not None, (f"{program} is not installed (tools/test.sh "
                              f"installs it with apt-get)")
    return path


def compile_c(src: Path, out: Path) -> Path:
    subprocess.run([need("gcc"), "-O2", "-g", "-std=c11", "-Wall",
                    "-Wextra", "-Werror", "-pthread", str(src), "-o",
                    str(out)], check=True, timeout=120)
    return out
