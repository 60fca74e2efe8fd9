"""AlertRules on the real API server, with a real Prometheus (Debian's package) scraping a
gauge the test sets, and real receivers for Slack, Teams, a generic webhook and e-mail.

Intervals are short (evaluation every second, `for` of a few seconds); every wait is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import hmac
import itertools
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from devserver_operator.alerting.notification import Notification
from devserver_operator.alerting.state import RuleDefinition, alert_labels, fingerprint
from devserver_operator.api import API_VERSION
from devserver_operator.api.alertrule import AlertRuleSpec
from devserver_operator.builders.common import Owner
from devserver_operator.builders.prometheusrule import build_prometheus_rule
from devserver_operator.integrations.notifiers import (
    slack_payload,
    teams_payload,
    webhook_payload,
)
from devserver_operator.kube.client import KubeClient
from tests.support.audit import AuditCursor
from tests.support.hostile_http import HostileHttpServer, unused_port
from tests.support.operator_harness import (
    RunningOperator,
    condition,
    custom_resource,
    start_operator,
    wait_for,
    wait_for_condition,
)
from tests.support.prometheus_server import MetricTarget, PrometheusServer, running_prometheus
from tests.support.receivers import RecordedRequest, SmtpReceiver, WebhookReceiver

pytestmark = pytest.mark.integration
GAUGE = "devserver_alert_test_gauge"
PROMETHEUS_RULE_CRD = Path(__file__).resolve().parents[1] / "support/crds/prometheusrule-crd.yaml"
HMAC_KEY = "n8n-signing-key"
QUIET = 3.0  # seconds (three evaluations) in which nothing more may arrive


@pytest.fixture(scope="module")
def prometheus() -> Iterator[tuple[PrometheusServer, MetricTarget]]:
    with running_prometheus() as running:
        yield running


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    server.answer("/teams", 202)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpReceiver]:
    server = SmtpReceiver("plain").start()
    yield server
    server.stop()


async def get(kube: KubeClient, name: str, namespace: str) -> dict[str, Any] | None:
    return await kube.get(API_VERSION, "AlertRule", name, namespace)


def rule_status(body: dict[str, Any] | None, rule: str) -> dict[str, Any]:
    for item in (body or {}).get("status", {}).get("rules") or []:
        if item["name"] == rule:
            return dict(item)
    return {}


async def wait_rule_state(
    kube: KubeClient, name: str, namespace: str, rule: str, state: str, seconds: float = 30
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        body = await get(kube, name, namespace)
        return body if rule_status(body, rule).get("state") == state else None

    async def dump() -> Any:
        return await get(kube, name, namespace)

    return await wait_for(probe, seconds=seconds, what=f"rule {rule} {state}", dump=dump)


async def put_secret(kube: KubeClient, namespace: str, name: str, data: dict[str, str]) -> None:
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
    )


def gauge_rule(namespace: str, **overrides: Any) -> dict[str, Any]:
    return {
        "name": "GaugeHigh",
        "expr": f'{GAUGE}{{test="{namespace}"}} > 5',
        "for": "3s",
        "severity": "critical",
        "labels": {"team": "platform"},
        "annotations": {"summary": "gauge {{ $labels.test }} is at {{ $value }}"},
        **overrides,
    }


def evaluation(prometheus: PrometheusServer, **overrides: Any) -> dict[str, Any]:
    return {"prometheusUrl": prometheus.url, "interval": "1s", "timeout": "2s", **overrides}


def webhook_channel(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "webhook": {"url": url, **extra}}


async def quiet_period() -> None:
    await asyncio.sleep(QUIET)


# -- PrometheusRule --------------------------------------------------------------------------


async def set_prometheus_rule_crd(kube: KubeClient, installed: bool) -> None:
    crd = yaml.safe_load(PROMETHEUS_RULE_CRD.read_text())
    name = crd["metadata"]["name"]
    if installed:
        await kube.apply(crd)
    else:
        await kube.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", name, None)

    async def settled() -> bool:
        served = await kube.has_api("monitoring.coreos.com/v1", "prometheusrules")
        return served is installed

    await wait_for(settled, seconds=30, what=f"PrometheusRule API served={installed}")


async def test_prometheus_rule_waits_for_prometheus_operator_then_is_applied_and_repaired(
    operator: RunningOperator, kube: KubeClient, namespace: str
) -> None:
    await set_prometheus_rule_crd(kube, installed=False)
    spec = {
        "prometheusRule": {"labels": {"release": "kube-prometheus-stack"}},
        "rules": [
            gauge_rule(namespace, keepFiringFor="1m"),
            {"name": "McpDown", "builtin": {"condition": "MCPServerNotReady"}, "for": "5m"},
        ],
    }
    created = await kube.apply(custom_resource("AlertRule", "prom", namespace, spec))
    waiting = await wait_for_condition(
        kube,
        "AlertRule",
        "prom",
        namespace,
        "Ready",
        "False",
        reason="PrometheusOperatorNotInstalled",
    )
    assert condition(waiting, "PrometheusRuleApplied")["status"] == "False"
    assert condition(waiting, "Stalled") is None
    assert "install Prometheus Operator" in condition(waiting, "Ready")["message"]
    try:
        await set_prometheus_rule_crd(kube, installed=True)
        ready = await wait_for_condition(
            kube, "AlertRule", "prom", namespace, "Ready", "True", seconds=40
        )
        assert condition(ready, "PrometheusRuleApplied")["reason"] == "Applied"
        assert ready["status"]["prometheusRuleName"] == "prom"
        live = await kube.get("monitoring.coreos.com/v1", "PrometheusRule", "prom", namespace)
        assert live is not None
        owner = Owner("AlertRule", "prom", namespace, created["metadata"]["uid"])
        expected = build_prometheus_rule(owner, AlertRuleSpec.model_validate(spec))
        assert expected is not None
        assert live["spec"] == expected["spec"]
        assert live["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert live["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]

        await kube.delete("monitoring.coreos.com/v1", "PrometheusRule", "prom", namespace)

        async def restored() -> bool:
            again = await kube.get("monitoring.coreos.com/v1", "PrometheusRule", "prom", namespace)
            return bool(again and again["metadata"]["uid"] != live["metadata"]["uid"])

        await wait_for(restored, seconds=15, what="the deleted PrometheusRule to come back")
    finally:
        await set_prometheus_rule_crd(kube, installed=False)


async def test_a_refused_prometheus_rule_is_not_sent_again_until_the_spec_changes(
    operator: RunningOperator, kube: KubeClient, namespace: str, control_plane: Any
) -> None:
    """The API server refuses a label value with a space; our schema lets it through (it only
    bounds the length). Sending the same PrometheusRule again on every resync round can only
    fail again: it was once one failed write per AlertRule and round."""
    await set_prometheus_rule_crd(kube, installed=True)
    try:
        spec = {
            "prometheusRule": {"labels": {"release": "not a label value"}},
            "rules": [gauge_rule(namespace)],
        }
        await kube.apply(custom_resource("AlertRule", "refused", namespace, spec))
        stalled = await wait_for_condition(
            kube, "AlertRule", "refused", namespace, "Stalled", "True", seconds=40
        )
        assert condition(stalled, "Stalled")["reason"] == "PrometheusRuleRejected"
        cursor = AuditCursor.at_end(control_plane.local.audit_log_path)
        await asyncio.sleep(2 * operator.settings.resync_interval + 1)
        sent = [w for w in cursor.writes() if f"/namespaces/{namespace}/prometheusrules" in w[1]]
        assert sent == [], sent

        # The control: a changed spec is sent, and applied.
        fixed = {**spec, "prometheusRule": {"labels": {"release": "kube-prometheus-stack"}}}
        await kube.apply(custom_resource("AlertRule", "refused", namespace, fixed))
        await wait_for_condition(kube, "AlertRule", "refused", namespace, "Ready", "True")
        assert await kube.get("monitoring.coreos.com/v1", "PrometheusRule", "refused", namespace)
    finally:
        await set_prometheus_rule_crd(kube, installed=False)


def _live(type_name: str) -> list[Any]:
    return [item for item in gc.get_objects() if type(item).__name__ == type_name]


BUILTIN_ONLY = {
    "evaluation": {"interval": "1s"},
    "rules": [{"name": "NoServer", "builtin": {"condition": "MCPServerNotReady"}}],
}


async def test_alertrules_share_one_runtime(
    operator: RunningOperator, kube: KubeClient, namespace: str
) -> None:
    """kopf hands every object a shallow copy of the memo: state set on it lazily belonged to
    one AlertRule each (one HTTP client each), not to the operator as docs/alertrule.md says."""
    uids = []
    for name in ("one", "two"):
        created = await kube.apply(custom_resource("AlertRule", name, namespace, BUILTIN_ONLY))
        uids.append(created["metadata"]["uid"])
    for name in ("one", "two"):
        await wait_for_condition(kube, "AlertRule", name, namespace, "Ready", "True")
    holders = [r for r in _live("AlertingRuntime") if any(uid in r.memories for uid in uids)]
    assert len(holders) == 1, [sorted(set(uids) & set(r.memories)) for r in holders]
    assert set(uids) <= set(holders[0].memories)


async def test_a_deleted_alertrule_leaves_no_lock_and_no_memory(
    operator: RunningOperator, kube: KubeClient, namespace: str
) -> None:
    created = await kube.apply(custom_resource("AlertRule", "gone", namespace, BUILTIN_ONLY))
    uid = created["metadata"]["uid"]
    await wait_for_condition(kube, "AlertRule", "gone", namespace, "Ready", "True")
    await kube.delete(API_VERSION, "AlertRule", "gone", namespace)

    async def forgotten() -> bool:
        runtimes = _live("AlertingRuntime")
        contexts = _live("OperatorContext")
        return not any(uid in r.memories for r in runtimes) and not any(
            uid in context.locks for context in contexts
        )

    await wait_for(forgotten, seconds=15, what="the deleted AlertRule's lock and memory gone")


# -- evaluation and notification -------------------------------------------------------------


def expected_notification(
    namespace: str, instance: str, channel: str, starts: str, ends: str | None = None
) -> Notification:
    """What the channels must be told, from the rule and the series (not from the operator)."""
    series = {"__name__": GAUGE, "test": namespace, "instance": instance, "job": "devserver-tests"}
    definition = RuleDefinition(name="GaugeHigh", severity="critical", labels={"team": "platform"})
    labels = alert_labels(definition, series)
    return Notification(
        status="resolved" if ends else "firing",
        alert_name="GaugeHigh",
        severity="critical",
        labels=labels,
        annotations={"summary": f"gauge {namespace} is at 7"},
        value=7.0,
        starts_at=_time(starts),
        ends_at=_time(ends) if ends else None,
        fingerprint=fingerprint(labels),
        namespace=namespace,
        alert_rule="gauge",
        channel=channel,
    )


def _time(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


async def test_a_metric_crossing_the_threshold_goes_pending_firing_resolved_with_one_notice_each(
    operator: RunningOperator,
    kube: KubeClient,
    namespace: str,
    prometheus: tuple[PrometheusServer, MetricTarget],
    receiver: WebhookReceiver,
    smtp: SmtpReceiver,
) -> None:
    server, target = prometheus
    series = {"test": namespace}
    target.set(GAUGE, series, 1)
    server.wait_until(f'{GAUGE}{{test="{namespace}"}}', bool, what="the gauge scraped")
    slack, teams, n8n = (f"/slack/{namespace}", f"/teams/{namespace}", f"/n8n/{namespace}")
    await put_secret(
        kube,
        namespace,
        "alert-channels",
        {
            "slack": receiver.url(slack + "/services/T0/B0/token"),
            "teams": receiver.url(teams + "/workflows/abc"),
            "hmac": HMAC_KEY + "\n",  # as `echo` leaves it: the newline is not part of the key
        },
    )
    mails_before = len(smtp.messages)
    spec = {
        "evaluation": evaluation(server),
        "rules": [gauge_rule(namespace)],
        "channels": [
            {
                "name": "slack",
                "slack": {"webhookUrlSecretRef": {"name": "alert-channels", "key": "slack"}},
            },
            {
                "name": "teams",
                "teams": {"webhookUrlSecretRef": {"name": "alert-channels", "key": "teams"}},
            },
            webhook_channel(
                "n8n", receiver.url(n8n), hmacSecretRef={"name": "alert-channels", "key": "hmac"}
            ),
            {
                "name": "mail",
                "email": {
                    "smtpHost": "127.0.0.1",
                    "smtpPort": smtp.port,
                    "tls": "none",
                    "from": "alerts@example.com",
                    "to": [f"{namespace}@example.com"],
                },
            },
        ],
        "repeatInterval": "1h",
    }
    await kube.apply(custom_resource("AlertRule", "gauge", namespace, spec))
    ready = await wait_for_condition(kube, "AlertRule", "gauge", namespace, "Ready", "True")
    assert rule_status(ready, "GaugeHigh")["state"] == "inactive"
    assert condition(ready, "Evaluating")["status"] == "True"
    assert condition(ready, "Delivering")["status"] == "True"

    target.set(GAUGE, series, 7)
    pending = await wait_rule_state(kube, "gauge", namespace, "GaugeHigh", "pending")
    active_since = rule_status(pending, "GaugeHigh")["activeSince"]
    assert receiver.received(n8n) == []  # nobody hears of a pending alert
    firing = await wait_rule_state(kube, "gauge", namespace, "GaugeHigh", "firing")
    assert firing["status"]["firing"] == 1

    def mails() -> list[Any]:
        return [
            m for m in smtp.messages[mails_before:] if m.rcpt_tos == [f"{namespace}@example.com"]
        ]

    async def mail_count(count: int) -> bool:
        return len(mails()) >= count

    receiver.wait_for(1, slack)
    receiver.wait_for(1, teams)
    receiver.wait_for(1, n8n)
    await wait_for(lambda: mail_count(1), seconds=20, what="the firing e-mail")
    await quiet_period()
    assert [len(receiver.received(p)) for p in (slack, teams, n8n)] == [1, 1, 1]
    assert len(mails()) == 1
    status = rule_status(await get(kube, "gauge", namespace), "GaugeHigh")
    assert status["notificationsSent"] == 4
    assert status["activeSince"] == active_since
    elapsed = _seconds(status["lastNotificationTime"]) - _seconds(active_since)
    assert elapsed >= 3, "fired before `for` passed"

    def expected(channel: str) -> Notification:
        return expected_notification(namespace, target.address, channel, active_since)

    [slack_request] = receiver.received(slack)
    assert slack_request.json() == slack_payload(expected("slack"))
    assert slack_request.json()["text"] == f"[FIRING] GaugeHigh: gauge {namespace} is at 7"
    [teams_request] = receiver.received(teams)
    assert teams_request.json() == teams_payload(expected("teams"))
    [n8n_request] = receiver.received(n8n)
    assert n8n_request.json() == webhook_payload(expected("n8n"))
    _assert_signed(n8n_request)
    [mail] = mails()
    assert mail.message["Subject"] == f"[FIRING] GaugeHigh (critical) - {namespace}/gauge"

    target.set(GAUGE, series, 1)
    resolved = await wait_rule_state(kube, "gauge", namespace, "GaugeHigh", "inactive")
    assert resolved["status"]["firing"] == 0
    for path in (slack, teams, n8n):
        receiver.wait_for(2, path)
    await wait_for(lambda: mail_count(2), seconds=20, what="the resolved e-mail")
    await quiet_period()
    assert [len(receiver.received(p)) for p in (slack, teams, n8n)] == [2, 2, 2]
    assert len(mails()) == 2
    notice = receiver.received(n8n)[1].json()
    assert notice["status"] == "resolved"
    assert notice["alerts"][0]["fingerprint"] == expected("n8n").fingerprint
    assert notice["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
    _assert_signed(receiver.received(n8n)[1])
    assert receiver.received(slack)[1].json()["text"].startswith("[RESOLVED] GaugeHigh")
    assert mails()[1].message["Subject"].startswith("[RESOLVED] GaugeHigh")
    reasons = {e.get("reason") for e in await kube.list("v1", "Event", namespace)}
    assert {"AlertFiring", "AlertResolved"} <= reasons


def _assert_signed(request: RecordedRequest) -> None:
    digest = hmac.new(HMAC_KEY.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-devserver-signature"] == f"sha256={digest}"


def _seconds(timestamp: str) -> float:
    return _time(timestamp).timestamp()


async def test_repeat_interval_is_honoured(
    operator: RunningOperator,
    kube: KubeClient,
    namespace: str,
    prometheus: tuple[PrometheusServer, MetricTarget],
    receiver: WebhookReceiver,
) -> None:
    path = f"/repeat/{namespace}"
    spec = {
        "evaluation": evaluation(prometheus[0]),
        "rules": [{"name": "Always", "expr": "vector(1)"}],
        "channels": [webhook_channel("hook", receiver.url(path))],
        "repeatInterval": "3s",
    }
    await kube.apply(custom_resource("AlertRule", "repeat", namespace, spec))
    sent = receiver.wait_for(3, path, timeout=20)
    await kube.delete(API_VERSION, "AlertRule", "repeat", namespace)
    gaps = [b.received_at - a.received_at for a, b in itertools.pairwise(sent[:3])]
    # Never before 3 s (less what send latency can shift), and by the first evaluation after.
    assert all(2.7 <= gap <= 5.5 for gap in gaps), gaps
    fingerprints = {request.json()["alerts"][0]["fingerprint"] for request in sent}
    assert len(fingerprints) == 1
    assert {request.json()["status"] for request in sent} == {"firing"}


async def test_a_down_channel_recovers_and_delivers_without_holding_back_the_others(
    operator: RunningOperator,
    kube: KubeClient,
    namespace: str,
    prometheus: tuple[PrometheusServer, MetricTarget],
    receiver: WebhookReceiver,
) -> None:
    flaky = WebhookReceiver().start()
    steady = f"/steady/{namespace}"
    spec = {
        "evaluation": evaluation(prometheus[0]),
        "rules": [{"name": "Always", "expr": "vector(1)"}],
        "channels": [
            webhook_channel("flaky", flaky.url("/hook")),
            webhook_channel("steady", receiver.url(steady)),
        ],
    }
    try:
        with flaky.down():
            await kube.apply(custom_resource("AlertRule", "down", namespace, spec))
            receiver.wait_for(1, steady)
            failing = await wait_for_condition(
                kube, "AlertRule", "down", namespace, "Ready", "False", reason="DeliveryFailed"
            )
            assert "channel flaky: connection failed" in condition(failing, "Delivering")["message"]
            assert rule_status(failing, "Always")["lastError"].startswith("channel flaky:")
            assert str(flaky.port) not in condition(failing, "Ready")["message"]
        recovered = await wait_for_condition(
            kube, "AlertRule", "down", namespace, "Ready", "True", seconds=40
        )
        assert "lastError" not in rule_status(recovered, "Always")
        await quiet_period()
        delivered = flaky.received("/hook")
        assert len(delivered) == 1 and delivered[0].json()["status"] == "firing"
        assert len(receiver.received(steady)) == 1
        assert rule_status(await get(kube, "down", namespace), "Always")["notificationsSent"] == 2
    finally:
        flaky.stop()


def restart(running: RunningOperator) -> None:
    """Stop the session's operator and start a new one in the same object (fixtures keep it)."""
    running.stop()
    fresh = start_operator(Path(str(running.settings.kubeconfig)))
    running.settings, running.thread, running.errors = fresh.settings, fresh.thread, fresh.errors
    running.stop_flag, running.ready_flag = fresh.stop_flag, fresh.ready_flag


