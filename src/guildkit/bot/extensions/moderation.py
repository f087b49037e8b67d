"""Moderation: remove links, blocked words and spam, and log each removal to the log channel."""

from __future__ import annotations

import logging

import discord
from discord.ext import commands

from guildkit.bot.client import GuildkitBot
from guildkit.bot.extensions._base import guildkit_bot
from guildkit.bot.rules.moderation_rules import (
    SpamTracker,
    Verdict,
    contains_link,
    find_blocked_word,
    is_exempt,
)
from guildkit.bot.services import BotServices
from guildkit.settings.model import ModerationSettings

log = logging.getLogger(__name__)


def judge(text: str, rules: ModerationSettings, spam_count: int | None) -> Verdict | None:
    """The rule a message breaks, most specific first, or None."""
    if rules.blocked_words:
        word = find_blocked_word(text, rules.blocked_words)
        if word is not None:
            return Verdict("blocked_word", f"blocked word “{word}”")
    if rules.anti_link and contains_link(text):
        return Verdict("link", "link")
    if spam_count is not None:
        return Verdict("spam", f"spam ({spam_count} messages in {rules.spam_window_seconds}s)")
    return None


def log_line(message: discord.Message, verdict: Verdict, *, deleted: bool) -> str:
    excerpt = discord.utils.escape_markdown(message.content[:200])
    action = "Removed" if deleted else "Could not remove"
    return (
        f"🛡️ {action} a message by {message.author.mention} in <#{message.channel.id}>: "
        f"{verdict.detail}\n> {excerpt}"
    )[:2000]


class Moderation(commands.Cog):
    def __init__(self, bot: GuildkitBot, services: BotServices, spam: SpamTracker) -> None:
        self.bot = bot
        self.services = services
        self.spam = spam

    async def cog_load(self) -> None:
        # A guard, not a listener: it must run before commands, custom commands and XP, so
        # that a removed message earns nothing and runs nothing.
        self.bot.message_guards.append(self.guard)

    async def cog_unload(self) -> None:
        self.bot.message_guards.remove(self.guard)

    async def guard(self, message: discord.Message) -> bool:
        """True if the message was judged against the rules and removed."""
        guild = message.guild
        author = message.author
        if guild is None or author.bot:
            return False
        read = await self.services.settings_for(guild.id)
        if read is None:
            return False
        rules = read.settings.moderation
        if not (rules.anti_link or rules.anti_spam or rules.blocked_words):
            return False
        role_ids = [r.id for r in author.roles] if isinstance(author, discord.Member) else []
        if is_exempt(role_ids, rules.exempt_role_ids):
            return False
        spam_count = (
            self.spam.record(
                guild.id,
                author.id,
                max_messages=rules.spam_max_messages,
                window=rules.spam_window_seconds,
            )
            if rules.anti_spam
            else None
        )
        verdict = judge(message.content, rules, spam_count)
        if verdict is None:
            return False
        deleted = await self._delete(message, verdict)
        await self._log(message, verdict, read.settings.log_channel_id, deleted=deleted)
        return True

    async def _delete(self, message: discord.Message, verdict: Verdict) -> bool:
        guild_id = message.guild.id if message.guild else None
        try:
            await message.delete()
        except discord.NotFound:
            return True  # someone else removed it first
        except discord.Forbidden as exc:
            log.warning(
                "guild %s: cannot delete message %s (%s): %s (Manage Messages?)",
                guild_id,
                message.id,
                verdict.rule,
                exc.text or exc,
            )
            return False
        log.info(
            "guild %s: deleted message %s by %s: %s",
            guild_id,
            message.id,
            message.author.id,
            verdict.rule,
        )
        return True

    async def _log(
        self,
        message: discord.Message,
        verdict: Verdict,
        log_channel_id: str | None,
        *,
        deleted: bool,
    ) -> None:
        if log_channel_id is None or message.guild is None:
            return
        channel = message.guild.get_channel(int(log_channel_id))
        if not isinstance(channel, discord.abc.Messageable):
            log.warning("guild %s: log channel %s not found", message.guild.id, log_channel_id)
            return
        try:
            await channel.send(
                log_line(message, verdict, deleted=deleted),
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.Forbidden as exc:
            log.warning(
                "guild %s: cannot write to log channel %s: %s",
                message.guild.id,
                log_channel_id,
                exc.text or exc,
            )


async def setup(bot: commands.Bot) -> None:
    gk = guildkit_bot(bot)
    await bot.add_cog(Moderation(gk, gk.services, gk.services.spam))
