"""MCPServer status from what the operator observed. Pure: inputs in, conditions out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from devserver_operator.api.conditions import (
    READY,
    RECONCILING,
    ConditionStatus,
    DesiredCondition,
    stalled,
)
from devserver_operator.api.mcpserver import MAX_TOOLS_IN_STATUS, MCPServerSpec

AVAILABLE = "Available"
# Handshake failures that retrying will not fix without a change to the server or the spec
# (a wrong URL, a non-MCP endpoint, a broken server). They are Stalled, so Flux and other
# kstatus readers see a failure at once. Connection failures, timeouts and HTTP errors may
# pass (a server still starting, a network blip): they stay Reconciling while retried.
PERMANENT_VERIFICATION_FAILURES = frozenset(
    {
        "NotMCP",
        "InvalidJSONRPC",
        "ProtocolError",
        "UnsupportedProtocolVersion",
        "TooManyTools",
        "ResponseTooLarge",
        "InvalidURL",
        "InvalidHeaders",
    }
)
VERIFIED = "Verified"
MAX_DESCRIPTION = 256


@dataclass(frozen=True)
class Availability:
    status: ConditionStatus
    reason: str
    message: str
    replicas: int | None = None
    ready_replicas: int | None = None


@dataclass(frozen=True)
class Verification:
    status: ConditionStatus
    reason: str
    message: str
    fields: Mapping[str, Any] | None = None  # serverInfo, tools, toolCount, lastVerifiedTime


def availability_from_deployment(
    spec: MCPServerSpec, deployment: Mapping[str, Any] | None
) -> Availability:
    """Available from the Deployment's own conditions and counts."""
    if spec.url is not None:
        return Availability("True", "Remote", "The server runs outside the cluster.")
    if deployment is None:
        return Availability("Unknown", "DeploymentPending", "The Deployment does not exist yet.")
    status = deployment.get("status") or {}
    replicas = int(status.get("replicas") or 0)
    ready = int(status.get("readyReplicas") or 0)
    desired = (deployment.get("spec") or {}).get("replicas")
    if desired == 0:
        return Availability(
            "False", "ScaledToZero", "replicas is 0: the server is stopped.", replicas, ready
        )
    generation = (deployment.get("metadata") or {}).get("generation")
    if generation is not None and status.get("observedGeneration") != generation:
        return Availability(
            "Unknown",
            "DeploymentProgressing",
            "The Deployment controller has not seen the latest spec yet.",
            replicas,
            ready,
        )
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    progressing = conditions.get("Progressing") or {}
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return Availability(
            "False",
            "ProgressDeadlineExceeded",
            f"The rollout is stuck: {progressing.get('message', 'no progress')}",
            replicas,
            ready,
        )
    available = conditions.get("Available") or {}
    if available.get("status") == "True" and ready > 0:
        return Availability(
            "True", "MinimumReplicasAvailable", f"{ready}/{replicas} pods ready.", replicas, ready
        )
    return Availability(
        "False", "PodsNotReady", f"{ready}/{desired or replicas} pods ready.", replicas, ready
    )


def verification_fields(result: Any, now: datetime) -> dict[str, Any]:
    """Status fields from a successful McpProbeResult."""
    tools = [
        {
            "name": tool.name,
            **({"description": tool.description[:MAX_DESCRIPTION]} if tool.description else {}),
        }
        for tool in result.tools[:MAX_TOOLS_IN_STATUS]
    ]
    return {
        "serverInfo": {
            "name": result.server_name,
            "version": result.server_version,
            "protocolVersion": result.protocol_version,
            "capabilities": list(result.capabilities),
        },
        "tools": tools,
        "toolCount": result.tool_count,
        "lastVerifiedTime": now.isoformat().replace("+00:00", "Z"),
    }


def conditions_for(
    spec: MCPServerSpec, availability: Availability, verification: Verification | None
) -> list[DesiredCondition]:
    """Ready needs Available and (Verified, or verification disabled)."""
    detail = [
        DesiredCondition(
            type=AVAILABLE,
            status=availability.status,
            reason=availability.reason,
            message=availability.message,
        )
    ]
    verifying = spec.verification_settings.enabled
    if verifying and verification is not None:
        detail.append(
            DesiredCondition(
                type=VERIFIED,
                status=verification.status,
                reason=verification.reason,
                message=verification.message,
            )
        )
    if availability.reason == "ScaledToZero":
        return [
            DesiredCondition(
                type=READY, status="False", reason="ScaledToZero", message=availability.message
            ),
            *detail,
        ]
    if availability.status != "True":
        waiting = f"Waiting for the server to become available: {availability.message}"
        if availability.status == "False" and availability.reason == "ProgressDeadlineExceeded":
            # The Deployment itself reads as Failed to kstatus; so does its MCPServer.
            return [*stalled(availability.reason, waiting), *detail]
        return [
            DesiredCondition(
                type=READY, status="False", reason=availability.reason, message=waiting
            ),
            DesiredCondition(
                type=RECONCILING, status="True", reason=availability.reason, message=waiting
            ),
            *detail,
        ]
    if not verifying:
        return [
            DesiredCondition(
                type=READY,
                status="True",
                reason="Available",
                message="Available; verification is disabled.",
            ),
            *detail,
        ]
    if verification is None or verification.status == "Unknown":
        message = "Available; waiting for the MCP handshake."
        return [
            DesiredCondition(type=READY, status="Unknown", reason="Verifying", message=message),
            DesiredCondition(type=RECONCILING, status="True", reason="Verifying", message=message),
            *detail,
        ]
    if verification.status == "True":
        return [
            DesiredCondition(
                type=READY, status="True", reason="Verified", message=verification.message
            ),
            *detail,
        ]
    if verification.reason in PERMANENT_VERIFICATION_FAILURES:
        return [*stalled(verification.reason, verification.message), *detail]
    retrying = f"{verification.message} Retrying with backoff."
    return [
        DesiredCondition(type=READY, status="False", reason=verification.reason, message=retrying),
        DesiredCondition(
            type=RECONCILING, status="True", reason=verification.reason, message=retrying
        ),
        *detail,
    ]
