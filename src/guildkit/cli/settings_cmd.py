"""`guildkit settings show|set|history GUILD_ID`: the settings layer from the shell."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.exc import DBAPIError, OperationalError

from guildkit.cli.common import config_or_exit, fail, run_async
from guildkit.config import GuildkitConfig
from guildkit.db.engine import create_engine
from guildkit.settings.errors import SettingsError
from guildkit.settings.history_view import history_document
from guildkit.settings.runtime import WritingSide, build_writing_side
from guildkit.settings.types import parse_guild_id

T = TypeVar("T")
settings_app = typer.Typer(
    help="Show, change and audit a guild's settings (writes go through the dashboard's path).",
    no_args_is_help=True,
)

GuildArg = Annotated[str, typer.Argument(help="The guild (server) id, e.g. 123456789012345678")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON document.")]


def register(app: typer.Typer) -> None:
    app.add_typer(settings_app, name="settings")


def _guild(value: str) -> int:
    try:
        return parse_guild_id(value)
    except ValueError as exc:
        fail(str(exc), 2)


def _with_side(config: GuildkitConfig, action: Callable[[WritingSide], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = create_engine(config.sqlalchemy_url, pool_size=1)
        side = build_writing_side(engine, redis_url=config.redis_url)
        try:
            return await action(side)
        finally:
            await side.close()
            await engine.dispose()

    try:
        return run_async(run())
    except (OperationalError, DBAPIError, OSError) as exc:
        fail(
            f"PostgreSQL is unreachable or not migrated ({type(exc).__name__}: {exc}); "
            "check DATABASE_URL and run `guildkit migrate`"
        )


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """`a.b=VALUE` pairs into a merge patch; VALUE is JSON if it parses as JSON, else a string."""
    patch: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise ValueError(f"expected KEY=VALUE with a dotted KEY, got {pair!r}")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        node = patch
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"{key!r} conflicts with another assignment")
            node = child
        node[leaf] = value
    return patch


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        rows: list[tuple[str, Any]] = []
        for key, child in value.items():
            rows.extend(_flatten(child, f"{prefix}.{key}" if prefix else key))
        return rows
    return [(prefix, value)]


@settings_app.command("show")
def show(guild_id: GuildArg, as_json: JsonOpt = False) -> None:
    """Print a guild's current settings, straight from PostgreSQL."""
    gid = _guild(guild_id)
    current = _with_side(config_or_exit(), lambda side: side.store.get(gid))
    document = current.to_document()
    if as_json:
        typer.echo(json.dumps(document, indent=2))
        return
    origin = (
        f"version {current.version}, updated {document['updated_at']} by {current.updated_by}"
        if current.version
        else "version 0 (never changed: defaults)"
    )
    typer.echo(f"guild {gid}: {origin}")
    for key, value in _flatten(document["settings"]):
        typer.echo(f"  {key} = {json.dumps(value)}")


@settings_app.command("set")
def set_(
    guild_id: GuildArg,
    assignments: Annotated[
        list[str],
        typer.Argument(help="KEY=VALUE pairs, dotted keys: prefix=? welcome.enabled=true"),
    ],
    expected_version: Annotated[
        int | None, typer.Option("--if-version", help="Refuse unless at this version.")
    ] = None,
) -> None:
    """Change settings through the same path as the dashboard (actor `cli`)."""
    gid = _guild(guild_id)
    try:
        patch = parse_assignments(assignments)
    except ValueError as exc:
        fail(str(exc), 2)
    config = config_or_exit()
    try:
        result = _with_side(
            config,
            lambda side: side.writer.patch(
                gid, patch, actor="cli", expected_version=expected_version
            ),
        )
    except SettingsError as exc:
        # Validation and version conflicts: the message says what to fix.
        fail(f"refused, nothing written: {exc}")
    if result.changed:
        typer.echo(f"guild {gid}: saved as version {result.current.version}")
    else:
        typer.echo(f"guild {gid}: unchanged (already so at version {result.current.version})")


@settings_app.command("history")
def history(
    guild_id: GuildArg,
    as_json: JsonOpt = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many entries.")] = 20,
) -> None:
    """List a guild's changes, newest first: who, when, and what changed."""
    gid = _guild(guild_id)
    entries = _with_side(config_or_exit(), lambda side: side.store.history(gid, limit=limit))
    documents = [history_document(e) for e in entries]
    if as_json:
        typer.echo(json.dumps(documents, indent=2))
        return
    if not documents:
        typer.echo(f"guild {gid}: no changes yet (defaults)")
        return
    for doc in documents:
        typer.echo(f"v{doc['version']}  {doc['at']}  {doc['actor']}  (change {doc['change_seq']})")
        for row in doc["diff"]:
            typer.echo(
                f"    {row['path']}: {json.dumps(row['before'])} -> {json.dumps(row['after'])}"
            )
