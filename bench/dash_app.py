"""uvicorn factory for guildkit's dashboard, built by its own composition root from the
environment (`uvicorn --factory bench.dash_app:create`)."""

from __future__ import annotations

from fastapi import FastAPI


def create() -> FastAPI:
    from guildkit.config import load_config
    from guildkit.dashboard.composition import build_app

    return build_app(load_config())


def create_with_proposal_b() -> FastAPI:
    """What if: the same dashboard, its SettingsStore reading as proposal B (bench.proposed)
    over a second engine without pool_pre_ping. Writes are unchanged."""
    from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

    import guildkit.dashboard.composition as composition
    from bench.proposed import DriverReadStore

    def store(engine: AsyncEngine, read_engine: AsyncEngine | None = None) -> DriverReadStore:
        reads = read_engine or create_async_engine(
            engine.url, pool_size=10, max_overflow=10, pool_pre_ping=False
        )
        return DriverReadStore(engine, read_engine=reads)

    # The composition root names its store class; swap it for this process only.
    vars(composition)["SettingsStore"] = store
    return create()
