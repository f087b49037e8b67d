"""Discord's JSON shapes for the sandbox's objects (snowflakes as strings, as on the wire)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from guildkit.sandbox.model import Channel, ChannelType, Guild, Member, Message, Role, User

JSON = dict[str, Any]
UserLookup = Callable[[int], User]


def iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def user(u: User) -> JSON:
    data: JSON = {
        "id": str(u.id),
        "username": u.username,
        "discriminator": "0",
        "global_name": u.global_name,
        "avatar": None,
        "public_flags": 0,
        "flags": 0,
        "banner": None,
        "accent_color": None,
        "avatar_decoration_data": None,
    }
    if u.bot:
        data["bot"] = True
    return data


def role(r: Role) -> JSON:
    data: JSON = {
        "id": str(r.id),
        "name": r.name,
        "color": r.color,
        "hoist": r.hoist,
        "icon": None,
        "unicode_emoji": None,
        "position": r.position,
        "permissions": str(r.permissions),
        "managed": r.managed,
        "mentionable": r.mentionable,
        "flags": 0,
    }
    if r.bot_id is not None:
        data["tags"] = {"bot_id": str(r.bot_id)}
    return data


def channel(c: Channel, users: UserLookup, *, with_guild_id: bool = True) -> JSON:
    data: JSON = {
        "id": str(c.id),
        "type": c.type,
        "last_message_id": None if c.last_message_id is None else str(c.last_message_id),
        "flags": 0,
    }
    if c.type == ChannelType.DM:
        data["recipients"] = [user(users(uid)) for uid in c.recipient_ids]
        return data
    data.update(
        {
            "name": c.name,
            "position": c.position,
            "permission_overwrites": [],
            "parent_id": None if c.parent_id is None else str(c.parent_id),
            "nsfw": False,
        }
    )
    if c.type == ChannelType.GUILD_TEXT:
        data.update({"topic": c.topic, "rate_limit_per_user": 0})
    if with_guild_id and c.guild_id is not None:
        data["guild_id"] = str(c.guild_id)
    return data


def member(m: Member, users: UserLookup, *, with_user: bool = True) -> JSON:
    data: JSON = {
        "nick": m.nick,
        "avatar": None,
        "banner": None,
        "roles": [str(rid) for rid in m.role_ids],
        "joined_at": iso(m.joined_at),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
    }
    if with_user:
        data["user"] = user(users(m.user_id))
    return data


def guild(g: Guild) -> JSON:
    """The REST shape of `GET /guilds/{id}`."""
    return {
        "id": str(g.id),
        "name": g.name,
        "icon": None,
        "icon_hash": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": str(g.owner_id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "widget_enabled": False,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": [role(r) for r in sorted(g.roles.values(), key=lambda r: r.position)],
        "emojis": [],
        "stickers": [],
        "features": [],
        "mfa_level": 0,
        "application_id": None,
        "system_channel_id": None if g.system_channel_id is None else str(g.system_channel_id),
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "safety_alerts_channel_id": None,
        "vanity_url_code": None,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "premium_progress_bar_enabled": False,
        "preferred_locale": "en-US",
        "nsfw_level": 0,
        "max_members": 500000,
        "max_video_channel_users": 25,
    }


def gateway_guild(
    g: Guild, users: UserLookup, *, members: list[Member], joined_at: dt.datetime
) -> JSON:
    """The GUILD_CREATE shape: the REST guild plus channels, members and gateway-only fields."""
    data = guild(g)
    data.update(
        {
            "joined_at": iso(joined_at),
            "large": False,
            "unavailable": False,
            "member_count": len(g.members),
            "voice_states": [],
            "members": [member(m, users) for m in members],
            "channels": [channel(c, users, with_guild_id=False) for c in g.channels.values()],
            "threads": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }
    )
    return data


def partial_guild(g: Guild, *, owner: bool, permissions: int) -> JSON:
    """An entry of `GET /users/@me/guilds`."""
    return {
        "id": str(g.id),
        "name": g.name,
        "icon": None,
        "banner": None,
        "owner": owner,
        "permissions": str(permissions),
        "features": [],
        "approximate_member_count": len(g.members),
        "approximate_presence_count": 0,
    }


def message(
    msg: Message,
    users: UserLookup,
    *,
    author_member: Member | None = None,
    mention_members: dict[int, Member] | None = None,
    gateway: bool = False,
) -> JSON:
    """A message; the gateway form adds `guild_id`, the author's `member` and mentions' members."""
    mentions = []
    for uid in msg.mention_ids:
        entry = user(users(uid))
        if gateway and mention_members and uid in mention_members:
            entry["member"] = member(mention_members[uid], users, with_user=False)
        mentions.append(entry)
    data: JSON = {
        "id": str(msg.id),
        "channel_id": str(msg.channel_id),
        "type": 0 if msg.reference_id is None else 19,
        "author": user(users(msg.author_id)),
        "content": msg.content,
        "timestamp": iso(msg.timestamp),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": "@everyone" in msg.content,
        "mentions": mentions,
        "mention_roles": [],
        "attachments": [],
        "embeds": list(msg.embeds),
        "pinned": False,
        "flags": 0,
        "components": [],
    }
    if msg.reference_id is not None:
        data["message_reference"] = {
            "type": 0,
            "message_id": str(msg.reference_id),
            "channel_id": str(msg.channel_id),
            "guild_id": None if msg.guild_id is None else str(msg.guild_id),
        }
    if gateway and msg.guild_id is not None:
        data["guild_id"] = str(msg.guild_id)
        if author_member is not None:
            data["member"] = member(author_member, users, with_user=False)
    return data


def application(app_id: int, owner: User, bot: User) -> JSON:
    """`GET /oauth2/applications/@me`, which discord.py's login calls."""
    return {
        "id": str(app_id),
        "name": bot.username,
        "icon": None,
        "description": "guildkit sandbox application",
        "type": None,
        "bot": user(bot),
        "bot_public": False,
        "bot_require_code_grant": False,
        "owner": user(owner),
        "team": None,
        "verify_key": "0" * 64,
        "flags": 0,
        "summary": "",
        "rpc_origins": [],
        "redirect_uris": [],
        "interactions_endpoint_url": None,
        "install_params": None,
        "tags": [],
    }
