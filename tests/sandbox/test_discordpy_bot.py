"""The real discord.py client against the sandbox: connect, events, REST calls, shards, resume."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import discord
from discord.gateway import DiscordWebSocket
from discord.http import Route

from guildkit.sandbox import RunningSandbox
from guildkit.sandbox.client import SandboxClient
from guildkit.sandbox.discordpy import current_endpoints, point_discordpy_at, restore_endpoints
from guildkit.sandbox.permissions import Permission
from tests.sandbox.botkit import RecordingBot, RecordingShardedBot, running_bot


async def _wait(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Poll an in-process condition (the bot's cache) with a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.01)


async def test_bot_connects_and_sees_guild(sandbox: RunningSandbox, control: SandboxClient) -> None:
    demo = await control.seed_demo()
    async with running_bot(sandbox, RecordingBot()) as bot:
        assert bot.user is not None and bot.user.id == sandbox.state.bot_user.id
        guild = bot.get_guild(demo.guild_id)
        assert guild is not None and guild.name == "Guildkit Demo"
        assert {c.name for c in guild.text_channels} == {"general", "welcome", "mod-log"}
        assert guild.get_member(demo.member_user_id) is not None
        assert guild.me.guild_permissions.manage_roles
        sessions = await control.gateway_sessions()
        # discord.py asks for zlib-stream unless zstandard is installed (then zstd-stream,
        # which the sandbox answers uncompressed; discord.py accepts text frames either way).
        assert [s["compression"] for s in sessions] in (["zlib-stream"], [None])


async def test_member_message_reaches_on_message_and_reply_is_recorded(
    sandbox: RunningSandbox, control: SandboxClient
) -> None:
    demo = await control.seed_demo()
    bot = RecordingBot()

    async def reply(message: discord.Message) -> None:
        if message.content == "!ping":
            await message.channel.send("pong")

    bot.on_message_hook = reply
    async with running_bot(sandbox, bot):
        await control.post_message(demo.general_channel_id, demo.member_user_id, "!ping")
        sent = await control.wait_for_message(
            demo.general_channel_id, lambda m: m.content == "pong"
        )
        assert sent.author_id == sandbox.state.bot_user.id
        # Discord echoes the bot's own messages back as MESSAGE_CREATE.
        await _wait(lambda: "message:pong" in bot.seen)


async def test_member_join_and_auto_role(sandbox: RunningSandbox, control: SandboxClient) -> None:
    demo = await control.seed_demo()
    bot = RecordingBot()

    async def give_role(member: discord.Member) -> None:
        role = member.guild.get_role(demo.member_role_id)
        assert role is not None
        await member.add_roles(role, reason="auto role")

    bot.on_join_hook = give_role
    async with running_bot(sandbox, bot):
        newcomer = await control.member_join(demo.guild_id, "newcomer")
        action = await control.wait_for_action(demo.guild_id, lambda a: a.kind == "role_added")
        assert (action.user_id, action.role_id, action.reason) == (
            newcomer.id,
            demo.member_role_id,
            "auto role",
        )
        assert demo.member_role_id in await control.member_roles(demo.guild_id, newcomer.id)
        # GUILD_MEMBER_UPDATE reached the bot's cache too.
        guild = bot.get_guild(demo.guild_id)
        assert guild is not None

        def cached() -> bool:
            member = guild.get_member(newcomer.id)
            return member is not None and any(r.id == demo.member_role_id for r in member.roles)

        await _wait(cached)


async def test_missing_manage_roles_is_forbidden(
    sandbox: RunningSandbox, control: SandboxClient
) -> None:
    demo = await control.seed_demo()
    await control.set_bot_permissions(
        demo.guild_id, int(Permission.VIEW_CHANNEL | Permission.SEND_MESSAGES)
    )
    async with running_bot(sandbox, RecordingBot()) as bot:
        guild = bot.get_guild(demo.guild_id)
        assert guild is not None
        member = await guild.fetch_member(demo.member_user_id)
        role = guild.get_role(demo.moderator_role_id)
        assert role is not None
        try:
            await member.add_roles(role)
        except discord.Forbidden as exc:
            assert exc.code == 50013
        else:
            raise AssertionError("add_roles should have been refused")


async def test_bot_deletes_a_message(sandbox: RunningSandbox, control: SandboxClient) -> None:
    demo = await control.seed_demo()
    bot = RecordingBot()

    async def moderate(message: discord.Message) -> None:
        if "http://" in message.content:
            await message.delete()

    bot.on_message_hook = moderate
    async with running_bot(sandbox, bot):
        posted = await control.post_message(
            demo.general_channel_id, demo.member_user_id, "see http://x"
        )

        async def deleted() -> bool | None:
            gone = await control.deleted_messages(demo.general_channel_id)
            return True if any(m.id == posted.id for m in gone) else None

        await control.wait_until(deleted)
        actions = await control.actions(demo.guild_id)
        assert [a.kind for a in actions if a.message_id == posted.id] == ["message_deleted"]


async def test_two_shards_each_get_their_guilds(
    sandbox: RunningSandbox, control: SandboxClient
) -> None:
    owner = await control.create_user("owner")
    guilds = [await control.create_guild(f"guild {i}", owner.id) for i in range(4)]
    expected = {shard: {g.id for g in guilds if (g.id >> 22) % 2 == shard} for shard in (0, 1)}
    assert expected[0] and expected[1], "the deterministic ids should spread over both shards"
    bot0 = RecordingBot(shard_id=0, shard_count=2)
    bot1 = RecordingBot(shard_id=1, shard_count=2)
    async with running_bot(sandbox, bot0), running_bot(sandbox, bot1):
        assert {g.id for g in bot0.guilds} == expected[0]
        assert {g.id for g in bot1.guilds} == expected[1]
        # A guild created later goes to the shard that owns it, as GUILD_CREATE.
        late = await control.create_guild("late", owner.id)
        target = bot0 if (late.id >> 22) % 2 == 0 else bot1
        other = bot1 if target is bot0 else bot0
        await _wait(lambda: target.get_guild(late.id) is not None)
        assert other.get_guild(late.id) is None


async def test_auto_sharded_bot_runs_a_subset_of_shards(
    sandbox: RunningSandbox, control: SandboxClient
) -> None:
    owner = await control.create_user("owner")
    guilds = [await control.create_guild(f"guild {i}", owner.id) for i in range(3)]
    bot = RecordingShardedBot(shard_ids=[0, 2], shard_count=3)
    async with running_bot(sandbox, bot):
        assert {g.id for g in bot.guilds} == {g.id for g in guilds if (g.id >> 22) % 3 in (0, 2)}
        assert len(await control.gateway_sessions()) == 2
        await control.cut_gateway()
        await asyncio.wait_for(bot.resumed.wait(), 10)
        target = next(g for g in guilds if (g.id >> 22) % 3 == 2)
        channel = await control.create_channel(target.id, "chat")
        await control.post_message(channel.id, owner.id, "to shard 2")
        await _wait(lambda: "message:to shard 2" in bot.seen)


async def test_gateway_cut_resumes_and_events_keep_flowing(
    sandbox: RunningSandbox, control: SandboxClient
) -> None:
    demo = await control.seed_demo()
    bot = RecordingBot()
    async with running_bot(sandbox, bot):
        session_id = (await control.wait_for_gateway())[0]["session_id"]
        assert await control.cut_gateway(refuse_seconds=0.3) == 1
        # Posted while the bot is disconnected: must be replayed on RESUME.
        await control.post_message(demo.general_channel_id, demo.member_user_id, "while down")
        await asyncio.wait_for(bot.resumed.wait(), 10)
        sessions = await control.wait_for_gateway()
        assert [s["session_id"] for s in sessions] == [session_id]
        await _wait(lambda: "message:while down" in bot.seen)
        await control.post_message(demo.general_channel_id, demo.member_user_id, "after")
        await _wait(lambda: "message:after" in bot.seen)
        assert bot.seen.count("message:while down") == 1


async def test_invalidated_session_reidentifies_via_default_gateway(
    sandbox: RunningSandbox, control: SandboxClient
) -> None:
    demo = await control.seed_demo()
    bot = RecordingBot()
    async with running_bot(sandbox, bot):
        bot.ready.clear()
        await control.cut_gateway(invalidate_sessions=True)
        # RESUME gets op 9; discord.py then re-IDENTIFIEs against DEFAULT_GATEWAY.
        await asyncio.wait_for(bot.ready.wait(), 10)
        await control.post_message(demo.general_channel_id, demo.member_user_id, "fresh session")
        await _wait(lambda: "message:fresh session" in bot.seen)


def test_point_discordpy_leaves_real_discord_alone() -> None:
    before = current_endpoints()
    previous = point_discordpy_at("https://discord.com/api/v10")
    assert previous == before == current_endpoints()
    point_discordpy_at("http://127.0.0.1:8090/api/v10/")
    try:
        assert Route.BASE == "http://127.0.0.1:8090/api/v10"
        assert str(DiscordWebSocket.DEFAULT_GATEWAY) == "ws://127.0.0.1:8090/gateway"
    finally:
        restore_endpoints(previous)
    assert current_endpoints() == before
