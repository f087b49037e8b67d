"""uvicorn factory for guildkit's dashboard, built by its own composition root from the
environment (`uvicorn --factory bench.dash_app:create`)."""

from __future__ import annotations

from fastapi import FastAPI


def create() -> FastAPI:
    from guildkit.dashboard.composition import build_app

    from guildkit.config import load_config

    return build_app(load_config())
