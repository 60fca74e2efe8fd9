"""The GitHub Actions workflows: actionlint (built from its Go module by hack/actionlint.sh)
finds nothing, and the workflows do what the project promises."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"


def workflow(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return loaded


def run_commands(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def test_actionlint_finds_nothing() -> None:
    result = subprocess.run(
        ["bash", str(REPO / "hack" / "actionlint.sh")],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ github.evnt }}\n"
    )
    result = subprocess.run(
        ["bash", str(REPO / "hack" / "actionlint.sh"), "-no-color", str(bad)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode != 0 and "evnt" in result.stdout


def test_ci_runs_what_the_test_script_runs() -> None:
    jobs = workflow("ci.yml")["jobs"]
    assert "bash .ci/run" in run_commands(jobs["test"])
    script = (REPO / "hack" / "test.sh").read_text()
    for line in "\n".join(run_commands(jobs["lint"])).splitlines():
        command = line.strip()
        if command.startswith(".venv/bin/"):
            assert command in script, command


def test_e2e_runs_kind_on_two_kubernetes_versions_and_keeps_evidence() -> None:
    job = workflow("e2e.yml")["jobs"]["kind"]
    assert len(job["strategy"]["matrix"]["kubernetes"]) == 2
    upload = next(
        s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact")
    )
    assert upload["if"] == "failure()"
    assert any("tests/e2e" in command for command in run_commands(job))


def test_every_workflow_declares_least_privilege() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        assert workflow(path.name).get("permissions") == {"contents": "read"}, path.name


def test_dependabot_covers_every_pinned_ecosystem() -> None:
    config = yaml.safe_load((REPO / ".github" / "dependabot.yml").read_text())
    ecosystems = {update["package-ecosystem"] for update in config["updates"]}
    assert {"uv", "github-actions", "docker", "gomod"} <= ecosystems
