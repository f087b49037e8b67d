"""Settings, history, change sequence and bot process status.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence("settings_change_seq")))
    op.create_table(
        "guild_settings",
        sa.Column("guild_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("settings", JSONB, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("change_seq", sa.BigInteger, nullable=False, unique=True),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("updated_by", sa.Text, nullable=False),
        sa.CheckConstraint("version >= 1", name="ck_guild_settings_version_positive"),
    )
    op.create_table(
        "settings_history",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column(
            "guild_id",
            sa.BigInteger,
            sa.ForeignKey("guild_settings.guild_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("change_seq", sa.BigInteger, nullable=False, unique=True),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("before", JSONB, nullable=False),
        sa.Column("after", JSONB, nullable=False),
        sa.UniqueConstraint("guild_id", "version", name="uq_settings_history_guild_version"),
    )
    op.create_index(
        "ix_settings_history_guild_version", "settings_history", ["guild_id", "version"]
    )
    op.create_table(
        "bot_processes",
        sa.Column("instance_id", sa.Text, primary_key=True),
        sa.Column("shard_ids", ARRAY(sa.Integer), nullable=False),
        sa.Column("shard_count", sa.Integer, nullable=False),
        sa.Column("applied_change_seq", sa.BigInteger, nullable=False),
        sa.Column(
            "started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "heartbeat_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bot_processes")
    op.drop_index("ix_settings_history_guild_version", table_name="settings_history")
    op.drop_table("settings_history")
    op.drop_table("guild_settings")
    op.execute(sa.schema.DropSequence(sa.Sequence("settings_change_seq")))
