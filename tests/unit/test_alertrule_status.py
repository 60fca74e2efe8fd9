"""AlertRule status from what the operator knows: kstatus-conformant conditions with the
right reason, and per-rule entries whose lastEvaluationTime moves only with a change."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devserver_operator.api.conditions import check_kstatus
from devserver_operator.observe.alertrule import (
    EvaluationView,
    RuleView,
    SetupView,
    alertrule_conditions,
    rule_entries,
)

NOW = datetime(2027, 1, 1, 12, tzinfo=UTC)
APPLIED = ("True", "Applied", "PrometheusRule team-a/x holds 1 rules.")
RULES = [RuleView(name="Down", state="inactive")]


def by_type(conditions: list) -> dict[str, tuple[str, str]]:
    check_kstatus(conditions)
    return {c.type: (c.status, c.reason) for c in conditions}


def evaluation(**overrides: object) -> EvaluationView:
    defaults: dict[str, object] = {"evaluated": True, "interval": "30s", "rules": RULES}
    return EvaluationView(**{**defaults, **overrides})  # type: ignore[arg-type]


def test_all_well_is_ready_with_every_detail_condition() -> None:
    conditions = alertrule_conditions(SetupView(prometheus_rule=APPLIED), evaluation(channels=2))
    assert by_type(conditions) == {
        "Ready": ("True", "Ready"),
        "PrometheusRuleApplied": ("True", "Applied"),
        "Evaluating": ("True", "Evaluated"),
        "Delivering": ("True", "ChannelsHealthy"),
    }
    assert "every 30s" in conditions[0].message


def test_before_the_first_evaluation_it_is_reconciling() -> None:
    conditions = alertrule_conditions(SetupView(), evaluation(evaluated=False))
    assert by_type(conditions) == {
        "Ready": ("Unknown", "FirstEvaluation"),
        "Reconciling": ("True", "FirstEvaluation"),
        "Evaluating": ("Unknown", "Pending"),
    }


def test_missing_prometheus_operator_is_not_ready_but_evaluation_goes_on() -> None:
    missing = ("False", "PrometheusOperatorNotInstalled", "install it")
    conditions = alertrule_conditions(SetupView(prometheus_rule=missing), evaluation())
    assert by_type(conditions) == {
        "Ready": ("False", "PrometheusOperatorNotInstalled"),
        "PrometheusRuleApplied": ("False", "PrometheusOperatorNotInstalled"),
        "Evaluating": ("True", "Evaluated"),
    }


def test_invalid_promql_is_stalled_with_prometheus_words() -> None:
    errors = {"Up": ("InvalidPromQL", "spec.rules[Up].expr: 1:5: parse error: unexpected end")}
    conditions = alertrule_conditions(SetupView(), evaluation(errors=errors))
    assert by_type(conditions)["Stalled"] == ("True", "InvalidPromQL")
    assert "parse error" in conditions[0].message


def test_unreachable_prometheus_is_not_ready_and_not_stalled() -> None:
    errors = {
        "A": ("PrometheusUnreachable", "Prometheus at http://p is unreachable"),
        "B": ("PrometheusUnreachable", "Prometheus at http://p is unreachable"),
    }
    conditions = alertrule_conditions(SetupView(), evaluation(errors=errors))
    assert by_type(conditions) == {
        "Ready": ("False", "PrometheusUnreachable"),
        "Evaluating": ("False", "PrometheusUnreachable"),
    }
    assert "1 more rules fail the same way" in conditions[0].message


def test_invalid_promql_outranks_an_unreachable_prometheus() -> None:
    errors = {"A": ("PrometheusUnreachable", "down"), "B": ("InvalidPromQL", "parse error")}
    assert by_type(alertrule_conditions(SetupView(), evaluation(errors=errors)))["Ready"] == (
        "False",
        "InvalidPromQL",
    )


def test_a_failing_channel_is_not_ready_and_named() -> None:
    failing = {"n8n": "HTTP 503 Service Unavailable"}
    conditions = alertrule_conditions(SetupView(), evaluation(channels=2, failing_channels=failing))
    assert by_type(conditions)["Ready"] == ("False", "DeliveryFailed")
    assert by_type(conditions)["Delivering"] == ("False", "DeliveryFailed")
    assert "channel n8n: HTTP 503" in conditions[0].message


def test_a_missing_secret_key_is_stalled_and_outranks_transient_problems() -> None:
    problem = ("SecretKeyNotFound", "spec.channels[slack]...: Secret team-a/hooks has no key url")
    conditions = alertrule_conditions(
        SetupView(stalled=problem), evaluation(failing_channels={"x": "down"}, channels=1)
    )
    assert by_type(conditions)["Stalled"] == ("True", "SecretKeyNotFound")
    assert conditions[0].message == problem[1]


def test_firing_rules_do_not_make_the_alertrule_unready() -> None:
    firing = [RuleView(name="Down", state="firing", active_alerts=2)]
    assert (
        by_type(alertrule_conditions(SetupView(), evaluation(rules=firing)))["Ready"][0] == "True"
    )


def test_rule_entries_show_state_counts_and_times() -> None:
    rule = RuleView(
        name="Down",
        state="firing",
        active_since=datetime(2027, 1, 1, 11, tzinfo=UTC),
        active_alerts=1,
        notifications_sent=3,
        last_notification=datetime(2027, 1, 1, 11, 30, tzinfo=UTC),
        error="channel n8n: HTTP 503",
    )
    assert rule_entries([rule], None, NOW) == [
        {
            "name": "Down",
            "state": "firing",
            "activeAlerts": 1,
            "notificationsSent": 3,
            "activeSince": "2027-01-01T11:00:00Z",
            "lastNotificationTime": "2027-01-01T11:30:00Z",
            "lastError": "channel n8n: HTTP 503",
            "lastEvaluationTime": "2027-01-01T12:00:00Z",
        }
    ]


@pytest.mark.parametrize(("changed", "moves"), [(False, False), (True, True)])
def test_last_evaluation_time_moves_only_with_a_change(changed: bool, moves: bool) -> None:
    first = rule_entries(RULES, None, NOW)
    later = datetime(2027, 1, 1, 12, 5, tzinfo=UTC)
    rules = [RuleView(name="Down", state="pending" if changed else "inactive")]
    second = rule_entries(rules, first, later)
    expected = "2027-01-01T12:05:00Z" if moves else "2027-01-01T12:00:00Z"
    assert second[0]["lastEvaluationTime"] == expected
