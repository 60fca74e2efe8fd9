"""Alert notifiers: Slack incoming webhooks, Microsoft Teams Workflows webhooks, generic JSON
webhooks (Alertmanager's format, optionally HMAC-signed) and e-mail over SMTP.

Each notifier sends one :class:`~devserver_operator.alerting.notification.Notification` and
raises :class:`DeliveryError` (a message without URLs or secrets) when it did not arrive;
:func:`deliver` adds bounded retries. Secrets (webhook URLs, signing keys, SMTP passwords) are
handed in by the caller, which reads them from referenced Secrets.
"""

from .base import DeliveryError, Notifier, deliver
from .email import EmailNotifier, SmtpTarget, email_message
from .slack import SlackNotifier, slack_payload
from .teams import TeamsNotifier, teams_payload
from .webhook import SIGNATURE_HEADER, WebhookNotifier, signature, webhook_payload

__all__ = [
    "SIGNATURE_HEADER",
    "DeliveryError",
    "EmailNotifier",
    "Notifier",
    "SlackNotifier",
    "SmtpTarget",
    "TeamsNotifier",
    "WebhookNotifier",
    "deliver",
    "email_message",
    "signature",
    "slack_payload",
    "teams_payload",
    "webhook_payload",
]
