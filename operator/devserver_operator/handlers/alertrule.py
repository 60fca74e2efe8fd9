"""AlertRule handlers.

Two loops per AlertRule, both level-based:

- ``reconcile`` (create, update, resume, the periodic resync, and events of the owned
  PrometheusRule): parse the spec, apply or prune the PrometheusRule, check that the
  channels' Secrets hold what they should, and write status.
- a daemon that evaluates the rules every ``evaluation.interval`` (a per-object interval,
  which a kopf timer cannot have), notifies the channels and writes status when something
  changed. An update wakes it at once.

Both write status through ``_publish`` under the object's lock, from the same memory, so
they never undo each other's conditions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
from devserver_operator.builders.common import MANAGER, OWNER_KIND_LABEL, OWNER_NAME_LABEL, Owner
from devserver_operator.builders.prometheusrule import (
    API_VERSION as PROMETHEUS_RULE_API_VERSION,
)
from devserver_operator.builders.prometheusrule import (
    KIND as PROMETHEUS_RULE_KIND,
)
from devserver_operator.builders.prometheusrule import (
    build_prometheus_rule,
    prometheus_rule_name,
)
from devserver_operator.kube.children import apply_children, prune_children
from devserver_operator.kube.errors import (
    ForbiddenError,
    InvalidError,
    KubeApiError,
    KubeUnavailableError,
    NotFoundError,
)
from devserver_operator.settings import OperatorSettings

from .alertrule_channels import CHANNEL_SETUP_REASONS, SecretReader, build_notifiers
from .alertrule_evaluation import ViewSource, evaluate_once, evaluation_view
from .alertrule_memory import AlertingRuntime, AlertRuleMemory, SetupOutcome, runtime_from
from .alertrule_status import SetupView, alertrule_conditions, rule_entries
from .context import OperatorContext, RecentWrites, context_from
from .events import post_event
from .status import status_patch
from .validation import describe_validation_error

KIND = "AlertRule"
PLURAL = "alertrules"
API_VERSION = f"{GROUP}/{VERSION}"
RETRY_DELAY_SECONDS = 15.0
DAEMON_CANCELLATION_TIMEOUT = 2.0

INDEX_PARENTS = "alertrule_index"
INDEX_PROMETHEUSRULES = "alertrule_prometheusrules"
INDEX_MCPSERVERS = "alertrule_mcpservers"
INDEX_WORKFLOWS = "alertrule_workflowintegrations"
OWNED_PROMETHEUS_RULES = {"app.kubernetes.io/managed-by": MANAGER, OWNER_KIND_LABEL: "alertrule"}
PROMETHEUS_OPERATOR_MISSING = (
    "This cluster does not serve monitoring.coreos.com/v1 PrometheusRules: install Prometheus "
    "Operator (or at least its CRDs), or set spec.prometheusRule.enabled to false. The operator "
    "keeps evaluating the rules it can."
)

logger = logging.getLogger(__name__)


class PrometheusRuleLookup:
    """The owned PrometheusRules from the watch cache, corrected by our own latest writes."""

    def __init__(self, kwargs: Mapping[str, Any], recent: RecentWrites) -> None:
        self._index = kwargs.get(INDEX_PROMETHEUSRULES)
        self._recent = recent

    def __call__(
        self, api_version: str, kind: str, namespace: str, name: str
    ) -> Mapping[str, Any] | None:
        cached = None
        if self._index is not None:
            for body in self._index.get((namespace, name), []):
                cached = dict(body)
        _, body = self._recent.newer_than_cache((api_version, kind, namespace, name), cached)
        return body

    def owned(self, owner: Owner) -> list[dict[str, Any]]:
        """The owner's PrometheusRule, if it exists (it always carries the owner's name)."""
        name = prometheus_rule_name(owner)
        live = self(PROMETHEUS_RULE_API_VERSION, PROMETHEUS_RULE_KIND, owner.namespace, name)
        references = (live or {}).get("metadata", {}).get("ownerReferences") or []
        if live is None or not any(ref.get("uid") == owner.uid for ref in references):
            return []
        return [dict(live)]


async def reconcile(
    body: Mapping[str, Any],
    context: OperatorContext,
    runtime: AlertingRuntime,
    lookup: PrometheusRuleLookup,
    *,
    check_channels: bool = True,
) -> None:
    """Bring the PrometheusRule, the channel checks and the status in line with the spec."""
    async with context.lock_for(body["metadata"]["uid"]):
        await _reconcile(body, context, runtime, lookup, check_channels=check_channels)


async def _reconcile(
    body: Mapping[str, Any],
    context: OperatorContext,
    runtime: AlertingRuntime,
    lookup: PrometheusRuleLookup,
    *,
    check_channels: bool,
) -> None:
    started = time.monotonic()
    metadata = body["metadata"]
    owner = Owner(KIND, metadata["name"], metadata["namespace"], metadata["uid"])
    generation = metadata.get("generation")
    memory = runtime.memory(owner.uid)
    result = "ok"
    try:
        try:
            spec = AlertRuleSpec.model_validate(body.get("spec") or {})
        except ValidationError as error:
            result = "InvalidSpec"
            memory.setup = SetupOutcome(
                generation, stalled=("InvalidSpec", describe_validation_error(error))
            )
            await _publish(context, body, None, memory)
            return
        rule_condition, rule_name, rejected = await _prometheus_rule(
            context, runtime, owner, spec, lookup
        )
        if rule_condition is not None and rule_condition[1] == "NamespaceTerminating":
            return
        stall = rejected or await _channel_problem(
            context, runtime, owner, spec, memory, generation, check_channels=check_channels
        )
        if stall is not None:
            result = stall[0]
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
        await _publish(context, body, spec, memory)
        if first_look:
            memory.wake.set()  # evaluate the new spec now, not at the end of the interval
    except (KubeUnavailableError, KubeApiError) as error:
        result = "ApiError"
        metrics.RECONCILE_ERRORS.labels(KIND, "ApiError").inc()
        raise kopf.TemporaryError(f"Kubernetes API: {error}", delay=RETRY_DELAY_SECONDS) from error
    finally:
        metrics.RECONCILE_TOTAL.labels(KIND, result).inc()
        metrics.RECONCILE_DURATION.labels(KIND).observe(time.monotonic() - started)


async def _prometheus_rule(
    context: OperatorContext,
    runtime: AlertingRuntime,
    owner: Owner,
    spec: AlertRuleSpec,
    lookup: PrometheusRuleLookup,
) -> tuple[tuple[ConditionStatus, str, str] | None, str | None, tuple[str, str] | None]:
    """(PrometheusRuleApplied as status/reason/message, the applied name, a Stalled problem)."""
    desired = build_prometheus_rule(owner, spec)
    owned = lookup.owned(owner)
    if desired is None and owned:
        await prune_children(
            context.kube,
            owner,
            [(PROMETHEUS_RULE_API_VERSION, PROMETHEUS_RULE_KIND)],
            [],
            existing=[
                {**item, "apiVersion": PROMETHEUS_RULE_API_VERSION, "kind": PROMETHEUS_RULE_KIND}
                for item in owned
            ],
            observe=context.recent.remember,
        )
    if not spec.prometheus_rule_requested:
        return None, None, None
    if desired is None:
        return (
            (
                "False",
                "NoExprRules",
                "No rule has expr: built-in conditions exist in the operator only.",
            ),
            None,
            None,
        )
    served = await runtime.prometheus_rules_served(
        context.kube, max_age=context.settings.resync_interval
    )
    if not served:
        return ("False", "PrometheusOperatorNotInstalled", PROMETHEUS_OPERATOR_MISSING), None, None
    try:
        await apply_children(
            context.kube, [desired], lookup=lookup, observe=context.recent.remember
        )
    except NotFoundError:
        runtime.forget_api_check()  # the CRD went away since we last asked
        return ("False", "PrometheusOperatorNotInstalled", PROMETHEUS_OPERATOR_MISSING), None, None
    except (InvalidError, ForbiddenError) as error:
        if isinstance(error, ForbiddenError) and "being terminated" in error.message:
            return ("False", "NamespaceTerminating", error.message), None, None
        reason = "PrometheusRuleRejected" if isinstance(error, InvalidError) else "Forbidden"
        message = f"The API server refused the PrometheusRule: {error.message}"
        return ("False", reason, message), None, (reason, message)
    name = desired["metadata"]["name"]
    count = sum(len(group["rules"]) for group in desired["spec"]["groups"])
    message = f"PrometheusRule {owner.namespace}/{name} holds {count} rules."
    return ("True", "Applied", message), name, None


async def _channel_problem(
    context: OperatorContext,
    runtime: AlertingRuntime,
    owner: Owner,
    spec: AlertRuleSpec,
    memory: AlertRuleMemory,
    generation: int | None,
    *,
    check_channels: bool,
) -> tuple[str, str] | None:
    """The first channel whose Secret is missing or wrong, as a Stalled problem.

    Secrets are read on create, update and resume; the periodic resync reads them again only
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
    if not (
        check_channels or broken_before or previous is None or previous.generation != generation
    ):
        return None
    _, errors = await build_notifiers(
        spec.channels,
        SecretReader(context.kube, owner.namespace),
        http=runtime.http,
        ssl_context=runtime.ssl_context,
    )
    if not errors:
        return None
    first = errors[sorted(errors)[0]]
    return first.reason, first.message


