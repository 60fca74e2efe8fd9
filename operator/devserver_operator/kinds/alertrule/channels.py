"""Turn an AlertRule's channels into notifiers, reading the Secrets they reference.

Values never leave this module except inside a notifier; every error names the Secret, the
key and the field that referenced it, never what the Secret holds.
"""

from __future__ import annotations

import base64
import binascii
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from devserver_operator.api.alertrule import Channel
from devserver_operator.api.refs import SecretKeyRef
from devserver_operator.integrations.notifiers import (
    EmailNotifier,
    Notifier,
    SlackNotifier,
    SmtpTarget,
    TeamsNotifier,
    WebhookNotifier,
)
from devserver_operator.kube.client import KubeClient
from devserver_operator.kube.errors import ForbiddenError

# Why a channel cannot be set up; each is a Stalled reason (the spec or a Secret must change).
CHANNEL_SETUP_REASONS = frozenset(
    {"SecretNotFound", "SecretKeyNotFound", "SecretForbidden", "InvalidSecretValue"}
)


class ChannelSetupError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class SecretReader:
    """Reads each referenced Secret once per use (so one evaluation sees one version)."""

    kube: KubeClient
    namespace: str
    _cache: dict[str, dict[str, str] | None] = field(default_factory=dict)

    async def value(self, ref: SecretKeyRef, field_path: str) -> str:
        if ref.name not in self._cache:
            try:
                secret = await self.kube.get("v1", "Secret", ref.name, self.namespace)
            except ForbiddenError as error:
                raise ChannelSetupError(
                    "SecretForbidden",
                    f"{field_path}: the operator may not read Secret {self.namespace}/{ref.name}",
                ) from error
            self._cache[ref.name] = None if secret is None else dict(secret.get("data") or {})
        data = self._cache[ref.name]
        if data is None:
            raise ChannelSetupError(
                "SecretNotFound", f"{field_path}: Secret {self.namespace}/{ref.name} does not exist"
            )
        if ref.key not in data:
            raise ChannelSetupError(
                "SecretKeyNotFound",
                f"{field_path}: Secret {self.namespace}/{ref.name} has no key {ref.key}",
            )
        try:
            # Surrounding whitespace (the newline `echo` leaves) is never part of a URL or key.
            return base64.b64decode(data[ref.key], validate=True).decode().strip()
        except (binascii.Error, UnicodeDecodeError) as error:
            raise ChannelSetupError(
                "InvalidSecretValue",
                f"{field_path}: key {ref.key} of Secret {self.namespace}/{ref.name} is not "
                "UTF-8 text",
            ) from error

    async def url(self, ref: SecretKeyRef, field_path: str) -> str:
        value = await self.value(ref, field_path)
        if not value.startswith(("http://", "https://")) or any(c.isspace() for c in value):
            raise ChannelSetupError(
                "InvalidSecretValue",
                f"{field_path}: key {ref.key} of Secret {self.namespace}/{ref.name} does not hold "
                "an http(s) URL",
            )
        return value


async def build_notifier(
    channel: Channel,
    secrets: SecretReader,
    *,
    http: httpx.AsyncClient,
    ssl_context: ssl.SSLContext | None = None,
    timeout_seconds: float = 10.0,
) -> Notifier:
    """The notifier of one channel; raises ChannelSetupError naming the field at fault."""
    path = f"spec.channels[{channel.name}]"
    if channel.slack is not None:
        url = await secrets.url(
            channel.slack.webhook_url_secret_ref, f"{path}.slack.webhookUrlSecretRef"
        )
        return SlackNotifier(url, http=http, channel=channel.slack.channel, timeout=timeout_seconds)
    if channel.teams is not None:
        url = await secrets.url(
            channel.teams.webhook_url_secret_ref, f"{path}.teams.webhookUrlSecretRef"
        )
        return TeamsNotifier(url, http=http, timeout=timeout_seconds)
    if channel.webhook is not None:
        hook = channel.webhook
        if hook.url_secret_ref is not None:
            url = await secrets.url(hook.url_secret_ref, f"{path}.webhook.urlSecretRef")
        else:
            assert hook.url is not None  # the model requires one of them
            url = hook.url
        key = None
        if hook.hmac_secret_ref is not None:
            key = (
                await secrets.value(hook.hmac_secret_ref, f"{path}.webhook.hmacSecretRef")
            ).encode()
        return WebhookNotifier(url, http=http, hmac_key=key, timeout=timeout_seconds)
    email = channel.email
    assert email is not None  # exactly one kind, by the model
    username = password = None
    if email.username_secret_ref is not None and email.password_secret_ref is not None:
        username = await secrets.value(email.username_secret_ref, f"{path}.email.usernameSecretRef")
        password = await secrets.value(email.password_secret_ref, f"{path}.email.passwordSecretRef")
    target = SmtpTarget(
        host=email.smtp_host,
        port=email.smtp_port,
        tls=email.tls,
        sender=email.from_,
        recipients=tuple(email.to),
        username=username,
        password=password,
    )
    return EmailNotifier(target, ssl_context=ssl_context, timeout=timeout_seconds)


async def build_notifiers(
    channels: Sequence[Channel],
    secrets: SecretReader,
    *,
    http: httpx.AsyncClient,
    ssl_context: ssl.SSLContext | None = None,
) -> tuple[dict[str, Notifier], dict[str, ChannelSetupError]]:
    """Notifiers of the channels that can be set up, and the errors of those that cannot:
    one broken channel never keeps the others from working."""
    notifiers: dict[str, Notifier] = {}
    errors: dict[str, ChannelSetupError] = {}
    for channel in channels:
        try:
            notifiers[channel.name] = await build_notifier(
                channel, secrets, http=http, ssl_context=ssl_context
            )
        except ChannelSetupError as error:
            errors[channel.name] = error
    return notifiers, errors
