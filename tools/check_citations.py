#!/usr/bin/env python3
"""Check that every section citation in the repository resolves.

A citation is the word "design" followed by a section sign and a section
number of docs/design.md, e.g. "design \u00a74.2" (see that document's
section 1.3).  This script finds every section sign in the files git
tracks (binary files aside) and fails when one

  * is not preceded by "design " (outside docs/design.md, where a bare
    section number refers to the document itself),
  * is not followed by a section number, or
  * names a section that docs/design.md does not have;

and when a file still names one of the design notes that used to live
outside the repository (their file names, "the facts sheet").

    python3 tools/check_citations.py                  # check, exit 1 if bad
    python3 tools/check_citations.py --report-only csrc/
                                  # problems under csrc/ are listed, not fatal
    python3 tools/check_citations.py --list           # every citation found
    python3 tools/check_citations.py --rewrite csrc   # apply citations.map

--rewrite applies the table in tools/citations.map (old citation -> design
section) to the tracked files under the given paths and then checks them.
The script itself contains no section sign, so that it can check itself.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DESIGN = "docs/design.md"
MAP = "tools/citations.map"   # holds the old citations: not checked
SELF = "tools/check_citations.py"  # names the old notes' files: no stale check
SECT = "\u00a7"

# "## 4. Title", "### 4.2 Title", "#### 4.2.1 Title"
HEADING = re.compile(r"^#{2,4} (\d+(?:\.\d+)*)\.? ")
# a section sign, the section number after it, and the word before it
CITE = re.compile(SECT + r"\s*(\d+(?:\.\d+)*)?")
DESIGN_WORD = re.compile(r"design\s*$", re.IGNORECASE)
WORD_BEFORE = re.compile(r"(\S+)\s*$")
# names of the notes that lived outside the repository
STALE = re.compile(
    r"go113-(?:allocator|gc)-facts|design/decisions|decisions\.md"
    r"|\bfacts (?:sheet|section \d)",
    re.IGNORECASE)


@dataclass
class Problem:
    path: str
    line: int
    text: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.why}: {self.text.strip()}"


def design_sections(root: Path = ROOT) -> set[str]:
    """The section numbers docs/design.md defines ("4", "4.2", ...)."""
    out = set()
    for line in (root / DESIGN).read_text(encoding="utf-8").splitlines():
        m = HEADING.match(line)
        if m:
            out.add(m.group(1))
    return out


def tracked_files(root: Path = ROOT) -> list[str]:
    """Files git tracks (plus untracked, not ignored ones), as paths
    relative to root; without git, every file outside .git and build."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others",
             "--exclude-standard"],
            cwd=root, check=True, capture_output=True).stdout
        names = sorted({n for n in out.decode().split("\0") if n})
        return [n for n in names if (root / n).is_file()]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", "build"}
        return sorted(
            str(p.relative_to(root)) for p in root.rglob("*")
            if p.is_file() and not skip & set(p.relative_to(root).parts))


def read_text(root: Path, path: str) -> str | None:
    data = (root / path).read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


@dataclass
class Citation:
    path: str
    line: int
    section: str | None
    text: str


def scan(path: str, text: str, sections: set[str]
         ) -> tuple[list[Citation], list[Problem]]:
    """The citations in text and what is wrong with them."""
    cites: list[Citation] = []
    problems: list[Problem] = []
    in_design = path == DESIGN
    prev = ""
    for lineno, line in enumerate(text.splitlines(), 1):
        for m in CITE.finditer(line):
            sec = m.group(1)
            cites.append(Citation(path, lineno, sec, line))
            if sec is None:
                problems.append(Problem(path, lineno, line,
                                        "a section sign without a number"))
                continue
            before = line[:m.start()]
            # "design" may end the previous line of a wrapped comment
            wrapped = (not before.strip(" \t*#/>-")
                       and DESIGN_WORD.search(prev) is not None)
            if (not in_design and not wrapped
                    and not DESIGN_WORD.search(before)):
                w = WORD_BEFORE.search(before)
                word = w.group(1).lstrip("(\"'#*/") if w else ""
                old = f"{word} {SECT}{sec}" if word else f"{SECT}{sec}"
                problems.append(Problem(
                    path, lineno, line,
                    f"'{old}' is no 'design {SECT}N' citation "
                    f"({MAP} translates old ones)"))
            elif sec not in sections:
                problems.append(Problem(
                    path, lineno, line,
                    f"design {SECT}{sec}: no such section in {DESIGN}"))
        for m in STALE.finditer(line if path != SELF else ""):
            problems.append(Problem(
                path, lineno, line,
                f"'{m.group(0)}' names a document outside the repository "
                f"(cite {DESIGN})"))
        prev = line
    return cites, problems


