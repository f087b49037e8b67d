"""The gateway protocol at the frame level, with a plain aiohttp websocket client."""

from __future__ import annotations

import json
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from guildkit.sandbox import RunningSandbox
from guildkit.sandbox.client import SandboxClient
from guildkit.sandbox.demo import DemoIds
from guildkit.sandbox.intents import Intent

INTENTS = int(Intent.GUILDS | Intent.GUILD_MEMBERS | Intent.GUILD_MESSAGES | Intent.MESSAGE_CONTENT)
ZLIB_SUFFIX = b"\x00\x00\xff\xff"


class Frames:
    """A gateway client that decodes zlib-stream like discord.py does."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, *, compressed: bool) -> None:
        self.ws = ws
        self._inflate = zlib.decompressobj() if compressed else None
        self._buffer = bytearray()

    async def recv(self) -> dict[str, Any]:
        while True:
            msg = await self.ws.receive(timeout=5)
            if msg.type == aiohttp.WSMsgType.TEXT:
                assert self._inflate is None
                return dict(json.loads(msg.data))
            if msg.type == aiohttp.WSMsgType.BINARY:
                assert self._inflate is not None
                self._buffer.extend(msg.data)
                if not msg.data.endswith(ZLIB_SUFFIX):
                    continue
                text = self._inflate.decompress(bytes(self._buffer))
                self._buffer.clear()
                return dict(json.loads(text))
            raise ConnectionError(f"socket closed: {msg.type} {self.ws.close_code}")

    async def until(self, event: str) -> dict[str, Any]:
        while (frame := await self.recv())["t"] != event:
            pass
        return frame

    async def send(self, op: int, d: Any) -> None:
        await self.ws.send_str(json.dumps({"op": op, "d": d}))


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def demo(control: SandboxClient) -> DemoIds:
    return await control.seed_demo()


async def _connect(
    http: aiohttp.ClientSession, sandbox: RunningSandbox, *, compressed: bool = True
) -> Frames:
    query = "?v=10&encoding=json" + ("&compress=zlib-stream" if compressed else "")
    ws = await http.ws_connect(sandbox.gateway_url + query)
    frames = Frames(ws, compressed=compressed)
    hello = await frames.recv()
    assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] > 0
    return frames


def _identify(sandbox: RunningSandbox, **extra: Any) -> dict[str, Any]:
    return {"token": sandbox.bot_token, "intents": INTENTS, "properties": {}} | extra


async def test_identify_ready_guild_create_heartbeat(
    http: aiohttp.ClientSession, sandbox: RunningSandbox, demo: DemoIds
) -> None:
    frames = await _connect(http, sandbox)
    await frames.send(2, _identify(sandbox))
    ready = await frames.recv()
    assert (ready["t"], ready["s"]) == ("READY", 1)
    assert ready["d"]["user"]["id"] == str(sandbox.state.bot_user.id)
    assert ready["d"]["guilds"] == [{"id": str(demo.guild_id), "unavailable": True}]
    assert ready["d"]["resume_gateway_url"] == sandbox.gateway_url
    assert ready["d"]["application"]["id"] == sandbox.client_id
    guild = await frames.recv()
    assert (guild["t"], guild["s"]) == ("GUILD_CREATE", 2)
    assert guild["d"]["member_count"] == len(guild["d"]["members"]) == 3
    assert {c["name"] for c in guild["d"]["channels"]} == {"general", "welcome", "mod-log"}
    await frames.send(1, 2)
    assert (await frames.recv())["op"] == 11


async def test_uncompressed_and_message_content_intent(
    http: aiohttp.ClientSession, sandbox: RunningSandbox, control: SandboxClient, demo: DemoIds
) -> None:
    frames = await _connect(http, sandbox, compressed=False)
    without_content = INTENTS & ~Intent.MESSAGE_CONTENT
    await frames.send(2, _identify(sandbox, intents=without_content))
    await frames.until("GUILD_CREATE")
    await control.post_message(demo.general_channel_id, demo.member_user_id, "secret")
    message = await frames.until("MESSAGE_CREATE")
    assert message["d"]["content"] == ""
    assert message["d"]["guild_id"] == str(demo.guild_id)
    assert message["d"]["member"]["roles"] == [str(demo.member_role_id)]
    bot_id = sandbox.state.bot_user.id
    await control.post_message(demo.general_channel_id, demo.member_user_id, f"<@{bot_id}> hi")
    mention = await frames.until("MESSAGE_CREATE")
    assert mention["d"]["content"] == f"<@{bot_id}> hi"
    assert mention["d"]["mentions"][0]["id"] == str(bot_id)


async def test_bad_token_and_bad_shard_close(
    http: aiohttp.ClientSession, sandbox: RunningSandbox
) -> None:
    frames = await _connect(http, sandbox)
    await frames.send(2, _identify(sandbox, token="wrong"))
    with pytest.raises(ConnectionError):
        await frames.recv()
    assert frames.ws.close_code == 4004
    frames = await _connect(http, sandbox)
    await frames.send(2, _identify(sandbox, shard=[2, 2]))
    with pytest.raises(ConnectionError):
        await frames.recv()
    assert frames.ws.close_code == 4010


async def test_disallowed_privileged_intents(
    http: aiohttp.ClientSession, sandbox: RunningSandbox, control: SandboxClient
) -> None:
    await control.set_allowed_intents(int(Intent.GUILDS | Intent.GUILD_MESSAGES))
    frames = await _connect(http, sandbox)
    await frames.send(2, _identify(sandbox))
    with pytest.raises(ConnectionError):
        await frames.recv()
    assert frames.ws.close_code == 4014


async def test_resume_replays_missed_events_in_order(
    http: aiohttp.ClientSession, sandbox: RunningSandbox, control: SandboxClient, demo: DemoIds
) -> None:
    frames = await _connect(http, sandbox)
    await frames.send(2, _identify(sandbox))
    ready = await frames.recv()
    guild = await frames.until("GUILD_CREATE")
    session_id = ready["d"]["session_id"]
    await frames.ws.close(code=4000)
    await control.post_message(demo.general_channel_id, demo.member_user_id, "one")
    await control.member_join(demo.guild_id, "joiner")
    frames = await _connect(http, sandbox)
    await frames.send(6, {"token": sandbox.bot_token, "session_id": session_id, "seq": guild["s"]})
    replayed = [await frames.recv() for _ in range(3)]
    assert [(f["t"], f["s"]) for f in replayed] == [
        ("MESSAGE_CREATE", guild["s"] + 1),
        ("GUILD_MEMBER_ADD", guild["s"] + 2),
        ("RESUMED", guild["s"] + 3),
    ]


async def test_resume_unknown_session_is_invalid(
    http: aiohttp.ClientSession, sandbox: RunningSandbox
) -> None:
    frames = await _connect(http, sandbox)
    await frames.send(6, {"token": sandbox.bot_token, "session_id": "nope", "seq": 3})
    invalid = await frames.recv()
    assert (invalid["op"], invalid["d"]) == (9, False)


async def test_shards_get_only_their_guilds(
    http: aiohttp.ClientSession, sandbox: RunningSandbox, control: SandboxClient
) -> None:
    owner = await control.create_user("owner")
    guild_ids = [(await control.create_guild(f"g{i}", owner.id)).id for i in range(3)]
    for shard in (0, 1):
        frames = await _connect(http, sandbox)
        await frames.send(2, _identify(sandbox, shard=[shard, 2]))
        ready = await frames.recv()
        got = {int(g["id"]) for g in ready["d"]["guilds"]}
        assert got == {g for g in guild_ids if (g >> 22) % 2 == shard}
        await frames.ws.close()


async def test_request_guild_members(
    http: aiohttp.ClientSession, sandbox: RunningSandbox, demo: DemoIds
) -> None:
    frames = await _connect(http, sandbox)
    await frames.send(2, _identify(sandbox))
    await frames.until("GUILD_CREATE")
    await frames.send(8, {"guild_id": str(demo.guild_id), "query": "", "limit": 0, "nonce": "n1"})
    chunk = await frames.until("GUILD_MEMBERS_CHUNK")
    assert chunk["d"]["nonce"] == "n1" and len(chunk["d"]["members"]) == 3


async def test_refused_reconnects_then_restore(
    http: aiohttp.ClientSession, sandbox: RunningSandbox, control: SandboxClient
) -> None:
    frames = await _connect(http, sandbox)
    await frames.send(2, _identify(sandbox))
    await frames.recv()
    assert await control.cut_gateway(refuse_seconds=30) == 1
    with pytest.raises(ConnectionError):
        await frames.recv()
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await http.ws_connect(sandbox.gateway_url)
    await control.restore_gateway()
    await _connect(http, sandbox)
