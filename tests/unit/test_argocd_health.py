"""The Argo CD health check (gitops/argocd/health.lua), judged by Argo CD's own code.

The script runs through argo-cd v3's health assessment (hack/gitops/argocd-health): the
settings manager reads gitops/argocd/argocd-cm.yaml, the ConfigMap users apply (generated
from health.lua), and gitops-engine's ``GetResourceHealth`` runs the matching override in
Argo CD's gopher-lua sandbox, as the application controller does for every live resource.
The cases follow Argo CD's own layout (health_test.yaml + testdata/), so the check can go
upstream into Argo CD's resource_customizations as it is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from devserver_operator.api import ALL_KINDS, API_VERSION
from devserver_operator.api.conditions import not_ready, ready, reconciling, stalled
from devserver_operator.manifests import argocd_cm
from devserver_operator.reconcile.status import status_patch
from tests.support.gitops import ARGOCD_CM, argocd_health

REPO = Path(__file__).resolve().parents[2]
ARGOCD = REPO / "gitops" / "argocd"
HEALTH_LUA = ARGOCD / "health.lua"
NOW = datetime(2026, 11, 1, tzinfo=UTC)
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def health(obj: dict[str, Any]) -> dict[str, str]:
    (verdict,) = argocd_health([obj])
    assert verdict.error == "", verdict
    return {"status": verdict.status, "message": verdict.message}


TEST_CASES = yaml.safe_load((ARGOCD / "health_test.yaml").read_text())["tests"]


@pytest.fixture(scope="module")
def case_health() -> dict[str, dict[str, str]]:
    """One Argo CD run for every case (each run starts Argo CD's settings informers)."""
    objects = [yaml.safe_load((ARGOCD / c["inputPath"]).read_text()) for c in TEST_CASES]
    verdicts = argocd_health(objects)
    return {
        case["inputPath"]: {"status": v.status, "message": v.message, "error": v.error}
        for case, v in zip(TEST_CASES, verdicts, strict=True)
    }


@pytest.mark.parametrize("case", TEST_CASES, ids=[c["inputPath"] for c in TEST_CASES])
def test_argocd_health_test_cases(
    case: dict[str, Any], case_health: dict[str, dict[str, str]]
) -> None:
    expected = {**case["healthStatus"], "error": ""}
    assert case_health[case["inputPath"]] == expected


def test_every_testdata_file_is_a_case_and_every_kind_is_covered() -> None:
    listed = {case["inputPath"] for case in TEST_CASES}
    on_disk = {f"testdata/{p.name}" for p in (ARGOCD / "testdata").glob("*.yaml")}
    assert listed == on_disk
    kinds = {yaml.safe_load((ARGOCD / path).read_text())["kind"] for path in listed}
    assert kinds == {info.kind for info in ALL_KINDS}
    statuses = {case["healthStatus"]["status"] for case in TEST_CASES}
    assert statuses == {"Healthy", "Progressing", "Degraded", "Suspended"}


def _object(kind: str, generation: int, status: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": "x", "namespace": "ns", "generation": generation},
        "status": status,
    }


@pytest.mark.parametrize("kind", [info.kind for info in ALL_KINDS])
@pytest.mark.parametrize(
    ("desired", "expected"),
    [
        (ready("Reconciled", "fine"), "Healthy"),
        (reconciling("Initializing", "starting"), "Progressing"),
        (stalled("InvalidSpec", "spec.x: bad"), "Degraded"),
        (not_ready("ApiUnavailable", "try later"), "Degraded"),
    ],
    ids=["ready", "reconciling", "stalled", "not-ready"],
)
def test_statuses_from_the_real_status_helpers(kind: str, desired: Any, expected: str) -> None:
    status = status_patch({}, desired, generation=3, now=NOW)
    result = health(_object(kind, 3, status))
    assert result["status"] == expected
    assert result["message"] == desired[0].message


def test_a_newer_generation_is_progressing_even_when_ready() -> None:
    status = status_patch({}, ready("Reconciled", "fine"), generation=3, now=NOW)
    assert health(_object("MCPServer", 4, status))["status"] == "Progressing"


def test_argo_statuses_are_the_ones_argo_knows() -> None:
    for case in TEST_CASES:
        assert case["healthStatus"]["status"] in ARGO_STATUSES


def test_the_chart_and_the_docs_ship_the_tested_configuration() -> None:
    script = HEALTH_LUA.read_text(encoding="utf-8")
    shipped = REPO / "charts" / "devserver-operator" / "files" / "generated" / "argocd-health.lua"
    assert shipped.read_text(encoding="utf-8") == script
    docs = (REPO / "docs" / "gitops.md").read_text(encoding="utf-8")
    assert argocd_cm(script) in docs, "docs/gitops.md must show gitops/argocd/argocd-cm.yaml"


def test_argo_cd_ignores_an_argocd_cm_without_its_label(tmp_path: Path) -> None:
    # Argo CD's settings informer lists only ConfigMaps labelled part-of=argocd: the label in
    # the shipped ConfigMap is load-bearing, and this run shows the check notices its loss.
    text = ARGOCD_CM.read_text(encoding="utf-8")
    unlabelled = tmp_path / "argocd-cm.yaml"
    unlabelled.write_text(text.replace("app.kubernetes.io/part-of: argocd", "x: y"))
    obj = yaml.safe_load((ARGOCD / "testdata" / "stalled.yaml").read_text())
    with pytest.raises(RuntimeError, match='configmap "argocd-cm" not found'):
        argocd_health([obj], unlabelled)


def test_the_check_can_fail() -> None:
    status = status_patch({}, stalled("InvalidSpec", "bad"), generation=1, now=NOW)
    assert health(_object("AlertRule", 1, status))["status"] != "Healthy"
