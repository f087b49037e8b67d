"""How the bot process fails: clear lines, retries where waiting helps, exit codes where not."""

from __future__ import annotations

import httpx

from guildkit.sandbox.permissions import Permission
from tests.bot.harness import (
    ChildFactory,
    Scene,
    bot_env,
    eventually,
    spawn_bot,
    start_bot,
    wait_applied,
)
from tests.support.postgres_server import PostgresServer
from tests.support.processes import free_port


async def _exit_code(child: object) -> int | None:
    code = getattr(child, "returncode")  # noqa: B009 - polled property
    return None if code is None else int(code)


async def test_bad_token_exits_non_zero_with_one_clear_line(
    scene: Scene, bot_db: str, python_child: ChildFactory
) -> None:
    bot = spawn_bot(python_child, bot_env(scene.sandbox, bot_db, token="not-the-token"))
    await bot.wait_for_line_async("Discord refused the bot token (DISCORD_TOKEN)", timeout=15)
    assert await eventually(lambda: _exit_code(bot), within=5) == 3
    assert not [line for line in bot.output if "Traceback" in line]


async def test_missing_schema_says_run_migrate(
    scene: Scene, postgres_server: PostgresServer, python_child: ChildFactory
) -> None:
    empty = postgres_server.create_database("empty")
    bot = spawn_bot(python_child, bot_env(scene.sandbox, empty))
    await bot.wait_for_line_async("run `guildkit migrate`", timeout=15)
    assert await eventually(lambda: _exit_code(bot), within=5) == 2


async def test_postgres_unreachable_at_start_retries(
    scene: Scene, python_child: ChildFactory
) -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/guildkit"
    bot = spawn_bot(python_child, bot_env(scene.sandbox, nowhere))
    await bot.wait_for_line_async("PostgreSQL unreachable at 127.0.0.1", timeout=15)
    await bot.wait_for_line_async("retrying in 1.0s", timeout=5)
    assert bot.alive()


async def test_discord_unreachable_retries(
    scene: Scene, bot_db: str, python_child: ChildFactory
) -> None:
    api = f"http://127.0.0.1:{free_port()}/api/v10"
    bot = spawn_bot(python_child, bot_env(scene.sandbox, bot_db, api_base=api))
    await bot.wait_for_line_async(f"cannot reach Discord at {api}", timeout=15)
    assert bot.alive()


async def test_forbidden_delete_is_logged_and_bot_keeps_working(
    scene: Scene, bot_db: str, python_child: ChildFactory
) -> None:
    await scene.control.set_bot_permissions(
        scene.guild_id,
        int(Permission.VIEW_CHANNEL | Permission.SEND_MESSAGES | Permission.READ_MESSAGE_HISTORY),
    )
    bot = await start_bot(python_child, bot_env(scene.sandbox, bot_db))
    result = await scene.patch(
        {"moderation": {"anti_link": True}, "log_channel_id": str(scene.mod_log)}
    )
    await wait_applied(scene.engine, result)
    await scene.say("http://example.com")
    await bot.wait_for_line_async("cannot delete message", timeout=5)
    logged = await scene.control.wait_for_message(scene.mod_log)
    assert "Could not remove" in logged.content
    assert "pong" in (await scene.ask("!ping")).content


async def test_metrics_export_reads_per_tier(
    scene: Scene, bot_db: str, python_child: ChildFactory
) -> None:
    port = free_port()
    await start_bot(
        python_child, bot_env(scene.sandbox, bot_db, GUILDKIT_BOT_METRICS_PORT=str(port))
    )
    await wait_applied(scene.engine, await scene.patch({"prefix": "?"}))
    assert "pong" in (await scene.ask("?ping")).content
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    assert 'guildkit_bot_settings_reads_total{tier="l1"}' in text
    assert 'guildkit_bot_settings_invalidations_total{path="notify"} 1.0' in text
    assert "guildkit_bot_applied_change_seq 1.0" in text
    assert "guildkit_bot_guilds 1.0" in text
    assert 'guildkit_bot_settings_hit_ratio{tier="l1"}' in text
    # The one edit was measured once, by the path that delivered it first, within the promise.
    delivered = [
        line
        for line in text.splitlines()
        if line.startswith('guildkit_bot_settings_commit_to_applied_seconds_bucket{le="5.0"')
    ]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in delivered) == 1.0
