"""The console's FastAPI application: routes, error mapping, security headers, the UI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from devserver_operator.kube.client import Credentials
from devserver_operator.kube.errors import KubeApiError, KubeUnavailableError

from . import (
    routes_actions,
    routes_config,
    routes_kinds,
    routes_oidc,
    routes_session,
    routes_stream,
    routes_tools,
    routes_views,
)
from .connection import Connection
from .settings import ConsoleSettings
from .state import ConsoleState

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
"""Everything from the console itself, nothing inline, nothing from a CDN."""
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})
NO_UI_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>devserver console</title></head><body><main><h1>devserver console</h1>
<p>The web UI is not built. Run <code>bash hack/console/build.sh</code>; the REST API is at
<a href="/api/v1/docs">/api/v1/docs</a>.</p></main></body></html>"""
DOCS_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>devserver console API</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="/swagger/swagger-ui.css"></head><body><main>
<div id="swagger-ui"></div></main><script src="/swagger/swagger-ui-bundle.js"></script>
<script src="/swagger/init.js"></script></body></html>"""


def create_app(settings: ConsoleSettings, connection: Connection | None = None) -> FastAPI:
    if settings.local_admin and settings.host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("local admin mode serves only a loopback address (--host 127.0.0.1)")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = connection or Connection(
            Credentials.from_kubeconfig(settings.kubeconfig, settings.context)
        )
        state = ConsoleState.create(settings, own)
        app.state.console = state
        streaming = own.streaming()
        state.hub.start(streaming)
        try:
            yield
        finally:
            await state.hub.stop()
            await streaming.aclose()
            if connection is None:
                await own.close()

    app = FastAPI(
        title="devserver-operator console API",
        version="v1",
        description="The four kinds of devserver.ecosphere.network, as the calling user.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )

    # Before the routers: `/api/v1/{plural}` would take it.
    @app.get("/api/v1/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(DOCS_PAGE)

    # The kinds last: their `/api/v1/{plural}` would otherwise swallow `/api/v1/stream`.
    for module in (
        routes_session,
        routes_oidc,
        routes_config,
        routes_stream,
        routes_views,
        routes_tools,
        routes_actions,
        routes_kinds,
    ):
        app.include_router(module.router)

    @app.exception_handler(KubeApiError)
    async def kube_refused(_: Request, error: KubeApiError) -> JSONResponse:
        code = error.status if 400 <= error.status < 600 else 502
        return JSONResponse(
            {"status": error.status, "reason": error.reason, "message": error.message}, code
        )

    @app.exception_handler(KubeUnavailableError)
    async def kube_unavailable(_: Request, error: KubeUnavailableError) -> JSONResponse:
        return JSONResponse(
            {"status": 503, "reason": "Unavailable", "message": "the API server cannot be reached"},
            503,
            headers={"Retry-After": "2"},
        )

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if (
            settings.local_admin
            and request.headers.get("host", "").rsplit(":", 1)[0] not in LOOPBACK_HOSTS
        ):
            # DNS rebinding: another site's name pointed at 127.0.0.1 must not reach the admin.
            return JSONResponse({"detail": "local admin mode answers loopback names only"}, 421)
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    if settings.ui_dir and (Path(settings.ui_dir) / "index.html").is_file():
        app.mount("/", StaticFiles(directory=settings.ui_dir, html=True), name="ui")
    else:

        @app.get("/", include_in_schema=False)
        async def no_ui() -> HTMLResponse:
            return HTMLResponse(NO_UI_PAGE)

    return app
