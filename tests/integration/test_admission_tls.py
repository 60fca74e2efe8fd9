"""The admission webhook's own certificate against the real API server: the Secret is created
once (also when two replicas start at once), reused, renewed close to expiry (also by two
replicas at once), served, and its CA kept in the webhook configuration's caBundle."""

from __future__ import annotations

import asyncio
import base64
import datetime
import socket
import ssl
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography import x509

from devserver_operator.admission import server
from devserver_operator.admission.tls import (
    CA_CERT,
    SERVING_VALIDITY,
    TLS_CERT,
    ServingMaterial,
    ensure_serving_secret,
    new_secret_data,
    service_dns_names,
)
from devserver_operator.kube.client import Credentials, KubeClient
from devserver_operator.manifests.webhook import admission_webhook_configuration
from devserver_operator.settings import OperatorSettings
from tests.support.operator_harness import wait_for

pytestmark = pytest.mark.integration

WEBHOOK_API = "admissionregistration.k8s.io/v1"
SECRET = "admission-tls"
ALMOST_A_YEAR_AGO = datetime.timedelta(days=340)  # 25 days left: renewal is due


def names(namespace: str) -> list[str]:
    return service_dns_names("webhook", namespace, "cluster.local")


def not_after(pem: bytes) -> datetime.datetime:
    return x509.load_pem_x509_certificate(pem).not_valid_after_utc


async def secret_data(kube: KubeClient, namespace: str) -> dict[str, bytes]:
    live = await kube.get("v1", "Secret", SECRET, namespace)
    assert live is not None
    return {k: base64.b64decode(v) for k, v in live["data"].items()}


async def put_secret(kube: KubeClient, namespace: str, data: dict[str, bytes]) -> None:
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET, "namespace": namespace},
            "type": "kubernetes.io/tls",
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
        }
    )


class Replica(KubeClient):
    """A replica whose first read of the Secret waits until the other replica read it too:
    both decide on what they saw before either writes, so one of the writes must lose."""

    def __init__(self, credentials: Credentials, barrier: asyncio.Barrier) -> None:
        super().__init__(credentials)
        self.barrier: asyncio.Barrier | None = barrier

    async def get(
        self, api_version: str, kind: str, name: str, namespace: str | None
    ) -> dict[str, Any] | None:
        found = await super().get(api_version, kind, name, namespace)
        if kind == "Secret" and self.barrier is not None:
            barrier, self.barrier = self.barrier, None
            await asyncio.wait_for(barrier.wait(), 10)
        return found


async def two_replicas(control_plane: Any, namespace: str) -> list[ServingMaterial]:
    barrier = asyncio.Barrier(2)
    credentials = Credentials.from_kubeconfig(str(control_plane.kubeconfig_path))
    replicas = [Replica(credentials, barrier), Replica(credentials, barrier)]
    try:
        return list(
            await asyncio.gather(
                *(ensure_serving_secret(r, namespace, SECRET, names(namespace)) for r in replicas)
            )
        )
    finally:
        for replica in replicas:
            await replica.close()


async def test_a_missing_secret_is_created_and_then_reused(
    kube: KubeClient, namespace: str
) -> None:
    first = await ensure_serving_secret(kube, namespace, SECRET, names(namespace))
    live = await kube.get("v1", "Secret", SECRET, namespace)
    assert live is not None and live["type"] == "kubernetes.io/tls"
    stored = await secret_data(kube, namespace)
    assert (stored[CA_CERT], stored[TLS_CERT]) == (first.ca_bundle, first.certificate)

    writes = kube.writes
    again = await ensure_serving_secret(kube, namespace, SECRET, names(namespace))
    assert again == first
    assert kube.writes == writes, "a current Secret is only read"
    after = await kube.get("v1", "Secret", SECRET, namespace)
    assert after is not None
    assert after["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]


async def test_an_existing_secret_of_someone_else_is_used_as_it_is(
    kube: KubeClient, namespace: str
) -> None:
    data = new_secret_data(names(namespace))
    await put_secret(kube, namespace, data)
    material = await ensure_serving_secret(kube, namespace, SECRET, names(namespace))
    assert material.certificate == data[TLS_CERT] and material.ca_bundle == data[CA_CERT]


async def test_two_replicas_starting_at_once_end_with_one_certificate(
    control_plane: Any, kube: KubeClient, namespace: str
) -> None:
    first, second = await two_replicas(control_plane, namespace)
    assert first == second
    assert (await secret_data(kube, namespace))[TLS_CERT] == first.certificate


async def test_a_certificate_close_to_expiry_is_renewed_from_the_same_ca(
    kube: KubeClient, namespace: str
) -> None:
    now = datetime.datetime.now(datetime.UTC)
    old = new_secret_data(names(namespace), now - ALMOST_A_YEAR_AGO)
    await put_secret(kube, namespace, old)
    material = await ensure_serving_secret(kube, namespace, SECRET, names(namespace))
    assert material.ca_bundle == old[CA_CERT], "the caBundle stays"
    assert material.certificate != old[TLS_CERT]
    assert not_after(material.certificate) > now + SERVING_VALIDITY - datetime.timedelta(1)
    assert (await secret_data(kube, namespace))[TLS_CERT] == material.certificate


async def test_two_replicas_renewing_at_once_end_with_one_certificate(
    control_plane: Any, kube: KubeClient, namespace: str
) -> None:
    now = datetime.datetime.now(datetime.UTC)
    old = new_secret_data(names(namespace), now - ALMOST_A_YEAR_AGO)
    await put_secret(kube, namespace, old)
    first, second = await two_replicas(control_plane, namespace)
    assert first == second and first.certificate != old[TLS_CERT]
    assert (await secret_data(kube, namespace))[TLS_CERT] == first.certificate


# -- the webhook serves it and keeps the caBundle current ---------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def served_certificate(port: int, ca_bundle: bytes, hostname: str) -> x509.Certificate:
    """What the API server would see: verified against the caBundle, for the Service's name."""
    context = ssl.create_default_context(cadata=ca_bundle.decode())
    _, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=hostname), 10
    )
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der)
    finally:
        writer.close()


