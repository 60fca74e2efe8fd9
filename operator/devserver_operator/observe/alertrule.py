"""AlertRule status from what the operator knows. Pure: views in, conditions and fields out.

Conditions: ``PrometheusRuleApplied`` (when a PrometheusRule is requested), ``Evaluating``
(when the operator evaluates rules) and ``Delivering`` (when it has channels) give the detail;
``Ready`` sums them up. A problem only a change of spec or Secret fixes (a bad spec, PromQL
that Prometheus refuses, a missing Secret key) is ``Stalled``; one that goes away by itself
(Prometheus unreachable, a channel down, Prometheus Operator not installed yet) is
``Ready=False`` and retried. Firing alerts do not make an AlertRule un-Ready: they are its job.

Per-rule ``lastEvaluationTime`` moves only when something else in that rule's entry changes,
so an idle AlertRule writes nothing, however short its interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devserver_operator.alerting.notification import rfc3339
from devserver_operator.alerting.state import RuleState
from devserver_operator.api.conditions import (
    DesiredCondition,
    not_ready,
    reconciling,
    stalled,
)

PROMETHEUS_RULE_APPLIED = "PrometheusRuleApplied"
EVALUATING = "Evaluating"
DELIVERING = "Delivering"
STALLED_EVALUATION_REASONS = frozenset({"InvalidPromQL"})
# The first problem in this order is the one Ready reports.
_EVALUATION_PRIORITY = ("InvalidPromQL", "PrometheusUnreachable", "QueryFailed")


@dataclass(frozen=True)
class RuleView:
    name: str
    state: RuleState
    active_since: datetime | None = None
    active_alerts: int = 0
    notifications_sent: int = 0
    last_notification: datetime | None = None
    error: str | None = None


@dataclass(frozen=True)
class EvaluationView:
    """The operator's evaluation, when it evaluates anything."""

    evaluated: bool
    """At least one evaluation finished since this process started."""
    interval: str
    rules: Sequence[RuleView] = ()
    errors: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    """rule -> (reason, message) of its evaluation error."""
    channels: int = 0
    failing_channels: Mapping[str, str] = field(default_factory=dict)
    """channel -> its last delivery error, while it keeps failing."""


@dataclass(frozen=True)
class SetupView:
    stalled: tuple[str, str] | None = None
    prometheus_rule: tuple[str, str, str] | None = None
    prometheus_rule_name: str | None = None


def alertrule_conditions(
    setup: SetupView, evaluation: EvaluationView | None
) -> list[DesiredCondition]:
    detail: list[DesiredCondition] = []
    stalls: list[tuple[str, str]] = []
    problems: list[tuple[str, str]] = []
    if setup.stalled is not None:
        stalls.append(setup.stalled)
    applied_message = ""
    if setup.prometheus_rule is not None:
        status, reason, message = setup.prometheus_rule
        detail.append(_condition(PROMETHEUS_RULE_APPLIED, status, reason, message))
        if status == "True":
            applied_message = message
        elif reason == "PrometheusOperatorNotInstalled":
            problems.append((reason, message))
    if evaluation is not None:
        evaluating = _evaluating(evaluation)
        detail.append(evaluating)
        if evaluating.status == "False":
            target = stalls if evaluating.reason in STALLED_EVALUATION_REASONS else problems
            target.append((evaluating.reason, evaluating.message))
        if evaluation.channels:
            delivering = _delivering(evaluation)
            detail.append(delivering)
            if delivering.status == "False":
                problems.append((delivering.reason, delivering.message))
    if stalls:
        return [*stalled(*stalls[0]), *detail]
    if problems:
        return [*not_ready(*problems[0]), *detail]
    if evaluation is not None and not evaluation.evaluated:
        message = "Waiting for the first evaluation."
        return [*reconciling("FirstEvaluation", message), *detail]
    parts = [applied_message] if applied_message else []
    if evaluation is not None:
        parts.append(
            f"The operator evaluates {len(evaluation.rules)} rules every {evaluation.interval}."
        )
    message = " ".join(parts) or "Nothing to evaluate."
    return [_condition("Ready", "True", "Ready", message), *detail]


def _evaluating(evaluation: EvaluationView) -> DesiredCondition:
    for reason in _EVALUATION_PRIORITY:
        failing = [
            (rule, message) for rule, (why, message) in evaluation.errors.items() if why == reason
        ]
        if failing:
            _, message = sorted(failing)[0]
            more = f" ({len(failing) - 1} more rules fail the same way)" if len(failing) > 1 else ""
            return _condition(EVALUATING, "False", reason, message + more)
    if not evaluation.evaluated:
        return _condition(EVALUATING, "Unknown", "Pending", "Not evaluated yet.")
    return _condition(
        EVALUATING,
        "True",
        "Evaluated",
        f"{len(evaluation.rules)} rules evaluated every {evaluation.interval}.",
    )


def _delivering(evaluation: EvaluationView) -> DesiredCondition:
    if evaluation.failing_channels:
        message = "; ".join(
            f"channel {name}: {error}"
            for name, error in sorted(evaluation.failing_channels.items())
        )
        return _condition(
            DELIVERING, "False", "DeliveryFailed", message + " (retried with backoff)"
        )
    return _condition(
        DELIVERING,
        "True",
        "ChannelsHealthy",
        f"{evaluation.channels} channels; no delivery is failing.",
    )


def _condition(type_: str, status: str, reason: str, message: str) -> DesiredCondition:
    return DesiredCondition.model_validate(
        {"type": type_, "status": status, "reason": reason, "message": message}
    )


def rule_entries(
    rules: Sequence[RuleView], previous: Sequence[Mapping[str, Any]] | None, now: datetime
) -> list[dict[str, Any]]:
    """``status.rules``: each entry keeps its lastEvaluationTime unless it changed."""
    before = {str(item.get("name")): item for item in previous or [] if isinstance(item, Mapping)}
    entries = []
    for rule in rules:
        entry: dict[str, Any] = {
            "name": rule.name,
            "state": rule.state,
            "activeAlerts": rule.active_alerts,
            "notificationsSent": rule.notifications_sent,
        }
        if rule.active_since is not None:
            entry["activeSince"] = rfc3339(rule.active_since)
        if rule.last_notification is not None:
            entry["lastNotificationTime"] = rfc3339(rule.last_notification)
        if rule.error:
            entry["lastError"] = rule.error
        old = before.get(rule.name)
        old_rest = {k: v for k, v in (old or {}).items() if k != "lastEvaluationTime"}
        if old is not None and old_rest == entry and old.get("lastEvaluationTime"):
            entry["lastEvaluationTime"] = old["lastEvaluationTime"]
        else:
            entry["lastEvaluationTime"] = rfc3339(now)
        entries.append(entry)
    return entries
