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
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from .credentials import Credentials, load_credentials, ssl_context
from .errors import InvalidError, KubeUnavailableError, NotFoundError, error_for
from .login import (
    BuildTransport,
    FixedLogin,
    KubeconfigLogin,
    LoginSource,
    LoginUnavailableError,
    Session,
    VaultLogin,
)
from .resources import Resource, resource_for
from .transport import (
    AiohttpTransport,
    Answer,
    HttpxTransport,
    StaleSessionError,
    Transport,
    TransportError,
)

if importlib.util.find_spec("sniffio") is None:
    # httpcore tries `import sniffio` on every request; without sniffio installed (it is
    # optional) each attempt searches sys.path again (3 % of the CPU of a busy operator). A
    # None entry makes the failing import immediate; the outcome is the same ImportError.
    sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]

FIELD_MANAGER = "devserver-operator"
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
MERGE_PATCH_CONTENT_TYPE = "application/merge-patch+json"
MAX_CONNECTIONS = 8
# A request whose session was closed under it (its login replaced) takes the new one; more
# than this many replacements during one request is a login that does not hold.
MAX_STALE_RETRIES = 2


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


class KubeClient:
    """Async access to the API server for the kinds in ``resources.py``."""

    def __init__(
        self,
        credentials: Credentials | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        field_manager: str = FIELD_MANAGER,
        retry: RetryPolicy | None = None,
        login: Callable[[BuildTransport], LoginSource] | None = None,
    ) -> None:
        """With ``credentials``, one fixed login; with ``login`` (see the classmethods), a
        source that logs in again when the server refuses the login or it expires."""
        self.field_manager = field_manager
        self.retry = retry or RetryPolicy()
        self._timeout = timeout
        self._httpx_transport = transport
        if login is not None:
            self.login = login(self._build_transport)
        elif credentials is not None:
            self.login = FixedLogin(self._build_transport(credentials))
        else:
            raise TypeError("KubeClient needs credentials or a login")
        self.requests: Counter[str] = Counter()

    @classmethod
    def from_kubeconfig(
        cls, path: str | None = None, context: str | None = None, **options: Any
    ) -> KubeClient:
        """Logged in from kubeconfig files or in-cluster, and again whenever needed."""
        return cls(
            login=lambda build: KubeconfigLogin(lambda: load_credentials(path, context), build),
            **options,
        )

    @classmethod
    def from_kopf_vault(
        cls, vault: Any, token_file: Callable[[], str | None], **options: Any
    ) -> KubeClient:
        """Logged in as kopf is, from its vault (see login.VaultLogin)."""
        return cls(login=lambda build: VaultLogin(vault, build, token_file), **options)

    def _build_transport(self, credentials: Credentials) -> Transport:
        headers = {
            "Accept": "application/json",
            "User-Agent": self.field_manager,
            **credentials.headers(),
        }
        # Few connections, all kept open: a connection closed after a burst costs a new TLS
        # handshake with a client certificate (a fifth of the operator's CPU when 1000
        # objects converged). Reconciles in flight are capped to match
        # (reconcile.context.RECONCILE_CONCURRENCY).
        verify = ssl_context(credentials)
        if self._httpx_transport is not None:
            return HttpxTransport(
                credentials.server,
                verify=verify,
                headers=headers,
                timeout=self._timeout,
                connections=MAX_CONNECTIONS,
                transport=self._httpx_transport,
            )
        return AiohttpTransport(
            credentials.server,
            verify=verify,
            headers=headers,
            timeout=self._timeout,
            connections=MAX_CONNECTIONS,
        )

    async def close(self) -> None:
        await self.login.close()

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _session(self) -> Session:
        try:
            return await self.login.session()
        except LoginUnavailableError as error:
            raise KubeUnavailableError(str(error)) from error

    async def _refused(self, session: Session, refusal: Exception) -> None:
        try:
            await self.login.refused(session, refusal)
        except LoginUnavailableError as error:
            raise refusal from error

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
        attempt, stale_retries, logged_in_again = 1, 0, False
        while True:
            self.requests[counted_as or method] += 1
            session = await self._session()
            try:
                answer = await session.transport.send(
                    method, path, params=params, body=body, headers=headers
                )
            except StaleSessionError as error:
                # Its login was replaced (a 401 elsewhere, a rotated token): take the new one.
                resend = not error.sent or method in _IDEMPOTENT_METHODS
                if not resend or stale_retries >= MAX_STALE_RETRIES:
                    raise KubeUnavailableError(f"{method} {path}: {error}") from error
                stale_retries += 1
                continue
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
                attempt += 1
                continue
            if answer.status == 401 and not logged_in_again:
                # The server did nothing with the request: log in again once and resend it.
                logged_in_again = True
                await self._refused(session, _api_error(answer))
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
            attempt += 1
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


__all__ = [
    "FIELD_MANAGER",
    "NO_RETRY",
    "Credentials",
    "KubeClient",
    "Resource",
    "RetryPolicy",
    "load_credentials",
]
