"""Dashboard → PostgreSQL → a real `guildkit bot` process on the sandbox: the edit goes live."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from guildkit.sandbox.client import SandboxClient
from guildkit.sandbox.runner import RunningSandbox
from tests.bot.harness import ChildFactory, answered_within, bot_env, eventually, start_bot
from tests.dashboard.conftest import Scene, build, client_for, dashboard_process, login
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.slow


async def test_saved_prefix_goes_live_on_the_bot(
    postgres_server: PostgresServer,
    python_child: ChildFactory,
    sandbox: RunningSandbox,
    sb: SandboxClient,
    scene: Scene,
) -> None:
    # A private PostgreSQL, so the only bot process in `bot_processes` is this test's.
    database_url = postgres_server.url_for("guildkit")
    bot = await start_bot(python_child, bot_env(sandbox, database_url))
    built = build(database_url, sandbox, with_redis=False)
    try:
        async with client_for(built.app) as client:
            csrf = await login(client, scene.owner)
            saved = await client.patch(
                f"/api/guilds/{scene.guild}/settings",
                json={"prefix": "?"},
                headers={"X-CSRF-Token": csrf},
            )
            assert saved.status_code == 200

            async def live() -> dict[str, Any] | None:
                body: dict[str, Any] = (await client.get(f"/api/guilds/{scene.guild}/sync")).json()
                return body if body["live"] else None

            status = await eventually(live, within=5.0, what="the edit live on every bot process")
            assert len(status["processes"]) == 1
            assert status["processes"][0]["applied_change_seq"] >= status["change_seq"]
            fragment = await client.get(
                f"/guilds/{scene.guild}/sync-status",
                params={"seq": status["change_seq"]},
                headers={"HX-Request": "true"},
            )
            assert "Live on 1 of 1 bot processes." in fragment.text
            assert "hx-get" not in fragment.text  # live everywhere: polling stops

            await sb.post_message(scene.text_channel, scene.member, "?ping")
            reply = await sb.wait_for_message(scene.text_channel, lambda m: "pong" in m.content)
            assert "pong" in reply.content
    finally:
        await built.close()
        bot.kill()


async def _unanswered(sb: SandboxClient, channel: int, author: int, old: str, new: str) -> None:
    """`old` gets no reply: a later `new` is answered first, and still nothing answers `old`."""
    ignored = await sb.post_message(channel, author, old)
    later = await sb.post_message(channel, author, new)
    await sb.wait_for_message(channel, lambda m: m.reference_id == later.id)
    replies = await sb.sent_messages(channel)
    assert not [m for m in replies if m.reference_id == ignored.id], f"{old!r} was answered"


async def test_dashboard_patch_reaches_the_real_bot_within_5s_with_and_without_redis(
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    python_child: ChildFactory,
    sandbox: RunningSandbox,
    sb: SandboxClient,
    scene: Scene,
) -> None:
    """The seed's flow: dashboard PATCH → PostgreSQL → publish → the bot, within 5 s; then the
    same with Redis killed (kill -9) under both of them. Real processes throughout: two bot
    processes (one shard each) and a dashboard, on a private Redis and a private PostgreSQL."""
    database_url = postgres_server.url_for("guildkit")
    for shard in ("0", "1"):
        env = bot_env(
            sandbox,
            database_url,
            redis_url=redis_server.url,
            GUILDKIT_SHARD_IDS=shard,
            GUILDKIT_SHARD_COUNT="2",
        )
        await start_bot(python_child, env)
    _, base = await dashboard_process(
        python_child, sandbox, database_url, redis_url=redis_server.url
    )
    channel, member = scene.text_channel, scene.member
    settings = f"/api/guilds/{scene.guild}/settings"
    async with httpx.AsyncClient(base_url=base, timeout=10.0) as client:
        csrf = await login(client, scene.owner)
        write = {"X-CSRF-Token": csrf, "Content-Type": "application/merge-patch+json"}

        async def live_everywhere(change_seq: int) -> dict[str, Any]:
            async def probe() -> dict[str, Any] | None:
                sync = await client.get(f"/api/guilds/{scene.guild}/sync")
                assert sync.status_code == 200, sync.text
                body: dict[str, Any] = sync.json()
                return body if body["live"] and body["change_seq"] >= change_seq else None

            status = await eventually(probe, within=5.0, what="the edit live on every bot")
            assert len(status["processes"]) == 2  # both shards' processes, nothing else
            assert sorted(p["shard_ids"] for p in status["processes"]) == [[0], [1]]
            assert all(p["applied_change_seq"] >= change_seq for p in status["processes"])
            return status

        assert "pong" in (await answered_within(sb, channel, member, "!ping", within=5.0)).content

        # 1. All healthy: the new prefix, through Redis's publish (or NOTIFY, whichever is first).
        saved = await client.patch(settings, json={"prefix": "?"}, headers=write)
        assert saved.status_code == 200, saved.text
        assert saved.json()["version"] == 1
        reply = await answered_within(sb, channel, member, "?ping", within=5.0)
        assert "pong" in reply.content
        first = (await client.get(f"{settings}/history")).json()[0]["change_seq"]
        await live_everywhere(first)
        await _unanswered(sb, channel, member, "!ping", "?ping")

        # 2. Redis killed under the dashboard and both bots.
        redis_server.kill()
        assert not redis_server.running()
        saved = await client.patch(settings, json={"prefix": "$"}, headers=write)
        assert saved.status_code == 200, saved.text  # PostgreSQL first; Redis cannot fail it
        assert saved.json()["version"] == 2 and saved.json()["settings"]["prefix"] == "$"
        reply = await answered_within(sb, channel, member, "$ping", within=5.0)
        assert "pong" in reply.content
        second = (await client.get(f"{settings}/history")).json()[0]["change_seq"]
        assert second > first
        await live_everywhere(second)
        await _unanswered(sb, channel, member, "?ping", "$ping")
        ready = (await client.get("/readyz")).json()
        assert ready["status"] == "ready" and ready["checks"]["redis"]["ok"] is False
        # The bot's own view: the version it serves is the one the dashboard wrote.
        shown = await answered_within(sb, channel, member, "$settings", within=5.0)
        assert "Prefix `$` · settings version 2 · " in shown.content
