"""The sandbox chat page and its long-poll feed (without a bot: the test speaks for it)."""

from __future__ import annotations

import asyncio
import time

import httpx

from guildkit.sandbox.runner import run_sandbox


async def test_chat_page_is_served_as_plain_html() -> None:
    async with run_sandbox(seed_demo=True) as sandbox, httpx.AsyncClient() as http:
        page = await http.get(f"{sandbox.base_url}/chat")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "guildkit sandbox chat" in page.text
        assert "/chat/api/state" in page.text


async def test_state_lists_the_demo_guild_and_defaults_to_its_first_channel() -> None:
    async with run_sandbox(seed_demo=True) as sandbox, httpx.AsyncClient() as http:
        demo = sandbox.demo
        assert demo is not None
        state = (await http.get(f"{sandbox.base_url}/chat/api/state")).json()
        assert state["guild_id"] == str(demo.guild_id)
        assert state["channel_id"] == str(demo.general_channel_id)
        guild = state["guilds"][0]
        assert guild["name"] == "Guildkit Demo"
        assert [c["name"] for c in guild["channels"]] == ["general", "welcome", "mod-log"]
        names = {m["name"] for m in guild["members"]}
        assert {"Demo Admin", "Demo Member", "guildkit"} <= names


async def test_long_poll_returns_as_soon_as_the_bot_replies_and_shows_deletions() -> None:
    async with run_sandbox(seed_demo=True) as sandbox, httpx.AsyncClient(timeout=30) as http:
        demo = sandbox.demo
        assert demo is not None
        url = f"{sandbox.base_url}/chat/api/state?channel_id={demo.general_channel_id}"
        first = (await http.get(url)).json()
        poll = asyncio.create_task(http.get(f"{url}&since={first['version']}&wait=20"))
        await asyncio.sleep(0.2)
        assert not poll.done(), "nothing changed: the poll must wait"
        began = time.monotonic()
        state = sandbox.state
        asked = state.post_message(demo.general_channel_id, demo.member_user_id, "!ping")
        state.post_message(demo.general_channel_id, state.bot_user.id, "pong!")
        state.delete_message(
            demo.general_channel_id, asked.id, actor_id=state.bot_user.id, record=True
        )
        answer = (await poll).json()
        assert time.monotonic() - began < 5
        messages = answer["messages"]
        # The poll may return after the first change; a second read shows the rest.
        if len(messages) < 2 or not messages[0]["deleted"]:
            messages = (await http.get(url)).json()["messages"]
        assert [(m["author"], m["content"], m["bot"]) for m in messages] == [
            ("Demo Member", "!ping", False),
            ("guildkit", "pong!", True),
        ]
        assert messages[0]["deleted"] and messages[0]["deleted_by"] == "guildkit"
        events = (await http.get(url)).json()["events"]
        assert [e["kind"] for e in events] == ["message_deleted"]


async def test_join_button_adds_a_member() -> None:
    async with run_sandbox(seed_demo=True) as sandbox, httpx.AsyncClient() as http:
        demo = sandbox.demo
        assert demo is not None
        joined = await http.post(
            f"{sandbox.base_url}/chat/api/join", json={"guild_id": str(demo.guild_id)}
        )
        assert joined.status_code == 200
        user_id = int(joined.json()["user_id"])
        assert user_id in sandbox.state.guilds[demo.guild_id].members
