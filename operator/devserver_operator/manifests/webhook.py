"""The ValidatingWebhookConfiguration of the no-confused-deputy check (admission/). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devserver_operator.admission import WEBHOOK_PATH
from devserver_operator.admission.references import CHECKED_KINDS
from devserver_operator.api.kinds import ALL_KINDS, GROUP, VERSION

from .operator_rbac import ADMISSION_WEBHOOK_CONFIGURATION

TIMEOUT_SECONDS = 5
"""Well under the API server's own 30 s: a hung webhook costs a writer 5 s, not a timeout."""


def admission_webhook_configuration(
    client_config: Mapping[str, Any],
    *,
    name: str = ADMISSION_WEBHOOK_CONFIGURATION,
    namespace_selector: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The webhook, calling ``client_config`` (a Service, or a URL for tests) at WEBHOOK_PATH."""
    plurals = [info.plural for info in ALL_KINDS if info.kind in CHECKED_KINDS]
    webhook: dict[str, Any] = {
        "name": f"rights.{GROUP}",
        "clientConfig": dict(client_config),
        "rules": [
            {
                "apiGroups": [GROUP],
                "apiVersions": [VERSION],
                "operations": ["CREATE", "UPDATE"],
                "resources": plurals,  # not their /status: status grants nothing
                "scope": "Namespaced",
            }
        ],
        # Fail closed: without an answer nothing that could read a Secret gets in.
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "sideEffects": "None",
        "timeoutSeconds": TIMEOUT_SECONDS,
        "admissionReviewVersions": ["v1"],
        # Updates that leave spec alone (the operator's own annotations and finalizer, labels)
        # grant nothing new: they never wait for, or fail on, the webhook.
        "matchConditions": [
            {
                "name": "spec-written",
                "expression": "request.operation == 'CREATE' || "
                "!has(oldObject.spec) || !has(object.spec) || object.spec != oldObject.spec",
            }
        ],
    }
    if namespace_selector is not None:
        webhook["namespaceSelector"] = dict(namespace_selector)
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [webhook],
    }


def service_client_config(namespace: str, service: str, port: int = 443) -> dict[str, Any]:
    return {
        "service": {"namespace": namespace, "name": service, "path": WEBHOOK_PATH, "port": port}
    }
