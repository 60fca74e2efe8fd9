"""Slack incoming webhooks: a ``text`` fallback (what phones and screen readers show) plus
Block Kit blocks. Slack answers ``200 ok``; errors come as 4xx with a short code such as
``invalid_token`` or ``no_service``, which is kept in the error."""

from __future__ import annotations

import json
from typing import Any

import httpx

from devserver_operator.alerting.notification import Notification, rfc3339

from .base import DEFAULT_TIMEOUT
from .http import post_json

# Block Kit limits: header text 150 characters, section text 3000, a field 2000.
HEADER_LIMIT = 150
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000


def slack_payload(notification: Notification, channel: str | None = None) -> dict[str, Any]:
    n = notification
    body = n.summary + (f"\n{n.description}" if n.description else "")
    fields = [
        ("Severity", n.severity),
        ("Resolved" if n.resolved else "Since", rfc3339(n.ends_at or n.starts_at)),
        ("Value", n.value_text),
        ("AlertRule", n.source),
    ]
    labels = ", ".join(f"{key}={value}" for key, value in sorted(n.labels.items()))
    payload: dict[str, Any] = {
        "text": _escape(f"{n.title}: {n.summary}"),
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": _clip(n.title, HEADER_LIMIT)},
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _clip(_escape(body), SECTION_LIMIT)},
            },
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": _clip(f"*{name}*\n{_escape(value)}", FIELD_LIMIT)}
                    for name, value in fields
                ],
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": _clip(_escape(labels), FIELD_LIMIT)}],
            },
        ],
    }
    if channel:
        payload["channel"] = channel
    return payload


def _escape(text: str) -> str:
    # The three characters Slack's mrkdwn wants escaped; everything else is literal.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class SlackNotifier:
    kind = "slack"

    def __init__(
        self,
        webhook_url: str,
        *,
        http: httpx.AsyncClient,
        channel: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._url = webhook_url
        self._http = http
        self._channel = channel
        self._timeout = timeout

    async def send(self, notification: Notification) -> None:
        body = json.dumps(slack_payload(notification, self._channel)).encode()
        await post_json(self._http, self._url, body, timeout_seconds=self._timeout, accept=(200,))
