"""The monitoring.coreos.com/v1 PrometheusRule of an AlertRule. Pure.

Only rules with ``expr`` go into it: built-in conditions exist only in the operator. The
Prometheus that Prometheus Operator runs picks the object up when its ``ruleSelector``
matches the labels in ``spec.prometheusRule.labels``; ours are added for ownership and
pruning, and a user label never replaces the three our watches and pruning rely on.
"""

from __future__ import annotations

from typing import Any

from devserver_operator.api.alertrule import AlertRuleSpec, Rule

from .common import OWNER_KIND_LABEL, OWNER_NAME_LABEL, Owner, child_labels, child_metadata

API_VERSION = "monitoring.coreos.com/v1"
KIND = "PrometheusRule"
COMPONENT = "alerting-rules"
_OWNERSHIP_LABELS = ("app.kubernetes.io/managed-by", OWNER_KIND_LABEL, OWNER_NAME_LABEL)


def prometheus_rule_name(owner: Owner) -> str:
    """The PrometheusRule shares the AlertRule's name (one per AlertRule)."""
    return owner.name


def rule_groups(owner: Owner, spec: AlertRuleSpec) -> list[dict[str, Any]]:
    """``spec.groups`` of the PrometheusRule (also what ``promtool check rules`` reads): one
    group named after the AlertRule. It carries no interval: Prometheus's own evaluation
    interval applies, as for every other rule it loads (``evaluation.interval`` is the
    operator's)."""
    rules = [_rule(rule) for rule in spec.rules if rule.expr is not None]
    if not rules:
        return []
    return [{"name": owner.name, "rules": rules}]


def _rule(rule: Rule) -> dict[str, Any]:
    rendered: dict[str, Any] = {"alert": rule.name, "expr": rule.expr}
    if rule.for_:
        rendered["for"] = rule.for_
    if rule.keep_firing_for:
        rendered["keep_firing_for"] = rule.keep_firing_for
    rendered["labels"] = {**(rule.labels or {}), "severity": rule.severity}
    if rule.annotations:
        rendered["annotations"] = dict(rule.annotations)
    return rendered


def build_prometheus_rule(owner: Owner, spec: AlertRuleSpec) -> dict[str, Any] | None:
    """The PrometheusRule, or None when none is wanted (not requested, or no expr rules)."""
    if not spec.prometheus_rule_requested:
        return None
    groups = rule_groups(owner, spec)
    if not groups:
        return None
    ours = child_labels(owner, "prometheus", COMPONENT)
    user = (spec.prometheus_rule.labels if spec.prometheus_rule else None) or {}
    labels = {**ours, **user, **{key: ours[key] for key in _OWNERSHIP_LABELS}}
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": child_metadata(owner, prometheus_rule_name(owner), labels),
        "spec": {"groups": groups},
    }
