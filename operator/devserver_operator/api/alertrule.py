"""AlertRule: a PrometheusRule where Prometheus Operator runs, and/or evaluation by the operator
with notifications to Slack, Microsoft Teams, webhooks and e-mail."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from .base import ApiModel, Duration, LabelMap, ObjectName, list_map, parse_duration
from .conditions import Condition
from .refs import SecretKeyRef

BuiltinCondition = Literal["MCPServerNotReady", "MCPServerNoTools", "WorkflowSyncFailing"]
AlertState = Literal["inactive", "pending", "firing"]

ONE_CONDITION_MESSAGE = "a rule needs exactly one of expr (PromQL) or builtin"
ONE_CHANNEL_MESSAGE = "a channel needs exactly one of slack, teams, webhook, email"
EXPR_NEEDS_PROMETHEUS_MESSAGE = (
    "rules with expr need prometheusRule.enabled or evaluation.prometheusUrl"
)
BUILTIN_NEEDS_EVALUATION_MESSAGE = (
    "builtin rules are evaluated by the operator: evaluation.enabled must not be false"
)
WEBHOOK_ONE_TARGET_MESSAGE = "a webhook channel needs exactly one of url or urlSecretRef"
SMTP_CREDENTIALS_PAIR_MESSAGE = "usernameSecretRef and passwordSecretRef go together"
SMTP_LOGIN_NEEDS_TLS_MESSAGE = (
    "SMTP credentials are only sent encrypted: set tls to starttls or tls"
)
MIN_INTERVAL_SECONDS = 1.0
INTERVAL_TOO_SHORT_MESSAGE = "evaluation.interval must be at least 1s"
ALERT_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
EMAIL_ADDRESS_PATTERN = r"^[^@\s]+@[^@\s]+$"

# Prometheus's own duration syntax (what PrometheusRule's `for` and `keep_firing_for` accept):
# units from years down to milliseconds, each at most once and in that order, no fractions.
PROMETHEUS_DURATION_PATTERN = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
_PROMETHEUS_UNIT_SECONDS = {
    "y": 365 * 86400.0,
    "w": 7 * 86400.0,
    "d": 86400.0,
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 0.001,
}
_PROMETHEUS_PART = re.compile(r"([0-9]+)(ms|y|w|d|h|m|s)")


def parse_prometheus_duration(text: str) -> float:
    """Seconds in a Prometheus duration such as ``5m``, ``1h30m`` or ``2d``."""
    if not text or not re.fullmatch(PROMETHEUS_DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a Prometheus duration such as 30s, 5m, 1h30m or 1d")
    return sum(
        float(n) * _PROMETHEUS_UNIT_SECONDS[unit] for n, unit in _PROMETHEUS_PART.findall(text)
    )


def _check_prometheus_duration(text: str) -> str:
    parse_prometheus_duration(text)
    return text


PrometheusDuration = Annotated[
    str,
    Field(pattern=PROMETHEUS_DURATION_PATTERN, min_length=1, max_length=32),
    AfterValidator(_check_prometheus_duration),
]
"""A Prometheus duration such as ``30s``, ``5m``, ``1h30m`` or ``1d`` (no fractions)."""

EmailAddress = Annotated[str, Field(pattern=EMAIL_ADDRESS_PATTERN, max_length=254)]


class BuiltinRule(ApiModel):
    """A condition on this project's own resources, evaluated without Prometheus."""

    condition: BuiltinCondition
    """MCPServerNotReady, MCPServerNoTools or WorkflowSyncFailing."""
    names: list[ObjectName] | None = Field(default=None, max_length=128)
    """Limit to these resources in the namespace; all of the kind when empty."""


