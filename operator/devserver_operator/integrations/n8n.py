"""Async client for n8n's public REST API (``/api/v1``, header ``X-N8N-API-KEY``).

Covers what the WorkflowIntegration reconciler needs: workflows (CRUD, cursor pagination,
activation), workflow tags, tags, credentials (create, delete, schema) and executions.

Facts about n8n's public API this module encodes (seen on n8n 1.123.x):

- Create/update accept only ``name``, ``nodes``, ``connections`` and ``settings``; the
  client always sends :func:`writable_workflow` of what it is given, so a fetched workflow
  can be sent back as it is.
- A Webhook node without ``webhookId`` registers under ``/webhook/<workflowId>/webhook/<path>``;
  :func:`assign_webhook_ids` gives such nodes a stable UUID so the URL is ``/webhook/<path>``.
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
import copy
import email.utils
import logging
import random
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypedDict, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic.alias_generators import to_camel

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

# --------------------------------------------------------------------------------------------
# Pure helpers (no I/O)
# --------------------------------------------------------------------------------------------

WRITABLE_WORKFLOW_FIELDS = ("name", "nodes", "connections", "settings")

# Node types whose webhook URL depends on ``webhookId``.
WEBHOOK_NODE_TYPES = frozenset(
    {
        "n8n-nodes-base.webhook",
        "n8n-nodes-base.formTrigger",
        "@n8n/n8n-nodes-langchain.chatTrigger",
        "@n8n/n8n-nodes-langchain.mcpTrigger",
    }
)

# Namespace of the uuid5 webhook ids this project assigns. Never change it: the ids, and so
# the URLs of webhooks with an empty or dynamic path, would change with it.
WEBHOOK_ID_NAMESPACE = uuid.uuid5(
    uuid.NAMESPACE_URL, "https://devserver.ecosphere.network/n8n/webhook"
)


class WorkflowPayload(TypedDict):
    """The writable shape of a workflow: what n8n's create/update accept."""

    name: str
    nodes: list[dict[str, Any]]
    connections: dict[str, Any]
    settings: dict[str, Any]


def writable_workflow(workflow: Mapping[str, Any]) -> WorkflowPayload:
    """Strip a workflow (fetched, exported or hand-written) to what create/update accept.

    Drops read-only and rejected fields (``id``, ``active``, ``tags``, ``createdAt``,
    ``updatedAt``, ``versionId``, ``pinData``, ``meta``, ``staticData``, ...). Returns deep
    copies, so the result can be changed without touching the input. ``settings`` defaults
    to ``{}`` (n8n requires it on create).
    """
    if "name" not in workflow or not isinstance(workflow["name"], str):
        raise ValueError("a workflow needs a string 'name'")
    nodes = _or_default(workflow.get("nodes"), [])
    connections = _or_default(workflow.get("connections"), {})
    settings = _or_default(workflow.get("settings"), {})
    if not isinstance(nodes, list):
        raise ValueError("a workflow's 'nodes' must be a list")
    if not isinstance(connections, Mapping) or not isinstance(settings, Mapping):
        raise ValueError("a workflow's 'connections' and 'settings' must be objects")
    return WorkflowPayload(
        name=workflow["name"],
        nodes=copy.deepcopy([dict(node) for node in nodes]),
        connections=copy.deepcopy(dict(connections)),
        settings=copy.deepcopy(dict(settings)),
    )


def _or_default(value: Any, default: Any) -> Any:
    return default if value is None else value


def webhook_id_for(
    workflow_key: str, node_name: str, namespace: uuid.UUID = WEBHOOK_ID_NAMESPACE
) -> str:
    """The stable webhook id of one node: uuid5(namespace, "<workflow_key>/<node_name>")."""
    return str(uuid.uuid5(namespace, f"{workflow_key}/{node_name}"))


