"""The one reconcile frame every kind plugs into (triggers, lock, slots, backoff, metrics,
error -> condition, status writer, memories, lookups), parameterised by each kind's
``Kind``; see docs/architecture.md."""

from __future__ import annotations

from collections.abc import Sequence

import kopf

from devserver_operator.api import API_VERSION
from devserver_operator.kube.resources import RESOURCES, Resource
from devserver_operator.settings import OperatorSettings

from .kind import Kind
from .lookup import register_owned_indexes
from .operator import register_operator_hooks
from .probes import register_probes
from .triggers import register_kind


def build_registry(settings: OperatorSettings, kinds: Sequence[Kind]) -> kopf.OperatorRegistry:
    """A registry with every handler of ``kinds``, shaped by ``settings`` (a fresh one per
    operator run, so tests can start and stop operators in one process)."""
    registry = kopf.OperatorRegistry()
    register_operator_hooks(registry, kinds)
    children = {child: None for kind in kinds for child in kind.children}
    register_owned_indexes(registry, children)
    # The API client finds every kind and child kind without discovery; teach it new ones.
    for path in [
        *(Resource(API_VERSION, kind.info.kind, kind.info.plural) for kind in kinds),
        *(Resource(child.api_version, child.kind, child.plural) for child in children),
    ]:
        RESOURCES.setdefault((path.api_version, path.kind), path)
    for kind in kinds:
        register_kind(registry, kind, settings)
    register_probes(registry)
    return registry
