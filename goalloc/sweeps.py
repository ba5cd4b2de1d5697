"""Sweeps: replay every trace under every heap configuration, in parallel.

    >>> goalloc.sweep({"sort": "sort.gatrace"},
    ...               goalloc.sweeps.grid(collector="gc",
    ...                                   gogc=[50, 100, 200]))

returns one DataFrame (goalloc[pandas]) with a row per (trace,
configuration), traces outer, configurations inner, in the order given:

=====================  ====================================================
column                 meaning
=====================  ====================================================
trace                  the trace's label
config                 the configuration's label
one per config key     each key any configuration sets (``gogc``,
                       ``release``, ...); where a configuration leaves a
                       key out, the value the heap had (its default, or
                       procs from the trace), or <NA> for an option
                       whose default a heap does not report
compare()'s columns    the run's headline figures (goalloc.comparison:
                       peak and final heap_sys, heap_inuse, retained,
                       ..., the fragmentation metrics, gc_cycles)
replay_seconds         the replay's wall time in its worker
worker                 where it ran: "host:pid" of the worker process
error                  with errors="record": why the run failed (its
                       figures are then missing), else <NA>
=====================  ====================================================

A configuration is a dict of ``goalloc.Heap`` keyword arguments (goos,
goarch, race, backing, procs, scavenge_goal, sys_limit, binary_end,
seed, gogc, release, metadata_limit, collector, background_sweep,
background_scavenge) and
``platform``, "goos/goarch" in one string.  A configuration without
procs gets as many Ps as the trace uses.  A GC-mode configuration
(collector="gc") turns the trace's frees into drops (design §14.1), so
the same trace runs under both collectors.

The runs go to ``executor``: any ``concurrent.futures.Executor``, e.g.
Dask distributed's ``Client.get_executor()``; by default a process pool
of this machine's cores.  What travels to a worker is the trace's path
(a trace given by path, or one given as a Trace when the default pool
is used: it is written once to a temporary ``.gatrace`` file) or its
binary format's bytes (a Trace sent to another executor, whose workers
may not share a file system); never a pickled Python list.  A worker
returns one row of numbers.
"""
from __future__ import annotations

import concurrent.futures as cf
import itertools
import os
import socket
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, Literal, Union

import numpy as np

from ._core import GoallocError
from ._pandas import pandas
from .comparison import HEADLINE_COLUMNS, headline, typed_columns

if TYPE_CHECKING:
    import pandas as pd

    from .trace import Trace

__all__ = ["sweep", "grid", "SweepError", "CONFIG_KEYS"]

PathLike = Union[str, "os.PathLike[str]"]

# goalloc.Heap's keyword arguments
HEAP_OPTIONS = ("goos", "goarch", "race", "backing", "procs",
                "scavenge_goal", "sys_limit", "binary_end", "seed", "gogc",
                "release", "metadata_limit", "collector",
                "background_sweep", "background_scavenge")
CONFIG_KEYS = (*HEAP_OPTIONS, "platform")


class SweepError(GoallocError, RuntimeError):
    """A run of a sweep failed (errors="raise"): ``trace`` and ``config``
    are its labels, ``__cause__`` the worker's exception."""

    def __init__(self, message: str, trace: str, config: str) -> None:
        super().__init__(message)
        self.trace = trace
        self.config = config


def grid(**axes: Any) -> list[dict[str, Any]]:
    """Every combination of the values given for each key, as a list of
    configurations, the last key varying fastest:

        >>> grid(release=["go1.13.0", "go1.13.8"], procs=[1, 4])
        [{'release': 'go1.13.0', 'procs': 1}, {'release': 'go1.13.0',
        'procs': 4}, {'release': 'go1.13.8', 'procs': 1}, ...]

    A value that is a str or not a list, tuple or range is one value."""
    values = [v if isinstance(v, (list, tuple, range)) else [v]
              for v in axes.values()]
    return [dict(zip(axes, combo, strict=True))
            for combo in itertools.product(*values)]


