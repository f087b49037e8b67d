"""The tables, as SQLAlchemy Core metadata. Alembic migrations create them; code queries them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Sequence,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = MetaData()

# Taken only while holding the settings-write advisory lock, so values are handed out in commit
# order and the catch-up cursor can never step over a transaction still in flight (DESIGN §2.4).
change_seq = Sequence("settings_change_seq", metadata=metadata)

guild_settings = Table(
    "guild_settings",
    metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("settings", JSONB, nullable=False),
    Column("version", Integer, nullable=False),
    Column("change_seq", BigInteger, nullable=False, unique=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_by", Text, nullable=False),
)

settings_history = Table(
    "settings_history",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column(
        "guild_id",
        BigInteger,
        ForeignKey("guild_settings.guild_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("version", Integer, nullable=False),
    Column("change_seq", BigInteger, nullable=False, unique=True),
    Column("actor", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("before", JSONB, nullable=False),
    Column("after", JSONB, nullable=False),
    UniqueConstraint("guild_id", "version", name="uq_settings_history_guild_version"),
)
Index("ix_settings_history_guild_version", settings_history.c.guild_id, settings_history.c.version)

bot_processes = Table(
    "bot_processes",
    metadata,
    Column("instance_id", Text, primary_key=True),
    Column("shard_ids", ARRAY(Integer), nullable=False),
    Column("shard_count", Integer, nullable=False),
    Column("applied_change_seq", BigInteger, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
)

# Leveling (issue 3): one row per member who has ever earned XP. `level` is derived from `xp` but
# stored, so a level-up is detected by comparing against the committed value after a restart.
member_xp = Table(
    "member_xp",
    metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("xp", BigInteger, nullable=False, server_default="0"),
    Column("level", Integer, nullable=False, server_default="0"),
    Column("last_awarded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("ix_member_xp_guild_xp", member_xp.c.guild_id, member_xp.c.xp.desc())

# Dashboard sessions (issue 4): the cookie holds a signed random 256-bit secret; the key here is
# its sha256, so a copy of this table yields no usable cookie. One primary-key read per request.
dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("id", LargeBinary, primary_key=True),
    Column("user_id", BigInteger, nullable=False),
    Column("username", Text, nullable=False),
    Column("display_name", Text, nullable=False),
    Column("avatar", Text, nullable=True),
    Column("access_token", Text, nullable=False),
    Column("csrf_token", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
Index("ix_dashboard_sessions_expires_at", dashboard_sessions.c.expires_at)
