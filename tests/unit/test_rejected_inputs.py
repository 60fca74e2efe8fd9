"""Children the API server refused are not sent again until they change (found by the fuzz
suite: every resync round re-applied them, one failed write per object and round)."""

from __future__ import annotations

import pytest

from devserver_operator.kube.errors import InvalidError
from devserver_operator.reconcile import memory as rejections
from devserver_operator.reconcile.memory import RejectedInputs

DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}}


def test_exactly_the_refused_children_are_refused_again_with_the_servers_words() -> None:
    rejected = RejectedInputs()
    rejected.raise_if_refused("uid-1", [DEPLOYMENT])  # nothing known: no error
    rejected.remember("uid-1", [DEPLOYMENT], "env[0].name: Required value")
    with pytest.raises(InvalidError, match=r"env\[0\]\.name: Required value") as raised:
        rejected.raise_if_refused("uid-1", [DEPLOYMENT])
    assert raised.value.message == "env[0].name: Required value"
    rejected.raise_if_refused("uid-1", [{**DEPLOYMENT, "spec": {"replicas": 1}}])  # changed
    rejected.raise_if_refused("uid-2", [DEPLOYMENT])  # another owner
    rejected.forget("uid-1")
    rejected.raise_if_refused("uid-1", [DEPLOYMENT])


def test_around_an_apply_a_refusal_is_remembered() -> None:
    rejected = RejectedInputs()
    with (
        pytest.raises(InvalidError),
        rejected.refusing_again("uid-1", [DEPLOYMENT]),
    ):
        raise InvalidError(422, "Invalid", "spec.template: Invalid value")
    with pytest.raises(InvalidError, match=r"spec\.template: Invalid value"):
        rejected.raise_if_refused("uid-1", [DEPLOYMENT])


def test_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rejections, "MAX_REMEMBERED", 3)
    rejected = RejectedInputs()
    for index in range(5):
        rejected.remember(f"uid-{index}", [DEPLOYMENT], "refused")
    assert list(rejected.rejected) == ["uid-2", "uid-3", "uid-4"]