async def _publish(
    context: OperatorContext,
    body: Mapping[str, Any],
    spec: AlertRuleSpec | None,
    memory: AlertRuleMemory,
) -> None:
    """Write the status the memory describes, if it differs (the caller holds the lock)."""
    setup = memory.setup
    if setup is None:
        return
    evaluation = None
    if spec is not None and spec.rules_evaluated_by_operator():
        evaluation = evaluation_view(spec, memory)
    conditions = alertrule_conditions(
        SetupView(setup.stalled, setup.prometheus_rule, setup.prometheus_rule_name), evaluation
    )
    current = memory.current_status(body)
    now = now_utc()
    fields: dict[str, Any] = {"prometheusRuleName": setup.prometheus_rule_name}
    if evaluation is not None:
        fields["rules"] = rule_entries(evaluation.rules, current.get("rules"), now)
        fields["firing"] = sum(rule.state == "firing" for rule in evaluation.rules)
    elif spec is not None:  # nothing evaluated any more: drop what an earlier spec left
        fields["rules"] = None
        fields["firing"] = None
    patch = status_patch(current, conditions, generation=setup.generation, now=now, fields=fields)
    if not patch:
        return
    metadata = body["metadata"]
    written = await context.kube.patch_status(
        API_VERSION, KIND, metadata["name"], metadata["namespace"], patch
    )
    memory.remember_status(written)


