"""WorkflowIntegration: n8n workflows and credentials, and the OpenHands MCP config.

Besides the frame's triggers, changes of the MCPServers it selects (or wired) visit it, after
a moment that takes in a whole burst. The resync loop is also the drift check: n8n's copies
are compared with the desired workflows once per ``syncInterval`` (and after every restart).

Unlike the other kinds, a WorkflowIntegration carries a finalizer: what it created lives
outside the cluster, so only the operator can remove it (deletionPolicy Delete) or decide
to leave it (Orphan).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import kopf
from pydantic import ValidationError

from devserver_operator import metrics
from devserver_operator.api import GROUP, VERSION
from devserver_operator.api.base import parse_duration
from devserver_operator.api.conditions import now_utc
from devserver_operator.api.kinds import MCPSERVER, WORKFLOWINTEGRATION
from devserver_operator.api.workflowintegration import WorkflowIntegrationSpec
from devserver_operator.builders.common import Owner
from devserver_operator.builders.workflowintegration import WiredMcpServer, select_mcp_servers
from devserver_operator.integrations.n8n import N8nAuthError, N8nError
from devserver_operator.integrations.n8n_sync import N8nSync, SyncResult, n8n_client
from devserver_operator.observe.workflowintegration import Problem, Summary, conditions_for
from devserver_operator.reconcile.context import OperatorContext, context_from
from devserver_operator.reconcile.kind import Kind, Outcome, Request, StalledError
from devserver_operator.reconcile.lookup import ChildKind
from devserver_operator.reconcile.triggers import parent_index
from devserver_operator.reconcile.validation import describe_validation_error
from devserver_operator.settings import OperatorSettings

from .cleanup import clean_up
from .inputs import (
    MissingInputError,
    mcp_servers_in,
    read_api_key,
    read_credential_secrets,
    read_workflow_sources,
)
from .openhands import apply_openhands_config
from .state import IntegrationMemory, WorkflowIntegrationState

# MCPServers change in bursts (a rollout, a namespace of servers verified one after another);
# an integration that wires many of them follows the burst with one reconcile, not one each.
DEPENDENTS_COALESCE_SECONDS = 1.0
MCPSERVER_INDEX = f"{MCPSERVER.singular}_index"


class WorkflowIntegrationKind(Kind):
    info = WORKFLOWINTEGRATION
    children = (ChildKind("v1", "ConfigMap", "configmaps"),)
    finalizer = True

    def new_state(self, settings: OperatorSettings) -> WorkflowIntegrationState:
        return WorkflowIntegrationState()

    async def reconcile(self, request: Request) -> Outcome:
        if request.body["metadata"].get("deletionTimestamp"):
            return Outcome()  # the finalizer has it
        try:
            spec = WorkflowIntegrationSpec.model_validate(request.body.get("spec") or {})
        except ValidationError as error:
            raise StalledError("InvalidSpec", describe_validation_error(error)) from error
        owner, kube = request.owner, request.context.kube
        problems: list[Problem] = []
        bodies = await mcp_servers_in(kube, owner.namespace, request.indexes.get(MCPSERVER_INDEX))
        servers = select_mcp_servers(spec.mcp_servers, bodies)
        listed = await apply_openhands_config(request, spec, servers, problems)
        fields: dict[str, Any] = {"wiredServers": [_wired(server) for server in servers]}
        sync = await _sync_n8n(request, spec, servers, problems) if spec.n8n else None
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
        await request.write_status(conditions_for(problems, summary), fields)
        for type_, reason, message in sync.events if sync is not None else []:
            request.event(type_, reason, message)
        transient = [p for p in problems if p.severity == "transient"]
        return Outcome(
            result=problems[0].reason if problems else "ok",
            retry=transient[0].message if transient else None,
        )

    async def clean_up(self, request: Request, retry: int) -> None:
        await clean_up(request, request.state, retry)

    async def deleted(
        self, context: OperatorContext, owner: Owner, indexes: Mapping[str, Any]
    ) -> None:
        state: WorkflowIntegrationState = context.states[self.info.kind]
        state.objects.pop(owner.uid, None)

    def register(self, registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
        kopf.on.event(
            GROUP, VERSION, MCPSERVER.plural, id="wfi-mcpserver-changed", registry=registry
        )(_mcpserver_changed)


async def _mcpserver_changed(
    *, body: kopf.Body, type: str | None, memo: Any, namespace: str | None, **kwargs: Any
) -> None:
    """An MCPServer changed: visit (soon) the WorkflowIntegrations that select or wired it."""
    if not type or namespace is None:
        return  # the initial listing: resume handlers cover it
    context = context_from(memo)
    name = body["metadata"]["name"]
    for parent in list((kwargs.get(parent_index(KIND)) or {}).get((namespace,), [])):
        try:
            spec = WorkflowIntegrationSpec.model_validate(parent.get("spec") or {})
        except ValidationError:
            continue
        wired = {s.get("name") for s in (parent.get("status") or {}).get("wiredServers") or []}
        if name in wired or select_mcp_servers(spec.mcp_servers, [dict(body)]):
            uid = parent["metadata"]["uid"]
            context.resync.visit_in(KIND.info.kind, uid, DEPENDENTS_COALESCE_SECONDS)


def _wired(server: WiredMcpServer) -> dict[str, Any]:
    return {
        "name": server.name,
        **({"url": server.url} if server.url else {}),
        **({"transport": server.transport} if server.transport else {}),
        "ready": server.ready,
    }


def _n8n_fields(sync: SyncResult) -> dict[str, Any]:
    times = [entry["lastSyncTime"] for entry in sync.workflows if entry.get("lastSyncTime")]
    return {
        "workflows": sync.workflows or None,
        "credentials": sync.credentials or None,
        "workflowCount": sync.in_sync,
        **({"lastSyncTime": max(times)} if times else {}),
    }


async def _sync_n8n(
    request: Request,
    spec: WorkflowIntegrationSpec,
    servers: list[WiredMcpServer],
    problems: list[Problem],
) -> SyncResult | None:
    assert spec.n8n is not None
    state: WorkflowIntegrationState = request.state
    memory: IntegrationMemory = state.memory_for(request.owner.uid)
    kube, namespace = request.context.kube, request.owner.namespace
    # "Sync now" (request.requested) compares every workflow with n8n at once.
    full_check = request.requested is not None or memory.full_check_due(
        parse_duration(spec.sync_interval)
    )
    try:
        api_key = await read_api_key(kube, namespace, spec)
        secrets = await read_credential_secrets(kube, namespace, spec)
        sources = await read_workflow_sources(kube, namespace, spec)
    except MissingInputError as error:
        problems.append(Problem("stalled", error.reason, error.message))
        return None
    memory.api_key = api_key
    try:
        async with n8n_client(spec, api_key) as client:
            result = await N8nSync(
                client,
                request.owner,
                spec,
                status=request.status.status,
                servers=servers,
                secrets=secrets,
                sources=sources,
                memory=memory.sync,
                tag_ids=state.tag_ids.setdefault(spec.n8n.url, {}),
                persist=request.status.write_fields,
                full_check=full_check,
                now=now_utc(),
            ).run()
    except N8nAuthError as error:
        message = (
            f"spec.n8n.apiKeySecretRef: n8n at {spec.n8n.url} refused the API key: {error.message}"
        )
        problems.append(Problem("stalled", "N8nUnauthorized", message))
        metrics.N8N_PROBLEMS.labels("N8nUnauthorized").inc()
        return None
    except N8nError as error:
        message = f"n8n at {spec.n8n.url}: {error.message}"
        problems.append(Problem("transient", "N8nUnavailable", message))
        metrics.N8N_PROBLEMS.labels("N8nUnavailable").inc()
        return None
    if full_check:
        memory.last_full_check = time.monotonic()
    problems.extend(result.problems)
    return result


KIND = WorkflowIntegrationKind()
