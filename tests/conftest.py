"""Shared pytest configuration: fixtures for the real servers the tests start on loopback."""

pytest_plugins = [
    "tests.support.n8n_server",
    "tests.support.mcp_servers",
    "tests.support.operator_harness",
    "tests.support.console_harness",
]
