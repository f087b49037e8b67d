"""Apply the Alembic migrations that ship inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(sqlalchemy_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url.replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("postgresql+asyncpg://")).get_current_head()


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Bring the database to the newest schema; safe to run on every start."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    async with engine.begin() as connection:
        # One migrator at a time, even when several processes start together.
        await connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7402311190)")

        def run(sync_connection: object) -> None:
            cfg.attributes["connection"] = sync_connection
            command.upgrade(cfg, "head")

        await connection.run_sync(run)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


class SchemaNotReady(Exception):
    """The database is reachable but not migrated to this guildkit's schema."""


async def check_schema(engine: AsyncEngine) -> None:
    """SchemaNotReady, saying to run `guildkit migrate`, unless the database is at the head.

    For the processes that never migrate (the bot, the dashboard on its own)."""
    current, head = await current_revision(engine), head_revision()
    if current is None:
        raise SchemaNotReady("the database has no guildkit schema: run `guildkit migrate`")
    if current != head:
        raise SchemaNotReady(
            f"the database schema is at revision {current}, this guildkit needs {head}: "
            "run `guildkit migrate`"
        )
