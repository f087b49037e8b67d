"""The gateway websocket: sessions per shard, intents, heartbeats, RESUME with replay."""

from __future__ import annotations

import json
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, NoReturn

from aiohttp import WSMsgType, web

from guildkit.sandbox import payloads
from guildkit.sandbox.events import GatewayEvent
from guildkit.sandbox.intents import KNOWN, Intent
from guildkit.sandbox.snowflakes import shard_for
from guildkit.sandbox.state import SandboxState
from guildkit.sandbox.transport import GatewayConnection


class Op:
    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    PRESENCE_UPDATE = 3
    VOICE_STATE_UPDATE = 4
    RESUME = 6
    RECONNECT = 7
    REQUEST_GUILD_MEMBERS = 8
    INVALID_SESSION = 9
    HELLO = 10
    HEARTBEAT_ACK = 11


class Close:
    UNKNOWN_OPCODE = 4001
    DECODE_ERROR = 4002
    NOT_AUTHENTICATED = 4003
    AUTHENTICATION_FAILED = 4004
    ALREADY_AUTHENTICATED = 4005
    INVALID_SEQ = 4007
    SESSION_TIMED_OUT = 4009
    INVALID_SHARD = 4010
    INVALID_INTENTS = 4013
    DISALLOWED_INTENTS = 4014


# Enough to replay what a bot misses during a short outage; older gaps force a re-IDENTIFY.
REPLAY_BUFFER = 5000
# A disconnected session stays resumable this long, like Discord's few-minute grace.
RESUME_GRACE_SECONDS = 300.0


@dataclass
class GatewaySession:
    session_id: str
    shard_id: int
    shard_count: int
    intents: int
    seq: int = 0
    buffer: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=REPLAY_BUFFER))
    connection: GatewayConnection | None = None
    disconnected_at: float | None = None

    def receives(self, event: GatewayEvent) -> bool:
        if event.intent and not self.intents & event.intent:
            return False
        shard = 0 if event.guild_id is None else shard_for(event.guild_id, self.shard_count)
        return shard == self.shard_id

    def push(self, name: str, data: dict[str, Any]) -> None:
        self.seq += 1
        frame = {"op": Op.DISPATCH, "t": name, "s": self.seq, "d": data}
        self.buffer.append(frame)
        if self.connection is not None:
            self.connection.send(frame)

    def in_shard(self, guild_id: int) -> bool:
        return shard_for(guild_id, self.shard_count) == self.shard_id


def _without_content(data: dict[str, Any]) -> dict[str, Any]:
    return data | {"content": "", "embeds": [], "attachments": [], "components": []}


class _Closed(Exception):
    """The connection was closed by the gateway with a close code; stop reading it."""


