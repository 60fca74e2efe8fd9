"""POST a JSON body to a webhook and turn every failure into a DeliveryError.

Webhook URLs are credentials (Slack and Teams put the token in the path; n8n webhook paths
are unguessable ids), so no message built here contains the URL, and what the receiver
answered is quoted only after the URL's path and query are cut out of it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from .base import DeliveryError

MAX_QUOTED_ANSWER = 200
_SECRET_LOOKING = 8  # path segments and query values at least this long are redacted


async def post_json(
    http: httpx.AsyncClient,
    url: str,
    body: bytes,
    *,
    headers: Mapping[str, str] | None = None,
    timeout_seconds: float,
    accept: tuple[int, ...] | None = None,
) -> httpx.Response:
    try:
        response = await http.post(
            url,
            content=body,
            headers={"Content-Type": "application/json", **(headers or {})},
            timeout=timeout_seconds,
            follow_redirects=False,
        )
    except httpx.TimeoutException as error:
        raise DeliveryError(f"no answer within {timeout_seconds:g}s", transient=True) from error
    except httpx.TransportError as error:
        raise DeliveryError(
            f"connection failed ({type(error).__name__}{_detail(error, url)})", transient=True
        ) from error
    if (accept is None and 200 <= response.status_code < 300) or (
        accept is not None and response.status_code in accept
    ):
        return response
    answer = redact(response.text[:MAX_QUOTED_ANSWER], url).strip()
    message = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    if answer:
        message += f": {answer}"
    transient = response.status_code in (408, 425, 429) or response.status_code >= 500
    raise DeliveryError(message, transient=transient, retry_after=_retry_after(response))


def _detail(error: Exception, url: str) -> str:
    text = redact(str(error), url).strip()
    return f": {text}" if text else ""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def redact(text: str, url: str) -> str:
    """``text`` without the URL, its path, or any long path segment or query value of it."""
    parts = urlsplit(url)
    secrets = [url, parts.path, parts.query]
    secrets += [segment for segment in parts.path.split("/") if len(segment) >= _SECRET_LOOKING]
    secrets += [
        value
        for pair in parts.query.split("&")
        for value in pair.split("=")[1:]
        if len(value) >= _SECRET_LOOKING
    ]
    for secret in sorted({s for s in secrets if len(s) > 1}, key=len, reverse=True):
        text = re.sub(re.escape(secret), "<redacted>", text)
    return text
