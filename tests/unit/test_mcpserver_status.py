"""MCPServer status from observations: Available from the Deployment, Ready from both."""

from __future__ import annotations

from typing import Any

import pytest

from devserver_operator.api.conditions import check_kstatus
from devserver_operator.api.mcpserver import MCPServerSpec
from devserver_operator.observe.mcpserver import (
    Availability,
    Verification,
    availability_from_deployment,
    conditions_for,
)

WORKLOAD = MCPServerSpec(image="ghcr.io/example/server:1.0.0")
REMOTE = MCPServerSpec(url="https://mcp.example.com/mcp")
UNVERIFIED = MCPServerSpec.model_validate({"image": "a/b:1", "verification": {"enabled": False}})


def deployment(
    *, replicas: int = 1, ready: int = 0, generation: int = 1, observed: int = 1, **conditions: Any
) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "replicas": replicas,
            "readyReplicas": ready,
            "conditions": [
                {"type": name, "status": value[0], "reason": value[1], "message": "m"}
                for name, value in conditions.items()
            ],
        },
    }


@pytest.mark.parametrize(
    ("observed", "expected"),
    [
        (None, ("Unknown", "DeploymentPending")),
        (deployment(replicas=0), ("False", "ScaledToZero")),
        (deployment(generation=2, observed=1), ("Unknown", "DeploymentProgressing")),
        (
            deployment(Progressing=("False", "ProgressDeadlineExceeded")),
            ("False", "ProgressDeadlineExceeded"),
        ),
        (
            deployment(ready=1, Available=("True", "MinimumReplicasAvailable")),
            ("True", "MinimumReplicasAvailable"),
        ),
        (
            deployment(ready=0, Available=("False", "MinimumReplicasUnavailable")),
            ("False", "PodsNotReady"),
        ),
    ],
)
def test_availability_from_deployment(
    observed: dict[str, Any] | None, expected: tuple[str, str]
) -> None:
    result = availability_from_deployment(WORKLOAD, observed)
    assert (result.status, result.reason) == expected


def test_remote_servers_are_always_available() -> None:
    assert availability_from_deployment(REMOTE, None).reason == "Remote"


AVAILABLE = Availability("True", "MinimumReplicasAvailable", "1/1 pods ready.")
VERIFIED = Verification("True", "HandshakeSucceeded", "ok")
FAILED = Verification("False", "NotMCP", "an HTML page")
UNREACHABLE = Verification("False", "ConnectionFailed", "connection refused.")
PENDING = Verification("Unknown", "Pending", "not yet")


@pytest.mark.parametrize(
    ("spec", "availability", "verification", "ready", "extra"),
    [
        (WORKLOAD, AVAILABLE, VERIFIED, "True", set()),
        (WORKLOAD, AVAILABLE, FAILED, "False", {"Stalled"}),
        (WORKLOAD, AVAILABLE, UNREACHABLE, "False", {"Reconciling"}),
        (WORKLOAD, AVAILABLE, PENDING, "Unknown", {"Reconciling"}),
        (WORKLOAD, AVAILABLE, None, "Unknown", {"Reconciling"}),
        (UNVERIFIED, AVAILABLE, None, "True", set()),
        (WORKLOAD, Availability("False", "PodsNotReady", "0/1"), PENDING, "False", {"Reconciling"}),
        (WORKLOAD, Availability("False", "ScaledToZero", "stopped"), PENDING, "False", set()),
        (
            WORKLOAD,
            Availability("False", "ProgressDeadlineExceeded", "stuck"),
            PENDING,
            "False",
            {"Stalled"},
        ),
        (
            WORKLOAD,
            Availability("Unknown", "DeploymentPending", "none"),
            None,
            "False",
            {"Reconciling"},
        ),
    ],
)
def test_ready_needs_available_and_verified(
    spec: MCPServerSpec,
    availability: Availability,
    verification: Verification | None,
    ready: str,
    extra: set[str],
) -> None:
    conditions = conditions_for(spec, availability, verification)
    check_kstatus(conditions)
    by_type = {c.type: c for c in conditions}
    assert by_type["Ready"].status == ready
    assert {"Reconciling", "Stalled"} & set(by_type) == extra
    assert by_type["Available"].status == availability.status
    if spec.verification_settings.enabled and verification is not None:
        assert by_type["Verified"].reason == verification.reason
    else:
        assert "Verified" not in by_type


def test_failed_verification_explains_ready() -> None:
    conditions = conditions_for(WORKLOAD, AVAILABLE, FAILED)
    ready = next(c for c in conditions if c.type == "Ready")
    assert (ready.reason, ready.message) == ("NotMCP", "an HTML page")
