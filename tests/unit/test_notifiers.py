"""Notifiers against real loopback receivers: the exact payloads Slack, Teams and a generic
webhook receive, HMAC signatures, e-mail through a real SMTP server (plain, STARTTLS with
login, implicit TLS), retries, and errors that never show a URL or a secret."""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from devserver_operator.alerting.notification import Notification
from devserver_operator.integrations.notifiers import (
    SIGNATURE_HEADER,
    DeliveryError,
    EmailNotifier,
    SlackNotifier,
    SmtpTarget,
    TeamsNotifier,
    WebhookNotifier,
    deliver,
    email_message,
    slack_payload,
    teams_payload,
    webhook_payload,
)
from devserver_operator.integrations.notifiers.http import redact
from tests.support.hostile_http import HangingServer, unused_port
from tests.support.receivers import (
    Certificate,
    SmtpReceiver,
    WebhookReceiver,
    temporary_certificate,
)

STARTS = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)
ENDS = datetime(2027, 3, 1, 9, 45, tzinfo=UTC)
SLACK_PATH = "/services/T000/B000/XXXXsecrettoken"
KEY = b"n8n-shared-signing-key"


def firing(**overrides: Any) -> Notification:
    values: dict[str, Any] = {
        "status": "firing",
        "alert_name": "McpServerNotReady",
        "severity": "critical",
        "labels": {
            "alertname": "McpServerNotReady",
            "severity": "critical",
            "namespace": "team-a",
            "name": "fs",
        },
        "annotations": {
            "summary": "MCP server fs is not Ready",
            "description": "Ready has been False for 5m.",
        },
        "value": 1.0,
        "starts_at": STARTS,
        "ends_at": None,
        "fingerprint": "5d41402abc4b2a76",
        "namespace": "team-a",
        "alert_rule": "mcp-health",
        "channel": "oncall",
    }
    values.update(overrides)
    return Notification(**values)


def resolved() -> Notification:
    return firing(status="resolved", ends_at=ENDS)


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture
async def http() -> Any:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture(scope="module")
def certificate() -> Iterator[Certificate]:
    with temporary_certificate() as created:
        yield created


async def no_sleep(_: float) -> None:
    return None


# -- exact payloads ------------------------------------------------------------------------


def test_slack_payload() -> None:
    assert slack_payload(firing(), channel="#alerts") == {
        "text": "[FIRING] McpServerNotReady: MCP server fs is not Ready",
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": "[FIRING] McpServerNotReady"},
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "MCP server fs is not Ready\nReady has been False for 5m.",
                },
            },
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*Severity*\ncritical"},
                    {"type": "mrkdwn", "text": "*Since*\n2027-03-01T09:30:00Z"},
                    {"type": "mrkdwn", "text": "*Value*\n1"},
                    {"type": "mrkdwn", "text": "*AlertRule*\nteam-a/mcp-health"},
                ],
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": "alertname=McpServerNotReady, name=fs, namespace=team-a, "
                        "severity=critical",
                    }
                ],
            },
        ],
        "channel": "#alerts",
    }


def test_slack_escapes_its_control_characters() -> None:
    payload = slack_payload(firing(annotations={"summary": "a < b & c > d"}))
    assert payload["text"] == "[FIRING] McpServerNotReady: a &lt; b &amp; c &gt; d"
    assert "channel" not in payload


def test_teams_payload_is_an_adaptive_card_message() -> None:
    assert teams_payload(resolved()) == {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "msteams": {"width": "Full"},
                    "body": [
                        {
                            "type": "TextBlock",
                            "text": "[RESOLVED] McpServerNotReady",
                            "weight": "Bolder",
                            "size": "Large",
                            "color": "Good",
                            "wrap": True,
                        },
                        {"type": "TextBlock", "text": "MCP server fs is not Ready", "wrap": True},
                        {
                            "type": "TextBlock",
                            "text": "Ready has been False for 5m.",
                            "wrap": True,
                            "isSubtle": True,
                        },
                        {
                            "type": "FactSet",
                            "facts": [
                                {"title": "Severity", "value": "critical"},
                                {"title": "Resolved", "value": "2027-03-01T09:45:00Z"},
                                {"title": "Value", "value": "1"},
                                {"title": "AlertRule", "value": "team-a/mcp-health"},
                                {"title": "alertname", "value": "McpServerNotReady"},
                                {"title": "name", "value": "fs"},
                                {"title": "namespace", "value": "team-a"},
                                {"title": "severity", "value": "critical"},
                            ],
                        },
                    ],
                },
            }
        ],
    }


