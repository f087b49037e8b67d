"""Pure feature logic: placeholders, links, blocked words, spam windows, levels, commands."""

from __future__ import annotations

import pytest

from guildkit.bot.extensions.core import help_text, pong_text
from guildkit.bot.extensions.custom_commands import match_custom_command
from guildkit.bot.extensions.leveling import Cooldowns, level_up_text, rank_text
from guildkit.bot.extensions.moderation import judge
from guildkit.bot.rules.levels import level_for_xp, progress, total_xp_for_level
from guildkit.bot.rules.moderation_rules import (
    SpamTracker,
    contains_link,
    find_blocked_word,
    is_exempt,
)
from guildkit.bot.rules.welcome_text import render_welcome
from guildkit.bot.xp_store import Standing
from guildkit.settings.model import GuildSettings, ModerationSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_welcome_placeholders() -> None:
    text = render_welcome(
        "Hi {user}, welcome to {server}! You are #{member_count}.",
        user_mention="<@5>",
        server="Cafe",
        member_count=42,
    )
    assert text == "Hi <@5>, welcome to Cafe! You are #42."


def test_welcome_is_not_str_format() -> None:
    # Neither other braces nor a server named like a placeholder are interpreted.
    text = render_welcome(
        "{user.__class__} {{user}} {server}", user_mention="<@5>", server="{user}", member_count=1
    )
    assert text == "{user.__class__} {<@5>} {user}"


@pytest.mark.parametrize(
    "text",
    [
        "see https://example.com/x",
        "HTTP://EXAMPLE.COM",
        "go to www.example.org now",
        "join discord.gg/abc123",
        "discord.com/invite/xyz",
    ],
)
def test_links_are_found(text: str) -> None:
    assert contains_link(text)


@pytest.mark.parametrize("text", ["hello", "e.g. this", "version 1.2.3", "mailto me", "a:b"])
def test_plain_text_is_not_a_link(text: str) -> None:
    assert not contains_link(text)


def test_blocked_words_match_whole_words_case_insensitively() -> None:
    words = ("darn", "f*ck")
    assert find_blocked_word("oh DARN it", words) == "DARN"
    assert find_blocked_word("darn.", words) == "darn"
    assert find_blocked_word("what the f*ck", words) == "f*ck"
    assert find_blocked_word("darned socks", words) is None
    assert find_blocked_word("undarn", words) is None
    assert find_blocked_word("anything", ()) is None


def test_exempt_roles() -> None:
    assert is_exempt([1, 2], ("2",))
    assert not is_exempt([1], ("2",))
    assert not is_exempt([], ())


def test_spam_window_counts_per_member() -> None:
    clock = Clock()
    spam = SpamTracker(clock=clock)
    results = []
    for _ in range(6):
        results.append(spam.record(1, 7, max_messages=5, window=5))
        clock.now += 0.5
    assert results == [None] * 5 + [6]
    assert spam.record(1, 8, max_messages=5, window=5) is None  # another member
    assert spam.record(2, 7, max_messages=5, window=5) is None  # another guild
    clock.now += 10
    assert spam.record(1, 7, max_messages=5, window=5) is None  # the window moved on


def test_spam_tracker_memory_is_bounded() -> None:
    clock = Clock()
    spam = SpamTracker(clock=clock, max_keys=100)
    for user in range(1000):
        spam.record(1, user, max_messages=5, window=5)
    assert len(spam) <= 100


def test_judge_order_and_switches() -> None:
    rules = ModerationSettings(anti_link=True, blocked_words=("darn",))
    assert judge("darn https://x.y", rules, None).rule == "blocked_word"  # type: ignore[union-attr]
    assert judge("https://x.y", rules, None).rule == "link"  # type: ignore[union-attr]
    assert judge("fine", rules, None) is None
    assert judge("fine", rules, 6).rule == "spam"  # type: ignore[union-attr]
    assert judge("https://x.y", ModerationSettings(), None) is None


def test_level_math() -> None:
    assert [level_for_xp(x) for x in (0, 99, 100, 254, 255)] == [0, 0, 1, 1, 2]
    assert total_xp_for_level(2) == 255
    p = progress(120)
    assert (p.level, p.into_level, p.needed) == (1, 20, 155)


def test_cooldowns() -> None:
    clock = Clock()
    cooldowns = Cooldowns(60, clock=clock)
    assert not cooldowns.cooling(1, 2)
    cooldowns.mark(1, 2)
    assert cooldowns.cooling(1, 2) and not cooldowns.cooling(1, 3)
    clock.now += 60
    assert not cooldowns.cooling(1, 2)


def test_texts() -> None:
    assert level_up_text("<@1>", 3) == "🎉 <@1> reached level 3!"
    assert "no XP" in rank_text("<@1>", None)
    assert rank_text("<@1>", Standing(xp=120, level=1, rank=2)) == (
        "<@1>: level 1 · 120 XP (20/155 to the next level) · rank #2"
    )
    assert "pong" in pong_text(0.0123) and "12 ms" in pong_text(0.0123)
    assert pong_text(float("nan")) == "pong 🏓"


def test_custom_command_matching() -> None:
    settings = GuildSettings.model_validate(
        {"prefix": "?", "custom_commands": [{"name": "rules", "response": "Be kind."}]}
    )
    assert match_custom_command("?rules", settings).response == "Be kind."  # type: ignore[union-attr]
    assert match_custom_command("?rules please", settings) is not None
    assert match_custom_command("!rules", settings) is None
    assert match_custom_command("?rule", settings) is None
    assert match_custom_command("?", settings) is None


def test_help_lists_enabled_and_custom_commands() -> None:
    settings = GuildSettings.model_validate(
        {
            "prefix": "$",
            "disabled_commands": ["rank"],
            "custom_commands": [{"name": "faq", "response": "x"}],
        }
    )
    text = help_text(settings)
    assert "`$ping`" in text and "`$rank`" not in text and "`$faq`" in text
