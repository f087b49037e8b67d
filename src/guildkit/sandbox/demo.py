"""The demo scene `guildkit sandbox` and `guildkit run` start with."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from guildkit.sandbox.permissions import Permission
from guildkit.sandbox.state import SandboxState


@dataclass(frozen=True)
class DemoIds:
    guild_id: int
    general_channel_id: int
    welcome_channel_id: int
    mod_log_channel_id: int
    admin_role_id: int
    moderator_role_id: int
    member_role_id: int
    admin_user_id: int
    member_user_id: int

    def as_json(self) -> dict[str, str]:
        return {key: str(value) for key, value in asdict(self).items()}


def seed_demo(state: SandboxState) -> DemoIds:
    """ "Guildkit Demo": #general, #welcome, #mod-log, three roles, an owner and a member."""
    admin = state.create_user("demo-admin", global_name="Demo Admin")
    member = state.create_user("demo-member", global_name="Demo Member")
    guild = state.create_guild("Guildkit Demo", admin.id)
    general = state.create_channel(guild.id, "general", topic="Say hello")
    welcome = state.create_channel(guild.id, "welcome")
    mod_log = state.create_channel(guild.id, "mod-log")
    admin_role = state.create_role(guild.id, "Admin", permissions=int(Permission.ADMINISTRATOR))
    moderator = state.create_role(
        guild.id, "Moderator", permissions=int(Permission.MANAGE_MESSAGES | Permission.KICK_MEMBERS)
    )
    member_role = state.create_role(guild.id, "Member")
    # The owner is already a member (create_guild adds them), so only give them the role.
    state.change_member_role(guild.id, admin.id, admin_role.id, add=True)
    state.add_member(guild.id, member.id, [member_role.id])
    return DemoIds(
        guild_id=guild.id,
        general_channel_id=general.id,
        welcome_channel_id=welcome.id,
        mod_log_channel_id=mod_log.id,
        admin_role_id=admin_role.id,
        moderator_role_id=moderator.id,
        member_role_id=member_role.id,
        admin_user_id=admin.id,
        member_user_id=member.id,
    )