def sweep(traces: Any, configs: Any,
          executor: cf.Executor | None = None, *,
          sample_every: int | None = None,
          progress: bool | None = None,
          errors: Literal["raise", "record"] = "raise",
          max_workers: int | None = None) -> pd.DataFrame:
    """Replay every trace under every configuration on a fresh heap each
    and return one DataFrame of the runs (see the module doc).

    traces: {label: Trace or path} or a list of them (labels: a path's
    file name without its extension, ``trace<i>`` for a Trace); a path
    is a goalloc trace file (text or binary) that the workers can read.
    configs: {label: config} or a list of configs (labels: the config's
    ``key=value`` pairs), or one config; a config is a dict (see the
    module doc).  executor: where the runs go (None: a process pool of
    max_workers processes, default os.cpu_count(), shut down at the
    end).  sample_every: as Heap.replay (default: about 1000 samples per
    run; the peaks are over the samples).  progress: a tqdm bar of runs
    done (tqdm.auto: a widget in a notebook); None: when stderr is a
    terminal or in a notebook, if tqdm is installed.  errors: "raise"
    (the first failed run cancels the rest and raises SweepError from
    the worker's exception) or "record" (the run's row has the message
    in ``error``).

    Before anything runs: TypeError for a config key that is not a Heap
    option or a trace that is neither a Trace nor a path, ValueError
    for no traces or no configs, and the Heap's own exception for a
    config it refuses.  Needs pandas."""
    pd_ = pandas("goalloc.sweep")
    if errors not in ("raise", "record"):
        raise ValueError(f"errors must be 'raise' or 'record', not "
                         f"{errors!r}")
    if sample_every is not None and (isinstance(sample_every, bool) or
                                     not isinstance(sample_every, int) or
                                     sample_every < 0):
        raise ValueError(f"sample_every must be an int >= 0 or None, not "
                         f"{sample_every!r}")
    trace_items = _labelled_traces(traces)
    config_items = _labelled_configs(configs)
    for label, config in config_items:
        _check_config(label, config)
    runs = [(t, c) for t in range(len(trace_items))
            for c in range(len(config_items))]
    rows: list[dict[str, Any] | None] = [None] * len(runs)
    with ExitStack() as stack:
        if executor is None:
            n = max_workers or os.cpu_count() or 1
            executor = stack.enter_context(
                cf.ProcessPoolExecutor(max_workers=min(n, len(runs))))
            tmpdir = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="goalloc-sweep-"))
        else:
            tmpdir = None
        sources = [_source(trace, i, tmpdir)
                   for i, (_, trace) in enumerate(trace_items)]
        futures = {
            executor.submit(replay_run, sources[t], config_items[c][1],
                            sample_every): k
            for k, (t, c) in enumerate(runs)}
        bar = _bar(progress)
        stack.callback(bar.close)
        try:
            for done, fut in enumerate(cf.as_completed(futures), start=1):
                k = futures[fut]
                t, c = runs[k]
                try:
                    rows[k] = fut.result()
                except Exception as e:
                    if errors == "raise":
                        raise SweepError(
                            f"sweep: trace {trace_items[t][0]!r} under "
                            f"config {config_items[c][0]!r}: "
                            f"{type(e).__name__}: {e}",
                            trace_items[t][0], config_items[c][0]) from e
                    rows[k] = {"error": f"{type(e).__name__}: {e}"}
                bar(done, len(runs))
        finally:
            for fut in futures:
                fut.cancel()
    return _frame(pd_, trace_items, config_items, runs, rows,
                  errors == "record")


# ---- the worker's side ----------------------------------------------------

