"""Typed errors of the n8n client.

Every error carries n8n's own message (from the JSON body it answered) and the HTTP status,
so a handler can put both into a status condition. No error ever contains the API key or
credential data: the message comes from n8n's answer (with known secret values redacted),
and the request is described only by its method and path.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "N8nAuthError",
    "N8nBadRequestError",
    "N8nConflictError",
    "N8nError",
    "N8nNotFoundError",
    "N8nUnavailableError",
    "error_for_status",
    "redact",
]

REDACTED = "[redacted]"
# Values shorter than this are not scrubbed: they would mangle ordinary words.
_MIN_REDACT_LEN = 4


class N8nError(Exception):
    """An n8n API call failed.

    ``message`` is n8n's own message (or a description of the transport failure),
    ``status`` the HTTP status (``None`` when no answer arrived), ``method`` and ``path``
    name the call (path relative to the API root, without query string).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.method = method
        self.path = path
        super().__init__(message)

    def __str__(self) -> str:
        call = f"{self.method} {self.path}" if self.method and self.path else "n8n API call"
        status = f" -> HTTP {self.status}" if self.status is not None else ""
        return f"{call}{status}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, status={self.status!r}, "
            f"method={self.method!r}, path={self.path!r})"
        )

    def __reduce__(self) -> tuple[object, ...]:  # keep keyword-only args picklable
        return (_rebuild, (type(self), self.message, self.status, self.method, self.path))


def _rebuild(
    cls: type[N8nError], message: str, status: int | None, method: str | None, path: str | None
) -> N8nError:
    return cls(message, status=status, method=method, path=path)


class N8nAuthError(N8nError):
    """401/403: the API key is missing, wrong, expired, or lacks a scope."""


class N8nNotFoundError(N8nError):
    """404: the workflow, credential, tag or execution does not exist (or the route does not)."""


class N8nBadRequestError(N8nError):
    """400/422 (and other 4xx not covered below): n8n rejected the request as invalid.

    Examples: invalid workflow JSON, an unknown node type on activation, a webhook path
    already taken by another active workflow.
    """


class N8nConflictError(N8nError):
    """409: the object already exists (e.g. a tag with the same name)."""


class N8nUnavailableError(N8nError):
    """n8n could not be reached, or kept failing (5xx, 429) until the retry budget ran out."""


def error_for_status(
    status: int, message: str, *, method: str | None = None, path: str | None = None
) -> N8nError:
    """The typed error for an HTTP error status (used once retries are exhausted or not allowed)."""
    cls: type[N8nError]
    if status in (401, 403):
        cls = N8nAuthError
    elif status == 404:
        cls = N8nNotFoundError
    elif status == 409:
        cls = N8nConflictError
    elif status == 429 or status >= 500:
        cls = N8nUnavailableError
    elif 400 <= status < 500:
        cls = N8nBadRequestError
    else:
        cls = N8nError
    return cls(message, status=status, method=method, path=path)


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret value (of a useful length) in ``text``."""
    # Longest first, so a secret that contains another is replaced whole.
    for secret in sorted({s for s in secrets if len(s) >= _MIN_REDACT_LEN}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text
