"""A typed client for the sandbox's control API, for tests of the bot and the dashboard."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from guildkit.sandbox.demo import DemoIds

T = TypeVar("T")
JSON = dict[str, Any]


class SandboxError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"sandbox control API answered {status}: {body}")
        self.status = status
        self.body = body


def _opt(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class SandboxUser:
    id: int
    username: str


@dataclass(frozen=True)
class SandboxGuild:
    id: int
    name: str
    owner_id: int
    everyone_role_id: int


@dataclass(frozen=True)
class SandboxChannel:
    id: int
    guild_id: int
    name: str


@dataclass(frozen=True)
class SandboxRole:
    id: int
    name: str
    permissions: int
    position: int


@dataclass(frozen=True)
class SandboxMember:
    user_id: int
    role_ids: tuple[int, ...]


@dataclass(frozen=True)
class SandboxMessage:
    id: int
    channel_id: int
    guild_id: int | None
    author_id: int
    content: str
    embeds: tuple[JSON, ...]
    reference_id: int | None
    deleted: bool
    deleted_by: int | None

    @classmethod
    def from_json(cls, data: JSON) -> SandboxMessage:
        return cls(
            id=int(data["id"]),
            channel_id=int(data["channel_id"]),
            guild_id=_opt(data["guild_id"]),
            author_id=int(data["author_id"]),
            content=data["content"],
            embeds=tuple(data["embeds"]),
            reference_id=_opt(data["reference_id"]),
            deleted=data["deleted"],
            deleted_by=_opt(data["deleted_by"]),
        )


@dataclass(frozen=True)
class BotAction:
    """What a REST call did.

    `kind` is message_sent, message_deleted, role_added, role_removed or member_kicked.
    """

    seq: int
    kind: str
    actor_id: int
    guild_id: int | None
    channel_id: int | None
    message_id: int | None
    user_id: int | None
    role_id: int | None
    content: str | None
    reason: str | None

    @classmethod
    def from_json(cls, data: JSON) -> BotAction:
        return cls(
            seq=int(data["seq"]),
            kind=data["kind"],
            actor_id=int(data["actor_id"]),
            guild_id=_opt(data["guild_id"]),
            channel_id=_opt(data["channel_id"]),
            message_id=_opt(data["message_id"]),
            user_id=_opt(data["user_id"]),
            role_id=_opt(data["role_id"]),
            content=data["content"],
            reason=data["reason"],
        )


def _member(data: JSON) -> SandboxMember:
    return SandboxMember(
        user_id=int(data["user"]["id"]), role_ids=tuple(int(r) for r in data["roles"])
    )


class SandboxClient:
    """`async with SandboxClient(sandbox.base_url) as sb:`; every id is an int."""

    def __init__(self, base_url: str, *, http: httpx.AsyncClient | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=10.0)
        self._bot_user_id: int | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def _call(self, method: str, path: str, *, json: Any = None, **kwargs: Any) -> Any:
        response = await self._http.request(
            method, f"{self.base_url}/_sandbox{path}", json=json, **kwargs
        )
        if response.status_code >= 400:
            raise SandboxError(response.status_code, response.text)
        return None if response.status_code == 204 else response.json()

    # -- scene setting -------------------------------------------------------------------

    async def reset(self) -> None:
        await self._call("POST", "/reset")

    async def bot_user_id(self) -> int:
        if self._bot_user_id is None:
            self._bot_user_id = int((await self._call("GET", "/info"))["bot_user"]["id"])
        return self._bot_user_id

    async def seed_demo(self) -> DemoIds:
        data = await self._call("POST", "/seed-demo")
        return DemoIds(**{key: int(value) for key, value in data.items()})

    async def create_user(self, username: str, *, global_name: str | None = None) -> SandboxUser:
        data = await self._call(
            "POST", "/users", json={"username": username, "global_name": global_name}
        )
        return SandboxUser(id=int(data["id"]), username=data["username"])

    async def create_guild(
        self, name: str, owner_id: int, *, with_bot: bool = True, bot_permissions: int | None = None
    ) -> SandboxGuild:
        body: JSON = {"name": name, "owner_id": str(owner_id), "with_bot": with_bot}
        if bot_permissions is not None:
            body["bot_permissions"] = bot_permissions
        data = await self._call("POST", "/guilds", json=body)
        gid = int(data["id"])
        return SandboxGuild(
            id=gid, name=data["name"], owner_id=int(data["owner_id"]), everyone_role_id=gid
        )

    async def guild(self, guild_id: int) -> JSON:
        """The guild in GUILD_CREATE shape plus `bot_present`."""
        result: JSON = await self._call("GET", f"/guilds/{guild_id}")
        return result

    async def add_bot(self, guild_id: int, *, permissions: int | None = None) -> None:
        body = {} if permissions is None else {"permissions": permissions}
        await self._call("PUT", f"/guilds/{guild_id}/bot", json=body)

    async def remove_bot(self, guild_id: int) -> None:
        await self._call("DELETE", f"/guilds/{guild_id}/bot")

    async def set_bot_permissions(self, guild_id: int, permissions: int) -> None:
        """The bot's managed role; @everyone's permissions still apply on top, as on Discord."""
        await self._call(
            "PUT", f"/guilds/{guild_id}/bot/permissions", json={"permissions": permissions}
        )

    async def set_role_permissions(self, guild_id: int, role_id: int, permissions: int) -> None:
        """Edit any role, e.g. @everyone (whose id is the guild's id)."""
        body = {"permissions": permissions}
        await self._call("PATCH", f"/guilds/{guild_id}/roles/{role_id}", json=body)

    async def create_channel(
        self, guild_id: int, name: str, *, topic: str | None = None
    ) -> SandboxChannel:
        data = await self._call(
            "POST", f"/guilds/{guild_id}/channels", json={"name": name, "topic": topic}
        )
        return SandboxChannel(id=int(data["id"]), guild_id=guild_id, name=data["name"])

    async def create_role(
        self, guild_id: int, name: str, *, permissions: int = 0, position: int | None = None
    ) -> SandboxRole:
        body: JSON = {"name": name, "permissions": permissions}
        if position is not None:
            body["position"] = position
        data = await self._call("POST", f"/guilds/{guild_id}/roles", json=body)
        return SandboxRole(
            id=int(data["id"]),
            name=data["name"],
            permissions=int(data["permissions"]),
            position=int(data["position"]),
        )

    async def add_member(
        self, guild_id: int, user_id: int, role_ids: Iterable[int] = ()
    ) -> SandboxMember:
        """Add a user to a guild (dispatches GUILD_MEMBER_ADD if the bot is there)."""
        body = {"user_id": str(user_id), "role_ids": [str(r) for r in role_ids]}
        return _member(await self._call("POST", f"/guilds/{guild_id}/members", json=body))

    async def member_join(
        self, guild_id: int, username: str, *, global_name: str | None = None
    ) -> SandboxUser:
        """A new user joins the guild: creates the user, then GUILD_MEMBER_ADD."""
        user = await self.create_user(username, global_name=global_name)
        await self.add_member(guild_id, user.id)
        return user

    async def remove_member(self, guild_id: int, user_id: int) -> None:
        await self._call("DELETE", f"/guilds/{guild_id}/members/{user_id}")

    async def give_role(self, guild_id: int, user_id: int, role_id: int) -> None:
        """As a guild admin (not recorded as a bot action)."""
        await self._call("PUT", f"/guilds/{guild_id}/members/{user_id}/roles/{role_id}")

    async def take_role(self, guild_id: int, user_id: int, role_id: int) -> None:
        await self._call("DELETE", f"/guilds/{guild_id}/members/{user_id}/roles/{role_id}")

    async def member(self, guild_id: int, user_id: int) -> SandboxMember:
        return _member(await self._call("GET", f"/guilds/{guild_id}/members/{user_id}"))

    async def member_roles(self, guild_id: int, user_id: int) -> set[int]:
        return set((await self.member(guild_id, user_id)).role_ids)

    async def set_allowed_intents(self, allowed: int) -> None:
        await self._call("PUT", "/intents", json={"allowed": allowed})

    async def issue_token(self, user_id: int, scope: str = "identify guilds") -> str:
        """A bearer token for `user_id`, skipping the browser's authorize step."""
        data = await self._call(
            "POST", "/oauth2/tokens", json={"user_id": str(user_id), "scope": scope}
        )
        return str(data["access_token"])

    # -- acting as users -----------------------------------------------------------------

    async def post_message(self, channel_id: int, author_id: int, content: str) -> SandboxMessage:
        """A member posts in a channel (dispatches MESSAGE_CREATE)."""
        body = {"author_id": str(author_id), "content": content}
        return SandboxMessage.from_json(
            await self._call("POST", f"/channels/{channel_id}/messages", json=body)
        )

    # -- reading back --------------------------------------------------------------------

    async def messages(self, channel_id: int) -> list[SandboxMessage]:
        """Every message in the channel, oldest first, deleted ones included (`deleted=True`)."""
        data = await self._call("GET", f"/channels/{channel_id}/messages")
        return [SandboxMessage.from_json(m) for m in data]

    async def sent_messages(self, channel_id: int) -> list[SandboxMessage]:
        """What the bot sent to the channel, oldest first."""
        bot_id = await self.bot_user_id()
        return [m for m in await self.messages(channel_id) if m.author_id == bot_id]

    async def deleted_messages(self, channel_id: int) -> list[SandboxMessage]:
        return [m for m in await self.messages(channel_id) if m.deleted]

    async def actions(self, guild_id: int | None = None, *, since: int = 0) -> list[BotAction]:
        path = "/actions" if guild_id is None else f"/guilds/{guild_id}/actions"
        data = await self._call("GET", path, params={"since": since})
        return [BotAction.from_json(a) for a in data]

    async def gateway_sessions(self) -> list[JSON]:
        result: list[JSON] = await self._call("GET", "/gateway/sessions")
        return result

    # -- gateway faults ------------------------------------------------------------------

    async def cut_gateway(
        self, *, refuse_seconds: float = 0.0, invalidate_sessions: bool = False
    ) -> int:
        """Drop every gateway connection abruptly; refuse reconnects for `refuse_seconds`."""
        body = {"refuse_seconds": refuse_seconds, "invalidate_sessions": invalidate_sessions}
        return int((await self._call("POST", "/gateway/cut", json=body))["connections_cut"])

    async def restore_gateway(self) -> None:
        await self._call("POST", "/gateway/restore")

    # -- waiting -------------------------------------------------------------------------

    async def wait_until(
        self,
        probe: Callable[[], Awaitable[T | None]],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline spanning many calls
    ) -> T:
        """Re-run `probe` whenever the sandbox changes until it returns non-None, or TimeoutError.

        Uses the sandbox's long-poll, so it wakes as soon as something happens rather than
        sleeping in fixed steps.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            version = int((await self._call("GET", "/info"))["version"])
            result = await probe()
            if result is not None:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"sandbox condition not met within {timeout}s")
            wait = min(remaining, 5.0)
            await self._call(
                "GET", "/wait", params={"since": version, "timeout": wait}, timeout=wait + 5.0
            )

    async def wait_for_message(
        self,
        channel_id: int,
        predicate: Callable[[SandboxMessage], bool] | None = None,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109
        from_bot: bool = True,
    ) -> SandboxMessage:
        """The first (oldest) message in the channel matching `predicate`, by the bot by default."""

        async def probe() -> SandboxMessage | None:
            found = await (
                self.sent_messages(channel_id) if from_bot else self.messages(channel_id)
            )
            return next((m for m in found if predicate is None or predicate(m)), None)

        return await self.wait_until(probe, timeout=timeout)

    async def wait_for_action(
        self,
        guild_id: int,
        predicate: Callable[[BotAction], bool],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109
        since: int = 0,
    ) -> BotAction:
        async def probe() -> BotAction | None:
            return next(
                (a for a in await self.actions(guild_id, since=since) if predicate(a)), None
            )

        return await self.wait_until(probe, timeout=timeout)

    async def wait_for_gateway(self, connected: int = 1, *, timeout: float = 5.0) -> list[JSON]:  # noqa: ASYNC109
        """Wait until at least `connected` gateway sessions are connected."""

        async def probe() -> list[JSON] | None:
            sessions = [s for s in await self.gateway_sessions() if s["connected"]]
            return sessions if len(sessions) >= connected else None

        return await self.wait_until(probe, timeout=timeout)
