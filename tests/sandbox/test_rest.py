"""REST under /api/v10: auth, Discord's error bodies, rate-limit headers, permissions."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest

from guildkit.sandbox import RunningSandbox, run_sandbox
from guildkit.sandbox.client import SandboxClient
from guildkit.sandbox.demo import DemoIds
from guildkit.sandbox.permissions import Permission


@pytest.fixture
async def api(sandbox: RunningSandbox) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bot {sandbox.bot_token}"}
    async with httpx.AsyncClient(base_url=sandbox.api_base, headers=headers) as client:
        yield client


@pytest.fixture
async def demo(control: SandboxClient) -> DemoIds:
    return await control.seed_demo()


async def test_wrong_bot_token_is_401(sandbox: RunningSandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox.api_base) as client:
        for headers in ({}, {"Authorization": "Bot nope"}, {"Authorization": "Bearer nope"}):
            response = await client.get("/users/@me", headers=headers)
            assert response.status_code == 401
            assert response.json() == {"message": "401: Unauthorized", "code": 0}


async def test_gateway_bot_points_at_this_server(
    sandbox: RunningSandbox, api: httpx.AsyncClient
) -> None:
    data = (await api.get("/gateway/bot")).json()
    assert data["url"] == sandbox.gateway_url
    assert data["shards"] == 1
    assert set(data["session_start_limit"]) == {
        "total",
        "remaining",
        "reset_after",
        "max_concurrency",
    }


async def test_every_response_has_rate_limit_headers_and_exact_json_type(
    api: httpx.AsyncClient,
) -> None:
    for path in ("/users/@me", "/guilds/1"):
        response = await api.get(path)
        for header in ("Limit", "Remaining", "Reset", "Reset-After", "Bucket"):
            assert f"X-RateLimit-{header}" in response.headers
        # discord.py parses JSON only when the Content-Type is exactly this.
        assert response.headers["content-type"] == "application/json"


async def test_unknown_resources_use_discord_codes(api: httpx.AsyncClient, demo: DemoIds) -> None:
    cases = {
        "/guilds/123": (404, 10004, "Unknown Guild"),
        "/channels/123": (404, 10003, "Unknown Channel"),
        f"/guilds/{demo.guild_id}/members/123": (404, 10007, "Unknown Member"),
        f"/channels/{demo.general_channel_id}/messages/123": (404, 10008, "Unknown Message"),
        "/no/such/route": (404, 0, "404: Not Found"),
    }
    for path, (status, code, message) in cases.items():
        response = await api.get(path)
        assert response.status_code == status, path
        assert response.json() == {"message": message, "code": code}, path


async def test_guild_resources(
    api: httpx.AsyncClient, demo: DemoIds, sandbox: RunningSandbox
) -> None:
    guild = (await api.get(f"/guilds/{demo.guild_id}")).json()
    assert guild["name"] == "Guildkit Demo" and guild["owner_id"] == str(demo.admin_user_id)
    channels = (await api.get(f"/guilds/{demo.guild_id}/channels")).json()
    assert [c["name"] for c in channels] == ["general", "welcome", "mod-log"]
    roles = (await api.get(f"/guilds/{demo.guild_id}/roles")).json()
    assert {"@everyone", "Admin", "Moderator", "Member"} <= {r["name"] for r in roles}
    assert all(isinstance(r["permissions"], str) for r in roles)
    member = (await api.get(f"/guilds/{demo.guild_id}/members/{demo.member_user_id}")).json()
    assert member["user"]["id"] == str(demo.member_user_id)
    assert member["roles"] == [str(demo.member_role_id)]
    members = (await api.get(f"/guilds/{demo.guild_id}/members", params={"limit": 100})).json()
    assert {m["user"]["id"] for m in members} == {
        str(demo.admin_user_id),
        str(demo.member_user_id),
        str(sandbox.state.bot_user.id),
    }


async def test_guild_without_bot_is_missing_access(
    api: httpx.AsyncClient, control: SandboxClient
) -> None:
    owner = await control.create_user("owner")
    guild = await control.create_guild("no bot here", owner.id, with_bot=False)
    response = await api.get(f"/guilds/{guild.id}")
    assert response.status_code == 403
    assert response.json() == {"message": "Missing Access", "code": 50001}


async def test_role_changes_are_recorded_and_permission_checked(
    api: httpx.AsyncClient, control: SandboxClient, demo: DemoIds
) -> None:
    path = f"/guilds/{demo.guild_id}/members/{demo.member_user_id}/roles/{demo.moderator_role_id}"
    response = await api.put(path, headers={"X-Audit-Log-Reason": "promoted"})
    assert response.status_code == 204
    assert demo.moderator_role_id in await control.member_roles(demo.guild_id, demo.member_user_id)
    assert (await api.delete(path)).status_code == 204
    kinds = [(a.kind, a.role_id, a.reason) for a in await control.actions(demo.guild_id)]
    assert kinds == [
        ("role_added", demo.moderator_role_id, "promoted"),
        ("role_removed", demo.moderator_role_id, None),
    ]
    # A role above the bot's own highest role is out of reach, as on Discord.
    high = await control.create_role(demo.guild_id, "Above the bot", position=99)
    high_path = f"/guilds/{demo.guild_id}/members/{demo.member_user_id}/roles/{high.id}"
    assert (await api.put(high_path)).json() == {"message": "Missing Permissions", "code": 50013}
    await control.set_bot_permissions(demo.guild_id, int(Permission.VIEW_CHANNEL))
    response = await api.put(path)
    assert response.status_code == 403
    assert response.json() == {"message": "Missing Permissions", "code": 50013}


async def test_member_edit_roles_and_kick(
    api: httpx.AsyncClient, control: SandboxClient, demo: DemoIds
) -> None:
    path = f"/guilds/{demo.guild_id}/members/{demo.member_user_id}"
    roles = [str(demo.moderator_role_id)]
    edited = await api.patch(path, json={"roles": roles})
    assert edited.status_code == 200 and edited.json()["roles"] == roles
    assert await control.member_roles(demo.guild_id, demo.member_user_id) == {
        demo.moderator_role_id
    }
    assert (await api.delete(path, headers={"X-Audit-Log-Reason": "spam"})).status_code == 204
    kinds = [(a.kind, a.role_id) for a in await control.actions(demo.guild_id)]
    assert kinds == [
        ("role_added", demo.moderator_role_id),
        ("role_removed", demo.member_role_id),
        ("member_kicked", None),
    ]


async def test_messages_send_list_delete(
    api: httpx.AsyncClient, control: SandboxClient, demo: DemoIds
) -> None:
    channel = demo.general_channel_id
    sent = (await api.post(f"/channels/{channel}/messages", json={"content": "hello"})).json()
    assert sent["content"] == "hello" and sent["author"]["bot"] is True
    empty = await api.post(f"/channels/{channel}/messages", json={"content": ""})
    assert empty.json() == {"message": "Cannot send an empty message", "code": 50006}
    theirs = await control.post_message(channel, demo.member_user_id, "user message")
    listed = (await api.get(f"/channels/{channel}/messages")).json()
    assert [m["content"] for m in listed] == ["user message", "hello"]
    assert (await api.delete(f"/channels/{channel}/messages/{theirs.id}")).status_code == 204
    assert [m.id for m in await control.deleted_messages(channel)] == [theirs.id]
    assert [m.content for m in await control.sent_messages(channel)] == ["hello"]
    # Both the bot's role and @everyone grant Send Messages; take it from both.
    await control.set_bot_permissions(demo.guild_id, int(Permission.VIEW_CHANNEL))
    await control.set_role_permissions(demo.guild_id, demo.guild_id, int(Permission.VIEW_CHANNEL))
    refused = await api.post(f"/channels/{channel}/messages", json={"content": "hi"})
    assert refused.status_code == 403 and refused.json()["code"] == 50013


async def test_dm_channel(api: httpx.AsyncClient, demo: DemoIds) -> None:
    dm = (
        await api.post("/users/@me/channels", json={"recipient_id": str(demo.member_user_id)})
    ).json()
    assert dm["type"] == 1 and dm["recipients"][0]["id"] == str(demo.member_user_id)
    sent = await api.post(f"/channels/{dm['id']}/messages", json={"content": "psst"})
    assert sent.status_code == 200


async def test_snowflakes_are_the_same_every_run() -> None:
    ids = []
    for _ in range(2):
        async with run_sandbox() as running, SandboxClient(running.base_url) as control:
            ids.append((await control.seed_demo()).as_json())
    assert ids[0] == ids[1]
    guild_id = int(ids[0]["guild_id"])
    # Plausible Discord snowflakes: the timestamp part decodes to 2024.
    assert 1_704_067_200_000 <= (guild_id >> 22) + 1_420_070_400_000 < 1_735_689_600_000


async def test_starts_fast_with_demo() -> None:
    started = time.perf_counter()
    async with run_sandbox(seed_demo=True) as running:
        assert time.perf_counter() - started < 0.5
        assert running.demo is not None
        assert running.state.guild(running.demo.guild_id).name == "Guildkit Demo"


async def test_reset_forgets_everything(
    control: SandboxClient, api: httpx.AsyncClient, demo: DemoIds
) -> None:
    await control.reset()
    assert (await api.get(f"/guilds/{demo.guild_id}")).status_code == 404
    again = await control.seed_demo()
    assert again == demo