async def _evaluate(
    body: kopf.Body,
    context: OperatorContext,
    runtime: AlertingRuntime,
    memory: AlertRuleMemory,
    views: ViewSource,
) -> float:
    """One evaluation; returns the seconds until the next one."""
    idle = context.settings.resync_interval
    try:
        spec = AlertRuleSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return idle  # reconcile reports it; an update wakes us
    if memory.setup is None or not spec.rules_evaluated_by_operator():
        return idle
    metadata = body["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    snapshot = {**dict(body), "apiVersion": API_VERSION, "kind": KIND}

    def post(type_: str, reason: str, message: str) -> None:
        post_event(
            snapshot, "Warning" if type_ == "Warning" else "Normal", reason=reason, message=message
        )

    await evaluate_once(
        spec=spec,
        namespace=namespace,
        name=name,
        status=memory.current_status(body),
        memory=memory,
        runtime=runtime,
        kube=context.kube,
        views=views,
        # Full precision: `for` and repeatInterval are measured with it (status shows seconds).
        now=datetime.now(UTC),
        post=post,
    )
    async with context.lock_for(metadata["uid"]):
        await _publish(context, body, spec, memory)
    metrics.ALERT_LAST_EVALUATION.labels(namespace, name).set(time.time())
    firing = sum(
        any(alert.state == "firing" for alert in alerts.values())
        for alerts in memory.alerts.values()
    )
    metrics.ALERT_RULES_FIRING.labels(namespace, name).set(firing)
    return spec.evaluation_settings.interval_seconds


async def _pause(stopped: kopf.DaemonStopped, wake: asyncio.Event, seconds: float) -> None:
    """Sleep until the next evaluation, an update (wake), or the daemon's stop."""
    waits = [
        asyncio.ensure_future(wake.wait()),
        asyncio.ensure_future(stopped.wait(seconds)),
    ]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()


def _index_views(kwargs: Mapping[str, Any]) -> ViewSource:
    indexes = {
        MCPSERVER: kwargs.get(INDEX_MCPSERVERS),
        WORKFLOWINTEGRATION: kwargs.get(INDEX_WORKFLOWS),
    }

    def views(kind: str, namespace: str) -> list[ResourceView]:
        index = indexes.get(kind)
        if index is None:
            return []
        return list(index.get(namespace, []))

    return views


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    """Register the AlertRule handlers, indexes and the evaluation daemon."""
    _register_indexes(registry)
    interval = settings.resync_interval

    @kopf.on.resume(GROUP, VERSION, PLURAL, id="alertrule-resume", registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, id="alertrule-create", registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, id="alertrule-update", field="spec", registry=registry)
    async def on_change(body: kopf.Body, memo: Any, **kwargs: Any) -> None:
        context = context_from(memo)
        lookup = PrometheusRuleLookup(kwargs, context.recent)
        await reconcile(body, context, runtime_from(memo), lookup)

    @kopf.timer(
        GROUP,
        VERSION,
        PLURAL,
        id="alertrule-resync",
        interval=interval,
        initial_delay=interval,
        registry=registry,
    )
    async def resync(body: kopf.Body, memo: Any, **kwargs: Any) -> None:
        context = context_from(memo)
        lookup = PrometheusRuleLookup(kwargs, context.recent)
        await reconcile(body, context, runtime_from(memo), lookup, check_channels=False)

    @kopf.daemon(
        GROUP,
        VERSION,
        PLURAL,
        id="alertrule-evaluation",
        cancellation_timeout=DAEMON_CANCELLATION_TIMEOUT,
        registry=registry,
    )
    async def evaluation(
        body: kopf.Body, memo: Any, uid: str, stopped: kopf.DaemonStopped, **kwargs: Any
    ) -> None:
        context, runtime = context_from(memo), runtime_from(memo)
        memory = runtime.memory(uid)
        views = _index_views(kwargs)
        while not stopped:
            memory.wake.clear()
            try:
                pause = await _evaluate(body, context, runtime, memory, views)
            except (KubeUnavailableError, KubeApiError) as error:
                logger.warning("evaluating AlertRule %s: Kubernetes API: %s", uid, error)
                pause = RETRY_DELAY_SECONDS
            await _pause(stopped, memory.wake, pause)

    @kopf.on.delete(GROUP, VERSION, PLURAL, id="alertrule-forget", optional=True, registry=registry)
    async def forget(memo: Any, namespace: str | None, name: str, uid: str, **_: Any) -> None:
        runtime_from(memo).forget(uid)
        for gauge in (metrics.ALERT_LAST_EVALUATION, metrics.ALERT_RULES_FIRING):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace or "", name)

    @kopf.on.cleanup(registry=registry)
    async def close(memo: Any, **_: Any) -> None:
        runtime: AlertingRuntime | None = getattr(memo, "alerting", None)
        if runtime is not None:
            await runtime.close()

    group, version = PROMETHEUS_RULE_API_VERSION.split("/")
    kopf.on.event(
        group,
        version,
        "prometheusrules",
        id="alertrule-child-prometheusrules",
        labels=OWNED_PROMETHEUS_RULES,
        registry=registry,
    )(_prometheus_rule_changed)


