"""Hostile inputs: huge and deeply nested bodies, broken encodings, injection strings, markup in
every text setting, and guild ids no Discord server could have."""

from __future__ import annotations

import html

import httpx
import pytest
from sqlalchemy import text

from guildkit.dashboard.context import DashboardOptions
from guildkit.dashboard.service import MAX_VERSION
from guildkit.sandbox.client import SandboxClient
from guildkit.sandbox.runner import RunningSandbox
from tests.abuse.test_identities import endpoints, send
from tests.dashboard.conftest import Built, Scene, build, client_for, login

MERGE = "application/merge-patch+json"
INJECTIONS = [
    "'; DROP TABLE guild_settings;--",
    "{{7*7}}",
    "{% raw %}",
    "${7*7}",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
]
# The prefix allows only 1 to 5 characters without whitespace.
SHORT_INJECTIONS = ["';--", "{{7}}", "{%", "${7}", "<zq>", "'\"<zq"]
PAGES = ["", "/welcome", "/moderation", "/commands", "/leveling", "/history"]


@pytest.fixture
async def roomy(database_url: str, sandbox: RunningSandbox) -> object:
    b = build(database_url, sandbox, options=DashboardOptions(write_burst=10_000))
    try:
        yield b
    finally:
        await b.close()


def headers(csrf: str) -> dict[str, str]:
    return {"X-CSRF-Token": csrf, "Content-Type": MERGE}


async def test_deeply_nested_json_is_a_4xx(client: httpx.AsyncClient, scene: Scene) -> None:
    csrf = await login(client, scene.owner)
    url = f"/api/guilds/{scene.guild}/settings"
    for depth in (10_000, 2_000, 900, 33):
        for body in (
            b'{"a":' * depth + b"1" + b"}" * depth,
            b'{"welcome":' + b"[" * depth + b"]" * depth + b"}",
        ):
            response = await client.patch(url, content=body, headers=headers(csrf))
            assert response.status_code == 422, (depth, response.text[:200])
            assert response.json()["detail"][0]["type"] in ("too_deep", "json_invalid")
        revert = await client.post(
            f"{url}/revert",
            content=b'{"version":' + b"[" * depth + b"]" * depth + b"}",
            headers=headers(csrf),
        )
        assert 400 <= revert.status_code < 500, (depth, revert.text[:200])
    # Within the limit, a nested patch is judged by the model as usual.
    assert (
        await client.patch(url, json={"welcome": {"enabled": True}}, headers=headers(csrf))
    ).status_code == 200


