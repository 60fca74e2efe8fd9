"""The kstatus rules, one by one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devserver_operator.api.conditions import (
    DesiredCondition,
    check_kstatus,
    find,
    merge_conditions,
    not_ready,
    ready,
    reconciling,
    stalled,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def test_ready_must_always_be_present() -> None:
    with pytest.raises(ValueError, match="Ready condition must always be present"):
        check_kstatus([DesiredCondition(type="Verified", status="True", reason="Ok")])


@pytest.mark.parametrize("abnormal", ["Reconciling", "Stalled"])
@pytest.mark.parametrize("status", ["False", "Unknown"])
def test_abnormal_true_conditions_exist_only_while_true(abnormal: str, status: str) -> None:
    conditions = [
        DesiredCondition(type="Ready", status="False", reason="X"),
        DesiredCondition(type=abnormal, status=status, reason="X"),  # type: ignore[arg-type]
    ]
    with pytest.raises(ValueError, match="abnormal-true"):
        check_kstatus(conditions)


def test_reconciling_and_stalled_never_together() -> None:
    conditions = [
        DesiredCondition(type="Ready", status="False", reason="X"),
        DesiredCondition(type="Reconciling", status="True", reason="X"),
        DesiredCondition(type="Stalled", status="True", reason="X"),
    ]
    with pytest.raises(ValueError, match="never both"):
        check_kstatus(conditions)


@pytest.mark.parametrize("abnormal", ["Reconciling", "Stalled"])
def test_ready_is_not_true_while_abnormal(abnormal: str) -> None:
    conditions = [
        DesiredCondition(type="Ready", status="True", reason="X"),
        DesiredCondition(type=abnormal, status="True", reason="X"),
    ]
    with pytest.raises(ValueError, match="Ready cannot be True"):
        check_kstatus(conditions)


def test_duplicate_types_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        check_kstatus([*ready(), *ready()])


def test_helpers_produce_valid_sets() -> None:
    for conditions in (ready(), reconciling("A", "b"), stalled("A", "b"), not_ready("A", "b")):
        check_kstatus(conditions)


def test_last_transition_time_moves_only_when_status_flips() -> None:
    first = merge_conditions([], reconciling("Creating", "x"), generation=1, now=T0)
    same_status_new_reason = merge_conditions(
        first, reconciling("Waiting", "y"), generation=1, now=T1
    )
    assert find(same_status_new_reason, "Ready").last_transition_time == T0  # type: ignore[union-attr]
    assert find(same_status_new_reason, "Ready").reason == "Waiting"  # type: ignore[union-attr]
    flipped = merge_conditions(same_status_new_reason, ready(), generation=1, now=T1)
    assert find(flipped, "Ready").last_transition_time == T1  # type: ignore[union-attr]


def test_conditions_not_desired_any_more_disappear() -> None:
    first = merge_conditions([], reconciling("Creating", "x"), generation=1, now=T0)
    done = merge_conditions(first, ready(), generation=1, now=T1)
    assert [c.type for c in done] == ["Ready"]


def test_unchanged_reconcile_gives_an_identical_list() -> None:
    first = merge_conditions([], stalled("BadSpec", "x"), generation=3, now=T0)
    again = merge_conditions(first, stalled("BadSpec", "x"), generation=3, now=T1)
    assert again == first


def test_observed_generation_is_stamped_and_order_is_stable() -> None:
    extra = DesiredCondition(type="Available", status="True", reason="Ok")
    merged = merge_conditions([], [extra, *ready()], generation=7, now=T0)
    assert [c.type for c in merged] == ["Ready", "Available"]
    assert {c.observed_generation for c in merged} == {7}


def test_long_messages_are_clipped() -> None:
    merged = merge_conditions([], not_ready("Fail", "x" * 5000), generation=1, now=T0)
    assert len(merged[0].message) <= 1024
    assert merged[0].message.endswith("...")
