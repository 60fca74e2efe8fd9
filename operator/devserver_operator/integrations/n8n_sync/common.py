"""What one n8n pass works with and hands back, and the n8n calls it shares with the
finalizer."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from devserver_operator.api.base import parse_duration
from devserver_operator.api.workflowintegration import WorkflowIntegrationSpec
from devserver_operator.builders.workflowintegration import (
    DesiredWorkflow,
)
from devserver_operator.integrations.n8n import (
    Credential,
    N8nClient,
    N8nNotFoundError,
    RetryPolicy,
    Workflow,
)
from devserver_operator.integrations.n8n_payloads import (
    WorkflowPayload,
    assign_webhook_ids,
    with_save_defaults,
)
from devserver_operator.observe.workflowintegration import Problem

EventType = Literal["Normal", "Warning"]
Persist = Callable[[dict[str, Any]], Awaitable[None]]
MAX_DIFFERENCES_SHOWN = 5


@dataclass(frozen=True)
class WorkflowSources:
    """Parsed ConfigMap workflows by workflow key, and the problems of those that failed."""

    parsed: dict[str, dict[str, Any]]
    problems: dict[str, Problem]


@dataclass
class SyncMemory:
    """What one object's passes remember between reconciles (lost on restart, which only
    costs one extra drift check)."""

    failed: dict[str, tuple[str, Problem]] = field(default_factory=dict)
    """"workflow/<key>" or "credential/<name>" -> (hash of the input that failed, problem):
    a permanent failure is retried only when its input changes or on a drift check."""
    created: dict[str, tuple[str, Credential]] = field(default_factory=dict)
    """credential key -> (hash of its input, the credential n8n created) until status has
    recorded it: when the status write fails, the next pass takes this one instead of
    creating another copy of the secret."""


@dataclass
class SyncResult:
    workflows: list[dict[str, Any]]
    credentials: list[dict[str, Any]]
    problems: list[Problem]
    drifted: list[str]
    in_sync: int
    events: list[tuple[EventType, str, str]]


def n8n_payload(desired: DesiredWorkflow) -> WorkflowPayload:
    """What is sent to n8n: stable webhook ids, and the settings n8n would add on save."""
    nodes = assign_webhook_ids(desired.workflow["nodes"], desired.webhook_key)
    return with_save_defaults({**desired.workflow, "nodes": nodes})


def timestamp(now: datetime) -> str:
    return now.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def n8n_client(spec: WorkflowIntegrationSpec, api_key: str) -> N8nClient:
    assert spec.n8n is not None
    timeout = parse_duration(spec.n8n.timeout)
    # Few, quick retries inside one reconcile; longer outages are retried by kopf with backoff.
    retry = RetryPolicy(max_attempts=3, initial_delay=0.5, max_delay=2.0, total_timeout=timeout)
    return N8nClient(spec.n8n.url, api_key, retry=retry, timeout=timeout)


async def delete_untagged_copies(client: N8nClient, name: str) -> None:
    """Delete the untagged workflows named ``name``: what a create cut short leaves."""
    async for found in client.iter_workflows(name=name, exclude_pinned_data=True):
        if found.name == name and not found.tags:
            with contextlib.suppress(N8nNotFoundError):
                await client.delete_workflow(found.id)


async def delete_workflow_copies(client: N8nClient, workflow_id: str | None, tag: str) -> None:
    """Delete a workflow by id and every copy that carries its tag, then the tag."""
    if workflow_id:
        with contextlib.suppress(N8nNotFoundError):
            await client.delete_workflow(workflow_id)
    async for leftover in client.iter_workflows(tags=[tag], exclude_pinned_data=True):
        with contextlib.suppress(N8nNotFoundError):
            await client.delete_workflow(leftover.id)
    async for found in client.iter_tags(page_size=250):
        if found.name == tag:
            with contextlib.suppress(N8nNotFoundError):
                await client.delete_tag(found.id)


@dataclass
class Outcome:
    spec_changed: bool
    changed: bool = False
    activation_error: str | None = None
    drift: list[str] = field(default_factory=list)


def in_sync(entry: Mapping[str, Any]) -> bool:
    return bool(
        entry.get("id")
        and entry.get("hash")
        and not entry.get("message")
        and not entry.get("drifted")
    )


def age(workflow: Workflow) -> tuple[str, str]:
    created = workflow.created_at.isoformat() if workflow.created_at else ""
    return (created, workflow.id)


def shown(differences: Sequence[str]) -> str:
    shown = ", ".join(differences[:MAX_DIFFERENCES_SHOWN])
    more = len(differences) - MAX_DIFFERENCES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")
