"""The bot's composition root: configuration → engine → settings reading side → discord.py bot.

Nothing else in the bot builds infrastructure; extensions get what they need from `BotServices`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass

import discord
from sqlalchemy.ext.asyncio import AsyncEngine

from guildkit.bot.client import GuildkitBot
from guildkit.bot.heap import HeapTrimmer
from guildkit.bot.metrics import serve_metrics
from guildkit.bot.services import BotServices
from guildkit.bot.startup import (
    describe_database,
    login_until_reachable,
    until_database_ready,
)
from guildkit.bot.warmup import GuildWarmer
from guildkit.bot.xp_store import XpStore
from guildkit.config import ConfigError, GuildkitConfig, revealed
from guildkit.db.engine import create_engine
from guildkit.db.migrate import SchemaNotReady, check_schema
from guildkit.sandbox.discordpy import is_real_discord, point_discordpy_at
from guildkit.settings.runtime import build_reading_side

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_LOGIN_REFUSED = 3
EXIT_INTENTS_REFUSED = 4


@dataclass(frozen=True)
class ShardPlan:
    """`None` for both: let Discord recommend the shard count (discord.py asks /gateway/bot)."""

    shard_ids: tuple[int, ...] | None
    shard_count: int | None


def shard_plan(config: GuildkitConfig) -> ShardPlan:
    """The shards this process runs: a subset, all shards of a given count, or Discord's
    recommendation when neither variable is set."""
    count = config.shard_count
    ids = config.shard_ids
    if ids is None:
        return ShardPlan(tuple(range(count)) if count else None, count)
    if count is None:
        raise ConfigError("GUILDKIT_SHARD_COUNT: must be set when GUILDKIT_SHARD_IDS is")
    bad = [i for i in ids if not 0 <= i < count]
    if bad or not ids:
        raise ConfigError(
            f"GUILDKIT_SHARD_IDS: shard numbers must be 0..{count - 1} "
            f"(GUILDKIT_SHARD_COUNT={count}), got {','.join(map(str, ids)) or 'none'}"
        )
    return ShardPlan(tuple(sorted(set(ids))), count)


async def run_bot(config: GuildkitConfig) -> int:
    """Run until stopped (SIGTERM/SIGINT) or refused by Discord; returns the exit code."""
    token = revealed(config.discord_token)
    if not token:
        raise ConfigError(
            "DISCORD_TOKEN: not set; use the bot token from the Discord Developer Portal, "
            "or the sandbox's (see `guildkit sandbox`)"
        )
    plan = shard_plan(config)
    # Before any discord.py object exists: the REST base and the default gateway are globals.
    point_discordpy_at(config.discord_api_base)
    fast_identify = not is_real_discord(config.discord_api_base)

    stopping = asyncio.Event()
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def request_stop() -> None:
        if not stopping.is_set():
            log.info("stopping the bot")
            stopping.set()
            if main is not None:
                main.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, request_stop)

    engine = create_engine(config.sqlalchemy_url)
    where = describe_database(config.sqlalchemy_url)
    try:
        return await _run(config, token, plan, fast_identify, engine, where)
    except asyncio.CancelledError:
        if stopping.is_set():
            return EXIT_OK
        raise
    finally:
        await engine.dispose()


async def _run(
    config: GuildkitConfig,
    token: str,
    plan: ShardPlan,
    fast_identify: bool,
    engine: AsyncEngine,
    where: str,
) -> int:
    try:
        await until_database_ready(lambda: check_schema(engine), where)
    except SchemaNotReady as exc:
        log.error("cannot start: %s", exc)
        return EXIT_CONFIG

    side = build_reading_side(
        engine,
        pg_dsn=config.asyncpg_dsn,
        redis_url=config.redis_url,
        # Until Discord has told us the shard count (automatic sharding), report none.
        shard_ids=plan.shard_ids or (),
        shard_count=plan.shard_count or 0,
    )
    # The listener's cursor is read before any warm-up, so nothing committed in between is lost.
    await until_database_ready(side.start, where)
    if config.redis_url is None:
        log.info("REDIS_URL not set: running without the Redis cache (PostgreSQL only)")
    services = BotServices(reader=side.reader, xp=XpStore(engine))
    warmer = GuildWarmer(side.reader)
    bot = GuildkitBot(
        services,
        warmer,
        shard_ids=list(plan.shard_ids) if plan.shard_ids is not None else None,
        shard_count=plan.shard_count,
        fast_identify=fast_identify,
        on_shards_known=side.reporter.set_shards if side.reporter else None,
    )
    metrics = serve_metrics(side, config.bot_metrics_port, guild_count=lambda: len(bot.guilds))
    trimmer = HeapTrimmer.for_this_platform()
    trimmer.start()
    log.info(
        "starting bot: shards %s of %s, Discord at %s, PostgreSQL at %s",
        list(plan.shard_ids) if plan.shard_ids is not None else "(Discord's recommendation)",
        plan.shard_count or "auto",
        config.discord_api_base,
        where,
    )
    try:
        async with bot:
            await login_until_reachable(bot, token, config.discord_api_base)
            await bot.connect(reconnect=True)
    except discord.LoginFailure:
        log.error(
            "Discord refused the bot token (DISCORD_TOKEN): check it in the Developer Portal "
            "(Bot → Reset Token)"
        )
        return EXIT_LOGIN_REFUSED
    except discord.PrivilegedIntentsRequired:
        log.error(
            "Discord refused the privileged intents: enable Server Members Intent and "
            "Message Content Intent for the application (Developer Portal → Bot)"
        )
        return EXIT_INTENTS_REFUSED
    finally:
        if metrics is not None:
            metrics.close()
        await trimmer.stop()
        await warmer.stop()
        await side.stop()
    return EXIT_OK
