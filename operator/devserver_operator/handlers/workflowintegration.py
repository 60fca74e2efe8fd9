"""WorkflowIntegration handlers: n8n workflows and credentials, and the OpenHands MCP config.

Every trigger (create, update, resume, the shared resync loop, changes of MCPServers in the
namespace, changes of the owned ConfigMap) runs the same level-based reconcile under the
object's lock. The resync loop is also the drift check: n8n's copies are compared with the
desired workflows once per ``syncInterval`` (and after every restart).

Unlike the other kinds, a WorkflowIntegration carries a finalizer: what it created lives
outside the cluster, so only the operator can remove it (deletionPolicy Delete) or decide
to leave it (Orphan).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping
from typing import Any

import kopf
from pydantic import ValidationError

from devserver_operator import metrics
from devserver_operator.api import GROUP, VERSION
from devserver_operator.api.base import parse_duration
from devserver_operator.api.conditions import now_utc, stalled
from devserver_operator.api.workflowintegration import WorkflowIntegrationSpec
from devserver_operator.builders.common import OWNER_KIND_LABEL, OWNER_NAME_LABEL, Owner
from devserver_operator.builders.workflowintegration import WiredServer, select_mcp_servers
from devserver_operator.integrations.n8n import N8nAuthError, N8nError
from devserver_operator.kube.errors import KubeApiError, KubeUnavailableError

from .context import OperatorContext, context_from
from .indexes import cached_copy
from .validation import describe_validation_error
from .workflowintegration_cleanup import clean_up
from .workflowintegration_inputs import (
    MissingInputError,
    mcp_servers_in,
    read_api_key,
    read_credential_secrets,
    read_workflow_sources,
)
from .workflowintegration_n8n import N8nSync, SyncResult, n8n_client
from .workflowintegration_openhands import OWNED_CONFIG_MAPS_INDEX, apply_openhands_config
from .workflowintegration_state import (
    API_VERSION,
    KIND,
    PLURAL,
    IntegrationMemory,
    StatusWriter,
    WorkflowIntegrationState,
    emit,
    state_from,
)
from .workflowintegration_status import Problem, Summary, conditions_for

OWNER_KIND = KIND.lower()
KUBE_RETRY_SECONDS = 15.0
INTEGRATIONS_INDEX = "wfi_by_namespace"
MCPSERVER_INDEX = "mcpserver_index"  # registered by handlers.mcpserver

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- reconcile


async def reconcile(
    body: Mapping[str, Any],
    context: OperatorContext,
    state: WorkflowIntegrationState,
    indexes: Mapping[str, Any],
) -> None:
    """Bring n8n and the OpenHands ConfigMap in line with one WorkflowIntegration."""
    async with context.lock_for(body["metadata"]["uid"]):
        await _reconcile(body, context, state, indexes)


async def _reconcile(
    body: Mapping[str, Any],
    context: OperatorContext,
    state: WorkflowIntegrationState,
    indexes: Mapping[str, Any],
) -> None:
    started = time.monotonic()
    metadata = body["metadata"]
    if metadata.get("deletionTimestamp"):
        return  # the finalizer has it
    owner = Owner(
        kind=KIND, name=metadata["name"], namespace=metadata["namespace"], uid=metadata["uid"]
    )
    memory = state.memory_for(owner.uid)
    writer = StatusWriter(context, owner, memory, body)
    generation = metadata.get("generation")
    result = "ok"
    try:
        try:
            spec = WorkflowIntegrationSpec.model_validate(body.get("spec") or {})
        except ValidationError as error:
            result = "InvalidSpec"
            await writer.final(
                stalled("InvalidSpec", describe_validation_error(error)), generation, {}
            )
            return
        problems: list[Problem] = []
        bodies = await mcp_servers_in(context.kube, owner.namespace, indexes.get(MCPSERVER_INDEX))
        servers = select_mcp_servers(spec.mcp_servers, bodies)
        listed = await apply_openhands_config(context, owner, spec, servers, indexes, problems)
        fields: dict[str, Any] = {
            "wiredServers": [
                {
                    "name": s.name,
                    **({"url": s.url} if s.url else {}),
                    **({"transport": s.transport} if s.transport else {}),
                    "ready": s.ready,
                }
                for s in servers
            ]
        }
        sync: SyncResult | None = None
        if spec.n8n is not None:
            sync = await _sync_n8n(context, state, memory, owner, spec, servers, writer, problems)
        if sync is not None:
            fields |= _n8n_fields(sync)
        elif spec.n8n is None:
            # n8n was taken out of the spec: without its URL and key nothing in n8n can be
            # reached any more, so what it holds is left there and no longer reported.
            fields |= dict.fromkeys(("workflows", "credentials", "workflowCount", "lastSyncTime"))
        summary = Summary(
            n8n=spec.n8n is not None,
            workflows_in_sync=sync.in_sync if sync is not None else 0,
            workflows=len(spec.workflows or []),
            credentials=len(spec.credentials or []),
            drifted=sync.drifted if sync is not None else [],
            open_hands_servers=listed,
        )
        await writer.final(conditions_for(problems, summary), generation, fields)
        for type_, reason, message in sync.events if sync is not None else []:
            await emit(context, body, type_, reason, message)
        transient = [p for p in problems if p.severity == "transient"]
        result = problems[0].reason if problems else "ok"
        if transient:
            raise kopf.TemporaryError(transient[0].message, delay=memory.retry_delay())
    except (KubeUnavailableError, KubeApiError) as error:
        result = "ApiError"
        metrics.RECONCILE_ERRORS.labels(KIND, "ApiError").inc()
        raise kopf.TemporaryError(f"Kubernetes API: {error}", delay=KUBE_RETRY_SECONDS) from error
    finally:
        metrics.RECONCILE_TOTAL.labels(KIND, result).inc()
        metrics.RECONCILE_DURATION.labels(KIND).observe(time.monotonic() - started)


def _n8n_fields(sync: SyncResult) -> dict[str, Any]:
    times = [entry["lastSyncTime"] for entry in sync.workflows if entry.get("lastSyncTime")]
    return {
        "workflows": sync.workflows or None,
        "credentials": sync.credentials or None,
        "workflowCount": sync.in_sync,
        **({"lastSyncTime": max(times)} if times else {}),
    }


async def _sync_n8n(
    context: OperatorContext,
    state: WorkflowIntegrationState,
    memory: IntegrationMemory,
    owner: Owner,
    spec: WorkflowIntegrationSpec,
    servers: list[WiredServer],
    writer: StatusWriter,
    problems: list[Problem],
) -> SyncResult | None:
    assert spec.n8n is not None
    full_check = memory.full_check_due(parse_duration(spec.sync_interval))
    try:
        api_key = await read_api_key(context.kube, owner.namespace, spec)
        secrets = await read_credential_secrets(context.kube, owner.namespace, spec)
        sources = await read_workflow_sources(context.kube, owner.namespace, spec)
    except MissingInputError as error:
        problems.append(Problem("stalled", error.reason, error.message))
        return None
    memory.api_key = api_key
    try:
        async with n8n_client(spec, api_key) as client:
            result = await N8nSync(
                client,
                owner,
                spec,
                status=writer.status,
                servers=servers,
                secrets=secrets,
                sources=sources,
                memory=memory.sync,
                tag_ids=state.tag_ids.setdefault(spec.n8n.url, {}),
                persist=writer.fields,
                full_check=full_check,
                now=now_utc(),
            ).run()
    except N8nAuthError as error:
        problems.append(
            Problem(
                "stalled",
                "N8nUnauthorized",
                f"spec.n8n.apiKeySecretRef: n8n at {spec.n8n.url} refused the API key: "
                f"{error.message}",
            )
        )
        metrics.N8N_PROBLEMS.labels("N8nUnauthorized").inc()
        return None
    except N8nError as error:
        memory.transient_failures += 1
        problems.append(
            Problem("transient", "N8nUnavailable", f"n8n at {spec.n8n.url}: {error.message}")
        )
        metrics.N8N_PROBLEMS.labels("N8nUnavailable").inc()
        return None
    memory.transient_failures = 0
    if full_check:
        memory.last_full_check = time.monotonic()
    problems.extend(result.problems)
    return result


# ---------------------------------------------------------------------------- registration


def register(registry: kopf.OperatorRegistry, settings: Any) -> None:
    """Register the WorkflowIntegration handlers and their watch caches."""
    del settings  # nothing to shape yet: the periodic check is the shared resync loop

    @kopf.on.startup(registry=registry)
    def create_state(memo: Any, **_: Any) -> None:
        memo.workflowintegrations = WorkflowIntegrationState()

    @kopf.index(GROUP, VERSION, PLURAL, id=INTEGRATIONS_INDEX, registry=registry)
    def by_namespace(
        *, body: kopf.Body, namespace: str | None, **_: Any
    ) -> dict[str | None, dict[str, Any]]:
        return {namespace: cached_copy(body, API_VERSION, KIND)}

    @kopf.index(
        "",
        "v1",
        "configmaps",
        id=OWNED_CONFIG_MAPS_INDEX,
        labels={OWNER_KIND_LABEL: OWNER_KIND},
        registry=registry,
    )
    def owned_config_maps(
        *, body: kopf.Body, namespace: str | None, name: str, **_: Any
    ) -> dict[tuple[str | None, str], dict[str, Any]]:
        return {(namespace, name): cached_copy(body, "v1", "ConfigMap")}

    @kopf.on.resume(GROUP, VERSION, PLURAL, id="wfi-resume", registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, id="wfi-create", registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, id="wfi-update", field="spec", registry=registry)
    async def on_change(body: kopf.Body, memo: Any, **kwargs: Any) -> None:
        await reconcile(body, context_from(memo), state_from(memo), kwargs)

    @kopf.on.event(GROUP, VERSION, PLURAL, id="wfi-track", registry=registry)
    async def track(*, body: kopf.Body, type: str | None, memo: Any, **kwargs: Any) -> None:
        # The periodic check (drift, Secret rotation, retries) is the shared resync loop. Async:
        # the loop starts from the first handler that tracks, in kopf's context.
        context = context_from(memo)
        context.resync.capture_indices(kwargs)
        check = functools.partial(resync_one, state=state_from(memo))
        snapshot = cached_copy(body, API_VERSION, KIND)
        context.resync.track(KIND, snapshot, deleted=type == "DELETED", check=check)

    @kopf.on.delete(GROUP, VERSION, PLURAL, id="wfi-cleanup", registry=registry)
    async def on_delete(body: kopf.Body, memo: Any, retry: int, **_: Any) -> None:
        state = state_from(memo)
        await clean_up(body, context_from(memo), state, retry)
        state.objects.pop(body["metadata"]["uid"], None)
        context_from(memo).forget(body["metadata"]["uid"])
        context_from(memo).resync.forget(KIND, body["metadata"]["uid"])

    @kopf.on.event(GROUP, VERSION, "mcpservers", id="wfi-mcpserver-changed", registry=registry)
    async def mcpserver_changed(
        *, body: kopf.Body, type: str | None, memo: Any, namespace: str | None, **kwargs: Any
    ) -> None:
        if not type or namespace is None:
            return  # the initial listing: resume handlers cover it
        await _reconcile_dependents(body, namespace, memo, kwargs)

    @kopf.on.event(
        "",
        "v1",
        "configmaps",
        id="wfi-configmap-changed",
        labels={OWNER_KIND_LABEL: OWNER_KIND},
        registry=registry,
    )
    async def config_map_changed(
        *, body: kopf.Body, type: str | None, memo: Any, namespace: str | None, **kwargs: Any
    ) -> None:
        """The OpenHands ConfigMap was edited or deleted: put it back now."""
        if not type or namespace is None:
            return
        owner_name = (body.get("metadata", {}).get("labels") or {}).get(OWNER_NAME_LABEL)
        # A copy: the index changes while the reconciles below await.
        for parent in list((kwargs.get(INTEGRATIONS_INDEX) or {}).get(namespace, [])):
            if parent["metadata"]["name"] == owner_name:
                await _reconcile_quietly(parent, memo, kwargs)


async def resync_one(
    body: Mapping[str, Any], context: OperatorContext, *, state: WorkflowIntegrationState
) -> None:
    """The periodic check of one WorkflowIntegration (from the shared resync loop)."""
    await reconcile(body, context, state, context.resync.indices)


# MCPServers change in bursts (a rollout, a namespace of servers verified one after another);
# an integration that wires many of them follows the burst with one reconcile, not one each.
DEPENDENTS_COALESCE_SECONDS = 1.0


async def _reconcile_dependents(
    server: Mapping[str, Any], namespace: str, memo: Any, indexes: Mapping[str, Any]
) -> None:
    """An MCPServer changed: reconcile (soon) the WorkflowIntegrations that select or wired it."""
    name = server["metadata"]["name"]
    state = state_from(memo)
    for parent in list((indexes.get(INTEGRATIONS_INDEX) or {}).get(namespace, [])):
        try:
            spec = WorkflowIntegrationSpec.model_validate(parent.get("spec") or {})
        except ValidationError:
            continue
        wired = {s.get("name") for s in (parent.get("status") or {}).get("wiredServers") or []}
        selected = select_mcp_servers(spec.mcp_servers, [server])
        if name in wired or any(s.name == name for s in selected):
            state.reconcile_soon(
                parent["metadata"]["uid"],
                _reconcile_latest(parent["metadata"]["name"], namespace, memo, indexes),
                DEPENDENTS_COALESCE_SECONDS,
            )


async def _reconcile_latest(
    name: str, namespace: str, memo: Any, indexes: Mapping[str, Any]
) -> None:
    # The index's copy as it is now, after the pause: the one seen then may be outdated.
    for parent in list((indexes.get(INTEGRATIONS_INDEX) or {}).get(namespace, [])):
        if parent["metadata"]["name"] == name:
            await _reconcile_quietly(parent, memo, indexes)


async def _reconcile_quietly(
    parent: Mapping[str, Any], memo: Any, indexes: Mapping[str, Any]
) -> None:
    # Event handlers are not retried by kopf: a failure here is left to the periodic check.
    if parent["metadata"].get("deletionTimestamp"):
        return
    try:
        await reconcile(parent, context_from(memo), state_from(memo), indexes)
    except kopf.TemporaryError as error:
        logger.warning(
            "reconciling WorkflowIntegration %s/%s failed (%s); the periodic check retries",
            parent["metadata"]["namespace"],
            parent["metadata"]["name"],
            error,
        )


__all__ = ["reconcile", "register"]
