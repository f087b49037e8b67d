"""`guildkit migrate`: bring the database schema up to date."""

from __future__ import annotations

import typer

from guildkit.cli.common import config_or_exit, fail, run_async
from guildkit.db.engine import create_engine
from guildkit.db.migrate import current_revision, head_revision, upgrade_to_head


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate)


def migrate() -> None:
    """Apply every pending database migration (safe to run repeatedly)."""
    config = config_or_exit()

    async def _migrate() -> tuple[str | None, str | None]:
        engine = create_engine(config.sqlalchemy_url, pool_size=1)
        try:
            before = await current_revision(engine)
            await upgrade_to_head(engine)
            return before, await current_revision(engine)
        finally:
            await engine.dispose()

    try:
        before, after = run_async(_migrate())
    except OSError as exc:
        fail(f"cannot reach PostgreSQL at DATABASE_URL: {exc}")
    if before == after:
        typer.echo(f"database schema is up to date (revision {after})")
    else:
        typer.echo(
            f"migrated database schema from {before or 'empty'} to {after} (head {head_revision()})"
        )
