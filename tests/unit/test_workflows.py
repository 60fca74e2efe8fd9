"""The GitHub Actions workflows: actionlint (built from its Go module by hack/actionlint.sh)
finds nothing, and the workflows do what the project promises."""

from __future__ import annotations

import re
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


USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", re.MULTILINE)


def test_every_action_is_pinned_by_commit_with_its_version() -> None:
    """A tag can be moved to other code; a commit cannot. The comment is what Dependabot and
    people read (docs/operations.md: the SHAs were taken from public pins of each release)."""
    found = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for reference, comment in USES.findall(path.read_text()):
            found.append(reference)
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", reference), (path, reference)
            assert re.fullmatch(r"\s*# v?\d+\.\d+\.\d+", comment), (path, reference, comment)
    assert len(found) > 20
    # One version per action across the workflows.
    versions: dict[str, set[str]] = {}
    for reference in found:
        action, sha = reference.split("@")
        versions.setdefault(action, set()).add(sha)
    assert {a: v for a, v in versions.items() if len(v) > 1} == {}


def release_steps() -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = workflow("release.yml")["jobs"]["image-and-chart"]["steps"]
    return steps


def test_release_scans_then_pushes_signs_and_attaches_install_yaml() -> None:
    steps = release_steps()
    uses = [s.get("uses", "").split("@")[0] for s in steps]
    scans = [i for i, u in enumerate(uses) if u == "aquasecurity/trivy-action"]
    builds = [i for i, u in enumerate(uses) if u == "docker/build-push-action"]
    # The operator's image, then the console's (the Dockerfile's `console` target): each is
    # built for a scan, scanned, then built for every platform and pushed.
    assert [steps[i]["with"].get("target") for i in builds] == [None, None, "console", "console"]
    assert len(scans) == 2
    for scan_index, (scanned_index, pushed_index) in zip(
        scans, [builds[0:2], builds[2:4]], strict=True
    ):
        scan, scanned, pushed = (
            steps[i]["with"] for i in (scan_index, scanned_index, pushed_index)
        )
        assert scan["severity"] == "CRITICAL"
        assert scan["ignore-unfixed"] is True
        assert scan["exit-code"] == "1"
        assert scanned["push"] is False and scanned["load"] is True
        assert scan["image-ref"] == scanned["tags"]
        assert scanned_index < scan_index < pushed_index, "scan before push"
        assert pushed["push"] is True and pushed["sbom"] is True and "provenance" in pushed
        assert uses.index("sigstore/cosign-installer") < pushed_index
    script = "\n".join(run_commands({"steps": steps}))
    assert 'cosign sign --yes "${IMAGE}@${DIGEST}"' in script
    assert 'cosign sign --yes "${CONSOLE_IMAGE}@${DIGEST}"' in script
    assert 'cosign sign --yes "${CHART_REPOSITORY}/devserver-operator@${digest}"' in script
    assert "hack/install-manifest.sh" in script and "dist/install.yaml" in script
    # The UI is built after the operator's image is pushed: its context must not carry it.
    assert builds[1] < next(
        i for i, s in enumerate(steps) if "console/build.sh" in s.get("run", "")
    )
    permissions = workflow("release.yml")["jobs"]["image-and-chart"]["permissions"]
    assert permissions["id-token"] == "write"


def test_nothing_is_tagged_latest() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        assert ":latest" not in path.read_text(), path.name


def test_ci_keeps_history_for_the_upgrade_test_and_uploads_coverage() -> None:
    job = workflow("ci.yml")["jobs"]["test"]
    checkout = job["steps"][0]
    assert checkout["with"]["fetch-depth"] == 0
    upload = next(s for s in job["steps"] if "upload-artifact" in s.get("uses", ""))
    assert upload["if"] == "always()"
    assert "coverage/html" in upload["with"]["path"]