async def _prometheus_rule_changed(
    *, body: kopf.Body, type: str, memo: Any, namespace: str | None, **kwargs: Any
) -> None:
    """An owned PrometheusRule was edited or deleted: repair it now (drift)."""
    if not type or namespace is None:
        return  # the initial listing; resume handlers cover it
    context = context_from(memo)
    _catch_up(context.recent, type, namespace, body)
    if type not in ("MODIFIED", "DELETED"):
        return
    owner_name = (body.get("metadata", {}).get("labels") or {}).get(OWNER_NAME_LABEL)
    parents = kwargs.get(INDEX_PARENTS)
    if not owner_name or parents is None:
        return
    # A copy: the index's store changes under us while reconcile awaits (status writes).
    for parent in list(parents.get((namespace, owner_name), [])):
        if parent.get("metadata", {}).get("deletionTimestamp"):
            continue
        try:
            await reconcile(
                parent,
                context,
                runtime_from(memo),
                PrometheusRuleLookup(kwargs, context.recent),
                check_channels=False,
            )
        except kopf.TemporaryError:
            logger.warning("repairing the PrometheusRule of %s/%s failed", namespace, owner_name)


def _catch_up(recent: RecentWrites, type_: str, namespace: str, body: kopf.Body) -> None:
    """Let the watch overrule our memory of our own last write once it has seen as much.

    Without this, a PrometheusRule that someone deletes right after our apply (before any
    lookup noticed the cache caught up) would stay "present" in that memory, and never be
    restored."""
    name = body.get("metadata", {}).get("name", "")
    key = (PROMETHEUS_RULE_API_VERSION, PROMETHEUS_RULE_KIND, namespace, name)
    if type_ == "DELETED":
        ours = recent.bodies.get(key)
        if ours is not None and _version(ours) <= _version(body):
            del recent.bodies[key]
        return
    recent.newer_than_cache(key, dict(body))


