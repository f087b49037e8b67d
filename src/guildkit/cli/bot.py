"""`guildkit bot`: run the Discord bot (it does not migrate; `guildkit migrate` does)."""

from __future__ import annotations

import typer

from guildkit.cli.common import config_or_exit, run_async


def register(app: typer.Typer) -> None:
    app.command("bot")(bot)


def bot() -> None:
    """Run the Discord bot (shards: GUILDKIT_SHARD_IDS/COUNT, default Discord's recommendation)."""
    # Imported here so other commands do not pay for importing discord.py.
    from guildkit.bot.app import run_bot
    from guildkit.bot.logs import configure_logging

    config = config_or_exit()
    configure_logging()
    code = run_async(run_bot(config))
    if code:
        raise typer.Exit(code)
