"""Which replica leads under kopf peering, and what a replica does when it loses the lead.

kopf pauses an operator when a peer of higher priority appears and resumes it when no such
peer is alive. It offers no hook for either, but logs each decision; ``LeadWatch`` reads those
records, so it follows kopf's own verdict instead of re-deriving it from the peering object.

A replica that led and then got paused must not simply wait: its resync loop, TeamAccess
expiry alarms and in-memory write memories would outlive the pause, and kopf fills its index
caches before the first handler only once per process, so after a later resume handlers would
compare against caches that are not listed yet and write again what is already right. Like a
controller-runtime manager that loses its lease, it stops (``lost`` is set) and the runner
starts it again as a fresh standby.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from devserver_operator import metrics

PEERING_LOGGER = "kopf._core.engines.peering"
# kopf's messages for its pause and resume decisions (kopf/_core/engines/peering.py).
RESUMING = "Resuming operations"
PAUSING = "Pausing"

# Priorities are negative on purpose: kopf's own tools (`kopf freeze`, `kopf run --dev`) use
# priorities of 0 and above to pause deployed operators, and that keeps working.
# The older replica has the higher priority, so a replica that starts next to a working one
# stays a standby (no handover on every rolling update) and only takes over when the leader
# goes away. The random digits break ties of replicas started in the same millisecond: kopf
# pauses every replica that sees a peer of equal priority.
TIE_BREAKER = 1000


def own_identity() -> str:
    """This replica's name in kopf's peering records and logs.

    kopf's own default asks ``getpass.getuser()``, which raises for a UID without a passwd
    entry: the image's UID 10001, and the arbitrary UIDs OpenShift assigns. The pod name
    (``POD_ID``, set by the chart) names it in a cluster; elsewhere the user or UID, the
    host and the start time do, as in kopf's format.
    """
    pod = os.environ.get("POD_ID")
    if pod:
        return pod
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    started = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    return f"{user}@{socket.gethostname()}/{started}/{secrets.token_hex(2)}"


def reporting_instance() -> str:
    """Which replica posted an Event (``reportingInstance``): the pod, else the host."""
    return os.environ.get("POD_ID") or socket.gethostname()


def start_priority(now_ms: int | None = None) -> int:
    started = int(time.time() * 1000) if now_ms is None else now_ms
    return -(started * TIE_BREAKER + secrets.randbelow(TIE_BREAKER))


class LeadWatch(logging.Handler):
    """Follows kopf's pause and resume decisions for one run of the operator, and publishes
    them (the ``devserver_leader`` gauge, the leadership check of /healthz)."""

    def __init__(self, peering: str | None = None) -> None:
        super().__init__(level=logging.INFO)
        self.peering = peering
        self.leading = False
        self.lost = asyncio.Event()
        metrics.LEADER.set(0)  # every run starts as a standby, until kopf resumes it

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith(RESUMING):
            self.leading = True
            metrics.LEADER.set(1)
        elif message.startswith(PAUSING):
            metrics.LEADER.set(0)
            if self.leading:
                self.leading = False
                self.lost.set()


def standalone() -> LeadWatch:
    """Without peering the one replica always leads; nothing is ever lost."""
    watch = LeadWatch()
    watch.leading = True
    metrics.LEADER.set(1)
    return watch


@contextlib.contextmanager
def watching_the_lead(peering: str) -> Iterator[LeadWatch]:
    watch = LeadWatch(peering)
    peering_logger = logging.getLogger(PEERING_LOGGER)
    previous_level = peering_logger.level
    # The decisions are logged at INFO; below that level kopf would not even create the record.
    if peering_logger.getEffectiveLevel() > logging.INFO:
        peering_logger.setLevel(logging.INFO)
    peering_logger.addHandler(watch)
    try:
        yield watch
    finally:
        peering_logger.removeHandler(watch)
        peering_logger.setLevel(previous_level)
