"""What the operator keeps of every WorkflowIntegration between reconciles, in this process."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from devserver_operator.integrations.n8n_sync import SyncMemory


@dataclass
class IntegrationMemory:
    """What the operator remembers of one WorkflowIntegration between reconciles."""

    sync: SyncMemory = field(default_factory=SyncMemory)
    last_full_check: float | None = None
    api_key: str | None = None
    """Last API key read, so the finalizer can clean up after the Secret is gone (a
    namespace being deleted takes Secrets and this object at the same time). Memory only."""

    def full_check_due(self, interval: float) -> bool:
        return self.last_full_check is None or time.monotonic() - self.last_full_check >= interval


@dataclass
class WorkflowIntegrationState:
    """Shared by every WorkflowIntegration of one operator run."""

    objects: dict[str, IntegrationMemory] = field(default_factory=dict)
    tag_ids: dict[str, dict[str, str]] = field(default_factory=dict)
    """n8n base URL -> tag name -> tag id."""

    def memory_for(self, uid: str) -> IntegrationMemory:
        return self.objects.setdefault(uid, IntegrationMemory())
