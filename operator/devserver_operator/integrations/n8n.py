"""Async client for n8n's public REST API (``/api/v1``, header ``X-N8N-API-KEY``).

Covers what the WorkflowIntegration reconciler needs: workflows (CRUD, cursor pagination,
activation), workflow tags, tags, credentials (create, delete, schema) and executions.

Facts about n8n's public API this module encodes (seen on n8n 1.123.x):

- Create/update accept only ``name``, ``nodes``, ``connections`` and ``settings``; the
  client always sends :func:`writable_workflow` of what it is given, so a fetched workflow
  can be sent back as it is. The workflow shape itself (webhook ids, webhook URLs, what n8n
  adds on save) is in :mod:`.n8n_payloads`, the answer models in :mod:`.n8n_models`; both
  are re-exported here.
- Credentials can only be created, deleted and described (schema): never read or updated.
- n8n 2.x calls activate/deactivate "publish"/"unpublish"; the client finds out which one
  the server has (falls back on 404/405) and remembers it.

Errors are the typed ones of :mod:`.n8n_errors`, carrying n8n's own message and the HTTP
status. Calls are retried with exponential backoff and jitter on connection errors, 429
(honouring ``Retry-After``) and 5xx, within a bounded number of attempts and total time.
The API key and credential data never appear in a log line or an exception.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import SecretStr, ValidationError

from .n8n_errors import (
    N8nAuthError,
    N8nBadRequestError,
    N8nConflictError,
    N8nError,
    N8nNotFoundError,
    N8nUnavailableError,
    error_for_status,
    redact,
)
from .n8n_models import Credential, Execution, ModelT, Page, Tag, Workflow
from .n8n_payloads import (
    WEBHOOK_ID_NAMESPACE,
    WEBHOOK_NODE_TYPES,
    WRITABLE_WORKFLOW_FIELDS,
    WorkflowPayload,
    assign_webhook_ids,
    production_webhook_urls,
    webhook_id_for,
    writable_workflow,
)

__all__ = [
    "WEBHOOK_ID_NAMESPACE",
    "WEBHOOK_NODE_TYPES",
    "WRITABLE_WORKFLOW_FIELDS",
    "ActivationApi",
    "Credential",
    "Execution",
    "N8nAuthError",
    "N8nBadRequestError",
    "N8nClient",
    "N8nConflictError",
    "N8nError",
    "N8nNotFoundError",
    "N8nUnavailableError",
    "Page",
    "RetryPolicy",
    "Tag",
    "Workflow",
    "WorkflowPayload",
    "assign_webhook_ids",
    "production_webhook_urls",
    "webhook_id_for",
    "writable_workflow",
]

log = logging.getLogger(__name__)

API_PATH = "/api/v1"
API_KEY_HEADER = "X-N8N-API-KEY"
# The title n8n's security audit gives its list of credentials that no workflow uses.
UNUSED_CREDENTIALS_SECTION = "Credentials not used in any workflow"

# --------------------------------------------------------------------------------------------
# Retries
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of the retry loop.

    ``max_attempts`` counts the first try. ``total_timeout`` bounds the whole call, retries
    and waits included (each attempt is also cut at the deadline). The n-th wait is
    ``min(max_delay, initial_delay * 2**(n-1))`` with "equal jitter" (half fixed, half random);
    a ``Retry-After`` answer is waited for as asked (at most ``max_retry_after``), unless that
    would pass the deadline, in which case the call fails at once.
    """

    max_attempts: int = 5
    initial_delay: float = 0.5
    max_delay: float = 8.0
    total_timeout: float = 60.0
    max_retry_after: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min(self.initial_delay, self.max_delay, self.total_timeout, self.max_retry_after) < 0:
            raise ValueError("delays and timeouts must not be negative")

    def backoff(self, retry: int) -> float:
        """Wait before retry number ``retry`` (1-based), with jitter."""
        delay = min(self.max_delay, self.initial_delay * 2.0 ** (retry - 1))
        return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not crypto


NO_RETRY = RetryPolicy(max_attempts=1)

