"""goalloc.sweep: every trace under every configuration, in parallel, one
DataFrame; Traces travel as goalloc's binary format or by path; a real
Dask LocalCluster of two worker processes runs a sweep."""
from __future__ import annotations

import concurrent.futures as cf
import os
import pickle

import numpy as np
import pytest

import goalloc
from goalloc import SweepError, Trace, TraceError, workloads
from goalloc.comparison import HEADLINE_COLUMNS, headline
from goalloc.sweeps import CONFIG_KEYS, grid

pd = pytest.importorskip("pandas")

CONFIGS = [{"backing": "virtual"},
           {"backing": "virtual", "collector": "gc", "gogc": 50},
           {"backing": "virtual", "release": "go1.13.0", "procs": 3}]


@pytest.fixture(scope="module")
def traces():
    return {"mix": workloads.go_mix(30_000, live=800, seed=5, procs=2),
            "pc": workloads.producer_consumer(20_000, seed=6)}


def direct(trace: Trace, config: dict, every: int) -> dict:
    """The run replayed here, as the sweep's worker should replay it."""
    kw = dict(config)
    kw.setdefault("procs", int(trace.p.max()) + 1)
    with goalloc.Heap(**kw) as h:
        return headline(h.replay(trace, sample_every=every))


def assert_rows_match(df, traces, configs, every):
    assert list(df["trace"]) == [t for t in traces for _ in configs]
    for _, row in df.iterrows():
        c = list(df["config"].unique()).index(row["config"])
        want = direct(traces[row["trace"]], configs[c], every)
        for col in HEADLINE_COLUMNS:
            got = row[col]
            if isinstance(want.get(col), float) and np.isnan(want[col]):
                assert np.isnan(got), col
            elif col in want:
                assert got == want[col], (row["trace"], row["config"], col)


