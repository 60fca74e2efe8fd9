"""What every reconcile shares, for the whole operator run: settings, the API client, the
memories, the backoff, the locks and slots, and each kind's own shared state.

It lives on kopf's memo and is created by the startup handler. kopf hands every object a
shallow copy of the memo, so anything that must be shared is created here, once, and never
set on the memo later (it would land on one object's copy only).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from devserver_operator.kube.client import KubeClient
from devserver_operator.settings import OperatorSettings

from .backoff import FailureBackoff
from .memory import RejectedInputs, WriteMemory
from .requests import HandledRequests
from .resync import Resync

RECONCILE_CONCURRENCY = 8  # per kind: as many as the API client has connections


@dataclass
class OperatorContext:
    settings: OperatorSettings
    kube: KubeClient
    probe_slots: asyncio.Semaphore
    states: dict[str, Any] = field(default_factory=dict)
    """kind -> the state its reconciles share (an HTTP client, memories between reconciles)."""
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    writes: WriteMemory = field(default_factory=WriteMemory)
    refused: RejectedInputs = field(default_factory=RejectedInputs)
    backoff: FailureBackoff = field(default_factory=FailureBackoff)
    resync: Resync = field(default_factory=Resync)
    slots: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    requests: HandledRequests = field(default_factory=HandledRequests)
    """"Reconcile now" annotations already handled (see requests.py)."""

    def lock_for(self, uid: str) -> asyncio.Lock:
        """One reconcile at a time per object: handlers, visits and child events all funnel
        into the same reconcile and would otherwise race each other."""
        return self.locks.setdefault(uid, asyncio.Lock())

    def slots_for(self, kind: str) -> asyncio.Semaphore:
        """Reconciles of one kind in flight at once. Without a bound, a cold start with 1000
        objects starts 1000 reconciles together: their requests queue for the connections
        until they time out, and peak memory grows with the backlog. Per kind, so that slow
        n8n or Prometheus calls never hold up the MCPServers."""
        return self.slots.setdefault(kind, asyncio.Semaphore(RECONCILE_CONCURRENCY))

    def forget(self, uid: str) -> None:
        """The object is gone: drop everything kept about it."""
        self.locks.pop(uid, None)
        self.writes.forget_status(uid)
        self.backoff.forget(uid)
        self.refused.forget(uid)
        self.requests.forget(uid)


def context_from(memo: Any) -> OperatorContext:
    context: OperatorContext = memo.context
    return context
