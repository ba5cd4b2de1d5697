"""tools/check_citations.py: every section citation names a section of
docs/design.md (design §1.3), and tools/citations.map turns the old
citations into such citations.

The test data spells the section sign as S and splits the old notes'
names, so that the old and broken citations it holds are not taken for
citations of this file.
"""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "check_citations.py"

spec = importlib.util.spec_from_file_location("check_citations", SCRIPT)
assert spec is not None and spec.loader is not None
cc = importlib.util.module_from_spec(spec)
sys.modules["check_citations"] = cc
spec.loader.exec_module(cc)

SECTIONS = cc.design_sections(ROOT)
S = "\u00a7"
FACTS_FILE = "go113-" + "allocator-facts.md"
GC_FACTS_FILE = "go113-" + "gc-facts.md"


def problems(text: str, path: str = "x.c") -> list[str]:
    return [p.why for p in cc.scan(path, text, SECTIONS)[1]]


def test_design_has_numbered_chapters_and_sections():
    assert {str(n) for n in range(1, 16)} <= SECTIONS
    assert {"1.3", "4.3", "6.4", "9.9", "11.4", "13.1", "14.9",
            "15.7"} <= SECTIONS
    assert "16" not in SECTIONS and "4.99" not in SECTIONS


def test_repository_citations_resolve():
    r = subprocess.run([sys.executable, str(SCRIPT), "--report-only",
                        "csrc/"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert " 0 error(s)" in r.stdout


def test_good_citations_pass():
    assert problems(f"/* see design {S}4.3 and design {S}11 */") == []
    assert problems(f"# Design {S}10.2: validate first") == []
    # "design" may end the previous line of a wrapped comment
    assert problems(f"/* applies it (design\n * {S}12.3) */") == []
    # a full stop after the number is not part of it
    assert problems(f"cites design {S}4.1.") == []


@pytest.mark.parametrize("text, why", [
    (f"/* design {S}99.1 */", "no such section"),
    (f"/* design {S}4.99 */", "no such section"),
    (f"/* facts {S}4.2 */", "is no 'design"),
    (f"/* decisions {S}4 */", "is no 'design"),
    (f"/* see {S}4.2 */", "is no 'design"),
    (f"/* applies it (decisions\n * {S}12.3) */", "is no 'design"),
    (f"/* design {S} */", "without a number"),
    (f"/* design/{FACTS_FILE} */", "outside the repository"),
    (f"/* {GC_FACTS_FILE} */", "outside the repository"),
    ("# as the facts " + "sheet says", "outside the repository"),
])
def test_bad_citations_fail(text, why):
    got = problems(text)
    assert got and any(why in g for g in got), got


def test_design_md_may_cite_itself_bare():
    assert problems(f"see {S}4.3", cc.DESIGN) == []
    assert problems(f"see {S}42.1", cc.DESIGN)


def test_report_only_lists_without_failing(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "design.md").write_text("## 1. One\n### 1.1 A\n")
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "citations.map").write_text("# none\n")
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "a.c").write_text(f"/* facts {S}1 */\n")
    (tmp_path / "b.py").write_text(f"# design {S}1.1\n")
    assert cc.check(tmp_path, report_only=["core/"]) == 0
    assert cc.check(tmp_path) == 1
    (tmp_path / "b.py").write_text(f"# design {S}1.2\n")
    assert cc.check(tmp_path, report_only=["core/"]) == 1


def test_rewrite_respects_number_boundaries():
    rules = [(f"facts {S}4.1", f"design {S}4.2"),
             (f"facts {S}4.10", f"design {S}8.1")]
    assert cc.rewrite_line(f"(facts {S}4.10)", rules) == \
        (f"(design {S}8.1)", 1)
    assert cc.rewrite_line(f"(facts {S}4.1.)", rules) == \
        (f"(design {S}4.2.)", 1)
    assert cc.rewrite_line(f"(facts {S}4.1.2)", rules) == \
        (f"(facts {S}4.1.2)", 0)


def test_every_map_rule_yields_existing_sections():
    rules = cc.load_map(ROOT)
    assert len(rules) > 40
    cite = re.compile(r"design " + S + r"(\d+(?:\.\d+)*)", re.IGNORECASE)
    for old, new in rules:
        assert S in old, old
        cites = cite.findall(new)
        assert cites or S not in new, (old, new)
        assert all(c in SECTIONS for c in cites), (old, new)
        assert problems(new) == [], (old, new)


def test_rewrite_fixes_the_old_csrc_citations():
    # the forms csrc/ had when the map was written, one line each
    old = [
        f" * mheap_check walks the whole heap and checks the invariants of "
        f"facts {S}5",
        f"/* Which Go 1.13 point release's page heap a heap runs "
        f"(decisions {S}1,",
        f' * "Which 1.13"; {GC_FACTS_FILE} {S}0.1).  go1.13.3 backported',
        f" * Differs from Go: free() is explicit (decisions {S}4); many",
        f"/* ga_free frees the object that starts at addr (decisions {S}4),",
        f"/* ga_verify walks every invariant that applies (facts {S}5) and",
        f" * span (facts {S}5 item 3).",
        f" * release the heap follows (ga_release, decisions {S}1) decides",
        f" * Freeing (explicit in goalloc, decisions {S}4; Go frees by",
        f" * (facts {S}5 items 15-19 with explicit frees); false + message",
        f"/* mcentral_free_slot_locked frees live slot i of span s "
        f"(decisions {S}4);",
        f" * Differs from Go: explicit free of tiny objects (decisions {S}4).",
    ]
    rules = cc.load_map(ROOT)
    new = [cc.rewrite_line(line, rules)[0] for line in old]
    assert len(problems("\n".join(old))) >= len(old)
    assert problems("\n".join(new)) == [], new
    assert f"design {S}11.4" in new[9] and f"design {S}6.4" in new[11]
    assert f"design {S}11.2" in new[6] and f"design {S}6.1" in new[4]
