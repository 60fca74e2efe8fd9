"""The status every kind writes, read the way Flux reads it: kstatus.

Flux's health checks compute a resource's status with kstatus (sigs.k8s.io/cli-utils,
pkg/kstatus/status). For a custom resource without type-specific rules that is:

1. ``metadata.deletionTimestamp`` set -> Terminating;
2. ``status.observedGeneration`` present and not ``metadata.generation`` -> InProgress;
3. a condition ``Reconciling=True`` -> InProgress; a condition ``Stalled=True`` -> Failed;
4. otherwise -> Current (the controller is done; Ready is not consulted).

``kstatus`` below is that algorithm as a pure function. The statuses come from the real
status helpers (``api/conditions.py``, ``reconcile/status.py``) and, for MCPServer, from the
real condition logic over every availability and verification outcome. The point: Flux must
never call an object Current while the operator is still working on it, and must see Failed
for what needs a person.
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import product
from typing import Any

import pytest

from devserver_operator.api import ALL_KINDS
from devserver_operator.api.conditions import (
    DesiredCondition,
    not_ready,
    ready,
    reconciling,
    stalled,
)
from devserver_operator.api.mcpserver import MCPServerSpec
from devserver_operator.observe.mcpserver import Availability, Verification, conditions_for
from devserver_operator.reconcile.status import status_patch

NOW = datetime(2026, 11, 1, tzinfo=UTC)
CURRENT, IN_PROGRESS, FAILED, TERMINATING = "Current", "InProgress", "Failed", "Terminating"


def kstatus(obj: dict[str, Any]) -> str:
    """kstatus' generic status of a custom resource (no type-specific rules)."""
    metadata = obj.get("metadata") or {}
    if metadata.get("deletionTimestamp"):
        return TERMINATING
    status = obj.get("status") or {}
    observed = status.get("observedGeneration")
    if observed is not None and observed != metadata.get("generation"):
        return IN_PROGRESS
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Reconciling" and condition.get("status") == "True":
            return IN_PROGRESS
        if condition.get("type") == "Stalled" and condition.get("status") == "True":
            return FAILED
    return CURRENT


def written(desired: list[DesiredCondition], *, generation: int = 2) -> dict[str, Any]:
    status = status_patch({}, desired, generation=generation, now=NOW)
    return {"metadata": {"name": "x", "generation": generation}, "status": status}


def ready_status(obj: dict[str, Any]) -> str:
    return next(c["status"] for c in obj["status"]["conditions"] if c["type"] == "Ready")


# -- the algorithm itself --------------------------------------------------------------


def test_kstatus_reference_cases() -> None:
    assert kstatus({"metadata": {"generation": 1}}) == CURRENT
    assert kstatus({"metadata": {"generation": 2}, "status": {"observedGeneration": 1}}) == (
        IN_PROGRESS
    )
    assert kstatus({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}) == TERMINATING
    assert kstatus(written(stalled("X", "y"))) == FAILED


# -- every kind, through the shared helpers -------------------------------------------


@pytest.mark.parametrize("kind", [info.kind for info in ALL_KINDS])
@pytest.mark.parametrize(
    ("desired", "expected"),
    [
        (reconciling("Initializing", "first sight"), IN_PROGRESS),
        (stalled("InvalidSpec", "spec.x: bad"), FAILED),
        (ready("Reconciled", "done"), CURRENT),
        (not_ready("ApiUnavailable", "retrying"), CURRENT),
    ],
    ids=["first-sight", "stalled", "ready", "transient-failure"],
)
def test_every_kind_status_reads_as_intended(kind: str, desired: Any, expected: str) -> None:
    info = next(i for i in ALL_KINDS if i.kind == kind)
    obj = written(desired)
    # What the operator writes is valid for the kind's status schema ...
    info.status_model.model_validate(obj["status"])
    # ... and Flux reads it as intended.
    assert kstatus(obj) == expected


