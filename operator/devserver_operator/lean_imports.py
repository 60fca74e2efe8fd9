"""Import kopf without the ``kubernetes`` client's generated models.

kopf tries ``from kubernetes.client import V1ObjectMeta`` when it is imported, only to
recognise that library's model objects (in ``kopf.adopt`` and friends); importing
``kubernetes.client`` loads every generated model, about 9 MiB of RSS. The operator hands
kopf plain dicts only, so kopf is imported while the library looks absent; the library
stays importable for what needs it later (kubeconfig login plugins, kube/plugins.py).
"""

from __future__ import annotations

import importlib
import sys


def import_kopf() -> None:
    """Call before anything imports kopf (``devserver-operator run`` does)."""
    if "kopf" in sys.modules or "kubernetes" in sys.modules:
        return  # too late, or wanted by someone already: nothing to save
    sys.modules["kubernetes"] = None  # type: ignore[assignment]  # "absent" to import machinery
    try:
        importlib.import_module("kopf")
    finally:
        if sys.modules.get("kubernetes", ...) is None:
            del sys.modules["kubernetes"]
