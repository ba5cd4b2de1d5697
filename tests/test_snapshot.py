"""goalloc.snapshot: a JSON document of the whole heap, schema
goalloc.snapshot/1, that agrees with the live introspection calls."""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import sys

import pytest

import goalloc
from goalloc.snapshot import (
    SNAPSHOT_SCHEMA,
    export_json,
    load_json,
    snapshot,
    validate,
)

TOP_KEYS = {"schema", "goalloc_version", "digest", "info", "hints",
            "arenas", "spans", "stats", "centrals", "caches",
            "fragmentation", "gc", "gc_cycles", "live_by_class"}


def populate(h: goalloc.Heap) -> list[int]:
    addrs = [h.alloc(n, noscan=True) for n in (1, 3, 4, 9)]
    addrs += [h.alloc(n) for n in (8, 24, 100, 100, 2000, 32768)]
    addrs += [h.alloc(n, noscan=True, p=0) for n in (64, 50_000)]
    addrs.append(h.alloc(1 << 20))
    for a in addrs[1::3]:
        h.free(a)
    return addrs


@pytest.fixture(params=("empty", "busy"))
def some_heap(request, heap):
    if request.param == "busy":
        populate(heap)
    return heap


def plain(obj) -> bool:
    """Only JSON's own types, all the way down, and no NaN or infinity."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return True
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, list):
        return all(plain(x) for x in obj)
    if isinstance(obj, dict):
        return all(isinstance(k, str) and plain(v) for k, v in obj.items())
    return False


def test_round_trip(some_heap):
    doc = snapshot(some_heap)
    assert plain(doc)
    assert set(doc) == TOP_KEYS
    assert doc["schema"] == SNAPSHOT_SCHEMA == "goalloc.snapshot/1"
    text = json.dumps(doc, allow_nan=False)
    back = json.loads(text)
    assert back == doc
    validate(doc)
    validate(back)


def test_agrees_with_live_api(some_heap):
    h = some_heap
    doc = snapshot(h)
    assert doc["goalloc_version"] == goalloc.__version__
    assert doc["digest"] == h.digest()
    assert goalloc.HeapInfo(**doc["info"]) == h.info()
    assert [goalloc.ArenaHint(**x) for x in doc["hints"]] == h.hints()
    assert [goalloc.Arena(**x) for x in doc["arenas"]] == h.arenas()
    spans = h.spans()
    assert len(doc["spans"]) == len(spans)
    assert [goalloc.Span(**x) for x in doc["spans"]] == spans

    st = h.stats()
    for f in dataclasses.fields(goalloc.MemStats):
        if f.name != "by_size":
            assert doc["stats"][f.name] == getattr(st, f.name), f.name
    by_size = doc["stats"]["by_size"]
    assert len(by_size) == goalloc.NUM_SIZE_CLASSES
    assert [x["sizeclass"] for x in by_size] == list(range(len(by_size)))
    assert [goalloc.BySize(x["size"], x["mallocs"], x["frees"])
            for x in by_size] == list(st.by_size)

    want = [c for c in h.centrals()
            if c.nonempty or c.empty or c.nmalloc or c.nfree]
    assert [c["spanclass"] for c in doc["centrals"]] == [
        c.spanclass for c in want]
    for got, c in zip(doc["centrals"], want, strict=True):
        assert got == {"spanclass": c.spanclass, "sizeclass": c.sizeclass,
                       "noscan": c.noscan, "nonempty": list(c.nonempty),
                       "empty": list(c.empty), "nmalloc": c.nmalloc,
                       "nfree": c.nfree}

    caches = h.caches()
    assert len(doc["caches"]) == len(caches) == h.info().procs
    for got, c in zip(doc["caches"], caches, strict=True):
        assert (got["p"], got["tiny"], got["tinyoffset"],
                got["local_tinyallocs"]) == (c.p, c.tiny, c.tinyoffset,
                                             c.local_tinyallocs)
        assert {x["spanclass"]: x["base"] for x in got["alloc"]} == c.alloc

    frag = h.fragmentation()
    for f in dataclasses.fields(goalloc.Fragmentation):
        want_v = getattr(frag, f.name)
        got_v = doc["fragmentation"][f.name]
        if isinstance(want_v, float) and math.isnan(want_v):
            assert got_v is None
        else:
            assert got_v == want_v, f.name


def test_empty_heap_has_no_arenas_and_null_overhead(heap):
    doc = snapshot(heap)
    assert doc["arenas"] == [] and doc["spans"] == []
    assert len(doc["hints"]) == 128
    assert doc["centrals"] == []
    assert doc["fragmentation"]["overhead"] is None


def test_busy_heap_contents(rheap, release):
    heap = rheap
    populate(heap)
    doc = snapshot(heap)
    states = {s["state"] for s in doc["spans"]}
    info = doc["info"]
    assert info["release"] == release
    if release == "go1.13.0":
        # the rest of the arena is a free span
        assert {"inuse", "free"} <= states
        assert info["cur_arena_base"] == info["cur_arena_end"] == 0
    else:
        # populate frees no whole span, and the rest of the arena is
        # curArena, which the snapshot shows in info, not as a span
        assert states == {"inuse"}
        assert info["cur_arena_base"] == max(
            s["base"] + s["npages"] * 8192 for s in doc["spans"])
        assert info["cur_arena_end"] == doc["arenas"][0]["base"] + (64 << 20)
    assert doc["stats"]["heap_objects"] > 0
    assert any(c["empty"] or c["nonempty"] for c in doc["centrals"])
    assert doc["caches"][0]["alloc"]
    assert isinstance(doc["fragmentation"]["overhead"], float)


def test_snapshot_leaves_heap_unchanged(heap):
    populate(heap)
    before = heap.digest()
    snapshot(heap)
    assert heap.digest() == before


@pytest.mark.parametrize("platform", [
    {"goos": "aix", "goarch": "ppc64"},
    {"goos": "linux", "goarch": "386"},
    {"race": True, "procs": 3},
])
def test_other_platforms(platform):
    with goalloc.Heap(backing="virtual", **platform) as h:
        populate(h)
        doc = json.loads(json.dumps(snapshot(h)))
        validate(doc)
        assert doc["info"]["goarch"] == h.info().goarch
        assert len(doc["caches"]) == h.info().procs


def test_export_and_load(heap, tmp_path):
    populate(heap)
    path = tmp_path / "heap.json"
    doc = export_json(heap, path)
    assert doc == snapshot(heap)
    with open(path) as f:
        assert json.load(f) == doc
    assert load_json(path) == doc
    export_json(heap, str(tmp_path / "pretty.json"), indent=1)
    assert load_json(tmp_path / "pretty.json") == doc


def _broken(doc, change):
    bad = copy.deepcopy(doc)
    change(bad)
    return bad


@pytest.fixture
def doc(heap):
    populate(heap)
    return json.loads(json.dumps(snapshot(heap)))


@pytest.mark.parametrize("schema", [
    "goalloc.snapshot/2", "goalloc.snapshot/0", "goalloc.timeline/1", "",
    None, 1])
def test_validate_rejects_wrong_schema(doc, schema):
    doc["schema"] = schema
    with pytest.raises(ValueError, match="schema"):
        validate(doc)


def test_validate_rejects_missing_schema(doc):
    del doc["schema"]
    with pytest.raises(ValueError, match="schema"):
        validate(doc)


@pytest.mark.parametrize("not_a_doc", [None, [], "goalloc.snapshot/1", 3])
def test_validate_rejects_non_objects(not_a_doc):
    with pytest.raises(ValueError):
        validate(not_a_doc)


# keys version 1 gained later: a document may miss them
LATER_TOP_KEYS = {"gc", "gc_cycles", "live_by_class"}


@pytest.mark.parametrize("key", sorted(TOP_KEYS - {"schema"} - LATER_TOP_KEYS))
def test_validate_rejects_missing_top_level_key(doc, key):
    del doc[key]
    with pytest.raises(ValueError, match=key):
        validate(doc)


@pytest.mark.parametrize("key, value", [
    ("info", []), ("hints", {}), ("arenas", None), ("spans", "x"),
    ("stats", []), ("centrals", {}), ("caches", 0), ("fragmentation", []),
    ("digest", "0"), ("digest", True), ("goalloc_version", 1),
])
def test_validate_rejects_wrong_top_level_type(doc, key, value):
    doc[key] = value
    with pytest.raises(ValueError, match=key):
        validate(doc)


@pytest.mark.parametrize("change, where", [
    (lambda d: d["spans"][0].pop("npages"), "spans"),
    (lambda d: d["spans"][0].update(state="busy"), "state"),
    (lambda d: d["spans"][0].update(base="0xc000000000"), "base"),
    (lambda d: d["spans"][0].update(noscan=1), "noscan"),
    (lambda d: d["hints"][0].update(down="no"), "down"),
    (lambda d: d["arenas"][0].update(l2=1.5), "l2"),
    (lambda d: d["info"].pop("goos"), "goos"),
    (lambda d: d["stats"].pop("heap_alloc"), "heap_alloc"),
    (lambda d: d["stats"].update(by_size={}), "by_size"),
    (lambda d: d["stats"]["by_size"][3].pop("frees"), "frees"),
    (lambda d: d["centrals"][0].update(empty=[1, "2"]), "empty"),
    (lambda d: d["caches"][0].update(alloc={"5": 1}), "alloc"),
    (lambda d: d["caches"][0]["alloc"][0].pop("base"), "base"),
    (lambda d: d["fragmentation"].update(internal="0.1"), "internal"),
    (lambda d: d["fragmentation"].update(span=float("nan")), "span"),
])
def test_validate_rejects_bad_records(doc, change, where):
    with pytest.raises(ValueError, match=where):
        validate(_broken(doc, change))


def test_validate_allows_unknown_keys(doc):
    """Version 1 may grow keys; readers ignore the ones they do not know."""
    doc["future"] = {"x": 1}
    doc["spans"][0]["future"] = True
    validate(doc)


# Version 1's keys as its first writers wrote them, pinned here: the
# schema follows the records (goalloc.snapshot derives it from them), so
# a field that disappears or changes type there must fail here, because
# that makes a new schema version.
V1_INFO = dict.fromkeys(
    ("procs", "ptr_size", "page_size", "heap_arena_bytes", "phys_page_size",
     "phys_huge_page_size", "max_alloc", "arena_l1_bits", "arena_l2_bits",
     "arena_base_offset", "zerobase", "pages_in_use", "scavenge_goal",
     "unscav_huge_pages", "nallspans"), "int") | {
    "goos": "str", "goarch": "str", "race": "bool", "backing": "str"}
V1_RECORDS = {
    "_INFO": V1_INFO,
    "_HINT": {"addr": "int", "down": "bool"},
    "_ARENA": dict.fromkeys(("base", "idx", "l1", "l2"), "int"),
    "_SPAN": {"base": "int", "npages": "int", "state": "str",
              "scavenged": "bool", "spanclass": "int", "sizeclass": "int",
              "noscan": "bool", "elemsize": "int", "nelems": "int",
              "alloc_count": "int", "freeindex": "int", "limit": "int",
              "needzero": "bool"},
    "_STATS": dict.fromkeys(
        ("alloc", "total_alloc", "sys", "lookups", "mallocs", "frees",
         "heap_alloc", "heap_sys", "heap_idle", "heap_inuse",
         "heap_released", "heap_objects", "stack_inuse", "stack_sys",
         "mspan_inuse", "mspan_sys", "mcache_inuse", "mcache_sys",
         "buck_hash_sys", "gc_sys", "other_sys"), "int"),
    "_BY_SIZE": dict.fromkeys(("sizeclass", "size", "mallocs", "frees"),
                              "int"),
    "_CENTRAL": {"spanclass": "int", "sizeclass": "int", "nmalloc": "int",
                 "nfree": "int", "noscan": "bool", "nonempty": "ints",
                 "empty": "ints"},
    "_CACHE": dict.fromkeys(("p", "tiny", "tinyoffset", "local_tinyallocs"),
                            "int"),
    "_CACHE_ALLOC": {"spanclass": "int", "base": "int"},
    "_FRAG": {"internal_bytes": "int", "span_bytes": "int",
              "page_bytes": "int", "external_bytes": "int",
              "requested_live": "int", "heap_alloc": "int",
              "internal": "num?", "span": "num?", "page": "num?",
              "external": "num?", "overhead": "num?"},
}


@pytest.mark.parametrize("record", sorted(V1_RECORDS))
def test_version_1_keys_are_kept(record):
    from goalloc import snapshot as module
    assert getattr(module, record) == V1_RECORDS[record]


def test_version_1_info_keys_added_later(doc):
    """Keys the records gained after version 1's first writers are
    written and, when present, checked; a document without them (a
    first writer's) still validates."""
    from goalloc import snapshot as module
    later = set(module._INFO_ALL) - set(V1_INFO)
    assert later == set(module._INFO_LATER)
    assert later <= set(doc["info"])
    for key in later:
        bad = copy.deepcopy(doc)
        bad["info"][key] = "x" if key != "release" else 1
        with pytest.raises(ValueError, match=key):
            validate(bad)
    for key in later:
        del doc["info"][key]
    validate(doc)


# ---- bad input (docs/misuse.md) --------------------------------------------


def test_row_snapshot_not_a_snapshot(tmp_path):
    """snapshot.load_json of a file that is not a goalloc snapshot:
    ValueError naming the problem (deep nesting used to escape as
    RecursionError)."""
    from goalloc.snapshot import load_json
    depth = sys.getrecursionlimit() * 10
    for name, content, word in (
            ("deep-list", b"[" * depth + b"]" * depth, "nested too deeply"),
            ("deep-object", b'{"a":' * depth + b"1" + b"}" * depth,
             "nested too deeply"),
            ("deep-open", b"[" * depth, "nested too deeply"),
            ("not-json", b"snapshot", "Expecting value"),
            ("not-utf8", b'\xff{"schema": 1}', "utf-8"),
            ("schema", b'{"schema": "goalloc.timeline/1"}', "schema"),
            ("list", b"[1, 2]", "JSON object")):
        p = tmp_path / f"{name}.json"
        p.write_bytes(content)
        with pytest.raises(ValueError) as ei:
            load_json(p)
        assert type(ei.value) in (ValueError, UnicodeDecodeError,
                                  __import__("json").JSONDecodeError)
        assert word in str(ei.value), (name, str(ei.value)[:200])


def test_gc_keys_are_written_and_checked_when_present():
    """gc and gc_cycles came after version 1's first writers: a GC-mode
    heap's are written, checked when present, and may be missing."""
    h = goalloc.Heap(backing="virtual", collector="gc")
    h.drop(h.alloc(48))
    h.gc()
    doc = snapshot(h)
    assert doc["gc"]["num_gc"] == 1 and doc["gc_cycles"][0]["forced"]
    assert doc["gc"] == {k: v for k, v in
                         vars(h.gc_state()).items()}
    validate(doc)
    for key, bad in (("gc", {"num_gc": "x"}), ("gc_cycles", [{"num": 1}]),
                     ("gc_cycles", {})):
        broken = copy.deepcopy(doc)
        if isinstance(bad, dict) and key == "gc":
            broken[key].update(bad)
        else:
            broken[key] = bad
        with pytest.raises(ValueError, match=key):
            validate(broken)
    del doc["gc"], doc["gc_cycles"]
    validate(doc)


def test_live_by_class_sums_the_object_array(some_heap):
    """live_by_class (added after version 1's first writers): the live
    objects by size class, exactly object_array's sums; what they asked
    for adds up to the fragmentation's requested_live."""
    import numpy as np
    doc = snapshot(some_heap)
    objs = some_heap.object_array()
    sc = objs["spanclass"] >> 1
    want = [{"sizeclass": int(c), "objects": int((sc == c).sum()),
             "bytes": int(objs["size"][sc == c].sum()),
             "requested": int(objs["requested"][sc == c].sum())}
            for c in np.unique(sc)]
    assert doc["live_by_class"] == want
    assert sum(r["requested"] for r in want) == \
        doc["fragmentation"]["requested_live"]
    if len(objs):
        assert {0, 2} <= {r["sizeclass"] for r in want}  # large and tiny


def test_live_by_class_checked_when_present(doc):
    for bad in ({}, [{"sizeclass": 1, "objects": 1, "bytes": 8}],
                [{"sizeclass": 1, "objects": "1", "bytes": 8,
                  "requested": 8}]):
        broken = copy.deepcopy(doc)
        broken["live_by_class"] = bad
        with pytest.raises(ValueError, match="live_by_class"):
            validate(broken)
    del doc["live_by_class"]
    validate(doc)
