"""Dashboard → PostgreSQL → a real `guildkit bot` process on the sandbox: the edit goes live."""

from __future__ import annotations

from typing import Any

import pytest

from guildkit.sandbox.client import SandboxClient
from guildkit.sandbox.runner import RunningSandbox
from tests.bot.harness import ChildFactory, bot_env, eventually, start_bot
from tests.dashboard.conftest import Scene, build, client_for, login
from tests.support.postgres_server import PostgresServer

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
