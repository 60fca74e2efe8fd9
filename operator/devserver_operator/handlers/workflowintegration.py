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
from dataclasses import dataclass, field
from typing import Any, Literal

import kopf
from pydantic import ValidationError

from devserver_operator import metrics
from devserver_operator.api import GROUP, VERSION
from devserver_operator.api.base import parse_duration
from devserver_operator.api.conditions import now_utc, stalled
from devserver_operator.api.workflowintegration import WorkflowIntegrationSpec
from devserver_operator.builders.common import OWNER_KIND_LABEL, OWNER_NAME_LABEL, Owner
from devserver_operator.builders.openhands import OpenHandsServer, build_openhands_config_map
from devserver_operator.builders.workflowintegration import (
    WiredServer,
    select_mcp_servers,
)
from devserver_operator.integrations.n8n import (
    N8nAuthError,
    N8nClient,
    N8nError,
    RetryPolicy,
)
from devserver_operator.kube.children import apply_children, prune_children
from devserver_operator.kube.errors import (
    ForbiddenError,
    InvalidError,
    KubeApiError,
    KubeUnavailableError,
)

from .context import OperatorContext, context_from
from .events import post_event
from .status import status_patch
from .validation import describe_validation_error
from .workflowintegration_inputs import (
    MissingInputError,
    mcp_servers_in,
    read_api_key,
    read_credential_secrets,
    read_workflow_sources,
)
from .workflowintegration_n8n import (
    N8nSync,
    SyncMemory,
    SyncResult,
    delete_everything,
    timestamp,
)
from .workflowintegration_status import Problem, Summary, conditions_for

KIND = "WorkflowIntegration"
PLURAL = "workflowintegrations"
API_VERSION = f"{GROUP}/{VERSION}"
OWNER_KIND = KIND.lower()
KUBE_RETRY_SECONDS = 15.0
# Transient n8n failures: 5 s, 10 s, 20 s, 40 s, then every 60 s.
N8N_RETRY_FIRST_SECONDS = 5.0
N8N_RETRY_MAX_SECONDS = 60.0
# A finalizer must not block a namespace forever when n8n is gone for good.
CLEANUP_ATTEMPTS = 8
OWNED_CONFIG_MAPS_INDEX = "wfi_owned_configmaps"
INTEGRATIONS_INDEX = "wfi_by_namespace"
MCPSERVER_INDEX = "mcpserver_index"  # registered by handlers.mcpserver

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- memory


@dataclass
class IntegrationMemory:
    """What the operator remembers of one WorkflowIntegration between reconciles."""

    sync: SyncMemory = field(default_factory=SyncMemory)
    last_full_check: float | None = None
    transient_failures: int = 0
    api_key: str | None = None
    """Last API key read, so the finalizer can clean up after the Secret is gone (a
    namespace being deleted takes Secrets and this object at the same time). Memory only."""
    written: dict[str, Any] | None = None
    """The object as this process last wrote its status. Kept (unlike the shared status
    memory) until a newer body arrives: triggers hand over bodies of different ages (kopf's
    event, the namespace index, the resync loop's copy), and a status older than our own
    last write would cost n8n requests, or worse, a duplicate."""

    def freshest_status(self, body: Mapping[str, Any]) -> dict[str, Any]:
        if self.written is not None and _version(self.written) > _version(body):
            return dict(self.written.get("status") or {})
        return dict(body.get("status") or {})

    def full_check_due(self, interval: float) -> bool:
        return self.last_full_check is None or time.monotonic() - self.last_full_check >= interval

    def retry_delay(self) -> float:
        steps = max(self.transient_failures - 1, 0)
        return float(min(N8N_RETRY_MAX_SECONDS, N8N_RETRY_FIRST_SECONDS * 2 ** min(steps, 10)))


@dataclass
class WorkflowIntegrationState:
    """Per operator run (kept on kopf's memo, so several operators in one process, as in
    the tests, never share it)."""

    objects: dict[str, IntegrationMemory] = field(default_factory=dict)
    tag_ids: dict[str, dict[str, str]] = field(default_factory=dict)
    """n8n base URL -> tag name -> tag id."""

    def memory_for(self, uid: str) -> IntegrationMemory:
        return self.objects.setdefault(uid, IntegrationMemory())


