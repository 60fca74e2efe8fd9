"""The OpenHands ConfigMap of a WorkflowIntegration: applied when it differs from the watch
cache, pruned when the spec names another one or none.

A ConfigMap of that name that this WorkflowIntegration does not control (another
WorkflowIntegration's, or one a user made) is never taken over: server-side apply with force
would hand it back and forth between two owners on every change, so the second one ends
Stalled with ConfigMapConflict instead."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devserver_operator.api.workflowintegration import WorkflowIntegrationSpec
from devserver_operator.builders.common import Owner, held_by_another
from devserver_operator.builders.openhands import OpenHandsServer, build_openhands_config_map
from devserver_operator.builders.workflowintegration import WiredServer
from devserver_operator.kube.children import apply_children, prune_children
from devserver_operator.kube.errors import ForbiddenError, InvalidError

from .context import OperatorContext
from .workflowintegration_openhands_secret import apply_openhands_secret
from .workflowintegration_status import CONFIG_MAP_CONFLICT, CONFIG_MAP_REJECTED, Problem

OWNED_CONFIG_MAPS_INDEX = "wfi_owned_configmaps"


async def apply_openhands_config(
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
        if spec.open_hands is not None:
            conflict = await _conflict(context, lookup, owner, spec.open_hands.config_map_name)
            if conflict is not None:
                problems.append(Problem("stalled", CONFIG_MAP_CONFLICT, conflict))
                wanted = []  # an older ConfigMap of ours is still pruned
        await apply_children(context.kube, wanted, lookup=lookup, observe=context.recent.remember)
        pruned = await prune_children(
            context.kube,
            owner,
            [("v1", "ConfigMap")],
            wanted,
            existing=lookup.owned_by(owner),
            observe=context.recent.remember,
        )
        await apply_openhands_secret(
            context,
            owner,
            spec.open_hands.config_map_name if spec.open_hands is not None and wanted else None,
            servers,
            listed,
            [key.removeprefix("ConfigMap/") for key in pruned],
            problems,
        )
    except (InvalidError, ForbiddenError) as error:
        problems.append(
            Problem(
                "stalled",
                CONFIG_MAP_REJECTED,
                f"spec.openHands: the API server refused the ConfigMap or Secret "
                f"{spec.open_hands.config_map_name if spec.open_hands else ''}: {error.message}",
            )
        )
        return None
    return len(listed) if spec.open_hands is not None and wanted else None


async def _conflict(
    context: OperatorContext, lookup: OwnedConfigMaps, owner: Owner, name: str
) -> str | None:
    """Why the ConfigMap ``name`` is not ours to write, or None when it is ours or absent."""
    live = lookup("v1", "ConfigMap", owner.namespace, name)
    if live is None:
        # The watch cache holds only ConfigMaps labelled as ours: one made by someone else
        # can only be seen by asking (a read, and only while it is not ours).
        live = await context.kube.get("v1", "ConfigMap", name, owner.namespace)
        if live is None:
            return None
        lookup.found[(owner.namespace, name)] = live
    holder = held_by_another(live, owner)
    if holder is None:
        return None
    return (
        f"spec.openHands.configMapName: ConfigMap {name} {holder}; choose another name, "
        "or delete that ConfigMap"
    )


class OwnedConfigMaps:
    """The watch cache of ConfigMaps this kind owns, corrected by this process's writes."""

    def __init__(self, index: Mapping[Any, Any] | None, context: OperatorContext) -> None:
        self.index = index
        self.context = context
        self.found: dict[tuple[str, str], Mapping[str, Any]] = {}
        """ConfigMaps read from the API server because the watch cache lacked them."""

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
        return found if found is not None else self.found.get((namespace, name))

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
