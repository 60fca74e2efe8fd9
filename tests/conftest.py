"""Shared pytest configuration: fixtures for the real servers the tests start on loopback."""

pytest_plugins: list[str] = []
