"""One retry schedule per object for failures of the Kubernetes API, whatever triggered the
reconcile that failed.

Three things start reconciles of an object: kopf (create, update, resume, and its retry after
a ``TemporaryError``), events of its children, and the periodic resync. When the API server
keeps failing, each of them retrying on its own schedule adds up to a steady stream of
requests that never slows down. This schedule is shared: a failure pushes the object's next
attempt out (doubling, capped), kopf's retry is told that delay, and the resync loop leaves
the object alone until then. A success clears it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

FIRST_DELAY_SECONDS = 15.0
MAX_DELAY_SECONDS = 300.0


@dataclass
class _Failures:
    count: int
    retry_at: float


@dataclass
class FailureBackoff:
    first_delay: float = FIRST_DELAY_SECONDS
    max_delay: float = MAX_DELAY_SECONDS
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, _Failures] = field(default_factory=dict)

    def failed(self, uid: str) -> float:
        """Record a failure; the delay before the next attempt, in seconds."""
        previous = self._failures.get(uid)
        count = previous.count + 1 if previous else 1
        # The exponent is capped too: a long outage must not overflow the float.
        delay = min(self.first_delay * 2.0 ** min(count - 1, 16), self.max_delay)
        self._failures[uid] = _Failures(count, self.clock() + delay)
        return delay

    def succeeded(self, uid: str) -> None:
        self._failures.pop(uid, None)

    forget = succeeded

    def waiting(self, uid: str) -> bool:
        """True while a failed object's next attempt is not due yet."""
        failures = self._failures.get(uid)
        return failures is not None and self.clock() < failures.retry_at

    def failures(self, uid: str) -> int:
        failures = self._failures.get(uid)
        return failures.count if failures else 0