def test_webhook_payload_is_alertmanager_format_version_4() -> None:
    labels = {
        "alertname": "McpServerNotReady",
        "name": "fs",
        "namespace": "team-a",
        "severity": "critical",
    }
    annotations = {
        "description": "Ready has been False for 5m.",
        "summary": "MCP server fs is not Ready",
    }
    assert webhook_payload(firing()) == {
        "version": "4",
        "groupKey": "team-a/mcp-health:5d41402abc4b2a76",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "team-a/mcp-health/oncall",
        "groupLabels": {"alertname": "McpServerNotReady"},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": annotations,
                "startsAt": "2027-03-01T09:30:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": "5d41402abc4b2a76",
                "value": "1",
            }
        ],
    }
    assert webhook_payload(resolved())["alerts"][0]["endsAt"] == "2027-03-01T09:45:00Z"


def test_email_message() -> None:
    message = email_message(
        resolved(), "alerts@example.com", ("oncall@example.com", "b@example.com")
    )
    assert message["Subject"] == "[RESOLVED] McpServerNotReady (critical) - team-a/mcp-health"
    assert message["From"] == "alerts@example.com"
    assert message["To"] == "oncall@example.com, b@example.com"
    assert message["X-Devserver-Alert-Fingerprint"] == "5d41402abc4b2a76"
    assert message["Message-ID"].endswith("@example.com>")
    assert message.get_content() == (
        "[RESOLVED] McpServerNotReady\n"
        "\n"
        "MCP server fs is not Ready\n"
        "\n"
        "Ready has been False for 5m.\n"
        "\n"
        "Severity:  critical\n"
        "Resolved:  2027-03-01T09:45:00Z\n"
        "Value:     1\n"
        "AlertRule: team-a/mcp-health\n"
        "\n"
        "Labels:\n"
        "  alertname=McpServerNotReady\n"
        "  name=fs\n"
        "  namespace=team-a\n"
        "  severity=critical\n"
    )


# -- over the wire -------------------------------------------------------------------------


async def test_slack_receives_exactly_the_payload(receiver: WebhookReceiver, http: Any) -> None:
    receiver.answer("/slack", 200, b"ok")
    before = len(receiver.received("/slack"))
    await SlackNotifier(receiver.url("/slack" + SLACK_PATH), http=http).send(firing())
    request = receiver.received("/slack")[before]
    assert request.headers["content-type"] == "application/json"
    assert request.json() == slack_payload(firing())


async def test_teams_receives_exactly_the_payload_and_202_is_success(
    receiver: WebhookReceiver, http: Any
) -> None:
    receiver.answer("/teams", 202)
    before = len(receiver.received("/teams"))
    await TeamsNotifier(receiver.url("/teams/workflows/abc"), http=http).send(resolved())
    assert receiver.received("/teams")[before].json() == teams_payload(resolved())


async def test_webhook_body_is_signed_with_hmac_sha256(
    receiver: WebhookReceiver, http: Any
) -> None:
    before = len(receiver.received("/n8n"))
    await WebhookNotifier(receiver.url("/n8n/webhook/alerts"), http=http, hmac_key=KEY).send(
        firing()
    )
    request = receiver.received("/n8n")[before]
    assert request.json() == webhook_payload(firing())
    expected = "sha256=" + hmac.new(KEY, request.body, hashlib.sha256).hexdigest()
    assert request.headers[SIGNATURE_HEADER.lower()] == expected
    forged = "sha256=" + hmac.new(b"other", request.body, hashlib.sha256).hexdigest()
    assert request.headers[SIGNATURE_HEADER.lower()] != forged


