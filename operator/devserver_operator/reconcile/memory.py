"""What this process remembers of its own writes, and of inputs the API server refused.

- **WriteMemory**: the watch caches lag one event behind our own writes. Without a memory of
  what we last applied, deleted and wrote as status (compared by ``resourceVersion``), a
  reconcile that runs right after another would see the old object and write it again.
- **RejectedInputs**: what the API server refused as invalid (422) is refused for what it
  says, so sending the same thing again can only fail again: the object stays Stalled and
  the resync loop leaves it alone until its spec, or something it is built from, changes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from devserver_operator.builders.common import OWNER_KIND_LABEL, OWNER_NAME_LABEL, stable_hash
from devserver_operator.kube.errors import InvalidError

ChildKey = tuple[str, str, str, str]  # apiVersion, kind, namespace, name
OwnerKey = tuple[str, str | None, str, str]  # "owner", namespace, owner kind (lower), owner name
MAX_REMEMBERED = 10_000  # refused inputs are rare; the cap only bounds a pathological case


def owner_key(namespace: str | None, owner_kind: str, owner_name: str) -> OwnerKey:
    """Second key of every cached child: its owner (from its labels), so that finding an
    owner's children is one lookup instead of a scan of the namespace."""
    return ("owner", namespace, owner_kind.lower(), owner_name)


def version_of(body: Mapping[str, Any]) -> int:
    # resourceVersion is opaque by contract, but etcd's revision in practice; a non-number
    # simply makes the cache win.
    try:
        return int((body.get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


@dataclass
class WriteMemory:
    """The children this process applied or deleted last, and the status it wrote last."""

    children: dict[ChildKey, dict[str, Any] | None] = field(default_factory=dict)
    written_at: dict[ChildKey, float] = field(default_factory=dict)
    by_owner: dict[OwnerKey, set[ChildKey]] = field(default_factory=dict)
    """Children written lately, by the owner their labels name: a child just created is
    found (and pruned when no longer wanted) before the cache has seen it."""
    statuses: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    """uid -> (resourceVersion after our write, the status we wrote). Kept until the object
    is deleted: triggers hand over bodies of different ages (kopf's event, an index, the
    resync loop's copy), and a status older than our own last write would be written again,
    or worse, cost a duplicate in an external system."""
    # A watch event follows a write within milliseconds; a memory older than this has been
    # overtaken by events the cache reflects (for example, someone deleting the object).
    ttl_seconds: float = 10.0

    # -- children

    def remember(self, key: ChildKey, body: dict[str, Any] | None) -> None:
        self.children[key] = body
        self.written_at[key] = time.monotonic()
        labels = ((body or {}).get("metadata") or {}).get("labels") or {}
        if labels.get(OWNER_KIND_LABEL) and labels.get(OWNER_NAME_LABEL):
            owner = owner_key(key[2], labels[OWNER_KIND_LABEL], labels[OWNER_NAME_LABEL])
            self.by_owner.setdefault(owner, set()).add(key)

    def forget(self, key: ChildKey) -> None:
        """Drop the memory of ``key``: a watch event says something newer happened to it."""
        self._drop(key)

    def written_children(self, owner: OwnerKey) -> set[ChildKey]:
        return set(self.by_owner.get(owner, ()))

    def newer_than_cache(
        self, key: ChildKey, cached: Mapping[str, Any] | None
    ) -> tuple[bool, Mapping[str, Any] | None]:
        """(True, body) when our own write is newer than the cached object."""
        if key not in self.children:
            return False, cached
        if time.monotonic() - self.written_at.get(key, 0.0) > self.ttl_seconds:
            self._drop(key)
            return False, cached
        ours = self.children[key]
        if ours is None:  # we deleted it; a cached copy is the stale one
            return (cached is not None), None
        if cached is None:
            return True, ours
        if version_of(ours) > version_of(cached):
            return True, ours
        self._drop(key)  # the cache has caught up
        return False, cached

    def settle(self, key: ChildKey, body: Mapping[str, Any], *, deleted: bool = False) -> bool:
        """A watch event brought ``body``: forget our copy once the cache is at least as new
        (it would otherwise stay until the next reconcile looks, which for a cold start
        with 1000 objects was 3000 full objects). True when ``body`` is exactly our own
        last write, an echo that needs no reconcile."""
        if deleted:
            # Ours was a delete: the cache has it now. Someone else's delete of what we
            # wrote: forget our copy, the child is gone; the caller repairs it.
            self._drop(key)
            return False
        ours = self.children.get(key)
        if ours is None:
            return False
        echo = version_of(ours) == version_of(body) > 0
        if version_of(body) >= version_of(ours):
            self._drop(key)
        return echo

    def _drop(self, key: ChildKey) -> None:
        body = self.children.pop(key, None)
        self.written_at.pop(key, None)
        labels = ((body or {}).get("metadata") or {}).get("labels") or {}
        if labels.get(OWNER_KIND_LABEL) and labels.get(OWNER_NAME_LABEL):
            owner = owner_key(key[2], labels[OWNER_KIND_LABEL], labels[OWNER_NAME_LABEL])
            keys = self.by_owner.get(owner)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self.by_owner[owner]

    # -- status

    def remember_status(self, uid: str, written_object: Mapping[str, Any]) -> None:
        # Only the status and the version: the whole object (managedFields and all) for every
        # object would be megabytes for nothing.
        self.statuses[uid] = (version_of(written_object), dict(written_object.get("status") or {}))

    def freshest_status(self, uid: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """The body's status, unless our own last write is newer than the body."""
        ours = self.statuses.get(uid)
        if ours is not None and ours[0] > version_of(body):
            return dict(ours[1])
        return dict(body.get("status") or {})

    def forget_status(self, uid: str) -> None:
        self.statuses.pop(uid, None)


@dataclass
class RejectedInputs:
    """By owner uid: the hash of what the server refused, and its message."""

    rejected: dict[str, tuple[str, str]] = field(default_factory=dict)

    def raise_if_refused(self, uid: str, inputs: Sequence[Mapping[str, Any]]) -> None:
        """Refuse again, with the server's words, exactly the inputs it refused before."""
        known = self.rejected.get(uid)
        if known is not None and known[0] == stable_hash(list(inputs)):
            raise InvalidError(422, "Invalid", known[1])

    @contextlib.contextmanager
    def refusing_again(self, uid: str, inputs: Sequence[Mapping[str, Any]]) -> Iterator[None]:
        """Around a write: refuse what was refused before, remember what is refused now."""
        self.raise_if_refused(uid, inputs)
        try:
            yield
        except InvalidError as error:
            self.remember(uid, inputs, error.message)
            raise

    def remember(self, uid: str, inputs: Sequence[Mapping[str, Any]], message: str) -> None:
        self.rejected.pop(uid, None)
        if len(self.rejected) >= MAX_REMEMBERED:
            self.rejected.pop(next(iter(self.rejected)))  # the oldest
        self.rejected[uid] = (stable_hash(list(inputs)), message)

    def forget(self, uid: str) -> None:
        self.rejected.pop(uid, None)