class Rule(ApiModel):
    """One alert."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {"rule": "has(self.expr) != has(self.builtin)", "message": ONE_CONDITION_MESSAGE}
            ]
        }
    }

    name: str = Field(pattern=ALERT_NAME_PATTERN, max_length=128)
    """Alert name (the alertname label), e.g. McpServerDown."""
    expr: str | None = Field(default=None, min_length=1, max_length=4096)
    """PromQL expression; every series it returns is an active alert."""
    builtin: BuiltinRule | None = None
    """A built-in condition instead of PromQL."""
    for_: PrometheusDuration | None = Field(default=None, alias="for")
    """How long the condition must hold before the alert fires (pending until then)."""
    keep_firing_for: PrometheusDuration | None = None
    """How long the alert keeps firing after the condition clears."""
    severity: Literal["critical", "warning", "info"] = "warning"
    """Severity label."""
    labels: LabelMap | None = None
    """Extra labels of the alert."""
    annotations: dict[str, str] | None = None
    """Annotations such as summary and description; {{ $labels.x }} and {{ $value }} expand."""

    @model_validator(mode="after")
    def _one_condition(self) -> Rule:
        if (self.expr is None) == (self.builtin is None):
            raise ValueError(ONE_CONDITION_MESSAGE)
        return self

    @property
    def for_seconds(self) -> float:
        return parse_prometheus_duration(self.for_) if self.for_ else 0.0

    @property
    def keep_firing_for_seconds(self) -> float:
        return parse_prometheus_duration(self.keep_firing_for) if self.keep_firing_for else 0.0


class PrometheusRuleSpec(ApiModel):
    """The monitoring.coreos.com/v1 PrometheusRule for clusters with Prometheus Operator."""

    enabled: bool = True
    """Render and apply a PrometheusRule for the expr rules."""
    labels: LabelMap | None = None
    """Labels that the Prometheus ruleSelector matches, e.g. release: kube-prometheus-stack."""


class Evaluation(ApiModel):
    """Evaluation by the operator itself."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.interval) || duration(self.interval) >= duration('1s')",
                    "message": INTERVAL_TOO_SHORT_MESSAGE,
                }
            ]
        }
    }

    enabled: bool = True
    """Evaluate in the operator and send notifications to the channels."""
    prometheus_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$", max_length=2048)
    """Prometheus HTTP API base URL for expr rules, e.g. http://prometheus.monitoring:9090."""
    interval: Duration = "30s"
    """How often the rules are evaluated."""
    timeout: Duration = "10s"
    """Timeout of one query."""

    @model_validator(mode="after")
    def _interval_floor(self) -> Evaluation:
        if parse_duration(self.interval) < MIN_INTERVAL_SECONDS:
            raise ValueError(INTERVAL_TOO_SHORT_MESSAGE)
        return self

    @property
    def interval_seconds(self) -> float:
        return parse_duration(self.interval)

    @property
    def timeout_seconds(self) -> float:
        return parse_duration(self.timeout)


class SlackChannel(ApiModel):
    """A Slack incoming webhook."""

    webhook_url_secret_ref: SecretKeyRef
    """Secret key holding the webhook URL (it is a credential)."""
    channel: str | None = Field(default=None, max_length=80)
    """Override the webhook's channel."""


class TeamsChannel(ApiModel):
    """A Microsoft Teams incoming webhook (or Workflows webhook)."""

    webhook_url_secret_ref: SecretKeyRef
    """Secret key holding the webhook URL."""


class WebhookChannel(ApiModel):
    """A generic JSON webhook, an n8n webhook included."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.url) != has(self.urlSecretRef)",
                    "message": WEBHOOK_ONE_TARGET_MESSAGE,
                }
            ]
        }
    }

    url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$", max_length=2048)
    """Target URL (use urlSecretRef when the URL carries a token)."""
    url_secret_ref: SecretKeyRef | None = None
    """Secret key holding the target URL."""
    hmac_secret_ref: SecretKeyRef | None = None
    """Sign the body with HMAC-SHA256 (header X-Devserver-Signature: sha256=<hex>)."""

    @model_validator(mode="after")
    def _one_target(self) -> WebhookChannel:
        if (self.url is None) == (self.url_secret_ref is None):
            raise ValueError(WEBHOOK_ONE_TARGET_MESSAGE)
        return self


class EmailChannel(ApiModel):
    """E-mail over SMTP."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.usernameSecretRef) == has(self.passwordSecretRef)",
                    "message": SMTP_CREDENTIALS_PAIR_MESSAGE,
                },
                {
                    "rule": "!has(self.passwordSecretRef) || !has(self.tls) || self.tls != 'none'",
                    "message": SMTP_LOGIN_NEEDS_TLS_MESSAGE,
                },
            ]
        }
    }

    smtp_host: str = Field(min_length=1, max_length=253)
    """SMTP server host."""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    """SMTP server port."""
    tls: Literal["starttls", "tls", "none"] = "starttls"
    """STARTTLS after connecting, TLS from the start, or none (local relays only)."""
    from_: EmailAddress = Field(alias="from")
    """Sender address."""
    to: list[EmailAddress] = Field(min_length=1, max_length=50)
    """Recipient addresses."""
    username_secret_ref: SecretKeyRef | None = None
    """Secret key holding the SMTP user name."""
    password_secret_ref: SecretKeyRef | None = None
    """Secret key holding the SMTP password."""

    @model_validator(mode="after")
    def _credentials(self) -> EmailChannel:
        if (self.username_secret_ref is None) != (self.password_secret_ref is None):
            raise ValueError(SMTP_CREDENTIALS_PAIR_MESSAGE)
        if self.password_secret_ref is not None and self.tls == "none":
            raise ValueError(SMTP_LOGIN_NEEDS_TLS_MESSAGE)
        return self


