"""Count API requests by identity from the API server's audit log: the ground truth for
"an idle reconcile writes nothing", covering kopf's own requests as well as ours."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from devserver_operator.localcluster.audit import WRITE_VERBS, answered_requests

OPERATOR_USER = "devserver-operator-test"


@dataclass
class AuditCursor:
    path: Path
    offset: int = 0

    @classmethod
    def at_end(cls, path: Path) -> AuditCursor:
        return cls(path, path.stat().st_size if path.exists() else 0)

    def requests(self, user: str = OPERATOR_USER) -> list[tuple[str, str]]:
        """(verb, requestURI) of every request by ``user`` since the cursor was placed."""
        return [
            (event["verb"], event["requestURI"])
            for event in answered_requests(self.path, self.offset, user)
        ]

    def writes(self, user: str = OPERATOR_USER) -> list[tuple[str, str]]:
        return [(verb, uri) for verb, uri in self.requests(user) if verb in WRITE_VERBS]

    def verbs(self, user: str = OPERATOR_USER) -> Counter[str]:
        return Counter(verb for verb, _ in self.requests(user))
