"""Start kopf with our settings, handlers, metrics and liveness endpoint."""

from __future__ import annotations

import asyncio
import logging

import kopf

from devserver_operator.settings import OperatorSettings

logger = logging.getLogger(__name__)


def run_operator(settings: OperatorSettings) -> int:
    from devserver_operator import handlers, metrics
    from devserver_operator.handlers.lifecycle import register_first_sight

    kopf.configure(
        verbose=settings.log_level == "DEBUG",
        log_format=kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.FULL,
    )
    logging.getLogger().setLevel(settings.log_level)
    register_first_sight()
    del handlers  # imported for its registrations
    if settings.metrics_port:
        metrics.serve(settings.metrics_port)
    liveness = f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
    kopf.run(
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        liveness_endpoint=liveness,
        standalone=settings.peering is None,
        peering_name=settings.peering,
        memo=kopf.Memo(settings=settings),
        loop=asyncio.new_event_loop(),
    )
    return 0
