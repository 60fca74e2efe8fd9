"""What the operator keeps of every WorkflowIntegration between reconciles, how it writes
their status, and how it posts their Events."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from devserver_operator.api import GROUP, VERSION
from devserver_operator.api.conditions import now_utc
from devserver_operator.builders.common import Owner

from .context import OperatorContext
from .events import post_event
from .status import status_patch
from .workflowintegration_n8n import SyncMemory, timestamp

KIND = "WorkflowIntegration"
PLURAL = "workflowintegrations"
API_VERSION = f"{GROUP}/{VERSION}"
# Transient n8n failures: 5 s, 10 s, 20 s, 40 s, then every 60 s.
N8N_RETRY_FIRST_SECONDS = 5.0
N8N_RETRY_MAX_SECONDS = 60.0

logger = logging.getLogger(__name__)


@dataclass
class IntegrationMemory:
    """What the operator remembers of one WorkflowIntegration between reconciles."""

    sync: SyncMemory = field(default_factory=SyncMemory)
    last_full_check: float | None = None
    transient_failures: int = 0
    api_key: str | None = None
    """Last API key read, so the finalizer can clean up after the Secret is gone (a
    namespace being deleted takes Secrets and this object at the same time). Memory only."""
    written: dict[str, Any] | None = None
    """The object as this process last wrote its status. Kept (unlike the shared status
    memory) until a newer body arrives: triggers hand over bodies of different ages (kopf's
    event, the namespace index, the resync loop's copy), and a status older than our own
    last write would cost n8n requests, or worse, a duplicate."""

    def freshest_status(self, body: Mapping[str, Any]) -> dict[str, Any]:
        if self.written is not None and _version(self.written) > _version(body):
            return dict(self.written.get("status") or {})
        return dict(body.get("status") or {})

    def full_check_due(self, interval: float) -> bool:
        return self.last_full_check is None or time.monotonic() - self.last_full_check >= interval

    def retry_delay(self) -> float:
        steps = max(self.transient_failures - 1, 0)
        return float(min(N8N_RETRY_MAX_SECONDS, N8N_RETRY_FIRST_SECONDS * 2 ** min(steps, 10)))


@dataclass
class WorkflowIntegrationState:
    """Per operator run (kept on kopf's memo, so several operators in one process, as in
    the tests, never share it)."""

    objects: dict[str, IntegrationMemory] = field(default_factory=dict)
    tag_ids: dict[str, dict[str, str]] = field(default_factory=dict)
    """n8n base URL -> tag name -> tag id."""
    soon: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    """uid -> a reconcile that waits a moment to take in more changes at once."""

    def reconcile_soon(self, uid: str, reconcile: Coroutine[Any, Any, None], delay: float) -> None:
        """Run ``reconcile`` after ``delay``, unless one for ``uid`` is waiting already."""
        if uid in self.soon:
            reconcile.close()  # the waiting one will see this change too
            return

        async def later() -> None:
            await asyncio.sleep(delay)
            self.soon.pop(uid, None)  # changes from here on need a new reconcile
            await reconcile

        def finished(task: asyncio.Task[None]) -> None:
            if self.soon.get(uid) is task:
                del self.soon[uid]
            reconcile.close()  # cancelled (the operator stops) before it ran: never awaited

        task = asyncio.create_task(later(), name=f"wfi-soon-{uid}")
        task.add_done_callback(finished)
        self.soon[uid] = task

    def memory_for(self, uid: str) -> IntegrationMemory:
        return self.objects.setdefault(uid, IntegrationMemory())


def _version(body: Mapping[str, Any]) -> int:
    try:
        return int((body.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def state_from(memo: Any) -> WorkflowIntegrationState:
    # Set on the operator's memo at startup: kopf hands every object a shallow copy of it, so
    # an attribute set later on one object's copy would not be seen from another's.
    state = memo.workflowintegrations
    assert isinstance(state, WorkflowIntegrationState)
    return state


class StatusWriter:
    """Merge-patches the status, never with a no-op, and tells the operator's status memory
    what it wrote (handlers may get a body that predates our own last write; a stale status
    could cost a duplicate workflow)."""

    def __init__(
        self,
        context: OperatorContext,
        owner: Owner,
        memory: IntegrationMemory,
        body: Mapping[str, Any],
    ) -> None:
        self.context = context
        self.owner = owner
        self.memory = memory
        self.status = memory.freshest_status(body)

    async def fields(self, fields: Mapping[str, Any]) -> None:
        patch = {key: value for key, value in fields.items() if self.status.get(key) != value}
        await self._patch(patch)

    async def final(self, desired: Any, generation: int | None, fields: Mapping[str, Any]) -> None:
        patch = status_patch(
            self.status, desired, generation=generation, now=now_utc(), fields=fields
        )
        await self._patch(patch)

    async def _patch(self, patch: Mapping[str, Any]) -> None:
        if not patch:
            return
        logger.debug(
            "status of %s/%s: writing %s", self.owner.namespace, self.owner.name, sorted(patch)
        )
        written = await self.context.kube.patch_status(
            API_VERSION, KIND, self.owner.name, self.owner.namespace, patch
        )
        self.context.statuses.remember(self.owner.uid, written)
        self.memory.written = written
        self.status = dict(written.get("status") or {**self.status, **patch})


def event_body(body: Mapping[str, Any]) -> dict[str, Any]:
    return {**dict(body), "apiVersion": API_VERSION, "kind": KIND}


async def emit(
    context: OperatorContext,
    body: Mapping[str, Any],
    type_: Literal["Normal", "Warning"],
    reason: str,
    message: str,
) -> None:
    """Post an Event on the WorkflowIntegration, from a kopf handler or from the resync loop.

    kopf's poster works only in tasks that carry the context of kopf's handlers (the resync
    loop does, as it is started from one); anywhere else the Event is created directly
    instead of being lost."""
    try:
        post_event(event_body(body), type_, reason=reason, message=message)
        return
    except LookupError:
        pass
    metadata = body["metadata"]
    now = timestamp(now_utc())
    await context.kube.create(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{metadata['name']}.",
                "namespace": metadata["namespace"],
            },
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata["uid"],
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "devserver-operator"},
            "reportingComponent": "devserver-operator",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
    )
