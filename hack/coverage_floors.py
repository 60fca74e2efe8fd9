"""The coverage floors of the test suite; hack/test.sh runs this after pytest.

pytest-cov has combined the data of both xdist workers and of every operator process the tests
started into coverage/data/.coverage (pyproject.toml, [tool.coverage.run]). The floors count
lines and branches together, as coverage's own total does:

- api/ and builders/ at least 95 %: they are pure code, every branch is testable;
- the package as a whole at least 85 %.

Lines that cannot run here are listed with the reason in docs/testing.md ("Coverage").

Usage: .venv/bin/python hack/coverage_floors.py
"""

from __future__ import annotations

import io
import sys

import coverage

FLOORS: dict[str, float] = {"api/": 95.0, "builders/": 95.0, "": 85.0}


def measured(data: coverage.Coverage, part: str) -> float:
    """Percentage of lines and branches covered in devserver_operator/``part``."""
    # A pattern that starts with "*/" matches absolute paths; coverage reads others as
    # relative to the current directory.
    return float(data.report(include=[f"*/devserver_operator/{part}*"], file=io.StringIO()))


def main() -> int:
    data = coverage.Coverage()
    try:
        data.load()
        results = {part: measured(data, part) for part in FLOORS}
    except coverage.exceptions.NoDataError as error:
        print(f"coverage floors: no coverage data ({error}); did pytest run with --cov?")
        return 1
    failed = False
    for part, floor in FLOORS.items():
        percent = results[part]
        verdict = "ok" if percent >= floor else "BELOW THE FLOOR"
        failed = failed or percent < floor
        name = f"devserver_operator/{part}" if part else "devserver_operator (all)"
        print(f"coverage {name:<32} {percent:6.2f} %  (floor {floor:.0f} %)  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
