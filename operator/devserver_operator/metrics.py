"""Prometheus metrics, all prefixed devserver_."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

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


def serve(port: int) -> None:
    start_http_server(port)
