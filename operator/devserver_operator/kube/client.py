"""A small async client for the Kubernetes API (on aiohttp; see transport.py).

kopf does the watching; this client does the writing. It knows the handful of kinds the
operator touches (no discovery round trips), applies with server-side apply under one field
manager, and counts its requests so that tests and benchmarks can prove idle reconciles write
nothing.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import random
import re
import ssl
import sys
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .errors import InvalidError, KubeUnavailableError, NotFoundError, error_for
from .kubeconfig import (
    KubeconfigError,
    PluginUserError,
    in_cluster,
    kubeconfig_path,
    read_kubeconfig,
)
from .resources import Resource, resource_for
from .transport import AiohttpTransport, Answer, HttpxTransport, Transport, TransportError

if importlib.util.find_spec("sniffio") is None:
    # httpcore tries `import sniffio` on every request; without sniffio installed (it is
    # optional) each attempt searches sys.path again (3 % of the CPU of a busy operator). A
    # None entry makes the failing import immediate; the outcome is the same ImportError.
    sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]

FIELD_MANAGER = "devserver-operator"
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
MERGE_PATCH_CONTENT_TYPE = "application/merge-patch+json"
MAX_CONNECTIONS = 8


@dataclass(frozen=True)
class RetryPolicy:
    """Quick, bounded retries of one request inside the client.

    They absorb what an API server under load or in a rolling restart answers for a moment
    (429 with Retry-After, 5xx, a refused connection, a lost race on a patch) without
    failing the whole reconcile, which would otherwise wait for kopf's much longer retry.
    Anything that outlasts them surfaces as an error, and the reconcile backs off."""

    attempts: int = 4
    first_delay: float = 0.2
    max_delay: float = 5.0
    """Longest pause between attempts; a longer Retry-After is not waited for here."""

    def delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Pause before attempt ``attempt + 1``, or None to give up."""
        if attempt >= self.attempts:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_delay else None
        backoff = min(self.max_delay, self.first_delay * 2.0 ** (attempt - 1))
        return backoff * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security


NO_RETRY = RetryPolicy(attempts=1)
_RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
# Retrying these cannot do anything twice: server-side apply and merge patches converge on
# the same object, a GET reads, a DELETE with a uid precondition answers 404 the second time.
_IDEMPOTENT_METHODS = frozenset({"GET", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Credentials:
    """How to reach and authenticate to one API server."""

    server: str
    ca_path: str | None = None
    ca_data: bytes | None = None
    insecure: bool = False
    token: str | None = None
    certificate_path: str | None = None
    certificate_data: bytes | None = None
    private_key_path: str | None = None
    private_key_data: bytes | None = None

    @classmethod
    def from_kopf(cls, info: Any) -> Credentials:
        """From kopf's ConnectionInfo, so both clients share one login."""

        def as_bytes(value: str | bytes | None) -> bytes | None:
            return value.encode() if isinstance(value, str) else value

        return cls(
            server=info.server,
            ca_path=info.ca_path,
            ca_data=as_bytes(info.ca_data),
            insecure=bool(info.insecure),
            token=info.token,
            certificate_path=info.certificate_path,
            certificate_data=as_bytes(info.certificate_data),
            private_key_path=info.private_key_path,
            private_key_data=as_bytes(info.private_key_data),
        )

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None) -> Credentials:
        """From a kubeconfig file, or the in-cluster service account when there is none."""
        found = kubeconfig_path(path)
        if found is None:
            return cls(**in_cluster())
        try:
            return cls(**read_kubeconfig(found, context))
        except PluginUserError:
            return cls._through_plugin(str(found), context)

    @classmethod
    def _through_plugin(cls, path: str, context: str | None) -> Credentials:
        """A user that logs in through an exec/auth-provider plugin: the kubernetes library
        runs the plugin (the optional extra ``kubeconfig-plugins``)."""
        try:
            from kubernetes import client as k8s_client
            from kubernetes import config as k8s_config
        except ImportError as error:
            raise KubeconfigError(
                f"{path}: the user logs in through a plugin; install "
                "devserver-workflow-operator[kubeconfig-plugins] to run it"
            ) from error
        configuration = k8s_client.Configuration()
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, context=context, client_configuration=configuration
        )
        header = (configuration.api_key or {}).get("authorization") or (
            configuration.api_key or {}
        ).get("BearerToken")
        token = header.split(" ", 1)[1] if header and " " in header else header
        return cls(
            server=configuration.host,
            ca_path=configuration.ssl_ca_cert,
            insecure=not configuration.verify_ssl,
            token=token,
            certificate_path=configuration.cert_file,
            private_key_path=configuration.key_file,
        )


