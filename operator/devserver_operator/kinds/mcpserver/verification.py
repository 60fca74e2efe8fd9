"""When and how an MCPServer's MCP handshake runs: on a new generation, when the server has
become available, every ``verification.interval``, and after a failure with backoff. What it
found goes to status; what only this process needs (failures, the last attempt) stays here."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from devserver_operator import metrics
from devserver_operator.api.conditions import Condition, find, now_utc
from devserver_operator.api.mcpserver import MCPServerSpec
from devserver_operator.builders.mcpserver import server_url
from devserver_operator.integrations.mcp_errors import McpProbeError
from devserver_operator.integrations.mcp_probe import probe_mcp_server
from devserver_operator.observe.mcpserver import (
    VERIFIED,
    Availability,
    Verification,
    verification_fields,
)
from devserver_operator.reconcile.kind import Request
from devserver_operator.reconcile.status import existing_conditions

MAX_VERIFY_BACKOFF_SECONDS = 600.0
KEPT_FIELDS = ("serverInfo", "tools", "toolCount", "lastVerifiedTime")


@dataclass
class VerificationMemory:
    """Failed handshakes per object, for backoff. Lost on restart, which costs one early retry."""

    failures: int = 0
    last_attempt: float = 0.0


async def verify(
    request: Request,
    spec: MCPServerSpec,
    availability: Availability,
    headers: Mapping[str, str],
) -> tuple[Verification | None, dict[str, Any]]:
    """Run the MCP handshake when it is due; otherwise keep what status already says."""
    if not spec.verification_settings.enabled:
        return None, {}
    status = request.status.status
    previous = find(existing_conditions(status), VERIFIED)
    kept = {key: status[key] for key in KEPT_FIELDS if key in status}
    if availability.status != "True":
        waiting = Verification(
            "Unknown", "NotAvailable", "Verification waits for the server to be available."
        )
        return waiting, kept if previous is not None and previous.status == "True" else {}
    memories: dict[str, VerificationMemory] = request.state
    memory = memories.setdefault(request.owner.uid, VerificationMemory())
    # "Verify now" (request.requested) runs the handshake whatever the schedule says.
    if request.requested is None and not _due(spec, previous, request.generation, status, memory):
        if previous is None:
            return Verification("Unknown", "Pending", "The MCP handshake has not run yet."), kept
        return Verification(previous.status, previous.reason, previous.message), kept
    owner = request.owner
    url = server_url(owner, spec, request.context.settings.cluster_domain)
    memory.last_attempt = started = time.monotonic()
    async with request.context.probe_slots:
        try:
            result = await probe_mcp_server(
                url,
                "sse" if spec.transport == "sse" else "streamable-http",
                timeout=spec.verification_timeout_seconds,
                headers=dict(headers) or None,
            )
        except McpProbeError as error:
            memory.failures += 1
            metrics.MCP_PROBE_TOTAL.labels(error.reason).inc()
            metrics.MCP_PROBE_DURATION.observe(time.monotonic() - started)
            if previous is None or previous.status != "False" or previous.reason != error.reason:
                request.event("Warning", "VerificationFailed", error.message)
            return Verification("False", error.reason, error.message), {}
    memory.failures = 0
    metrics.MCP_PROBE_TOTAL.labels("ok").inc()
    metrics.MCP_PROBE_DURATION.observe(result.duration_seconds)
    metrics.MCP_SERVER_TOOLS.labels(owner.namespace, owner.name).set(result.tool_count)
    message = (
        f"{result.server_name or 'The server'} {result.server_version} speaks MCP "
        f"{result.protocol_version} and lists {result.tool_count} tools."
    )
    if previous is None or previous.status != "True":
        request.event("Normal", "Verified", message)
    fields = verification_fields(result, now_utc())
    return Verification("True", "HandshakeSucceeded", message), fields


def _due(
    spec: MCPServerSpec,
    previous: Condition | None,
    generation: int | None,
    status: Mapping[str, Any],
    memory: VerificationMemory,
) -> bool:
    if (
        previous is None
        or previous.status == "Unknown"
        or previous.observed_generation != generation
    ):
        return True
    if previous.status == "True":
        last: str | None = status.get("lastVerifiedTime")
        if last is None:
            return True
        age = (now_utc() - datetime.fromisoformat(last.replace("Z", "+00:00"))).total_seconds()
        return bool(age >= spec.verification_interval_seconds)
    # Failed before: retry with exponential backoff, capped, never faster than every 15 s.
    backoff = min(
        MAX_VERIFY_BACKOFF_SECONDS,
        spec.verification_interval_seconds,
        15.0 * float(2 ** min(max(memory.failures - 1, 0), 10)),
    )
    elapsed: float = time.monotonic() - memory.last_attempt
    return elapsed >= backoff