def assign_webhook_ids(
    nodes: Iterable[Mapping[str, Any]],
    workflow_key: str,
    *,
    namespace: uuid.UUID = WEBHOOK_ID_NAMESPACE,
    node_types: Iterable[str] = WEBHOOK_NODE_TYPES,
) -> list[dict[str, Any]]:
    """Copies of ``nodes`` where every webhook-type node lacking a ``webhookId`` has one.

    The id is derived from ``workflow_key`` (e.g. "<namespace>/<resource>/<workflow>") and the
    node name, so re-applying the same workflow gives the same ids (and the same URLs).
    Nodes that already carry a non-empty ``webhookId`` keep it.
    """
    types = frozenset(node_types)
    result: list[dict[str, Any]] = []
    for node in nodes:
        copied = copy.deepcopy(dict(node))
        if copied.get("type") in types and not copied.get("webhookId"):
            copied["webhookId"] = webhook_id_for(
                workflow_key, str(copied.get("name", "")), namespace
            )
        result.append(copied)
    return result


def production_webhook_urls(
    base_url: str,
    nodes: Iterable[Mapping[str, Any]],
    *,
    workflow_id: str | None = None,
    webhook_prefix: str = "webhook",
) -> dict[str, str]:
    """Production URLs of the enabled Webhook nodes, by node name.

    Mirrors how n8n registers them: with a ``webhookId``, a static path is served at
    ``/webhook/<path>``, an empty path at ``/webhook/<webhookId>`` and a dynamic path
    (with ``:param`` segments) at ``/webhook/<webhookId>/<path>``. Without a ``webhookId``
    the URL is ``/webhook/<workflowId>/<lowercased node name>/<path>`` (only listed when
    ``workflow_id`` is given). ``webhook_prefix`` is n8n's ``N8N_ENDPOINT_WEBHOOK``.
    """
    root = f"{base_url.rstrip('/')}/{webhook_prefix.strip('/')}"
    urls: dict[str, str] = {}
    for node in nodes:
        if node.get("type") != "n8n-nodes-base.webhook" or node.get("disabled"):
            continue
        name = str(node.get("name", ""))
        params = node.get("parameters") or {}
        path = str(params.get("path", "") if isinstance(params, Mapping) else "").strip("/")
        webhook_id = node.get("webhookId")
        if webhook_id:
            if not path:
                urls[name] = f"{root}/{webhook_id}"
            elif any(segment.startswith(":") for segment in path.split("/")):
                urls[name] = f"{root}/{webhook_id}/{path}"
            else:
                urls[name] = f"{root}/{path}"
        elif workflow_id is not None:
            urls[name] = f"{root}/{workflow_id}/{quote(name.lower(), safe='')}/{path}"
    return urls


# --------------------------------------------------------------------------------------------
# Models of what n8n answers
# --------------------------------------------------------------------------------------------


class _N8nModel(BaseModel):
    # extra="allow": n8n adds fields between versions; keep them (model_dump returns them).
    model_config = ConfigDict(extra="allow", populate_by_name=True, alias_generator=to_camel)


def _id_to_str(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class Tag(_N8nModel):
    id: str
    name: str
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Workflow(_N8nModel):
    id: str
    name: str
    active: bool = False
    nodes: list[dict[str, Any]] = Field(default_factory=list)
    connections: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    tags: list[Tag] = Field(default_factory=list)
    version_id: str | None = None
    is_archived: bool | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def payload(self) -> WorkflowPayload:
        """This workflow in the shape create/update accept."""
        return writable_workflow(self.model_dump(by_alias=True))


class Credential(_N8nModel):
    """A created credential. n8n never returns a credential's data."""

    id: str
    name: str
    type: str
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Execution(_N8nModel):
    id: str
    finished: bool = False
    mode: str | None = None
    status: str | None = None
    workflow_id: str | None = None
    retry_of: str | None = None
    retry_success_id: str | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    wait_till: datetime | None = None
    data: dict[str, Any] | None = None

    _ids = field_validator("id", "workflow_id", "retry_of", "retry_success_id", mode="before")(
        _id_to_str
    )


ItemT = TypeVar("ItemT", bound=BaseModel)


class Page(BaseModel, Generic[ItemT]):
    """One page of a list answer; ``next_cursor`` is None on the last page."""

    model_config = ConfigDict(populate_by_name=True)

    data: list[ItemT]
    next_cursor: str | None = Field(default=None, alias="nextCursor")


ModelT = TypeVar("ModelT", bound=BaseModel)

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
