"""One module (or package) per kind: parse -> gather inputs -> build -> observe status.

Each exposes ``KIND``, a ``reconcile.kind.Kind``; this package finds them, so a new kind is
one new module here (plus its model and builder) and no change anywhere else.
"""

from __future__ import annotations

import importlib
import pkgutil

import kopf

from devserver_operator.reconcile import build_registry as build_registry_of
from devserver_operator.reconcile.kind import Kind
from devserver_operator.settings import OperatorSettings


def all_kinds() -> list[Kind]:
    found: list[Kind] = []
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        kind = getattr(importlib.import_module(f"{__name__}.{module.name}"), "KIND", None)
        if isinstance(kind, Kind):
            found.append(kind)
    return found


def build_registry(settings: OperatorSettings) -> kopf.OperatorRegistry:
    """The registry of every kind, shaped by ``settings``."""
    return build_registry_of(settings, all_kinds())
