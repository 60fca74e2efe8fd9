"""One structured JSON line for every write made through the console.

Who (the authenticated user), what (verb, kind, namespace, name), when, and the outcome
(HTTP status and the API server's reason). Never a request body: it may carry values a
person pasted, and the log must not become a place where secrets end up.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from .identity import User

AUDIT_LOGGER = "devserver_operator.console.audit"
_log = logging.getLogger(AUDIT_LOGGER)


def audit_write(
    user: User,
    action: str,
    kind: str,
    namespace: str,
    name: str,
    *,
    status: int,
    reason: str = "",
    **extra: str,
) -> None:
    """``extra``: further fields of the record (e.g. the tool called), never a value a
    person sent."""
    record = {
        "audit": "devserver-console",
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "user": user.username,
        "groups": list(user.groups),
        "action": action,
        "kind": kind,
        "namespace": namespace,
        "name": name,
        "outcome": "allowed" if status < 400 else "refused",
        "status": status,
        "reason": reason,
        **extra,
    }
    _log.info(json.dumps(record, sort_keys=True))