class Channel(ApiModel):
    """Where notifications go."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "[has(self.slack), has(self.teams), has(self.webhook), has(self.email)]"
                    ".filter(x, x).size() == 1",
                    "message": ONE_CHANNEL_MESSAGE,
                }
            ]
        }
    }

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    """Channel name."""
    slack: SlackChannel | None = None
    """Slack incoming webhook."""
    teams: TeamsChannel | None = None
    """Microsoft Teams webhook."""
    webhook: WebhookChannel | None = None
    """Generic JSON webhook."""
    email: EmailChannel | None = None
    """E-mail over SMTP."""
    max_per_hour: int = Field(default=60, ge=1, le=3600)
    """Rate limit of this channel (notifications in any 60 minutes); further notifications are
    dropped and counted (metric devserver_alert_notifications_total{result="rate_limited"})."""

    @model_validator(mode="after")
    def _one_kind(self) -> Channel:
        if sum(c is not None for c in (self.slack, self.teams, self.webhook, self.email)) != 1:
            raise ValueError(ONE_CHANNEL_MESSAGE)
        return self


class AlertRuleSpec(ApiModel):
    """Desired alerts and where to send them."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "!self.rules.exists(r, has(r.expr)) || "
                    "(has(self.prometheusRule) && (!has(self.prometheusRule.enabled) || "
                    "self.prometheusRule.enabled)) || "
                    "(has(self.evaluation) && has(self.evaluation.prometheusUrl))",
                    "message": EXPR_NEEDS_PROMETHEUS_MESSAGE,
                },
                {
                    "rule": "!self.rules.exists(r, has(r.builtin)) || !has(self.evaluation) || "
                    "!has(self.evaluation.enabled) || self.evaluation.enabled",
                    "message": BUILTIN_NEEDS_EVALUATION_MESSAGE,
                },
            ]
        }
    }

    rules: list[Rule] = Field(min_length=1, max_length=100, json_schema_extra=list_map("name"))
    """The alerts."""
    prometheus_rule: PrometheusRuleSpec | None = None
    """Render a PrometheusRule for Prometheus Operator."""
    evaluation: Evaluation | None = None
    """Evaluate in the operator and notify the channels."""
    channels: list[Channel] | None = Field(
        default=None, max_length=20, json_schema_extra=list_map("name")
    )
    """Notification channels (operator-side evaluation)."""
    repeat_interval: Duration = "4h"
    """Send a firing alert again after this long."""
    send_resolved: bool = True
    """Send a notice when an alert resolves."""

    @model_validator(mode="after")
    def _cross_field_rules(self) -> AlertRuleSpec:
        has_expr = any(rule.expr is not None for rule in self.rules)
        prom_rule = self.prometheus_rule is not None and self.prometheus_rule.enabled
        prom_url = self.evaluation is not None and self.evaluation.prometheus_url is not None
        if has_expr and not (prom_rule or prom_url):
            raise ValueError(EXPR_NEEDS_PROMETHEUS_MESSAGE)
        has_builtin = any(rule.builtin is not None for rule in self.rules)
        if has_builtin and self.evaluation is not None and not self.evaluation.enabled:
            raise ValueError(BUILTIN_NEEDS_EVALUATION_MESSAGE)
        return self

    @property
    def evaluation_settings(self) -> Evaluation:
        """Evaluation in the operator is on unless switched off."""
        return self.evaluation or Evaluation()

    @property
    def prometheus_rule_requested(self) -> bool:
        """Whether a PrometheusRule is wanted (it holds the expr rules only)."""
        return self.prometheus_rule is not None and self.prometheus_rule.enabled

    def rules_evaluated_by_operator(self) -> list[Rule]:
        """Builtin rules always; expr rules when a Prometheus URL is given."""
        settings = self.evaluation_settings
        if not settings.enabled:
            return []
        return [
            rule
            for rule in self.rules
            if rule.builtin is not None or settings.prometheus_url is not None
        ]

    @property
    def repeat_interval_seconds(self) -> float:
        return parse_duration(self.repeat_interval)


class RuleStatus(ApiModel):
    """State of one rule the operator evaluates."""

    name: str
    """Alert name."""
    state: AlertState = "inactive"
    """inactive, pending (the condition holds, for has not passed) or firing."""
    active_since: datetime | None = None
    """When the condition started to hold (the earliest of the active alerts)."""
    last_evaluation_time: datetime | None = None
    """The evaluation that last changed this rule's status. Written only on changes, so that
    an idle rule costs no API write per interval; see the metric
    devserver_alertrule_last_evaluation_timestamp_seconds for liveness."""
    last_notification_time: datetime | None = None
    """When a notification for the rule was last sent."""
    notifications_sent: int | None = None
    """Notifications sent for the rule (all channels)."""
    active_alerts: int | None = None
    """Series (or resources) for which the condition holds."""
    last_error: str | None = None
    """Last evaluation or delivery error."""


class AlertRuleStatus(ApiModel):
    """Observed state of the alerts."""

    observed_generation: int | None = None
    """The .metadata.generation last reconciled."""
    conditions: list[Condition] | None = Field(
        default=None,
        json_schema_extra=list_map("type"),
    )
    """Ready, Reconciling, Stalled, PrometheusRuleApplied, Evaluating and Delivering."""
    rules: list[RuleStatus] | None = Field(default=None, json_schema_extra=list_map("name"))
    """Per rule state, for the rules the operator evaluates."""
    firing: int | None = None
    """Rules firing now."""
    prometheus_rule_name: str | None = None
    """Name of the applied PrometheusRule."""
