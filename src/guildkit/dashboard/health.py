"""Liveness, readiness (PostgreSQL required, Redis reported) and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from guildkit.dashboard.access import dashboard_of
from guildkit.dashboard.storage import StorageUnavailable, storage
from guildkit.settings.redis_cache import RedisUnavailable

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="PostgreSQL reachable (required); Redis reported",
    responses={503: {"description": "PostgreSQL is unreachable (the body says which check)"}},
)
async def readyz(request: Request) -> JSONResponse:
    dashboard = dashboard_of(request)
    checks: dict[str, Any] = {}
    ready = True
    try:
        async with asyncio.timeout(2.0), storage(), dashboard.store.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["postgresql"] = {"ok": True}
    except (StorageUnavailable, TimeoutError) as exc:
        ready = False
        checks["postgresql"] = {"ok": False, "error": str(exc)}
    if dashboard.redis_cache is None:
        checks["redis"] = {"ok": None, "note": "REDIS_URL not set: running without Redis"}
    else:
        try:
            await dashboard.redis_cache.ping()
            checks["redis"] = {"ok": True}
        except RedisUnavailable as exc:
            # Redis is only a cache: reported, never a reason to be unready.
            checks["redis"] = {"ok": False, "error": str(exc)}
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    registry = dashboard_of(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
