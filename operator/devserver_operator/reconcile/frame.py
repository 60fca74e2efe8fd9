"""The frame around every reconcile of every kind, written once.

One object at a time (its lock), a bounded number per kind at once (slots), the metrics, and
one mapping from what went wrong to what the status says and when it is tried again:

- ``StalledError`` (bad spec, missing input): ``Stalled=True`` with its reason; tried again
  on a change.
- the API server refuses a child (422, 403): ``Stalled=True`` with the kind's reasons; what
  was refused is not sent again until it changes.
- the Kubernetes API fails: ``Reconciling``/``ApiError`` while this generation has no
  outcome yet; the shared backoff.
- ``TransientError`` or ``Outcome.retry`` (n8n down, ...): what the kind wrote; the shared
  backoff.
- anything else (a bug): ``Stalled=True``/``InternalError``, the traceback in the log.

The backoff is one schedule per object, whatever triggered the reconcile that failed: kopf's
retry is told the delay, and the resync loop leaves the object alone until then.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

import kopf

from devserver_operator import metrics
from devserver_operator.api.conditions import find, reconciling, stalled
from devserver_operator.builders.common import Owner
from devserver_operator.kube.errors import (
    ForbiddenError,
    InvalidError,
    KubeApiError,
    KubeUnavailableError,
)

from .context import OperatorContext
from .kind import Kind, Outcome, Request, StalledError, TransientError, Trigger
from .lookup import OwnedObjects
from .status import StatusWriter, existing_conditions

logger = logging.getLogger(__name__)


def owner_of(kind: Kind, body: Mapping[str, Any]) -> Owner:
    metadata = body["metadata"]
    return Owner(kind.info.kind, metadata["name"], metadata["namespace"], metadata["uid"])


async def reconcile(
    kind: Kind,
    body: Mapping[str, Any],
    context: OperatorContext,
    indexes: Mapping[str, Any],
    trigger: Trigger,
) -> Outcome:
    """Run the kind's reconcile of one object inside the frame; returns what it did."""
    owner = owner_of(kind, body)
    # The lock first: waiting for a slot must not let a second reconcile of the same object
    # sneak in between.
    async with context.lock_for(owner.uid), context.slots_for(owner.kind):
        request = new_request(kind, body, context, indexes, trigger)
        started = time.monotonic()
        outcome = Outcome(result="Retry")  # a kopf.TemporaryError of the kind's own
        try:
            outcome = await _guarded(request)
        finally:
            metrics.RECONCILE_TOTAL.labels(owner.kind, outcome.result).inc()
            metrics.RECONCILE_DURATION.labels(owner.kind).observe(time.monotonic() - started)
    if outcome.visit_in is not None:
        context.resync.visit_in(owner.kind, owner.uid, outcome.visit_in)
    if outcome.retry is not None:
        raise kopf.TemporaryError(outcome.retry, delay=context.backoff.failed(owner.uid))
    context.backoff.succeeded(owner.uid)
    return outcome


def new_request(
    kind: Kind,
    body: Mapping[str, Any],
    context: OperatorContext,
    indexes: Mapping[str, Any],
    trigger: Trigger,
) -> Request:
    """A request, with the status as fresh as this process knows it (under the lock)."""
    owner = owner_of(kind, body)
    return Request(
        kind=kind,
        body=body,
        owner=owner,
        context=context,
        lookup=OwnedObjects(indexes, context.writes),
        indexes=indexes,
        trigger=trigger,
        status=StatusWriter(context.kube, context.writes, owner, body),
        requested=context.requests.take(owner.uid, body),
    )


async def _guarded(request: Request) -> Outcome:
    owner = request.owner
    try:
        outcome = await request.kind.reconcile(request)
    except StalledError as problem:
        await request.write_status(
            [*stalled(problem.reason, problem.message), *problem.extra], problem.fields
        )
        outcome = Outcome(result=problem.reason)
    except (InvalidError, ForbiddenError) as error:
        if isinstance(error, ForbiddenError) and "being terminated" in error.message:
            return Outcome(result="NamespaceTerminating")  # it takes this object with it
        invalid, forbidden = request.kind.refused_reasons
        reason = invalid if isinstance(error, InvalidError) else forbidden
        message = f"The API server refused {request.kind.refused_what}: {error.message}"
        await request.write_status(stalled(reason, message))
        outcome = Outcome(result=type(error).__name__)
    except (KubeUnavailableError, KubeApiError) as error:
        metrics.RECONCILE_ERRORS.labels(owner.kind, "ApiError").inc()
        await _report_api_error(request, error)
        return Outcome(result="ApiError", retry=f"Kubernetes API: {error}")
    except TransientError as problem:
        return Outcome(result="Transient", retry=str(problem))
    except Exception as error:
        # A bug that some spec triggers must not turn into a silent retry loop without a
        # status: the object says it is stuck, the log has the traceback.
        logger.exception("reconciling %s %s/%s failed", owner.kind, owner.namespace, owner.name)
        metrics.RECONCILE_ERRORS.labels(owner.kind, "InternalError").inc()
        # Only the type: an exception's text may quote values from referenced Secrets.
        message = (
            f"The operator failed on this spec ({type(error).__name__}); its log has the "
            "details. Change the spec or report the problem."
        )
        with contextlib.suppress(KubeUnavailableError, KubeApiError):
            await request.write_status(stalled("InternalError", message))
        return Outcome(result="InternalError")
    return outcome


async def _report_api_error(request: Request, error: Exception) -> None:
    """Say in status why a new generation is not reconciled yet, while it is retried.

    Only when this generation has no outcome yet: a Ready object does not turn unready for
    a passing API hiccup (the client already retried it for a second or so)."""
    status = request.status.status
    if status.get("observedGeneration") == request.generation and find(
        existing_conditions(status), "Ready"
    ):
        return
    message = f"The Kubernetes API failed a request; retrying: {error}"
    with contextlib.suppress(KubeUnavailableError, KubeApiError):  # it may be down entirely
        await request.write_status(reconciling("ApiError", message, ready_status="False"))


async def reconcile_quietly(
    kind: Kind,
    body: Mapping[str, Any],
    context: OperatorContext,
    indexes: Mapping[str, Any],
    trigger: Trigger,
) -> Outcome | None:
    """For triggers that kopf does not retry (events, visits): a failure is logged and left
    to the backoff and the resync loop."""
    try:
        return await reconcile(kind, body, context, indexes, trigger)
    except kopf.TemporaryError as error:
        metadata = body.get("metadata", {})
        logger.warning(
            "reconciling %s %s/%s (%s) failed: %s; retried later",
            kind.info.kind,
            metadata.get("namespace"),
            metadata.get("name"),
            trigger,
            error,
        )
        return None
