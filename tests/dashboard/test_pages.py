"""The HTML pages: forms without JavaScript, htmx fragments, escaping, conflicts and history."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from guildkit.dashboard.composition import find_htmx
from guildkit.dashboard.context import DashboardOptions
from guildkit.sandbox.runner import RunningSandbox
from tests.dashboard.conftest import Built, Scene, build, client_for, login

HX = {"HX-Request": "true"}


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', page)
    assert match, f"no hidden {name}"
    return match.group(1)


async def test_index_offers_login_when_logged_out(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert 'href="/auth/login"' in page.text


async def test_index_lists_servers_and_invites_the_bot_where_missing(
    client: httpx.AsyncClient, scene: Scene, sandbox: RunningSandbox
) -> None:
    await login(client, scene.owner)
    page = (await client.get("/")).text
    assert "Test &lt;Guild&gt;" in page and "<Guild>" not in page
    assert f'href="/guilds/{scene.guild}"' in page
    invite = re.search(r'href="([^"]*scope=bot[^"]*)"', page)
    assert invite, page
    url = invite.group(1).replace("&amp;", "&")
    assert url.startswith(f"{sandbox.base_url}/oauth2/authorize?")
    assert f"client_id={sandbox.client_id}" in url and f"guild_id={scene.botless}" in url


async def test_pages_redirect_to_login_and_refuse_non_admins(
    built: Built, client: httpx.AsyncClient, scene: Scene
) -> None:
    response = await client.get(f"/guilds/{scene.guild}/welcome")
    assert response.status_code == 303
    assert response.headers["location"] == f"/auth/login?next=/guilds/{scene.guild}/welcome"
    async with client_for(built.app) as member:
        await login(member, scene.member)
        assert (await member.get(f"/guilds/{scene.guild}")).status_code == 403
        assert (await member.get(f"/guilds/{scene.guild}/history")).status_code == 403
    await login(client, scene.owner)
    assert (await client.get(f"/guilds/{scene.guild}/nonsense")).status_code == 404


async def test_welcome_message_with_script_is_escaped(
    client: httpx.AsyncClient, scene: Scene
) -> None:
    csrf = await login(client, scene.owner)
    evil = '<script>alert("x")</script> {user}'
    saved = await client.patch(
        f"/api/guilds/{scene.guild}/settings",
        json={"welcome": {"message": evil}},
        headers={"X-CSRF-Token": csrf},
    )
    assert saved.status_code == 200
    page = (await client.get(f"/guilds/{scene.guild}/welcome")).text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; {user}" in page
    history = (await client.get(f"/guilds/{scene.guild}/history")).text
    assert "<script>alert" not in history
    assert "&#34;&lt;script&gt;alert(\\&#34;x\\&#34;)&lt;/script&gt; {user}&#34;" in history


async def test_form_save_without_javascript(client: httpx.AsyncClient, scene: Scene) -> None:
    csrf = await login(client, scene.owner)
    page = (await client.get(f"/guilds/{scene.guild}")).text
    assert "#mod-log" in page  # channel picker by name
    form = {
        "csrf_token": csrf,
        "version": hidden(page, "version"),
        "prefix": "$",
        "log_channel_id": str(scene.log_channel),
        "disabled_commands": "rank",
    }
    saved = await client.post(f"/guilds/{scene.guild}", data=form)
    assert saved.status_code == 200, saved.text
    assert "Saved as version 1" in saved.text
    assert "/sync-status?seq=" in saved.text
    doc = (await client.get(f"/api/guilds/{scene.guild}/settings")).json()["settings"]
    assert doc["prefix"] == "$" and doc["log_channel_id"] == str(scene.log_channel)
    assert doc["disabled_commands"] == ["rank"]


async def test_form_errors_are_inline_and_keep_input(
    client: httpx.AsyncClient, scene: Scene
) -> None:
    csrf = await login(client, scene.owner)
    form = {
        "csrf_token": csrf,
        "version": "0",
        "cmd_name": ["good", "Bad Name!"],
        "cmd_response": ["hello", "world"],
    }
    response = await client.post(f"/guilds/{scene.guild}/commands", data=form)
    assert response.status_code == 422
    assert "Nothing was saved" in response.text
    assert 'value="Bad Name!"' in response.text
    assert re.search(r'value="Bad Name!".*?field-error', response.text, re.S)
    assert (await client.get(f"/api/guilds/{scene.guild}/settings")).json()["version"] == 0
    ok = await client.post(
        f"/guilds/{scene.guild}/commands",
        data={**form, "cmd_name": ["good", "rules"], "cmd_response": ["hello", "be nice"]},
    )
    assert ok.status_code == 200
    commands = (await client.get(f"/api/guilds/{scene.guild}/settings")).json()["settings"][
        "custom_commands"
    ]
    assert commands == [
        {"name": "good", "response": "hello"},
        {"name": "rules", "response": "be nice"},
    ]


async def test_unknown_channel_in_form_is_reported_next_to_the_field(
    client: httpx.AsyncClient, scene: Scene
) -> None:
    csrf = await login(client, scene.owner)
    form = {
        "csrf_token": csrf,
        "version": "0",
        "welcome.enabled": "on",
        "welcome.channel_id": "123456789012345678",
        "welcome.message": "hi {user}",
    }
    response = await client.post(f"/guilds/{scene.guild}/welcome", data=form)
    assert response.status_code == 422
    assert "no such channel in this server" in response.text
    assert "unknown channel (123456789012345678)" in response.text


async def test_conflict_explains_and_keeps_input(
    built: Built, client: httpx.AsyncClient, scene: Scene
) -> None:
    csrf_a = await login(client, scene.owner)
    page_a = (await client.get(f"/guilds/{scene.guild}/moderation")).text
    async with client_for(built.app) as other:
        csrf_b = await login(other, scene.admin)
        page_b = (await other.get(f"/guilds/{scene.guild}/moderation")).text
        first = await other.post(
            f"/guilds/{scene.guild}/moderation",
            data={
                "csrf_token": csrf_b,
                "version": hidden(page_b, "version"),
                "moderation.anti_spam": "on",
                "moderation.spam_max_messages": "5",
                "moderation.spam_window_seconds": "5",
            },
        )
        assert first.status_code == 200
    mine = {
        "csrf_token": csrf_a,
        "version": hidden(page_a, "version"),
        "moderation.anti_link": "on",
        "moderation.spam_max_messages": "7",
        "moderation.spam_window_seconds": "9",
        "moderation.blocked_words": "spoiler\nfoo",
    }
    conflict = await client.post(f"/guilds/{scene.guild}/moderation", data=mine)
    assert conflict.status_code == 412
    assert "Someone saved first" in conflict.text
    assert "<th>moderation.anti_spam</th>" in conflict.text  # what changed
    assert "spoiler\nfoo</textarea>" in conflict.text  # their input kept
    assert hidden(conflict.text, "version") == "1"
    retry = await client.post(f"/guilds/{scene.guild}/moderation", data={**mine, "version": "1"})
    assert retry.status_code == 200
    doc = (await client.get(f"/api/guilds/{scene.guild}/settings")).json()["settings"]
    assert doc["moderation"]["blocked_words"] == ["spoiler", "foo"]
    assert doc["moderation"]["anti_spam"] is False  # the admin chose to apply theirs over it


async def test_saves_of_other_settings_meanwhile_are_merged_not_conflicts(
    client: httpx.AsyncClient, scene: Scene
) -> None:
    csrf = await login(client, scene.owner)
    page = (await client.get(f"/guilds/{scene.guild}/leveling")).text
    await client.patch(
        f"/api/guilds/{scene.guild}/settings",
        json={"prefix": "%"},
        headers={"X-CSRF-Token": csrf},
    )
    saved = await client.post(
        f"/guilds/{scene.guild}/leveling",
        data={"csrf_token": csrf, "version": hidden(page, "version"), "leveling.enabled": "on"},
    )
    assert saved.status_code == 200
    assert "Saved as version 2" in saved.text and "theirs are kept too" in saved.text
    doc = (await client.get(f"/api/guilds/{scene.guild}/settings")).json()["settings"]
    assert doc["prefix"] == "%" and doc["leveling"]["enabled"] is True


async def test_htmx_requests_get_fragments_that_poll_sync(
    client: httpx.AsyncClient, scene: Scene
) -> None:
    csrf = await login(client, scene.owner)
    response = await client.post(
        f"/guilds/{scene.guild}/leveling",
        data={"csrf_token": csrf, "version": "0", "leveling.enabled": "on"},
        headers=HX,
    )
    assert response.status_code == 200
    assert "<html" not in response.text and 'id="settings-form"' in response.text
    match = re.search(r'hx-get="(/guilds/\d+/sync-status\?seq=\d+)"', response.text)
    assert match
    status = await client.get(match.group(1), headers=HX)
    assert status.status_code == 200
    assert "bot process" in status.text
    invalid = await client.post(
        f"/guilds/{scene.guild}",
        data={"csrf_token": csrf, "version": "1", "prefix": "a b"},
        headers=HX,
    )
    # htmx swaps only 2xx, so the error fragment comes back as 200.
    assert invalid.status_code == 200 and "must not contain whitespace" in invalid.text


async def test_forms_need_the_csrf_token(client: httpx.AsyncClient, scene: Scene) -> None:
    await login(client, scene.owner)
    response = await client.post(f"/guilds/{scene.guild}", data={"version": "0", "prefix": "x"})
    assert response.status_code == 403
    revert = await client.post(
        f"/guilds/{scene.guild}/history/revert", data={"version": "0", "expected_version": "0"}
    )
    assert revert.status_code == 403


async def test_history_page_shows_diffs_and_reverts(
    client: httpx.AsyncClient, scene: Scene
) -> None:
    csrf = await login(client, scene.owner)
    for prefix in ("a", "b"):
        await client.patch(
            f"/api/guilds/{scene.guild}/settings",
            json={"prefix": prefix},
            headers={"X-CSRF-Token": csrf},
        )
    page = (await client.get(f"/guilds/{scene.guild}/history")).text
    assert "Version 2" in page and "Version 1" in page
    assert "&#34;a&#34;" in page and "&#34;b&#34;" in page
    assert "Revert to this" in page
    reverted = await client.post(
        f"/guilds/{scene.guild}/history/revert",
        data={"csrf_token": csrf, "version": "1", "expected_version": "2"},
    )
    assert reverted.status_code == 200
    assert "saved as version 3" in reverted.text
    stale = await client.post(
        f"/guilds/{scene.guild}/history/revert",
        data={"csrf_token": csrf, "version": "2", "expected_version": "2"},
    )
    assert stale.status_code == 412
    doc = (await client.get(f"/api/guilds/{scene.guild}/settings")).json()
    assert doc["version"] == 3 and doc["settings"]["prefix"] == "a"


async def test_logout_form_from_the_page(client: httpx.AsyncClient, scene: Scene) -> None:
    csrf = await login(client, scene.owner)
    response = await client.post("/auth/logout", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert (await client.get("/api/session")).status_code == 401


async def test_htmx_is_served_when_installed_and_pages_work_without_it(
    database_url: str, sandbox: RunningSandbox, client: httpx.AsyncClient, scene: Scene
) -> None:
    # Without htmx (the default options here) there is no script tag and the file is a 404.
    assert "htmx.min.js" not in (await client.get("/")).text
    assert (await client.get("/static/htmx.min.js")).status_code == 404
    assert (await client.get("/static/app.css")).status_code == 200
    path = find_htmx()
    if path is None:
        path = Path(__file__).parent / "fake_htmx_absent.js"
        assert not path.exists()
        return
    built = build(database_url, sandbox, options=DashboardOptions(htmx_path=path))
    try:
        async with client_for(built.app) as with_htmx:
            assert 'src="/static/htmx.min.js"' in (await with_htmx.get("/")).text
            script = await with_htmx.get("/static/htmx.min.js")
            assert script.status_code == 200 and "htmx" in script.text[:2000]
    finally:
        await built.close()


async def test_guild_without_the_bot_says_so_and_offers_the_invite(
    client: httpx.AsyncClient, scene: Scene
) -> None:
    await login(client, scene.owner)
    page = await client.get(f"/guilds/{scene.botless}/welcome")
    assert page.status_code == 200
    assert "The bot is not in this server yet" in page.text
    assert "scope=bot" in page.text
