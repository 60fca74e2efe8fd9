"""One evaluation of an AlertRule, end to end in-process: built-in observations from views,
the state machine, delivery to a real loopback webhook, the rate limit, and status views."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from devserver_operator.alerting.builtin import ResourceView
from devserver_operator.api.alertrule import AlertRuleSpec
from devserver_operator.kinds.alertrule.evaluation import (
    evaluate_once,
    evaluation_view,
    restore_from_status,
)
from devserver_operator.kinds.alertrule.memory import AlertingRuntime, AlertRuleMemory
from devserver_operator.kube.client import KubeClient
from tests.support.receivers import WebhookReceiver

T0 = datetime(2027, 1, 1, tzinfo=UTC)
NO_KUBE = cast(KubeClient, None)  # plain webhook URLs: no Secret is read


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture
async def runtime() -> AsyncIterator[AlertingRuntime]:
    created = AlertingRuntime()
    yield created
    await created.close()


def not_ready(*names: str) -> list[ResourceView]:
    return [
        ResourceView(kind="MCPServer", namespace="team-a", name=name, ready="False", ready_since=T0)
        for name in names
    ]


def spec(url: str, **channel: Any) -> AlertRuleSpec:
    return AlertRuleSpec.model_validate(
        {
            "rules": [{"name": "Down", "builtin": {"condition": "MCPServerNotReady"}}],
            "channels": [{"name": "hook", "webhook": {"url": url}, **channel}],
        }
    )


async def run(
    spec: AlertRuleSpec,
    memory: AlertRuleMemory,
    runtime: AlertingRuntime,
    views: list[ResourceView],
    now: datetime,
    events: list[tuple[str, str, str]] | None = None,
) -> None:
    await evaluate_once(
        spec=spec,
        namespace="team-a",
        name="rule",
        status={},
        memory=memory,
        runtime=runtime,
        kube=NO_KUBE,
        views=lambda kind, namespace: views if kind == "MCPServer" else [],
        now=now,
        post=lambda *event: (events if events is not None else []).append(event),
    )


async def test_firing_alerts_are_delivered_once_and_counted(
    receiver: WebhookReceiver, runtime: AlertingRuntime
) -> None:
    memory, events = AlertRuleMemory(), []
    rule = spec(receiver.url("/once"))
    await run(rule, memory, runtime, not_ready("a", "b"), T0, events)
    await run(rule, memory, runtime, not_ready("a", "b"), T0 + timedelta(seconds=30), events)
    assert sorted(r.json()["alerts"][0]["labels"]["name"] for r in receiver.received("/once")) == [
        "a",
        "b",
    ]
    view = evaluation_view(rule, memory)
    assert view.rules[0].state == "firing" and view.rules[0].notifications_sent == 2
    assert events == [
        (
            "Warning",
            "AlertFiring",
            "Down fires for {kind=MCPServer, name=a, "
            "namespace=team-a, severity=warning}, {kind=MCPServer, name=b, "
            "namespace=team-a, severity=warning}",
        )
    ]


async def test_the_rate_limit_drops_what_exceeds_it_and_says_so(
    receiver: WebhookReceiver, runtime: AlertingRuntime
) -> None:
    memory = AlertRuleMemory()
    rule = spec(receiver.url("/limited"), maxPerHour=1)
    await run(rule, memory, runtime, not_ready("a", "b", "c"), T0)
    assert len(receiver.received("/limited")) == 1
    view = evaluation_view(rule, memory)
    assert view.rules[0].notifications_sent == 1
    assert view.rules[0].error == (
        "channel hook: rate limit of 1 notifications per hour reached; notifications were dropped"
    )
    assert view.failing_channels == {}  # dropping is not a delivery failure
    await run(rule, memory, runtime, not_ready("a", "b", "c"), T0 + timedelta(minutes=5))
    assert len(receiver.received("/limited")) == 1  # dropped ones are not queued up


async def test_a_failing_channel_backs_off_and_delivers_later(
    receiver: WebhookReceiver, runtime: AlertingRuntime
) -> None:
    memory = AlertRuleMemory()
    rule = spec(receiver.url("/later"))
    receiver.answer("/later", 400, b"invalid_payload")
    await run(rule, memory, runtime, not_ready("a"), T0)
    view = evaluation_view(rule, memory)
    assert view.failing_channels == {"hook": "HTTP 400 Bad Request: invalid_payload"}
    tries = len(receiver.received("/later"))
    await run(rule, memory, runtime, not_ready("a"), T0 + timedelta(seconds=10))
    assert len(receiver.received("/later")) == tries  # backing off (30 s after one failure)
    receiver.answer("/later", 200)
    await run(rule, memory, runtime, not_ready("a"), T0 + timedelta(seconds=31))
    assert receiver.received("/later")[-1].status == 200
    assert evaluation_view(rule, memory).failing_channels == {}
    assert evaluation_view(rule, memory).rules[0].error is None


def test_restore_reads_counts_and_active_rules_from_status() -> None:
    memory = AlertRuleMemory()
    restored = restore_from_status(
        {
            "rules": [
                {
                    "name": "Down",
                    "state": "firing",
                    "activeSince": "2027-01-01T00:00:00Z",
                    "notificationsSent": 4,
                    "lastNotificationTime": "2027-01-01T00:05:00Z",
                },
                {"name": "Quiet", "state": "inactive", "notificationsSent": 0},
            ]
        },
        memory,
    )
    assert set(restored) == {"Down"} and restored["Down"].active_since == T0
    assert memory.notifications_sent == {"Down": 4, "Quiet": 0}
    assert memory.last_notification == {"Down": T0 + timedelta(minutes=5)}
