"""TeamAccess: one RoleBinding per TeamAccess, removed at expiry or deletion.

Three rules shape the reconcile:

- Never take over a RoleBinding the operator did not create. Server-side apply with force
  would silently replace someone else's binding of the same name, so a binding is created with
  a plain POST (which fails if the name is taken) and later applied with its uid as a
  precondition (which fails if it was replaced in between).
- Grant nothing while in doubt: an invalid spec, a foreign ServiceAccount or an expiry in the
  past removes the binding rather than keeping the last good one.
- No finalizer: an operator that is gone would then block deletion. Ownership (garbage
  collection) and an explicit delete when the operator sees the deletion remove the binding;
  a visit of the resync loop at the expiry ends the access to the second.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from devserver_operator import metrics
from devserver_operator.api import API_VERSION
from devserver_operator.api.conditions import DesiredCondition
from devserver_operator.api.kinds import TEAMACCESS
from devserver_operator.api.teamaccess import TeamAccessSpec
from devserver_operator.builders.common import MANAGER, Owner, owner_selector
from devserver_operator.builders.teamaccess import (
    ROLE_BINDING_API_VERSION,
    binding_summary,
    build_role_binding,
    expiry,
    foreign_service_accounts,
    has_expired,
)
from devserver_operator.kube.drift import needs_apply, with_applied_hash
from devserver_operator.kube.errors import (
    ConflictError,
    InvalidError,
    KubeApiError,
    KubeUnavailableError,
)
from devserver_operator.reconcile.context import OperatorContext
from devserver_operator.reconcile.kind import Kind, Outcome, Request, StalledError, TransientError
from devserver_operator.reconcile.lookup import ChildKind, OwnedObjects
from devserver_operator.reconcile.validation import describe_validation_error

ROLE_BINDING = "RoleBinding"
EXPIRED = "Expired"
EXPIRY_SLACK_SECONDS = 0.05
"""The visit comes this much after expiresAt, so the reconcile it starts sees the access ended."""

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BindingOutcome:
    live: Mapping[str, Any] | None = None
    written: bool = False
    conflict: str | None = None


class TeamAccessKind(Kind):
    info = TEAMACCESS
    children = (ChildKind(ROLE_BINDING_API_VERSION, ROLE_BINDING, "rolebindings"),)
    refused_reasons = ("BindingRejected", "BindForbidden")
    refused_what = "the RoleBinding"

    async def reconcile(self, request: Request) -> Outcome:
        owner = request.owner
        try:
            spec = TeamAccessSpec.model_validate(request.body.get("spec") or {})
        except ValidationError as error:
            await _revoke(
                request.context, request.lookup, owner, request, why="its spec is invalid"
            )
            _forget_gauges(owner.namespace, owner.name)
            raise StalledError(
                "InvalidSpec", describe_validation_error(error), fields=_revoked_fields(None)
            ) from error
        foreign = foreign_service_accounts(spec, owner.namespace)
        if foreign:
            why = "a member is in another namespace"
            await _revoke(request.context, request.lookup, owner, request, why=why)
            _set_gauges(owner, spec, holding=0)
            raise StalledError(
                "ForeignServiceAccount",
                "; ".join(foreign),
                extra=[_not_expired(spec)],
                fields=_revoked_fields(spec),
            )
        # The full-precision clock: now_utc() drops microseconds and would let a visit that
        # comes just after a fractional expiresAt find the access still running.
        now = datetime.now(UTC)
        if has_expired(spec, now):
            await _expire(request, spec)
        outcome = await _ensure_binding(request, build_role_binding(owner, spec))
        if outcome.conflict is not None:
            if _reason(request.status.status) != "NameConflict":
                request.event("Warning", "NameConflict", outcome.conflict)
            _set_gauges(owner, spec, holding=0)
            raise StalledError(
                "NameConflict",
                outcome.conflict,
                extra=[_not_expired(spec)],
                fields=_revoked_fields(spec),
            )
        assert outcome.live is not None
        keep = outcome.live["metadata"]["name"]
        await _remove_bindings(request.context, request.lookup, owner, keep=keep)
        summary = binding_summary(outcome.live)
        if outcome.written:
            request.event(
                "Normal",
                "Granted",
                f"RoleBinding {summary['name']} gives {summary['subjects']} subjects "
                f"the ClusterRole {summary['clusterRole']}",
            )
        await request.write_status(
            _granted_conditions(spec, owner.namespace),
            {
                "bindings": [summary],
                "memberCount": len(spec.members),
                "expiresAt": _timestamp(expiry(spec)),
                "expired": False,
            },
        )
        _set_gauges(owner, spec, holding=len(spec.members))
        until = expiry(spec)
        return Outcome(
            written=[f"{ROLE_BINDING}/{keep}"] if outcome.written else [],
            visit_in=None
            if until is None
            else (until - now).total_seconds() + EXPIRY_SLACK_SECONDS,
        )

    async def deleted(
        self, context: OperatorContext, owner: Owner, indexes: Mapping[str, Any]
    ) -> None:
        # No finalizer holds the object back, so this is the operator's one chance to remove
        # the binding itself; garbage collection would do it too, but may lag or not run.
        try:
            await _remove_bindings(context, OwnedObjects(indexes, context.writes), owner)
        except (KubeUnavailableError, KubeApiError) as error:
            logger.warning(
                "removing the RoleBinding of deleted TeamAccess %s/%s: %s; garbage "
                "collection removes it",
                owner.namespace,
                owner.name,
                error,
            )
        _forget_gauges(owner.namespace, owner.name)

    async def orphaned(
        self, context: OperatorContext, child: Mapping[str, Any], deleted: bool
    ) -> None:
        if deleted:
            return
        try:
            await _delete(context, child)
        except (KubeUnavailableError, KubeApiError) as error:
            metadata = child.get("metadata", {})
            logger.warning(
                "removing orphaned RoleBinding %s/%s: %s; garbage collection removes it",
                metadata.get("namespace"),
                metadata.get("name"),
                error,
            )


async def _expire(request: Request, spec: TeamAccessSpec) -> None:
    removed = await _remove_bindings(request.context, request.lookup, request.owner)
    ended = _timestamp(expiry(spec))
    if not request.status.status.get("expired"):
        request.event(
            "Normal",
            EXPIRED,
            f"The access ended at {ended}"
            + (f"; removed RoleBinding {', '.join(removed)}" if removed else ""),
        )
    message = (
        f"The access ended at {ended}; no RoleBinding grants it any more. Set a later "
        "spec.expiresAt to grant it again, or delete the TeamAccess."
    )
    _set_gauges(request.owner, spec, holding=0)
    # Stalled, not merely Ready=False: nothing changes without a new spec, and GitOps tools
    # should flag an expired grant that is still in Git.
    raise StalledError(
        EXPIRED,
        message,
        extra=[DesiredCondition(type=EXPIRED, status="True", reason=EXPIRED, message=message)],
        fields={"bindings": None, "memberCount": 0, "expiresAt": ended, "expired": True},
    )


async def _ensure_binding(request: Request, binding: Mapping[str, Any]) -> BindingOutcome:
    """Create or update the binding, unless its name belongs to someone else."""
    context, owner = request.context, request.owner
    kube = context.kube
    desired = with_applied_hash(binding)
    name = desired["metadata"]["name"]
    live = request.lookup(ROLE_BINDING_API_VERSION, ROLE_BINDING, owner.namespace, name)
    if live is None:
        # Not among the operator's bindings: maybe nobody's, maybe someone else's.
        live = await kube.get(ROLE_BINDING_API_VERSION, ROLE_BINDING, name, owner.namespace)
    if live is not None and not _controlled_by(live, owner):
        if not _left_by_earlier_incarnation(live, owner):
            return BindingOutcome(
                conflict=f"RoleBinding {name} already exists in namespace {owner.namespace} and "
                "does not belong to this TeamAccess; the operator never takes over a binding "
                "it did not create. Remove that RoleBinding or rename the TeamAccess."
            )
        await _delete(context, live)
        live = None
    if live is not None and live.get("roleRef") != desired["roleRef"]:
        # roleRef is immutable. Removing first means no member holds old and new role at once.
        await _delete(context, live)
        live = None
    if live is None:
        try:
            created = await kube.create(desired)
        except ConflictError as error:
            # Someone created that name between our look and our write; look again later.
            raise TransientError(f"RoleBinding {name} appeared meanwhile") from error
        _remember(context, created)
        return BindingOutcome(live=created, written=True)
    if not needs_apply(desired, live):
        return BindingOutcome(live=live)
    # The uid makes the apply a precondition: it fails instead of taking over a binding that
    # replaced ours since we looked.
    pinned = {**desired, "metadata": {**desired["metadata"], "uid": live["metadata"]["uid"]}}
    try:
        applied = await kube.apply(pinned)
    except (ConflictError, InvalidError) as error:
        if "uid" not in error.message:
            raise
        raise TransientError(f"RoleBinding {name} was replaced meanwhile") from error
    _remember(context, applied)
    return BindingOutcome(live=applied, written=True)


async def _revoke(
    context: OperatorContext, lookup: OwnedObjects, owner: Owner, request: Request, *, why: str
) -> None:
    removed = await _remove_bindings(context, lookup, owner)
    if removed:
        request.event(
            "Warning", "Revoked", f"Removed RoleBinding {', '.join(removed)} because {why}"
        )


async def _remove_bindings(
    context: OperatorContext, lookup: OwnedObjects, owner: Owner, *, keep: str | None = None
) -> list[str]:
    """Delete the bindings this TeamAccess controls (by uid), except ``keep``."""
    if lookup.complete(ROLE_BINDING_API_VERSION, ROLE_BINDING):
        found = lookup.owned_by(ROLE_BINDING_API_VERSION, ROLE_BINDING, owner)
    else:
        found = await context.kube.list(
            ROLE_BINDING_API_VERSION, ROLE_BINDING, owner.namespace, owner_selector(owner)
        )
    removed: list[str] = []
    for item in found:
        name = item["metadata"]["name"]
        if name != keep and _controlled_by(item, owner) and await _delete(context, item):
            removed.append(name)
    return removed


async def _delete(context: OperatorContext, binding: Mapping[str, Any]) -> bool:
    metadata = binding["metadata"]
    gone = await context.kube.delete(
        ROLE_BINDING_API_VERSION,
        ROLE_BINDING,
        metadata["name"],
        metadata["namespace"],
        uid=metadata.get("uid"),
    )
    context.writes.remember(
        (ROLE_BINDING_API_VERSION, ROLE_BINDING, metadata["namespace"], metadata["name"]), None
    )
    return gone


def _remember(context: OperatorContext, binding: Mapping[str, Any]) -> None:
    metadata = binding["metadata"]
    context.writes.remember(
        (ROLE_BINDING_API_VERSION, ROLE_BINDING, metadata["namespace"], metadata["name"]),
        {**binding, "apiVersion": ROLE_BINDING_API_VERSION, "kind": ROLE_BINDING},
    )


def _controller(binding: Mapping[str, Any]) -> Mapping[str, Any] | None:
    references = binding.get("metadata", {}).get("ownerReferences") or []
    return next((ref for ref in references if ref.get("controller")), None)


def _controlled_by(binding: Mapping[str, Any], owner: Owner) -> bool:
    controller = _controller(binding)
    return controller is not None and controller.get("uid") == owner.uid


def _left_by_earlier_incarnation(binding: Mapping[str, Any], owner: Owner) -> bool:
    """A binding of a deleted TeamAccess of the same name that garbage collection has not
    removed yet: only one TeamAccess of a name exists at a time, so its owner is gone."""
    controller = _controller(binding)
    labels = binding.get("metadata", {}).get("labels") or {}
    return (
        controller is not None
        and controller.get("apiVersion") == API_VERSION
        and controller.get("kind") == owner.kind
        and controller.get("name") == owner.name
        and labels.get("app.kubernetes.io/managed-by") == MANAGER
    )


def _granted_conditions(spec: TeamAccessSpec, namespace: str) -> list[DesiredCondition]:
    until = expiry(spec)
    message = (
        f"{len(spec.members)} member(s) hold the role {spec.role} (ClusterRole "
        f"{spec.cluster_role}) in namespace {namespace}"
        + (f" until {_timestamp(until)}." if until else ".")
    )
    return [
        DesiredCondition(type="Ready", status="True", reason="Granted", message=message),
        _not_expired(spec),
    ]


def _not_expired(spec: TeamAccessSpec) -> DesiredCondition:
    until = expiry(spec)
    if until is None:
        return DesiredCondition(
            type=EXPIRED, status="False", reason="NoExpiry", message="spec.expiresAt is not set."
        )
    return DesiredCondition(
        type=EXPIRED,
        status="False",
        reason="NotExpired",
        message=f"The access ends at {_timestamp(until)}.",
    )


def _revoked_fields(spec: TeamAccessSpec | None) -> dict[str, Any]:
    return {
        "bindings": None,
        "memberCount": 0,
        "expiresAt": _timestamp(expiry(spec)) if spec is not None else None,
        "expired": None if spec is None else False,
    }


def _timestamp(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _reason(status: Mapping[str, Any]) -> str | None:
    for item in status.get("conditions") or []:
        if item.get("type") == "Ready":
            return str(item.get("reason"))
    return None


def _set_gauges(owner: Owner, spec: TeamAccessSpec, *, holding: int) -> None:
    metrics.TEAMACCESS_MEMBERS.labels(owner.namespace, owner.name).set(holding)
    until = expiry(spec)
    if until is None:
        with contextlib.suppress(KeyError):
            metrics.TEAMACCESS_EXPIRY.remove(owner.namespace, owner.name)
    else:
        metrics.TEAMACCESS_EXPIRY.labels(owner.namespace, owner.name).set(until.timestamp())


def _forget_gauges(namespace: str, name: str) -> None:
    for gauge in (metrics.TEAMACCESS_MEMBERS, metrics.TEAMACCESS_EXPIRY):
        with contextlib.suppress(KeyError):
            gauge.remove(namespace, name)


KIND = TeamAccessKind()
