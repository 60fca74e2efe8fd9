"""Watch caches of the objects the operator owns, and the one lookup that reads them.

kopf fills every index from a full listing before any resource handler runs, so a child that
is missing from an index really is missing: reconciles compare against these caches and an
unchanged object costs no API request at all. The caches lag one event behind our own
writes; ``OwnedObjects`` corrects them with the write memory.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from devserver_operator.builders.common import (
    MANAGER,
    OWNER_KIND_LABEL,
    OWNER_NAME_LABEL,
    Owner,
    label_value,
)

from .memory import WriteMemory, owner_key

MANAGED = {"app.kubernetes.io/managed-by": MANAGER}
SHARED_STRING_LENGTH = 64


@dataclass(frozen=True)
class ChildKind:
    """A kind of object some custom resource owns: watched, cached, repaired and pruned."""

    api_version: str
    kind: str
    plural: str

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def index(self) -> str:
        return index_name(self.api_version, self.kind)


@functools.cache  # every lookup asks: a regex per call was 4 % of an idle resync round
def index_name(api_version: str, kind: str) -> str:
    """The id of the cache of one owned kind (an identifier: kopf passes caches by name)."""
    return "owned_" + re.sub(r"[^a-z0-9]", "_", f"{kind}_{api_version}".lower())


def cached_copy(body: Mapping[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    """What a cache keeps of an object: all but managedFields, which no reconcile reads and
    which make up a good part of every object (a third of a Deployment), as a compact copy."""
    metadata = {k: v for k, v in dict(body.get("metadata", {})).items() if k != "managedFields"}
    copy: dict[str, Any] = _compact(
        {**dict(body), "apiVersion": api_version, "kind": kind, "metadata": metadata}
    )
    return copy


def _compact(value: Any) -> Any:
    """A deep copy whose keys and short strings are shared with every other cached object.

    Each watch event is decoded on its own, so every cached object carried its own copy of
    every key ("apiVersion", "app.kubernetes.io/name", ...) and of values such as "TCP":
    half of the cache's memory with 1000 MCPServers (33 MiB against 16 MiB, 30 µs a copy)."""
    if type(value) is dict:
        return {sys.intern(key): _compact(item) for key, item in value.items()}
    if type(value) is list:
        return [_compact(item) for item in value]
    if type(value) is str and len(value) <= SHARED_STRING_LENGTH:
        return sys.intern(value)
    return value


def _make_indexer(child: ChildKind) -> Any:
    # One function object per index: kopf keys indexers by handler, so a shared function
    # registered several times would leave all but one index unfilled.
    # async: kopf runs plain functions in its thread pool, and the hop there and back costs
    # more than the indexing itself.
    async def index(
        *, body: kopf.Body, namespace: str | None, name: str, labels: Mapping[str, str], **_: Any
    ) -> dict[Any, dict[str, Any]]:
        copy = cached_copy(body, child.api_version, child.kind)
        keys: dict[Any, dict[str, Any]] = {(namespace, name): copy}
        owner_kind, owner_name = labels.get(OWNER_KIND_LABEL), labels.get(OWNER_NAME_LABEL)
        if owner_kind and owner_name:
            keys[owner_key(namespace, owner_kind, owner_name)] = copy
        return keys

    return index


def register_owned_indexes(registry: kopf.OperatorRegistry, children: Iterable[ChildKind]) -> None:
    """One cache per owned kind, whichever custom resources own it."""
    for child in children:
        kopf.index(
            child.group,
            child.version,
            child.plural,
            labels=MANAGED,
            id=child.index,
            registry=registry,
        )(_make_indexer(child))


class OwnedObjects:
    """Reads the owned-object caches that kopf passes to every handler, corrected by this
    process's own most recent writes. Without a cache (a kind that lacks one) every lookup
    is a miss, which costs an apply but is never wrong."""

    def __init__(self, indexes: Mapping[str, Any], memory: WriteMemory) -> None:
        self._indexes = indexes
        self._memory = memory

    def _index(self, api_version: str, kind: str) -> Any:
        return self._indexes.get(index_name(api_version, kind))

    def complete(self, api_version: str, kind: str) -> bool:
        """Whether a cache holds this kind (else only the API server knows what exists)."""
        return self._index(api_version, kind) is not None

    def __call__(
        self, api_version: str, kind: str, namespace: str, name: str
    ) -> Mapping[str, Any] | None:
        cached: Mapping[str, Any] | None = None
        index = self._index(api_version, kind)
        if index is not None:
            for body in index.get((namespace, name)) or []:
                cached = dict(body)
                break
        _, body = self._memory.newer_than_cache((api_version, kind, namespace, name), cached)
        return body

    def owned_by(self, api_version: str, kind: str, owner: Owner) -> list[dict[str, Any]]:
        """Children of ``owner`` of one kind, by its owner labels, including ones this process
        has just written and the cache has not seen yet (whoever prunes still checks the
        controller reference)."""
        key = owner_key(owner.namespace, owner.kind, label_value(owner.name))
        index = self._index(api_version, kind)
        names = [body["metadata"]["name"] for body in index.get(key) or ()] if index else []
        written = self._memory.by_owner.get(key)
        if written:
            ours = (api_version, kind, owner.namespace)
            names = sorted({*names, *(child[3] for child in written if child[:3] == ours)})
        found: list[dict[str, Any]] = []
        for name in names:
            live = self(api_version, kind, owner.namespace, name)
            if live is None:
                continue
            # Cached copies and our own writes name their kind; say it where one does not.
            same = live.get("apiVersion") == api_version and live.get("kind") == kind
            found.append(dict(live) if same else {**live, "apiVersion": api_version, "kind": kind})
        return found
