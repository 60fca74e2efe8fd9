"""What a kind supplies to the frame, and what the frame hands to each reconcile.

A kind is one small module under ``kinds/``: it parses the spec, gathers the inputs, builds
the children (``builders/``), applies them through ``Request.apply`` and observes the status
(``observe/``). Everything around that (triggers, lock, slots, backoff, metrics, the mapping
of errors to conditions, the status writer and the memories) is the frame's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import kopf

from devserver_operator.api.conditions import DesiredCondition
from devserver_operator.api.kinds import KindInfo
from devserver_operator.builders.common import Owner
from devserver_operator.kube.children import ApplyResult, apply_children, prune_children
from devserver_operator.settings import OperatorSettings

from .context import OperatorContext
from .events import post_event
from .lookup import ChildKind, OwnedObjects
from .status import StatusWriter

Trigger = Literal["change", "child", "resync", "visit", "request"]
logger = logging.getLogger(__name__)


class StalledError(Exception):
    """The object cannot be acted on until its spec or a referenced object changes."""

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        extra: Sequence[DesiredCondition] = (),
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.extra = list(extra)
        """Kind-specific conditions to write along (e.g. TeamAccess's Expired)."""
        self.fields = dict(fields or {})


class TransientError(Exception):
    """Something outside will likely pass by itself (n8n down, a race with another writer):
    retried on the object's shared backoff schedule."""


@dataclass
class Outcome:
    """What one reconcile did, for the frame (metrics, retries, visits, drift Events)."""

    result: str = "ok"
    """For the reconcile metrics: ok, or the reason of the problem found."""
    written: list[str] = field(default_factory=list)
    """Children written, as Kind/name."""
    retry: str | None = None
    """A transient problem, already reported in status: retried on the shared backoff."""
    visit_in: float | None = None
    """Seconds until the object wants its next visit (an evaluation, an expiry)."""


@dataclass
class Request:
    """One reconcile of one object."""

    kind: Kind
    body: Mapping[str, Any]
    owner: Owner
    context: OperatorContext
    lookup: OwnedObjects
    indexes: Mapping[str, Any]
    trigger: Trigger
    status: StatusWriter
    requested: str | None = None
    """A "reconcile now" request this reconcile is the first to see (reconcile/requests.py):
    do now what is otherwise only due later."""

    @property
    def generation(self) -> int | None:
        generation: int | None = self.body["metadata"].get("generation")
        return generation

    @property
    def state(self) -> Any:
        return self.context.states.get(self.kind.info.kind)

    async def write_status(
        self, desired: Sequence[DesiredCondition], fields: Mapping[str, Any] | None = None
    ) -> None:
        await self.status.write(desired, generation=self.generation, fields=fields)

    async def apply(
        self, children: Sequence[Mapping[str, Any]], kinds: Sequence[ChildKind] | None = None
    ) -> ApplyResult:
        """Apply ``children`` where they differ from the cache and prune this owner's children
        of ``kinds`` (default: the kind's own) that are no longer wanted. What the API server
        refused before is not sent again until it changes (it raises the same InvalidError)."""
        context = self.context
        remember = context.writes.remember
        with context.refused.refusing_again(self.owner.uid, children):
            result = await apply_children(
                context.kube, children, lookup=self.lookup, observe=remember
            )
        pruned_kinds = self.kind.children if kinds is None else kinds
        existing = [
            child
            for owned in pruned_kinds
            for child in self.lookup.owned_by(owned.api_version, owned.kind, self.owner)
        ]
        result.pruned = await prune_children(
            context.kube,
            self.owner,
            [(owned.api_version, owned.kind) for owned in pruned_kinds],
            children,
            existing=existing,
            observe=remember,
        )
        return result

    def event(self, type_: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        try:
            post_event(self.event_body, type_, reason=reason, message=message)
        except LookupError:
            # kopf posts only from tasks that carry its handlers' context; every trigger of
            # the frame does (the resync loop is started from a handler).
            logger.warning("Event %s on %s/%s not posted: %s", reason, *self._where, message)

    @property
    def _where(self) -> tuple[str, str]:
        return self.owner.namespace, self.owner.name

    @property
    def event_body(self) -> dict[str, Any]:
        return {**dict(self.body), "apiVersion": self.kind.api_version, "kind": self.owner.kind}


class Kind:
    """The base of every kind module's ``KIND``. Override ``reconcile``; the rest is
    optional."""

    info: KindInfo
    children: tuple[ChildKind, ...] = ()
    """Owned kinds: cached, watched (an edit or delete is repaired at once) and pruned."""
    refused_reasons: tuple[str, str] = ("ChildRejected", "Forbidden")
    """Stalled reasons when the API server refuses a child as invalid (422) or forbidden."""
    refused_what: str = "a child"
    finalizer: bool = False
    """Only for cleanup in a system outside the cluster, which only the operator can do:
    a finalizer blocks deletion for as long as the operator is away."""

    @property
    def api_version(self) -> str:
        from devserver_operator.api import API_VERSION

        return API_VERSION

    def new_state(self, settings: OperatorSettings) -> Any:
        """The state every reconcile of this kind shares, created once per operator run."""
        return None

    async def close(self, state: Any) -> None:
        """The operator stops: release what ``new_state`` opened."""

    async def reconcile(self, request: Request) -> Outcome:
        raise NotImplementedError

    async def clean_up(self, request: Request, retry: int) -> None:
        """The finalizer (only with ``finalizer = True``)."""

    async def deleted(
        self, context: OperatorContext, owner: Owner, indexes: Mapping[str, Any]
    ) -> None:
        """The object is gone: drop its memories and gauges, remove what ownership does not."""

    async def orphaned(
        self, context: OperatorContext, child: Mapping[str, Any], deleted: bool
    ) -> None:
        """An owned child whose owner no longer exists (deleted while the operator was away,
        before garbage collection removed the child)."""

    def register(self, registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
        """Watches of this kind beyond its own objects and children (e.g. of other kinds)."""