def _version(body: Mapping[str, Any]) -> int:
    try:
        return int((body.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def state_from(memo: Any) -> WorkflowIntegrationState:
    # Set on the operator's memo at startup: kopf hands every object a shallow copy of it, so
    # an attribute set later on one object's copy would not be seen from another's.
    state = memo.workflowintegrations
    assert isinstance(state, WorkflowIntegrationState)
    return state


# ---------------------------------------------------------------------------- status writes


class StatusWriter:
    """Merge-patches the status, never with a no-op, and tells the operator's status memory
    what it wrote (handlers may get a body that predates our own last write; a stale status
    could cost a duplicate workflow)."""

    def __init__(
        self,
        context: OperatorContext,
        owner: Owner,
        memory: IntegrationMemory,
        body: Mapping[str, Any],
    ) -> None:
        self.context = context
        self.owner = owner
        self.memory = memory
        self.status = memory.freshest_status(body)

    async def fields(self, fields: Mapping[str, Any]) -> None:
        patch = {key: value for key, value in fields.items() if self.status.get(key) != value}
        await self._patch(patch)

    async def final(self, desired: Any, generation: int | None, fields: Mapping[str, Any]) -> None:
        patch = status_patch(
            self.status, desired, generation=generation, now=now_utc(), fields=fields
        )
        await self._patch(patch)

    async def _patch(self, patch: Mapping[str, Any]) -> None:
        if not patch:
            return
        logger.debug(
            "status of %s/%s: writing %s", self.owner.namespace, self.owner.name, sorted(patch)
        )
        written = await self.context.kube.patch_status(
            API_VERSION, KIND, self.owner.name, self.owner.namespace, patch
        )
        self.context.statuses.remember(self.owner.uid, written)
        self.memory.written = written
        self.status = dict(written.get("status") or {**self.status, **patch})


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
        listed = await _apply_openhands(context, owner, spec, servers, indexes, problems)
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


def n8n_client(spec: WorkflowIntegrationSpec, api_key: str) -> N8nClient:
    assert spec.n8n is not None
    timeout = parse_duration(spec.n8n.timeout)
    # Few, quick retries inside one reconcile; longer outages are retried by kopf with backoff.
    retry = RetryPolicy(max_attempts=3, initial_delay=0.5, max_delay=2.0, total_timeout=timeout)
    return N8nClient(spec.n8n.url, api_key, retry=retry, timeout=timeout)


async def _apply_openhands(
    context: OperatorContext,
    owner: Owner,
    spec: WorkflowIntegrationSpec,
    servers: list[WiredServer],
    indexes: Mapping[str, Any],
    problems: list[Problem],
) -> int | None:
    """Apply the OpenHands ConfigMap (and prune an old one); the number of servers listed."""
    wanted: list[dict[str, Any]] = []
    listed: list[OpenHandsServer] = []
    if spec.open_hands is not None:
        include_all = spec.open_hands.include_not_ready
        listed = [
            OpenHandsServer(s.name, s.url, s.transport)
            for s in servers
            if s.url and s.transport and (s.ready or include_all)
        ]
        wanted = [build_openhands_config_map(owner, spec.open_hands.config_map_name, listed)]
    lookup = OwnedConfigMaps(indexes.get(OWNED_CONFIG_MAPS_INDEX), context)
    try:
        await apply_children(context.kube, wanted, lookup=lookup, observe=context.recent.remember)
        await prune_children(
            context.kube,
            owner,
            [("v1", "ConfigMap")],
            wanted,
            existing=lookup.owned_by(owner),
            observe=context.recent.remember,
        )
    except (InvalidError, ForbiddenError) as error:
        problems.append(
            Problem(
                "stalled",
                "OpenHandsConfigRejected",
                f"spec.openHands: the API server refused ConfigMap "
                f"{spec.open_hands.config_map_name if spec.open_hands else ''}: {error.message}",
            )
        )
        return None
    return len(listed) if spec.open_hands is not None else None


class OwnedConfigMaps:
    """The watch cache of ConfigMaps this kind owns, corrected by this process's writes."""

    def __init__(self, index: Mapping[Any, Any] | None, context: OperatorContext) -> None:
        self.index = index
        self.context = context

    def __call__(
        self, api_version: str, kind: str, namespace: str, name: str
    ) -> Mapping[str, Any] | None:
        cached: Mapping[str, Any] | None = None
        if self.index is not None:
            for body in self.index.get((namespace, name), []):
                cached = dict(body)
        _, found = self.context.recent.newer_than_cache(
            (api_version, kind, namespace, name), cached
        )
        return found

    def owned_by(self, owner: Owner) -> list[dict[str, Any]]:
        if self.index is None:
            return []
        found: list[dict[str, Any]] = []
        for (namespace, name), store in self.index.items():
            if namespace != owner.namespace:
                continue
            live = self("v1", "ConfigMap", namespace, name)
            if live is not None and any(
                ref.get("uid") == owner.uid for ref in live["metadata"].get("ownerReferences", [])
            ):
                found.extend(
                    {**dict(body), "apiVersion": "v1", "kind": "ConfigMap"} for body in store
                )
        return found


def _event_body(body: Mapping[str, Any]) -> dict[str, Any]:
    return {**dict(body), "apiVersion": API_VERSION, "kind": KIND}


async def emit(
    context: OperatorContext,
    body: Mapping[str, Any],
    type_: Literal["Normal", "Warning"],
    reason: str,
    message: str,
) -> None:
    """Post an Event on the WorkflowIntegration, from a kopf handler or from the resync loop.

    kopf's poster only works inside the tasks kopf runs handlers in; the resync loop is not
    one of them, so there the Event is created directly."""
    try:
        post_event(_event_body(body), type_, reason=reason, message=message)
        return
    except LookupError:
        pass
    metadata = body["metadata"]
    now = timestamp(now_utc())
    await context.kube.create(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{metadata['name']}.",
                "namespace": metadata["namespace"],
            },
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata["uid"],
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "devserver-operator"},
            "reportingComponent": "devserver-operator",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
    )