def replay_run(source: str | bytes, config: Mapping[str, Any],
               sample_every: int | None) -> dict[str, Any]:
    """One run, in a worker: load the trace (a path, or the binary
    format's bytes), replay it on a fresh heap made with config, and
    return its headline figures, ``replay_seconds`` and ``effective``
    (the heap's options as it had them)."""
    from .heap import Heap
    from .trace import ALLOC, Trace

    if isinstance(source, (bytes, bytearray, memoryview)):
        trace = Trace.from_bytes(source)
    else:
        trace = Trace.load(source)
    n = len(trace)
    kw = _heap_kwargs(config)
    if "procs" not in kw:
        allocs = trace.p[trace.kind == ALLOC]
        kw["procs"] = int(allocs.max()) + 1 if len(allocs) else 1
    if trace.nids > max(4 * n, 1 << 24):
        trace, _ = trace.renumbered()  # sparse ids: the replay's tables
    every = max(1, n // 1000) if sample_every is None else sample_every
    with Heap(**kw) as h:
        effective = _effective(h)
        t0 = time.perf_counter()
        tl = h.replay(trace, sample_every=every)
        seconds = time.perf_counter() - t0
    row = headline(tl)
    row["replay_seconds"] = seconds
    row["worker"] = f"{socket.gethostname()}:{os.getpid()}"
    row["effective"] = effective
    return row


def _heap_kwargs(config: Mapping[str, Any]) -> dict[str, Any]:
    kw = {k: v for k, v in config.items() if k != "platform"}
    if "platform" in config:
        kw["goos"], kw["goarch"] = str(config["platform"]).split("/")
    return kw


def _effective(h: Any) -> dict[str, Any]:
    """The options a config may leave out, as the heap has them."""
    info = h.info()
    gc = h.gc_state()
    return {"goos": info.goos, "goarch": info.goarch, "race": info.race,
            "platform": f"{info.goos}/{info.goarch}",
            "backing": info.backing, "procs": info.procs,
            "release": info.release,
            "collector": "gc" if gc.enabled else "free",
            "gogc": "off" if gc.gogc < 0 else gc.gogc,
            "background_sweep": (None if gc.background_sweep < 0
                                 else gc.background_sweep)}


# ---- the caller's side ----------------------------------------------------

def _labelled_traces(traces: Any) -> list[tuple[str, Any]]:
    from .trace import Trace

    if isinstance(traces, (Trace, str, os.PathLike)):
        traces = [traces]
    if isinstance(traces, Mapping):
        items = [(str(k), v) for k, v in traces.items()]
    elif isinstance(traces, Sequence):
        items = [(_trace_label(v, i), v) for i, v in enumerate(traces)]
    else:
        raise TypeError(f"sweep: traces is a mapping {{label: trace}} or a "
                        f"list of Traces and paths, not "
                        f"{type(traces).__name__}")
    if not items:
        raise ValueError("sweep: no traces given")
    for label, v in items:
        if not isinstance(v, (Trace, str, os.PathLike)):
            raise TypeError(f"sweep: trace {label!r} is a goalloc.Trace or "
                            f"a path, not {type(v).__name__}")
    return _unique(items)


def _trace_label(trace: Any, i: int) -> str:
    if isinstance(trace, (str, os.PathLike)):
        base = os.path.basename(os.fspath(trace))
        return os.path.splitext(base)[0] or base
    return f"trace{i}"


def _labelled_configs(configs: Any) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(configs, Mapping) and all(
            isinstance(v, Mapping) for v in configs.values()) and configs:
        items = [(str(k), dict(v)) for k, v in configs.items()]
    elif isinstance(configs, Mapping):
        items = [(_config_label(configs), dict(configs))]
    elif isinstance(configs, Sequence) and not isinstance(configs, str):
        items = []
        for c in configs:
            if not isinstance(c, Mapping):
                raise TypeError(f"sweep: a config is a dict of Heap "
                                f"options, not {type(c).__name__}")
            items.append((_config_label(c), dict(c)))
    else:
        raise TypeError(f"sweep: configs is a list of dicts of Heap "
                        f"options or a mapping {{label: dict}}, not "
                        f"{type(configs).__name__}")
    if not items:
        raise ValueError("sweep: no configs given")
    return _unique(items)


def _config_label(config: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in config.items()) or "default"


def _unique(items: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Labels made unique by appending #2, #3, ... to repeats."""
    seen: dict[str, int] = {}
    out = []
    for label, v in items:
        n = seen.get(label, 0) + 1
        seen[label] = n
        out.append((label if n == 1 else f"{label}#{n}", v))
    return out


def _check_config(label: str, config: Mapping[str, Any]) -> None:
    """TypeError for a key that is no Heap option; the Heap's own error
    for values it refuses (a heap is made and closed: microseconds)."""
    from .heap import Heap

    bad = [k for k in config if k not in CONFIG_KEYS]
    if bad:
        raise TypeError(f"sweep: config {label!r}: {', '.join(map(repr, bad))}"
                        f" is not a goalloc.Heap option (options: "
                        f"{', '.join(CONFIG_KEYS)})")
    if "platform" in config:
        plat = config["platform"]
        if not isinstance(plat, str) or plat.count("/") != 1:
            raise ValueError(f"sweep: config {label!r}: platform is "
                             f"'goos/goarch', not {plat!r}")
        if "goos" in config or "goarch" in config:
            raise TypeError(f"sweep: config {label!r}: platform and "
                            f"goos/goarch both given")
    try:
        Heap(**_heap_kwargs(config)).close()
    except (TypeError, ValueError) as e:
        raise type(e)(f"sweep: config {label!r}: {e}") from None


def _source(trace: Any, i: int, tmpdir: str | None) -> str | bytes:
    """What travels to the worker: a path (absolute: a worker may run
    elsewhere) or the binary format's bytes."""
    if isinstance(trace, (str, os.PathLike)):
        return os.path.abspath(os.fspath(trace))
    t: Trace = trace
    if tmpdir is None:
        return t.to_bytes()
    path = os.path.join(tmpdir, f"trace{i}.gatrace")
    t.write_binary(path)
    return path


class _NoBar:
    def __call__(self, done: int, total: int) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(progress: bool | None) -> Any:
    from ._progress import ReplayProgress

    if progress is False:
        return _NoBar()
    try:
        return ReplayProgress("sweep", enabled=progress, auto=True,
                              what="sweep(progress=True)", unit="runs")
    except ImportError:
        if progress:
            raise
        return _NoBar()


def _frame(pd_: Any, trace_items: list[tuple[str, Any]],
           config_items: list[tuple[str, dict[str, Any]]],
           runs: list[tuple[int, int]],
           rows: list[dict[str, Any] | None],
           with_error: bool) -> pd.DataFrame:
    keys: list[str] = []
    for _, config in config_items:
        keys += [k for k in config if k not in keys]
    done = [r or {} for r in rows]
    data: dict[str, Any] = {
        "trace": [trace_items[t][0] for t, _ in runs],
        "config": [config_items[c][0] for _, c in runs]}
    for key in keys:
        values = []
        for (_, c), r in zip(runs, done, strict=True):
            config = config_items[c][1]
            v = config[key] if key in config else \
                r.get("effective", {}).get(key)
            values.append(v)
        data[key] = pd_.Series(values, dtype=_dtype(values))
    data.update(typed_columns(pd_, done, HEADLINE_COLUMNS))
    data["replay_seconds"] = np.array(
        [r.get("replay_seconds", np.nan) for r in done], dtype=np.float64)
    data["worker"] = pd_.array([r.get("worker") for r in done],
                               dtype="string")
    if with_error:
        data["error"] = pd_.array([r.get("error") for r in done],
                                  dtype="string")
    df: pd.DataFrame = pd_.DataFrame(data)
    return df


def _dtype(values: list[Any]) -> str:
    """Int64 for a column of ints (and missing values), object
    otherwise (gogc mixes ints and "off")."""
    ints = [v for v in values if v is not None]
    if ints and all(isinstance(v, int) and not isinstance(v, bool)
                    for v in ints):
        return "Int64"
    return "object"

