"""Everything that can make an object wrong calls the same reconcile: kopf's create, update
and resume, events of its children (a deleted or edited child is repaired at once), and the
resync loop. Registered here once for every kind, from its ``Kind``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from devserver_operator.api import GROUP, VERSION

from .context import OperatorContext, context_from
from .events import post_event
from .frame import new_request, owner_of, reconcile, reconcile_quietly
from .kind import Kind
from .lookup import ChildKind, cached_copy


def parent_index(kind: Kind) -> str:
    """The cache of one kind's own objects, by (namespace, name) and by (namespace,)."""
    return f"{kind.info.singular}_index"


def register_kind(registry: kopf.OperatorRegistry, kind: Kind, settings: Any) -> None:
    info = kind.info
    name = info.singular

    async def check(body: Mapping[str, Any], context: OperatorContext) -> None:
        """The periodic check (drift, Secret rotation, re-verification) and visits."""
        metadata = body.get("metadata", {})
        if metadata.get("deletionTimestamp") or context.backoff.waiting(metadata.get("uid", "")):
            return  # failed lately: tried again once its backoff has passed (kopf or this loop)
        await reconcile_quietly(kind, body, context, context.resync.indices, "resync")

    # async: kopf would run plain functions in its thread pool, a costly hop per event.
    async def index(
        *, body: kopf.Body, namespace: str | None, name: str, memo: Any, **_: Any
    ) -> dict[tuple[str | None, ...], dict[str, Any]]:
        copy = cached_copy(body, kind.api_version, info.kind)
        # The resync loop keeps the very same copy: one per object, not two.
        context_from(memo).resync.track(info.kind, copy, check=check)
        return {(namespace, name): copy, (namespace,): copy}

    kopf.index(GROUP, VERSION, info.plural, id=parent_index(kind), registry=registry)(index)

    async def on_change(body: kopf.Body, memo: Any, **kwargs: Any) -> None:
        await reconcile(kind, body, context_from(memo), kwargs, "change")

    for decorator, suffix in (
        (kopf.on.resume, "resume"),
        (kopf.on.create, "create"),
    ):
        decorator(GROUP, VERSION, info.plural, id=f"{name}-{suffix}", registry=registry)(on_change)
    kopf.on.update(
        GROUP, VERSION, info.plural, id=f"{name}-update", field="spec", registry=registry
    )(on_change)

    async def track(*, body: kopf.Body, type: str | None, memo: Any, **kwargs: Any) -> None:
        # The index above adds and refreshes the objects of the resync loop; this forgets them.
        context = context_from(memo)
        context.resync.capture_indices(kwargs)
        if type == "MODIFIED" and context.requests.pending(body["metadata"]["uid"], body):
            # "Reconcile now" (an annotation, which kopf's update handler on spec ignores).
            await reconcile_quietly(kind, body, context, kwargs, "request")
            return
        if type != "DELETED":
            return
        owner = owner_of(kind, body)
        context.resync.forget(info.kind, owner.uid)
        await kind.deleted(context, owner, kwargs)
        context.forget(owner.uid)

    kopf.on.event(GROUP, VERSION, info.plural, id=f"{name}-track", registry=registry)(track)

    if kind.finalizer:

        async def clean_up(body: kopf.Body, memo: Any, retry: int, **kwargs: Any) -> None:
            context = context_from(memo)
            owner = owner_of(kind, body)
            async with context.lock_for(owner.uid):
                await kind.clean_up(new_request(kind, body, context, kwargs, "change"), retry)

        kopf.on.delete(GROUP, VERSION, info.plural, id=f"{name}-cleanup", registry=registry)(
            clean_up
        )

    for child in kind.children:
        kopf.on.event(
            child.group,
            child.version,
            child.plural,
            id=f"{name}-child-{child.plural}",
            labels={"devserver.ecosphere.network/owner-kind": name},
            registry=registry,
        )(_child_handler(kind, child))

    kind.register(registry, settings)


def _controller(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    references = body.get("metadata", {}).get("ownerReferences") or []
    return next((ref for ref in references if ref.get("controller")), None)


def _child_handler(kind: Kind, child: ChildKind) -> Any:
    async def child_changed(
        *, body: kopf.Body, type: str | None, memo: Any, namespace: str | None, **kwargs: Any
    ) -> None:
        """A child changed or vanished: repair it now (drift) and refresh the owner's status."""
        if namespace is None:
            return
        context = context_from(memo)
        name = str(body.get("metadata", {}).get("name", ""))
        key = (child.api_version, child.kind, namespace, name)
        if type and context.writes.settle(key, body, deleted=type == "DELETED"):
            return  # the echo of our own write: nobody else touched the child
        controller = _controller(body)
        parents = kwargs.get(parent_index(kind))
        if controller is None or controller.get("kind") != kind.info.kind or parents is None:
            return
        parent = next(
            (
                item
                for item in parents.get((namespace, controller.get("name")), [])
                if item.get("metadata", {}).get("uid") == controller.get("uid")
            ),
            None,
        )
        if parent is None:
            # kopf fills every index before any handler runs, so a missing owner is gone.
            await kind.orphaned(context, body, type == "DELETED")
            return
        if not type or parent.get("metadata", {}).get("deletionTimestamp"):
            return  # the initial listing: the resume handlers cover it
        outcome = await reconcile_quietly(kind, parent, context, kwargs, "child")
        written = f"{child.kind}/{name}"
        if outcome is not None and written in outcome.written and type in ("DELETED", "MODIFIED"):
            post_event(
                {**dict(parent), "apiVersion": kind.api_version, "kind": kind.info.kind},
                "Normal",
                reason="DriftRepaired",
                message=f"{written} was {type.lower()} and was reconciled",
            )

    return child_changed
