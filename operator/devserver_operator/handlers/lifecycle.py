"""First sight of every kind: Ready=Unknown and Reconciling=True until a reconciler takes over.

Kinds whose reconciler exists register their own handlers; this module covers the rest so
that every object shows kstatus-conformant conditions from the moment it is created.
"""

from __future__ import annotations

from typing import Any

import kopf

from devserver_operator.api import ALL_KINDS, GROUP, VERSION
from devserver_operator.api.conditions import now_utc, reconciling

from .status import status_patch

RECONCILED_ELSEWHERE = {"AlertRule", "MCPServer", "TeamAccess", "WorkflowIntegration"}


def first_sight(
    status: kopf.Status, meta: kopf.Meta, patch: kopf.Patch, kind: str, **_: Any
) -> None:
    desired = reconciling(
        "Initializing", f"The operator has seen this {kind} and will reconcile it."
    )
    changes = status_patch(status, desired, generation=meta.get("generation"), now=now_utc())
    for key, value in changes.items():
        patch.status[key] = value


def register_first_sight(registry: kopf.OperatorRegistry) -> None:
    for info in ALL_KINDS:
        if info.kind in RECONCILED_ELSEWHERE:
            continue

        for decorator in (kopf.on.resume, kopf.on.create):
            decorator(
                GROUP, VERSION, info.plural, id="first-sight", param=info.kind, registry=registry
            )(_first_sight_handler)


def _first_sight_handler(
    *, status: kopf.Status, meta: kopf.Meta, patch: kopf.Patch, param: Any = None, **_: Any
) -> None:
    first_sight(status=status, meta=meta, patch=patch, kind=str(param))
