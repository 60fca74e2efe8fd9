"""kopf's own settings: where it keeps its bookkeeping, and how it watches."""

from __future__ import annotations

from typing import Any

import kopf

from devserver_operator.builders.common import ANNOTATION_PREFIX
from devserver_operator.settings import OperatorSettings

FINALIZER = ANNOTATION_PREFIX + "cleanup"
FIELD_MANAGER = "devserver-operator"


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
    # A watch that silently dies would stall the operator forever; bounded timeouts make the
    # server end the stream and the client notice a dead connection.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 15
    settings.execution.max_workers = 20
    settings.batching.worker_limit = 100
    settings.peering.standalone = operator.peering is None
    if operator.peering is not None:
        settings.peering.name = operator.peering
        settings.peering.mandatory = True
        settings.peering.clusterwide = not operator.namespaces


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
    operator: OperatorSettings = memo.settings
    configure_kopf(settings, operator)
