"""Errors from the Kubernetes API, sorted by what a reconciler should do about them."""

from __future__ import annotations


class KubeApiError(Exception):
    """The API server answered with an error status."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def transient(self) -> bool:
        """Worth retrying with backoff: throttling, server trouble, or a lost race."""
        return self.status in (409, 429) or self.status >= 500


class NotFoundError(KubeApiError):
    pass


class ConflictError(KubeApiError):
    pass


class ForbiddenError(KubeApiError):
    pass


class InvalidError(KubeApiError):
    """422: the object breaks the schema, a CEL rule or an admission policy."""


class KubeUnavailableError(Exception):
    """The API server could not be reached at all."""


# A server-side apply of an object the server cannot convert (a malformed quantity) or
# merge (duplicate keys in a list-map) comes back as 500, although nothing about it is
# transient: retrying can only fail the same way.
_UNAPPLICABLE = ("unable to convert unstructured object", "failed to create typed patch object")


def error_for(status: int, reason: str, message: str) -> KubeApiError:
    if status == 500 and any(marker in message for marker in _UNAPPLICABLE):
        return InvalidError(status, reason, message)
    kinds: dict[int, type[KubeApiError]] = {
        403: ForbiddenError,
        404: NotFoundError,
        409: ConflictError,
        422: InvalidError,
    }
    return kinds.get(status, KubeApiError)(status, reason, message)
