"""The embedded PostgreSQL: made on first use, shared by every guildkit command, stopped by
the last user, and its data kept between runs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg

from guildkit.config import load_config, to_asyncpg_dsn
from guildkit.embedded_pg import EmbeddedPostgres, embedded_for, read_postmaster
from tests.run.support import clean_env, wait_until
from tests.support.processes import ChildProcess

GUILD = "424242424242424242"


def guildkit(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "guildkit.cli.main", *args],
        env=clean_env(data_dir),
        cwd=data_dir.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
    )


def test_commands_start_it_on_demand_and_the_last_one_stops_it(data_dir: Path) -> None:
    migrated = guildkit(data_dir, "migrate")
    assert "migrated database schema" in migrated.stdout
    assert (data_dir / "postgres" / "PG_VERSION").exists()
    assert read_postmaster(data_dir / "postgres") is None, "migrate left the server running"

    guildkit(data_dir, "settings", "set", GUILD, "prefix=?", "welcome.enabled=true")
    shown = json.loads(guildkit(data_dir, "settings", "show", GUILD, "--json").stdout)
    assert shown["version"] == 1
    assert shown["settings"]["prefix"] == "?"
    history = json.loads(guildkit(data_dir, "settings", "history", GUILD, "--json").stdout)
    assert [entry["version"] for entry in history] == [1]
    assert read_postmaster(data_dir / "postgres") is None


def test_a_running_holder_shares_its_server_with_other_commands(data_dir: Path) -> None:
    # embedded_for: the handle the configuration resolves through, as in `guildkit run`.
    holder = embedded_for(data_dir)
    url = holder.acquire()
    try:
        assert holder.started_here
        pid = read_postmaster(data_dir / "postgres")
        assert pid is not None
        guildkit(data_dir, "migrate")
        guildkit(data_dir, "settings", "set", GUILD, "prefix=$")
        # The commands used the holder's server and left it running for it.
        assert read_postmaster(data_dir / "postgres") == pid
        # This process (like `guildkit run`) resolves the same server through the config.
        config = load_config(GUILDKIT_DATA_DIR=str(data_dir), DATABASE_URL=None)
        assert config.effective_database_url == url

        async def prefix() -> str:
            conn = await asyncpg.connect(to_asyncpg_dsn(url))
            try:
                value: str = await conn.fetchval(
                    "SELECT settings->>'prefix' FROM guild_settings WHERE guild_id = $1",
                    int(GUILD),
                )
                return value
            finally:
                await conn.close()

        assert asyncio.run(prefix()) == "$"
    finally:
        assert holder.release() is True
    assert read_postmaster(data_dir / "postgres") is None
    # Stopped cleanly: the log says so, no crash recovery will be needed next time.
    assert "database system is shut down" in (data_dir / "postgres.log").read_text()


def test_a_holder_killed_with_sigkill_keeps_nobody_from_stopping_it(data_dir: Path) -> None:
    env = clean_env(data_dir)
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from guildkit.embedded_pg import EmbeddedPostgres\n"
        "EmbeddedPostgres(Path(sys.argv[1])).acquire()\n"
        "print('held', flush=True)\n"
        "time.sleep(120)\n"
    )
    child = ChildProcess([sys.executable, "-c", code, str(data_dir)], env=env)
    try:
        child.wait_for_line("held", timeout=120)
        os.killpg(child.pid, signal.SIGKILL)
        wait_until(lambda: not child.alive(), 10, "the holder to die")
    finally:
        child.kill()
    running = read_postmaster(data_dir / "postgres")
    assert running is not None, "the server dies only when asked to"
    second = EmbeddedPostgres(data_dir)
    second.acquire()
    assert not second.started_here, "a running server is reused, not started again"
    assert second.release() is True, "the dead holder's claim went away with it"
    assert read_postmaster(data_dir / "postgres") is None