# Characters JSON may carry raw but the YAML reader may not: C1 controls and U+FFFE/U+FFFF
# it refuses with a 400, and NEL, U+2028 and U+2029 it reads as line breaks, which a quoted
# string folds into spaces. JSON itself already escapes the C0 controls.
_NOT_YAML_SAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufffe\uffff]")


def _yaml_safe_json(manifest: Mapping[str, Any]) -> bytes:
    """The apply body: JSON, which the server reads as YAML.

    Raw UTF-8 rather than ASCII escapes, since YAML refuses the surrogate-pair escapes JSON
    uses for characters beyond U+FFFF; the few characters YAML cannot take raw are escaped
    (they can only stand inside strings, where an escape means the same)."""
    text = json.dumps(manifest, ensure_ascii=False)
    return _NOT_YAML_SAFE.sub(lambda found: f"\\u{ord(found.group()):04x}", text).encode()


def _ssl_context(credentials: Credentials) -> ssl.SSLContext | bool:
    if credentials.insecure:
        return False
    context = ssl.create_default_context(
        cafile=credentials.ca_path,
        cadata=credentials.ca_data.decode() if credentials.ca_data else None,
    )
    certificate, key = credentials.certificate_path, credentials.private_key_path
    if credentials.certificate_data and credentials.private_key_data:
        # ssl only loads client certificates from files; the files live just long enough.
        with tempfile.TemporaryDirectory() as directory:
            certificate_file = Path(directory) / "tls.crt"
            key_file = Path(directory) / "tls.key"
            certificate_file.write_bytes(credentials.certificate_data)
            key_file.touch(mode=0o600)
            key_file.write_bytes(credentials.private_key_data)
            context.load_cert_chain(certificate_file, key_file)
    elif certificate and key:
        context.load_cert_chain(certificate, key)
    return context