async def test_webhook_without_key_sends_no_signature(receiver: WebhookReceiver, http: Any) -> None:
    before = len(receiver.received("/plain"))
    await WebhookNotifier(receiver.url("/plain"), http=http).send(firing())
    assert SIGNATURE_HEADER.lower() not in receiver.received("/plain")[before].headers


async def test_errors_quote_the_answer_without_the_url(
    receiver: WebhookReceiver, http: Any
) -> None:
    url = receiver.url("/gone" + SLACK_PATH)
    receiver.answer("/gone", 404, f"no_service for POST /gone{SLACK_PATH}".encode())
    with pytest.raises(DeliveryError) as caught:
        await SlackNotifier(url, http=http).send(firing())
    assert caught.value.transient is False
    assert caught.value.message.startswith("HTTP 404 Not Found: no_service")
    assert (
        "secrettoken" not in caught.value.message and str(receiver.port) not in caught.value.message
    )


def test_redaction_removes_path_query_and_long_segments() -> None:
    url = "https://hooks.example.com/services/T000/B000/XXXXsecrettoken?sig=abcdefghijkl"
    text = f"bad {url} XXXXsecrettoken sig=abcdefghijkl /services/T000"
    assert "secrettoken" not in redact(text, url) and "abcdefghijkl" not in redact(text, url)


async def test_server_errors_are_retried_then_reported(
    receiver: WebhookReceiver, http: Any
) -> None:
    receiver.answer("/flaky", 503, b"busy")
    before = len(receiver.received("/flaky"))
    notifier = WebhookNotifier(receiver.url("/flaky"), http=http)
    with pytest.raises(DeliveryError) as caught:
        await deliver(notifier, firing(), attempts=3, sleep=no_sleep)
    assert caught.value.transient is True
    assert caught.value.message == "HTTP 503 Service Unavailable: busy"
    assert len(receiver.received("/flaky")) - before == 3


async def test_client_errors_are_not_retried(receiver: WebhookReceiver, http: Any) -> None:
    receiver.answer("/bad", 400, b"invalid_payload")
    before = len(receiver.received("/bad"))
    with pytest.raises(DeliveryError):
        await deliver(WebhookNotifier(receiver.url("/bad"), http=http), firing(), sleep=no_sleep)
    assert len(receiver.received("/bad")) - before == 1


async def test_429_waits_what_the_receiver_asks_within_a_cap(
    receiver: WebhookReceiver, http: Any
) -> None:
    receiver.answer("/limited", 429, b"slow down", {"Retry-After": "30"})
    pauses: list[float] = []

    async def record(seconds: float) -> None:
        pauses.append(seconds)

    with pytest.raises(DeliveryError) as caught:
        await deliver(WebhookNotifier(receiver.url("/limited"), http=http), firing(), sleep=record)
    assert caught.value.retry_after == 30
    assert pauses == [5.0, 5.0]


async def test_a_recovering_receiver_gets_the_notification_on_a_retry(
    receiver: WebhookReceiver, http: Any
) -> None:
    receiver.answer("/recovers", 503)

    async def recover(_: float) -> None:
        receiver.answer("/recovers", 200)

    before = len(receiver.received("/recovers"))
    attempts = await deliver(
        WebhookNotifier(receiver.url("/recovers"), http=http), firing(), sleep=recover
    )
    assert attempts == 2 and len(receiver.received("/recovers")) - before == 2


async def test_connection_refused_is_transient_and_names_no_url(http: Any) -> None:
    url = f"http://127.0.0.1:{unused_port()}/webhook/secret-path-id"
    with pytest.raises(DeliveryError) as caught:
        await WebhookNotifier(url, http=http).send(firing())
    assert caught.value.transient and caught.value.message.startswith("connection failed")
    assert "secret-path-id" not in caught.value.message


async def test_a_receiver_that_never_answers_times_out(http: Any) -> None:
    hanging = HangingServer()
    try:
        with pytest.raises(DeliveryError) as caught:
            await WebhookNotifier(hanging.url("hook"), http=http, timeout=0.5).send(firing())
    finally:
        hanging.close()
    assert caught.value.transient and caught.value.message == "no answer within 0.5s"


# -- e-mail --------------------------------------------------------------------------------


