""" "Reconcile now" requests: a new value of the annotation ``devserver.ecosphere.network/
requested-at`` on one of the four kinds (the console's "Verify now" and "Sync now" set it).

The frame hands each new value to exactly one reconcile (``Request.requested``), which then
does what is otherwise only due later: an MCPServer runs its MCP handshake, a
WorkflowIntegration compares every workflow with n8n. Which value was handled is kept in this
process only; after a restart the value still on an object is handled once more, which costs
one extra handshake or comparison and never loses a request made while the operator was down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from devserver_operator.builders.common import REQUEST_ANNOTATION

MAX_REQUEST_CHARS = 64
"""A longer value is read as its first 64 characters (it is only compared, never shown)."""


def requested_value(body: Mapping[str, Any]) -> str | None:
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(REQUEST_ANNOTATION)
    return str(value)[:MAX_REQUEST_CHARS] if value else None


@dataclass
class HandledRequests:
    """The last request value handled per object (by uid)."""

    _handled: dict[str, str] = field(default_factory=dict)

    def pending(self, uid: str, body: Mapping[str, Any]) -> str | None:
        """The object's request value, if no reconcile has handled it yet."""
        value = requested_value(body)
        return value if value is not None and self._handled.get(uid) != value else None

    def take(self, uid: str, body: Mapping[str, Any]) -> str | None:
        """Like ``pending``, and marks the value handled: one reconcile gets it."""
        value = self.pending(uid, body)
        if value is not None:
            self._handled[uid] = value
        return value

    def forget(self, uid: str) -> None:
        self._handled.pop(uid, None)
