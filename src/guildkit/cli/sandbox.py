"""`guildkit sandbox`: run the local Discord stand-in (DESIGN §9)."""

from __future__ import annotations

from typing import Annotated

import typer

from guildkit.cli.common import config_or_exit
from guildkit.config import revealed
from guildkit.sandbox import DEFAULT_BOT_TOKEN, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, serve
from guildkit.sandbox.demo import DemoIds
from guildkit.sandbox.runner import RunningSandbox


def register(app: typer.Typer) -> None:
    app.command("sandbox")(sandbox)


def sandbox(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (default: GUILDKIT_SANDBOX_PORT).")
    ] = None,
    no_demo: Annotated[
        bool, typer.Option("--no-demo", help="Start empty instead of with the demo guild.")
    ] = False,
) -> None:
    """Run a local Discord stand-in (REST, gateway, OAuth2) for offline development."""
    config = config_or_exit()
    token = revealed(config.discord_token) or DEFAULT_BOT_TOKEN
    client_id = config.discord_client_id or DEFAULT_CLIENT_ID
    secret = revealed(config.discord_client_secret) or DEFAULT_CLIENT_SECRET

    def announce(running: RunningSandbox, demo: DemoIds | None) -> None:
        typer.echo(f"sandbox Discord listening on {running.base_url}")
        if host not in ("127.0.0.1", "localhost", "::1"):
            # The control API has no authentication: anyone who can reach it can drive it.
            typer.secho(
                "  warning: the unauthenticated control API is reachable off this machine",
                fg=typer.colors.YELLOW,
            )
        typer.echo(f"  DISCORD_API_BASE={running.api_base}")
        typer.echo(f"  gateway:     {running.gateway_url}")
        typer.echo(f"  control API: {running.base_url}/_sandbox/")
        # Only the fixed development credentials are echoed; configured ones may be real secrets.
        typer.echo(
            f"  DISCORD_TOKEN={token if token == DEFAULT_BOT_TOKEN else '(from DISCORD_TOKEN)'}"
        )
        typer.echo(f"  DISCORD_CLIENT_ID={client_id}")
        shown = secret if secret == DEFAULT_CLIENT_SECRET else "(from DISCORD_CLIENT_SECRET)"
        typer.echo(f"  DISCORD_CLIENT_SECRET={shown}")
        if demo is not None:
            typer.echo("demo guild 'Guildkit Demo':")
            for key, value in demo.as_json().items():
                typer.echo(f"  {key}: {value}")

    serve(
        host,
        port if port is not None else config.sandbox_port,
        token,
        client_id,
        secret,
        not no_demo,
        on_started=announce,
    )
