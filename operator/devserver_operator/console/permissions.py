"""May this user list this kind in this namespace? Asked of the API server, cached briefly.

The shared watches hold every object of the four kinds; before any of it reaches a person (a
live update, a list across namespaces, a derived view) the console asks the API server, as
that person, a SelfSubjectAccessReview, so RBAC and TeamAccess roles decide exactly as they
do for kubectl. The answer is kept ``ttl`` seconds: a revoked grant stops live updates within
that time. Concurrent questions for the same key share one review.
"""

from __future__ import annotations

import asyncio
import time

from devserver_operator.api import GROUP
from devserver_operator.kube.client import KubeClient

from .connection import Connection
from .identity import User

REVIEW_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
MAX_ENTRIES = 50_000

_Key = tuple[str, str, str, str]


async def self_review(
    kube: KubeClient, verb: str, plural: str, namespace: str, subresource: str = ""
) -> bool:
    """A SelfSubjectAccessReview sent by ``kube`` (a person's impersonating client)."""
    attributes = {"group": GROUP, "resource": plural, "verb": verb}
    if namespace:
        attributes["namespace"] = namespace
    if subresource:
        attributes["subresource"] = subresource
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }
    answer = await kube.raw("POST", REVIEW_PATH, review)
    return bool((answer.get("status") or {}).get("allowed"))


class Permissions:
    def __init__(self, connection: Connection, ttl: float) -> None:
        self._connection = connection
        self._ttl = ttl
        self._answers: dict[_Key, tuple[float, bool]] = {}
        self._asking: dict[_Key, asyncio.Future[bool]] = {}

    async def may(self, user: User, verb: str, plural: str, namespace: str) -> bool:
        """``namespace`` "" asks about all namespaces (a cluster-wide grant)."""
        key = (user.key, verb, plural, namespace)
        found = self._answers.get(key)
        if found is not None and found[0] > time.monotonic():
            return found[1]
        pending = self._asking.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._asking[key] = future
        try:
            allowed = await self._review(user, verb, plural, namespace)
            future.set_result(allowed)
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: waiters re-raise it, nobody else must log it
            raise
        finally:
            del self._asking[key]
        if len(self._answers) >= MAX_ENTRIES:
            self._answers.clear()
        self._answers[key] = (time.monotonic() + self._ttl, allowed)
        return allowed

    async def _review(self, user: User, verb: str, plural: str, namespace: str) -> bool:
        return await self_review(self._connection.for_user(user), verb, plural, namespace)

    async def visible_namespaces(self, user: User, plural: str, namespaces: set[str]) -> set[str]:
        """The namespaces among ``namespaces`` whose ``plural`` the user may list."""
        if await self.may(user, "list", plural, ""):
            return set(namespaces)
        checks = {ns: self.may(user, "list", plural, ns) for ns in sorted(namespaces)}
        answers = await asyncio.gather(*checks.values())
        return {ns for ns, allowed in zip(checks, answers, strict=True) if allowed}