def smtp_target(port: int, tls: str, credentials: tuple[str, str] | None = None) -> SmtpTarget:
    return SmtpTarget(
        host="127.0.0.1",
        port=port,
        tls=tls,  # type: ignore[arg-type]
        sender="alerts@example.com",
        recipients=("oncall@example.com",),
        username=credentials[0] if credentials else None,
        password=credentials[1] if credentials else None,
    )


async def test_email_over_plain_smtp_arrives_as_sent() -> None:
    server = SmtpReceiver("plain").start()
    try:
        await EmailNotifier(smtp_target(server.port, "none")).send(firing())
        [mail] = server.wait_for(1)
    finally:
        server.stop()
    assert mail.mail_from == "alerts@example.com" and mail.rcpt_tos == ["oncall@example.com"]
    assert not mail.tls
    sent = email_message(firing(), "alerts@example.com", ("oncall@example.com",))
    assert mail.message["Subject"] == sent["Subject"]
    body = mail.message.get_payload(decode=True).decode()
    assert body.replace("\r\n", "\n") == sent.get_content()  # SMTP sends CRLF line ends


async def test_email_with_starttls_and_login(certificate: Certificate) -> None:
    credentials = ("alerts", "s3cret-Passw0rd")
    server = SmtpReceiver(
        "starttls", certificate=(certificate.certificate, certificate.key), credentials=credentials
    ).start()
    try:
        notifier = EmailNotifier(
            smtp_target(server.port, "starttls", credentials),
            ssl_context=certificate.client_context(),
        )
        await notifier.send(firing())
        [mail] = server.wait_for(1)
    finally:
        server.stop()
    assert mail.tls and mail.authenticated_as == "alerts"


async def test_email_with_implicit_tls(certificate: Certificate) -> None:
    server = SmtpReceiver("tls", certificate=(certificate.certificate, certificate.key)).start()
    try:
        await EmailNotifier(
            smtp_target(server.port, "tls"), ssl_context=certificate.client_context()
        ).send(resolved())
        [mail] = server.wait_for(1)
    finally:
        server.stop()
    assert mail.tls and mail.message["Subject"].startswith("[RESOLVED]")


async def test_starttls_refuses_a_server_without_it_instead_of_sending_in_clear() -> None:
    server = SmtpReceiver("plain").start()
    try:
        with pytest.raises(DeliveryError) as caught:
            await EmailNotifier(smtp_target(server.port, "starttls")).send(firing())
        assert server.messages == []
    finally:
        server.stop()
    assert caught.value.transient is False and "STARTTLS" in caught.value.message.upper()


async def test_an_untrusted_certificate_is_refused(certificate: Certificate) -> None:
    server = SmtpReceiver("tls", certificate=(certificate.certificate, certificate.key)).start()
    try:
        with pytest.raises(DeliveryError) as caught:
            await EmailNotifier(
                smtp_target(server.port, "tls"), ssl_context=ssl.create_default_context()
            ).send(firing())
    finally:
        server.stop()
    assert "TLS" in caught.value.message


async def test_a_wrong_password_is_reported_without_the_password(certificate: Certificate) -> None:
    server = SmtpReceiver(
        "starttls",
        certificate=(certificate.certificate, certificate.key),
        credentials=("alerts", "right"),
    ).start()
    try:
        with pytest.raises(DeliveryError) as caught:
            await EmailNotifier(
                smtp_target(server.port, "starttls", ("alerts", "wrong-Passw0rd-123")),
                ssl_context=certificate.client_context(),
            ).send(firing())
    finally:
        server.stop()
    assert caught.value.message.startswith("SMTP login refused")
    assert "wrong-Passw0rd-123" not in caught.value.message
    assert not caught.value.transient


async def test_an_unreachable_smtp_server_is_transient() -> None:
    with pytest.raises(DeliveryError) as caught:
        await EmailNotifier(smtp_target(unused_port(), "none"), timeout=2).send(firing())
    assert caught.value.transient


def test_payloads_are_json_serialisable() -> None:
    for payload in (slack_payload(firing()), teams_payload(firing()), webhook_payload(resolved())):
        assert json.loads(json.dumps(payload)) == payload