def _version(body: Mapping[str, Any]) -> int:
    try:
        return int(body.get("metadata", {}).get("resourceVersion", "0"))
    except (TypeError, ValueError):
        return 0


def _register_indexes(registry: kopf.OperatorRegistry) -> None:
    # One function object per index: kopf keys indexers by handler function.
    @kopf.index(GROUP, VERSION, PLURAL, id=INDEX_PARENTS, registry=registry)
    def alertrule_index(
        *, body: kopf.Body, namespace: str | None, name: str, **_: Any
    ) -> dict[tuple[str | None, str], dict[str, Any]]:
        return {(namespace, name): {**dict(body), "apiVersion": API_VERSION, "kind": KIND}}

    group, version = PROMETHEUS_RULE_API_VERSION.split("/")

    @kopf.index(
        group,
        version,
        "prometheusrules",
        id=INDEX_PROMETHEUSRULES,
        labels=OWNED_PROMETHEUS_RULES,
        registry=registry,
    )
    def prometheusrule_index(
        *, body: kopf.Body, namespace: str | None, name: str, **_: Any
    ) -> dict[tuple[str | None, str], dict[str, Any]]:
        snapshot = {
            **dict(body),
            "apiVersion": PROMETHEUS_RULE_API_VERSION,
            "kind": PROMETHEUS_RULE_KIND,
        }
        return {(namespace, name): snapshot}

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