async def test_a_restarted_operator_does_not_notify_a_firing_alert_again(
    operator: RunningOperator,
    kube: KubeClient,
    namespace: str,
    prometheus: tuple[PrometheusServer, MetricTarget],
    receiver: WebhookReceiver,
) -> None:
    path = f"/restart/{namespace}"
    spec = {
        "evaluation": evaluation(prometheus[0]),
        "rules": [{"name": "Always", "expr": "vector(1)"}],
        "channels": [webhook_channel("hook", receiver.url(path))],
        "repeatInterval": "1h",
    }
    await kube.apply(custom_resource("AlertRule", "restart", namespace, spec))
    receiver.wait_for(1, path)
    before = await wait_rule_state(kube, "restart", namespace, "Always", "firing")
    await asyncio.to_thread(restart, operator)
    await asyncio.sleep(QUIET + 1)  # several evaluations by the new process
    assert len(receiver.received(path)) == 1
    after = rule_status(await get(kube, "restart", namespace), "Always")
    assert after["state"] == "firing"
    assert after["notificationsSent"] == 1
    assert after["activeSince"] == rule_status(before, "Always")["activeSince"]

    # The new process still knows the channel heard it fire: it sends the resolved notice.
    quiet = {**spec, "rules": [{"name": "Always", "expr": "vector(1) > 2"}]}
    await kube.apply(custom_resource("AlertRule", "restart", namespace, quiet))
    requests = receiver.wait_for(2, path)
    assert [r.json()["status"] for r in requests] == ["firing", "resolved"]


