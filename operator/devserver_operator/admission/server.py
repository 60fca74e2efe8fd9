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
import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from devserver_operator.kube.client import Credentials, KubeClient
from devserver_operator.settings import OperatorSettings

from . import WEBHOOK_PATH
from .decision import BadReviewError, decide

logger = logging.getLogger(__name__)

WEBHOOK_API_VERSION = "admissionregistration.k8s.io/v1"
CERT_CHECK_SECONDS = 60.0
# An AdmissionReview holds the object twice (object and oldObject), each up to etcd's 1.5 MiB.
MAX_REQUEST_BYTES = 4 * 1024 * 1024


class Certificates:
    """The serving certificate, loaded again when its files change (a rotated Secret)."""

    def __init__(self, settings: OperatorSettings) -> None:
        if not settings.admission_cert_file or not settings.admission_key_file:
            raise ValueError("the admission webhook needs admission_cert_file and _key_file")
        self.cert_file = Path(settings.admission_cert_file)
        self.key_file = Path(settings.admission_key_file)
        self.ca_file = Path(settings.admission_ca_file) if settings.admission_ca_file else None
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.loaded: tuple[float, ...] = ()

    def _stamps(self) -> tuple[float, ...]:
        files = [self.cert_file, self.key_file, *([self.ca_file] if self.ca_file else [])]
        return tuple(path.stat().st_mtime for path in files)

    def reload_if_changed(self) -> bool:
        stamps = self._stamps()
        if stamps == self.loaded:
            return False
        # New connections use the new chain; open ones keep theirs.
        self.context.load_cert_chain(self.cert_file, self.key_file)
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
    certificates = Certificates(settings)
    certificates.reload_if_changed()
    kube = KubeClient(Credentials.from_kubeconfig(settings.kubeconfig))
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
    """Publish the CA now and again after every rotation of the mounted files."""
    published = False
    while True:  # ends with the process (cancelled by admission_webhook)
        try:
            if certificates.reload_if_changed() or not published:
                if certificates.ca_file and settings.admission_webhook_configuration:
                    await publish_ca_bundle(
                        kube,
                        settings.admission_webhook_configuration,
                        certificates.ca_file.read_bytes(),
                    )
                published = True
        except Exception:
            logger.exception("could not refresh the admission webhook's certificate")
            published = False
        await asyncio.sleep(CERT_CHECK_SECONDS if published else CERT_CHECK_SECONDS / 12)
