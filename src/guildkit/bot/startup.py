"""Start-up steps that wait for a dependency: PostgreSQL (and its schema), then Discord's login.

Each retries with capped exponential backoff and says, in one line per attempt, what it waits
for, so `guildkit run` can start the bot before its database or network is up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import aiohttp
import discord

from guildkit.settings.reader import DB_ERRORS

log = logging.getLogger(__name__)


def describe_database(sqlalchemy_url: str) -> str:
    """host:port/db without credentials, for log lines."""
    parts = urlsplit(sqlalchemy_url)
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"


class Backoff:
    def __init__(self, first: float = 0.5, cap: float = 15.0) -> None:
        self._next = first
        self._cap = cap

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self._cap)
        return delay


async def until_database_ready(
    step: Callable[[], Awaitable[None]], where: str, *, backoff: Backoff | None = None
) -> None:
    """Run `step` until PostgreSQL lets it succeed; SchemaNotReady is not retried."""
    backoff = backoff or Backoff()
    while True:
        try:
            await step()
            return
        except DB_ERRORS as exc:
            delay = backoff.next_delay()
            log.warning(
                "PostgreSQL unreachable at %s (DATABASE_URL): %s; retrying in %.1fs",
                where,
                _short(exc),
                delay,
            )
            await asyncio.sleep(delay)


DISCORD_NETWORK_ERRORS = (aiohttp.ClientError, OSError, TimeoutError, discord.DiscordServerError)


async def login_until_reachable(
    bot: discord.Client, token: str, api_base: str, *, backoff: Backoff | None = None
) -> None:
    """Log in, retrying while Discord is unreachable; a refused token (LoginFailure) propagates."""
    backoff = backoff or Backoff(first=1.0, cap=60.0)
    while True:
        try:
            await bot.login(token)
            return
        except DISCORD_NETWORK_ERRORS as exc:
            delay = backoff.next_delay()
            log.warning(
                "cannot reach Discord at %s (DISCORD_API_BASE): %s; retrying in %.1fs",
                api_base,
                _short(exc),
                delay,
            )
            # A failed login leaves its HTTP session open; the next attempt makes a new one.
            await bot.http.close()
            await asyncio.sleep(delay)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
