"""Prometheus metrics, all prefixed devserver_."""

from __future__ import annotations

import platform
from importlib.metadata import version

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from devserver_operator import __version__

# The process itself: what runs, and whether this replica does the work.
BUILD_INFO = Gauge(
    "devserver_build_info",
    "Always 1; the labels say which operator, Python and kopf this process runs.",
    ["version", "python_version", "kopf_version"],
)
BUILD_INFO.labels(__version__, platform.python_version(), version("kopf")).set(1)
LEADER = Gauge(
    "devserver_leader",
    "1 while this replica leads (always, without peering), 0 while it stands by.",
)

RECONCILE_TOTAL = Counter(
    "devserver_reconcile_total", "Reconciles by kind and result.", ["kind", "result"]
)
RECONCILE_DURATION = Histogram(
    "devserver_reconcile_duration_seconds",
    "Time spent in one reconcile.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RECONCILE_ERRORS = Counter(
    "devserver_reconcile_errors_total",
    "Reconciles that failed, by kind and reason.",
    ["kind", "reason"],
)
MCP_PROBE_TOTAL = Counter(
    "devserver_mcp_probe_total", "MCP handshakes by result (ok or a failure reason).", ["result"]
)
MCP_PROBE_DURATION = Histogram(
    "devserver_mcp_probe_duration_seconds",
    "Duration of MCP handshakes (initialize + tools/list).",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
MCP_SERVER_TOOLS = Gauge(
    "devserver_mcp_server_tools", "Tools an MCP server lists.", ["namespace", "name"]
)
MCP_SERVER_READY = Gauge(
    "devserver_mcp_server_ready", "1 when the MCPServer is Ready, else 0.", ["namespace", "name"]
)


# AlertRule: operator-side evaluation and notifications.
ALERT_EVALUATIONS = Counter(
    "devserver_alert_evaluations_total",
    "Evaluations of AlertRule rules by the operator, by result (ok or an error reason).",
    ["result"],
)
ALERT_QUERY_DURATION = Histogram(
    "devserver_alert_query_duration_seconds",
    "Duration of PromQL instant queries made for AlertRules.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ALERT_LAST_EVALUATION = Gauge(
    "devserver_alertrule_last_evaluation_timestamp_seconds",
    "Unix time of the last evaluation of an AlertRule (its status records changes only).",
    ["namespace", "name"],
)
ALERT_RULES_FIRING = Gauge(
    "devserver_alertrule_rules_firing",
    "Rules of an AlertRule that fire now.",
    ["namespace", "name"],
)
ALERT_NOTIFICATIONS = Counter(
    "devserver_alert_notifications_total",
    "Notifications by channel type, kind (firing or resolved) and result "
    "(sent, failed or rate_limited).",
    ["channel_type", "kind", "result"],
)

N8N_CHANGES = Counter(
    "devserver_n8n_changes_total",
    "Changes WorkflowIntegrations made in n8n, by action (WorkflowSynced, DriftCorrected, "
    "DriftReported, CredentialCreated, CredentialRotated).",
    ["action"],
)
N8N_PROBLEMS = Counter(
    "devserver_n8n_problems_total",
    "Problems WorkflowIntegrations met with n8n, by condition reason.",
    ["reason"],
)

# TeamAccess: who holds a role now, and until when.
TEAMACCESS_MEMBERS = Gauge(
    "devserver_teamaccess_members",
    "Members that hold the role of a TeamAccess now (0 once expired or refused).",
    ["namespace", "name"],
)
TEAMACCESS_EXPIRY = Gauge(
    "devserver_teamaccess_expiry_timestamp_seconds",
    "When a TeamAccess ends, as a Unix time; absent when it has no expiresAt.",
    ["namespace", "name"],
)


def serve(port: int) -> None:
    start_http_server(port)
