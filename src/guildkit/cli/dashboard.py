"""`guildkit dashboard`: serve the web dashboard with uvicorn."""

from __future__ import annotations

import typer

from guildkit.cli.common import config_or_exit, fail
from guildkit.config import ConfigError
from guildkit.logging_setup import setup_logging


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)


def dashboard() -> None:
    """Serve the dashboard on GUILDKIT_HOST:GUILDKIT_PORT."""
    import uvicorn

    from guildkit.dashboard.composition import build_app

    config = config_or_exit()
    try:
        if not config.discord_client_id:
            raise ConfigError("DISCORD_CLIENT_ID is not set: the dashboard needs it for login")
        config.check_public_url()
        web_app = build_app(config)
    except ConfigError as exc:
        fail(str(exc), 2)
    typer.echo(f"dashboard on http://{config.host}:{config.port}")
    setup_logging("dashboard")
    # log_config=None: keep the structured handlers instead of uvicorn's own formatters.
    uvicorn.run(
        web_app,
        host=config.host,
        port=config.port,
        proxy_headers=True,
        log_level="info",
        log_config=None,
    )
