"""The HTTPS endpoint the API server calls for every create and update of the checked kinds.

It runs beside kopf for the whole life of the process, on every replica: under peering a
standby replica (and one that is restarting kopf after losing the lead) still answers, so
failurePolicy Fail never turns a handover into refused writes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import ssl
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from devserver_operator.kube.client import KubeClient
from devserver_operator.settings import OperatorSettings

from . import WEBHOOK_PATH
from .decision import BadReviewError, decide
from .tls import ensure_serving_secret, service_dns_names

logger = logging.getLogger(__name__)

WEBHOOK_API_VERSION = "admissionregistration.k8s.io/v1"
CERT_CHECK_SECONDS = 60.0
"""How often every replica re-reads its certificate (files or Secret; renewed when due) and
makes sure the caBundle is current (e.g. after the webhook configuration was re-created)."""
# An AdmissionReview holds the object twice (object and oldObject), each up to etcd's 1.5 MiB.
MAX_REQUEST_BYTES = 4 * 1024 * 1024


class Certificates:
    """The serving certificate of the TLS context, and the caBundle that makes it trusted.

    From files (``admission_cert_file``: cert-manager or any other issuer mounts them), re-read
    when they change; or else from the Secret ``admission_tls_secret``, which the operator
    creates and renews itself (tls.py). New connections use a new chain; open ones keep theirs.
    """

    def __init__(self, settings: OperatorSettings, kube: KubeClient) -> None:
        self.settings = settings
        self.kube = kube
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca_bundle: bytes | None = None
        self.loaded: tuple[float, ...] | bytes = ()
        self.dns_names: list[str] = []
        if settings.admission_cert_file:
            if not settings.admission_key_file:
                raise ValueError("the admission webhook's admission_cert_file needs _key_file")
            self.cert_file: Path | None = Path(settings.admission_cert_file)
            self.key_file = Path(settings.admission_key_file)
            self.ca_file = Path(settings.admission_ca_file) if settings.admission_ca_file else None
            return
        self.cert_file = None
        if not settings.admission_tls_secret:
            raise ValueError(
                "the admission webhook needs admission_tls_secret (a Secret the operator "
                "manages) or admission_cert_file and admission_key_file"
            )
        if settings.admission_service:
            self.dns_names += service_dns_names(
                settings.admission_service, settings.operator_namespace, settings.cluster_domain
            )
        self.dns_names += [n for n in settings.admission_dns_names if n not in self.dns_names]
        if not self.dns_names:
            raise ValueError("admission_tls_secret needs admission_service or admission_dns_names")

    async def refresh(self) -> bool:
        """Load the current chain if it changed (and, from the Secret, renew it when due)."""
        if self.cert_file is not None:
            return self._refresh_from_files(self.cert_file)
        assert self.settings.admission_tls_secret  # checked in __init__
        material = await ensure_serving_secret(
            self.kube,
            self.settings.operator_namespace,
            self.settings.admission_tls_secret,
            self.dns_names,
        )
        self.ca_bundle = material.ca_bundle
        if material.certificate + material.key == self.loaded:
            return False
        # ssl loads chains from files only: a private directory, removed as soon as it is read.
        with tempfile.TemporaryDirectory(prefix="devserver-admission-") as directory:
            cert_file, key_file = Path(directory) / "tls.crt", Path(directory) / "tls.key"
            cert_file.write_bytes(material.certificate)
            key_file.touch(mode=0o600)
            key_file.write_bytes(material.key)
            self.context.load_cert_chain(cert_file, key_file)
        self.loaded = material.certificate + material.key
        return True

    def _refresh_from_files(self, cert_file: Path) -> bool:
        files = [cert_file, self.key_file, *([self.ca_file] if self.ca_file else [])]
        stamps = tuple(path.stat().st_mtime for path in files)
        if stamps == self.loaded:
            return False
        self.context.load_cert_chain(cert_file, self.key_file)
        self.ca_bundle = self.ca_file.read_bytes() if self.ca_file else None
        self.loaded = stamps
        return True


async def publish_ca_bundle(kube: KubeClient, name: str, ca_pem: bytes) -> None:
    """Put ``ca_pem`` into every webhook of the ValidatingWebhookConfiguration ``name``."""
    configuration = await kube.get(
        WEBHOOK_API_VERSION, "ValidatingWebhookConfiguration", name, None
    )
    if configuration is None:
        logger.warning("ValidatingWebhookConfiguration %s not found: caBundle not set", name)
        return
    bundle = base64.b64encode(ca_pem).decode()
    webhooks = configuration.get("webhooks") or []
    if all((w.get("clientConfig") or {}).get("caBundle") == bundle for w in webhooks):
        return  # every replica does this at start; only the first one writes
    for webhook in webhooks:
        webhook.setdefault("clientConfig", {})["caBundle"] = bundle
    # The whole list, under the resourceVersion read: a concurrent edit makes this fail
    # rather than be overwritten (the next check tries again).
    patch = {
        "metadata": {"resourceVersion": configuration["metadata"]["resourceVersion"]},
        "webhooks": webhooks,
    }
    await kube.merge_patch(WEBHOOK_API_VERSION, "ValidatingWebhookConfiguration", name, None, patch)
    logger.info("caBundle of ValidatingWebhookConfiguration %s updated", name)


def _application(settings: OperatorSettings, kube: KubeClient) -> web.Application:
    async def validate(request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            review = json.loads(await request.read())
            answer = await decide(
                review,
                kube,
                allowed_images=settings.allowed_images,
                bridge_image=settings.bridge_image,
            )
        except (ValueError, BadReviewError) as error:  # malformed JSON or review
            return web.Response(status=400, text=f"bad AdmissionReview: {error}")
        except Exception as error:
            # Fail closed, with a reason the requester can act on.
            logger.exception("admission review failed")
            uid = review.get("request", {}).get("uid", "") if isinstance(review, dict) else ""
            answer = {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {
                    "uid": uid,
                    "allowed": False,
                    "status": {
                        "code": 503,
                        "reason": "ServiceUnavailable",
                        "message": f"could not check your rights, try again: {error}",
                    },
                },
            }
        logger.debug("admission answered in %.1f ms", (time.perf_counter() - started) * 1000)
        return web.json_response(answer)

    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app.router.add_post(WEBHOOK_PATH, validate)
    return app


@contextlib.asynccontextmanager
async def admission_webhook(settings: OperatorSettings) -> AsyncIterator[None]:
    """Serve the admission webhook while the block runs (nothing when its port is 0)."""
    if not settings.admission_port:
        yield
        return
    # It serves across kopf's restarts (peering), so it logs in on its own, by the same rules.
    kube = KubeClient.from_kubeconfig(settings.kubeconfig, settings.context)
    try:
        certificates = Certificates(settings, kube)
        await certificates.refresh()
    except BaseException:
        await kube.close()
        raise
    runner = web.AppRunner(_application(settings, kube), access_log=None)
    await runner.setup()
    site = web.TCPSite(
        runner,
        settings.admission_address,
        settings.admission_port,
        ssl_context=certificates.context,
    )
    await site.start()
    logger.info("admission webhook listening on port %d", settings.admission_port)
    keeper = asyncio.create_task(_keep_certificates(settings, certificates, kube))
    try:
        yield
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        await runner.cleanup()
        await kube.close()


async def _keep_certificates(
    settings: OperatorSettings, certificates: Certificates, kube: KubeClient
) -> None:
    """Publish the CA now, and check certificate and caBundle again on a timer: a rotated
    file or renewed Secret is loaded, a certificate close to expiry renewed, and a caBundle
    that went missing (a re-created ValidatingWebhookConfiguration) written again."""
    while True:  # ends with the process (cancelled by admission_webhook)
        healthy = True
        try:
            await certificates.refresh()
            if certificates.ca_bundle and settings.admission_webhook_configuration:
                await publish_ca_bundle(
                    kube, settings.admission_webhook_configuration, certificates.ca_bundle
                )
        except Exception:
            logger.exception("could not refresh the admission webhook's certificate")
            healthy = False
        await asyncio.sleep(CERT_CHECK_SECONDS if healthy else CERT_CHECK_SECONDS / 12)
