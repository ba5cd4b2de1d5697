"""The HTML report (goalloc.report, `python -m goalloc report`): one
self-contained file, opened in a real headless browser (Debian's
chromium, driven by selenium through Debian's chromedriver) with every
host name unresolvable, where its figures must decode and its tables
have rows.

tools/test.sh installs chromium and chromium-driver when missing and sets
GOALLOC_BROWSER_TESTS=required, so that there a missing browser fails
the test instead of skipping it.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("pandas")

import goalloc  # noqa: E402
from goalloc import report, workloads  # noqa: E402
from goalloc.comparison import HEADLINE_COLUMNS  # noqa: E402

PKG_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(goalloc.__file__)))
RELEASES = ("go1.13.8", "go1.13.0")
FIGURES_PER_RUN = 6      # timeline, fragmentation and four heap figures


@pytest.fixture(scope="module")
def runs():
    trace = workloads.phases(20_000, live=2000, seed=2)
    out = {}
    for r in RELEASES:
        h = goalloc.Heap(backing="virtual", release=r)
        out[r] = (h, h.replay(trace, sample_every=200))
    yield out
    for h, _ in out.values():
        h.close()


@pytest.fixture(scope="module")
def page(runs, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "r.html"
    report.write(path, runs, title="two releases")
    return path


def test_self_contained(page):
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "<script" not in text and "<link" not in text
    refs = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert refs
    for ref in refs:
        assert ref.startswith(("data:image/png;base64,", "#")), ref
    assert "url(" not in text and "@import" not in text
    imgs = re.findall(r"<img ", text)
    assert len(imgs) == 2 + FIGURES_PER_RUN * len(RELEASES)


def test_the_report_says_what_the_heaps_say(runs, page):
    text = page.read_text(encoding="utf-8")
    for h, _ in runs.values():
        st = h.stats()
        assert f"{st.heap_inuse:,}" in text
        for name, _, doc in goalloc._core.MSTATS_FIELDS:
            assert doc.replace("'", "&#x27;") in text, name
    assert "<h1>two releases</h1>" in text
    assert text.count("<tr>") >= 2 * (21 + 5) + len(HEADLINE_COLUMNS)


def test_a_heap_without_timeline_and_bad_runs(runs, tmp_path):
    h, _ = runs["go1.13.8"]
    text = report.render({"heap": h})
    assert text.count("<img ") == FIGURES_PER_RUN - 2
    assert 'id="compare"' not in text          # one run, no timeline
    with pytest.raises(TypeError, match="non-empty mapping"):
        report.render({})
    with pytest.raises(TypeError, match="Heap"):
        report.render({"x": 3})


def test_report_command(tmp_path):
    t = workloads.go_mix(10_000, live=500, seed=1, procs=2)
    t.save(tmp_path / "mix.gatrace")
    env = dict(os.environ, PYTHONPATH=PKG_ROOT, MPLBACKEND="Agg")
    out = tmp_path / "r.html"
    r = subprocess.run(
        [sys.executable, "-m", "goalloc", "report", str(tmp_path /
         "mix.gatrace"), "-o", str(out), "--backing", "virtual",
         "--release", "go1.13.8", "--release", "go1.13.0"],
        env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert str(out) in r.stdout
    text = out.read_text(encoding="utf-8")
    assert text.count("<img ") == 2 + FIGURES_PER_RUN * 2
    assert ">go1.13.0</h2>" in text and "2 P" in text
    bad = subprocess.run(
        [sys.executable, "-m", "goalloc", "report", str(tmp_path /
         "mix.gatrace"), "-o", str(tmp_path / "r.txt")],
        env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.startswith("goalloc: error:")
    assert ".html" in bad.stderr


# ---- in a real browser ------------------------------------------------------

def _browser():
    """A selenium driver of Debian's headless chromium that resolves no
    host name (the report must need no network)."""
    missing = [x for x in ("chromium", "chromedriver")
               if shutil.which(x) is None]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium")
    if missing:
        why = f"no {', '.join(missing)} (tools/test.sh installs them)"
        if os.environ.get("GOALLOC_BROWSER_TESTS") == "required":
            pytest.fail(why)
        pytest.skip(why)
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--window-size=1300,1000",
                "--host-resolver-rules=MAP * ~NOTFOUND"):
        opts.add_argument(arg)
    # the ASan run preloads the sanitizer runtime: not into the browser
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}
    service = Service(shutil.which("chromedriver"), env=env)
    return webdriver.Chrome(service=service, options=opts)


def test_the_report_renders_in_a_browser(page, runs):
    driver = _browser()
    try:
        driver.get(page.as_uri())
        assert driver.title == "two releases"
        images = driver.execute_script(
            "return Array.from(document.images).map(i => "
            "[i.alt, i.complete, i.naturalWidth, i.naturalHeight, "
            " i.getBoundingClientRect().width])")
        assert len(images) == 2 + FIGURES_PER_RUN * len(RELEASES)
        for alt, complete, w, h, shown in images:
            assert complete and w > 100 and h > 100 and shown > 100, alt
        tables = dict(driver.execute_script(
            "return Array.from(document.querySelectorAll('table')).map(t =>"
            " [t.id, [t.tBodies[0].rows.length, "
            " t.getBoundingClientRect().height, "
            " t.tBodies[0].rows[0].cells.length]])"))
        assert tables["compare"][0] == len(HEADLINE_COLUMNS)
        assert tables["compare"][2] == 1 + len(RELEASES)
        for i in range(len(RELEASES)):
            assert tables[f"memstats-run{i}"][0] == len(
                goalloc._core.MSTATS_FIELDS)
            assert tables[f"fragmentation-run{i}"][0] == 5
            assert tables[f"classes-run{i}"][0] > 10
        for name, (rows, height, _) in tables.items():
            assert rows > 0 and height > 20 * rows * 0.5, name
        # the values as the browser shows them
        h, _ = runs["go1.13.0"]
        cell = driver.execute_script(
            "const t = document.getElementById('memstats-run1');"
            "for (const r of t.tBodies[0].rows)"
            "  if (r.cells[0].innerText === 'heap_sys')"
            "    return r.cells[1].innerText;")
        assert cell.startswith(f"{h.stats().heap_sys:,}")
        # nothing was fetched but the page itself
        fetched = driver.execute_script(
            "return performance.getEntriesByType('resource')"
            ".map(e => e.name).filter(n => !n.startsWith('data:'))")
        assert fetched == []
    finally:
        driver.quit()
