"""Start kopf with our settings, handlers, metrics and liveness endpoint."""

from __future__ import annotations

import asyncio
import logging
import threading

import kopf

from devserver_operator.settings import OperatorSettings

logger = logging.getLogger(__name__)


def configure_logging(settings: OperatorSettings) -> None:
    kopf.configure(
        verbose=settings.log_level == "DEBUG",
        log_format=kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.FULL,
    )
    logging.getLogger().setLevel(settings.log_level)


async def operate(
    settings: OperatorSettings,
    *,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
) -> None:
    """Run the operator until ``stop_flag`` is set (or forever)."""
    from devserver_operator.handlers import build_registry

    liveness = f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
    await kopf.operator(
        registry=build_registry(settings),
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        liveness_endpoint=liveness,
        standalone=settings.peering is None,
        peering_name=settings.peering,
        memo=kopf.Memo(settings=settings),
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )


def run_operator(settings: OperatorSettings) -> int:
    from devserver_operator import metrics

    configure_logging(settings)
    if settings.metrics_port:
        metrics.serve(settings.metrics_port)
    asyncio.run(operate(settings))
    return 0
