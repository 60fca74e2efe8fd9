"""Children the API server refused as invalid, remembered so they are not sent again.

A child the server refuses (422) is refused for what it says, so applying the same manifest
again can only fail again: the MCPServer stays Stalled and the resync loop leaves it alone
until its spec, or something its children are built from, changes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from devserver_operator.builders.common import stable_hash
from devserver_operator.kube.errors import InvalidError

MAX_REMEMBERED = 10_000  # rejected objects are rare; the cap only bounds a pathological case


@dataclass
class RejectedChildren:
    """By owner uid: the hash of the children the server refused, and its message."""

    rejected: dict[str, tuple[str, str]] = field(default_factory=dict)

    def raise_if_refused(self, uid: str, children: Sequence[Mapping[str, Any]]) -> None:
        """Refuse again, with the server's words, exactly the children it refused before."""
        known = self.rejected.get(uid)
        if known is not None and known[0] == stable_hash(list(children)):
            raise InvalidError(422, "Invalid", known[1])

    @contextlib.contextmanager
    def refusing_again(self, uid: str, children: Sequence[Mapping[str, Any]]) -> Iterator[None]:
        """Around the apply: refuse what was refused before, remember what is refused now."""
        self.raise_if_refused(uid, children)
        try:
            yield
        except InvalidError as error:
            self.remember(uid, children, error.message)
            raise

    def remember(self, uid: str, children: Sequence[Mapping[str, Any]], message: str) -> None:
        self.rejected.pop(uid, None)
        if len(self.rejected) >= MAX_REMEMBERED:
            self.rejected.pop(next(iter(self.rejected)))  # the oldest
        self.rejected[uid] = (stable_hash(list(children)), message)

    def forget(self, uid: str) -> None:
        self.rejected.pop(uid, None)
