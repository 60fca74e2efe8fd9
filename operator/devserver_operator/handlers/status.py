"""Status patches that respect the kstatus rules and never rewrite what did not change."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from devserver_operator.api.conditions import Condition, DesiredCondition, merge_conditions


def existing_conditions(status: Mapping[str, Any] | None) -> list[Condition]:
    raw = (status or {}).get("conditions") or []
    parsed: list[Condition] = []
    for item in raw:
        try:
            parsed.append(Condition.model_validate(item))
        except ValueError:
            continue  # A hand-edited, malformed condition is replaced rather than trusted.
    return parsed


def status_patch(
    status: Mapping[str, Any] | None,
    desired: Iterable[DesiredCondition],
    *,
    generation: int | None,
    now: datetime,
    fields: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The merge patch for ``.status``; empty when the status already says all of it."""
    conditions = merge_conditions(
        existing_conditions(status), desired, generation=generation, now=now
    )
    wanted: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": [c.to_wire() for c in conditions],
        **(fields or {}),
    }
    current = dict(status or {})
    return {key: value for key, value in wanted.items() if current.get(key) != value}
