"""kopf's own settings: where it keeps its bookkeeping, and how it watches."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import kopf

from devserver_operator.builders.common import ANNOTATION_PREFIX
from devserver_operator.kube.client import FIELD_MANAGER, KubeClient
from devserver_operator.kube.credentials import load_credentials
from devserver_operator.leadership import reporting_instance, start_priority
from devserver_operator.settings import OperatorSettings

from .context import OperatorContext
from .kind import Kind

FINALIZER = ANNOTATION_PREFIX + "cleanup"


def configure_kopf(settings: kopf.OperatorSettings, operator: OperatorSettings) -> None:
    # kopf's defaults write into status.kopf and kopf.zalando.org/ annotations; both would show
    # up in users' diffs under a foreign name. Our own prefix keeps the bookkeeping recognisable.
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX.rstrip("/")
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX.rstrip("/"), key="last-handled-configuration"
    )
    settings.posting.level = 30  # Events for warnings and errors; our own Events for the rest.
    # `kubectl describe` shows Events as "From: kopf" otherwise (source.component).
    settings.posting.reporting_component = FIELD_MANAGER
    settings.posting.reporting_instance = reporting_instance()
    # A watch that silently dies would stall the operator forever; bounded timeouts make the
    # server end the stream and the client notice a dead connection.
    settings.watching.server_timeout = operator.watch_server_timeout
    settings.watching.client_timeout = max(
        operator.watch_client_timeout, operator.watch_server_timeout + 1
    )
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 15
    settings.execution.max_workers = 20
    # No cap on per-object workers: kopf holds every object's worker until ALL indexes are
    # filled, so a cap below the number of objects of one kind deadlocks the start-up (found
    # with 1000 MCPServers and a cap of 100). Idle workers exit after queueing.idle_timeout.
    settings.queueing.worker_limit = None
    # Single-namespace mode runs on Roles only: kopf may neither list CRDs nor namespaces, and
    # without this it retries those 403s for a minute before serving anything. It then learns
    # the resources from API discovery once (open to every authenticated user).
    settings.scanning.disabled = bool(operator.namespaces)
    settings.peering.standalone = operator.peering is None
    if operator.peering is not None:
        settings.peering.name = operator.peering
        settings.peering.mandatory = True
        settings.peering.clusterwide = not operator.namespaces
        settings.peering.lifetime = operator.peering_lifetime
        # Distinct per replica (kopf pauses all replicas that see a peer of equal priority),
        # highest for the oldest: see leadership.start_priority.
        settings.peering.priority = start_priority()


def register_operator_hooks(registry: kopf.OperatorRegistry, kinds: Sequence[Kind]) -> None:
    async def startup(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
        operator: OperatorSettings = memo.settings
        configure_kopf(settings, operator)
        # Everything shared is created here, on the operator's own memo: kopf gives every
        # object a shallow copy of it, so state set later would belong to one object only.
        memo.context = OperatorContext(
            settings=operator,
            # kopf's vault holds the one login both clients use (kube/login.py: VaultLogin).
            kube=KubeClient.from_kopf_vault(memo.vault, lambda: getattr(memo, "token_file", None)),
            probe_slots=asyncio.Semaphore(operator.verification_concurrency),
            states={kind.info.kind: kind.new_state(operator) for kind in kinds},
        )
        memo.context.resync.configure(memo.context, operator.resync_interval)

    async def cleanup(memo: Any, **_: Any) -> None:
        context: OperatorContext | None = getattr(memo, "context", None)
        if context is not None:
            await context.resync.stop()
            for kind in kinds:
                await kind.close(context.states.get(kind.info.kind))
            await context.kube.close()

    kopf.on.startup(registry=registry)(startup)
    kopf.on.cleanup(registry=registry)(cleanup)
    kopf.on.login(registry=registry)(login)


def login(memo: Any, **_: Any) -> kopf.ConnectionInfo:
    """The one login of kopf and our client. kopf calls it again on a 401 (from either), at
    the plugin token's expiry, and when our client sees the token file changed."""
    operator: OperatorSettings = memo.settings
    credentials = load_credentials(operator.kubeconfig, operator.context)
    memo.token_file = credentials.token_file
    info: kopf.ConnectionInfo = credentials.as_connection_info()
    return info