# -- bad input -------------------------------------------------------------------------------


async def test_invalid_promql_is_stalled_with_prometheus_parse_error_until_fixed(
    operator: RunningOperator,
    kube: KubeClient,
    namespace: str,
    prometheus: tuple[PrometheusServer, MetricTarget],
) -> None:
    spec = {
        "evaluation": evaluation(prometheus[0]),
        "rules": [{"name": "Broken", "expr": "rate(up[5m"}],
    }
    await kube.apply(custom_resource("AlertRule", "promql", namespace, spec))
    body = await wait_for_condition(kube, "AlertRule", "promql", namespace, "Stalled", "True")
    ready = condition(body, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "InvalidPromQL"
    assert ready["message"].startswith('spec.rules[Broken].expr: invalid parameter "query": ')
    assert "parse error" in ready["message"]
    assert "parse error" in rule_status(body, "Broken")["lastError"]

    fixed = {**spec, "rules": [{"name": "Broken", "expr": "vector(0) > 1"}]}
    await kube.apply(custom_resource("AlertRule", "promql", namespace, fixed))
    ready_body = await wait_for_condition(kube, "AlertRule", "promql", namespace, "Ready", "True")
    assert condition(ready_body, "Stalled") is None


async def test_unreachable_prometheus_is_not_ready_retried_and_recovers(
    operator: RunningOperator,
    kube: KubeClient,
    namespace: str,
    prometheus: tuple[PrometheusServer, MetricTarget],
) -> None:
    nowhere = f"http://127.0.0.1:{unused_port()}"
    rules = [{"name": "Always", "expr": "vector(1)", "for": "1h"}]
    spec = {"evaluation": {"prometheusUrl": nowhere, "interval": "1s"}, "rules": rules}
    await kube.apply(custom_resource("AlertRule", "unreachable", namespace, spec))
    body = await wait_for_condition(
        kube,
        "AlertRule",
        "unreachable",
        namespace,
        "Ready",
        "False",
        reason="PrometheusUnreachable",
    )
    assert condition(body, "Stalled") is None
    assert condition(body, "Evaluating")["message"].startswith(
        f"Prometheus at {nowhere} is unreachable"
    )

    moved = {**spec, "evaluation": evaluation(prometheus[0])}
    await kube.apply(custom_resource("AlertRule", "unreachable", namespace, moved))
    healed = await wait_for_condition(kube, "AlertRule", "unreachable", namespace, "Ready", "True")
    assert rule_status(healed, "Always")["state"] == "pending"


async def test_a_secret_without_the_key_is_stalled_naming_secret_and_key_never_the_value(
    operator: RunningOperator, kube: KubeClient, namespace: str, receiver: WebhookReceiver
) -> None:
    sensitive = receiver.url(f"/sensitive/{namespace}/VERY-SECRET-TOKEN")
    await put_secret(kube, namespace, "hooks", {"other": sensitive})
    spec = {
        "rules": [
            {"name": "Down", "builtin": {"condition": "MCPServerNotReady", "names": ["nothing"]}}
        ],
        "evaluation": {"interval": "1s"},
        "channels": [
            {"name": "slack", "slack": {"webhookUrlSecretRef": {"name": "hooks", "key": "url"}}}
        ],
    }
    await kube.apply(custom_resource("AlertRule", "secrets", namespace, spec))
    body = await wait_for_condition(kube, "AlertRule", "secrets", namespace, "Stalled", "True")
    message = condition(body, "Ready")["message"]
    assert condition(body, "Ready")["reason"] == "SecretKeyNotFound"
    assert message == (
        f"spec.channels[slack].slack.webhookUrlSecretRef: Secret {namespace}/hooks has no key url"
    )
    assert "VERY-SECRET-TOKEN" not in str(body)

    await put_secret(kube, namespace, "hooks", {"other": sensitive, "url": sensitive})
    healed = await wait_for_condition(
        kube, "AlertRule", "secrets", namespace, "Ready", "True", seconds=20
    )
    assert condition(healed, "Stalled") is None
    assert "VERY-SECRET-TOKEN" not in str(healed)


# -- built-in conditions ---------------------------------------------------------------------


async def test_builtin_conditions_follow_real_mcpservers(
    operator: RunningOperator,
    kube: KubeClient,
    namespace: str,
    receiver: WebhookReceiver,
    hostile_http: HostileHttpServer,
) -> None:
    path = f"/builtin/{namespace}"
    unreachable = f"http://127.0.0.1:{unused_port()}/mcp"
    await kube.apply(custom_resource("MCPServer", "tools", namespace, {"url": unreachable}))
    await wait_for_condition(kube, "MCPServer", "tools", namespace, "Ready", "False", seconds=30)
    spec = {
        "rules": [
            {"name": "McpDown", "builtin": {"condition": "MCPServerNotReady"}, "for": "2s"},
            {"name": "McpNoTools", "builtin": {"condition": "MCPServerNoTools"}},
        ],
        "evaluation": {"interval": "1s"},
        "channels": [webhook_channel("hook", receiver.url(path))],
    }
    await kube.apply(custom_resource("AlertRule", "builtin", namespace, spec))
    await wait_rule_state(kube, "builtin", namespace, "McpDown", "firing")
    [down] = receiver.wait_for(1, path)
    alert = down.json()["alerts"][0]
    assert alert["labels"] == {
        "alertname": "McpDown",
        "kind": "MCPServer",
        "name": "tools",
        "namespace": namespace,
        "severity": "warning",
    }
    assert alert["annotations"] == {"summary": f"MCPServer {namespace}/tools is not Ready"}

    # A real MCP server that lists no tools: Ready again, but the tool count drops to zero.
    no_tools = hostile_http.url("mcp") + "?no_tools=1"
    await kube.apply(custom_resource("MCPServer", "tools", namespace, {"url": no_tools}))
    await wait_for_condition(kube, "MCPServer", "tools", namespace, "Ready", "True", seconds=30)
    body = await wait_rule_state(kube, "builtin", namespace, "McpNoTools", "firing")
    assert rule_status(body, "McpDown")["state"] == "inactive"
    requests = receiver.wait_for(3, path)
    kinds = sorted(
        (r.json()["status"], r.json()["alerts"][0]["labels"]["alertname"]) for r in requests
    )
    assert kinds == [("firing", "McpDown"), ("firing", "McpNoTools"), ("resolved", "McpDown")]


# -- cost ------------------------------------------------------------------------------------


async def test_an_idle_alertrule_makes_no_api_request(
    operator: RunningOperator,
    kube: KubeClient,
    namespace: str,
    control_plane: Any,
    prometheus: tuple[PrometheusServer, MetricTarget],
    receiver: WebhookReceiver,
) -> None:
    await put_secret(kube, namespace, "hooks", {"url": receiver.url(f"/idle/{namespace}")})
    spec = {
        "evaluation": evaluation(prometheus[0]),
        "rules": [
            {"name": "Quiet", "expr": "vector(0) > 1"},
            {"name": "NoServer", "builtin": {"condition": "MCPServerNotReady"}},
        ],
        "channels": [
            {"name": "slack", "slack": {"webhookUrlSecretRef": {"name": "hooks", "key": "url"}}}
        ],
    }
    await kube.apply(custom_resource("AlertRule", "idle", namespace, spec))
    await wait_for_condition(kube, "AlertRule", "idle", namespace, "Ready", "True")
    await asyncio.sleep(1.5)  # let the first resync-independent evaluations settle
    cursor = AuditCursor.at_end(control_plane.local.audit_log_path)
    started = time.monotonic()
    await asyncio.sleep(operator.settings.resync_interval + 2)  # > 6 evaluations, 1 resync
    requests = [r for r in cursor.requests() if f"/namespaces/{namespace}/" in r[1]]
    assert requests == [], requests
    assert time.monotonic() - started >= operator.settings.resync_interval

    # The control: a change is seen by the same cursor (the log is the right one, and read).
    changed = {**spec, "rules": [*spec["rules"], {"name": "More", "expr": "vector(0) > 2"}]}
    await kube.apply(custom_resource("AlertRule", "idle", namespace, changed))
    await wait_rule_state(kube, "idle", namespace, "More", "inactive")
    writes = [w for w in cursor.writes() if f"/namespaces/{namespace}/alertrules/idle" in w[1]]
    assert writes, "the status update of the changed AlertRule is missing from the audit log"
