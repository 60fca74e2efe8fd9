"""The finalizer of a WorkflowIntegration: with deletionPolicy Delete, remove from n8n what
it created; never block a deletion for good."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import kopf
from pydantic import ValidationError

from devserver_operator.api.workflowintegration import WorkflowIntegrationSpec
from devserver_operator.builders.common import Owner
from devserver_operator.builders.workflowintegration import credential_name, workflow_tag
from devserver_operator.integrations.n8n import N8nClient, N8nError, N8nNotFoundError
from devserver_operator.integrations.n8n_sync import (
    delete_untagged_copies,
    delete_workflow_copies,
    n8n_client,
)
from devserver_operator.kube.errors import KubeApiError, KubeUnavailableError
from devserver_operator.reconcile.kind import Request

from .inputs import MissingInputError, read_api_key
from .state import WorkflowIntegrationState

# A finalizer must not block a namespace forever when n8n is gone for good.
CLEANUP_ATTEMPTS = 8

logger = logging.getLogger(__name__)


async def delete_everything(
    client: N8nClient, owner: Owner, spec: WorkflowIntegrationSpec | None, status: Mapping[str, Any]
) -> list[str]:
    """Remove from n8n every workflow and credential this resource created (deletionPolicy
    Delete); returns what was removed, for an Event."""
    removed: list[str] = []
    keys = {entry["name"]: entry for entry in status.get("workflows") or []}
    for workflow in (spec.workflows or []) if spec is not None else []:
        keys.setdefault(workflow.name, {"name": workflow.name})
    for key, entry in keys.items():
        await delete_workflow_copies(
            client, entry.get("id"), entry.get("tag") or workflow_tag(owner, key)
        )
        if entry.get("creating") and entry.get("n8nName"):
            # A create whose id never reached status left an untagged copy, if n8n got it.
            await delete_untagged_copies(client, entry["n8nName"])
        removed.append(f"workflow {key}")
    entries = status.get("credentials") or []
    for entry in entries:
        for credential_id in [entry.get("id"), *entry.get("retiredIds", [])]:
            if credential_id:
                with contextlib.suppress(N8nNotFoundError):
                    await client.delete_credential(credential_id)
        removed.append(f"credential {entry['name']}")
    interrupted = {credential_name(owner, e["name"]) for e in entries if e.get("creating")}
    if interrupted:
        # A create whose id never reached status may have left a copy of the secret in n8n.
        for credential_id, name in await client.unused_credentials():
            if name in interrupted:
                with contextlib.suppress(N8nNotFoundError):
                    await client.delete_credential(credential_id)
    return removed


async def clean_up(request: Request, state: WorkflowIntegrationState, retry: int) -> None:
    """The finalizer: with deletionPolicy Delete, remove from n8n what was created."""
    body, owner, context = request.body, request.owner, request.context
    memory = state.memory_for(owner.uid)
    status = request.status.status
    try:
        spec: WorkflowIntegrationSpec | None = WorkflowIntegrationSpec.model_validate(
            body.get("spec") or {}
        )
    except ValidationError:
        spec = None
    if spec is None or spec.n8n is None or spec.deletion_policy == "Orphan":
        if spec is not None and spec.n8n is not None:
            request.event(
                "Normal", "Orphaned", "deletionPolicy Orphan: workflows and credentials stay in n8n"
            )
        return
    try:
        api_key = await read_api_key(context.kube, owner.namespace, spec)
    except (MissingInputError, KubeApiError, KubeUnavailableError):
        api_key = memory.api_key or ""
    if not api_key:
        request.event(
            "Warning",
            "CleanupAbandoned",
            "The n8n API key Secret is gone: workflows and credentials stay in n8n",
        )
        return
    try:
        async with n8n_client(spec, api_key) as client:
            removed = await delete_everything(client, owner, spec, status)
    except N8nError as error:
        if retry + 1 >= CLEANUP_ATTEMPTS:
            request.event(
                "Warning",
                "CleanupAbandoned",
                f"Gave up removing workflows from n8n after {retry + 1} attempts: {error.message}",
            )
            return
        delay = context.backoff.failed(owner.uid)
        raise kopf.TemporaryError(f"removing workflows from n8n: {error}", delay=delay) from error
    if removed:
        logger.info(
            "removed from n8n for %s/%s: %s", owner.namespace, owner.name, ", ".join(removed)
        )