# ---------------------------------------------------------------------------- deletion


async def clean_up(
    body: Mapping[str, Any], context: OperatorContext, state: WorkflowIntegrationState, retry: int
) -> None:
    """The finalizer: with deletionPolicy Delete, remove from n8n what was created."""
    metadata = body["metadata"]
    owner = Owner(
        kind=KIND, name=metadata["name"], namespace=metadata["namespace"], uid=metadata["uid"]
    )
    async with context.lock_for(owner.uid):
        memory = state.memory_for(owner.uid)
        status = memory.freshest_status(body)
        try:
            spec: WorkflowIntegrationSpec | None = WorkflowIntegrationSpec.model_validate(
                body.get("spec") or {}
            )
        except ValidationError:
            spec = None
        if spec is None or spec.n8n is None or spec.deletion_policy == "Orphan":
            if spec is not None and spec.n8n is not None:
                post_event(
                    _event_body(body),
                    "Normal",
                    reason="Orphaned",
                    message="deletionPolicy Orphan: workflows and credentials stay in n8n",
                )
            return
        try:
            api_key = await read_api_key(context.kube, owner.namespace, spec)
        except (MissingInputError, KubeApiError, KubeUnavailableError):
            api_key = memory.api_key or ""
        if not api_key:
            post_event(
                _event_body(body),
                "Warning",
                reason="CleanupAbandoned",
                message="The n8n API key Secret is gone: workflows and credentials stay in n8n",
            )
            return
        try:
            async with n8n_client(spec, api_key) as client:
                removed = await delete_everything(client, owner, spec, status)
        except N8nError as error:
            if retry + 1 >= CLEANUP_ATTEMPTS:
                post_event(
                    _event_body(body),
                    "Warning",
                    reason="CleanupAbandoned",
                    message=f"Gave up removing workflows from n8n after {retry + 1} "
                    f"attempts: {error.message}",
                )
                return
            memory.transient_failures = retry + 1
            raise kopf.TemporaryError(
                f"removing workflows from n8n: {error}", delay=memory.retry_delay()
            ) from error
        if removed:
            logger.info(
                "removed from n8n for %s/%s: %s", owner.namespace, owner.name, ", ".join(removed)
            )


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
        return {namespace: _event_body(body)}

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
        return {(namespace, name): {**dict(body), "apiVersion": "v1", "kind": "ConfigMap"}}

    @kopf.on.resume(GROUP, VERSION, PLURAL, id="wfi-resume", registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, id="wfi-create", registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, id="wfi-update", field="spec", registry=registry)
    async def on_change(body: kopf.Body, memo: Any, **kwargs: Any) -> None:
        await reconcile(body, context_from(memo), state_from(memo), kwargs)

    @kopf.on.event(GROUP, VERSION, PLURAL, id="wfi-track", registry=registry)
    def track(*, body: kopf.Body, type: str | None, memo: Any, **kwargs: Any) -> None:
        # The periodic check (drift, Secret rotation, retries) is the shared resync loop.
        context = context_from(memo)
        context.resync.capture_indices(kwargs)
        check = functools.partial(resync_one, state=state_from(memo))
        context.resync.track(KIND, _event_body(body), deleted=type == "DELETED", check=check)

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
        for parent in (kwargs.get(INTEGRATIONS_INDEX) or {}).get(namespace, []):
            if parent["metadata"]["name"] == owner_name:
                await _reconcile_quietly(parent, memo, kwargs)


async def resync_one(
    body: Mapping[str, Any], context: OperatorContext, *, state: WorkflowIntegrationState
) -> None:
    """The periodic check of one WorkflowIntegration (from the shared resync loop)."""
    await reconcile(body, context, state, context.resync.indices)


async def _reconcile_dependents(
    server: Mapping[str, Any], namespace: str, memo: Any, indexes: Mapping[str, Any]
) -> None:
    """An MCPServer changed: reconcile the WorkflowIntegrations that select it or wired it."""
    name = server["metadata"]["name"]
    for parent in list((indexes.get(INTEGRATIONS_INDEX) or {}).get(namespace, [])):
        try:
            spec = WorkflowIntegrationSpec.model_validate(parent.get("spec") or {})
        except ValidationError:
            continue
        wired = {s.get("name") for s in (parent.get("status") or {}).get("wiredServers") or []}
        selected = select_mcp_servers(spec.mcp_servers, [server])
        if name in wired or any(s.name == name for s in selected):
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
