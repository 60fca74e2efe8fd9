"""Live updates over Server-Sent Events, fed by the shared watches (watch.py).

Each open page holds one stream. A change reaches a page only if its user may list that kind
in that namespace (permissions.py); nothing here sends a request to Kubernetes per page
except those cached reviews. EventSource reconnects by itself, and after a reconnect or a
RESYNC the page refetches what it shows, so a lost watch or an API server restart needs no
reload. A "watch" event says a kind's shared watch was lost or is back (the page shows
"Reconnecting"); "hello" names the kinds that are down when the stream opens.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from devserver_operator.kube.errors import KubeApiError, KubeUnavailableError

from .auth import Caller
from .identity import User
from .objects import summary
from .sessions import SESSION_COOKIE
from .state import ConsoleState, console_state
from .watch import Change, Subscriber

router = APIRouter(prefix="/api/v1", tags=["live"])
HEARTBEAT_SECONDS = 15.0


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def _changes(
    request: Request, state: ConsoleState, user: User, subscriber: Subscriber
) -> AsyncIterator[str]:
    cookie = request.cookies.get(SESSION_COOKIE)
    try:
        hello = {"user": user.username, "down": state.hub.down_kinds()}
        yield "retry: 2000\n\n" + _event("hello", hello)
        while True:
            try:
                change = await asyncio.wait_for(subscriber.queue.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                if cookie is not None and state.sessions.lookup(cookie) is None:
                    yield _event("logout", {})
                    return
                yield ": keepalive\n\n"
                continue
            if subscriber.overflowed:
                while not subscriber.queue.empty():
                    subscriber.queue.get_nowait()
                subscriber.overflowed = False
                yield _event("resync", {"plural": None})
                continue
            try:
                message = await _message(state, user, change)
            except (KubeApiError, KubeUnavailableError):
                # The review failed (the API server is away): the page refetches instead
                # of missing the change; its requests say what is wrong.
                message = _event("resync", {"plural": change.plural})
            if message is not None:
                yield message
    finally:
        state.hub.unsubscribe(subscriber)


async def _message(state: ConsoleState, user: User, change: Change) -> str | None:
    if change.type == "RESYNC":
        return _event("resync", {"plural": change.plural})
    if change.type in ("DOWN", "UP"):
        return _event("watch", {"plural": change.plural, "live": change.type == "UP"})
    if not await state.permissions.may(user, "list", change.plural, change.namespace):
        return None
    data: dict[str, Any] = {
        "type": change.type,
        "plural": change.plural,
        "namespace": change.namespace,
        "name": change.name,
    }
    if change.object is not None:
        data["summary"] = summary(change.plural, change.object)
        data["object"] = change.object
    return _event("change", data)


@router.get("/stream", summary="Live changes of the four kinds (text/event-stream)")
async def stream(request: Request, user: Caller) -> StreamingResponse:
    state = console_state(request)
    subscriber = state.hub.subscribe()
    return StreamingResponse(
        _changes(request, state, user, subscriber),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
