"""E-mail over SMTP with the standard library, in a worker thread (smtplib blocks).

``tls: starttls`` connects in plain text and upgrades with STARTTLS before anything else is
said; a server that does not offer STARTTLS gets nothing (no silent fallback to plain text).
``tls: tls`` speaks TLS from the first byte (port 465). ``tls: none`` is for relays on a
trusted network and never carries credentials (the CRD refuses that combination).
Certificates are verified against the system's trust store (``SSL_CERT_FILE`` and
``SSL_CERT_DIR`` add a private CA).
"""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Literal

from devserver_operator.alerting.notification import Notification, rfc3339

from .base import DEFAULT_TIMEOUT, DeliveryError

TlsMode = Literal["starttls", "tls", "none"]
MAX_QUOTED_REPLY = 200


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    tls: TlsMode
    sender: str
    recipients: tuple[str, ...]
    username: str | None = None
    password: str | None = None


def email_message(
    notification: Notification, sender: str, recipients: tuple[str, ...]
) -> EmailMessage:
    n = notification
    message = EmailMessage()
    message["Subject"] = f"{n.title} ({n.severity}) - {n.source}"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(n.ends_at or n.starts_at)
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1])
    message["X-Devserver-Alert-Fingerprint"] = n.fingerprint
    message["X-Devserver-Alert-Status"] = n.status
    lines = [n.title, "", n.summary]
    if n.description:
        lines += ["", n.description]
    lines += [
        "",
        f"Severity:  {n.severity}",
        f"{'Resolved:' if n.resolved else 'Since:   '}  {rfc3339(n.ends_at or n.starts_at)}",
        f"Value:     {n.value_text}",
        f"AlertRule: {n.source}",
        "",
        "Labels:",
        *(f"  {key}={value}" for key, value in sorted(n.labels.items())),
    ]
    message.set_content("\n".join(lines) + "\n")
    return message


class EmailNotifier:
    kind = "email"

    def __init__(
        self,
        target: SmtpTarget,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._target = target
        self._ssl = ssl_context or ssl.create_default_context()
        self._timeout = timeout

    async def send(self, notification: Notification) -> None:
        message = email_message(notification, self._target.sender, self._target.recipients)
        await asyncio.to_thread(self._send_blocking, message)

    def _send_blocking(self, message: EmailMessage) -> None:
        target = self._target
        # EHLO with the plain host name: socket.getfqdn() (smtplib's default) may wait on DNS.
        local = socket.gethostname() or "localhost"
        try:
            client: smtplib.SMTP
            if target.tls == "tls":
                client = smtplib.SMTP_SSL(
                    target.host,
                    target.port,
                    local_hostname=local,
                    timeout=self._timeout,
                    context=self._ssl,
                )
            else:
                client = smtplib.SMTP(
                    target.host, target.port, local_hostname=local, timeout=self._timeout
                )
            with client:
                client.ehlo()
                if target.tls == "starttls":
                    client.starttls(context=self._ssl)
                    client.ehlo()
                if target.username is not None and target.password is not None:
                    client.login(target.username, target.password)
                client.send_message(message)
        except smtplib.SMTPNotSupportedError as error:
            raise DeliveryError(
                f"the SMTP server does not offer what tls: {target.tls} needs ({_reply(error)})",
                transient=False,
            ) from error
        except smtplib.SMTPAuthenticationError as error:
            raise DeliveryError(f"SMTP login refused: {_reply(error)}", transient=False) from error
        except smtplib.SMTPRecipientsRefused as error:
            raise DeliveryError(
                f"SMTP server refused the recipients {sorted(error.recipients)}", transient=False
            ) from error
        except smtplib.SMTPResponseException as error:
            raise DeliveryError(
                f"SMTP error {error.smtp_code}: {_reply(error)}",
                transient=400 <= error.smtp_code < 500,
            ) from error
        except ssl.SSLError as error:
            raise DeliveryError(
                f"TLS with the SMTP server failed: {error.reason or type(error).__name__}",
                transient=False,
            ) from error
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryError(
                f"SMTP connection to {target.host}:{target.port} failed: "
                f"{type(error).__name__}: {error}",
                transient=True,
            ) from error


def _reply(error: smtplib.SMTPException) -> str:
    text = getattr(error, "smtp_error", b"")
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return (str(text) or str(error))[:MAX_QUOTED_REPLY]
