"""The Argo CD health check (gitops/argocd/health.lua), run in Lua 5.1 as Argo CD runs it.

Argo CD evaluates health checks with gopher-lua, a Lua 5.1: lupa's Lua 5.1 runtime gives the
same language. The cases follow Argo CD's own layout (health_test.yaml + testdata/), so the
check can go upstream into Argo CD's resource_customizations as it is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

from devserver_operator.api import ALL_KINDS, API_VERSION
from devserver_operator.api.conditions import not_ready, ready, reconciling, stalled
from devserver_operator.reconcile.status import status_patch

REPO = Path(__file__).resolve().parents[2]
ARGOCD = REPO / "gitops" / "argocd"
HEALTH_LUA = ARGOCD / "health.lua"
NOW = datetime(2026, 11, 1, tzinfo=UTC)
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def lua_value(runtime: Any, value: Any) -> Any:
    """Python data as Argo CD hands it to Lua: objects and arrays become tables."""
    if isinstance(value, dict):
        return runtime.table_from({k: lua_value(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([lua_value(runtime, v) for v in value])
    return value


def health(obj: dict[str, Any]) -> dict[str, str]:
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    # Argo CD sets the object as the global `obj` and runs the script as a chunk.
    runtime.globals().obj = lua_value(runtime, obj)
    result = runtime.execute(HEALTH_LUA.read_text(encoding="utf-8"))
    return {"status": result["status"], "message": result["message"]}


TEST_CASES = yaml.safe_load((ARGOCD / "health_test.yaml").read_text())["tests"]


@pytest.mark.parametrize("case", TEST_CASES, ids=[c["inputPath"] for c in TEST_CASES])
def test_argocd_health_test_cases(case: dict[str, Any]) -> None:
    obj = yaml.safe_load((ARGOCD / case["inputPath"]).read_text())
    assert health(obj) == case["healthStatus"]


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


def test_the_chart_and_the_docs_ship_the_same_script() -> None:
    script = HEALTH_LUA.read_text(encoding="utf-8")
    shipped = REPO / "charts" / "devserver-operator" / "files" / "generated" / "argocd-health.lua"
    assert shipped.read_text(encoding="utf-8") == script
    docs = (REPO / "docs" / "gitops.md").read_text(encoding="utf-8")
    indented = "".join(f"        {line}\n" if line else "\n" for line in script.splitlines())
    assert indented in docs, "docs/gitops.md must carry health.lua verbatim (indented 8 spaces)"


def test_the_check_can_fail() -> None:
    status = status_patch({}, stalled("InvalidSpec", "bad"), generation=1, now=NOW)
    assert health(_object("AlertRule", 1, status))["status"] != "Healthy"
