"""The status every kind writes, judged by kstatus itself: sigs.k8s.io/cli-utils'
``status.Compute``, the library Flux's health checks (``wait: true``, ``healthChecks``) and
kpt run, built from its pinned module (hack/gitops/kstatus).

The statuses come from the real status code: the shared helpers (``api/conditions.py``,
``reconcile/status.py``) for all four kinds, and, for MCPServer, its condition logic over
every availability and verification outcome. What the operator means by each, and so what
Flux must conclude:

- ``Ready=True`` -> Current: the object is done and healthy;
- ``Stalled=True`` -> Failed, with the operator's message: it needs a person;
- anything else (Reconciling, a transient failure retried with backoff, an MCPServer scaled
  to zero) -> InProgress, with the operator's message: Flux keeps waiting, and on timeout
  reports that message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import product
from typing import Any

import pytest

from devserver_operator.api import ALL_KINDS, API_VERSION, KindInfo
from devserver_operator.api.conditions import (
    DesiredCondition,
    not_ready,
    ready,
    reconciling,
    stalled,
)
from devserver_operator.api.crd import build_crd
from devserver_operator.api.mcpserver import MCPServerSpec
from devserver_operator.observe.mcpserver import Availability, Verification, conditions_for
from devserver_operator.reconcile.status import status_patch
from tests.support.gitops import Verdict, kstatus

NOW = datetime(2026, 11, 1, tzinfo=UTC)
CURRENT, IN_PROGRESS, FAILED, TERMINATING = "Current", "InProgress", "Failed", "Terminating"


@dataclass(frozen=True)
class Sample:
    obj: dict[str, Any]
    expected: str
    message: str | None
    """The message Flux must show (None: kstatus' own words, e.g. "Resource is Ready")."""


def written(kind: str, desired: list[DesiredCondition], *, generation: int = 2) -> dict[str, Any]:
    status = status_patch({}, desired, generation=generation, now=NOW)
    info = next(i for i in ALL_KINDS if i.kind == kind)
    # What the operator writes is valid for the kind's status schema.
    info.status_model.model_validate(status)
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": "x", "namespace": "ns", "generation": generation},
        "status": status,
    }


def unobserved(info: KindInfo) -> dict[str, Any]:
    schema = build_crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return {
        "apiVersion": API_VERSION,
        "kind": info.kind,
        "metadata": {"name": "new", "namespace": "ns", "generation": 1},
        "status": schema["properties"]["status"].get("default"),
    }


def message_of(obj: dict[str, Any], expected: str) -> str | None:
    """The message Flux shows: the operator's own (Ready's), unless the object is Current."""
    if expected == CURRENT:
        return None
    return next(c["message"] for c in obj["status"]["conditions"] if c["type"] == "Ready")


def mcpserver_expected(
    spec: MCPServerSpec, availability: Availability, verification: Verification | None
) -> str:
    """What Flux must conclude for each MCPServer outcome: decided from the outcome, not from
    the status written for it, so a wrong condition rule shows up as a wrong verdict."""
    if availability.reason == "ProgressDeadlineExceeded":
        return FAILED  # the Deployment reads Failed to kstatus; so must its MCPServer
    if availability.status != "True":
        return IN_PROGRESS  # waiting for pods, or stopped on purpose (ScaledToZero)
    if not spec.verification_settings.enabled:
        return CURRENT
    if verification is None or verification.status == "Unknown":
        return IN_PROGRESS  # Flux waits for the first MCP handshake
    if verification.status == "True":
        return CURRENT
    return FAILED if verification.reason == "NotMCP" else IN_PROGRESS


# -- the samples -----------------------------------------------------------------------

SHAPES = {
    "ready": (ready("Reconciled", "done"), CURRENT),
    "first-sight": (reconciling("Initializing", "first sight"), IN_PROGRESS),
    "reconciling-ready-false": (
        reconciling("Retrying", "again", ready_status="False"),
        IN_PROGRESS,
    ),
    "stalled": (stalled("InvalidSpec", "spec.x: bad"), FAILED),
    "transient-failure": (not_ready("ApiUnavailable", "retrying"), IN_PROGRESS),
}

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


def samples() -> dict[str, Sample]:
    found: dict[str, Sample] = {}
    for kind, (shape, (desired, expected)) in product([i.kind for i in ALL_KINDS], SHAPES.items()):
        obj = written(kind, desired)
        found[f"{kind}-{shape}"] = Sample(obj, expected, message_of(obj, expected))
        # A status about an older generation says nothing about the spec Flux just applied.
        older = written(kind, desired)
        older["metadata"]["generation"] = 3
        found[f"{kind}-{shape}-older-generation"] = Sample(older, IN_PROGRESS, None)
        # An object being deleted is Terminating, whatever its status says.
        leaving = written(kind, desired)
        leaving["metadata"]["deletionTimestamp"] = "2026-11-01T00:00:00Z"
        found[f"{kind}-{shape}-deleting"] = Sample(leaving, TERMINATING, None)
    for info in ALL_KINDS:
        # A new object as the API server serves it before the operator's first status write
        # (the CRD's status default): Flux must wait, not call it healthy.
        found[f"{info.kind}-unobserved"] = Sample(unobserved(info), IN_PROGRESS, None)
    for spec, availability, verification in product(SPECS, AVAILABILITIES, VERIFICATIONS):
        obj = written("MCPServer", conditions_for(SPECS[spec], availability, verification))
        expected = mcpserver_expected(SPECS[spec], availability, verification)
        outcome = verification.reason if verification else "none"
        name = f"MCPServer-{spec}-{availability.reason}-{outcome}"
        found[name] = Sample(obj, expected, message_of(obj, expected))
    return found


SAMPLES = samples()


@pytest.fixture(scope="module")
def verdicts() -> dict[str, Verdict]:
    """One kstatus run for every sample (a process per case would dominate the time)."""
    names = list(SAMPLES)
    judged = kstatus([SAMPLES[name].obj for name in names])
    return dict(zip(names, judged, strict=True))


@pytest.mark.parametrize("name", list(SAMPLES))
def test_kstatus_reads_every_status_as_the_operator_means_it(
    name: str, verdicts: dict[str, Verdict]
) -> None:
    sample, verdict = SAMPLES[name], verdicts[name]
    assert verdict.error == ""
    assert verdict.status == sample.expected, verdict
    if sample.message is not None:
        assert verdict.message == sample.message


def test_the_samples_cover_every_outcome() -> None:
    expected = {sample.expected for sample in SAMPLES.values()}
    assert expected == {CURRENT, IN_PROGRESS, FAILED, TERMINATING}
    kinds = {sample.obj["kind"] for sample in SAMPLES.values()}
    assert kinds == {info.kind for info in ALL_KINDS}


def test_a_stopped_mcpserver_keeps_flux_waiting(verdicts: dict[str, Verdict]) -> None:
    # Ready=False (ScaledToZero) without Reconciling: kstatus reads a False Ready as work in
    # progress, so `wait: true` over an MCPServer with replicas: 0 runs into its timeout.
    verdict = verdicts["MCPServer-verifying-ScaledToZero-none"]
    assert (verdict.status, verdict.message) == (
        IN_PROGRESS,
        "replicas is 0: the server is stopped.",
    )
