"""hack/coverage_floors.py: the run fails when api/ or builders/ fall under 95 % or the
package under 85 %, and says which; it passes when all three hold."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import coverage

SCRIPT = Path(__file__).resolve().parents[2] / "hack" / "coverage_floors.py"
LINES = 20


def measured_package(root: Path, executed: dict[str, int]) -> None:
    """A package of three modules of LINES statements, and coverage data in which the first
    ``executed[part]`` statements of each ran."""
    data = coverage.CoverageData(basename=str(root / ".coverage"))
    lines: dict[str, list[int]] = {}
    for part, count in executed.items():
        module = root / "operator" / "devserver_operator" / part / "module.py"
        module.parent.mkdir(parents=True, exist_ok=True)
        module.write_text("".join(f"value_{n} = {n}\n" for n in range(LINES)))
        lines[str(module)] = list(range(1, count + 1))
    data.add_lines(lines)
    data.write()


def floors(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT)], cwd=root, capture_output=True, text=True, check=False
    )


def verdicts(output: str) -> dict[str, tuple[str, str]]:
    """part -> (percent, verdict) from the script's lines."""
    found = {}
    for line in output.splitlines():
        match = re.fullmatch(r"coverage (.+?)\s+([\d.]+) %  \(floor \d+ %\)  (.+)", line)
        assert match, line
        found[match[1]] = (match[2], match[3])
    return found


def test_all_floors_held(tmp_path: Path) -> None:
    measured_package(tmp_path, {"api": 19, "builders": 20, "kinds": 16})
    result = floors(tmp_path)
    assert result.returncode == 0, result.stdout
    assert verdicts(result.stdout) == {
        "devserver_operator/api/": ("95.00", "ok"),
        "devserver_operator/builders/": ("100.00", "ok"),
        "devserver_operator (all)": ("91.67", "ok"),
    }


def test_a_pure_package_under_95_fails_the_run(tmp_path: Path) -> None:
    measured_package(tmp_path, {"api": 20, "builders": 18, "kinds": 20})
    result = floors(tmp_path)
    assert result.returncode == 1
    assert verdicts(result.stdout)["devserver_operator/builders/"] == ("90.00", "BELOW THE FLOOR")
    assert verdicts(result.stdout)["devserver_operator/api/"] == ("100.00", "ok")


def test_the_package_under_85_fails_the_run(tmp_path: Path) -> None:
    measured_package(tmp_path, {"api": 20, "builders": 20, "kinds": 5})
    result = floors(tmp_path)
    assert result.returncode == 1
    assert verdicts(result.stdout)["devserver_operator (all)"] == ("75.00", "BELOW THE FLOOR")


def test_no_data_fails_the_run(tmp_path: Path) -> None:
    result = floors(tmp_path)
    assert result.returncode == 1
    assert "no coverage data" in result.stdout
