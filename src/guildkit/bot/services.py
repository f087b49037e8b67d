"""What the extensions share: the settings reader and the stores, built by the composition root."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from guildkit.bot.rules.moderation_rules import SpamTracker
from guildkit.bot.xp_store import XpStore
from guildkit.settings.errors import SettingsUnavailable
from guildkit.settings.reader import SettingsRead, SettingsReader

log = logging.getLogger(__name__)


@dataclass
class BotServices:
    reader: SettingsReader
    xp: XpStore
    spam: SpamTracker = field(default_factory=lambda: SpamTracker(clock=time.monotonic))

    async def settings_for(self, guild_id: int) -> SettingsRead | None:
        """The guild's current settings, or None (logged) when no tier can produce them.

        Handlers skip the event then: acting on defaults could, say, ignore a changed prefix
        or miss a moderation rule, and PostgreSQL being down with nothing held is rare.
        """
        try:
            return await self.reader.get(guild_id)
        except SettingsUnavailable as exc:
            log.warning("guild %s: event skipped, settings unavailable: %s", guild_id, exc)
            return None
