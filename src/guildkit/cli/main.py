"""Entry point of the `guildkit` command line (DESIGN §6)."""

from __future__ import annotations

import typer

from guildkit.cli import bot, dashboard, database, doctor, sandbox, settings_cmd
from guildkit.config import ConfigError

app = typer.Typer(
    name="guildkit",
    help="guildkit: a Discord bot and dashboard sharing guild settings through PostgreSQL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
database.register(app)
settings_cmd.register(app)
doctor.register(app)
sandbox.register(app)
bot.register(app)
dashboard.register(app)


@app.callback()
def _root() -> None:
    """guildkit: a Discord bot and dashboard sharing guild settings through PostgreSQL."""


def main() -> None:
    try:
        app()
    except ConfigError as exc:
        # A configuration problem is the user's to fix: one line, no traceback.
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
