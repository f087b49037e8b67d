"""Pure pieces of the dashboard: permissions math, PKCE, ETags, caches, forms (sessions, which
live in PostgreSQL, are tested in test_sessions.py)."""

from __future__ import annotations

import asyncio

import pytest
from starlette.datastructures import FormData

from guildkit.dashboard.api import etag, parse_if_match
from guildkit.dashboard.auth import pkce_challenge, safe_next
from guildkit.dashboard.discord_api import UserGuild, web_base
from guildkit.dashboard.forms import commands_patch, error_map, moderation_patch, welcome_patch
from guildkit.dashboard.permissions import can_manage, manageable
from guildkit.dashboard.rendering import render_text
from guildkit.dashboard.ttl_cache import TtlCache


def guild(permissions: int, owner: bool = False) -> UserGuild:
    return UserGuild(id="1", name="g", icon=None, owner=owner, permissions=permissions)


@pytest.mark.parametrize(
    ("permissions", "owner", "allowed"),
    [
        (0, False, False),
        (0x8, False, True),  # Administrator
        (0x20, False, True),  # Manage Server
        (0x10, False, False),  # Manage Channels alone is not enough
        (0x2000 | 0x400, False, False),
        (0, True, True),  # owner
        ((1 << 40) | 0x20, False, True),  # high bits do not confuse the check
    ],
)
def test_can_manage(permissions: int, owner: bool, allowed: bool) -> None:
    assert can_manage(guild(permissions, owner)) is allowed


def test_manageable_filters() -> None:
    assert manageable([guild(0), guild(8)]) == [guild(8)]


def test_pkce_s256_matches_rfc7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "/"),
        ("/guilds/1", "/guilds/1"),
        ("//evil.example", "/"),
        ("https://evil.example", "/"),
        ("/\\evil.example", "/"),
    ],
)
def test_safe_next(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_if_match_parsing() -> None:
    assert etag(7) == '"7"'
    assert parse_if_match(None) is None
    assert parse_if_match("*") is None
    assert parse_if_match('"12"') == 12
    assert parse_if_match('W/"12"') == -1
    assert parse_if_match("12") == -1


async def test_ttl_cache_single_flight_and_expiry() -> None:
    now = [0.0]
    cache: TtlCache[str, int] = TtlCache(10, clock=lambda: now[0])
    calls = 0

    async def load() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return calls

    assert await asyncio.gather(*(cache.get("k", load) for _ in range(20))) == [1] * 20
    assert calls == 1
    now[0] = 5
    assert await cache.get("k", load, max_age=1) == 2  # fresher than allowed: reload
    now[0] = 100
    assert await cache.get("k", load) == 3

    async def boom() -> int:
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        await cache.get("other", boom)
    assert await cache.get("other", load) == 4


def test_web_base_strips_the_api_path() -> None:
    assert web_base("https://discord.com/api/v10") == "https://discord.com"
    assert web_base("http://127.0.0.1:8090/api/v10") == "http://127.0.0.1:8090"
    assert web_base("https://proxy.example/discord/api") == "https://proxy.example/discord"


def test_form_patches() -> None:
    form = FormData(
        [
            ("welcome.enabled", "on"),
            ("welcome.channel_id", ""),
            ("welcome.message", "hi\r\nthere"),
            ("auto_roles", "5"),
            ("auto_roles", " "),
        ]
    )
    assert welcome_patch(form) == {
        "welcome": {"enabled": True, "channel_id": None, "message": "hi\nthere"},
        "auto_roles": ["5"],
    }
    mod = moderation_patch(
        FormData([("moderation.spam_max_messages", "x"), ("moderation.blocked_words", "a\n\n b ")])
    )
    assert mod["moderation"]["anti_link"] is False
    assert mod["moderation"]["spam_max_messages"] == "x"
    assert mod["moderation"]["blocked_words"] == ["a", "b"]
    cmds = commands_patch(
        FormData([("cmd_name", "a"), ("cmd_response", "b"), ("cmd_name", ""), ("cmd_response", "")])
    )
    assert cmds == {"custom_commands": [{"name": "a", "response": "b"}]}
    assert error_map([{"loc": ["custom_commands", 1, "name"], "msg": "bad"}]) == {
        "custom_commands.1.name": ["bad"]
    }


def test_templates_escape_user_text() -> None:
    html = render_text(
        "error.html", {"status": 400, "message": "<img src=x onerror=alert(1)>", "session": None}
    )
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_show_value_names_ids_and_stays_escaped() -> None:
    from guildkit.dashboard.rendering import show_value

    names = {"1": "#general", "2": "@Mods"}
    assert show_value("1", names) == "#general"
    assert show_value(["2"], names) == "@Mods"
    assert show_value("<b>", names) == '"<b>"'
    html = render_text(
        "_sync.html", {"guild_id": "1", "seq": 1, "applied": 0, "total": 0, "poll": 1}
    )
    assert "No bot process" in html


def test_overlaps_compares_dotted_paths() -> None:
    from guildkit.dashboard.forms import overlaps

    patch = {"welcome": {"enabled": True, "message": "x"}, "auto_roles": []}
    assert overlaps(patch, [{"path": "welcome.message"}])
    assert overlaps(patch, [{"path": "auto_roles"}])
    assert not overlaps(patch, [{"path": "prefix"}, {"path": "welcome.channel_id"}])
    assert overlaps({"custom_commands": []}, [{"path": "custom_commands"}])
