"""The one status writer: merge patches that respect the kstatus rules, never a no-op, and
the write memory told what was written."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from devserver_operator.api import API_VERSION
from devserver_operator.api.conditions import (
    Condition,
    DesiredCondition,
    merge_conditions,
    now_utc,
)
from devserver_operator.builders.common import Owner
from devserver_operator.kube.client import KubeClient

from .memory import WriteMemory

logger = logging.getLogger(__name__)


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


class StatusWriter:
    """Writes one object's status. ``status`` is always what the object says now, as far as
    this process knows: the freshest of the body it was given and its own last write."""

    def __init__(
        self, kube: KubeClient, memory: WriteMemory, owner: Owner, body: Mapping[str, Any]
    ) -> None:
        self.kube = kube
        self.memory = memory
        self.owner = owner
        self.status = memory.freshest_status(owner.uid, body)

    async def write(
        self,
        desired: Iterable[DesiredCondition],
        *,
        generation: int | None,
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        """Conditions (merged by the kstatus rules), observedGeneration and ``fields``."""
        await self._patch(
            status_patch(self.status, desired, generation=generation, now=now_utc(), fields=fields)
        )

    async def write_fields(self, fields: Mapping[str, Any]) -> None:
        """Only ``fields``, at once: for external IDs that must be recorded before anything
        else can fail."""
        await self._patch({k: v for k, v in fields.items() if self.status.get(k) != v})

    async def _patch(self, patch: Mapping[str, Any]) -> None:
        if not patch:
            return
        owner = self.owner
        logger.debug("status of %s/%s: writing %s", owner.namespace, owner.name, sorted(patch))
        written = await self.kube.patch_status(
            API_VERSION, owner.kind, owner.name, owner.namespace, dict(patch)
        )
        self.memory.remember_status(owner.uid, written)
        self.status = dict(written.get("status") or {**self.status, **patch})
