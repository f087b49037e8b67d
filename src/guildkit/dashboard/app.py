"""The FastAPI app factory. It takes every dependency ready-made; see composition.py for those."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from guildkit.dashboard import api, auth, health, log_redaction, pages
from guildkit.dashboard.context import Dashboard
from guildkit.dashboard.errors import install_error_handlers
from guildkit.dashboard.middleware import BodyLimit, RequestMetrics, SecurityHeaders
from guildkit.dashboard.rate_limit import RateLimit
from guildkit.dashboard.rendering import STATIC_DIR


def create_app(
    dashboard: Dashboard, *, on_shutdown: Callable[[], Awaitable[None]] | None = None
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # At startup, after the server has configured its loggers.
        log_redaction.install()
        try:
            yield
        finally:
            if on_shutdown is not None:
                await on_shutdown()

    app = FastAPI(
        title="guildkit dashboard",
        version="1",
        summary="Discord guild settings: read, change (JSON Merge Patch), history, revert.",
        lifespan=lifespan,
    )
    app.state.dashboard = dashboard
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(api.router)
    # pages first declares /static/htmx.min.js, which must win over the static mount.
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # Added last = outermost: headers go on every response (a 413 included), and metrics count it.
    app.add_middleware(BodyLimit, limit=dashboard.options.body_limit_bytes)
    # Outside the body limit: a refused flood costs no body reading at all.
    app.add_middleware(
        RateLimit,
        sessions=dashboard.sessions,
        rate=dashboard.options.write_rate_per_second,
        burst=dashboard.options.write_burst,
    )
    app.add_middleware(RequestMetrics, metrics=dashboard.metrics)
    app.add_middleware(SecurityHeaders)
    return app
