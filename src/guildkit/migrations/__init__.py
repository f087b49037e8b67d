"""Alembic migrations; `guildkit migrate` (guildkit.db.migrate) applies them."""
