"""/guilds/{id}: the guild, its channels, roles and members, and role changes."""

from __future__ import annotations

from aiohttp import web

from guildkit.sandbox import errors, payloads
from guildkit.sandbox.permissions import Permission, has
from guildkit.sandbox.rest.common import (
    audit_reason,
    bot_permissions,
    json_response,
    no_content,
    require_bot,
    snowflake,
)
from guildkit.sandbox.state import SandboxState

routes = web.RouteTableDef()


def _bot_guild(request: web.Request) -> tuple[SandboxState, int]:
    state = require_bot(request)
    guild_id = snowflake(request, "guild_id")
    bot_permissions(state, guild_id)
    return state, guild_id


@routes.get("/guilds/{guild_id}")
async def get_guild(request: web.Request) -> web.Response:
    state, guild_id = _bot_guild(request)
    g = state.guild(guild_id)
    data = payloads.guild(g)
    if request.query.get("with_counts", "").lower() == "true":
        data |= {"approximate_member_count": len(g.members), "approximate_presence_count": 0}
    return json_response(data)


@routes.get("/guilds/{guild_id}/channels")
async def get_channels(request: web.Request) -> web.Response:
    state, guild_id = _bot_guild(request)
    channels = state.guild(guild_id).channels.values()
    return json_response([payloads.channel(c, state.user) for c in channels])


@routes.get("/guilds/{guild_id}/roles")
async def get_roles(request: web.Request) -> web.Response:
    state, guild_id = _bot_guild(request)
    roles = sorted(state.guild(guild_id).roles.values(), key=lambda r: r.position)
    return json_response([payloads.role(r) for r in roles])


@routes.get("/guilds/{guild_id}/members")
async def list_members(request: web.Request) -> web.Response:
    state, guild_id = _bot_guild(request)
    limit = int(request.query.get("limit", "1") or 1)
    if not 1 <= limit <= 1000:
        raise errors.invalid_form_body("limit must be between 1 and 1000")
    after = int(request.query.get("after", "0") or 0)
    members = sorted(state.guild(guild_id).members.values(), key=lambda m: m.user_id)
    members = [m for m in members if m.user_id > after][:limit]
    return json_response([state.member_json(m) for m in members])


@routes.get("/guilds/{guild_id}/members/{user_id}")
async def get_member(request: web.Request) -> web.Response:
    state, guild_id = _bot_guild(request)
    return json_response(state.member_json(state.member(guild_id, snowflake(request, "user_id"))))


def _check_can_assign(state: SandboxState, guild_id: int, role_id: int) -> None:
    role = state.role(guild_id, role_id)
    bot_id = state.bot_user.id
    allowed = has(state.permissions_of(guild_id, bot_id), Permission.MANAGE_ROLES)
    # Discord's hierarchy rule: a bot may only hand out roles below its own highest role.
    is_owner = state.guild(guild_id).owner_id == bot_id
    if (
        not allowed
        or role.managed
        or (not is_owner and role.position >= state.top_role_position(guild_id, bot_id))
    ):
        raise errors.missing_permissions()


async def _change_role(request: web.Request, *, add: bool) -> web.Response:
    state, guild_id = _bot_guild(request)
    user_id = snowflake(request, "user_id")
    role_id = snowflake(request, "role_id")
    state.member(guild_id, user_id)
    bot_id = state.bot_user.id
    _check_can_assign(state, guild_id, role_id)
    state.change_member_role(
        guild_id, user_id, role_id, add=add, actor_id=bot_id, reason=audit_reason(request)
    )
    return no_content()


@routes.patch("/guilds/{guild_id}/members/{user_id}")
async def edit_member(request: web.Request) -> web.Response:
    """`member.edit(roles=...)` and `add_roles(..., atomic=False)`: the whole role list at once."""
    state, guild_id = _bot_guild(request)
    user_id = snowflake(request, "user_id")
    member = state.member(guild_id, user_id)
    body = await request.json()
    if not isinstance(body, dict):
        raise errors.invalid_form_body("expected a JSON object")
    if "roles" in body:
        wanted = [int(r) for r in body["roles"] or []]
        added = [r for r in wanted if r not in member.role_ids]
        removed = [r for r in member.role_ids if r not in wanted]
        for role_id in added + removed:
            _check_can_assign(state, guild_id, role_id)
        reason = audit_reason(request)
        for role_id in added:
            state.change_member_role(
                guild_id, user_id, role_id, add=True, actor_id=state.bot_user.id, reason=reason
            )
        for role_id in removed:
            state.change_member_role(
                guild_id, user_id, role_id, add=False, actor_id=state.bot_user.id, reason=reason
            )
    return json_response(state.member_json(member))


@routes.delete("/guilds/{guild_id}/members/{user_id}")
async def kick_member(request: web.Request) -> web.Response:
    state, guild_id = _bot_guild(request)
    user_id = snowflake(request, "user_id")
    state.member(guild_id, user_id)
    if not has(state.permissions_of(guild_id, state.bot_user.id), Permission.KICK_MEMBERS):
        raise errors.missing_permissions()
    state.remove_member(guild_id, user_id, actor_id=state.bot_user.id, reason=audit_reason(request))
    return no_content()


@routes.put("/guilds/{guild_id}/members/{user_id}/roles/{role_id}")
async def add_member_role(request: web.Request) -> web.Response:
    return await _change_role(request, add=True)


@routes.delete("/guilds/{guild_id}/members/{user_id}/roles/{role_id}")
async def remove_member_role(request: web.Request) -> web.Response:
    return await _change_role(request, add=False)
