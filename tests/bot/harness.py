"""Drive the real `guildkit bot` process against an in-process sandbox, with deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from guildkit.sandbox import RunningSandbox
from guildkit.sandbox.client import SandboxClient, SandboxMessage
from guildkit.settings.process_status import ProcessRegistry
from guildkit.settings.runtime import WritingSide
from guildkit.settings.types import WriteResult
from tests.support.processes import ChildProcess

T = TypeVar("T")
READY = "bot ready as"
START_TIMEOUT = 15.0


class ChildFactory(Protocol):
    def __call__(
        self, module: str, *args: str, env: Mapping[str, str] | None = None
    ) -> ChildProcess: ...


def bot_env(
    sandbox: RunningSandbox,
    database_url: str,
    *,
    redis_url: str | None = None,
    token: str | None = None,
    api_base: str | None = None,
    **extra: str,
) -> dict[str, str]:
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url or "",
        "DISCORD_TOKEN": token or sandbox.bot_token,
        "DISCORD_API_BASE": api_base or sandbox.api_base,
        "GUILDKIT_BOT_METRICS_PORT": "0",
    }
    env.update(extra)
    return env


def spawn_bot(python_child: ChildFactory, env: Mapping[str, str]) -> ChildProcess:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("GUILDKIT_SHARD_")}
    return python_child("guildkit.cli.main", "bot", env={**inherited, **env})


async def start_bot(python_child: ChildFactory, env: Mapping[str, str]) -> ChildProcess:
    child = spawn_bot(python_child, env)
    await child.wait_for_line_async(READY, timeout=START_TIMEOUT)
    return child


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    *,
    within: float = 5.0,
    every: float = 0.05,
    what: str = "condition",
) -> T:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = await probe()
        if result is not None:
            return result
        if loop.time() > deadline:
            raise TimeoutError(f"{what} not met within {within}s")
        await asyncio.sleep(every)


async def answered_within(
    sb: SandboxClient, channel: int, author: int, command: str, *, within: float
) -> SandboxMessage:
    """Post `command` until the bot replies to one of the posts; every post is made within
    `within` seconds from now, so a reply proves the bot acted on it by then."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    posted: set[int] = set()
    while True:
        posted.add((await sb.post_message(channel, author, command)).id)
        with contextlib.suppress(TimeoutError):
            return await sb.wait_for_message(
                channel, lambda m: m.reference_id in posted, timeout=0.5
            )
        if loop.time() > deadline:
            raise AssertionError(f"the bot did not answer {command!r} within {within} s")


async def wait_applied(
    engine: AsyncEngine, result: WriteResult, *, processes: int = 1, within: float = 5.0
) -> float:
    """Wait until `processes` live bot processes report the change applied; returns seconds."""
    assert result.signal is not None, "the patch changed nothing"
    target = result.signal.change_seq
    registry = ProcessRegistry(engine)
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def probe() -> bool | None:
        live = await registry.live()
        done = [p for p in live if p.applied_change_seq >= target]
        return True if len(done) >= processes else None

    await eventually(probe, within=within, what=f"change {target} applied by {processes}")
    return loop.time() - started


@dataclass
class Scene:
    """A sandbox guild with the bot in it, and the writer the dashboard would use."""

    sandbox: RunningSandbox
    control: SandboxClient
    engine: AsyncEngine
    writing: WritingSide
    guild_id: int
    general: int
    welcome: int
    mod_log: int
    member: int
    member_role: int
    moderator_role: int

    async def patch(self, change: dict[str, Any], guild_id: int | None = None) -> WriteResult:
        return await self.writing.writer.patch(guild_id or self.guild_id, change, actor="test")

    async def say(self, content: str, *, channel: int | None = None) -> SandboxMessage:
        return await self.control.post_message(channel or self.general, self.member, content)

    async def reply_to(
        self, posted: SandboxMessage, *, within: float = 5.0, channel: int | None = None
    ) -> SandboxMessage:
        return await self.control.wait_for_message(
            channel or posted.channel_id, lambda m: m.reference_id == posted.id, timeout=within
        )

    async def ask(self, content: str, *, within: float = 5.0) -> SandboxMessage:
        posted = await self.say(content)
        return await self.reply_to(posted, within=within)

    async def no_reply_to(self, posted: SandboxMessage, *, then: str) -> None:
        """Prove `posted` got no reply: a later command is answered first, and still none."""
        await self.ask(then)
        replies = await self.control.sent_messages(posted.channel_id)
        assert not [m for m in replies if m.reference_id == posted.id], replies