class Recording(cf.ThreadPoolExecutor):
    """An executor that keeps what each submit was given."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.calls: list[tuple] = []

    def submit(self, fn, /, *args, **kwargs):
        self.calls.append(args)
        return super().submit(fn, *args, **kwargs)


# ---- a Trace pickles as its binary format -------------------------------

def test_trace_pickles_as_its_binary_format():
    t = workloads.go_mix(5000, live=100, seed=1, procs=3)
    data = pickle.dumps(t, protocol=pickle.HIGHEST_PROTOCOL)
    raw = t.to_bytes()
    assert raw[:8] == b"GATRACE1" and len(raw) == 16 + 20 * len(t)
    assert raw in data  # the binary format, whole, inside the pickle
    assert len(data) < len(raw) + 200
    back = pickle.loads(data)
    assert back == t and type(back) is Trace
    assert Trace.from_bytes(raw) == t


def test_a_corrupt_pickled_trace_is_a_trace_error():
    t = Trace.from_ops([("alloc", 0, 16), ("free", 0)])
    data = bytearray(pickle.dumps(t))
    i = data.index(b"GATRACE1") + 16  # the first kind byte
    data[i] = 7
    with pytest.raises(TraceError, match="pickled goalloc.Trace"):
        pickle.loads(bytes(data))


def test_from_bytes_checks_like_read_binary(tmp_path):
    t = workloads.go_mix(100, live=10, seed=2)
    raw = t.to_bytes()
    with pytest.raises(TraceError, match="expected"):
        Trace.from_bytes(raw[:-1])
    with pytest.raises(TraceError, match="not a goalloc binary trace"):
        Trace.from_bytes(b"GATRACE9" + raw[8:])
    path = tmp_path / "t.gatrace"
    t.save(path)
    assert path.read_bytes() == raw
    assert Trace.from_bytes(bytearray(raw)) == Trace.load(path) == t


# ---- the sweep ----------------------------------------------------------

def test_grid():
    g = grid(release=["go1.13.0", "go1.13.8"], procs=range(1, 3),
             collector="gc")
    assert g == [{"release": r, "procs": p, "collector": "gc"}
                 for r in ("go1.13.0", "go1.13.8") for p in (1, 2)]
    assert grid() == [{}]


def test_default_pool_matches_replays_here(traces):
    df = goalloc.sweep(traces, CONFIGS, sample_every=500, progress=False)
    assert len(df) == 6
    assert list(df.columns[:2]) == ["trace", "config"]
    assert {"backing", "collector", "gogc", "release", "procs",
            *HEADLINE_COLUMNS, "replay_seconds", "worker"} <= set(df.columns)
    assert "error" not in df.columns
    assert list(df["config"][:3]) == [
        "backing=virtual", "backing=virtual collector=gc gogc=50",
        "backing=virtual release=go1.13.0 procs=3"]
    # the keys a config left out hold what the heap had
    assert list(df["collector"][:3]) == ["free", "gc", "free"]
    assert list(df["release"][:3]) == ["go1.13.8", "go1.13.8", "go1.13.0"]
    need = {k: int(t.p.max()) + 1 for k, t in traces.items()}
    assert list(df["procs"]) == [need["mix"]] * 2 + [3] + \
        [need["pc"]] * 2 + [3]
    assert df["procs"].dtype == "Int64"
    assert list(df["gc_cycles"] > 0) == [False, True, False] * 2
    assert (df["replay_seconds"] > 0).all()
    # other processes than this one ran them
    assert not df["worker"].str.endswith(f":{os.getpid()}").any()
    assert_rows_match(df, traces, CONFIGS, 500)


def test_paths_travel_as_paths(traces, tmp_path):
    paths = []
    for name, t in traces.items():
        p = tmp_path / (name + (".gatrace" if name == "mix" else ".trace"))
        t.save(p)
        paths.append(str(p))
    ex = Recording()
    with ex:
        df = goalloc.sweep(paths, CONFIGS[:2], executor=ex, sample_every=500)
    assert [a[0] for a in ex.calls] == [paths[0]] * 2 + [paths[1]] * 2
    assert list(df["trace"].unique()) == ["mix", "pc"]
    assert_rows_match(df, traces, CONFIGS[:2], 500)


def test_traces_travel_as_binary_bytes_to_an_executor(traces):
    ex = Recording()
    with ex:
        df = goalloc.sweep(traces, CONFIGS[1:], executor=ex,
                           sample_every=500)
    sources = [a[0] for a in ex.calls]
    assert all(isinstance(s, bytes) and s[:8] == b"GATRACE1"
               for s in sources)
    assert sources[0] == traces["mix"].to_bytes()
    assert_rows_match(df, traces, CONFIGS[1:], 500)


def test_the_default_pool_gets_paths_of_temporary_files(traces,
                                                        monkeypatch):
    seen = []

    class Pool(cf.ProcessPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            seen.append(args[0])
            assert os.path.exists(args[0])
            return super().submit(fn, *args, **kwargs)

    monkeypatch.setattr(cf, "ProcessPoolExecutor", Pool)
    goalloc.sweep({"mix": traces["mix"]}, CONFIGS[:2], progress=False)
    assert len(seen) == 2 and seen[0] == seen[1]
    assert seen[0].endswith(".gatrace")
    assert not os.path.exists(seen[0])  # removed at the end


def test_labels(traces, tmp_path):
    p = tmp_path / "x.gatrace"
    traces["pc"].save(p)
    ex = Recording()
    with ex:
        df = goalloc.sweep([traces["mix"], p, traces["mix"]],
                           {"a": {"backing": "virtual"}}, executor=ex)
    assert list(df["trace"]) == ["trace0", "x", "trace2"]
    assert list(df["config"]) == ["a"] * 3
    with ex:
        one = goalloc.sweep(traces["pc"], {}, executor=Recording())
    assert list(one["trace"]) == ["trace0"]
    assert list(one["config"]) == ["default"]


def test_platform_key(traces):
    ex = Recording()
    with ex:
        df = goalloc.sweep({"mix": traces["mix"]},
                           grid(platform=["linux/amd64", "linux/386"],
                                backing="virtual"), executor=ex)
    assert list(df["platform"]) == ["linux/amd64", "linux/386"]
    # a 32-bit heap: different arenas, the same live bytes
    assert df["peak_heap_sys"][0] != df["peak_heap_sys"][1]
    assert df["final_heap_alloc"][0] == df["final_heap_alloc"][1]


@pytest.mark.parametrize("config, exc, match", [
    ({"gcpercent": 5}, TypeError, "'gcpercent' is not a goalloc.Heap"),
    ({"release": "go1.12"}, ValueError, "config 'release=go1.12'"),
    ({"platform": "linux"}, ValueError, "goos/goarch"),
    ({"platform": "linux/amd64", "goos": "linux"}, TypeError, "both"),
])
def test_bad_configs_fail_before_anything_runs(traces, config, exc, match):
    ex = Recording()
    with ex, pytest.raises(exc, match=match):
        goalloc.sweep(traces, [{"backing": "virtual"}, config], executor=ex)
    assert ex.calls == []


@pytest.mark.parametrize("traces_arg, configs, exc", [
    ({}, [{}], ValueError), ({"a": Trace([], [])}, [], ValueError),
    ([[("alloc", 0, 16)]], [{}], TypeError), (5, [{}], TypeError),
    ({"a": Trace([], [])}, ["backing=virtual"], TypeError),
])
def test_bad_arguments(traces_arg, configs, exc):
    with pytest.raises(exc):
        goalloc.sweep(traces_arg, configs, executor=Recording())


def test_a_failed_run_raises_sweep_error(traces):
    small = {"backing": "virtual", "sys_limit": 1 << 20}
    with pytest.raises(SweepError, match="OutOfMemoryError") as ei:
        goalloc.sweep({"mix": traces["mix"]}, [CONFIGS[0], small],
                      executor=Recording())
    assert ei.value.trace == "mix"
    assert ei.value.config == "backing=virtual sys_limit=1048576"
    assert isinstance(ei.value.__cause__, goalloc.OutOfMemoryError)
    assert isinstance(ei.value, goalloc.GoallocError)


def test_errors_record(traces):
    small = {"backing": "virtual", "sys_limit": 1 << 20}
    df = goalloc.sweep({"mix": traces["mix"]}, [CONFIGS[0], small],
                       executor=Recording(), errors="record")
    assert pd.isna(df["error"][0]) and df["peak_heap_sys"][0] > 0
    assert df["error"][1].startswith("OutOfMemoryError")
    assert pd.isna(df["peak_heap_sys"][1])
    assert df["sys_limit"].tolist()[1] == 1 << 20


def test_progress_bar_counts_runs(traces, capsys):
    goalloc.sweep({"pc": traces["pc"]}, CONFIGS[:2], executor=Recording(),
                  progress=True)
    err = capsys.readouterr().err
    assert "sweep" in err and "2/2" in err and "runs" in err


# ---- Dask distributed ---------------------------------------------------

def _distributed():
    if os.environ.get("CI"):  # the test extra installs it: never skip
        import distributed
        return distributed
    return pytest.importorskip("distributed")


def test_dask_local_cluster_of_two_worker_processes(traces, tmp_path):
    distributed = _distributed()
    p = tmp_path / "pc.gatrace"
    traces["pc"].save(p)
    configs = grid(backing="virtual", collector=["free", "gc"],
                   gogc=[50, 200])
    # processes=True: two worker processes, each trace pickled across a
    # process boundary as a real cluster would get it
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                  processes=True, dashboard_address=None,
                                  ) as cluster, \
            distributed.Client(cluster) as client:
        df = goalloc.sweep({"mix": traces["mix"], "pc": str(p)}, configs,
                           executor=client.get_executor(),
                           sample_every=500, progress=False)
        pids = set(client.run(os.getpid).values())
    assert len(pids) == 2
    ran_on = {int(w.rsplit(":", 1)[1]) for w in df["worker"]}
    assert ran_on == pids  # both workers, none of it here
    assert_rows_match(df, traces, configs, 500)
    assert set(CONFIG_KEYS) >= {"collector", "gogc"}
