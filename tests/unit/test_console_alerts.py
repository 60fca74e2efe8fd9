"""The alert rules view: spec and status joined per rule, firing first, counts right."""

from __future__ import annotations

from typing import Any

from devserver_operator.console.alerts import alert_rule_view


def alert_rule(rules: list[dict[str, Any]], observed: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "team", "name": "servers"},
        "spec": {"rules": rules},
        "status": {
            "rules": observed,
            "conditions": [{"type": "Ready", "status": "True"}],
            "prometheusRuleName": "servers",
        },
    }


def test_rules_are_joined_with_their_state_firing_first() -> None:
    view = alert_rule_view(
        alert_rule(
            [
                {"name": "A", "expr": "up == 0", "annotations": {"summary": "down"}},
                {"name": "B", "builtin": {"condition": "MCPServerNotReady"}, "severity": "info"},
                {"name": "C", "expr": "x > 1", "severity": "critical"},
                {"name": "D", "expr": "y > 1"},
            ],
            [
                {"name": "A", "state": "pending", "activeSince": "2026-01-01T00:00:00Z"},
                {"name": "C", "state": "firing", "activeAlerts": 3, "lastError": None},
                {"name": "D", "state": "inactive"},
                {"name": "gone", "state": "firing"},  # no longer in the spec: not shown
            ],
        )
    )
    assert [rule["name"] for rule in view["rules"]] == ["C", "A", "B", "D"]
    assert (view["firing"], view["pending"], view["health"]) == (1, 1, "Ready")
    first, pending, quiet = view["rules"][0], view["rules"][1], view["rules"][2]
    assert (first["severity"], first["source"], first["activeAlerts"]) == ("critical", "PromQL", 3)
    assert (pending["summary"], pending["activeSince"]) == ("down", "2026-01-01T00:00:00Z")
    assert pending["severity"] == "warning"  # the CRD's default
    assert (quiet["state"], quiet["source"]) == ("inactive", "builtin MCPServerNotReady")
    assert view["prometheusRuleName"] == "servers"


def test_a_rule_without_status_yet_is_inactive() -> None:
    view = alert_rule_view({"metadata": {"name": "new"}, "spec": {"rules": [{"name": "A"}]}})
    assert view["rules"][0]["state"] == "inactive"
    assert (view["firing"], view["pending"], view["health"]) == (0, 0, "Unknown")
