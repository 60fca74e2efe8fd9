"""MCPServer handlers: parse, build, apply, verify, set status.

Every trigger (create, update, resume, the periodic check, and events of owned children)
runs the same level-based reconcile, so there is one code path to get right.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import kopf
from pydantic import ValidationError

from devserver_operator import metrics
from devserver_operator.api import GROUP, VERSION
from devserver_operator.api.conditions import find, now_utc, reconciling, stalled
from devserver_operator.api.mcpserver import MCPServerSpec
from devserver_operator.builders.common import (
    OWNER_KIND_LABEL,
    OWNER_NAME_LABEL,
    Owner,
    held_by_another,
)
from devserver_operator.builders.mcpserver import (
    McpServerInputs,
    build_children,
    served_transport,
    server_url,
)
from devserver_operator.integrations.mcp_errors import McpProbeError
from devserver_operator.integrations.mcp_probe import probe_mcp_server
from devserver_operator.kube.children import apply_children, child_key, prune_children
from devserver_operator.kube.errors import (
    ForbiddenError,
    InvalidError,
    KubeApiError,
    KubeUnavailableError,
)
from devserver_operator.settings import OperatorSettings

from .context import OperatorContext, VerificationMemory, context_from
from .events import post_event
from .indexes import OWNED_KINDS, ChildLookup, cached_copy
from .mcpserver_inputs import MissingReferenceError, ReferencedInputs, read_referenced_inputs
from .mcpserver_status import (
    VERIFIED,
    Availability,
    Verification,
    availability_from_deployment,
    conditions_for,
    verification_fields,
)
from .status import existing_conditions, status_patch
from .validation import describe_validation_error

KIND = "MCPServer"
PLURAL = "mcpservers"
API_VERSION = f"{GROUP}/{VERSION}"
MAX_VERIFY_BACKOFF_SECONDS = 600.0
SERVICE_ACCOUNT_CONFLICT = "ServiceAccountConflict"

logger = logging.getLogger(__name__)


async def reconcile(
    body: Mapping[str, Any],
    context: OperatorContext,
    lookup: ChildLookup,
    *,
    verify: bool = True,
) -> list[str]:
    """Bring one MCPServer's children and status in line with its spec; returns the children
    it had to write."""
    # The lock first: waiting for a slot must not let a second reconcile of the same object
    # sneak in between.
    async with context.lock_for(body["metadata"]["uid"]), context.reconcile_slots:
        try:
            written = await _reconcile(body, context, lookup, verify=verify)
        except kopf.TemporaryError:
            raise
        except Exception as error:
            # A bug that some spec triggers must not turn into a silent retry loop without a
            # status: the object says it is stuck, the log has the traceback.
            logger.exception("reconciling MCPServer %s failed", _name_of(body))
            await _report_internal_error(context, body, error)
            return []
        context.api_backoff.succeeded(body["metadata"]["uid"])
        return written


class SpecError(Exception):
    """The spec cannot be acted on; the message names the field, ``reason`` the condition's."""

    def __init__(self, message: str, reason: str = "InvalidSpec") -> None:
        super().__init__(message)
        self.reason = reason


async def _desired(
    context: OperatorContext, lookup: ChildLookup, owner: Owner, spec: MCPServerSpec
) -> tuple[ReferencedInputs, list[dict[str, Any]]]:
    """What the referenced objects hold, and the children to apply; SpecError when a
    reference is missing or a child's name is held by someone else."""
    try:
        inputs = await read_referenced_inputs(context.kube, owner.namespace, spec)
    except MissingReferenceError as error:
        raise SpecError(str(error), "MissingReference") from error
    build = McpServerInputs(
        owner=owner,
        spec=spec,
        bridge_image=context.settings.bridge_image,
        proxy_image=context.settings.stdio_proxy_image,
        operator_namespace=context.settings.operator_namespace,
        cluster_domain=context.settings.cluster_domain,
        config_hash=inputs.config_hash,
    )
    children = build_children(build)
    conflict = await _foreign_service_account(context, lookup, owner, children)
    if conflict is not None:
        raise SpecError(conflict, SERVICE_ACCOUNT_CONFLICT)
    return inputs, children


def _parse_spec(body: Mapping[str, Any]) -> MCPServerSpec:
    try:
        spec = MCPServerSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        raise SpecError(describe_validation_error(error)) from error
    if spec.verification_settings.enabled and spec.verification_timeout_seconds <= 0:
        # The schema lets "0s" through; a handshake without time can only fail.
        raise SpecError(
            "spec.verification.timeout must be longer than 0s, "
            f"not {spec.verification_settings.timeout!r}"
        )
    return spec


def _name_of(body: Mapping[str, Any]) -> str:
    metadata = body.get("metadata", {})
    return f"{metadata.get('namespace')}/{metadata.get('name')}"


