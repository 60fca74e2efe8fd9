"""What the operator remembers about AlertRules between evaluations, in this process.

Alerts, what was sent, channel health and rate limits live here and not in status: they
change with every notification and would otherwise cost API writes. After a restart, the
rule states in status are enough to carry on without notifying twice (see
``restore_from_status``).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from devserver_operator.alerting.delivery import ChannelHealth, LedgerKey, Sent
from devserver_operator.alerting.ratelimit import SlidingWindowLimit
from devserver_operator.alerting.state import Alert, Restored
from devserver_operator.api.conditions import ConditionStatus
from devserver_operator.kube.client import KubeClient

PROMETHEUS_RULE_GROUP_VERSION = "monitoring.coreos.com/v1"
PROMETHEUS_RULE_PLURAL = "prometheusrules"


@dataclass(frozen=True)
class RuleError:
    reason: str  # InvalidPromQL, PrometheusUnreachable or QueryFailed
    message: str


@dataclass(frozen=True)
class SetupOutcome:
    """What the last reconcile (create, update, resume, resync) found."""

    generation: int | None
    stalled: tuple[str, str] | None = None
    """(reason, message) of a problem only a change of spec or Secret fixes."""
    prometheus_rule: tuple[ConditionStatus, str, str] | None = None
    """PrometheusRuleApplied as (status, reason, message); None when none is requested."""
    prometheus_rule_name: str | None = None
    interval: str = "30s"
    rules_evaluated: int = 0
    channels: int = 0


@dataclass
class AlertRuleMemory:
    alerts: dict[str, dict[str, Alert]] = field(default_factory=dict)
    """rule name -> fingerprint -> alert."""
    ledger: dict[LedgerKey, Sent] = field(default_factory=dict)
    health: dict[str, ChannelHealth] = field(default_factory=dict)
    limits: dict[str, SlidingWindowLimit] = field(default_factory=dict)
    notifications_sent: dict[str, int] = field(default_factory=dict)
    last_notification: dict[str, datetime] = field(default_factory=dict)
    rule_errors: dict[str, RuleError] = field(default_factory=dict)
    delivery_errors: dict[tuple[str, str], str] = field(default_factory=dict)
    """(rule, channel) -> the last delivery error for that rule on that channel."""
    known_bad_exprs: dict[str, str] = field(default_factory=dict)
    """rule -> an expr Prometheus refused: not sent again until it changes (no hot loop)."""
    setup: SetupOutcome | None = None
    evaluated: bool = False
    restored: bool = False
    restore_hints: dict[str, Restored] = field(default_factory=dict)
    """Rule states read from status at the first evaluation, until each rule is evaluated."""
    next_evaluation: float = 0.0
    """When the next evaluation is due (monotonic clock)."""

    def limit_for(self, channel: str, per_hour: int) -> SlidingWindowLimit:
        limit = self.limits.get(channel)
        if limit is None or limit.limit != per_hour:
            limit = self.limits[channel] = SlidingWindowLimit(per_hour)
        return limit


@dataclass
class AlertingRuntime:
    """Per operator process: one HTTP client for Prometheus and webhooks, one TLS context
    for SMTP, the memory of every AlertRule, and whether PrometheusRules are served."""

    http: httpx.AsyncClient = field(
        default_factory=lambda: httpx.AsyncClient(
            headers={"User-Agent": "devserver-operator"},
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        )
    )
    ssl_context: ssl.SSLContext = field(default_factory=ssl.create_default_context)
    memories: dict[str, AlertRuleMemory] = field(default_factory=dict)
    _api_served: bool | None = None
    _api_checked_at: float = 0.0

    def memory(self, uid: str) -> AlertRuleMemory:
        return self.memories.setdefault(uid, AlertRuleMemory())

    def forget(self, uid: str) -> None:
        self.memories.pop(uid, None)

    async def prometheus_rules_served(self, kube: KubeClient, *, max_age: float) -> bool:
        """Whether the cluster serves PrometheusRules; asked at most every ``max_age``
        seconds for all AlertRules together (a CRD installed later is noticed then)."""
        now = time.monotonic()
        if self._api_served is None or now - self._api_checked_at >= max_age:
            self._api_served = await kube.has_api(
                PROMETHEUS_RULE_GROUP_VERSION, PROMETHEUS_RULE_PLURAL
            )
            self._api_checked_at = now
        return self._api_served

    def forget_api_check(self) -> None:
        self._api_served = None

    async def close(self) -> None:
        await self.http.aclose()


def restore_from_status(status: Mapping[str, Any], memory: AlertRuleMemory) -> dict[str, Restored]:
    """Rule states from status, for the first evaluation after the operator (re)started."""
    restored: dict[str, Restored] = {}
    for item in status.get("rules") or []:
        if not isinstance(item, Mapping) or not item.get("name"):
            continue
        name = str(item["name"])
        sent = item.get("notificationsSent")
        if isinstance(sent, int):
            memory.notifications_sent.setdefault(name, sent)
        last = _timestamp(item.get("lastNotificationTime"))
        if last is not None:
            memory.last_notification.setdefault(name, last)
        state = item.get("state")
        if state in ("pending", "firing"):
            restored[name] = Restored(state=state, active_since=_timestamp(item.get("activeSince")))
    return restored


def _timestamp(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
