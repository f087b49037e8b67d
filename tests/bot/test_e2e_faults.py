"""The real bot under faults: Redis empty, killed, stale; kill -9; shards; gateway cut."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from guildkit.db.schema import member_xp
from guildkit.sandbox import RunningSandbox
from guildkit.sandbox.client import SandboxClient
from tests.bot.conftest import make_scene
from tests.bot.harness import ChildFactory, Scene, bot_env, start_bot, wait_applied
from tests.support.redis_server import RedisServer


@pytest.fixture
async def redis_scene(
    sandbox: RunningSandbox,
    control: SandboxClient,
    bot_engine: AsyncEngine,
    redis_server: RedisServer,
) -> AsyncIterator[Scene]:
    built = make_scene(sandbox, control, bot_engine, redis_server.url)
    try:
        yield built
    finally:
        await built.writing.close()


async def test_redis_empty_at_start(
    redis_scene: Scene, redis_server: RedisServer, bot_db: str, python_child: ChildFactory
) -> None:
    scene = redis_scene
    await wait_applied(scene.engine, await scene.patch({"prefix": "?"}), processes=0)
    redis_server.flushall()
    await start_bot(python_child, bot_env(scene.sandbox, bot_db, redis_url=redis_server.url))
    assert "pong" in (await scene.ask("?ping")).content
    await wait_applied(scene.engine, await scene.patch({"prefix": "$"}))
    assert "pong" in (await scene.ask("$ping")).content
    await wait_applied(
        scene.engine,
        await scene.patch({"custom_commands": [{"name": "faq", "response": "See #faq"}]}),
    )
    await scene.say("$faq")
    await scene.control.wait_for_message(scene.general, lambda m: m.content == "See #faq")


async def test_redis_killed_mid_run(
    redis_scene: Scene, redis_server: RedisServer, bot_db: str, python_child: ChildFactory
) -> None:
    scene = redis_scene
    bot = await start_bot(python_child, bot_env(scene.sandbox, bot_db, redis_url=redis_server.url))
    assert "pong" in (await scene.ask("!ping")).content
    redis_server.kill()
    await wait_applied(scene.engine, await scene.patch({"prefix": "?"}))
    assert "pong" in (await scene.ask("?ping")).content
    result = await scene.patch(
        {"moderation": {"anti_link": True}, "log_channel_id": str(scene.mod_log)}
    )
    await wait_applied(scene.engine, result)
    posted = await scene.say("http://bad.example")
    await scene.control.wait_for_message(scene.mod_log)
    assert posted.id in [m.id for m in await scene.control.deleted_messages(scene.general)]
    assert bot.alive()


async def test_redis_restarted_from_stale_snapshot(
    redis_scene: Scene, redis_server: RedisServer, bot_db: str, python_child: ChildFactory
) -> None:
    scene = redis_scene
    await start_bot(python_child, bot_env(scene.sandbox, bot_db, redis_url=redis_server.url))
    await wait_applied(scene.engine, await scene.patch({"prefix": "?"}))
    assert "pong" in (await scene.ask("?ping")).content  # v1 is now in Redis too
    stale = redis_server.snapshot()
    await wait_applied(scene.engine, await scene.patch({"prefix": "$"}))
    assert "pong" in (await scene.ask("$ping")).content
    redis_server.restart_from_snapshot(stale)  # Redis now claims v1 ("?")
    await wait_applied(scene.engine, await scene.patch({"disabled_commands": ["help"]}))
    assert "pong" in (await scene.ask("$ping")).content
    ignored = await scene.say("?ping")
    await scene.no_reply_to(ignored, then="$ping")


async def test_kill9_and_restart_keep_settings_and_xp(
    scene: Scene, bot_db: str, python_child: ChildFactory
) -> None:
    env = bot_env(scene.sandbox, bot_db)
    bot = await start_bot(python_child, env)
    result = await scene.patch({"prefix": "?", "leveling": {"enabled": True}})
    await wait_applied(scene.engine, result)
    await scene.say("hello there")

    async def xp_row() -> int | None:
        async with scene.engine.connect() as conn:
            return await conn.scalar(
                select(member_xp.c.xp).where(
                    member_xp.c.guild_id == scene.guild_id, member_xp.c.user_id == scene.member
                )
            )

    from tests.bot.harness import eventually

    assert await eventually(xp_row, what="XP awarded") == 15
    bot.kill()
    await start_bot(python_child, env)
    rank = (await scene.ask("?rank")).content
    assert "15 XP" in rank and "level 0" in rank and "rank #1" in rank


async def test_level_up_is_announced(scene: Scene, bot_db: str, python_child: ChildFactory) -> None:
    async with scene.engine.begin() as conn:
        await conn.execute(
            insert(member_xp).values(
                guild_id=scene.guild_id,
                user_id=scene.member,
                xp=95,
                level=0,
                last_awarded_at=text("now() - interval '5 minutes'"),
            )
        )
    await start_bot(python_child, bot_env(scene.sandbox, bot_db))
    result = await scene.patch(
        {"leveling": {"enabled": True, "announce_channel_id": str(scene.welcome)}}
    )
    await wait_applied(scene.engine, result)
    await scene.say("one more message")
    announced = await scene.control.wait_for_message(scene.welcome)
    assert announced.content == f"🎉 <@{scene.member}> reached level 1!"


async def test_two_processes_each_run_half_of_the_shards(
    scene: Scene, bot_db: str, python_child: ChildFactory
) -> None:
    owner = await scene.control.create_user("owner")
    guilds = [await scene.control.create_guild(f"g{i}", owner.id) for i in range(2)]
    assert {(g.id >> 22) % 2 for g in guilds} == {0, 1}
    channels = {g.id: (await scene.control.create_channel(g.id, "chat")).id for g in guilds}
    for shard in (0, 1):
        env = bot_env(
            scene.sandbox, bot_db, GUILDKIT_SHARD_IDS=str(shard), GUILDKIT_SHARD_COUNT="2"
        )
        await start_bot(python_child, env)
    for g in guilds:
        result = await scene.patch({"prefix": f"{(g.id >> 22) % 2}>"}, guild_id=g.id)
        await wait_applied(scene.engine, result, processes=2)
    for g in guilds:
        posted = await scene.control.post_message(
            channels[g.id], owner.id, f"{(g.id >> 22) % 2}>ping"
        )
        reply = await scene.reply_to(posted)
        assert "pong" in reply.content
    sessions = await scene.control.gateway_sessions()
    assert sorted(s["shard"][0] for s in sessions if s["connected"]) == [0, 1]


async def test_gateway_cut_resumes_with_settings_behaviour(
    scene: Scene, bot_db: str, python_child: ChildFactory
) -> None:
    bot = await start_bot(python_child, bot_env(scene.sandbox, bot_db))
    await wait_applied(scene.engine, await scene.patch({"prefix": "?"}))
    assert "pong" in (await scene.ask("?ping")).content
    session_id = (await scene.control.wait_for_gateway())[0]["session_id"]
    assert await scene.control.cut_gateway() == 1
    # Settings change while the bot is disconnected from Discord (not from PostgreSQL).
    await wait_applied(scene.engine, await scene.patch({"prefix": "%"}))
    await bot.wait_for_line_async("resumed its gateway session", timeout=10)
    assert [s["session_id"] for s in await scene.control.wait_for_gateway()] == [session_id]
    assert "pong" in (await scene.ask("%ping")).content
    ignored = await scene.say("?ping")
    await scene.no_reply_to(ignored, then="%ping")
