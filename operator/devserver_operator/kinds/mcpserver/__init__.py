"""MCPServer: parse, read the referenced Secrets and ConfigMaps, build the children, apply
them, verify the server speaks MCP, and observe the status."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from devserver_operator import metrics
from devserver_operator.api.kinds import MCPSERVER
from devserver_operator.api.mcpserver import MCPServerSpec
from devserver_operator.builders.common import Owner, held_by_another
from devserver_operator.builders.mcpserver import (
    McpServerInputs,
    build_children,
    served_transport,
    server_url,
)
from devserver_operator.observe.mcpserver import availability_from_deployment, conditions_for
from devserver_operator.reconcile.context import OperatorContext
from devserver_operator.reconcile.kind import Kind, Outcome, Request, StalledError
from devserver_operator.reconcile.lookup import ChildKind
from devserver_operator.reconcile.validation import describe_validation_error
from devserver_operator.settings import OperatorSettings

from .inputs import MissingReferenceError, read_referenced_inputs
from .verification import VerificationMemory, verify

SERVICE_ACCOUNT_CONFLICT = "ServiceAccountConflict"

CHILDREN = (
    ChildKind("apps/v1", "Deployment", "deployments"),
    # The server of a stdio image, and its proxy's Role and RoleBinding.
    ChildKind("apps/v1", "StatefulSet", "statefulsets"),
    ChildKind("rbac.authorization.k8s.io/v1", "Role", "roles"),
    ChildKind("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    ChildKind("v1", "Service", "services"),
    ChildKind("v1", "ServiceAccount", "serviceaccounts"),
    ChildKind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
    ChildKind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    ChildKind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
)


def parse_spec(body: Mapping[str, Any]) -> MCPServerSpec:
    try:
        spec = MCPServerSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        raise StalledError("InvalidSpec", describe_validation_error(error)) from error
    if spec.verification_settings.enabled and spec.verification_timeout_seconds <= 0:
        # The schema lets "0s" through; a handshake without time can only fail.
        raise StalledError(
            "InvalidSpec",
            "spec.verification.timeout must be longer than 0s, "
            f"not {spec.verification_settings.timeout!r}",
        )
    return spec


class MCPServerKind(Kind):
    info = MCPSERVER
    children = CHILDREN

    def new_state(self, settings: OperatorSettings) -> dict[str, VerificationMemory]:
        return {}

    async def reconcile(self, request: Request) -> Outcome:
        spec = parse_spec(request.body)
        owner, settings = request.owner, request.context.settings
        try:
            inputs = await read_referenced_inputs(request.context.kube, owner.namespace, spec)
        except MissingReferenceError as error:
            raise StalledError("MissingReference", str(error)) from error
        children = build_children(
            McpServerInputs(
                owner=owner,
                spec=spec,
                bridge_image=settings.bridge_image,
                proxy_image=settings.stdio_proxy_image,
                operator_namespace=settings.operator_namespace,
                cluster_domain=settings.cluster_domain,
                config_hash=inputs.config_hash,
            )
        )
        conflict = await _foreign_service_account(request, children)
        if conflict is not None:
            raise StalledError(SERVICE_ACCOUNT_CONFLICT, conflict)
        applied = await request.apply(children)
        if applied.pruned:
            request.event("Normal", "Pruned", f"Removed {', '.join(applied.pruned)}")
        availability = availability_from_deployment(
            spec, applied.live.get(f"Deployment/{owner.name}")
        )
        verification, verified = await verify(request, spec, availability, inputs.headers)
        fields = {
            "url": server_url(owner, spec, settings.cluster_domain),
            "transport": served_transport(spec),
            **(
                {"replicas": availability.replicas, "readyReplicas": availability.ready_replicas}
                if spec.url is None
                else {}
            ),
            **({"configHash": inputs.config_hash} if inputs.config_hash else {}),
            **verified,
        }
        first = not request.status.status.get("observedGeneration")  # None, or 0 by default
        desired = conditions_for(spec, availability, verification)
        await request.write_status(desired, fields)
        ready = next(c for c in desired if c.type == "Ready").status == "True"
        metrics.MCP_SERVER_READY.labels(owner.namespace, owner.name).set(1 if ready else 0)
        if applied.applied and first:
            request.event("Normal", "Created", f"Created {', '.join(applied.applied)}")
        return Outcome(written=applied.applied)

    async def deleted(
        self, context: OperatorContext, owner: Owner, indexes: Mapping[str, Any]
    ) -> None:
        context.states.get(self.info.kind, {}).pop(owner.uid, None)
        for gauge in (metrics.MCP_SERVER_READY, metrics.MCP_SERVER_TOOLS):
            with contextlib.suppress(KeyError):
                gauge.remove(owner.namespace, owner.name)


async def _foreign_service_account(request: Request, children: list[dict[str, Any]]) -> str | None:
    """Why the ServiceAccount this MCPServer would create is not its to write, if so.

    The forced apply would take over an existing account (its token, its cloud identity);
    the admission webhook refuses that to authors without pod rights, and this refuses it to
    everyone, also where the webhook is not installed or the object predates it."""
    owner = request.owner
    for child in children:
        if child["kind"] != "ServiceAccount":
            continue
        name = child["metadata"]["name"]
        live = request.lookup("v1", "ServiceAccount", owner.namespace, name)
        if live is None:
            # The watch cache holds only accounts labelled as ours: a foreign one can only be
            # seen by asking (one read, and only while no account of ours exists).
            live = await request.context.kube.get("v1", "ServiceAccount", name, owner.namespace)
        holder = held_by_another(live, owner) if live is not None else None
        if holder is not None:
            return (
                f"spec.serviceAccount: ServiceAccount {name} {holder}; the operator does not "
                "take over an account it did not create: choose another name, or name it "
                "with create: false"
            )
    return None


KIND = MCPServerKind()
