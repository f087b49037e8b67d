"""Leveling: XP per member per guild.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_xp",
        sa.Column("guild_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("xp", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("level", sa.Integer, nullable=False, server_default="0"),
        sa.Column(
            "last_awarded_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.CheckConstraint("xp >= 0", name="ck_member_xp_xp_non_negative"),
    )
    op.create_index(
        "ix_member_xp_guild_xp", "member_xp", ["guild_id", sa.text("xp DESC")], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_member_xp_guild_xp", table_name="member_xp")
    op.drop_table("member_xp")
