"""What every notifier shares: the error type, and delivery with bounded retries."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from devserver_operator.alerting.notification import Notification

DEFAULT_ATTEMPTS = 3
DEFAULT_FIRST_DELAY = 0.5
MAX_RETRY_AFTER = 5.0
DEFAULT_TIMEOUT = 10.0


class DeliveryError(Exception):
    """A notification did not reach its channel. The message names no URL and no secret.

    ``transient``: worth another try (connection trouble, timeouts, 429, 5xx, SMTP 4xx).
    ``retry_after``: what the receiver asked for (429 Retry-After), in seconds."""

    def __init__(self, message: str, *, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.retry_after = retry_after


class Notifier(Protocol):
    kind: str
    """slack, teams, webhook or email (the metric label)."""

    async def send(self, notification: Notification) -> None:
        """Deliver once; raise DeliveryError when it did not arrive."""


Sleep = Callable[[float], Awaitable[None]]


async def deliver(
    notifier: Notifier,
    notification: Notification,
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    first_delay: float = DEFAULT_FIRST_DELAY,
    sleep: Sleep = asyncio.sleep,
) -> int:
    """Send with up to ``attempts`` tries for transient errors, doubling the pause from
    ``first_delay`` (or waiting what a 429 asked for, at most 5 s). Returns the attempts
    used; raises the last DeliveryError. Longer outages are the caller's business: it tries
    again on a later evaluation, with its own backoff."""
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            await notifier.send(notification)
        except DeliveryError as error:
            if not error.transient or attempt == attempts:
                raise
            pause = min(error.retry_after, MAX_RETRY_AFTER) if error.retry_after else delay
            await sleep(pause)
            delay *= 2
        else:
            return attempt
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
