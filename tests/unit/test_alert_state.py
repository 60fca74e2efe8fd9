"""The alert state machine: Prometheus's alerting rule semantics, with the clock as a
parameter (inactive -> pending -> firing -> resolved, `for`, `keep_firing_for`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from devserver_operator.alerting.state import (
    RESOLVED_RETENTION,
    Alert,
    Observation,
    Restored,
    RuleDefinition,
    advance,
    alert_labels,
    fingerprint,
    rule_state,
)

T0 = datetime(2027, 1, 1, tzinfo=UTC)
SERIES = {"__name__": "devserver_test_gauge", "instance": "a"}
RULE = RuleDefinition(
    name="GaugeHigh",
    for_seconds=60,
    severity="critical",
    labels={"team": "platform"},
    annotations={"summary": "{{ $labels.instance }} is at {{ $value }}"},
)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def seen(value: float = 7.0, **labels: str) -> list[Observation]:
    return [Observation({**SERIES, **labels}, value)]


def only(alerts: dict[str, Alert]) -> Alert:
    assert len(alerts) == 1, alerts
    return next(iter(alerts.values()))


def test_labels_drop_the_metric_name_and_rule_labels_win() -> None:
    labels = alert_labels(RULE, {**SERIES, "team": "other", "severity": "low"})
    assert labels == {
        "instance": "a",
        "team": "platform",
        "severity": "critical",
        "alertname": "GaugeHigh",
    }


def test_a_new_series_is_pending_with_expanded_annotations() -> None:
    alert = only(advance(RULE, {}, seen(7.5), at(0)))
    assert alert.state == "pending"
    assert alert.active_since == at(0)
    assert alert.annotations == {"summary": "a is at 7.5"}
    assert alert.fingerprint == fingerprint(alert_labels(RULE, SERIES))


def test_pending_fires_once_for_has_passed_and_not_before() -> None:
    alerts = advance(RULE, {}, seen(), at(0))
    alerts = advance(RULE, alerts, seen(), at(59))
    assert only(alerts).state == "pending"
    alerts = advance(RULE, alerts, seen(), at(60))
    alert = only(alerts)
    assert alert.state == "firing"
    assert alert.fired_at == at(60)
    assert alert.active_since == at(0)
    assert rule_state(alerts) == "firing"


def test_without_for_an_alert_fires_at_once() -> None:
    rule = RuleDefinition(name="Now")
    assert only(advance(rule, {}, seen(), at(0))).state == "firing"


def test_pending_that_stops_holding_is_dropped_without_firing() -> None:
    alerts = advance(RULE, {}, seen(), at(0))
    assert advance(RULE, alerts, [], at(30)) == {}


def test_firing_that_stops_holding_resolves_and_is_kept_for_notices() -> None:
    rule = RuleDefinition(name="Now")
    alerts = advance(rule, {}, seen(), at(0))
    alerts = advance(rule, alerts, [], at(10))
    alert = only(alerts)
    assert alert.state == "resolved" and alert.resolved_at == at(10)
    assert rule_state(alerts) == "inactive"
    kept = advance(rule, alerts, [], at(10) + RESOLVED_RETENTION - timedelta(seconds=1))
    assert only(kept).state == "resolved"
    assert advance(rule, alerts, [], at(10) + RESOLVED_RETENTION) == {}


def test_keep_firing_for_holds_the_alert_then_resolves() -> None:
    rule = RuleDefinition(name="Sticky", keep_firing_for_seconds=30)
    alerts = advance(rule, {}, seen(), at(0))
    alerts = advance(rule, alerts, [], at(10))
    assert only(alerts).state == "firing" and only(alerts).keep_firing_since == at(10)
    alerts = advance(rule, alerts, [], at(39))
    assert only(alerts).state == "firing"
    alerts = advance(rule, alerts, [], at(40))
    assert only(alerts).state == "resolved"


def test_keep_firing_for_restarts_when_the_condition_returns() -> None:
    rule = RuleDefinition(name="Sticky", keep_firing_for_seconds=30)
    alerts = advance(rule, {}, seen(), at(0))
    alerts = advance(rule, alerts, [], at(10))
    alerts = advance(rule, alerts, seen(), at(20))
    assert only(alerts).keep_firing_since is None
    alerts = advance(rule, alerts, [], at(45))
    alerts = advance(rule, alerts, [], at(70))
    assert only(alerts).state == "firing"  # 25 s since it stopped holding again


def test_a_resolved_alert_that_holds_again_starts_over_as_pending() -> None:
    alerts = advance(RULE, {}, seen(), at(0))
    alerts = advance(RULE, alerts, seen(), at(60))
    alerts = advance(RULE, alerts, [], at(70))
    alerts = advance(RULE, alerts, seen(), at(80))
    alert = only(alerts)
    assert alert.state == "pending" and alert.active_since == at(80) and alert.fired_at is None


def test_each_series_is_its_own_alert() -> None:
    alerts = advance(RULE, {}, [*seen(instance="a"), *seen(instance="b")], at(0))
    assert len(alerts) == 2
    alerts = advance(RULE, alerts, seen(instance="b"), at(30))
    assert [a.labels["instance"] for a in alerts.values()] == ["b"]


def test_duplicate_label_sets_after_relabelling_count_once() -> None:
    twins = [
        Observation({"__name__": "x", "i": "1"}, 1),
        Observation({"__name__": "y", "i": "1"}, 2),
    ]
    alert = only(advance(RULE, {}, twins, at(0)))
    assert alert.value == 1


def test_a_source_that_knows_when_the_condition_started_counts_from_then() -> None:
    observation = Observation({"name": "fs"}, 1, since=at(-300))
    assert only(advance(RULE, {}, [observation], at(0))).state == "firing"
    from_the_future = Observation({"name": "fs"}, 1, since=at(300))
    assert only(advance(RULE, {}, [from_the_future], at(0))).active_since == at(0)


def test_values_and_annotations_follow_the_latest_sample() -> None:
    alerts = advance(RULE, {}, seen(7), at(0))
    alerts = advance(RULE, alerts, seen(9), at(5))
    assert only(alerts).value == 9 and only(alerts).annotations["summary"] == "a is at 9"


def test_after_a_restart_a_firing_rule_continues_firing_from_status() -> None:
    restored = Restored(state="firing", active_since=at(-600))
    alert = only(advance(RULE, {}, seen(), at(0), restored=restored))
    assert alert.state == "firing"
    assert alert.active_since == at(-600)
    assert alert.fired_at == at(-540)


def test_after_a_restart_a_pending_rule_keeps_its_clock() -> None:
    restored = Restored(state="pending", active_since=at(-50))
    alerts = advance(RULE, {}, seen(), at(0), restored=restored)
    assert only(alerts).state == "pending"
    assert only(advance(RULE, alerts, seen(), at(10))).state == "firing"
