"""The life of an alert, with the semantics of Prometheus's alerting rules. Pure.

Every series (or resource) for which a rule's condition holds is one alert, identified by
the fingerprint of its labels:

- new: ``pending`` from the moment the condition is first seen to hold (or from when the
  source says it started, for built-in conditions);
- ``pending`` for at least ``for``: ``firing`` (at once when ``for`` is 0);
- a ``pending`` alert whose condition stops holding is dropped: it never fired, so nobody is
  told;
- a ``firing`` alert whose condition stops holding keeps firing for ``keep_firing_for``, then
  becomes ``resolved``; resolved alerts are kept for ``RESOLVED_RETENTION`` so that resolved
  notices can still be delivered, then dropped;
- a resolved alert whose condition holds again starts over as a new ``pending`` alert.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from .templates import expand_all

AlertState = Literal["pending", "firing", "resolved"]
RuleState = Literal["inactive", "pending", "firing"]
RESOLVED_RETENTION = timedelta(minutes=15)


@dataclass(frozen=True)
class Observation:
    """One series (or resource) for which a rule's condition holds right now."""

    labels: Mapping[str, str]
    value: float
    since: datetime | None = None
    """When the condition started to hold, if the source knows (e.g. a Ready condition's
    lastTransitionTime); otherwise the first evaluation that saw it."""


@dataclass(frozen=True)
class RuleDefinition:
    """What the state machine needs to know about a rule."""

    name: str
    for_seconds: float = 0.0
    keep_firing_for_seconds: float = 0.0
    severity: str = "warning"
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Alert:
    rule: str
    fingerprint: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    value: float
    state: AlertState
    active_since: datetime
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    keep_firing_since: datetime | None = None


@dataclass(frozen=True)
class Restored:
    """A rule's state from status, after an operator restart: alerts that are still active
    continue from there instead of starting over (no second notification)."""

    state: RuleState
    active_since: datetime | None


def alert_labels(rule: RuleDefinition, series: Mapping[str, str]) -> dict[str, str]:
    """Series labels (without the metric name), overridden by the rule's labels, severity and
    alertname, in the order Prometheus applies them."""
    labels = {key: value for key, value in series.items() if key != "__name__"}
    labels.update(rule.labels)
    labels["severity"] = rule.severity
    labels["alertname"] = rule.name
    return labels


def fingerprint(labels: Mapping[str, str]) -> str:
    text = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def advance(
    rule: RuleDefinition,
    alerts: Mapping[str, Alert],
    observations: Sequence[Observation],
    now: datetime,
    *,
    restored: Restored | None = None,
) -> dict[str, Alert]:
    """The rule's alerts after one evaluation at ``now`` that saw ``observations``."""
    result: dict[str, Alert] = {}
    for observation in observations:
        labels = alert_labels(rule, observation.labels)
        key = fingerprint(labels)
        if key in result:
            continue  # two series with one label set after relabelling: the first one wins
        annotations = expand_all(rule.annotations, labels, observation.value)
        previous = alerts.get(key)
        if previous is not None and previous.state != "resolved":
            alert = replace(
                previous,
                labels=labels,
                annotations=annotations,
                value=observation.value,
                keep_firing_since=None,
            )
        else:
            alert = _new_alert(rule, key, labels, annotations, observation, now, restored)
        if alert.state == "pending" and _held_for(alert, rule, now):
            alert = replace(alert, state="firing", fired_at=now)
        result[key] = alert
    for key, previous in alerts.items():
        if key in result:
            continue
        gone = _condition_gone(rule, previous, now)
        if gone is not None:
            result[key] = gone
    return result


def _new_alert(
    rule: RuleDefinition,
    key: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    observation: Observation,
    now: datetime,
    restored: Restored | None,
) -> Alert:
    since = observation.since if observation.since is not None else now
    if restored is not None and restored.state != "inactive" and restored.active_since:
        since = min(since, restored.active_since)
    since = min(since, now)
    alert = Alert(
        rule=rule.name,
        fingerprint=key,
        labels=labels,
        annotations=annotations,
        value=observation.value,
        state="pending",
        active_since=since,
    )
    if restored is not None and restored.state == "firing" and _held_for(alert, rule, now):
        # It fired before the restart; when exactly is not recorded, so take the earliest
        # moment it could have, which is never after a notification that was sent for it.
        fired_at = min(since + timedelta(seconds=rule.for_seconds), now)
        return replace(alert, state="firing", fired_at=fired_at)
    return alert


def _held_for(alert: Alert, rule: RuleDefinition, now: datetime) -> bool:
    return (now - alert.active_since).total_seconds() >= rule.for_seconds


def _condition_gone(rule: RuleDefinition, previous: Alert, now: datetime) -> Alert | None:
    """What becomes of an alert whose condition no longer holds (None: dropped)."""
    if previous.state == "pending":
        return None
    if previous.state == "resolved":
        assert previous.resolved_at is not None
        return previous if now - previous.resolved_at < RESOLVED_RETENTION else None
    keep_since = previous.keep_firing_since or now
    if (now - keep_since).total_seconds() < rule.keep_firing_for_seconds:
        return replace(previous, keep_firing_since=keep_since)
    return replace(previous, state="resolved", resolved_at=now, keep_firing_since=None)


def rule_state(alerts: Mapping[str, Alert]) -> RuleState:
    states = {alert.state for alert in alerts.values()}
    if "firing" in states:
        return "firing"
    if "pending" in states:
        return "pending"
    return "inactive"


def active_alerts(alerts: Mapping[str, Alert]) -> list[Alert]:
    return [alert for alert in alerts.values() if alert.state in ("pending", "firing")]
