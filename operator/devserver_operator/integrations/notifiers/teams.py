"""Microsoft Teams, through a Workflows webhook ("Post to a channel when a webhook request is
received", the replacement of the retired Office 365 connectors).

Such a webhook accepts a message activity that carries one Adaptive Card attachment, and
answers ``202 Accepted``::

    {"type": "message",
     "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                      "contentUrl": null,
                      "content": {"type": "AdaptiveCard", "version": "1.4", ...}}]}

Adaptive Card 1.4 is what Teams renders everywhere (desktop, web, mobile). The legacy
``MessageCard`` format is not sent: Workflows webhooks do not render it.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from devserver_operator.alerting.notification import Notification, rfc3339

from .base import DEFAULT_TIMEOUT
from .http import post_json

ADAPTIVE_CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
ADAPTIVE_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
ADAPTIVE_CARD_VERSION = "1.4"
_COLORS = {"critical": "Attention", "warning": "Warning", "info": "Accent"}


def teams_payload(notification: Notification) -> dict[str, Any]:
    n = notification
    color = "Good" if n.resolved else _COLORS.get(n.severity, "Default")
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": n.title,
            "weight": "Bolder",
            "size": "Large",
            "color": color,
            "wrap": True,
        },
        {"type": "TextBlock", "text": n.summary, "wrap": True},
    ]
    if n.description:
        body.append({"type": "TextBlock", "text": n.description, "wrap": True, "isSubtle": True})
    facts = [
        {"title": "Severity", "value": n.severity},
        {
            "title": "Resolved" if n.resolved else "Since",
            "value": rfc3339(n.ends_at or n.starts_at),
        },
        {"title": "Value", "value": n.value_text},
        {"title": "AlertRule", "value": n.source},
        *({"title": key, "value": value} for key, value in sorted(n.labels.items())),
    ]
    body.append({"type": "FactSet", "facts": facts})
    card = {
        "$schema": ADAPTIVE_CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": body,
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": ADAPTIVE_CARD_CONTENT_TYPE, "contentUrl": None, "content": card}
        ],
    }


class TeamsNotifier:
    kind = "teams"

    def __init__(
        self, webhook_url: str, *, http: httpx.AsyncClient, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self._url = webhook_url
        self._http = http
        self._timeout = timeout

    async def send(self, notification: Notification) -> None:
        body = json.dumps(teams_payload(notification)).encode()
        await post_json(self._http, self._url, body, timeout_seconds=self._timeout)
