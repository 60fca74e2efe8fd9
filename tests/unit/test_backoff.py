"""The shared per-object retry schedule for Kubernetes API failures."""

from __future__ import annotations

from devserver_operator.reconcile.backoff import FailureBackoff


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_delays_double_from_the_first_up_to_the_cap() -> None:
    backoff = FailureBackoff(first_delay=15, max_delay=300, clock=Clock())
    delays = [backoff.failed("a") for _ in range(7)]
    assert delays == [15, 30, 60, 120, 240, 300, 300]
    assert backoff.failures("a") == 7


def test_a_long_outage_stays_at_the_cap() -> None:
    backoff = FailureBackoff(first_delay=15, max_delay=300, clock=Clock())
    for _ in range(10_000):
        delay = backoff.failed("a")
    assert delay == 300


def test_waiting_until_the_delay_has_passed_then_due() -> None:
    clock = Clock()
    backoff = FailureBackoff(first_delay=15, clock=clock)
    assert not backoff.waiting("a")
    backoff.failed("a")
    clock.now += 14.9
    assert backoff.waiting("a")
    clock.now += 0.2
    assert not backoff.waiting("a")


def test_success_starts_over_and_objects_are_independent() -> None:
    backoff = FailureBackoff(first_delay=15, clock=Clock())
    backoff.failed("a")
    backoff.failed("a")
    backoff.failed("b")
    backoff.succeeded("a")
    assert not backoff.waiting("a")
    assert backoff.failed("a") == 15
    assert backoff.waiting("b")
    assert backoff.failures("b") == 1
