"""What every handler shares: settings, the API client, probe slots, verification memory."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from devserver_operator.kube.client import KubeClient
from devserver_operator.settings import OperatorSettings


@dataclass
class VerificationMemory:
    """Failed handshakes per object, for backoff. Lost on restart, which costs one early retry."""

    failures: int = 0
    last_attempt: float = 0.0


@dataclass
class OperatorContext:
    settings: OperatorSettings
    kube: KubeClient
    probe_slots: asyncio.Semaphore
    verification: dict[str, VerificationMemory] = field(default_factory=dict)


def context_from(memo: Any) -> OperatorContext:
    context: OperatorContext = memo.context
    return context
