"""Reading the local control plane's audit log while the API server is still appending to it.

The API server writes an event in more than one ``write``, so a reader can meet half a line
at either end: at its start offset (taken from the file size while a line was being written)
and at the end of the file. Both halves are left out, so every event is read whole, once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

WRITE_VERBS: Final = frozenset({"create", "update", "patch", "delete", "deletecollection"})


def read_audit_events(path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """The events in the complete lines from byte ``offset`` on, and the offset to read from
    next time. A line the API server was halfway through at ``offset`` is skipped: its request
    happened before that point. A line it is still writing waits for the next read."""
    with path.open("rb") as log:
        log.seek(max(offset - 1, 0))
        if offset > 0 and log.read(1) != b"\n":
            log.readline()  # the tail of the line cut at ``offset``
        start = log.tell()
        data = log.read()
    complete = data[: data.rfind(b"\n") + 1]
    events = [json.loads(line) for line in complete.splitlines()]
    return events, start + len(complete)


def answered_requests(path: Path, offset: int, user: str) -> list[dict[str, Any]]:
    """The requests of ``user`` answered from byte ``offset`` on, one event each: a watch
    also logs ResponseStarted, but every request ends in one ResponseComplete."""
    events, _ = read_audit_events(path, offset)
    return [
        event
        for event in events
        if event.get("stage") == "ResponseComplete"
        and event.get("user", {}).get("username") == user
    ]
