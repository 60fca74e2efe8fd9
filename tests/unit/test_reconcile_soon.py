"""A burst of MCPServer changes costs a WorkflowIntegration one reconcile, not one each."""

from __future__ import annotations

import asyncio

from devserver_operator.handlers.workflowintegration_state import WorkflowIntegrationState


async def test_changes_within_the_delay_share_one_reconcile() -> None:
    state = WorkflowIntegrationState()
    runs: list[str] = []

    async def reconcile(label: str) -> None:
        runs.append(label)

    for label in ("a", "b", "c"):
        state.reconcile_soon("uid-1", reconcile(label), 0.05)
    state.reconcile_soon("uid-2", reconcile("other"), 0.05)
    await asyncio.sleep(0.2)
    assert sorted(runs) == ["a", "other"]

    # After it ran, a new change gets a reconcile of its own.
    state.reconcile_soon("uid-1", reconcile("d"), 0.01)
    await asyncio.sleep(0.1)
    assert runs[-1] == "d"
    assert state.soon == {}


async def test_a_stopping_operator_leaves_no_unawaited_reconcile() -> None:
    state = WorkflowIntegrationState()
    ran: list[bool] = []

    async def reconcile() -> None:
        ran.append(True)

    state.reconcile_soon("uid", reconcile(), 10)
    task = state.soon["uid"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert ran == [] and state.soon == {}
