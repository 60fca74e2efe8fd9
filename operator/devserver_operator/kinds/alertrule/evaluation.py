"""One evaluation of an AlertRule by the operator: observe every rule (PromQL through
Prometheus, built-in conditions from the watch caches), advance its alerts, send what is due
to the channels, and remember all of it for the status.

Each channel is served by its own task, so a channel that times out or refuses never delays
or blocks another. A channel that fails is skipped until its backoff passes; what it missed
stays due.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from devserver_operator import metrics
from devserver_operator.alerting.builtin import (
    DEFAULT_SUMMARIES,
    ResourceView,
    builtin_observations,
    kind_of,
)
from devserver_operator.alerting.delivery import (
    Due,
    Sent,
    after_failure,
    due_notifications,
    forget_gone,
    record,
)
from devserver_operator.alerting.notification import Notification
from devserver_operator.alerting.state import (
    Alert,
    Observation,
    RuleDefinition,
    active_alerts,
    advance,
    rule_state,
)
from devserver_operator.api.alertrule import AlertRuleSpec, Channel, Rule
from devserver_operator.integrations.notifiers import DeliveryError, deliver
from devserver_operator.integrations.prometheus import (
    PrometheusClient,
    PrometheusQueryError,
    PrometheusUnreachableError,
    PromQLError,
)
from devserver_operator.kube.client import KubeClient
from devserver_operator.observe.alertrule import EvaluationView, RuleView

from .channels import ChannelSetupError, SecretReader, build_notifier
from .memory import AlertingRuntime, AlertRuleMemory, RuleError, restore_from_status

QUERY_CONCURRENCY = 4
logger = logging.getLogger(__name__)

# (kind, namespace) -> what the watch caches hold about that kind in that namespace
ViewSource = Callable[[str, str], Iterable[ResourceView]]
# (type, reason, message) -> an Event on the AlertRule
EventPoster = Callable[[str, str, str], None]


def rule_definition(rule: Rule) -> RuleDefinition:
    annotations = dict(rule.annotations or {})
    if rule.builtin is not None and "summary" not in annotations:
        annotations["summary"] = DEFAULT_SUMMARIES[rule.builtin.condition]
    return RuleDefinition(
        name=rule.name,
        for_seconds=rule.for_seconds,
        keep_firing_for_seconds=rule.keep_firing_for_seconds,
        severity=rule.severity,
        labels=dict(rule.labels or {}),
        annotations=annotations,
    )


async def evaluate_once(
    *,
    spec: AlertRuleSpec,
    namespace: str,
    name: str,
    status: Mapping[str, Any],
    memory: AlertRuleMemory,
    runtime: AlertingRuntime,
    kube: KubeClient,
    views: ViewSource,
    now: datetime,
    post: EventPoster,
) -> None:
    rules = spec.rules_evaluated_by_operator()
    if not memory.restored:
        memory.restore_hints = restore_from_status(status, memory)
        memory.restored = True
    observations = await _observe_all(spec, rules, namespace, memory, runtime, views)
    channel_names = [channel.name for channel in spec.channels or []]
    for rule in rules:
        if rule.name not in observations:
            continue  # not evaluated this time: its alerts stay as they were
        before = memory.alerts.get(rule.name, {})
        hint = memory.restore_hints.pop(rule.name, None)
        after = advance(rule_definition(rule), before, observations[rule.name], now, restored=hint)
        memory.alerts[rule.name] = after
        if hint is not None:
            _seed_ledger(memory, rule.name, after, channel_names)
        _post_transitions(rule.name, before, after, post)
    _forget_removed(memory, {rule.name for rule in rules}, channel_names)
    alerts = [alert for by_rule in memory.alerts.values() for alert in by_rule.values()]
    interval = timedelta(seconds=spec.evaluation_settings.interval_seconds)
    due = due_notifications(
        alerts,
        memory.ledger,
        channel_names,
        repeat_interval=timedelta(seconds=spec.repeat_interval_seconds),
        send_resolved=spec.send_resolved,
        now=now,
        health=memory.health,
    )
    if due:
        await _deliver(
            due, spec.channels or [], namespace, name, memory, runtime, kube, now, interval
        )
    memory.ledger = forget_gone(memory.ledger, (a.fingerprint for a in alerts), channel_names)
    memory.evaluated = True


async def _observe_all(
    spec: AlertRuleSpec,
    rules: list[Rule],
    namespace: str,
    memory: AlertRuleMemory,
    runtime: AlertingRuntime,
    views: ViewSource,
) -> dict[str, list[Observation]]:
    found: dict[str, list[Observation]] = {}
    queries: list[Rule] = []
    for rule in rules:
        if rule.builtin is not None:
            condition = rule.builtin.condition
            found[rule.name] = builtin_observations(
                condition, views(kind_of(condition), namespace), names=rule.builtin.names
            )
            metrics.ALERT_EVALUATIONS.labels("ok").inc()
        elif memory.known_bad_exprs.get(rule.name) != rule.expr:
            queries.append(rule)
    settings = spec.evaluation_settings
    if queries and settings.prometheus_url:
        client = PrometheusClient(
            settings.prometheus_url, http=runtime.http, timeout=settings.timeout_seconds
        )
        slots = asyncio.Semaphore(QUERY_CONCURRENCY)

        async def query(rule: Rule) -> None:
            async with slots:
                result = await _query(client, rule, memory)
            if result is not None:
                found[rule.name] = result

        await asyncio.gather(*(query(rule) for rule in queries))
    return found


async def _query(
    client: PrometheusClient, rule: Rule, memory: AlertRuleMemory
) -> list[Observation] | None:
    assert rule.expr is not None
    started = time.monotonic()
    try:
        result = await client.query(rule.expr)
    except PromQLError as error:
        memory.known_bad_exprs[rule.name] = rule.expr
        memory.rule_errors[rule.name] = RuleError(
            "InvalidPromQL", f"spec.rules[{rule.name}].expr: {error.prometheus_error}"
        )
        metrics.ALERT_EVALUATIONS.labels("InvalidPromQL").inc()
        return None
    except PrometheusQueryError as error:
        memory.rule_errors[rule.name] = RuleError("QueryFailed", f"rule {rule.name}: {error}")
        metrics.ALERT_EVALUATIONS.labels("QueryFailed").inc()
        return None
    except PrometheusUnreachableError as error:
        memory.rule_errors[rule.name] = RuleError("PrometheusUnreachable", str(error))
        metrics.ALERT_EVALUATIONS.labels("PrometheusUnreachable").inc()
        return None
    finally:
        metrics.ALERT_QUERY_DURATION.observe(time.monotonic() - started)
    memory.rule_errors.pop(rule.name, None)
    memory.known_bad_exprs.pop(rule.name, None)
    metrics.ALERT_EVALUATIONS.labels("ok").inc()
    return [Observation(sample.labels, sample.value) for sample in result.samples]


def _seed_ledger(
    memory: AlertRuleMemory, rule: str, alerts: Mapping[str, Alert], channels: list[str]
) -> None:
    """After a restart, alerts that were notified before count as notified then."""
    last = memory.last_notification.get(rule)
    if last is None:
        return
    for alert in alerts.values():
        if alert.state == "firing" and alert.fired_at is not None and alert.fired_at <= last:
            for channel in channels:
                memory.ledger.setdefault(
                    (alert.fingerprint, channel), Sent(firing_at=last, delivered=True)
                )


def _post_transitions(
    rule: str, before: Mapping[str, Alert], after: Mapping[str, Alert], post: EventPoster
) -> None:
    """One Event per rule and evaluation for alerts that started firing or resolved."""
    fired = [
        a
        for key, a in after.items()
        if a.state == "firing" and before.get(key, a).state != "firing"
    ]
    fired += [a for key, a in after.items() if a.state == "firing" and key not in before]
    resolved = [
        a
        for key, a in after.items()
        if a.state == "resolved" and key in before and before[key].state == "firing"
    ]
    if fired:
        post("Warning", "AlertFiring", f"{rule} fires for {_describe(fired)}")
    if resolved:
        post("Normal", "AlertResolved", f"{rule} resolved for {_describe(resolved)}")


def _describe(alerts: list[Alert]) -> str:
    unique = {a.fingerprint: a for a in alerts}
    shown = [
        "{" + ", ".join(f"{k}={v}" for k, v in sorted(a.labels.items()) if k != "alertname") + "}"
        for a in list(unique.values())[:3]
    ]
    more = f" and {len(unique) - 3} more" if len(unique) > 3 else ""
    return ", ".join(shown) + more


def _forget_removed(memory: AlertRuleMemory, rules: set[str], channels: list[str]) -> None:
    """Rules and channels that left the spec take their state with them (no notices)."""
    for table in (
        memory.alerts,
        memory.rule_errors,
        memory.known_bad_exprs,
        memory.notifications_sent,
        memory.last_notification,
    ):
        for key in [k for k in table if k not in rules]:
            del table[key]
    names = set(channels)
    for per_channel in (memory.health, memory.limits):
        for key in [k for k in per_channel if k not in names]:
            del per_channel[key]
    memory.delivery_errors = {
        key: error
        for key, error in memory.delivery_errors.items()
        if key[0] in rules and key[1] in names
    }


async def _deliver(
    due: list[Due],
    channels: Iterable[Channel],
    namespace: str,
    name: str,
    memory: AlertRuleMemory,
    runtime: AlertingRuntime,
    kube: KubeClient,
    now: datetime,
    backoff_base: timedelta,
) -> None:
    by_name = {channel.name: channel for channel in channels}
    queues: dict[str, list[Due]] = {}
    for item in due:
        queues.setdefault(item.channel, []).append(item)
    secrets = SecretReader(kube, namespace)

    async def serve(channel: Channel, items: list[Due]) -> None:
        kind = _channel_kind(channel)
        try:
            notifier = await build_notifier(
                channel, secrets, http=runtime.http, ssl_context=runtime.ssl_context
            )
        except ChannelSetupError as error:
            _failed(memory, channel.name, items, error.message, now, backoff_base)
            return
        limit = memory.limit_for(channel.name, channel.max_per_hour)
        for item in items:
            rule = item.alert.rule
            if not limit.try_acquire(now):
                memory.ledger = record(memory.ledger, item, now, delivered=False)
                memory.delivery_errors[(rule, channel.name)] = (
                    f"channel {channel.name}: rate limit of {channel.max_per_hour} "
                    "notifications per hour reached; notifications were dropped"
                )
                metrics.ALERT_NOTIFICATIONS.labels(kind, item.kind, "rate_limited").inc()
                continue
            notification = Notification.of(
                item.alert, item.kind, namespace=namespace, alert_rule=name, channel=channel.name
            )
            try:
                await deliver(notifier, notification)
            except DeliveryError as error:
                metrics.ALERT_NOTIFICATIONS.labels(kind, item.kind, "failed").inc()
                pending = items[items.index(item) :]
                _failed(memory, channel.name, pending, error.message, now, backoff_base)
                return  # the rest waits for the channel's backoff
            metrics.ALERT_NOTIFICATIONS.labels(kind, item.kind, "sent").inc()
            memory.ledger = record(memory.ledger, item, now, delivered=True)
            memory.health.pop(channel.name, None)
            memory.delivery_errors.pop((rule, channel.name), None)
            memory.notifications_sent[rule] = memory.notifications_sent.get(rule, 0) + 1
            memory.last_notification[rule] = now

    await asyncio.gather(
        *(serve(by_name[channel], items) for channel, items in queues.items() if channel in by_name)
    )


def _failed(
    memory: AlertRuleMemory,
    channel: str,
    items: list[Due],
    message: str,
    now: datetime,
    base: timedelta,
) -> None:
    memory.health[channel] = after_failure(memory.health.get(channel), message, now, base=base)
    for item in items:
        memory.delivery_errors[(item.alert.rule, channel)] = f"channel {channel}: {message}"
    logger.warning("alert channel %s failed: %s", channel, message)


def _channel_kind(channel: Channel) -> str:
    for kind in ("slack", "teams", "webhook", "email"):
        if getattr(channel, kind) is not None:
            return kind
    return "unknown"


def evaluation_view(spec: AlertRuleSpec, memory: AlertRuleMemory) -> EvaluationView:
    """What the status shows of the operator's evaluation."""
    rules = []
    for rule in spec.rules_evaluated_by_operator():
        alerts = memory.alerts.get(rule.name, {})
        active = active_alerts(alerts)
        error = memory.rule_errors.get(rule.name)
        delivery = sorted(
            (channel, message)
            for (name, channel), message in memory.delivery_errors.items()
            if name == rule.name
        )
        rules.append(
            RuleView(
                name=rule.name,
                state=rule_state(alerts),
                active_since=min((a.active_since for a in active), default=None),
                active_alerts=len(active),
                notifications_sent=memory.notifications_sent.get(rule.name, 0),
                last_notification=memory.last_notification.get(rule.name),
                error=error.message if error else (delivery[0][1] if delivery else None),
            )
        )
    names = {channel.name for channel in spec.channels or []}
    return EvaluationView(
        evaluated=memory.evaluated,
        interval=spec.evaluation_settings.interval,
        rules=rules,
        errors={rule: (e.reason, e.message) for rule, e in memory.rule_errors.items()},
        channels=len(names),
        failing_channels={
            channel: health.last_error or "failed"
            for channel, health in memory.health.items()
            if channel in names and health.failures
        },
    )
