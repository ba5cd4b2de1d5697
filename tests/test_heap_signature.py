"""goalloc.Heap's signature (goalloc/heap.py) against the binding.

Heap() is the C type's constructor, which takes keywords only
(csrc/python/heap.c, kwlist); goalloc/heap.py writes them out so that
inspect.signature and help() show each with its default and type.  These
tests read the C sources, so that a keyword added to the binding, or a
default or an accepted string changed in the core, fails here until the
signature says it too.
"""
from __future__ import annotations

import ast
import inspect
import re
import typing
from pathlib import Path

import pytest

import goalloc
from goalloc import sweeps

ROOT = Path(__file__).resolve().parents[1]
CSRC = ROOT / "csrc"


def c_kwlist() -> list[str]:
    """heap_new's kwlist, in order."""
    src = (CSRC / "python" / "heap.c").read_text()
    m = re.search(r"heap_new\(.*?static char \*kwlist\[\] = \{(.*?)\};",
                  src, re.S)
    assert m, "no kwlist in heap_new"
    names = re.findall(r'"(\w+)"|\bNULL\b', m.group(1))
    assert names[-1] == "", "kwlist ends with NULL"
    return names[:-1]


def params() -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(goalloc.Heap).parameters)


def test_signature_is_the_bindings_keywords_in_order():
    kw = c_kwlist()
    assert "collector" in kw and "background_sweep" in kw
    assert list(params()) == kw
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY
               for p in params().values())
    assert sweeps.HEAP_OPTIONS == tuple(kw)


def test_stub_declares_the_same_keywords():
    """goalloc/_core.pyi's Heap.__new__ (what mypy checks callers of the
    C type against)."""
    tree = ast.parse((ROOT / "goalloc" / "_core.pyi").read_text())
    (heap,) = [n for n in tree.body
               if isinstance(n, ast.ClassDef) and n.name == "Heap"]
    (new,) = [n for n in heap.body
              if isinstance(n, ast.FunctionDef) and n.name == "__new__"]
    assert [a.arg for a in new.args.kwonlyargs] == c_kwlist()


def test_every_parameter_has_a_type_and_a_default():
    for name, p in params().items():
        assert p.annotation is not inspect.Parameter.empty, name
        assert not isinstance(p.annotation, str), name  # evaluated
        assert p.default is not inspect.Parameter.empty, name


def test_string_options_are_literals_of_what_the_binding_takes():
    ann = {n: p.annotation for n, p in params().items()}

    def values(t) -> set[str]:
        """The strings of the Literals in t (a Literal or a Union)."""
        if typing.get_origin(t) is typing.Literal:
            return set(typing.get_args(t))
        return set().union(*map(values, typing.get_args(t)))

    assert values(ann["backing"]) == {"os", "virtual"}
    assert values(ann["collector"]) == {"free", "gc"}
    assert values(ann["release"]) == {"go1.13.8", "go1.13.0", "go1.13"}
    assert values(ann["gogc"]) == {"off"}
    # goos and goarch: the ports of csrc/platform.c
    ports = re.findall(r'\{"(\w+)", "(\w+)", (?:true|false)\}',
                       (CSRC / "platform.c").read_text())
    assert len(ports) > 30
    assert values(ann["goos"]) == {os_ for os_, _ in ports}
    assert values(ann["goarch"]) == {arch for _, arch in ports}
    # each value is accepted; a neighbour of them is not
    for name in ("backing", "collector", "release"):
        for v in values(ann[name]):
            goalloc.Heap(**{name: v}).close()
        with pytest.raises(ValueError):
            goalloc.Heap(**{name: "vritual"})
    for os_, arch in ports[:5]:
        goalloc.Heap(goos=os_, goarch=arch, backing="virtual").close()
    assert values(goalloc.Backing) == values(ann["backing"])


def test_defaults_are_the_cores():
    """Every default, passed explicitly, makes the heap Heap() makes
    (same info, same digest after the same work); seed and binary_end,
    which nothing shows on linux/amd64, are ga_options_init's."""
    defaults = {n: p.default for n, p in params().items()}

    def work(**kw) -> tuple:
        with goalloc.Heap(**kw) as h:
            addrs = [h.alloc(n) for n in (8, 100, 5000, 40_000, 10**6)]
            for a in addrs[::2]:
                h.free(a)
            return h.info(), h.digest(), h.stats(), h.gc_state()

    assert work(**defaults) == work()
    assert work(**{**defaults, "goarch": "386", "backing": "virtual"}) \
        == work(goarch="386", backing="virtual")
    # and they are different from another value's: the test can fail
    assert work(**{**defaults, "goarch": "386", "backing": "virtual",
                   "binary_end": 0x10000000}) \
        != work(goarch="386", backing="virtual")
    init = (CSRC / "mallocinit.c").read_text()
    for name in ("seed", "binary_end", "procs"):
        m = re.search(rf"o->{name} = (0x[0-9A-Fa-f]+|\d+)(?:ULL)?;", init)
        assert m, name
        assert defaults[name] == int(m.group(1), 0), name
    for name in ("goos", "goarch"):
        m = re.search(rf'o->{name} = "(\w+)";', init)
        assert m and defaults[name] == m.group(1), name
    assert defaults["collector"] == "free" and defaults["race"] is False


def test_construction_errors_unchanged():
    """The Python-level __new__ still refuses positional options and
    unknown keywords with TypeError, and forwards the binding's own
    checks."""
    with pytest.raises(TypeError):
        goalloc.Heap("linux")
    with pytest.raises(TypeError, match="bogus"):
        goalloc.Heap(bogus=1)
    with pytest.raises(TypeError, match="gogc or scavenge_goal"):
        goalloc.Heap(gogc=100, scavenge_goal=0)
    with pytest.raises(ValueError, match="procs"):
        goalloc.Heap(procs=0)


def test_readme_shows_the_signature():
    """README's `goalloc.Heap(...)` line: every keyword, with the
    signature's default."""
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"^`(goalloc\.Heap\(goos=.*?\))` runs `mallocinit`",
                  readme, re.M | re.S)
    assert m, "no goalloc.Heap(...) line in README.md"
    call = ast.parse(m.group(1), mode="eval").body
    assert isinstance(call, ast.Call)
    shown = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    assert shown == {n: p.default for n, p in params().items()}