class GatewayHub:
    def __init__(self, state: SandboxState, *, heartbeat_interval_ms: int) -> None:
        self.state = state
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.sessions: dict[str, GatewaySession] = {}
        self.connections: set[GatewayConnection] = set()
        self.refuse_until = 0.0
        state.listeners.append(self.on_event)

    # -- control -------------------------------------------------------------------------

    def on_event(self, event: GatewayEvent) -> None:
        for session in list(self.sessions.values()):
            if not session.receives(event):
                continue
            data = event.data
            if event.content_gated and not session.intents & Intent.MESSAGE_CONTENT:
                data = _without_content(data)
            session.push(event.name, data)

    def cut(self, *, refuse_seconds: float = 0.0, invalidate_sessions: bool = False) -> int:
        """Drop every connection abruptly; returns how many were cut."""
        connections = list(self.connections)
        for conn in connections:
            conn.abort()
        self.refuse_until = time.monotonic() + refuse_seconds if refuse_seconds > 0 else 0.0
        if invalidate_sessions:
            self.sessions.clear()
        return len(connections)

    def restore(self) -> None:
        self.refuse_until = 0.0

    def reset(self) -> None:
        self.cut(invalidate_sessions=True)
        self.restore()

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "session_id": s.session_id,
                "shard": [s.shard_id, s.shard_count],
                "intents": s.intents,
                "seq": s.seq,
                "connected": s.connection is not None,
                "compression": None if s.connection is None else s.connection.compression,
            }
            for s in self.sessions.values()
        ]

    # -- the websocket -------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if time.monotonic() < self.refuse_until:
            # A failed handshake: discord.py backs off and retries, as during a real outage.
            return web.Response(status=503, text="sandbox gateway is cut")
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        conn = GatewayConnection(
            ws, request, zlib_stream=request.query.get("compress") == "zlib-stream"
        )
        self.connections.add(conn)
        self.state.touch()
        session: GatewaySession | None = None
        client_close: int | None = None
        try:
            if request.query.get("encoding", "json") != "json":
                await conn.close(Close.DECODE_ERROR, "the sandbox speaks only encoding=json")
                return ws
            conn.send(
                {
                    "op": Op.HELLO,
                    "d": {"heartbeat_interval": self.heartbeat_interval_ms},
                    "s": None,
                    "t": None,
                }
            )
            # Discord drops clients that miss heartbeats; allow one and a half intervals.
            timeout = self.heartbeat_interval_ms * 1.5 / 1000
            while True:
                try:
                    msg = await ws.receive(timeout=timeout)
                except TimeoutError:
                    await conn.close(Close.SESSION_TIMED_OUT, "Session timed out")
                    return ws
                if msg.type == WSMsgType.CLOSE:
                    client_close = int(msg.data)
                    break
                if msg.type != WSMsgType.TEXT:
                    if msg.type == WSMsgType.BINARY:
                        await conn.close(Close.DECODE_ERROR, "Error while decoding payload")
                    break
                try:
                    payload = json.loads(msg.data)
                    op = int(payload["op"])
                except (ValueError, KeyError, TypeError):
                    await conn.close(Close.DECODE_ERROR, "Error while decoding payload")
                    break
                session = await self._on_op(conn, session, op, payload.get("d"), request)
        except _Closed:
            pass
        finally:
            self.connections.discard(conn)
            if session is not None and session.connection is conn:
                session.connection = None
                session.disconnected_at = time.monotonic()
                # A clean close (1000/1001) ends the session on Discord; anything else may resume.
                if client_close in (1000, 1001):
                    self.sessions.pop(session.session_id, None)
            await conn.finish()
            self.state.touch()
        return ws

    async def _on_op(
        self,
        conn: GatewayConnection,
        session: GatewaySession | None,
        op: int,
        data: Any,
        request: web.Request,
    ) -> GatewaySession | None:
        if op == Op.HEARTBEAT:
            conn.send({"op": Op.HEARTBEAT_ACK, "d": None, "s": None, "t": None})
            return session
        if op == Op.IDENTIFY:
            if session is not None:
                await self._close(conn, Close.ALREADY_AUTHENTICATED, "Already authenticated")
            return await self._identify(conn, data, request)
        if op == Op.RESUME:
            if session is not None:
                await self._close(conn, Close.ALREADY_AUTHENTICATED, "Already authenticated")
            return await self._resume(conn, data)
        if session is None:
            await self._close(conn, Close.NOT_AUTHENTICATED, "Not authenticated")
        if op == Op.REQUEST_GUILD_MEMBERS:
            assert session is not None
            self._send_member_chunk(session, data)
            return session
        if op in (Op.PRESENCE_UPDATE, Op.VOICE_STATE_UPDATE):
            return session
        await self._close(conn, Close.UNKNOWN_OPCODE, "Unknown opcode")
        return session

    async def _close(self, conn: GatewayConnection, code: int, reason: str) -> NoReturn:
        await conn.close(code, reason)
        raise _Closed

    async def _identify(
        self, conn: GatewayConnection, data: Any, request: web.Request
    ) -> GatewaySession:
        if not isinstance(data, dict) or data.get("token") != self.state.bot_token:
            await self._close(conn, Close.AUTHENTICATION_FAILED, "Authentication failed")
        assert isinstance(data, dict)
        shard_id, shard_count = data.get("shard") or [0, 1]
        if not (
            isinstance(shard_id, int)
            and isinstance(shard_count, int)
            and 0 <= shard_id < shard_count
        ):
            await self._close(conn, Close.INVALID_SHARD, "Invalid shard")
        intents = data.get("intents")
        if not isinstance(intents, int) or intents & ~KNOWN:
            await self._close(conn, Close.INVALID_INTENTS, "Invalid intent(s)")
        if not self.state.privileged_intents_allowed(intents):
            await self._close(conn, Close.DISALLOWED_INTENTS, "Disallowed intent(s)")
        self._expire_sessions()
        session = GatewaySession(
            session_id=secrets.token_hex(16),
            shard_id=shard_id,
            shard_count=shard_count,
            intents=intents,
            connection=conn,
        )
        self.sessions[session.session_id] = session
        guilds = [g for g in self.state.guilds_of(self.state.bot_user.id) if session.in_shard(g.id)]
        bot = self.state.bot_user
        ready = {
            "v": 10,
            "user": payloads.user(bot) | {"verified": True, "mfa_enabled": False, "email": None},
            "user_settings": {},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": gateway_url(request),
            "shard": [shard_id, shard_count],
            "application": {"id": str(bot.id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "_trace": ["guildkit-sandbox"],
        }
        session.push("READY", ready)
        if intents & Intent.GUILDS:
            with_members = bool(intents & Intent.GUILD_MEMBERS)
            for g in guilds:
                session.push(
                    "GUILD_CREATE", self.state.guild_create_json(g, with_members=with_members)
                )
        self.state.touch()
        return session

    async def _resume(self, conn: GatewayConnection, data: Any) -> GatewaySession | None:
        if not isinstance(data, dict) or data.get("token") != self.state.bot_token:
            await self._close(conn, Close.AUTHENTICATION_FAILED, "Authentication failed")
        assert isinstance(data, dict)
        session = self.sessions.get(str(data.get("session_id")))
        seq = data.get("seq")
        if session is None or not isinstance(seq, int):
            conn.send({"op": Op.INVALID_SESSION, "d": False, "s": None, "t": None})
            return None
        if seq > session.seq:
            await self._close(conn, Close.INVALID_SEQ, "Invalid seq")
        missed = [frame for frame in session.buffer if frame["s"] > seq]
        if session.seq > seq and (not missed or missed[0]["s"] != seq + 1):
            # The gap is older than the replay buffer: the client must start over.
            self.sessions.pop(session.session_id, None)
            conn.send({"op": Op.INVALID_SESSION, "d": False, "s": None, "t": None})
            return None
        if session.connection is not None and session.connection is not conn:
            session.connection.abort()
        session.connection = conn
        session.disconnected_at = None
        for frame in missed:
            conn.send(frame)
        session.push("RESUMED", {})
        self.state.touch()
        return session

    def _send_member_chunk(self, session: GatewaySession, data: Any) -> None:
        if not isinstance(data, dict):
            return
        gid = int(data.get("guild_id", 0))
        g = self.state.guilds.get(gid)
        if g is None:
            return
        members = list(g.members.values())
        wanted = data.get("user_ids")
        if wanted:
            ids = {int(u) for u in (wanted if isinstance(wanted, list) else [wanted])}
            members = [m for m in members if m.user_id in ids]
        query = str(data.get("query") or "").lower()
        if query:
            members = [
                m for m in members if self.state.user(m.user_id).username.lower().startswith(query)
            ]
        limit = int(data.get("limit") or 0)
        if limit:
            members = members[:limit]
        chunk: dict[str, Any] = {
            "guild_id": str(gid),
            "members": [self.state.member_json(m) for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        session.push("GUILD_MEMBERS_CHUNK", chunk)

    def _expire_sessions(self) -> None:
        cutoff = time.monotonic() - RESUME_GRACE_SECONDS
        for sid, s in list(self.sessions.items()):
            if (
                s.connection is None
                and s.disconnected_at is not None
                and s.disconnected_at < cutoff
            ):
                del self.sessions[sid]


def gateway_url(request: web.Request) -> str:
    scheme = "wss" if request.secure else "ws"
    return f"{scheme}://{request.host}/gateway"
