"""Start kopf with our settings, handlers, metrics and liveness endpoint."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading

import kopf

# kopf types the identity as a NewType it does not export at the top level; the vault that
# holds its login is not exported either (our client shares it: kube/login.py).
from kopf._cogs.structs.credentials import Vault
from kopf._core.engines.peering import Identity

from devserver_operator.admission.server import admission_webhook
from devserver_operator.leadership import LeadWatch, own_identity, standalone, watching_the_lead
from devserver_operator.settings import OperatorSettings

logger = logging.getLogger(__name__)

FLAG_POLL_SECONDS = 0.5
RESTART_DELAY_SECONDS = 1.0


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
    """Run the operator until ``stop_flag`` is set (or forever).

    Under peering, a replica that loses the lead starts again as a fresh standby (see
    ``leadership``) instead of keeping its caches and background work while paused. The
    admission webhook serves across those restarts, on leader and standby alike."""
    async with admission_webhook(settings):
        await _operate_with_peering(settings, stop_flag=stop_flag, ready_flag=ready_flag)


async def _operate_with_peering(
    settings: OperatorSettings,
    *,
    stop_flag: asyncio.Event | threading.Event | None,
    ready_flag: asyncio.Event | threading.Event | None,
) -> None:
    if settings.peering is None:
        await _operate_once(settings, standalone(), stop_flag=stop_flag, ready_flag=ready_flag)
        return
    for run in itertools.count(1):
        with watching_the_lead(settings.peering) as lead:
            stopping = asyncio.Event()
            forwarders = [asyncio.create_task(_set_when(lead.lost, stopping))]
            if stop_flag is not None:
                forwarders.append(asyncio.create_task(_set_when(stop_flag, stopping)))
            try:
                await _operate_once(settings, lead, stop_flag=stopping, ready_flag=ready_flag)
            finally:
                for forwarder in forwarders:
                    forwarder.cancel()
        if not lead.lost.is_set() or (stop_flag is not None and stop_flag.is_set()):
            return
        await asyncio.sleep(RESTART_DELAY_SECONDS)  # never a hot loop, even if the lead flaps
        logger.warning(
            "another replica leads peering %r now: starting again as a standby (run %d)",
            settings.peering,
            run + 1,
        )


async def _set_when(flag: asyncio.Event | threading.Event, target: asyncio.Event) -> None:
    if isinstance(flag, asyncio.Event):
        await flag.wait()
    else:
        # Waits in a worker thread, in slices: a cancelled forwarder frees its thread soon.
        while not await asyncio.to_thread(flag.wait, FLAG_POLL_SECONDS):
            continue
    target.set()


async def _operate_once(
    settings: OperatorSettings,
    lead: LeadWatch,
    *,
    stop_flag: asyncio.Event | threading.Event | None,
    ready_flag: asyncio.Event | threading.Event | None,
) -> None:
    from devserver_operator.kinds import build_registry

    liveness = f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
    vault = Vault()
    await kopf.operator(
        registry=build_registry(settings),
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        liveness_endpoint=liveness,
        standalone=settings.peering is None,
        peering_name=settings.peering,
        identity=Identity(own_identity()),
        vault=vault,
        # ``lead`` feeds the leadership check of /healthz (reconcile/probes.py).
        memo=kopf.Memo(settings=settings, lead=lead, vault=vault),
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
