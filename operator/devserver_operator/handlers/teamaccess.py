"""TeamAccess handlers: one RoleBinding per TeamAccess, removed at expiry or deletion.

Every trigger (create, update, resume, the shared resync loop, the expiry alarm, and events of
the binding) runs the same level-based reconcile. Three rules shape it:

- Never take over a RoleBinding the operator did not create. Server-side apply with force
  would silently replace someone else's binding of the same name, so a binding is created with
  a plain POST (which fails if the name is taken) and later applied with its uid as a
  precondition (which fails if it was replaced in between).
- Grant nothing while in doubt: an invalid spec, a foreign ServiceAccount or an expiry in the
  past removes the binding rather than keeping the last good one.
- No finalizer: kopf timers and daemons would put one on every TeamAccess, and an operator that
  is gone would then block deletion. Ownership (garbage collection) and an explicit delete when
  the operator sees the deletion remove the binding; an asyncio alarm per object, rescheduled on
  every event, hits the expiry to the second, and the resync loop is the safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from devserver_operator import metrics
from devserver_operator.api import GROUP, VERSION
from devserver_operator.api.conditions import DesiredCondition, now_utc, stalled
from devserver_operator.api.teamaccess import TeamAccessSpec
from devserver_operator.builders.common import (
    MANAGER,
    OWNER_KIND_LABEL,
    Owner,
    owner_selector,
)
from devserver_operator.builders.teamaccess import (
    ROLE_BINDING_API_VERSION,
    binding_summary,
    build_role_binding,
    expiry,
    foreign_service_accounts,
    has_expired,
)
from devserver_operator.kube.client import KubeClient
from devserver_operator.kube.drift import needs_apply, with_applied_hash
from devserver_operator.kube.errors import (
    ConflictError,
    ForbiddenError,
    InvalidError,
    KubeApiError,
    KubeUnavailableError,
)
from devserver_operator.settings import OperatorSettings

from .context import OperatorContext, RecentWrites, context_from
from .events import post_event
from .status import status_patch
from .validation import describe_validation_error

KIND = "TeamAccess"
PLURAL = "teamaccesses"
API_VERSION = f"{GROUP}/{VERSION}"
ROLE_BINDING = "RoleBinding"
EXPIRED = "Expired"
EXPIRY_SLACK_SECONDS = 0.05
"""The alarm rings this much after expiresAt, so the reconcile it starts sees the access ended."""
BINDING_INDEX = "teamaccess_bindings"
PARENT_INDEX = "teamaccess_index"
ALARM = "teamaccess_expiry_alarm"
ALARM_TASK = "teamaccess_expiry_task"

logger = logging.getLogger(__name__)


class BindingCache:
    """The operator's watch cache of TeamAccess RoleBindings, corrected by its own last writes.
    Without the index (a test calling ``reconcile`` directly) every lookup is a miss, which
    costs a GET but is never wrong."""

    def __init__(self, indices: Mapping[str, Any], recent: RecentWrites) -> None:
        self._index = indices.get(BINDING_INDEX)
        self._recent = recent

    @property
    def complete(self) -> bool:
        return self._index is not None

    def get(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        cached: Mapping[str, Any] | None = None
        if self._index is not None:
            for body in self._index.get((namespace, name), []):
                cached = body
                break
        _, body = self._recent.newer_than_cache(
            (ROLE_BINDING_API_VERSION, ROLE_BINDING, namespace, name), cached
        )
        return body

    def controlled_by(self, owner: Owner) -> list[Mapping[str, Any]]:
        """The bindings whose controller is ``owner``, including ones this process has just
        written and the cache has not seen yet."""
        names: set[str] = set()
        if self._index is not None:
            names.update(body["metadata"]["name"] for body in self._index.get((owner.uid,), []))
        ours = (ROLE_BINDING_API_VERSION, ROLE_BINDING, owner.namespace)
        for (api_version, kind, namespace, name), written in self._recent.bodies.items():
            mine = written is not None and _controlled_by(written, owner)
            if mine and (api_version, kind, namespace) == ours:
                names.add(name)
        found: list[Mapping[str, Any]] = []
        for name in sorted(names):
            live = self.get(owner.namespace, name)
            if live is not None and _controlled_by(live, owner):
                found.append(live)
        return found


@dataclass(frozen=True)
class BindingOutcome:
    live: Mapping[str, Any] | None = None
    written: bool = False
    conflict: str | None = None


async def reconcile(body: Mapping[str, Any], context: OperatorContext, cache: BindingCache) -> bool:
    """Bring one TeamAccess's RoleBinding and status in line with its spec and the clock;
    returns whether the binding had to be written."""
    async with context.lock_for(body["metadata"]["uid"]):
        return await _reconcile(body, context, cache)


async def _reconcile(
    body: Mapping[str, Any], context: OperatorContext, cache: BindingCache
) -> bool:
    started = time.monotonic()
    metadata = body["metadata"]
    owner = Owner(
        kind=KIND, name=metadata["name"], namespace=metadata["namespace"], uid=metadata["uid"]
    )
    generation = metadata.get("generation")
    status = context.statuses.freshest(owner.uid, body)
    result = "ok"
    try:
        result, written = await _follow_spec(context, cache, owner, body, status, generation)
        context.api_backoff.succeeded(owner.uid)
        return written
    except (InvalidError, ForbiddenError) as error:
        if _namespace_terminating(error):
            return False  # the namespace is going away and takes this object with it
        result = type(error).__name__
        reason = "BindingRejected" if isinstance(error, InvalidError) else "BindForbidden"
        await _write_status(
            context,
            owner,
            status,
            stalled(reason, f"The API server refused the RoleBinding: {error.message}"),
            generation,
        )
        return False
    except (KubeUnavailableError, KubeApiError) as error:
        result = "ApiError"
        metrics.RECONCILE_ERRORS.labels(KIND, "ApiError").inc()
        delay = context.api_backoff.failed(owner.uid)
        raise kopf.TemporaryError(f"Kubernetes API: {error}", delay=delay) from error
    finally:
        metrics.RECONCILE_TOTAL.labels(KIND, result).inc()
        metrics.RECONCILE_DURATION.labels(KIND).observe(time.monotonic() - started)


async def _follow_spec(
    context: OperatorContext,
    cache: BindingCache,
    owner: Owner,
    body: Mapping[str, Any],
    status: Mapping[str, Any],
    generation: int | None,
) -> tuple[str, bool]:
    """The reconcile proper; returns the outcome (for metrics) and whether it wrote the
    binding."""
    try:
        spec = TeamAccessSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        await _revoke(context, cache, owner, body, why="its spec is invalid")
        _forget_gauges(owner.namespace, owner.name)
        await _write_status(
            context,
            owner,
            status,
            stalled("InvalidSpec", describe_validation_error(error)),
            generation,
            _revoked_fields(None),
        )
        return "InvalidSpec", False
    foreign = foreign_service_accounts(spec, owner.namespace)
    if foreign:
        await _revoke(context, cache, owner, body, why="a member is in another namespace")
        _set_gauges(owner, spec, holding=0)
        await _write_status(
            context,
            owner,
            status,
            [*stalled("ForeignServiceAccount", "; ".join(foreign)), _not_expired(spec)],
            generation,
            _revoked_fields(spec),
        )
        return "ForeignServiceAccount", False
    # The full-precision clock: now_utc() drops microseconds and would let an alarm that rings
    # just after a fractional expiresAt find the access still running.
    if has_expired(spec, datetime.now(UTC)):
        await _expire(context, cache, owner, body, spec, status, generation)
        return EXPIRED, False
    outcome = await _ensure_binding(context, cache, owner, build_role_binding(owner, spec))
    if outcome.conflict is not None:
        if _reason(status) != "NameConflict":
            post_event(body, "Warning", reason="NameConflict", message=outcome.conflict)
        _set_gauges(owner, spec, holding=0)
        await _write_status(
            context,
            owner,
            status,
            [*stalled("NameConflict", outcome.conflict), _not_expired(spec)],
            generation,
            _revoked_fields(spec),
        )
        return "NameConflict", False
    assert outcome.live is not None
    await _remove_bindings(context, cache, owner, keep=outcome.live["metadata"]["name"])
    summary = binding_summary(outcome.live)
    if outcome.written:
        post_event(
            body,
            "Normal",
            reason="Granted",
            message=f"RoleBinding {summary['name']} gives {summary['subjects']} subjects "
            f"the ClusterRole {summary['clusterRole']}",
        )
    await _write_status(
        context,
        owner,
        status,
        _granted_conditions(spec, owner.namespace),
        generation,
        {
            "bindings": [summary],
            "memberCount": len(spec.members),
            "expiresAt": _timestamp(expiry(spec)),
            "expired": False,
        },
    )
    _set_gauges(owner, spec, holding=len(spec.members))
    return "ok", outcome.written


async def _expire(
    context: OperatorContext,
    cache: BindingCache,
    owner: Owner,
    body: Mapping[str, Any],
    spec: TeamAccessSpec,
    status: Mapping[str, Any],
    generation: int | None,
) -> None:
    removed = await _remove_bindings(context, cache, owner)
    ended = _timestamp(expiry(spec))
    if not status.get("expired"):
        post_event(
            body,
            "Normal",
            reason=EXPIRED,
            message=f"The access ended at {ended}"
            + (f"; removed RoleBinding {', '.join(removed)}" if removed else ""),
        )
    message = (
        f"The access ended at {ended}; no RoleBinding grants it any more. Set a later "
        "spec.expiresAt to grant it again, or delete the TeamAccess."
    )
    # Stalled, not merely Ready=False: nothing changes without a new spec, and GitOps tools
    # should flag an expired grant that is still in Git.
    await _write_status(
        context,
        owner,
        status,
        [
            *stalled(EXPIRED, message),
            DesiredCondition(type=EXPIRED, status="True", reason=EXPIRED, message=message),
        ],
        generation,
        {"bindings": None, "memberCount": 0, "expiresAt": ended, "expired": True},
    )
    _set_gauges(owner, spec, holding=0)


async def _ensure_binding(
    context: OperatorContext, cache: BindingCache, owner: Owner, binding: Mapping[str, Any]
) -> BindingOutcome:
    """Create or update the binding, unless its name belongs to someone else."""
    kube = context.kube
    desired = with_applied_hash(binding)
    name = desired["metadata"]["name"]
    live = cache.get(owner.namespace, name)
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
        await _delete(kube, context.recent, live)
        live = None
    if live is not None and live.get("roleRef") != desired["roleRef"]:
        # roleRef is immutable. Removing first means no member holds old and new role at once.
        await _delete(kube, context.recent, live)
        live = None
    if live is None:
        try:
            created = await kube.create(desired)
        except ConflictError as error:
            # Someone created that name between our look and our write; look again later.
            raise kopf.TemporaryError(
                f"RoleBinding {name} appeared meanwhile", delay=1.0
            ) from error
        _remember(context.recent, created)
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
        raise kopf.TemporaryError(
            f"RoleBinding {name} was replaced meanwhile", delay=1.0
        ) from error
    _remember(context.recent, applied)
    return BindingOutcome(live=applied, written=True)


async def _revoke(
    context: OperatorContext,
    cache: BindingCache,
    owner: Owner,
    body: Mapping[str, Any],
    *,
    why: str,
) -> None:
    removed = await _remove_bindings(context, cache, owner)
    if removed:
        post_event(
            body,
            "Warning",
            reason="Revoked",
            message=f"Removed RoleBinding {', '.join(removed)} because {why}",
        )


async def _remove_bindings(
    context: OperatorContext, cache: BindingCache, owner: Owner, *, keep: str | None = None
) -> list[str]:
    """Delete the bindings this TeamAccess controls (by uid), except ``keep``."""
    if cache.complete:
        found = cache.controlled_by(owner)
    else:
        listed = await context.kube.list(
            ROLE_BINDING_API_VERSION, ROLE_BINDING, owner.namespace, owner_selector(owner)
        )
        found = [item for item in listed if _controlled_by(item, owner)]
    removed: list[str] = []
    for item in found:
        name = item["metadata"]["name"]
        if name != keep and await _delete(context.kube, context.recent, item):
            removed.append(name)
    return removed


async def _delete(kube: KubeClient, recent: RecentWrites, binding: Mapping[str, Any]) -> bool:
    metadata = binding["metadata"]
    gone = await kube.delete(
        ROLE_BINDING_API_VERSION,
        ROLE_BINDING,
        metadata["name"],
        metadata["namespace"],
        uid=metadata.get("uid"),
    )
    recent.remember(
        (ROLE_BINDING_API_VERSION, ROLE_BINDING, metadata["namespace"], metadata["name"]), None
    )
    return gone


def _remember(recent: RecentWrites, binding: Mapping[str, Any]) -> None:
    metadata = binding["metadata"]
    recent.remember(
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
        and controller.get("kind") == KIND
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


async def _write_status(
    context: OperatorContext,
    owner: Owner,
    status: Mapping[str, Any],
    desired: list[DesiredCondition],
    generation: int | None,
    fields: Mapping[str, Any] | None = None,
) -> None:
    patch = status_patch(status, desired, generation=generation, now=now_utc(), fields=fields)
    if patch:
        written = await context.kube.patch_status(
            API_VERSION, KIND, owner.name, owner.namespace, patch
        )
        context.statuses.remember(owner.uid, written)


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


def _namespace_terminating(error: KubeApiError) -> bool:
    return isinstance(error, ForbiddenError) and "being terminated" in error.message


# -- triggers ------------------------------------------------------------------------------


def _snapshot(body: Mapping[str, Any]) -> dict[str, Any]:
    return {**dict(body), "apiVersion": API_VERSION, "kind": KIND}


async def resync_one(body: Mapping[str, Any], context: OperatorContext) -> None:
    """The periodic check of one TeamAccess (drift, and expiry should the alarm be missed)."""
    metadata = body.get("metadata", {})
    if metadata.get("deletionTimestamp") or context.api_backoff.waiting(metadata.get("uid", "")):
        return  # failed lately: tried again once its backoff has passed (kopf or this loop)
    await reconcile(body, context, BindingCache(context.resync.indices, context.recent))


def _spec_expiry(body: Mapping[str, Any]) -> datetime | None:
    raw = (body.get("spec") or {}).get("expiresAt")
    if not isinstance(raw, str):
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None  # the reconcile reports the bad spec
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _set_alarm(memo: Any, body: Mapping[str, Any], context: OperatorContext) -> None:
    """(Re)schedule this object's expiry alarm from its current spec. kopf gives each object
    its own shallow copy of the memo, so the alarm handle lives there."""
    previous: asyncio.TimerHandle | None = getattr(memo, ALARM, None)
    if previous is not None:
        previous.cancel()
    setattr(memo, ALARM, None)
    ends = _spec_expiry(body)
    if ends is None:
        return
    delay = (ends - datetime.now(UTC)).total_seconds()
    if delay <= 0:
        return  # already over: the reconcile of this very event (or resume) removes it
    uid = body["metadata"]["uid"]
    loop = asyncio.get_running_loop()

    def ring() -> None:
        setattr(memo, ALARM_TASK, loop.create_task(_expire_now(context, uid)))

    setattr(memo, ALARM, loop.call_later(delay + EXPIRY_SLACK_SECONDS, ring))


async def _expire_now(context: OperatorContext, uid: str) -> None:
    tracked = context.resync.objects.get((KIND, uid))
    if tracked is None:
        return
    try:
        await resync_one(tracked.body, context)
    except kopf.TemporaryError as error:
        logger.warning("expiring TeamAccess %s: %s; the resync loop retries", uid, error)


async def _binding_changed(
    *, body: kopf.Body, type: str, memo: Any, namespace: str | None, **kwargs: Any
) -> None:
    """A binding changed or vanished: repair it (drift), or remove it if its TeamAccess is
    gone (deleted while the operator was away, before garbage collection)."""
    if namespace is None:
        return
    controller = _controller(body)
    if controller is None or controller.get("kind") != KIND:
        return
    parents = kwargs.get(PARENT_INDEX)
    if parents is None:
        return
    context = context_from(memo)
    parent = next(
        (
            item
            for item in parents.get((namespace, controller.get("name")), [])
            if item.get("metadata", {}).get("uid") == controller.get("uid")
        ),
        None,
    )
    if parent is None:
        if type != "DELETED":
            # kopf fills every index before any handler runs, so a missing parent is gone.
            try:
                await _delete(context.kube, context.recent, body)
            except (KubeUnavailableError, KubeApiError) as error:
                logger.warning(
                    "removing orphaned RoleBinding %s/%s: %s; garbage collection removes it",
                    namespace,
                    body["metadata"]["name"],
                    error,
                )
        return
    if not type or parent.get("metadata", {}).get("deletionTimestamp"):
        return  # the initial listing: resume handlers cover it
    try:
        written = await reconcile(parent, context, BindingCache(kwargs, context.recent))
    except kopf.TemporaryError:
        logger.warning(
            "repairing the RoleBinding of TeamAccess %s/%s failed; resync retries",
            namespace,
            controller.get("name"),
        )
        return
    if written and type in ("DELETED", "MODIFIED"):
        post_event(
            parent,
            "Normal",
            reason="DriftRepaired",
            message=f"RoleBinding {body.get('metadata', {}).get('name')} was {type.lower()} "
            "and was restored",
        )


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    """Register the TeamAccess handlers, its indexes, and its part in the resync loop."""
    del settings  # nothing TeamAccess-specific to shape yet

    @kopf.index(GROUP, VERSION, PLURAL, id=PARENT_INDEX, registry=registry)
    def teamaccess_index(
        *, body: kopf.Body, namespace: str | None, name: str, **_: Any
    ) -> dict[tuple[str | None, str], dict[str, Any]]:
        return {(namespace, name): _snapshot(body)}

    @kopf.index(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        labels={"app.kubernetes.io/managed-by": MANAGER, OWNER_KIND_LABEL: "teamaccess"},
        id=BINDING_INDEX,
        registry=registry,
    )
    def teamaccess_bindings(
        *, body: kopf.Body, namespace: str | None, name: str, **_: Any
    ) -> dict[tuple[str | None, ...], dict[str, Any]]:
        # Keyed by name for lookups and by the controller's uid for "all of one TeamAccess".
        snapshot = {**dict(body), "apiVersion": ROLE_BINDING_API_VERSION, "kind": ROLE_BINDING}
        keys: list[tuple[str | None, ...]] = [(namespace, name)]
        controller = _controller(body)
        if controller is not None and controller.get("uid"):
            keys.append((str(controller["uid"]),))
        return {key: snapshot for key in keys}

    @kopf.on.resume(GROUP, VERSION, PLURAL, id="teamaccess-resume", registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, id="teamaccess-create", registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, id="teamaccess-update", field="spec", registry=registry)
    async def on_change(body: kopf.Body, memo: Any, **kwargs: Any) -> None:
        context = context_from(memo)
        await reconcile(body, context, BindingCache(kwargs, context.recent))

    @kopf.on.event(GROUP, VERSION, PLURAL, id="teamaccess-track", registry=registry)
    async def track(*, body: kopf.Body, type: str, memo: Any, **kwargs: Any) -> None:
        context = context_from(memo)
        context.resync.capture_indices(kwargs)
        deleted = type == "DELETED"
        context.resync.track(KIND, _snapshot(body), deleted=deleted, check=resync_one)
        if not deleted:
            _set_alarm(memo, body, context)
            return
        # No finalizer holds the object back, so this is the operator's one chance to remove
        # the binding itself; garbage collection would do it too, but may lag or not run.
        _set_alarm(memo, {"metadata": body["metadata"]}, context)
        owner = Owner(
            kind=KIND,
            name=body["metadata"]["name"],
            namespace=body["metadata"]["namespace"],
            uid=body["metadata"]["uid"],
        )
        try:
            await _remove_bindings(context, BindingCache(kwargs, context.recent), owner)
        except (KubeUnavailableError, KubeApiError) as error:
            logger.warning(
                "removing the RoleBinding of deleted TeamAccess %s/%s: %s; garbage "
                "collection removes it",
                owner.namespace,
                owner.name,
                error,
            )
        context.forget(owner.uid)
        _forget_gauges(owner.namespace, owner.name)

    kopf.on.event(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        id="teamaccess-bindings",
        labels={"app.kubernetes.io/managed-by": MANAGER, OWNER_KIND_LABEL: "teamaccess"},
        registry=registry,
    )(_binding_changed)
