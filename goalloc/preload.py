"""Run a real program on goalloc: Go 1.13's allocator as its malloc.

The package builds ``goalloc/_gomalloc*.so`` (source: ``csrc/preload/``,
see ``csrc/preload/gomalloc.h``), a malloc replacement made of goalloc's C
core: every malloc, free, calloc, realloc, reallocarray, memalign,
posix_memalign, aligned_alloc, valloc, pvalloc and malloc_usable_size of
the program goes to one Go heap at Go's arena hints (0x00c000000000 up)::

    python -m goalloc run [--procs N] [--stats FILE] -- CMD ARGS...
    LD_PRELOAD=$(python -m goalloc preload-path) CMD ARGS...

Environment variables the library reads when the heap is made (at the
process's first allocation):

``GOALLOC_PROCS``      the number of Ps (default: the CPUs the process
                       may run on, as Go's GOMAXPROCS); a thread runs as
                       one P at a time.
``GOALLOC_STATS``      at exit, write the heap as a goalloc.snapshot/1
                       JSON document to this file (``%p`` in the name
                       becomes the pid); ``goalloc.snapshot.load_json``
                       reads it.  A file that cannot be written gives one
                       line on stderr and leaves the exit status alone.
``GOALLOC_STATS_PID``  only the process with this pid writes it (``run``
                       sets it to the command's, which it execs in its own
                       process; children of the command inherit the
                       variables but write nothing).

A process that ends without exit() (``_exit``, a signal, exec) writes no
snapshot.
"""
from __future__ import annotations

import glob
import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn

__all__ = ["preload_path", "preload_env", "exec_on_goalloc"]


def preload_path() -> str:
    """The absolute path of the malloc replacement (goalloc/_gomalloc*.so).

    Raises FileNotFoundError off Linux x86-64 (the library needs glibc and
    the os backing) or if the package was built without it."""
    if not sys.platform.startswith("linux"):
        raise FileNotFoundError("goalloc's malloc replacement works on Linux "
                                "(glibc) only")
    spec = importlib.util.find_spec("goalloc._gomalloc")
    if spec is not None and spec.origin and os.path.exists(spec.origin):
        return os.path.abspath(spec.origin)
    here = os.path.dirname(os.path.abspath(__file__))
    found = sorted(glob.glob(os.path.join(here, "_gomalloc*.so")))
    if found:
        return found[0]
    raise FileNotFoundError("goalloc's malloc replacement "
                            "(goalloc/_gomalloc*.so) is not built; reinstall "
                            "goalloc on Linux")


def preload_env(base: Mapping[str, str] | None = None, *,
                procs: int | None = None, stats: str | None = None,
                stats_pid: int | None = None) -> dict[str, str]:
    """base (default: os.environ) with goalloc's library first in
    LD_PRELOAD and its variables set (see the module doc).  stats is made
    absolute, so that the program's chdir does not move it."""
    env = dict(os.environ if base is None else base)
    lib = preload_path()
    others = [w for w in env.get("LD_PRELOAD", "").replace(":", " ").split()
              if w != lib]
    env["LD_PRELOAD"] = " ".join([lib, *others])
    for key in ("GOALLOC_PROCS", "GOALLOC_STATS", "GOALLOC_STATS_PID"):
        env.pop(key, None)
    if procs is not None:
        if procs < 1:
            raise ValueError(f"procs must be >= 1, not {procs}")
        env["GOALLOC_PROCS"] = str(procs)
    if stats is not None:
        env["GOALLOC_STATS"] = os.path.abspath(stats)
        if stats_pid is not None:
            env["GOALLOC_STATS_PID"] = str(stats_pid)
    return env


def exec_on_goalloc(cmd: Sequence[str], *, procs: int | None = None,
                    stats: str | None = None) -> NoReturn:
    """Replace this process with cmd running on goalloc: its pid, and so
    its exit status, are the command's own.  The snapshot (stats) is the
    command's (GOALLOC_STATS_PID is this pid).  Raises OSError when cmd
    cannot be executed (FileNotFoundError: not found)."""
    if not cmd:
        raise ValueError("no command to run")
    env = preload_env(procs=procs, stats=stats, stats_pid=os.getpid())
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(cmd[0], list(cmd), env)
