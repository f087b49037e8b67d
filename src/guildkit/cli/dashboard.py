"""`guildkit dashboard`: serve the web dashboard with uvicorn."""

from __future__ import annotations

import asyncio
import logging

import typer

from guildkit.cli.common import config_or_exit, fail, run_async
from guildkit.config import ConfigError, GuildkitConfig
from guildkit.logging_setup import setup_logging

log = logging.getLogger("guildkit.dashboard")


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)


async def _check_schema(config: GuildkitConfig) -> None:
    """SchemaNotReady if PostgreSQL answers with an older (or no) schema; the dashboard never
    migrates. An unreachable PostgreSQL is only logged: the dashboard serves anyway, and what
    needs the database (sessions, settings) answers 503 until it is back."""
    from guildkit.db.engine import create_engine
    from guildkit.db.migrate import check_schema
    from guildkit.settings.reader import DB_ERRORS

    engine = create_engine(config.sqlalchemy_url, pool_size=1)
    try:
        async with asyncio.timeout(10):
            await check_schema(engine)
    except DB_ERRORS as exc:
        log.warning(
            "PostgreSQL unreachable at start (DATABASE_URL): %s; serving anyway, requests that "
            "need it get 503 until it answers",
            (str(exc).splitlines() or [""])[0][:300] or type(exc).__name__,
        )
    finally:
        await engine.dispose()


def dashboard() -> None:
    """Serve the dashboard on GUILDKIT_HOST:GUILDKIT_PORT."""
    import uvicorn

    from guildkit.dashboard.composition import build_app
    from guildkit.db.migrate import SchemaNotReady

    config = config_or_exit()
    try:
        if not config.discord_client_id:
            raise ConfigError("DISCORD_CLIENT_ID is not set: the dashboard needs it for login")
        config.check_public_url()
        web_app = build_app(config)
    except ConfigError as exc:
        fail(str(exc), 2)
    setup_logging("dashboard")
    try:
        run_async(_check_schema(config))
    except SchemaNotReady as exc:
        fail(str(exc), 2)
    typer.echo(f"dashboard on http://{config.host}:{config.port}")
    # log_config=None: keep the structured handlers instead of uvicorn's own formatters.
    uvicorn.run(
        web_app,
        host=config.host,
        port=config.port,
        proxy_headers=True,
        log_level="info",
        log_config=None,
    )