class KubeClient:
    """Async access to the API server for the kinds in ``resources.py``."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        field_manager: str = FIELD_MANAGER,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.field_manager = field_manager
        self.retry = retry or RetryPolicy()
        headers = {"Accept": "application/json", "User-Agent": field_manager}
        if credentials.token:
            headers["Authorization"] = f"Bearer {credentials.token}"
        # Few connections, all kept open: a connection closed after a burst costs a new TLS
        # handshake with a client certificate (a fifth of the operator's CPU when 1000
        # objects converged). Reconciles in flight are capped to match
        # (handlers.context.RECONCILE_CONCURRENCY).
        verify = _ssl_context(credentials)
        self._transport: Transport
        if transport is not None:
            self._transport = HttpxTransport(
                credentials.server,
                verify=verify,
                headers=headers,
                timeout=timeout,
                connections=MAX_CONNECTIONS,
                transport=transport,
            )
        else:
            self._transport = AiohttpTransport(
                credentials.server,
                verify=verify,
                headers=headers,
                timeout=timeout,
                connections=MAX_CONNECTIONS,
            )
        self.requests: Counter[str] = Counter()

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    @property
    def writes(self) -> int:
        return sum(count for verb, count in self.requests.items() if verb not in ("GET", "LIST"))

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        counted_as: str | None = None,
    ) -> dict[str, Any]:
        headers = {"Content-Type": content_type} if content_type else {}
        for attempt in range(1, self.retry.attempts + 1):
            self.requests[counted_as or method] += 1
            try:
                answer = await self._transport.send(
                    method, path, params=params, body=body, headers=headers
                )
            except TransportError as error:
                # A refused connection never reached the server; any other failure may have.
                pause = (
                    None
                    if error.sent and method not in _IDEMPOTENT_METHODS
                    else self.retry.delay(attempt, None)
                )
                if pause is None:
                    raise KubeUnavailableError(f"{method} {path}: {error}") from error
                await asyncio.sleep(pause)
                continue
            if answer.status < 400:
                break
            refusal = _api_error(answer)
            pause = (
                self.retry.delay(attempt, _retry_after(answer.retry_after))
                if _worth_retrying(method, answer.status) and not isinstance(refusal, InvalidError)
                else None
            )
            if pause is None:
                raise refusal
            await asyncio.sleep(pause)
        if not answer.content:
            return {}
        result: dict[str, Any] = json.loads(answer.content)
        return result

    async def get(
        self, api_version: str, kind: str, name: str, namespace: str | None
    ) -> dict[str, Any] | None:
        try:
            return await self._request("GET", resource_for(api_version, kind).item(name, namespace))
        except NotFoundError:
            return None

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        label_selector: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        params = {}
        if label_selector:
            params["labelSelector"] = ",".join(f"{k}={v}" for k, v in label_selector.items())
        path = resource_for(api_version, kind).collection(namespace)
        result = await self._request("GET", path, params=params, counted_as="LIST")
        items: list[dict[str, Any]] = result.get("items", [])
        return items

    async def apply(self, manifest: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply under our field manager, taking over conflicting fields.

        force=true is deliberate: the operator is the source of truth for the fields it sets,
        and a conflict (someone edited a child) is drift to be repaired, not negotiated."""
        resource = resource_for(manifest["apiVersion"], manifest["kind"])
        metadata = manifest["metadata"]
        params = {"fieldManager": self.field_manager, "force": "true"}
        if dry_run:
            params["dryRun"] = "All"
        return await self._request(
            "PATCH",
            resource.item(metadata["name"], metadata.get("namespace")),
            params=params,
            body=_yaml_safe_json(manifest),
            content_type=APPLY_CONTENT_TYPE,
            counted_as="DRYRUN" if dry_run else "APPLY",
        )

    async def create(self, manifest: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        resource = resource_for(manifest["apiVersion"], manifest["kind"])
        namespace = manifest.get("metadata", {}).get("namespace")
        params = {"fieldManager": self.field_manager}
        if dry_run:
            params["dryRun"] = "All"
        return await self._request(
            "POST",
            resource.collection(namespace),
            params=params,
            body=json.dumps(manifest).encode(),
            content_type="application/json",
            counted_as="DRYRUN" if dry_run else "POST",
        )

    async def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        *,
        uid: str | None = None,
    ) -> bool:
        """Delete; with ``uid``, only that incarnation of the object. False if already gone."""
        body: dict[str, Any] = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": "Background",
        }
        if uid is not None:
            body["preconditions"] = {"uid": uid}
        try:
            await self._request(
                "DELETE",
                resource_for(api_version, kind).item(name, namespace),
                body=json.dumps(body).encode(),
                content_type="application/json",
            )
        except NotFoundError:
            return False
        return True

    async def merge_patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        patch: Mapping[str, Any],
    ) -> dict[str, Any]:
        """A JSON merge patch: maps merge, lists are replaced whole."""
        return await self._request(
            "PATCH",
            resource_for(api_version, kind).item(name, namespace),
            params={"fieldManager": self.field_manager},
            body=json.dumps(patch).encode(),
            content_type=MERGE_PATCH_CONTENT_TYPE,
        )

    async def patch_status(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        patch: Mapping[str, Any],
    ) -> dict[str, Any]:
        path = resource_for(api_version, kind).item(name, namespace) + "/status"
        return await self._request(
            "PATCH",
            path,
            body=json.dumps({"status": patch}).encode(),
            content_type=MERGE_PATCH_CONTENT_TYPE,
            counted_as="STATUS",
        )

    async def raw(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Any other call (SubjectAccessReview, discovery), by path."""
        return await self._request(
            method,
            path,
            body=json.dumps(body).encode() if body is not None else None,
            content_type="application/json" if body is not None else None,
        )

    async def has_api(self, group_version: str, plural: str) -> bool:
        """Whether the server serves ``plural`` in ``group_version`` (e.g. an optional CRD)."""
        try:
            result = await self._request("GET", f"/apis/{group_version}")
        except NotFoundError:
            return False
        return any(r.get("name") == plural for r in result.get("resources", []))


def _worth_retrying(method: str, status: int) -> bool:
    if status == 429:
        return True  # refused before any work was done, whatever the method
    if status == 409:
        # A patch lost a race with another writer; a POST's 409 means AlreadyExists.
        return method == "PATCH"
    return status in _RETRIED_STATUSES and method in _IDEMPOTENT_METHODS


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from the API server; back off as usual


def _api_error(answer: Answer) -> Exception:
    text = answer.content.decode("utf-8", errors="replace")
    try:
        status = json.loads(text)
        reason = str(status.get("reason") or answer.reason)
        message = str(status.get("message") or text[:200])
    except (ValueError, AttributeError):
        reason, message = answer.reason, text[:200]
    return error_for(answer.status, reason, message)


__all__ = ["FIELD_MANAGER", "NO_RETRY", "Credentials", "KubeClient", "Resource", "RetryPolicy"]