async def test_huge_and_broken_bodies(client: httpx.AsyncClient, scene: Scene) -> None:
    csrf = await login(client, scene.owner)
    url = f"/api/guilds/{scene.guild}/settings"
    big = b'{"welcome": {"message": "' + b"x" * 1_000_000 + b'"}}'
    assert (await client.patch(url, content=big, headers=headers(csrf))).status_code == 413
    assert (
        await client.post(f"{url}/revert", content=big, headers=headers(csrf))
    ).status_code == 413
    form = b"csrf_token=" + csrf.encode() + b"&welcome.message=" + b"x" * 1_000_000
    page = await client.post(
        f"/guilds/{scene.guild}/welcome",
        content=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert page.status_code == 413
    # Invalid UTF-8 everywhere a body is read: refused or replaced, never a 5xx.
    broken = b'{"prefix": "\xff\xfe\xc3"}'
    assert (await client.patch(url, content=broken, headers=headers(csrf))).status_code == 422
    revert = await client.post(
        f"{url}/revert", content=b'{"version": "\xff"}', headers=headers(csrf)
    )
    assert 400 <= revert.status_code < 500
    for section in ("general", "welcome", "moderation", "commands", "leveling"):
        path = f"/guilds/{scene.guild}" + ("" if section == "general" else f"/{section}")
        body = (
            b"csrf_token=" + csrf.encode() + b"&prefix=%FF%FE&welcome.message=\xff\xfe"
            b"&moderation.blocked_words=\xc3&cmd_name=\xff&cmd_response=\xff"
        )
        response = await client.post(
            path, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert response.status_code < 500, (section, response.text[:300])
    # Not JSON at all, an array, a string, null.
    for body in (b"", b"\x00\x01", b"[]", b'"x"', b"null", b"1e999999"):
        response = await client.patch(url, content=body, headers=headers(csrf))
        assert response.status_code == 422, (body, response.text[:200])


async def test_injection_strings_are_stored_literally_and_rendered_escaped(
    roomy: Built, scene: Scene
) -> None:
    async with client_for(roomy.app) as client:
        csrf = await login(client, scene.owner)
        url = f"/api/guilds/{scene.guild}/settings"
        for payload, short in zip(INJECTIONS, SHORT_INJECTIONS, strict=True):
            patch = {
                "prefix": short,
                "moderation": {"blocked_words": [payload[:64], "plain"]},
                "custom_commands": [{"name": "cmd", "response": payload}],
            }
            response = await client.patch(url, json=patch, headers=headers(csrf))
            assert response.status_code == 200, (payload, response.text[:300])
            # The welcome message also checks its {placeholders}: a refusal is fine, as long
            # as it is a field-level 422 and not an evaluation.
            welcome = await client.patch(
                url, json={"welcome": {"message": payload}}, headers=headers(csrf)
            )
            assert welcome.status_code in (200, 422), welcome.text[:300]
            stored = (await client.get(url)).json()["settings"]
            if welcome.status_code == 422:
                assert welcome.json()["detail"][0]["loc"] == ["body", "welcome", "message"]
            else:
                assert stored["welcome"]["message"] == payload
            assert stored["prefix"] == short
            assert stored["moderation"]["blocked_words"] == [payload[:64], "plain"]
            assert stored["custom_commands"] == [{"name": "cmd", "response": payload}]
            for page in PAGES:
                body = (await client.get(f"/guilds/{scene.guild}{page}")).text
                _assert_escaped(body, [payload, short], page)
        # The history shows every one of them, escaped.
        body = (await client.get(f"/guilds/{scene.guild}/history")).text
        _assert_escaped(body, INJECTIONS, "history")
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
        assert "{{7*7}}" in body
        async with roomy.engine.connect() as conn:
            count = await conn.scalar(text("SELECT count(*) FROM guild_settings"))
        assert count is not None and count >= 1


async def test_markup_in_a_rejected_form_is_escaped(
    client: httpx.AsyncClient, scene: Scene
) -> None:
    csrf = await login(client, scene.owner)
    script = "<script>alert(1)</script>"
    # Invalid custom command names come back in the re-shown form: escaped there too.
    response = await client.post(
        f"/guilds/{scene.guild}/commands",
        data={"csrf_token": csrf, "cmd_name": script, "cmd_response": script},
    )
    assert response.status_code == 422
    _assert_escaped(response.text, [script], "commands (rejected)")
    api = await client.patch(
        f"/api/guilds/{scene.guild}/settings",
        json={"custom_commands": [{"name": script, "response": "x"}]},
        headers=headers(csrf),
    )
    assert api.status_code == 422
    general = await client.post(
        f"/guilds/{scene.guild}", data={"csrf_token": csrf, "prefix": "<script>"}
    )
    assert general.status_code == 422
    _assert_escaped(general.text, ["<script>"], "general (rejected)")
    # A channel id that is markup is refused, and the error page escapes it.
    bad = await client.get(f"/guilds/{html.escape('<b>')}")
    assert bad.status_code == 404 and "<b>" not in bad.text


def _assert_escaped(body: str, payloads: list[str], where: str) -> None:
    for payload in payloads:
        if any(c in payload for c in "<>\"'&"):
            assert payload not in body, (where, payload)
    assert "<script>alert" not in body, where
    assert "onerror=alert" not in body.replace("onerror=alert(1)&gt;", ""), where


BAD_GUILD_IDS = [
    "-1",
    "0",
    "-9223372036854775808",
    "9223372036854775808",
    str(2**64),
    "9" * 5000,
    "abc",
    "1e5",
    "0x10",
    "١٢٣",
    "%20",
    "%00",
    "12%2F34",
    "..%2F..%2Fetc",
    "{{7*7}}",
    "'%20OR%201=1--",
]


async def test_impossible_guild_ids_are_4xx_on_every_guild_route(
    roomy: Built, scene: Scene
) -> None:
    async with client_for(roomy.app) as client:
        csrf = await login(client, scene.owner)
        for endpoint in endpoints(roomy.app):
            if "{guild_id}" not in endpoint.template:
                continue
            for guild_id in BAD_GUILD_IDS:
                response = await send(client, endpoint, guild_id, csrf)
                assert 400 <= response.status_code < 500, (
                    endpoint,
                    guild_id[:20],
                    response.status_code,
                    response.text[:200],
                )


async def test_out_of_range_versions_are_4xx_not_a_database_error(
    client: httpx.AsyncClient, scene: Scene
) -> None:
    csrf = await login(client, scene.owner)
    base = f"/api/guilds/{scene.guild}/settings"
    for value in (MAX_VERSION + 1, 2**63, 2**70, -(2**70)):
        history = await client.get(f"{base}/history", params={"before_version": value})
        assert history.status_code == 422, history.text
        revert = await client.post(f"{base}/revert", json={"version": value}, headers=headers(csrf))
        assert revert.status_code == 422, revert.text
        page = await client.get(f"/guilds/{scene.guild}/history", params={"before_version": value})
        assert page.status_code == 200, value
        form = await client.post(
            f"/guilds/{scene.guild}/history/revert",
            data={"csrf_token": csrf, "version": str(value), "expected_version": "0"},
        )
        assert form.status_code == 422, value
    # The largest version a guild could have is simply not there yet.
    missing = await client.post(
        f"{base}/revert", json={"version": MAX_VERSION}, headers=headers(csrf)
    )
    assert missing.status_code == 422
    assert (await client.get("/readyz")).status_code == 200


async def test_nul_characters_are_a_422_not_a_false_outage(
    client: httpx.AsyncClient, scene: Scene
) -> None:
    # jsonb cannot hold U+0000: PostgreSQL's refusal used to come back as "PostgreSQL is
    # unreachable" (503). Found by the schemathesis run.
    csrf = await login(client, scene.owner)
    url = f"/api/guilds/{scene.guild}/settings"
    for patch, loc in (
        ({"welcome": {"message": "a\x00b"}}, ["body", "welcome", "message"]),
        (
            {"custom_commands": [{"name": "a", "response": "\x00"}]},
            ["body", "custom_commands", 0, "response"],
        ),
        (
            {"moderation": {"blocked_words": ["ok", "b\x00d"]}},
            ["body", "moderation", "blocked_words", 1],
        ),
    ):
        response = await client.patch(url, json=patch, headers=headers(csrf))
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == loc
    form = await client.post(
        f"/guilds/{scene.guild}/welcome", data={"csrf_token": csrf, "welcome.message": "a\x00b"}
    )
    assert form.status_code == 422
    assert (await client.get(url)).json()["version"] == 0


async def test_markup_in_discord_names_is_escaped_everywhere(
    roomy: Built, sb: SandboxClient
) -> None:
    # Names come from Discord, where anyone picks them: a user, a server, a channel, a role.
    evil = "<script>alert(1)</script>"
    user = await sb.create_user("evil", global_name=evil)
    guild = await sb.create_guild(evil, user.id)
    channel = await sb.create_channel(guild.id, evil)
    role = await sb.create_role(guild.id, evil)
    async with client_for(roomy.app) as client:
        csrf = await login(client, user.id)
        saved = await client.patch(
            f"/api/guilds/{guild.id}/settings",
            json={
                "log_channel_id": str(channel.id),
                "welcome": {"channel_id": str(channel.id)},
                "auto_roles": [str(role.id)],
            },
            headers=headers(csrf),
        )
        assert saved.status_code == 200, saved.text
        assert (await client.get("/api/guilds")).json()[0]["name"] == evil
        for page in ["/", *(f"/guilds/{guild.id}{p}" for p in PAGES)]:
            response = await client.get(page)
            assert response.status_code == 200, page
            _assert_escaped(response.text, [evil], page)
            assert "&lt;script&gt;" in response.text, page


async def test_non_finite_numbers_are_a_422(client: httpx.AsyncClient, scene: Scene) -> None:
    # Python's JSON parser takes NaN and Infinity; FastAPI's 422 used to echo them back and fail
    # to encode its own answer (a 500).
    csrf = await login(client, scene.owner)
    base = f"/api/guilds/{scene.guild}/settings"
    for literal in (b"NaN", b"Infinity", b"-Infinity", b"1e400", b"[" * 900 + b"]" * 900):
        response = await client.post(
            f"{base}/revert", content=b'{"version": ' + literal + b"}", headers=headers(csrf)
        )
        assert response.status_code == 422, (literal[:20], response.text[:200])
        assert response.json()["detail"][0]["loc"] == ["body", "version"]
        patch = await client.patch(
            base,
            content=b'{"moderation": {"spam_max_messages": ' + literal[:20] + b"}}",
            headers=headers(csrf),
        )
        assert 400 <= patch.status_code < 500
    page = await client.get(f"/guilds/{scene.guild}/history", params={"before_version": "x"})
    assert page.status_code == 422 and "text/html" in page.headers["content-type"]
