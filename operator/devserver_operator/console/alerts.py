"""The alert rules view: each AlertRule with its rules' state (firing, pending, inactive),
joined from spec (severity, what the rule watches) and status (the operator's evaluation)."""

from __future__ import annotations

from typing import Any

from .objects import health

ACTIVE_STATES = ("firing", "pending")


def _source(rule: dict[str, Any]) -> str:
    builtin = rule.get("builtin")
    if isinstance(builtin, dict):
        return f"builtin {builtin.get('condition')}"
    return "PromQL" if rule.get("expr") else ""


def alert_rule_view(item: dict[str, Any]) -> dict[str, Any]:
    metadata, spec = item.get("metadata") or {}, item.get("spec") or {}
    status = item.get("status") or {}
    declared = {str(r.get("name")): r for r in spec.get("rules") or () if isinstance(r, dict)}
    observed = {str(r.get("name")): r for r in status.get("rules") or () if isinstance(r, dict)}
    rules = []
    for name, rule in declared.items():
        seen = observed.get(name) or {}
        rules.append(
            {
                "name": name,
                "severity": rule.get("severity") or "warning",
                "source": _source(rule),
                "summary": (rule.get("annotations") or {}).get("summary"),
                "state": seen.get("state") or "inactive",
                "activeSince": seen.get("activeSince"),
                "activeAlerts": seen.get("activeAlerts"),
                "lastEvaluationTime": seen.get("lastEvaluationTime"),
                "lastNotificationTime": seen.get("lastNotificationTime"),
                "notificationsSent": seen.get("notificationsSent"),
                "lastError": seen.get("lastError"),
            }
        )
    # Firing first, then pending, then the quiet ones; by name within each.
    rules.sort(key=lambda r: (r["state"] not in ACTIVE_STATES, r["state"] != "firing", r["name"]))
    return {
        "namespace": metadata.get("namespace", ""),
        "name": metadata.get("name", ""),
        "health": health(item),
        "firing": sum(r["state"] == "firing" for r in rules),
        "pending": sum(r["state"] == "pending" for r in rules),
        "rules": rules,
        "prometheusRuleName": status.get("prometheusRuleName"),
    }
