"""Which notifications are due: dedup per alert and channel, repeat interval, resolved
notices, channel backoff and the per-channel rate limit. Pure, with the clock a parameter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from devserver_operator.alerting.delivery import (
    MAX_CHANNEL_BACKOFF,
    ChannelHealth,
    Due,
    Sent,
    after_failure,
    due_notifications,
    forget_gone,
    record,
)
from devserver_operator.alerting.ratelimit import SlidingWindowLimit
from devserver_operator.alerting.state import Alert

T0 = datetime(2027, 1, 1, tzinfo=UTC)
REPEAT = timedelta(hours=4)
CHANNELS = ["slack", "mail"]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def alert(
    state: str = "firing", fired: float = 0, resolved: float | None = None, fp: str = "f1"
) -> Alert:
    return Alert(
        rule="GaugeHigh",
        fingerprint=fp,
        labels={"alertname": "GaugeHigh"},
        annotations={},
        value=1,
        state=state,  # type: ignore[arg-type]
        active_since=at(fired - 60),
        fired_at=at(fired) if state != "pending" else None,
        resolved_at=at(resolved) if resolved is not None else None,
    )


def due(
    alerts: list[Alert], ledger: dict, now: float, **kwargs: object
) -> list[tuple[str, str, str]]:
    found = due_notifications(
        alerts,
        ledger,
        CHANNELS,
        repeat_interval=kwargs.pop("repeat", REPEAT),  # type: ignore[arg-type]
        send_resolved=kwargs.pop("send_resolved", True),  # type: ignore[arg-type]
        now=at(now),
        **kwargs,  # type: ignore[arg-type]
    )
    return [(d.channel, d.alert.fingerprint, d.kind) for d in found]


def sent_everywhere(a: Alert, when: float) -> dict:
    ledger: dict = {}
    for channel in CHANNELS:
        ledger = record(ledger, Due(channel, a, "firing"), at(when), delivered=True)
    return ledger


def test_a_firing_alert_is_due_once_on_every_channel() -> None:
    a = alert()
    assert due([a], {}, 0) == [("slack", "f1", "firing"), ("mail", "f1", "firing")]
    assert due([a], sent_everywhere(a, 0), 1) == []


def test_pending_alerts_notify_nobody() -> None:
    assert due([alert("pending")], {}, 0) == []


def test_repeat_interval_sends_again_only_after_it_passed() -> None:
    a = alert()
    ledger = sent_everywhere(a, 0)
    assert due([a], ledger, REPEAT.total_seconds() - 1) == []
    assert len(due([a], ledger, REPEAT.total_seconds())) == 2


def test_a_new_firing_of_the_same_labels_is_sent_at_once() -> None:
    ledger = sent_everywhere(alert(fired=0), 0)
    again = alert(fired=100)
    assert len(due([again], ledger, 100)) == 2


def test_resolved_is_sent_once_to_channels_that_heard_it_fire() -> None:
    a = alert()
    ledger = record({}, Due("slack", a, "firing"), at(0), delivered=True)
    gone = alert("resolved", fired=0, resolved=30)
    assert due([gone], ledger, 30) == [("slack", "f1", "resolved")]
    ledger = record(ledger, Due("slack", gone, "resolved"), at(30), delivered=True)
    assert due([gone], ledger, 31) == []


def test_no_resolved_notice_when_send_resolved_is_off() -> None:
    ledger = sent_everywhere(alert(), 0)
    assert due([alert("resolved", resolved=30)], ledger, 30, send_resolved=False) == []


def test_a_dropped_firing_notice_waits_for_the_repeat_interval_and_gets_no_resolved() -> None:
    a = alert()
    ledger = record({}, Due("slack", a, "firing"), at(0), delivered=False)
    assert ("slack", "f1", "firing") not in due([a], ledger, 60)
    assert due([alert("resolved", resolved=60)], ledger, 60) == []


def test_a_channel_in_backoff_is_skipped_and_the_others_are_not() -> None:
    health = {"slack": ChannelHealth(failures=1, retry_at=at(30), last_error="down")}
    a = alert()
    assert due([a], {}, 10, health=health) == [("mail", "f1", "firing")]
    assert len(due([a], {}, 30, health=health)) == 2


def test_backoff_doubles_from_the_interval_and_is_capped() -> None:
    base = timedelta(seconds=30)
    first = after_failure(None, "down", at(0), base=base)
    second = after_failure(first, "down", at(0), base=base)
    assert (first.failures, first.retry_at) == (1, at(30))
    assert (second.failures, second.retry_at) == (2, at(60))
    many = first
    for _ in range(20):
        many = after_failure(many, "down", at(0), base=base)
    assert many.retry_at == at(0) + MAX_CHANNEL_BACKOFF


def test_order_is_oldest_alert_first() -> None:
    old, new = alert(fired=0, fp="old"), alert(fired=50, fp="new")
    assert [fp for _, fp, _ in due([new, old], {}, 60)][::2] == ["old", "new"]


def test_forget_gone_drops_entries_of_vanished_alerts_and_channels() -> None:
    ledger = {("f1", "slack"): Sent(), ("f2", "slack"): Sent(), ("f1", "old"): Sent()}
    assert forget_gone(ledger, ["f1"], ["slack"]) == {("f1", "slack"): Sent()}


def test_rate_limit_is_a_sliding_hour() -> None:
    limit = SlidingWindowLimit(2)
    assert limit.try_acquire(at(0)) and limit.try_acquire(at(10))
    assert not limit.try_acquire(at(20))
    assert not limit.try_acquire(at(3599))
    assert limit.try_acquire(at(3600))
    assert not limit.try_acquire(at(3601))
    assert limit.try_acquire(at(3610))
