"""Watch caches of the children the operator owns.

kopf fills every index from a full listing before any resource handler runs, so a child that
is missing from an index really is missing: reconciles compare against these caches and an
unchanged object costs no API request at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from devserver_operator.builders.common import MANAGER

from .context import RecentWrites

MANAGED = {"app.kubernetes.io/managed-by": MANAGER}

# (apiVersion, kind) -> (group, version, plural, index name)
OWNED_KINDS: dict[tuple[str, str], tuple[str, str, str, str]] = {
    ("apps/v1", "Deployment"): ("apps", "v1", "deployments", "owned_deployments"),
    ("v1", "Service"): ("", "v1", "services", "owned_services"),
    ("v1", "ServiceAccount"): ("", "v1", "serviceaccounts", "owned_serviceaccounts"),
    ("networking.k8s.io/v1", "NetworkPolicy"): (
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "owned_networkpolicies",
    ),
    ("policy/v1", "PodDisruptionBudget"): ("policy", "v1", "poddisruptionbudgets", "owned_pdbs"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): (
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "owned_hpas",
    ),
}


def _snapshot(body: kopf.Body, api_version: str, kind: str) -> dict[str, Any]:
    return {**dict(body), "apiVersion": api_version, "kind": kind}


def _make_indexer(api_version: str, kind: str) -> Any:
    # One function object per index: kopf keys indexers by handler, so a shared function
    # registered several times would leave all but one index unfilled.
    def index(
        *, body: kopf.Body, namespace: str | None, name: str, **_: Any
    ) -> dict[tuple[str | None, str], dict[str, Any]]:
        return {(namespace, name): _snapshot(body, api_version, kind)}

    return index


def register_indexes(registry: kopf.OperatorRegistry) -> None:
    for (api_version, kind), (group, version, plural, index_name) in OWNED_KINDS.items():
        kopf.index(group, version, plural, labels=MANAGED, id=index_name, registry=registry)(
            _make_indexer(api_version, kind)
        )


class ChildLookup:
    """Reads the owned-children indexes that kopf passes to every handler, corrected by
    this process's own most recent writes."""

    def __init__(self, kwargs: Mapping[str, Any], recent: RecentWrites | None = None) -> None:
        self._indexes = {
            key: kwargs.get(index_name) for key, (*_, index_name) in OWNED_KINDS.items()
        }
        self._recent = recent or RecentWrites()

    def __call__(
        self, api_version: str, kind: str, namespace: str, name: str
    ) -> Mapping[str, Any] | None:
        cached = self._cached(api_version, kind, namespace, name)
        _, body = self._recent.newer_than_cache((api_version, kind, namespace, name), cached)
        return body

    def _cached(
        self, api_version: str, kind: str, namespace: str, name: str
    ) -> Mapping[str, Any] | None:
        index = self._indexes.get((api_version, kind))
        if index is None:
            return None
        store = index.get((namespace, name))
        if not store:
            return None
        for body in store:
            return dict(body)
        return None

    def owned(self, api_version: str, kind: str, namespace: str) -> list[dict[str, Any]]:
        index = self._indexes.get((api_version, kind))
        if index is None:
            return []
        found: list[dict[str, Any]] = []
        for (item_namespace, _), store in index.items():
            if item_namespace != namespace:
                continue
            for body in store:
                name = body.get("metadata", {}).get("name", "")
                if self(api_version, kind, namespace, name) is not None:
                    found.append(dict(body))
        return found
