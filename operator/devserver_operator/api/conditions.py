"""Status conditions and the kstatus rules they obey.

Flux and Argo CD read health from these conditions without custom code, so the rules are
strict: ``Ready`` is always present; ``Reconciling`` and ``Stalled`` are "abnormal-true"
(present only while True, never both); ``Ready`` is never True while either is; and
``lastTransitionTime`` moves only when a condition's status flips. The clock is a parameter so
that these rules are pure and testable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Literal

from pydantic import Field

from .base import ApiModel

ConditionStatus = Literal["True", "False", "Unknown"]

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
ABNORMAL_TRUE = (RECONCILING, STALLED)

MAX_MESSAGE_LENGTH = 1024


class Condition(ApiModel):
    """One aspect of the object's current state (the metav1.Condition shape)."""

    type: str = Field(pattern=r"^[A-Z][A-Za-z0-9]*$", max_length=316)
    """Type of condition in CamelCase, e.g. Ready."""
    status: ConditionStatus
    """Status of the condition: True, False or Unknown."""
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024)
    """Machine-readable CamelCase reason for the last transition."""
    message: str = Field(default="", max_length=32768)
    """Human-readable details about the last transition."""
    last_transition_time: datetime
    """When the status last changed."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The .metadata.generation the condition was set for."""


class DesiredCondition(ApiModel):
    """A condition as a reconcile wants it, before timestamps are settled."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def merge_conditions(
    existing: Sequence[Condition],
    desired: Iterable[DesiredCondition],
    *,
    generation: int | None,
    now: datetime,
) -> list[Condition]:
    """The new condition list: ``desired`` replaces ``existing`` type by type.

    Types absent from ``desired`` are dropped, which is how Reconciling and Stalled disappear
    once they are no longer true. Timestamps survive when the status did not flip, so a
    reconcile that changes nothing produces an identical list (and no write).
    """
    wanted = list(desired)
    check_kstatus(wanted)
    previous = {condition.type: condition for condition in existing}
    merged: list[Condition] = []
    for item in wanted:
        before = previous.get(item.type)
        unchanged_status = before is not None and before.status == item.status
        merged.append(
            Condition(
                type=item.type,
                status=item.status,
                reason=item.reason,
                message=_clip(item.message),
                last_transition_time=before.last_transition_time
                if before is not None and unchanged_status
                else now,
                observed_generation=generation,
            )
        )
    merged.sort(key=_order)
    return merged


def check_kstatus(conditions: Sequence[DesiredCondition]) -> None:
    """Raise ValueError if ``conditions`` break the kstatus rules."""
    by_type = {c.type: c for c in conditions}
    if len(by_type) != len(conditions):
        raise ValueError("condition types must be unique")
    if READY not in by_type:
        raise ValueError("the Ready condition must always be present")
    for name in ABNORMAL_TRUE:
        if name in by_type and by_type[name].status != "True":
            raise ValueError(f"{name} is abnormal-true: present only while True")
    if RECONCILING in by_type and STALLED in by_type:
        raise ValueError("Reconciling and Stalled are never both present")
    if by_type[READY].status == "True" and any(name in by_type for name in ABNORMAL_TRUE):
        raise ValueError("Ready cannot be True while Reconciling or Stalled")


def ready(reason: str = "Reconciled", message: str = "") -> list[DesiredCondition]:
    return [DesiredCondition(type=READY, status="True", reason=reason, message=message)]


def reconciling(
    reason: str, message: str, *, ready_status: ConditionStatus = "Unknown"
) -> list[DesiredCondition]:
    """In progress: Ready Unknown (or False) plus Reconciling=True with the same reason."""
    return [
        DesiredCondition(type=READY, status=ready_status, reason=reason, message=message),
        DesiredCondition(type=RECONCILING, status="True", reason=reason, message=message),
    ]


def stalled(reason: str, message: str) -> list[DesiredCondition]:
    """A permanent problem that needs a change of spec or environment: no retry loop."""
    return [
        DesiredCondition(type=READY, status="False", reason=reason, message=message),
        DesiredCondition(type=STALLED, status="True", reason=reason, message=message),
    ]


def not_ready(reason: str, message: str) -> list[DesiredCondition]:
    """A transient failure that is retried with backoff (neither Reconciling nor Stalled)."""
    return [DesiredCondition(type=READY, status="False", reason=reason, message=message)]


def _clip(message: str) -> str:
    if len(message) <= MAX_MESSAGE_LENGTH:
        return message
    return message[: MAX_MESSAGE_LENGTH - 3] + "..."


def _order(condition: Condition) -> tuple[int, str]:
    # Ready first, then the abnormal-true pair, then kind-specific detail: stable output
    # keeps status patches byte-identical between reconciles.
    rank = {READY: 0, RECONCILING: 1, STALLED: 2}
    return (rank.get(condition.type, 3), condition.type)


def find(conditions: Sequence[Condition], condition_type: str) -> Condition | None:
    return next((c for c in conditions if c.type == condition_type), None)
