"""A generic JSON webhook (n8n's Webhook node included), in Alertmanager's webhook format
(version 4), so that anything that already consumes Alertmanager webhooks understands it.
One request carries one alert.

With a signing key, the exact body bytes are signed with HMAC-SHA256 and the digest is sent
as ``X-Devserver-Signature: sha256=<hex>``; the receiver recomputes it over the raw body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

from devserver_operator.alerting.notification import Notification, rfc3339

from .base import DEFAULT_TIMEOUT
from .http import post_json

SIGNATURE_HEADER = "X-Devserver-Signature"
WEBHOOK_VERSION = "4"
# Alertmanager's way of saying "not ended yet": Go's zero time.
NOT_ENDED = "0001-01-01T00:00:00Z"


def webhook_payload(notification: Notification) -> dict[str, Any]:
    n = notification
    alert = {
        "status": n.status,
        "labels": dict(sorted(n.labels.items())),
        "annotations": dict(sorted(n.annotations.items())),
        "startsAt": rfc3339(n.starts_at),
        "endsAt": rfc3339(n.ends_at) if n.ends_at else NOT_ENDED,
        "generatorURL": "",
        "fingerprint": n.fingerprint,
        "value": n.value_text,
    }
    return {
        "version": WEBHOOK_VERSION,
        "groupKey": f"{n.source}:{n.fingerprint}",
        "truncatedAlerts": 0,
        "status": n.status,
        "receiver": f"{n.source}/{n.channel}",
        "groupLabels": {"alertname": n.alert_name},
        "commonLabels": alert["labels"],
        "commonAnnotations": alert["annotations"],
        "externalURL": "",
        "alerts": [alert],
    }


def signature(key: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


class WebhookNotifier:
    kind = "webhook"

    def __init__(
        self,
        url: str,
        *,
        http: httpx.AsyncClient,
        hmac_key: bytes | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._url = url
        self._http = http
        self._key = hmac_key
        self._timeout = timeout

    async def send(self, notification: Notification) -> None:
        body = json.dumps(webhook_payload(notification), separators=(",", ":")).encode()
        headers = {SIGNATURE_HEADER: signature(self._key, body)} if self._key else None
        await post_json(self._http, self._url, body, headers=headers, timeout_seconds=self._timeout)
