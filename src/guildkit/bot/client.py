"""The discord.py bot: dynamic prefix, the message pipeline, warm-up hooks and error handling."""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord.ext import commands

from guildkit.bot.services import BotServices
from guildkit.bot.warmup import GuildWarmer
from guildkit.settings.model import DEFAULT_SETTINGS

log = logging.getLogger(__name__)

EXTENSIONS = ("core", "custom_commands", "welcome", "moderation", "leveling")

# Returns True when it removed the message (moderation), so nothing else acts on it.
MessageGuard = Callable[[discord.Message], Awaitable[bool]]


class CommandDisabledHere(commands.CheckFailure):
    """The guild disabled this built-in command: ignored without a reply."""


def bot_intents() -> discord.Intents:
    intents = discord.Intents.none()
    intents.guilds = True
    intents.members = True  # privileged: member joins (welcome, auto roles)
    intents.message_content = True  # privileged: commands, moderation
    intents.guild_messages = True
    return intents


class GuildkitBot(commands.AutoShardedBot):
    def __init__(
        self,
        services: BotServices,
        warmer: GuildWarmer,
        *,
        shard_ids: list[int] | None,
        shard_count: int | None,
        fast_identify: bool,
        on_shards_known: Callable[[tuple[int, ...], int], None] | None = None,
    ) -> None:
        # Leaving both out makes discord.py ask Discord for the recommended shard count.
        sharding: dict[str, Any] = (
            {} if shard_ids is None else {"shard_ids": shard_ids, "shard_count": shard_count}
        )
        super().__init__(
            command_prefix=self._prefix_for,
            intents=bot_intents(),
            **sharding,
            help_command=None,  # `help` lives in the core extension and reads the settings
            # Message authors arrive with their roles in the payload; chunking every guild's
            # member list at start would cost minutes on a large bot and buys nothing here.
            chunk_guilds_at_startup=False,
            # Admin-written texts (welcome, custom commands) never ping @everyone or roles.
            allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=True),
            guild_ready_timeout=0.2 if fast_identify else 2.0,
            # No message cache: no feature reads a message back (no edit, delete or reaction
            # handlers), and discord.py's default of 1,000 cached messages costs memory, a
            # linear scan per delete event and allocator churn (see docs/memory.md).
            max_messages=None,
        )
        self.services = services
        self.warmer = warmer
        self._fast_identify = fast_identify
        self._on_shards_known = on_shards_known
        self.message_guards: list[MessageGuard] = []
        self.add_check(self._command_enabled)

    # -- start-up ---------------------------------------------------------------------------

    async def setup_hook(self) -> None:
        self.warmer.start()
        for name in EXTENSIONS:
            await self.load_extension(f"guildkit.bot.extensions.{name}")

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # Real Discord rate-limits IDENTIFY (discord.py waits 5 s before each re-IDENTIFY);
        # the sandbox has no such limit, and waiting there only slows every test down.
        if not self._fast_identify:
            await super().before_identify_hook(shard_id, initial=initial)

    async def on_ready(self) -> None:
        shards = sorted(self.shards) if self.shard_ids is None else list(self.shard_ids)
        log.info(
            "bot ready as %s: %s guilds on shards %s of %s",
            self.user,
            len(self.guilds),
            shards,
            self.shard_count,
        )
        if self._on_shards_known is not None and self.shard_count:
            self._on_shards_known(tuple(shards), self.shard_count)
        self.warmer.add({g.id for g in self.guilds})

    async def on_shard_resumed(self, shard_id: int) -> None:
        log.info("shard %s resumed its gateway session", shard_id)

    async def on_guild_available(self, guild: discord.Guild) -> None:
        self.warmer.add([guild.id])

    async def on_guild_join(self, guild: discord.Guild) -> None:
        log.info("joined guild %s (%s)", guild.id, guild.name)
        self.warmer.add([guild.id])

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        log.info("left guild %s", guild.id)
        self.services.reader.forget(guild.id)

    # -- messages ---------------------------------------------------------------------------

    async def _prefix_for(self, bot: commands.Bot, message: discord.Message) -> list[str]:
        if message.guild is None:
            prefix = DEFAULT_SETTINGS.prefix
        else:
            read = await self.services.settings_for(message.guild.id)
            if read is None:
                return commands.when_mentioned(bot, message)
            prefix = read.settings.prefix
        return commands.when_mentioned_or(prefix)(bot, message)

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.guild is None:
            return
        for guard in self.message_guards:
            if await guard(message):
                return
        await self.process_commands(message)
        # Custom commands and leveling act on messages moderation let through.
        self.dispatch("clean_message", message)

    async def _command_enabled(self, ctx: commands.Context[Any]) -> bool:
        if ctx.guild is None or ctx.command is None:
            return True
        read = await self.services.settings_for(ctx.guild.id)
        if read is None:
            raise CommandDisabledHere()
        if ctx.command.qualified_name in read.settings.disabled_commands:
            raise CommandDisabledHere()
        return True

    # -- errors -----------------------------------------------------------------------------

    async def on_command_error(
        self, context: commands.Context[Any], exception: commands.CommandError, /
    ) -> None:
        if isinstance(exception, CommandDisabledHere | commands.CommandNotFound):
            return
        if isinstance(exception, commands.UserInputError):
            await _safe_reply(context, f"{exception}")
            return
        original = getattr(exception, "original", exception)
        guild_id = context.guild.id if context.guild else None
        if isinstance(original, discord.Forbidden):
            log.warning(
                "guild %s: Discord refused command %s: %s (missing permission?)",
                guild_id,
                context.command,
                original.text or original,
            )
            return
        log.error(
            "guild %s: command %s failed: %r",
            guild_id,
            context.command,
            original,
            exc_info=original,
        )

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        # One guild's bad data must never take the bot down: log this event and carry on.
        exc = sys.exc_info()[1]
        guild_id = _guild_of(args)
        if isinstance(exc, discord.Forbidden):
            log.warning(
                "guild %s: Discord refused an action in %s: %s (missing permission?)",
                guild_id,
                event_method,
                exc.text or exc,
            )
            return
        log.error("guild %s: %s failed: %r", guild_id, event_method, exc, exc_info=exc)


def _guild_of(args: tuple[Any, ...]) -> int | None:
    for arg in args:
        guild = getattr(arg, "guild", None)
        if isinstance(guild, discord.Guild):
            return guild.id
        if isinstance(arg, discord.Guild):
            return arg.id
    return None


async def _safe_reply(ctx: commands.Context[Any], text: str) -> None:
    try:
        await ctx.reply(text, mention_author=False)
    except discord.HTTPException as exc:
        log.warning("guild %s: could not reply: %s", ctx.guild.id if ctx.guild else None, exc)
