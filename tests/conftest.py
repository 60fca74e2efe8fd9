"""Shared pytest configuration: fixtures for the real servers the tests start on loopback."""

pytest_plugins = [
    "tests.support.n8n_server",
    "tests.support.mcp_servers",
    "tests.support.third_party_mcp",
    "tests.support.operator_harness",
    "tests.support.openhands",
    "tests.support.console_harness",
]
