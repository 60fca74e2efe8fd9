"""AlertRule: a PrometheusRule where Prometheus Operator runs, and/or evaluation by the operator
with notifications to Slack, Microsoft Teams, webhooks and e-mail."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from .base import ApiModel, Duration, LabelMap, ObjectName, list_map
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
ALERT_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"


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
    for_: Duration | None = Field(default=None, alias="for")
    """How long the condition must hold before the alert fires (pending until then)."""
    keep_firing_for: Duration | None = None
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


class PrometheusRuleSpec(ApiModel):
    """The monitoring.coreos.com/v1 PrometheusRule for clusters with Prometheus Operator."""

    enabled: bool = True
    """Render and apply a PrometheusRule for the expr rules."""
    labels: LabelMap | None = None
    """Labels that the Prometheus ruleSelector matches, e.g. release: kube-prometheus-stack."""


class Evaluation(ApiModel):
    """Evaluation by the operator itself."""

    enabled: bool = True
    """Evaluate in the operator and send notifications to the channels."""
    prometheus_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$", max_length=2048)
    """Prometheus HTTP API base URL for expr rules, e.g. http://prometheus.monitoring:9090."""
    interval: Duration = "30s"
    """How often the rules are evaluated."""
    timeout: Duration = "10s"
    """Timeout of one query."""


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

    url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$", max_length=2048)
    """Target URL (use urlSecretRef when the URL carries a token)."""
    url_secret_ref: SecretKeyRef | None = None
    """Secret key holding the target URL."""
    hmac_secret_ref: SecretKeyRef | None = None
    """Sign the body with HMAC-SHA256 (header X-Devserver-Signature: sha256=<hex>)."""


class EmailChannel(ApiModel):
    """E-mail over SMTP."""

    smtp_host: str = Field(min_length=1, max_length=253)
    """SMTP server host."""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    """SMTP server port."""
    tls: Literal["starttls", "tls", "none"] = "starttls"
    """STARTTLS after connecting, TLS from the start, or none (local relays only)."""
    from_: str = Field(alias="from", pattern=r"^[^@\s]+@[^@\s]+$", max_length=254)
    """Sender address."""
    to: list[str] = Field(min_length=1, max_length=50)
    """Recipient addresses."""
    username_secret_ref: SecretKeyRef | None = None
    """Secret key holding the SMTP user name."""
    password_secret_ref: SecretKeyRef | None = None
    """Secret key holding the SMTP password."""


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
    """Rate limit of this channel; further notifications are dropped and counted."""

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


class RuleStatus(ApiModel):
    """State of one rule."""

    name: str
    """Alert name."""
    state: AlertState = "inactive"
    """inactive, pending or firing."""
    active_since: datetime | None = None
    """When the condition started to hold."""
    last_evaluation_time: datetime | None = None
    """When the rule was last evaluated."""
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
    """Ready, Reconciling, Stalled, PrometheusRuleApplied and Evaluating."""
    rules: list[RuleStatus] | None = Field(default=None, json_schema_extra=list_map("name"))
    """Per rule state."""
    firing: int | None = None
    """Rules firing now."""
    prometheus_rule_name: str | None = None
    """Name of the applied PrometheusRule."""