async def _report_internal_error(
    context: OperatorContext, body: Mapping[str, Any], error: Exception
) -> None:
    metrics.RECONCILE_ERRORS.labels(KIND, "InternalError").inc()
    metadata = body["metadata"]
    owner = Owner(
        kind=KIND, name=metadata["name"], namespace=metadata["namespace"], uid=metadata["uid"]
    )
    # Only the type: an exception's text may quote values from referenced Secrets.
    message = (
        f"The operator failed on this spec ({type(error).__name__}); its log has the details. "
        "Change the spec or report the problem."
    )
    with contextlib.suppress(KubeUnavailableError, KubeApiError):
        await _write_status(
            context,
            owner,
            status=context.statuses.freshest(metadata["uid"], body),
            desired=stalled("InternalError", message),
            generation=metadata.get("generation"),
        )


async def _reconcile(
    body: Mapping[str, Any],
    context: OperatorContext,
    lookup: ChildLookup,
    *,
    verify: bool,
) -> list[str]:
    started = time.monotonic()
    metadata = body["metadata"]
    owner = Owner(
        kind=KIND, name=metadata["name"], namespace=metadata["namespace"], uid=metadata["uid"]
    )
    generation = metadata.get("generation")
    status = context.statuses.freshest(metadata["uid"], body)
    result = "ok"
    try:
        try:
            spec = _parse_spec(body)
            inputs, children = await _desired(context, lookup, owner, spec)
        except SpecError as error:
            result = error.reason
            await _write_status(
                context,
                owner,
                status=status,
                desired=stalled(error.reason, str(error)),
                generation=generation,
            )
            return []
        try:
            with context.rejected_children.refusing_again(owner.uid, children):
                applied = await apply_children(
                    context.kube, children, lookup=lookup, observe=context.recent.remember
                )
            existing = [
                child
                for api_version, kind in OWNED_KINDS
                for child in lookup.owned_by(api_version, kind, owner)
            ]
            pruned = await prune_children(
                context.kube,
                owner,
                OWNED_KINDS,
                children,
                existing=existing,
                observe=context.recent.remember,
            )
        except (InvalidError, ForbiddenError) as error:
            if _namespace_terminating(error):
                return []  # the namespace is going away and takes this object with it
            result = type(error).__name__
            await _write_status(
                context,
                owner,
                status=status,
                desired=stalled(
                    "ChildRejected" if isinstance(error, InvalidError) else "Forbidden",
                    f"The API server refused a child: {error.message}",
                ),
                generation=generation,
            )
            return []
        if pruned:
            post_event(body, "Normal", reason="Pruned", message=f"Removed {', '.join(pruned)}")
        deployment = applied.live.get(f"Deployment/{owner.name}")
        availability = availability_from_deployment(spec, deployment)
        verification, fields = await _verification(
            context,
            owner,
            spec,
            status=status,
            generation=generation,
            availability=availability,
            headers=inputs.headers,
            verify=verify,
            body=body,
        )
        url = server_url(owner, spec, context.settings.cluster_domain)
        fields = {
            "url": url,
            "transport": served_transport(spec),
            **(
                {"replicas": availability.replicas, "readyReplicas": availability.ready_replicas}
                if spec.url is None
                else {}
            ),
            **({"configHash": inputs.config_hash} if inputs.config_hash else {}),
            **fields,
        }
        desired = conditions_for(spec, availability, verification)
        await _write_status(
            context, owner, status=status, desired=desired, generation=generation, fields=fields
        )
        ready = next(c for c in desired if c.type == "Ready").status == "True"
        metrics.MCP_SERVER_READY.labels(owner.namespace, owner.name).set(1 if ready else 0)
        if applied.applied and status.get("observedGeneration") is None:
            created = ", ".join(applied.applied)
            post_event(body, "Normal", reason="Created", message=f"Created {created}")
        return applied.applied
    except (KubeUnavailableError, KubeApiError) as error:
        result = "ApiError"
        await _report_api_error(context, owner, status, generation, error)
        raise kopf.TemporaryError(
            f"Kubernetes API: {error}", delay=context.api_backoff.failed(owner.uid)
        ) from error
    finally:
        metrics.RECONCILE_TOTAL.labels(KIND, result).inc()
        metrics.RECONCILE_DURATION.labels(KIND).observe(time.monotonic() - started)


