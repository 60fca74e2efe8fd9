"""AlertRule: apply or prune the PrometheusRule, check that the channels' Secrets hold what
they should, evaluate the rules the operator evaluates itself, notify, and observe status.

Evaluation needs no timer or daemon of its own (they would put a finalizer on every
AlertRule): each reconcile evaluates when the evaluation is due and asks the resync loop to
visit again at the next one (``evaluation.interval``). A new generation is evaluated at once.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from devserver_operator import metrics
from devserver_operator.alerting.builtin import (
    MCPSERVER,
    WORKFLOWINTEGRATION,
    ResourceView,
    resource_view,
)
from devserver_operator.api import GROUP, VERSION
from devserver_operator.api.alertrule import AlertRuleSpec
from devserver_operator.api.conditions import ConditionStatus, now_utc
from devserver_operator.api.kinds import ALERTRULE
from devserver_operator.builders.common import Owner
from devserver_operator.builders.prometheusrule import (
    API_VERSION as PROMETHEUS_RULE_API_VERSION,
)
from devserver_operator.builders.prometheusrule import (
    KIND as PROMETHEUS_RULE_KIND,
)
from devserver_operator.builders.prometheusrule import build_prometheus_rule
from devserver_operator.kube.errors import ForbiddenError, InvalidError, NotFoundError
from devserver_operator.observe.alertrule import SetupView, alertrule_conditions, rule_entries
from devserver_operator.reconcile.context import OperatorContext
from devserver_operator.reconcile.kind import Kind, Outcome, Request, StalledError
from devserver_operator.reconcile.lookup import ChildKind
from devserver_operator.reconcile.validation import describe_validation_error
from devserver_operator.settings import OperatorSettings

from .channels import CHANNEL_SETUP_REASONS, SecretReader, build_notifiers
from .evaluation import ViewSource, evaluate_once, evaluation_view
from .memory import AlertingRuntime, AlertRuleMemory, SetupOutcome

INDEX_MCPSERVERS = "alertrule_mcpservers"
INDEX_WORKFLOWS = "alertrule_workflowintegrations"
PROMETHEUS_OPERATOR_MISSING = (
    "This cluster does not serve monitoring.coreos.com/v1 PrometheusRules: install Prometheus "
    "Operator (or at least its CRDs), or set spec.prometheusRule.enabled to false. The operator "
    "keeps evaluating the rules it can."
)
RuleCondition = tuple[ConditionStatus, str, str]


class AlertRuleKind(Kind):
    info = ALERTRULE
    children = (ChildKind(PROMETHEUS_RULE_API_VERSION, PROMETHEUS_RULE_KIND, "prometheusrules"),)
    refused_reasons = ("PrometheusRuleRejected", "Forbidden")
    refused_what = "the PrometheusRule"

    def new_state(self, settings: OperatorSettings) -> AlertingRuntime:
        return AlertingRuntime()

    async def close(self, state: Any) -> None:
        if isinstance(state, AlertingRuntime):
            await state.close()

    async def reconcile(self, request: Request) -> Outcome:
        runtime: AlertingRuntime = request.state
        memory = runtime.memory(request.owner.uid)
        try:
            spec = AlertRuleSpec.model_validate(request.body.get("spec") or {})
        except ValidationError as error:
            memory.setup = None
            raise StalledError(
                "InvalidSpec", describe_validation_error(error), fields={"prometheusRuleName": None}
            ) from error
        generation = request.generation
        rule_condition, rule_name, rejected = await _prometheus_rule(request, runtime, spec)
        stall = rejected or await _channel_problem(request, runtime, spec, memory)
        first_look = memory.setup is None or memory.setup.generation != generation
        memory.setup = SetupOutcome(
            generation,
            stalled=stall,
            prometheus_rule=rule_condition,
            prometheus_rule_name=rule_name,
            interval=spec.evaluation_settings.interval,
            rules_evaluated=len(spec.rules_evaluated_by_operator()),
            channels=len(spec.channels or []),
        )
        if not spec.rules_evaluated_by_operator():
            await _publish(request, spec, memory)
            return Outcome(result=stall[0] if stall else "ok")
        if first_look or time.monotonic() >= memory.next_evaluation:
            await _evaluate(request, spec, runtime, memory)
        else:
            await _publish(request, spec, memory)
        return Outcome(
            result=stall[0] if stall else "ok",
            visit_in=max(memory.next_evaluation - time.monotonic(), 0.0),
        )

    async def deleted(
        self, context: OperatorContext, owner: Owner, indexes: Mapping[str, Any]
    ) -> None:
        runtime: AlertingRuntime = context.states[self.info.kind]
        runtime.forget(owner.uid)
        for gauge in (metrics.ALERT_LAST_EVALUATION, metrics.ALERT_RULES_FIRING):
            with contextlib.suppress(KeyError):
                gauge.remove(owner.namespace, owner.name)

    def register(self, registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
        # The built-in conditions read small views, not whole bodies: tool lists can be long.
        # async: kopf would run plain functions in its thread pool, a costly hop per event.
        @kopf.index(GROUP, VERSION, "mcpservers", id=INDEX_MCPSERVERS, registry=registry)
        async def mcpserver_views(
            *, body: kopf.Body, namespace: str | None, **_: Any
        ) -> dict[str | None, ResourceView]:
            return {namespace: resource_view(MCPSERVER, body)}

        @kopf.index(GROUP, VERSION, "workflowintegrations", id=INDEX_WORKFLOWS, registry=registry)
        async def workflow_views(
            *, body: kopf.Body, namespace: str | None, **_: Any
        ) -> dict[str | None, ResourceView]:
            return {namespace: resource_view(WORKFLOWINTEGRATION, body)}


async def _prometheus_rule(
    request: Request, runtime: AlertingRuntime, spec: AlertRuleSpec
) -> tuple[RuleCondition | None, str | None, tuple[str, str] | None]:
    """(PrometheusRuleApplied as status/reason/message, the applied name, a Stalled problem)."""
    desired = build_prometheus_rule(request.owner, spec)
    if desired is None:
        await request.apply([])  # prunes one an earlier spec asked for
    if not spec.prometheus_rule_requested:
        return None, None, None
    if desired is None:
        message = "No rule has expr: built-in conditions exist in the operator only."
        return ("False", "NoExprRules", message), None, None
    context = request.context
    served = await runtime.prometheus_rules_served(
        context.kube, max_age=context.settings.resync_interval
    )
    missing: RuleCondition = (
        "False",
        "PrometheusOperatorNotInstalled",
        PROMETHEUS_OPERATOR_MISSING,
    )
    if not served:
        return missing, None, None
    try:
        await request.apply([desired])
    except NotFoundError:
        runtime.forget_api_check()  # the CRD went away since we last asked
        return missing, None, None
    except (InvalidError, ForbiddenError) as error:
        if isinstance(error, ForbiddenError) and "being terminated" in error.message:
            raise  # the frame lets the namespace take this object with it
        reason = "PrometheusRuleRejected" if isinstance(error, InvalidError) else "Forbidden"
        message = f"The API server refused the PrometheusRule: {error.message}"
        return ("False", reason, message), None, (reason, message)
    name = desired["metadata"]["name"]
    count = sum(len(group["rules"]) for group in desired["spec"]["groups"])
    message = f"PrometheusRule {request.owner.namespace}/{name} holds {count} rules."
    return ("True", "Applied", message), name, None


async def _channel_problem(
    request: Request, runtime: AlertingRuntime, spec: AlertRuleSpec, memory: AlertRuleMemory
) -> tuple[str, str] | None:
    """The first channel whose Secret is missing or wrong, as a Stalled problem.

    Secrets are read on create, update and resume; the periodic visits read them again only
    while a channel is broken, so that fixing the Secret is noticed without a spec change and
    a healthy AlertRule costs no reads. (A Secret that breaks later shows up when a
    notification needs it, as a delivery failure.)"""
    if not spec.evaluation_settings.enabled or not spec.channels:
        return None
    previous = memory.setup
    broken_before = (
        previous is not None
        and previous.stalled is not None
        and previous.stalled[0] in CHANNEL_SETUP_REASONS
    )
    changed = previous is None or previous.generation != request.generation
    if not (request.trigger == "change" or broken_before or changed):
        return None
    _, errors = await build_notifiers(
        spec.channels,
        SecretReader(request.context.kube, request.owner.namespace),
        http=runtime.http,
        ssl_context=runtime.ssl_context,
    )
    if not errors:
        return None
    first = errors[sorted(errors)[0]]
    return first.reason, first.message


async def _publish(request: Request, spec: AlertRuleSpec, memory: AlertRuleMemory) -> None:
    """Write the status the memory describes, if it differs."""
    setup = memory.setup
    if setup is None:
        return
    evaluation = None
    if spec.rules_evaluated_by_operator():
        evaluation = evaluation_view(spec, memory)
    conditions = alertrule_conditions(
        SetupView(setup.stalled, setup.prometheus_rule, setup.prometheus_rule_name), evaluation
    )
    fields: dict[str, Any] = {"prometheusRuleName": setup.prometheus_rule_name}
    if evaluation is not None:
        previous = request.status.status.get("rules")
        fields["rules"] = rule_entries(evaluation.rules, previous, now_utc())
        fields["firing"] = sum(rule.state == "firing" for rule in evaluation.rules)
    else:  # nothing evaluated any more: drop what an earlier spec left
        fields["rules"] = None
        fields["firing"] = None
    await request.status.write(conditions, generation=setup.generation, fields=fields)


async def _evaluate(
    request: Request, spec: AlertRuleSpec, runtime: AlertingRuntime, memory: AlertRuleMemory
) -> None:
    """One evaluation, then the status it leads to."""
    owner = request.owner
    memory.next_evaluation = time.monotonic() + spec.evaluation_settings.interval_seconds

    def post(type_: str, reason: str, message: str) -> None:
        request.event("Warning" if type_ == "Warning" else "Normal", reason, message)

    await evaluate_once(
        spec=spec,
        namespace=owner.namespace,
        name=owner.name,
        status=request.status.status,
        memory=memory,
        runtime=runtime,
        kube=request.context.kube,
        views=_index_views(request.indexes),
        # Full precision: `for` and repeatInterval are measured with it (status shows seconds).
        now=datetime.now(UTC),
        post=post,
    )
    await _publish(request, spec, memory)
    metrics.ALERT_LAST_EVALUATION.labels(owner.namespace, owner.name).set(time.time())
    firing = sum(
        any(alert.state == "firing" for alert in alerts.values())
        for alerts in memory.alerts.values()
    )
    metrics.ALERT_RULES_FIRING.labels(owner.namespace, owner.name).set(firing)


def _index_views(indexes: Mapping[str, Any]) -> ViewSource:
    by_kind = {
        MCPSERVER: indexes.get(INDEX_MCPSERVERS),
        WORKFLOWINTEGRATION: indexes.get(INDEX_WORKFLOWS),
    }

    def views(kind: str, namespace: str) -> list[ResourceView]:
        index = by_kind.get(kind)
        return [] if index is None else list(index.get(namespace, []))

    return views


KIND = AlertRuleKind()
