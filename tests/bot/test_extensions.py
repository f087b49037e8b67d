"""Extension handlers on discord.py objects built from real payloads, reading real settings."""

from __future__ import annotations

from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any, cast

import pytest

from guildkit.bot.extensions.moderation import Moderation
from guildkit.bot.extensions.welcome import welcome_for
from guildkit.bot.rules.moderation_rules import SpamTracker
from guildkit.bot.services import BotServices
from guildkit.settings.model import GuildSettings
from guildkit.settings.reader import SettingsReader
from guildkit.settings.types import VersionedSettings
from tests.bot.discord_objects import (
    EXEMPT_ROLE,
    GUILD_ID,
    MOD_LOG,
    RecordingHttp,
    make_guild,
    make_message,
    make_state,
)


class Source:
    """A settings source holding one document per guild, with a version bump per change."""

    def __init__(self) -> None:
        self.docs: dict[int, VersionedSettings] = {}

    def set(self, guild_id: int, document: dict[str, Any]) -> None:
        version = self.docs[guild_id].version + 1 if guild_id in self.docs else 1
        self.docs[guild_id] = VersionedSettings(
            guild_id, version, GuildSettings.model_validate(document)
        )

    async def get(self, guild_id: int) -> VersionedSettings:
        return self.docs.get(guild_id) or VersionedSettings.defaults(guild_id)

    async def get_many(self, guild_ids: Iterable[int]) -> dict[int, VersionedSettings]:
        return {g: await self.get(g) for g in guild_ids}


@pytest.fixture
def source() -> Source:
    return Source()


@pytest.fixture
def reader(source: Source) -> SettingsReader:
    return SettingsReader(source)


def moderation(reader: SettingsReader) -> Moderation:
    services = BotServices(reader=reader, xp=cast(Any, None))
    spam = SpamTracker(clock=lambda: 0.0)
    return Moderation(cast(Any, SimpleNamespace(message_guards=[])), services, spam)


async def test_link_is_deleted_and_logged(source: Source, reader: SettingsReader) -> None:
    http = RecordingHttp()
    guild = make_guild(make_state(http))
    source.set(GUILD_ID, {"moderation": {"anti_link": True}, "log_channel_id": str(MOD_LOG)})
    message = make_message(guild, "free stuff at https://example.com")
    assert await moderation(reader).guard(message)
    assert http.deleted == [message.id]
    [(channel, text)] = http.sent
    assert channel == MOD_LOG and "Removed a message" in text and "link" in text


async def test_exempt_role_and_bots_are_skipped(source: Source, reader: SettingsReader) -> None:
    http = RecordingHttp()
    guild = make_guild(make_state(http))
    source.set(
        GUILD_ID,
        {"moderation": {"anti_link": True, "exempt_role_ids": [str(EXEMPT_ROLE)]}},
    )
    cog = moderation(reader)
    assert not await cog.guard(make_message(guild, "https://x.y", roles=(EXEMPT_ROLE,)))
    assert not await cog.guard(make_message(guild, "https://x.y", bot=True))
    assert await cog.guard(make_message(guild, "https://x.y"))
    assert len(http.deleted) == 1


async def test_settings_are_read_on_every_message(source: Source, reader: SettingsReader) -> None:
    http = RecordingHttp()
    guild = make_guild(make_state(http))
    cog = moderation(reader)
    assert not await cog.guard(make_message(guild, "darn"))
    source.set(GUILD_ID, {"moderation": {"blocked_words": ["DARN"]}})
    reader.note_version(GUILD_ID, 1)  # the change signal
    assert await cog.guard(make_message(guild, "oh darn"))


async def test_spam_burst(source: Source, reader: SettingsReader) -> None:
    http = RecordingHttp()
    guild = make_guild(make_state(http))
    source.set(GUILD_ID, {"moderation": {"anti_spam": True, "spam_max_messages": 2}})
    cog = moderation(reader)
    removed = [await cog.guard(make_message(guild, f"msg {i}")) for i in range(4)]
    assert removed == [False, False, True, True]


async def test_forbidden_delete_does_not_raise(source: Source, reader: SettingsReader) -> None:
    http = RecordingHttp()
    http.forbid_delete = True
    guild = make_guild(make_state(http))
    source.set(GUILD_ID, {"moderation": {"anti_link": True}, "log_channel_id": str(MOD_LOG)})
    assert await moderation(reader).guard(make_message(guild, "https://x.y"))
    assert http.deleted == [] and "Could not remove" in http.sent[0][1]


async def test_welcome_text_for_a_member() -> None:
    http = RecordingHttp()
    guild = make_guild(make_state(http))
    message = make_message(guild, "hi")
    member = message.author
    settings = GuildSettings.model_validate(
        {"welcome": {"message": "{user} joined {server}, now {member_count}"}}
    )
    assert welcome_for(cast(Any, member), settings) == f"<@{member.id}> joined Test Guild, now 3"