# Answers that say the request was not processed: safe to retry for any method.
_RETRY_ALWAYS_STATUSES = frozenset({429, 503})
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def _retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date), None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _error_message(response: httpx.Response) -> str:
    """n8n's own message from an error answer ({"message": ...}), else a short text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        message = body.get("message")
        if isinstance(message, str) and message:
            description = body.get("description")
            if isinstance(description, str) and description and description != message:
                return f"{message}: {description}"
            return message
    text = response.text.strip()
    if text and "html" not in response.headers.get("content-type", ""):
        return text[:500]
    return response.reason_phrase or f"HTTP {response.status_code}"


# --------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------

ActivationApi = Literal["activate", "publish"]
_TOGGLE_VERBS: dict[ActivationApi, tuple[str, str]] = {
    "activate": ("activate", "deactivate"),
    "publish": ("publish", "unpublish"),
}


class N8nClient:
    """Async client of one n8n instance's public API.

    ``base_url`` is n8n's root URL (``http://n8n:5678``; a trailing ``/api/v1`` is accepted).
    Use as ``async with N8nClient(...) as n8n:`` or call :meth:`aclose`.
    ``activation_api`` forces activate/deactivate (n8n 1.x) or publish/unpublish (n8n 2.x);
    by default the client detects it on first use.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | SecretStr,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | httpx.Timeout = 15.0,
        activation_api: ActivationApi | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: bool | ssl.SSLContext = True,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        root = base_url.rstrip("/")
        if root.endswith(API_PATH):
            root = root[: -len(API_PATH)]
        self.base_url = root
        self.retry = retry or RetryPolicy()
        self.activation_api: ActivationApi | None = activation_api
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        self._secret_values = (key,)
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=root + API_PATH,
            headers={API_KEY_HEADER: key, "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
            verify=verify,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"N8nClient(base_url={self.base_url!r})"

    async def __aenter__(self) -> N8nClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ---------------------------------------------------------------- workflows

    async def create_workflow(self, workflow: Mapping[str, Any]) -> Workflow:
        """Create a workflow from ``workflow`` (stripped to its writable fields first)."""
        data = await self._request("POST", "/workflows", json=writable_workflow(workflow))
        return self._parse(Workflow, data, "POST", "/workflows")

    async def update_workflow(self, workflow_id: str, workflow: Mapping[str, Any]) -> Workflow:
        """Replace a workflow's name, nodes, connections and settings."""
        path = f"/workflows/{_seg(workflow_id)}"
        data = await self._request("PUT", path, json=writable_workflow(workflow))
        return self._parse(Workflow, data, "PUT", path)

    async def get_workflow(self, workflow_id: str) -> Workflow:
        path = f"/workflows/{_seg(workflow_id)}"
        return self._parse(Workflow, await self._request("GET", path), "GET", path)

    async def delete_workflow(self, workflow_id: str) -> Workflow:
        """Delete a workflow; returns it as it was."""
        path = f"/workflows/{_seg(workflow_id)}"
        return self._parse(Workflow, await self._request("DELETE", path), "DELETE", path)

    async def list_workflows(
        self,
        *,
        name: str | None = None,
        tags: Sequence[str] | None = None,
        active: bool | None = None,
        project_id: str | None = None,
        exclude_pinned_data: bool | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Workflow]:
        """One page of workflows. ``tags`` are tag NAMES (a workflow must have all of them)."""
        params = _params(
            name=name,
            tags=",".join(tags) if tags else None,
            active=active,
            projectId=project_id,
            excludePinnedData=exclude_pinned_data,
            limit=limit,
            cursor=cursor,
        )
        data = await self._request("GET", "/workflows", params=params)
        return self._parse(Page[Workflow], data, "GET", "/workflows")

    async def iter_workflows(
        self,
        *,
        name: str | None = None,
        tags: Sequence[str] | None = None,
        active: bool | None = None,
        project_id: str | None = None,
        exclude_pinned_data: bool | None = None,
        page_size: int | None = None,
        max_pages: int = 1000,
    ) -> AsyncIterator[Workflow]:
        """All workflows matching the filters, following the cursor (at most ``max_pages``)."""
        cursor: str | None = None
        for _ in range(max_pages):
            page = await self.list_workflows(
                name=name,
                tags=tags,
                active=active,
                project_id=project_id,
                exclude_pinned_data=exclude_pinned_data,
                limit=page_size,
                cursor=cursor,
            )
            for workflow in page.data:
                yield workflow
            if not page.next_cursor:
                return
            cursor = page.next_cursor
        raise N8nError(f"more than {max_pages} pages of workflows", method="GET", path="/workflows")

    async def activate_workflow(self, workflow_id: str) -> Workflow:
        """Activate (n8n 1.x) or publish (n8n 2.x) a workflow; its triggers start."""
        return await self._toggle(workflow_id, on=True)

    async def deactivate_workflow(self, workflow_id: str) -> Workflow:
        """Deactivate (n8n 1.x) or unpublish (n8n 2.x) a workflow."""
        return await self._toggle(workflow_id, on=False)

    async def _toggle(self, workflow_id: str, *, on: bool) -> Workflow:
        candidates: list[ActivationApi] = (
            [self.activation_api] if self.activation_api else ["activate", "publish"]
        )
        first_error: N8nError | None = None
        for api in candidates:
            verb = _TOGGLE_VERBS[api][0 if on else 1]
            path = f"/workflows/{_seg(workflow_id)}/{verb}"
            try:
                # Activation is idempotent: retrying it after a lost answer is safe.
                data = await self._request("POST", path, idempotent=True)
            except N8nError as exc:
                if exc.status in (404, 405) and self.activation_api is None:
                    first_error = first_error or exc
                    continue  # the route may not exist on this n8n version: try the other
                if exc.status is not None:
                    self.activation_api = api  # the route exists: it answered otherwise
                raise
            self.activation_api = api
            return self._parse(Workflow, data, "POST", path)
        assert first_error is not None
        raise first_error

    # ---------------------------------------------------------------- tags

    async def get_workflow_tags(self, workflow_id: str) -> list[Tag]:
        path = f"/workflows/{_seg(workflow_id)}/tags"
        data = await self._request("GET", path)
        return [self._parse(Tag, item, "GET", path) for item in _as_list(data, "GET", path)]

    async def set_workflow_tags(self, workflow_id: str, tag_ids: Sequence[str]) -> list[Tag]:
        """Replace a workflow's tags with the tags of these ids."""
        path = f"/workflows/{_seg(workflow_id)}/tags"
        data = await self._request("PUT", path, json=[{"id": tag_id} for tag_id in tag_ids])
        return [self._parse(Tag, item, "PUT", path) for item in _as_list(data, "PUT", path)]

    async def list_tags(self, *, limit: int | None = None, cursor: str | None = None) -> Page[Tag]:
        data = await self._request("GET", "/tags", params=_params(limit=limit, cursor=cursor))
        return self._parse(Page[Tag], data, "GET", "/tags")

    async def iter_tags(
        self, *, page_size: int | None = None, max_pages: int = 1000
    ) -> AsyncIterator[Tag]:
        cursor: str | None = None
        for _ in range(max_pages):
            page = await self.list_tags(limit=page_size, cursor=cursor)
            for tag in page.data:
                yield tag
            if not page.next_cursor:
                return
            cursor = page.next_cursor
        raise N8nError(f"more than {max_pages} pages of tags", method="GET", path="/tags")

    async def create_tag(self, name: str) -> Tag:
        """Create a tag; :class:`N8nConflictError` if one with this name exists."""
        return self._parse(
            Tag, await self._request("POST", "/tags", json={"name": name}), "POST", "/tags"
        )

    async def delete_tag(self, tag_id: str) -> Tag:
        path = f"/tags/{_seg(tag_id)}"
        return self._parse(Tag, await self._request("DELETE", path), "DELETE", path)

    async def ensure_tag(self, name: str) -> Tag:
        """The tag with this name, created if missing (safe against a concurrent create)."""
        for attempt in range(2):
            async for tag in self.iter_tags(page_size=250):
                if tag.name == name:
                    return tag
            if attempt == 0:
                try:
                    return await self.create_tag(name)
                except N8nConflictError:
                    continue  # created meanwhile: look it up again
        raise N8nError(f"tag {name!r} neither found nor created", method="POST", path="/tags")

    # ---------------------------------------------------------------- credentials

    async def create_credential(self, name: str, type_: str, data: Mapping[str, Any]) -> Credential:
        """Create a credential of n8n type ``type_`` (e.g. "httpHeaderAuth") from ``data``.

        The values in ``data`` are scrubbed from any error message n8n might echo them in.
        """
        secrets = tuple(_string_leaves(data))
        answer = await self._request(
            "POST",
            "/credentials",
            json={"name": name, "type": type_, "data": dict(data)},
            secrets=secrets,
        )
        return self._parse(Credential, answer, "POST", "/credentials")

    async def unused_credentials(self) -> list[tuple[str, str]]:
        """(id, name) of every credential no workflow refers to.

        n8n's public API cannot list credentials; its security audit can, and its first
        credentials section is exactly these. Needs the instance owner's API key, like the
        rest of what the operator does."""
        answer = await self._request(
            "POST", "/audit", json={"additionalOptions": {"categories": ["credentials"]}}
        )
        report = answer.get("Credentials Risk Report") if isinstance(answer, dict) else None
        if not isinstance(report, dict):
            return []  # n8n leaves the report out when it has nothing to say
        for section in report.get("sections") or []:
            if section.get("title") != UNUSED_CREDENTIALS_SECTION:
                continue
            return [
                (str(item["id"]), str(item.get("name", "")))
                for item in section.get("location") or []
                if isinstance(item, dict) and item.get("kind") == "credential" and "id" in item
            ]
        return []

    async def delete_credential(self, credential_id: str) -> Credential:
        """Delete a credential; returns it as it was (n8n's answer lacks the id: added back)."""
        path = f"/credentials/{_seg(credential_id)}"
        data = await self._request("DELETE", path)
        if isinstance(data, dict):
            data = {"id": credential_id, **data}
        return self._parse(Credential, data, "DELETE", path)

    async def get_credential_schema(self, type_: str) -> dict[str, Any]:
        """The JSON schema of a credential type's ``data``."""
        path = f"/credentials/schema/{_seg(type_)}"
        data = await self._request("GET", path)
        if not isinstance(data, dict):
            raise N8nError("unexpected answer: not a JSON object", method="GET", path=path)
        return data

    # ---------------------------------------------------------------- executions

    async def list_executions(
        self,
        *,
        workflow_id: str | None = None,
        status: str | None = None,
        include_data: bool | None = None,
        project_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Execution]:
        """One page of executions, newest first; ``status`` e.g. "success", "error", "waiting"."""
        params = _params(
            workflowId=workflow_id,
            status=status,
            includeData=include_data,
            projectId=project_id,
            limit=limit,
            cursor=cursor,
        )
        data = await self._request("GET", "/executions", params=params)
        return self._parse(Page[Execution], data, "GET", "/executions")

    async def iter_executions(
        self,
        *,
        workflow_id: str | None = None,
        status: str | None = None,
        page_size: int | None = None,
        max_pages: int = 1000,
    ) -> AsyncIterator[Execution]:
        cursor: str | None = None
        for _ in range(max_pages):
            page = await self.list_executions(
                workflow_id=workflow_id, status=status, limit=page_size, cursor=cursor
            )
            for execution in page.data:
                yield execution
            if not page.next_cursor:
                return
            cursor = page.next_cursor
        raise N8nError(f"more than {max_pages} pages", method="GET", path="/executions")

    async def get_execution(self, execution_id: str, *, include_data: bool = False) -> Execution:
        path = f"/executions/{_seg(execution_id)}"
        data = await self._request("GET", path, params=_params(includeData=include_data))
        return self._parse(Execution, data, "GET", path)

    # ---------------------------------------------------------------- transport

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        secrets: Sequence[str] = (),
    ) -> Any:
        """Send one API call with retries; the decoded JSON answer (None when empty)."""
        policy = self.retry
        safe_to_repeat = method in _IDEMPOTENT_METHODS if idempotent is None else idempotent
        hidden = (*self._secret_values, *secrets)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + policy.total_timeout
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - loop.time()
            failure: N8nError
            retry_after: float | None = None
            try:
                if remaining <= 0:
                    raise TimeoutError
                async with asyncio.timeout(remaining):
                    response = await self._http.request(method, path, params=params, json=json)
            except TimeoutError:
                raise N8nUnavailableError(
                    f"no answer within the total timeout of {policy.total_timeout:g}s "
                    f"({attempt} attempt(s))",
                    method=method,
                    path=path,
                ) from None
            except httpx.TransportError as exc:
                # The request never left: a retry cannot duplicate it.
                not_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                failure = N8nUnavailableError(
                    f"cannot reach n8n at {self.base_url}: {type(exc).__name__}"
                    + (f": {redact(str(exc), hidden)}" if str(exc) else ""),
                    method=method,
                    path=path,
                )
                retryable = not_sent or safe_to_repeat
            except httpx.HTTPError as exc:
                # An answer that could not be read (bad encoding, a redirect loop): something
                # between us and n8n is broken; repeating the call does not fix that.
                raise N8nError(
                    f"unreadable answer from n8n at {self.base_url}: {type(exc).__name__}: "
                    f"{redact(str(exc), hidden)}",
                    method=method,
                    path=path,
                ) from None
            else:
                status = response.status_code
                if status < 400:
                    log.debug("n8n %s %s -> %d (attempt %d)", method, path, status, attempt)
                    return _decode(response, method, path)
                failure = error_for_status(
                    status, redact(_error_message(response), hidden), method=method, path=path
                )
                retryable = status in _RETRY_ALWAYS_STATUSES or (status >= 500 and safe_to_repeat)
                retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
            if not retryable:
                raise failure
            if attempt >= policy.max_attempts:
                raise _exhausted(failure, attempt)
            if retry_after is not None:
                delay = min(retry_after, policy.max_retry_after)
            else:
                delay = policy.backoff(attempt)
            if loop.time() + delay >= deadline:
                raise _exhausted(failure, attempt)
            log.warning(
                "n8n %s %s failed (%s); retry %d/%d in %.2fs",
                method,
                path,
                f"HTTP {failure.status}" if failure.status is not None else "connection error",
                attempt,
                policy.max_attempts - 1,
                delay,
            )
            await self._sleep(delay)

    def _parse(self, model: type[ModelT], data: Any, method: str, path: str) -> ModelT:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            # Never echo the input: describe where the answer did not fit, not what it held.
            where = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:3]
            )
            raise N8nError(
                f"unexpected answer from n8n ({where})", method=method, path=path
            ) from None


def _exhausted(failure: N8nError, attempts: int) -> N8nUnavailableError:
    """The error after the retry budget ran out: always 'unavailable', with n8n's message."""
    return N8nUnavailableError(
        f"{failure.message} (gave up after {attempts} attempt(s))",
        status=failure.status,
        method=failure.method,
        path=failure.path,
    )


def _decode(response: httpx.Response, method: str, path: str) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise N8nError(
            f"unexpected non-JSON answer (HTTP {response.status_code})",
            status=response.status_code,
            method=method,
            path=path,
        ) from None


def _seg(value: str) -> str:
    """One path segment, quoted (ids come from status or user input)."""
    if not value:
        raise ValueError("an empty id cannot name an n8n object")
    return quote(value, safe="")


def _params(**values: str | int | bool | None) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            continue
        params[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return params


def _as_list(data: Any, method: str, path: str) -> list[Any]:
    if not isinstance(data, list):
        raise N8nError("unexpected answer: not a JSON list", method=method, path=path)
    return data


def _string_leaves(value: Any) -> Iterable[str]:
    """Every string inside a JSON-like value (to scrub credential data from messages)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _string_leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _string_leaves(item)