async def _foreign_service_account(
    context: OperatorContext,
    lookup: ChildLookup,
    owner: Owner,
    children: list[dict[str, Any]],
) -> str | None:
    """Why the ServiceAccount this MCPServer would create is not its to write, if so.

    The forced apply would take over an existing account (its token, its cloud identity);
    the admission webhook refuses that to authors without pod rights, and this refuses it to
    everyone, also where the webhook is not installed or the object predates it."""
    for child in children:
        if child["kind"] != "ServiceAccount":
            continue
        name = child["metadata"]["name"]
        live = lookup("v1", "ServiceAccount", owner.namespace, name)
        if live is None:
            # The watch cache holds only accounts labelled as ours: a foreign one can only be
            # seen by asking (one read, and only while no account of ours exists).
            live = await context.kube.get("v1", "ServiceAccount", name, owner.namespace)
        holder = held_by_another(live, owner) if live is not None else None
        if holder is not None:
            return (
                f"spec.serviceAccount: ServiceAccount {name} {holder}; the operator does not "
                "take over an account it did not create: choose another name, or name it "
                "with create: false"
            )
    return None


async def _report_api_error(
    context: OperatorContext,
    owner: Owner,
    status: Mapping[str, Any],
    generation: int | None,
    error: Exception,
) -> None:
    """Say in status why a new generation is not reconciled yet, while it is retried.

    Only when this generation has no outcome yet: a Ready server does not turn unready for
    a passing API hiccup (the client already retried it for a second or so)."""
    metrics.RECONCILE_ERRORS.labels(KIND, "ApiError").inc()
    if status.get("observedGeneration") == generation and find(
        existing_conditions(status), "Ready"
    ):
        return
    message = f"The Kubernetes API failed a request; retrying: {error}"
    with contextlib.suppress(KubeUnavailableError, KubeApiError):  # it may be down entirely
        await _write_status(
            context,
            owner,
            status=status,
            desired=reconciling("ApiError", message, ready_status="False"),
            generation=generation,
        )


async def _verification(
    context: OperatorContext,
    owner: Owner,
    spec: MCPServerSpec,
    *,
    status: Mapping[str, Any],
    generation: int | None,
    availability: Availability,
    headers: Mapping[str, str],
    verify: bool,
    body: Mapping[str, Any],
) -> tuple[Verification | None, dict[str, Any]]:
    """Run the MCP handshake when it is due; otherwise keep what status already says."""
    if not spec.verification_settings.enabled:
        return None, {}
    previous = find(existing_conditions(status), VERIFIED)
    kept_fields = {
        key: status[key]
        for key in ("serverInfo", "tools", "toolCount", "lastVerifiedTime")
        if key in status
    }
    if availability.status != "True":
        if previous is not None and previous.status == "True":
            return Verification(
                "Unknown", "NotAvailable", "Verification waits for the server to be available."
            ), kept_fields
        return Verification(
            "Unknown", "NotAvailable", "Verification waits for the server to be available."
        ), {}
    memory = context.verification.setdefault(owner.uid, VerificationMemory())
    if not verify or not _due(spec, previous, generation, status, memory):
        if previous is None:
            return Verification(
                "Unknown", "Pending", "The MCP handshake has not run yet."
            ), kept_fields
        return Verification(previous.status, previous.reason, previous.message), kept_fields
    url = server_url(owner, spec, context.settings.cluster_domain)
    memory.last_attempt = time.monotonic()
    started = time.monotonic()
    async with context.probe_slots:
        try:
            result = await probe_mcp_server(
                url,
                "sse" if spec.transport == "sse" else "streamable-http",
                timeout=spec.verification_timeout_seconds,
                headers=headers or None,
            )
        except McpProbeError as error:
            memory.failures += 1
            metrics.MCP_PROBE_TOTAL.labels(error.reason).inc()
            metrics.MCP_PROBE_DURATION.observe(time.monotonic() - started)
            if previous is None or previous.status != "False" or previous.reason != error.reason:
                post_event(body, "Warning", reason="VerificationFailed", message=error.message)
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
        post_event(body, "Normal", reason="Verified", message=message)
    return Verification("True", "HandshakeSucceeded", message), verification_fields(
        result, now_utc()
    )


