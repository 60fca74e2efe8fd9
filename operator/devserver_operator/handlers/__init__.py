"""kopf handlers, one module per kind, registered explicitly so settings can shape them."""

from __future__ import annotations

import kopf

from devserver_operator.settings import OperatorSettings


def build_registry(settings: OperatorSettings) -> kopf.OperatorRegistry:
    """A registry with every handler, shaped by ``settings`` (a fresh one per operator run,
    so tests can start and stop operators in one process)."""
    from . import (
        alertrule,
        indexes,
        lifecycle,
        mcpserver,
        operator_settings,
        probes,
        teamaccess,
        workflowintegration,
    )

    registry = kopf.OperatorRegistry()
    operator_settings.register_operator_hooks(registry)
    indexes.register_indexes(registry)
    mcpserver.register_parent_index(registry)
    mcpserver.register(registry, settings)
    teamaccess.register(registry, settings)
    workflowintegration.register(registry, settings)
    alertrule.register(registry, settings)
    lifecycle.register_first_sight(registry)
    probes.register_probes(registry)
    return registry
