"""The control client: waiting is event-driven and bounded."""

from __future__ import annotations

import asyncio
import time

import pytest

from guildkit.sandbox.client import SandboxClient, SandboxError


async def test_wait_for_message_wakes_on_change(control: SandboxClient) -> None:
    demo = await control.seed_demo()

    async def later() -> None:
        await asyncio.sleep(0.1)
        await control.post_message(demo.general_channel_id, demo.member_user_id, "hello there")

    task = asyncio.create_task(later())
    started = time.perf_counter()
    found = await control.wait_for_message(
        demo.general_channel_id, lambda m: m.content == "hello there", from_bot=False, timeout=5
    )
    await task
    assert found.author_id == demo.member_user_id
    assert time.perf_counter() - started < 1.0


async def test_wait_times_out(control: SandboxClient) -> None:
    demo = await control.seed_demo()
    started = time.perf_counter()
    with pytest.raises(TimeoutError):
        await control.wait_for_message(demo.general_channel_id, timeout=0.3)
    assert time.perf_counter() - started < 2.0


async def test_errors_carry_discord_bodies(control: SandboxClient) -> None:
    with pytest.raises(SandboxError) as caught:
        await control.create_channel(123, "nowhere")
    assert caught.value.status == 404 and "Unknown Guild" in caught.value.body


async def test_guild_without_bot_then_bot_added(control: SandboxClient) -> None:
    owner = await control.create_user("owner")
    guild = await control.create_guild("later", owner.id, with_bot=False)
    assert (await control.guild(guild.id))["bot_present"] is False
    await control.add_bot(guild.id)
    assert (await control.guild(guild.id))["bot_present"] is True
