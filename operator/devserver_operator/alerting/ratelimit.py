"""A per-channel rate limit: at most ``limit`` notifications in any sliding window. Pure."""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

HOUR = timedelta(hours=1)


class SlidingWindowLimit:
    def __init__(self, limit: int, window: timedelta = HOUR) -> None:
        self.limit = limit
        self.window = window
        self._sent: deque[datetime] = deque()

    def try_acquire(self, now: datetime) -> bool:
        """Take a slot at ``now`` if the window has one."""
        while self._sent and now - self._sent[0] >= self.window:
            self._sent.popleft()
        if len(self._sent) >= self.limit:
            return False
        self._sent.append(now)
        return True
