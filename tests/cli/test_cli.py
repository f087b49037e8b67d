"""The `guildkit` command as a user runs it: real processes, real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid

import asyncpg
import httpx
import pytest
from alembic import command

from guildkit.cli.settings_cmd import parse_assignments
from guildkit.config import to_asyncpg_dsn, to_sqlalchemy_url
from guildkit.db.engine import create_engine
from guildkit.db.migrate import alembic_config, head_revision
from tests.conftest import BASE_PG_URL
from tests.support.processes import ChildProcess, free_port, wait_for_port


def guildkit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "guildkit.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.fixture
def db_env(database_url: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "REDIS_URL": ""}


def test_assignments_become_a_merge_patch() -> None:
    assert parse_assignments(
        ["prefix=?", "welcome.enabled=true", 'auto_roles=["1"]', "log_channel_id=null"]
    ) == {
        "prefix": "?",
        "welcome": {"enabled": True},
        "auto_roles": ["1"],
        "log_channel_id": None,
    }
    assert parse_assignments(["welcome.message=Hi {user}"]) == {"welcome": {"message": "Hi {user}"}}
    for bad in (["prefix"], ["=x"], ["a..b=1"], ["a=1", "a.b=2"]):
        with pytest.raises(ValueError):
            parse_assignments(bad)


def test_set_show_history_round_trip(db_env: dict[str, str], guild_id: int) -> None:
    gid = str(guild_id)
    saved = guildkit("settings", "set", gid, "prefix=?", "welcome.enabled=true", env=db_env)
    assert saved.returncode == 0, saved.stderr
    assert "saved as version 1" in saved.stdout
    shown = json.loads(guildkit("settings", "show", gid, "--json", env=db_env).stdout)
    assert shown["version"] == 1 and shown["guild_id"] == gid
    assert shown["settings"]["prefix"] == "?" and shown["settings"]["welcome"]["enabled"] is True
    assert shown["updated_by"] == "cli"
    history = json.loads(guildkit("settings", "history", gid, "--json", env=db_env).stdout)
    assert [h["version"] for h in history] == [1]
    assert {"path": "prefix", "before": "!", "after": "?"} in history[0]["diff"]


def test_refused_change_exits_non_zero_with_the_reason(
    db_env: dict[str, str], guild_id: int
) -> None:
    result = guildkit("settings", "set", str(guild_id), "prefix=a b", env=db_env)
    assert result.returncode == 1
    assert "prefix: must not contain whitespace" in result.stderr
    assert "Traceback" not in result.stderr
    shown = json.loads(guildkit("settings", "show", str(guild_id), "--json", env=db_env).stdout)
    assert shown["version"] == 0, "nothing written"


def test_bad_guild_id_and_missing_database_are_one_line_errors(db_env: dict[str, str]) -> None:
    bad_id = guildkit("settings", "show", "not-a-guild", env=db_env)
    assert bad_id.returncode == 2 and "guild id must be a Discord id" in bad_id.stderr
    no_db = guildkit("settings", "show", "1", env={"DATABASE_URL": "postgresql://x@127.0.0.1:1/x"})
    assert no_db.returncode == 1 and "PostgreSQL is unreachable" in no_db.stderr
    assert "Traceback" not in no_db.stderr


def test_migrate_is_idempotent_and_doctor_reports(db_env: dict[str, str]) -> None:
    migrated = guildkit("migrate", env=db_env)
    assert migrated.returncode == 0 and "up to date" in migrated.stdout
    doctor = guildkit("doctor", env={**db_env, "REDIS_URL": "redis://127.0.0.1:1/0"})
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "[ok  ] PostgreSQL" in doctor.stdout and "[warn] Redis: unreachable" in doctor.stdout
    broken = guildkit("doctor", env={"DATABASE_URL": "postgresql://x@127.0.0.1:1/x"})
    assert broken.returncode == 1 and "[FAIL] PostgreSQL" in broken.stdout


async def _database_at(name: str, revision: str | None) -> str:
    """A new database on the test server, migrated up to `revision` (None: left empty)."""
    conn = await asyncpg.connect(to_asyncpg_dsn(BASE_PG_URL))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = BASE_PG_URL.rsplit("/", 1)[0] + "/" + name
    if revision is not None:
        engine = create_engine(to_sqlalchemy_url(url), pool_size=1)
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        try:
            async with engine.begin() as connection:

                def run(sync_connection: object) -> None:
                    cfg.attributes["connection"] = sync_connection
                    command.upgrade(cfg, revision)

                await connection.run_sync(run)
        finally:
            await engine.dispose()
    return url


async def _drop(name: str) -> None:
    conn = await asyncpg.connect(to_asyncpg_dsn(BASE_PG_URL))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def test_dashboard_refuses_a_schema_that_is_behind_until_migrated() -> None:
    empty_name, old_name = (f"guildkit_cli_{uuid.uuid4().hex[:12]}" for _ in range(2))
    empty = asyncio.run(_database_at(empty_name, None))
    old = asyncio.run(_database_at(old_name, "0002"))  # before dashboard sessions
    dashboard_env = {"REDIS_URL": "", "DISCORD_CLIENT_ID": "1", "GUILDKIT_PORT": str(free_port())}
    try:
        for url, says in (
            (empty, "no guildkit schema"),
            (old, f"at revision 0002, this guildkit needs {head_revision()}"),
        ):
            refused = guildkit("dashboard", env={**dashboard_env, "DATABASE_URL": url})
            assert refused.returncode == 2, refused.stdout + refused.stderr
            assert says in refused.stderr and "run `guildkit migrate`" in refused.stderr
            assert "Traceback" not in refused.stderr + refused.stdout
        migrated = guildkit("migrate", env={"DATABASE_URL": old, "REDIS_URL": ""})
        assert migrated.returncode == 0, migrated.stderr
        assert f"from 0002 to {head_revision()}" in migrated.stdout
        with ChildProcess.python_module(
            "guildkit.cli.main", "dashboard", env={**dashboard_env, "DATABASE_URL": old}
        ) as dashboard:
            dashboard.wait_for_line("dashboard on http://", timeout=30)
            port = int(dashboard_env["GUILDKIT_PORT"])
            wait_for_port("127.0.0.1", port, timeout=30)
            assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
            # uvicorn shuts down cleanly, then re-raises the SIGTERM it caught.
            assert dashboard.terminate() in (0, -15)
    finally:
        asyncio.run(_drop(empty_name))
        asyncio.run(_drop(old_name))
