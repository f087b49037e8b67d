"""The sandbox's in-memory Discord: every mutation goes through here and emits gateway events."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from guildkit.sandbox import errors, payloads
from guildkit.sandbox import permissions as perms
from guildkit.sandbox.events import GatewayEvent
from guildkit.sandbox.intents import PRIVILEGED, Intent
from guildkit.sandbox.model import (
    Action,
    Channel,
    ChannelType,
    Guild,
    Member,
    Message,
    Role,
    User,
    utcnow,
)
from guildkit.sandbox.snowflakes import SnowflakeGenerator

EventListener = Callable[[GatewayEvent], None]
_MENTION = re.compile(r"<@!?(\d+)>")


class SandboxState:
    def __init__(self, *, bot_token: str, client_id: str, client_secret: str) -> None:
        self.bot_token = bot_token
        self.client_id = client_id
        self.client_secret = client_secret
        self.listeners: list[EventListener] = []
        self.reset()

    def reset(self) -> None:
        """Forget everything except credentials and listeners; the id sequence restarts too."""
        self.snowflakes = SnowflakeGenerator(worker_id=1)
        # Guilds draw from their own stream so that consecutive guilds land on consecutive
        # shards, whatever else was created in between.
        self.guild_snowflakes = SnowflakeGenerator(worker_id=2)
        self.users: dict[int, User] = {}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.messages: dict[int, Message] = {}
        self.actions: list[Action] = []
        self.bot_joined_at: dict[int, dt.datetime] = {}
        self.allowed_intents = int(sum(Intent))
        self.version = 0
        self._changed = asyncio.Event()
        # The bot user's id is the application (client) id, as on Discord.
        bot_id = int(self.client_id) if self.client_id.isdigit() else self.snowflakes.next()
        self.bot_user = User(id=bot_id, username="guildkit", bot=True)
        self.users[bot_id] = self.bot_user
        self.app_owner = self.create_user("sandbox-developer")

    # -- change notification -------------------------------------------------------------

    def touch(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for_change(self, since: int, within: float) -> int:
        """Return once `version` exceeds `since`, or after `within` seconds."""
        if self.version > since:
            return self.version
        event = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), within)
        return self.version

    def emit(self, event: GatewayEvent) -> None:
        for listener in list(self.listeners):
            listener(event)

    def _record(self, kind: str, actor_id: int, guild_id: int | None, **fields: Any) -> Action:
        action = Action(
            seq=len(self.actions) + 1, kind=kind, actor_id=actor_id, guild_id=guild_id, **fields
        )
        self.actions.append(action)
        return action

    # -- lookups -------------------------------------------------------------------------

    def user(self, user_id: int) -> User:
        try:
            return self.users[user_id]
        except KeyError:
            raise errors.unknown("User") from None

    def guild(self, guild_id: int) -> Guild:
        try:
            return self.guilds[guild_id]
        except KeyError:
            raise errors.unknown("Guild") from None

    def channel(self, channel_id: int) -> Channel:
        try:
            return self.channels[channel_id]
        except KeyError:
            raise errors.unknown("Channel") from None

    def member(self, guild_id: int, user_id: int) -> Member:
        try:
            return self.guild(guild_id).members[user_id]
        except KeyError:
            raise errors.unknown("Member") from None

    def role(self, guild_id: int, role_id: int) -> Role:
        try:
            return self.guild(guild_id).roles[role_id]
        except KeyError:
            raise errors.unknown("Role") from None

    def message(self, channel_id: int, message_id: int) -> Message:
        msg = self.messages.get(message_id)
        if msg is None or msg.channel_id != channel_id or msg.deleted:
            raise errors.unknown("Message")
        return msg

    def bot_in(self, guild_id: int) -> bool:
        return self.bot_user.id in self.guild(guild_id).members

    def permissions_of(self, guild_id: int, user_id: int) -> int:
        g = self.guild(guild_id)
        m = self.member(guild_id, user_id)
        values = [g.everyone_role.permissions]
        values += [g.roles[rid].permissions for rid in m.role_ids if rid in g.roles]
        return perms.resolve(values, is_owner=g.owner_id == user_id)

    def top_role_position(self, guild_id: int, user_id: int) -> int:
        g = self.guild(guild_id)
        m = self.member(guild_id, user_id)
        return max((g.roles[rid].position for rid in m.role_ids if rid in g.roles), default=0)

    def guilds_of(self, user_id: int) -> list[Guild]:
        return [g for g in self.guilds.values() if user_id in g.members]

    def bot_role(self, guild_id: int) -> Role | None:
        roles = self.guild(guild_id).roles.values()
        return next((r for r in roles if r.bot_id == self.bot_user.id), None)

    # -- payload helpers -----------------------------------------------------------------

    def member_json(self, m: Member) -> dict[str, Any]:
        return payloads.member(m, self.user)

    def guild_create_json(self, g: Guild, *, with_members: bool) -> dict[str, Any]:
        members = list(g.members.values())
        if not with_members:
            # Without GUILD_MEMBERS Discord still sends the bot's own member.
            members = [m for m in members if m.user_id == self.bot_user.id]
        joined = self.bot_joined_at.get(g.id, utcnow())
        return payloads.gateway_guild(g, self.user, members=members, joined_at=joined)

    def message_json(self, msg: Message, *, gateway: bool) -> dict[str, Any]:
        author_member = None
        mention_members: dict[int, Member] = {}
        if msg.guild_id is not None:
            g = self.guild(msg.guild_id)
            author_member = g.members.get(msg.author_id)
            mention_members = {uid: g.members[uid] for uid in msg.mention_ids if uid in g.members}
        return payloads.message(
            msg,
            self.user,
            author_member=author_member,
            mention_members=mention_members,
            gateway=gateway,
        )

    # -- users and guilds ----------------------------------------------------------------

    def create_user(
        self, username: str, *, global_name: str | None = None, bot: bool = False
    ) -> User:
        u = User(id=self.snowflakes.next(), username=username, global_name=global_name, bot=bot)
        self.users[u.id] = u
        self.touch()
        return u

    def create_guild(
        self,
        name: str,
        owner_id: int,
        *,
        with_bot: bool = True,
        bot_permissions: int = perms.BOT_DEFAULT,
    ) -> Guild:
        self.user(owner_id)
        gid = self.guild_snowflakes.next()
        g = Guild(id=gid, name=name, owner_id=owner_id)
        g.roles[gid] = Role(
            id=gid, guild_id=gid, name="@everyone", permissions=perms.EVERYONE_DEFAULT, position=0
        )
        g.members[owner_id] = Member(user_id=owner_id, guild_id=gid)
        self.guilds[gid] = g
        if with_bot:
            self.add_bot(gid, bot_permissions)
        self.touch()
        return g

    def add_bot(self, guild_id: int, permissions: int = perms.BOT_DEFAULT) -> None:
        """The bot joins (is invited to) a guild: a managed role, a member, then GUILD_CREATE."""
        g = self.guild(guild_id)
        if self.bot_user.id in g.members:
            return
        position = max(r.position for r in g.roles.values()) + 1
        role = Role(
            id=self.snowflakes.next(),
            guild_id=guild_id,
            name=self.bot_user.username,
            permissions=permissions,
            position=position,
            bot_id=self.bot_user.id,
        )
        g.roles[role.id] = role
        g.members[self.bot_user.id] = Member(
            user_id=self.bot_user.id, guild_id=guild_id, role_ids=[role.id]
        )
        self.bot_joined_at[guild_id] = utcnow()
        self.emit(
            GatewayEvent(
                "GUILD_CREATE",
                self.guild_create_json(g, with_members=True),
                guild_id,
                Intent.GUILDS,
            )
        )
        self.touch()

    def remove_bot(self, guild_id: int) -> None:
        g = self.guild(guild_id)
        if g.members.pop(self.bot_user.id, None) is None:
            return
        role = self.bot_role(guild_id)
        if role is not None:
            del g.roles[role.id]
        self.emit(GatewayEvent("GUILD_DELETE", {"id": str(guild_id)}, guild_id, Intent.GUILDS))
        self.touch()

    def set_bot_permissions(self, guild_id: int, permissions: int) -> None:
        """Set the bot's managed role; like on Discord, @everyone's permissions still add up."""
        role = self.bot_role(guild_id)
        if role is None:
            raise errors.missing_access()
        self.set_role_permissions(guild_id, role.id, permissions)

    def set_role_permissions(self, guild_id: int, role_id: int, permissions: int) -> None:
        role = self.role(guild_id, role_id)
        role.permissions = permissions
        self._emit_role("GUILD_ROLE_UPDATE", role)

    def _emit_role(self, name: str, role: Role) -> None:
        data = {"guild_id": str(role.guild_id), "role": payloads.role(role)}
        self.emit(GatewayEvent(name, data, role.guild_id, Intent.GUILDS))
        self.touch()

    def create_channel(
        self,
        guild_id: int,
        name: str,
        *,
        type: int = ChannelType.GUILD_TEXT,
        topic: str | None = None,
    ) -> Channel:
        g = self.guild(guild_id)
        c = Channel(
            id=self.snowflakes.next(),
            type=type,
            name=name,
            guild_id=guild_id,
            position=len(g.channels),
            topic=topic,
        )
        g.channels[c.id] = c
        self.channels[c.id] = c
        if g.system_channel_id is None and type == ChannelType.GUILD_TEXT:
            g.system_channel_id = c.id
        data = payloads.channel(c, self.user)
        self.emit(GatewayEvent("CHANNEL_CREATE", data, guild_id, Intent.GUILDS))
        self.touch()
        return c

    def create_role(
        self,
        guild_id: int,
        name: str,
        *,
        permissions: int = 0,
        position: int | None = None,
        color: int = 0,
    ) -> Role:
        """A new role, by default just below the bot's role so the bot can manage it."""
        g = self.guild(guild_id)
        if position is None:
            bot_role = self.bot_role(guild_id)
            if bot_role is not None:
                position = bot_role.position
                bot_role.position += 1
            else:
                position = max(r.position for r in g.roles.values()) + 1
        role = Role(
            id=self.snowflakes.next(),
            guild_id=guild_id,
            name=name,
            permissions=permissions,
            position=position,
            color=color,
        )
        g.roles[role.id] = role
        self._emit_role("GUILD_ROLE_CREATE", role)
        return role

    # -- members -------------------------------------------------------------------------

    def add_member(self, guild_id: int, user_id: int, role_ids: list[int] | None = None) -> Member:
        g = self.guild(guild_id)
        self.user(user_id)
        for rid in role_ids or []:
            self.role(guild_id, rid)
        if user_id in g.members:
            return g.members[user_id]
        m = Member(user_id=user_id, guild_id=guild_id, role_ids=list(role_ids or []))
        g.members[user_id] = m
        data = self.member_json(m) | {"guild_id": str(guild_id)}
        self.emit(GatewayEvent("GUILD_MEMBER_ADD", data, guild_id, Intent.GUILD_MEMBERS))
        self.touch()
        return m

    def remove_member(
        self, guild_id: int, user_id: int, *, actor_id: int | None = None, reason: str | None = None
    ) -> None:
        """A member leaves, or with `actor_id` is kicked (recorded as `member_kicked`)."""
        g = self.guild(guild_id)
        if g.members.pop(user_id, None) is None:
            raise errors.unknown("Member")
        if actor_id is not None:
            self._record("member_kicked", actor_id, guild_id, user_id=user_id, reason=reason)
        data = {"guild_id": str(guild_id), "user": payloads.user(self.user(user_id))}
        self.emit(GatewayEvent("GUILD_MEMBER_REMOVE", data, guild_id, Intent.GUILD_MEMBERS))
        self.touch()

    def change_member_role(
        self,
        guild_id: int,
        user_id: int,
        role_id: int,
        *,
        add: bool,
        actor_id: int | None = None,
        reason: str | None = None,
    ) -> None:
        """Add or remove a role; with `actor_id` it is recorded as that client's action."""
        m = self.member(guild_id, user_id)
        self.role(guild_id, role_id)
        if actor_id is not None:
            kind = "role_added" if add else "role_removed"
            self._record(kind, actor_id, guild_id, user_id=user_id, role_id=role_id, reason=reason)
        changed = (role_id not in m.role_ids) if add else (role_id in m.role_ids)
        if changed:
            if add:
                m.role_ids.append(role_id)
            else:
                m.role_ids.remove(role_id)
            data = self.member_json(m) | {"guild_id": str(guild_id)}
            self.emit(GatewayEvent("GUILD_MEMBER_UPDATE", data, guild_id, Intent.GUILD_MEMBERS))
        self.touch()

    # -- messages ------------------------------------------------------------------------

    def open_dm(self, user_id: int, recipient_id: int) -> Channel:
        self.user(recipient_id)
        for c in self.channels.values():
            if c.type == ChannelType.DM and set(c.recipient_ids) == {user_id, recipient_id}:
                return c
        c = Channel(
            id=self.snowflakes.next(),
            type=ChannelType.DM,
            name=None,
            guild_id=None,
            recipient_ids=[recipient_id, user_id],
        )
        self.channels[c.id] = c
        self.touch()
        return c

    def post_message(
        self,
        channel_id: int,
        author_id: int,
        content: str,
        *,
        embeds: list[dict[str, Any]] | None = None,
        reference_id: int | None = None,
        record: bool = False,
    ) -> Message:
        c = self.channel(channel_id)
        self.user(author_id)
        if c.guild_id is not None:
            self.member(c.guild_id, author_id)
        mentions = [int(uid) for uid in _MENTION.findall(content) if int(uid) in self.users]
        msg = Message(
            id=self.snowflakes.next(),
            channel_id=channel_id,
            guild_id=c.guild_id,
            author_id=author_id,
            content=content,
            embeds=list(embeds or []),
            mention_ids=list(dict.fromkeys(mentions)),
            reference_id=reference_id,
        )
        self.messages[msg.id] = msg
        c.last_message_id = msg.id
        if record:
            self._record(
                "message_sent",
                author_id,
                c.guild_id,
                channel_id=channel_id,
                message_id=msg.id,
                content=content,
            )
        # Discord withholds content from bots without MESSAGE_CONTENT, except in DMs, for
        # the bot's own messages and for messages that mention it.
        gated = (
            c.guild_id is not None
            and author_id != self.bot_user.id
            and self.bot_user.id not in msg.mention_ids
        )
        intent = Intent.GUILD_MESSAGES if c.guild_id is not None else Intent.DIRECT_MESSAGES
        data = self.message_json(msg, gateway=True)
        self.emit(GatewayEvent("MESSAGE_CREATE", data, c.guild_id, intent, content_gated=gated))
        self.touch()
        return msg

    def delete_message(
        self, channel_id: int, message_id: int, *, actor_id: int, record: bool
    ) -> None:
        msg = self.message(channel_id, message_id)
        msg.deleted = True
        msg.deleted_by = actor_id
        if record:
            self._record(
                "message_deleted",
                actor_id,
                msg.guild_id,
                channel_id=channel_id,
                message_id=message_id,
                user_id=msg.author_id,
                content=msg.content,
            )
        data: dict[str, Any] = {"id": str(message_id), "channel_id": str(channel_id)}
        if msg.guild_id is not None:
            data["guild_id"] = str(msg.guild_id)
        intent = Intent.GUILD_MESSAGES if msg.guild_id is not None else Intent.DIRECT_MESSAGES
        self.emit(GatewayEvent("MESSAGE_DELETE", data, msg.guild_id, intent))
        self.touch()

    def channel_messages(self, channel_id: int, *, include_deleted: bool = False) -> list[Message]:
        self.channel(channel_id)
        found = [m for m in self.messages.values() if m.channel_id == channel_id]
        return [m for m in found if include_deleted or not m.deleted]

    def privileged_intents_allowed(self, intents: int) -> bool:
        return intents & PRIVILEGED & ~self.allowed_intents == 0
