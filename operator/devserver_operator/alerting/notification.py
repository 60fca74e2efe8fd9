"""What a channel is told about one alert: everything a notifier renders, nothing secret."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from .state import Alert
from .templates import format_value

NotificationStatus = Literal["firing", "resolved"]


@dataclass(frozen=True)
class Notification:
    status: NotificationStatus
    alert_name: str
    severity: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    value: float
    starts_at: datetime
    ends_at: datetime | None
    fingerprint: str
    namespace: str
    """Namespace of the AlertRule."""
    alert_rule: str
    """Name of the AlertRule."""
    channel: str
    """Name of the channel in the AlertRule."""

    @classmethod
    def of(
        cls,
        alert: Alert,
        status: NotificationStatus,
        *,
        namespace: str,
        alert_rule: str,
        channel: str,
    ) -> Notification:
        return cls(
            status=status,
            alert_name=alert.labels.get("alertname", alert.rule),
            severity=alert.labels.get("severity", "warning"),
            labels=dict(alert.labels),
            annotations=dict(alert.annotations),
            value=alert.value,
            starts_at=alert.active_since,
            ends_at=alert.resolved_at if status == "resolved" else None,
            fingerprint=alert.fingerprint,
            namespace=namespace,
            alert_rule=alert_rule,
            channel=channel,
        )

    @property
    def title(self) -> str:
        """``[FIRING] McpServerDown`` or ``[RESOLVED] McpServerDown``."""
        return f"[{self.status.upper()}] {self.alert_name}"

    @property
    def summary(self) -> str:
        """The summary annotation, or a sentence made from the alert name."""
        summary = self.annotations.get("summary")
        if summary:
            return summary
        return (
            f"{self.alert_name} has resolved" if self.resolved else f"{self.alert_name} is firing"
        )

    @property
    def description(self) -> str:
        return self.annotations.get("description", "")

    @property
    def resolved(self) -> bool:
        return self.status == "resolved"

    @property
    def source(self) -> str:
        """``namespace/name`` of the AlertRule."""
        return f"{self.namespace}/{self.alert_rule}"

    @property
    def value_text(self) -> str:
        return format_value(self.value)


def rfc3339(moment: datetime) -> str:
    """``2027-01-31T09:30:00Z``: whole seconds, as Kubernetes shows times."""
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")
