"""Apply a set of children, skip what is already right, prune what is no longer wanted."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from devserver_operator.builders.common import Owner, owner_selector

from .client import KubeClient
from .drift import needs_apply, with_applied_hash
from .errors import InvalidError

# Lookup of a live child from the operator's watch cache: (apiVersion, kind, namespace, name).
LiveLookup = Callable[[str, str, str, str], Mapping[str, Any] | None]
# Told about every write: (apiVersion, kind, namespace, name) and the new body (None: deleted).
WriteObserver = Callable[[tuple[str, str, str, str], dict[str, Any] | None], None]


@dataclass
class ApplyResult:
    applied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    live: dict[str, dict[str, Any]] = field(default_factory=dict)


def child_key(manifest: Mapping[str, Any]) -> str:
    return f"{manifest['kind']}/{manifest['metadata']['name']}"


async def apply_children(
    kube: KubeClient,
    children: Sequence[Mapping[str, Any]],
    *,
    lookup: LiveLookup | None = None,
    observe: WriteObserver | None = None,
) -> ApplyResult:
    """Apply every child that differs from the live object. With ``lookup`` (the watch cache),
    an unchanged child costs no request at all; without it, one GET."""
    result = ApplyResult()
    for child in children:
        desired = with_applied_hash(child)
        metadata = desired["metadata"]
        key = child_key(desired)
        live: Mapping[str, Any] | None
        if lookup is not None:
            live = lookup(
                desired["apiVersion"], desired["kind"], metadata["namespace"], metadata["name"]
            )
        else:
            live = await kube.get(
                desired["apiVersion"], desired["kind"], metadata["name"], metadata["namespace"]
            )
        if needs_apply(desired, live):
            result.live[key] = await _apply_or_reset(kube, desired, live)
            result.applied.append(key)
            if observe is not None:
                observe(
                    (
                        desired["apiVersion"],
                        desired["kind"],
                        metadata["namespace"],
                        metadata["name"],
                    ),
                    result.live[key],
                )
        else:
            assert live is not None
            result.live[key] = dict(live)
            result.unchanged.append(key)
    return result


async def _apply_or_reset(
    kube: KubeClient, desired: Mapping[str, Any], live: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Apply; if an edit by another field manager makes the merged object invalid, reset.

    Server-side apply never removes list entries that another manager owns: after someone
    changes a Service port with `kubectl edit`, applying ours back yields two ports with one
    name, which the server refuses. A merge patch replaces such lists whole (and keeps fields
    the server fills in, like clusterIP); the apply after it takes ownership again."""
    try:
        return await kube.apply(desired)
    except InvalidError:
        if live is None or "spec" not in desired:
            raise
        metadata = desired["metadata"]
        await kube.merge_patch(
            desired["apiVersion"],
            desired["kind"],
            metadata["name"],
            metadata["namespace"],
            {"spec": desired["spec"]},
        )
        return await kube.apply(desired)


async def prune_children(
    kube: KubeClient,
    owner: Owner,
    kinds: Iterable[tuple[str, str]],
    keep: Iterable[Mapping[str, Any]],
    *,
    existing: Iterable[Mapping[str, Any]] | None = None,
    observe: WriteObserver | None = None,
) -> list[str]:
    """Delete children of ``owner`` of the given kinds that are not in ``keep``.

    Only objects whose controller ownerReference is this very owner (by uid) are touched, so a
    same-named object that someone else created is never deleted."""
    wanted = {child_key(child) for child in keep}
    pruned: list[str] = []
    if existing is None:
        found: list[Mapping[str, Any]] = []
        for api_version, kind in kinds:
            listed = await kube.list(api_version, kind, owner.namespace, owner_selector(owner))
            found.extend({**entry, "apiVersion": api_version, "kind": kind} for entry in listed)
        existing = found
    for item in existing:
        key = child_key(item)
        if key in wanted or not _controlled_by(item, owner):
            continue
        metadata = item["metadata"]
        if await kube.delete(
            item["apiVersion"],
            item["kind"],
            metadata["name"],
            owner.namespace,
            uid=metadata.get("uid"),
        ):
            pruned.append(key)
        if observe is not None:
            observe((item["apiVersion"], item["kind"], owner.namespace, metadata["name"]), None)
    return pruned


def _controlled_by(item: Mapping[str, Any], owner: Owner) -> bool:
    references = item.get("metadata", {}).get("ownerReferences") or []
    return any(ref.get("uid") == owner.uid and ref.get("controller") for ref in references)