def _due(
    spec: MCPServerSpec,
    previous: Any,
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


async def _write_status(
    context: OperatorContext,
    owner: Owner,
    *,
    status: Mapping[str, Any],
    desired: Any,
    generation: int | None,
    fields: Mapping[str, Any] | None = None,
) -> None:
    patch = status_patch(status, desired, generation=generation, now=now_utc(), fields=fields)
    if patch:
        written = await context.kube.patch_status(
            API_VERSION, KIND, owner.name, owner.namespace, patch
        )
        context.statuses.remember(owner.uid, written)


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    """Register the MCPServer handlers (the periodic check is the shared resync loop)."""
    del settings  # nothing MCPServer-specific to shape yet

    @kopf.on.resume(GROUP, VERSION, PLURAL, id="mcpserver-resume", registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, id="mcpserver-create", registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, id="mcpserver-update", field="spec", registry=registry)
    async def on_change(body: kopf.Body, memo: Any, **kwargs: Any) -> None:
        context = context_from(memo)
        await reconcile(body, context, ChildLookup(kwargs, context.recent))

    @kopf.on.delete(GROUP, VERSION, PLURAL, id="mcpserver-forget", optional=True, registry=registry)
    async def forget(memo: Any, namespace: str | None, name: str, uid: str, **_: Any) -> None:
        context_from(memo).forget(uid)
        context_from(memo).resync.forget(KIND, uid)
        for gauge in (metrics.MCP_SERVER_READY, metrics.MCP_SERVER_TOOLS):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace or "", name)

    for api_version, kind in OWNED_KINDS:
        group, version, plural, _ = OWNED_KINDS[(api_version, kind)]
        kopf.on.event(
            group,
            version,
            plural,
            id=f"mcpserver-child-{plural}",
            labels={OWNER_KIND_LABEL: "mcpserver"},
            registry=registry,
        )(_child_changed)


async def _child_changed(
    *, body: kopf.Body, type: str, memo: Any, namespace: str | None, **kwargs: Any
) -> None:
    """A child changed or vanished: repair it now (drift) and refresh the parent's status."""
    if not type or namespace is None:
        return  # the initial listing; resume handlers cover it
    owner_name = (body.get("metadata", {}).get("labels") or {}).get(OWNER_NAME_LABEL)
    parents = kwargs.get("mcpserver_index")
    if not owner_name or parents is None:
        return
    context = context_from(memo)
    if context.recent.settle(_cache_key(body, namespace), body, deleted=type == "DELETED"):
        return  # the echo of our own apply: nobody else touched the child
    if type == "DELETED":
        # Whatever this process last wrote to the child is history now.
        metadata = body.get("metadata", {})
        context_from(memo).recent.forget(
            (body.get("apiVersion", ""), body.get("kind", ""), namespace, metadata.get("name", ""))
        )
    # A copy: the store changes while the reconcile below awaits.
    for parent in list(parents.get((namespace, owner_name), [])):
        if parent.get("metadata", {}).get("deletionTimestamp"):
            return
        key = child_key({"kind": body.get("kind"), "metadata": dict(body.get("metadata", {}))})
        try:
            written = await reconcile(parent, context, ChildLookup(kwargs, context.recent))
        except kopf.TemporaryError:
            logger.warning(
                "repairing %s of MCPServer %s/%s failed; the periodic check retries",
                key,
                namespace,
                owner_name,
            )
            return
        if key in written and type in ("DELETED", "MODIFIED"):
            post_event(
                parent,
                "Normal",
                reason="DriftRepaired",
                message=f"{key} was {type.lower()} and was reconciled",
            )


def _cache_key(body: Mapping[str, Any], namespace: str) -> tuple[str, str, str, str]:
    name = str(body.get("metadata", {}).get("name", ""))
    return (str(body.get("apiVersion")), str(body.get("kind")), namespace, name)


async def resync_one(body: Mapping[str, Any], context: OperatorContext) -> None:
    """The periodic check of one MCPServer (drift, Secret rotation, re-verification)."""
    metadata = body.get("metadata", {})
    if metadata.get("deletionTimestamp") or context.api_backoff.waiting(metadata.get("uid", "")):
        return  # failed lately: tried again once its backoff has passed (kopf or this loop)
    await reconcile(body, context, ChildLookup(context.resync.indices, context.recent))


def register_parent_index(registry: kopf.OperatorRegistry) -> None:
    # Both async: kopf would run plain functions in its thread pool, a costly hop per event.
    @kopf.index(GROUP, VERSION, PLURAL, id="mcpserver_index", registry=registry)
    async def mcpserver_index(
        *, body: kopf.Body, namespace: str | None, name: str, memo: Any, **_: Any
    ) -> dict[tuple[str | None, str], dict[str, Any]]:
        copy = cached_copy(body, API_VERSION, KIND)
        # The periodic check keeps the very same copy: one per object, not two.
        context = context_from(memo)
        context.resync.track(KIND, copy, deleted=False, check=resync_one)
        return {(namespace, name): copy}

    @kopf.on.event(GROUP, VERSION, PLURAL, id="mcpserver-track", registry=registry)
    async def track(*, body: kopf.Body, type: str, memo: Any, **kwargs: Any) -> None:
        # Feeds the one periodic resync loop (the index above adds and refreshes objects);
        # kopf timers would need a finalizer on every MCPServer and one task per object.
        context = context_from(memo)
        context.resync.capture_indices(kwargs)
        if type == "DELETED":
            context.resync.forget(KIND, body.get("metadata", {}).get("uid", ""))


def _namespace_terminating(error: KubeApiError) -> bool:
    return isinstance(error, ForbiddenError) and "being terminated" in error.message
