"""Run CPython regression-test modules and write each test's outcome.

    python3 unittest_outcomes.py OUT MODULE...

Loads test.MODULE for each MODULE with unittest, runs them all in this
process, and writes OUT: one line per test, "<test id> <outcome>" sorted
(ok, skipped, failure, error, expected-failure, unexpected-success), then
the totals.  The tests' own output goes wherever it goes; OUT holds only
what does not depend on timing, so two runs (glibc, goalloc) compare
exactly.  Run with the Debian python3 and its libpython3.x-testsuite.
"""
import sys
import unittest


class Outcomes(unittest.TestResult):
    def __init__(self) -> None:
        super().__init__()
        self.outcome: dict[str, str] = {}

    def addSuccess(self, test):  # noqa: N802 (unittest's names)
        super().addSuccess(test)
        self.outcome[test.id()] = "ok"

    def addFailure(self, test, err):  # noqa: N802
        super().addFailure(test, err)
        self.outcome[test.id()] = "failure"

    def addError(self, test, err):  # noqa: N802
        super().addError(test, err)
        self.outcome[test.id()] = "error"

    def addSkip(self, test, reason):  # noqa: N802
        super().addSkip(test, reason)
        self.outcome[test.id()] = "skipped"

    def addExpectedFailure(self, test, err):  # noqa: N802
        super().addExpectedFailure(test, err)
        self.outcome[test.id()] = "expected-failure"

    def addUnexpectedSuccess(self, test):  # noqa: N802
        super().addUnexpectedSuccess(test)
        self.outcome[test.id()] = "unexpected-success"


def main() -> int:
    out, modules = sys.argv[1], sys.argv[2:]
    suite = unittest.defaultTestLoader.loadTestsFromNames(
        [f"test.{m}" for m in modules])
    result = Outcomes()
    suite.run(result)
    counts: dict[str, int] = {}
    for v in result.outcome.values():
        counts[v] = counts.get(v, 0) + 1
    with open(out, "w", encoding="utf-8") as f:
        for name in sorted(result.outcome):
            f.write(f"{name} {result.outcome[name]}\n")
        f.write(f"modules {len(modules)} tests {result.testsRun} "
                + " ".join(f"{k} {counts[k]}" for k in sorted(counts))
                + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
