"""Pieces of WorkflowIntegration specs that several test modules build alike."""

from __future__ import annotations

from typing import Any


def authorization_credential(name: str = "token", source: str = "token") -> dict[str, Any]:
    """An n8n header credential: ``Authorization`` from key ``value`` of Secret ``source``."""
    return {
        "name": name,
        "type": "httpHeaderAuth",
        "secretRef": {"name": source},
        "fields": [
            {"field": "name", "value": "Authorization"},
            {"field": "value", "secretKey": "value"},
        ],
    }
