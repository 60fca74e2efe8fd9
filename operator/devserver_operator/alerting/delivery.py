"""Which notifications are due: dedup by fingerprint, repeat interval, resolved notices and
backoff of failing channels. Pure: the ledger of what was sent is an input and an output.

- A firing alert is sent to a channel once, then again every ``repeat_interval`` while it
  keeps firing. An alert that resolves and fires again is a new alert and is sent at once.
- A resolved notice goes only to channels that were told the alert fired (with
  ``sendResolved``), once.
- A notification that fails stays due: it is tried again on a later evaluation, once the
  channel's backoff has passed. One channel's failures never hold back another channel.
- A notification the rate limit drops counts as handled for the repeat interval (it is not
  queued up, so a storm cannot turn into a backlog), and gets no resolved notice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from .state import Alert

NoticeKind = Literal["firing", "resolved"]
MAX_CHANNEL_BACKOFF = timedelta(minutes=5)


@dataclass(frozen=True)
class Due:
    """One notification to send: ``alert`` to ``channel``, as firing or resolved."""

    channel: str
    alert: Alert
    kind: NoticeKind


@dataclass(frozen=True)
class Sent:
    """What a channel was told about one alert."""

    firing_at: datetime | None = None
    """When the last firing notice was handled (delivered, or dropped by the rate limit)."""
    delivered: bool = False
    """Whether that firing notice reached the channel (a resolved notice needs it)."""
    resolved_at: datetime | None = None
    """When the resolved notice was handled."""


LedgerKey = tuple[str, str]  # (fingerprint, channel)
Ledger = Mapping[LedgerKey, Sent]


@dataclass(frozen=True)
class ChannelHealth:
    """Consecutive failures of a channel, and when it may be tried again."""

    failures: int = 0
    retry_at: datetime | None = None
    last_error: str | None = None


def due_notifications(
    alerts: Iterable[Alert],
    ledger: Ledger,
    channels: Sequence[str],
    *,
    repeat_interval: timedelta,
    send_resolved: bool,
    now: datetime,
    health: Mapping[str, ChannelHealth] | None = None,
) -> list[Due]:
    """Everything due at ``now``, oldest alert first, firing before resolved per alert."""
    ready = [c for c in channels if _may_try(health.get(c) if health else None, now)]
    due: list[Due] = []
    for alert in sorted(alerts, key=lambda a: (a.active_since, a.rule, a.fingerprint)):
        for channel in ready:
            sent = ledger.get((alert.fingerprint, channel))
            if alert.state == "firing" and _firing_due(alert, sent, repeat_interval, now):
                due.append(Due(channel, alert, "firing"))
            elif alert.state == "resolved" and send_resolved and _resolved_due(alert, sent):
                due.append(Due(channel, alert, "resolved"))
    return due


def _may_try(health: ChannelHealth | None, now: datetime) -> bool:
    return health is None or health.retry_at is None or health.retry_at <= now


def _firing_due(alert: Alert, sent: Sent | None, repeat: timedelta, now: datetime) -> bool:
    if sent is None or sent.firing_at is None:
        return True
    assert alert.fired_at is not None
    if sent.firing_at < alert.fired_at:
        return True  # what was sent belongs to an earlier firing of the same labels
    return now - sent.firing_at >= repeat


def _resolved_due(alert: Alert, sent: Sent | None) -> bool:
    if sent is None or not sent.delivered or sent.firing_at is None:
        return False  # the channel never heard that it fired
    assert alert.fired_at is not None and alert.resolved_at is not None
    if sent.firing_at < alert.fired_at:
        return False
    return sent.resolved_at is None or sent.resolved_at < alert.resolved_at


def record(
    ledger: Mapping[LedgerKey, Sent], due: Due, now: datetime, *, delivered: bool
) -> dict[LedgerKey, Sent]:
    """The ledger after ``due`` was handled at ``now`` (delivered, or dropped)."""
    key = (due.alert.fingerprint, due.channel)
    before = ledger.get(key, Sent())
    if due.kind == "firing":
        after = replace(before, firing_at=now, delivered=delivered)
    else:
        after = replace(before, resolved_at=now)
    return {**ledger, key: after}


def forget_gone(
    ledger: Mapping[LedgerKey, Sent], fingerprints: Iterable[str], channels: Iterable[str]
) -> dict[LedgerKey, Sent]:
    """Drop entries of alerts and channels that no longer exist."""
    alive, names = set(fingerprints), set(channels)
    return {key: sent for key, sent in ledger.items() if key[0] in alive and key[1] in names}


def after_failure(
    health: ChannelHealth | None, error: str, now: datetime, *, base: timedelta
) -> ChannelHealth:
    """Back off exponentially from ``base`` (the evaluation interval), capped at 5 minutes."""
    failures = (health.failures if health else 0) + 1
    delay = min(base * (2 ** min(failures - 1, 16)), MAX_CHANNEL_BACKOFF)
    return ChannelHealth(failures=failures, retry_at=now + delay, last_error=error)
