"""A real discord.py bot wired to the sandbox, recording what it saw, for the tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import discord
from discord.ext import commands

from guildkit.sandbox import RunningSandbox
from guildkit.sandbox.discordpy import discordpy_pointed_at


class _Recording(commands.Bot):
    def __init__(self, **options: Any) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.members = True
        intents.message_content = True
        intents.guild_messages = True
        # guild_ready_timeout: discord.py waits this long after the last GUILD_CREATE before
        # on_ready; the 2 s default only slows tests down.
        super().__init__(command_prefix="!", intents=intents, guild_ready_timeout=0.2, **options)
        self.seen: list[str] = []
        self.ready = asyncio.Event()
        self.resumed = asyncio.Event()
        self.on_message_hook: Callable[[discord.Message], Awaitable[None]] | None = None
        self.on_join_hook: Callable[[discord.Member], Awaitable[None]] | None = None

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # discord.py sleeps 5 s before every re-IDENTIFY (Discord's identify rate limit); the
        # sandbox has no such limit.
        return None

    async def on_ready(self) -> None:
        self.ready.set()

    async def on_resumed(self) -> None:
        self.resumed.set()

    async def on_shard_resumed(self, shard_id: int) -> None:
        self.resumed.set()

    async def on_message(self, message: discord.Message) -> None:
        self.seen.append(f"message:{message.content}")
        if self.on_message_hook is not None and message.author != self.user:
            await self.on_message_hook(message)

    async def on_member_join(self, member: discord.Member) -> None:
        self.seen.append(f"join:{member.id}")
        if self.on_join_hook is not None:
            await self.on_join_hook(member)


class RecordingBot(_Recording):
    """A single-connection bot (optionally one shard via shard_id/shard_count)."""


class RecordingShardedBot(_Recording, commands.AutoShardedBot):
    """Several shards in one process, as GUILDKIT_SHARD_IDS allows."""


@contextlib.asynccontextmanager
async def running_bot(sandbox: RunningSandbox, bot: commands.Bot) -> AsyncIterator[commands.Bot]:
    """Start `bot` against the sandbox, wait until it is ready, close it afterwards."""
    with discordpy_pointed_at(sandbox.api_base):
        task = asyncio.create_task(bot.start(sandbox.bot_token))
        try:
            await asyncio.wait_for(bot.wait_until_ready(), 10)
            yield bot
        finally:
            await bot.close()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 5)