def test_a_status_of_an_older_generation_is_in_progress_whatever_it_says() -> None:
    obj = written(ready("Reconciled", "done"), generation=2)
    obj["metadata"]["generation"] = 3
    assert kstatus(obj) == IN_PROGRESS


def test_current_with_ready_true_only_when_nothing_is_abnormal() -> None:
    for desired in (ready(), reconciling("A", "b"), stalled("A", "b"), not_ready("A", "b")):
        obj = written(desired)
        if ready_status(obj) == "True":
            assert kstatus(obj) == CURRENT


# -- MCPServer: every outcome of its condition logic -----------------------------------

AVAILABILITIES = [
    Availability("True", "MinimumReplicasAvailable", "1/1 pods ready.", 1, 1),
    Availability("True", "Remote", "The server runs outside the cluster."),
    Availability("Unknown", "DeploymentPending", "The Deployment does not exist yet."),
    Availability("Unknown", "DeploymentProgressing", "not seen yet", 1, 0),
    Availability("False", "PodsNotReady", "0/1 pods ready.", 1, 0),
    Availability("False", "ProgressDeadlineExceeded", "stuck", 1, 0),
    Availability("False", "ScaledToZero", "replicas is 0: the server is stopped.", 0, 0),
]
VERIFICATIONS = [
    None,
    Verification("Unknown", "Pending", "The MCP handshake has not run yet."),
    Verification("Unknown", "NotAvailable", "Verification waits for the server."),
    Verification("True", "HandshakeSucceeded", "speaks MCP"),
    Verification("False", "NotMCP", "an HTML page, not MCP."),
    Verification("False", "ConnectionFailed", "connection refused."),
]
SPECS = {
    "verifying": MCPServerSpec.model_validate({"image": "ghcr.io/example/s:1"}),
    "not-verifying": MCPServerSpec.model_validate(
        {"image": "ghcr.io/example/s:1", "verification": {"enabled": False}}
    ),
}
# Stopped on purpose (replicas: 0): kstatus calls it Current; Argo CD's check
# (gitops/argocd/health.lua) shows it as Suspended.
SETTLED_WITHOUT_READY = {"ScaledToZero"}
# Failures that will not pass by themselves: Stalled, so Flux reports Failed at once.
FAILED_REASONS = {"ProgressDeadlineExceeded", "NotMCP"}

MCP_OUTCOMES = [
    (name, availability, verification)
    for name, availability, verification in product(SPECS, AVAILABILITIES, VERIFICATIONS)
]


@pytest.mark.parametrize(
    ("spec_name", "availability", "verification"),
    MCP_OUTCOMES,
    ids=[f"{s}-{a.reason}-{v.reason if v else 'none'}" for s, a, v in MCP_OUTCOMES],
)
def test_mcpserver_is_current_only_when_ready_or_settled(
    spec_name: str, availability: Availability, verification: Verification | None
) -> None:
    desired = conditions_for(SPECS[spec_name], availability, verification)
    obj = written(desired)
    result = kstatus(obj)
    ready_condition = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    settled = ready_condition["reason"] in SETTLED_WITHOUT_READY
    if ready_condition["status"] == "True" or settled:
        assert result == CURRENT
    elif ready_condition["reason"] in FAILED_REASONS:
        assert result == FAILED
    else:
        # Flux keeps waiting (and times out) while the operator retries.
        assert result == IN_PROGRESS, ready_condition


def test_mcpserver_waiting_for_pods_keeps_flux_waiting() -> None:
    desired = conditions_for(SPECS["verifying"], AVAILABILITIES[4], VERIFICATIONS[2])
    assert kstatus(written(desired)) == IN_PROGRESS


def test_mcpserver_verified_is_current() -> None:
    desired = conditions_for(SPECS["verifying"], AVAILABILITIES[0], VERIFICATIONS[3])
    obj = written(desired)
    assert kstatus(obj) == CURRENT and ready_status(obj) == "True"
