"""WorkflowIntegration conditions from what a reconcile found. Pure: problems in, conditions out.

A problem is transient (n8n unreachable: retried with backoff, Ready=False), stalled (needs a
change of spec or of a referenced object: Stalled=True, no hot retry) or pending (waits for
something that is on its way, such as an MCPServer's URL: Reconciling=True).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from devserver_operator.api.conditions import (
    READY,
    RECONCILING,
    STALLED,
    DesiredCondition,
)

SYNCED = "Synced"
DRIFTED = "Drifted"
CONFIG_MAP_REJECTED = "OpenHandsConfigRejected"
CONFIG_MAP_CONFLICT = "ConfigMapConflict"
_OPEN_HANDS_REASONS = frozenset({CONFIG_MAP_REJECTED, CONFIG_MAP_CONFLICT})

Severity = Literal["transient", "stalled", "pending"]
_RANK: dict[Severity, int] = {"transient": 0, "stalled": 1, "pending": 2}
MAX_LISTED_PROBLEMS = 3


@dataclass(frozen=True)
class Problem:
    severity: Severity
    reason: str
    """CamelCase, e.g. ActivationFailed."""
    message: str
    """A sentence that names the field, with n8n's own words where n8n said something."""


@dataclass(frozen=True)
class Summary:
    """What went right, for the Ready message."""

    n8n: bool
    workflows_in_sync: int
    workflows: int
    credentials: int
    drifted: Sequence[str]
    """Keys of workflows whose n8n copy differs (driftPolicy Report)."""
    open_hands_servers: int | None
    """Servers in the OpenHands ConfigMap; None without openHands."""


def worst(problems: Sequence[Problem]) -> Problem | None:
    """The problem that decides the conditions: transient before stalled before pending."""
    return min(problems, key=lambda p: _RANK[p.severity], default=None)


def combined_message(problems: Sequence[Problem], severity: Severity) -> str:
    same = [p.message for p in problems if p.severity == severity]
    shown = "; ".join(same[:MAX_LISTED_PROBLEMS])
    more = len(same) - MAX_LISTED_PROBLEMS
    return shown + (f" (and {more} more)" if more > 0 else "")


def conditions_for(problems: Sequence[Problem], summary: Summary) -> list[DesiredCondition]:
    """Ready, Reconciling or Stalled, and the detail conditions Synced and Drifted (n8n)."""
    main = worst(problems)
    detail: list[DesiredCondition] = []
    if summary.n8n:
        n8n_problem = worst([p for p in problems if p.reason not in _OPEN_HANDS_REASONS])
        detail.append(
            DesiredCondition(
                type=SYNCED,
                status="True" if n8n_problem is None else "False",
                reason="Synced" if n8n_problem is None else n8n_problem.reason,
                message=_synced_message(summary)
                if n8n_problem is None
                else combined_message(problems, n8n_problem.severity),
            )
        )
        detail.append(
            DesiredCondition(
                type=DRIFTED,
                status="True" if summary.drifted else "False",
                reason="DriftDetected" if summary.drifted else "NoDrift",
                message=(
                    "n8n's copy differs from the spec (driftPolicy Report): "
                    + ", ".join(summary.drifted)
                )
                if summary.drifted
                else "n8n matches the spec, or differences were corrected.",
            )
        )
    if main is None:
        return [
            DesiredCondition(
                type=READY, status="True", reason="Synced", message=_ready_message(summary)
            ),
            *detail,
        ]
    message = combined_message(problems, main.severity)
    if main.severity == "stalled":
        return [
            DesiredCondition(type=READY, status="False", reason=main.reason, message=message),
            DesiredCondition(type=STALLED, status="True", reason=main.reason, message=message),
            *detail,
        ]
    if main.severity == "pending":
        return [
            DesiredCondition(type=READY, status="False", reason=main.reason, message=message),
            DesiredCondition(type=RECONCILING, status="True", reason=main.reason, message=message),
            *detail,
        ]
    return [
        DesiredCondition(type=READY, status="False", reason=main.reason, message=message),
        *detail,
    ]


def _synced_message(summary: Summary) -> str:
    return (
        f"{summary.workflows_in_sync}/{summary.workflows} workflows and "
        f"{summary.credentials} credentials in n8n match the spec."
    )


def _ready_message(summary: Summary) -> str:
    parts = []
    if summary.n8n:
        parts.append(_synced_message(summary).removesuffix("."))
    if summary.drifted:
        parts.append(f"drift reported for {', '.join(summary.drifted)}")
    if summary.open_hands_servers is not None:
        parts.append(f"the OpenHands config lists {summary.open_hands_servers} MCP servers")
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."