# ---- the rewrite table ---------------------------------------------------

def load_map(root: Path = ROOT) -> list[tuple[str, str]]:
    rules = []
    for n, line in enumerate((root / MAP).read_text(encoding="utf-8")
                             .splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t->\t")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise SystemExit(f"{MAP}:{n}: expected 'OLD<TAB>-><TAB>NEW'")
        rules.append((parts[0], parts[1]))
    return rules


def _ends_number(old: str, line: str, end: int) -> bool:
    """An OLD ending in a digit must not match the front of a longer
    number: "4.1" is not the front of "4.10" or "4.1.2"."""
    if not old[-1].isdigit() or end >= len(line):
        return True
    nxt = line[end]
    if nxt.isdigit():
        return False
    return not (nxt == "." and end + 1 < len(line) and line[end + 1].isdigit())


def rewrite_line(line: str, rules: list[tuple[str, str]]) -> tuple[str, int]:
    """Apply the first rule that matches at each position, left to right."""
    out = []
    i = 0
    n = 0
    while i < len(line):
        for old, new in rules:
            end = i + len(old)
            if line.startswith(old, i) and _ends_number(old, line, end):
                out.append(new)
                i = end
                n += 1
                break
        else:
            out.append(line[i])
            i += 1
    return "".join(out), n


def rewrite(paths: list[str], root: Path = ROOT) -> int:
    """Rewrite old citations in the tracked files under paths; returns the
    number of replacements."""
    rules = load_map(root)
    prefixes = [p.rstrip("/") for p in paths]
    total = 0
    for path in tracked_files(root):
        if path == MAP or not any(path == p or path.startswith(p + "/")
                                  for p in prefixes):
            continue
        text = read_text(root, path)
        if text is None or SECT not in text:
            continue
        lines = text.split("\n")
        count = 0
        for k, line in enumerate(lines):
            lines[k], c = rewrite_line(line, rules)
            count += c
        if count:
            (root / path).write_text("\n".join(lines), encoding="utf-8")
            print(f"{path}: {count} citation(s) rewritten")
            total += count
    print(f"rewrote {total} citation(s)")
    return total


# ---- main ----------------------------------------------------------------

def check(root: Path = ROOT, report_only: list[str] | None = None,
          only: list[str] | None = None, listing: bool = False) -> int:
    sections = design_sections(root)
    report_only = [p.rstrip("/") for p in report_only or []]
    only = [p.rstrip("/") for p in only or []]

    def under(path: str, prefixes: list[str]) -> bool:
        return any(path == p or path.startswith(p + "/") for p in prefixes)

    fatal: list[Problem] = []
    reported: list[Problem] = []
    ncites = 0
    for path in tracked_files(root):
        if path == MAP or (only and not under(path, only)):
            continue
        text = read_text(root, path)
        if text is None:
            continue
        cites, problems = scan(path, text, sections)
        ncites += len(cites)
        if listing:
            for c in cites:
                print(f"{c.path}:{c.line}: {SECT}{c.section}")
        (reported if under(path, report_only) else fatal).extend(problems)
    for p in reported:
        print(f"report: {p}")
    for p in fatal:
        print(f"error: {p}")
    print(f"check_citations: {ncites} citation(s), {len(sections)} sections "
          f"in {DESIGN}; {len(fatal)} error(s)"
          + (f", {len(reported)} reported under {', '.join(report_only)}"
             if report_only else ""))
    return 1 if fatal else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--report-only", action="append", default=[],
                    metavar="PATH",
                    help="list problems under PATH without failing "
                         "(repeatable)")
    ap.add_argument("--list", action="store_true",
                    help="print every citation found")
    ap.add_argument("--rewrite", nargs="+", metavar="PATH",
                    help=f"apply {MAP} to the files under PATH, then check "
                         "them")
    args = ap.parse_args(argv)
    if args.rewrite:
        rewrite(args.rewrite)
        return check(only=args.rewrite)
    return check(report_only=args.report_only, listing=args.list)


if __name__ == "__main__":
    sys.exit(main())