@pytest.fixture
async def configuration(kube: KubeClient) -> AsyncIterator[str]:
    """A webhook configuration that matches no namespace: only its caBundle matters here."""
    name = f"devserver-test-tls-{uuid.uuid4().hex[:6]}"
    await kube.apply(
        admission_webhook_configuration(
            {"url": "https://127.0.0.1:9/validate"},
            name=name,
            namespace_selector={"matchLabels": {"devserver-test-never": "matches"}},
        )
    )
    yield name
    await kube.delete(WEBHOOK_API, "ValidatingWebhookConfiguration", name, None)


async def ca_bundle(kube: KubeClient, name: str) -> bytes | None:
    live = await kube.get(WEBHOOK_API, "ValidatingWebhookConfiguration", name, None)
    bundle = ((live or {}).get("webhooks") or [{}])[0].get("clientConfig", {}).get("caBundle")
    return base64.b64decode(bundle) if bundle else None


async def test_the_webhook_serves_the_secret_renews_it_on_a_timer_and_keeps_the_ca_bundle(
    control_plane: Any,
    kube: KubeClient,
    namespace: str,
    configuration: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server, "CERT_CHECK_SECONDS", 0.5)
    port = free_port()
    hostname = f"webhook.{namespace}.svc"
    settings = OperatorSettings(
        kubeconfig=str(control_plane.kubeconfig_path),
        operator_namespace=namespace,
        admission_port=port,
        admission_address="127.0.0.1",
        admission_tls_secret=SECRET,
        admission_service="webhook",
        admission_webhook_configuration=configuration,
    )
    async with server.admission_webhook(settings):
        stored = await secret_data(kube, namespace)

        async def published() -> bool:
            return await ca_bundle(kube, configuration) == stored[CA_CERT]

        await wait_for(published, seconds=10, what="the CA in the caBundle")
        served = await served_certificate(port, stored[CA_CERT], hostname)
        assert served == x509.load_pem_x509_certificate(stored[TLS_CERT])

        # Another replica (here: the test) stored a certificate that is close to expiry:
        # the timer notices, renews it from the same CA, and serves the renewal.
        now = datetime.datetime.now(datetime.UTC)
        old = new_secret_data(names(namespace), now - ALMOST_A_YEAR_AGO)
        await put_secret(kube, namespace, old)

        async def renewed() -> bool:
            current = await secret_data(kube, namespace)
            return current[CA_CERT] == old[CA_CERT] and current[TLS_CERT] != old[TLS_CERT]

        await wait_for(renewed, seconds=10, what="the renewal of the certificate")
        await wait_for(
            lambda: ca_bundle_is(kube, configuration, old[CA_CERT]),
            seconds=10,
            what="the new CA in the caBundle",
        )
        current = await secret_data(kube, namespace)

        async def serving_the_renewal() -> bool:
            served = await served_certificate(port, old[CA_CERT], hostname)
            return served == x509.load_pem_x509_certificate(current[TLS_CERT])

        await wait_for(serving_the_renewal, seconds=10, what="the renewed certificate served")

        # A caBundle that went missing (the configuration was applied again) comes back.
        live = await kube.get(WEBHOOK_API, "ValidatingWebhookConfiguration", configuration, None)
        assert live is not None
        del live["webhooks"][0]["clientConfig"]["caBundle"]
        await kube.raw(
            "PUT",
            f"/apis/{WEBHOOK_API}/validatingwebhookconfigurations/{configuration}",
            live,
        )
        await wait_for(
            lambda: ca_bundle_is(kube, configuration, old[CA_CERT]),
            seconds=10,
            what="the caBundle written again",
        )


async def ca_bundle_is(kube: KubeClient, name: str, expected: bytes) -> bool:
    return await ca_bundle(kube, name) == expected
